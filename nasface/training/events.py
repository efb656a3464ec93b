"""What full training (``nasface.training.fulltrain``) tells whoever follows it: ``TrainingEvents``.

The training calls these hooks and nothing else.  This base records every event in the run's
``log.jsonl`` (one JSON object a line: the run's record, whoever watches) and shows nothing; a
display (``nasface.ui.training_progress.TrainingReporter``) overrides ``show``, ``show_record``
and ``show_step`` to draw them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nasface.core.stages import SILENT, Stages, format_duration

if TYPE_CHECKING:
    from nasface.training.loop import LoopState
    from nasface.training.fulltrain import TrainingPlan, TrainingResult, TrainingRun

FINAL_LOSS_STEPS = 20  # a loss is reported as the mean over this many steps: one batch is noisy


class TrainingEvents:
    """The events of a run, logged; ``interval`` seconds apart at most, a step is logged (and shown)."""

    def __init__(self, interval: float = 10.0):
        self.interval = interval
        self.log_path: Path | None = None
        self.last_shown = time.perf_counter()
        self.total_steps = 0
        self.done_steps = 0
        self.timed_steps = 0          # steps this process trained after its first (which pays for warm-up)
        self.clock: float | None = None
        self.stages: Stages = SILENT  # decoding, a teacher's centres

    # -- what a display overrides ------------------------------------------------------------------------
    def show(self, text: str) -> None:
        """A line for a person (rich markup)."""

    def show_record(self, record: str) -> None:
        """An event, as the JSON line the log gets."""

    def show_step(self, stage: str, step: int, steps: int, status: str) -> None:
        """A step's loss, learning rate and ETA (``status``): every ``interval`` seconds, or every step
        where ``live``."""
        self.show(f"  {stage} step {step:,}/{steps:,} ({step / steps:.0%})  {status}")

    @property
    def live(self) -> bool:
        """Whether every step is shown (a live bar), rather than one every ``interval`` seconds."""
        return False

    def close(self) -> None:
        """The run ends (finished or not)."""

    # -- the events ----------------------------------------------------------------------------------------
    def log_to(self, path: Path) -> None:
        self.log_path = path

    def _event(self, kind: str, **fields) -> None:
        record = json.dumps({"event": kind, "time": round(time.time(), 3), **fields})
        if self.log_path is not None:
            with open(self.log_path, "a") as handle:
                handle.write(record + "\n")
        self.show_record(record)

    def message(self, text: str) -> None:
        self.show(f"[dim]{text}[/dim]")
        self._event("log", message=text)

    def _due(self) -> bool:
        now = time.perf_counter()
        if now - self.last_shown < self.interval:
            return False
        self.last_shown = now
        return True

    def run_started(self, run: TrainingRun, where: str) -> None:
        self.total_steps = run.plan.steps * len(run.stages)
        names = " -> ".join(stage.name for stage in run.stages)
        self.show(f"[bold]nasface train[/bold] {run.spec.name} on {run.source.name} ({run.images:,} faces, "
                  f"{run.identities:,} identities) on {run.device.type}: {names}, {run.plan.steps:,} steps of "
                  f"{run.plan.batch_size} each, {where}; output {run.output}")
        if not run.val_pairs:
            self.show("[dim]no .bin verification files (recipe val_bins / --val-bin): no verification[/dim]")
        self._event("start", spec=run.spec.name, stages=[stage.name for stage in run.stages],
                    steps=run.plan.steps, where=where)

    def skipped(self, stage: str, steps: int) -> None:
        self.done_steps += steps
        self.show(f"  {stage}: already trained")

    def stage_started(self, stage: str, step: int, steps: int) -> None:
        self.done_steps += step

    def _eta_seconds(self) -> float | None:
        if not self.timed_steps:
            return None
        per_step = (time.perf_counter() - self.clock) / self.timed_steps
        return per_step * max(0, self.total_steps - self.done_steps)

    def stepped(self, stage: str, state: LoopState, plan: TrainingPlan) -> None:
        if self.clock is None:
            self.clock = time.perf_counter()
        else:
            self.timed_steps += 1
        self.done_steps += 1
        due = state.step == plan.steps or self._due()
        if not self.live and not due:
            return
        loss = float(np.mean(state.losses[-FINAL_LOSS_STEPS:]))
        lr = state.optimiser.param_groups[0]["lr"]
        eta = self._eta_seconds()
        self.show_step(stage, state.step, plan.steps, f"loss {loss:.3f}  lr {lr:.3g}  ETA {format_duration(eta)}")
        if not due:
            return
        self._event("step", stage=stage, step=state.step, steps=plan.steps, loss=loss, lr=lr,
                    eta_seconds=None if eta is None else round(eta, 1))

    def checkpointed(self, stage: str, step: int) -> None:
        self._event("checkpoint", stage=stage, step=step)

    def verified(self, stage: str, step: int, name: str, metrics: dict) -> None:
        self.show(f"  {stage} step {step:,}: {name} accuracy {metrics['accuracy']:.4f}")
        self._event("verification", stage=stage, step=step, bin=name, **metrics)

    def stage_finished(self, summary: dict) -> None:
        loss = "-" if summary["final_loss"] is None else f"{summary['final_loss']:.3f}"
        self.show(f"  [green]{summary['name']}[/green]: {summary['steps']:,} steps, final loss {loss}")
        self._event("stage_done", **summary)

    def finished(self, result: TrainingResult) -> None:
        self.close()
        self.show(f"wrote {result.weights} (spec {result.spec}) in {format_duration(result.wall_seconds)}")
        self._event("done", weights=str(result.weights), spec=str(result.spec))
