"""What a person (or a script) sees while ``nasface train`` runs: ``TrainingReporter``.

Kept apart from the training itself (``nasface.training.fulltrain``), which calls these hooks and nothing
else: a live bar on a terminal, a line every ``interval`` seconds in a log, or one JSON object per
event; every event also goes to the run's ``log.jsonl``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from nasface.core.errors import NasfaceError
from nasface.core.stages import format_duration
from nasface.ui.progress import StageDisplay

if TYPE_CHECKING:
    from nasface.training.fulltrain import TrainingPlan, TrainingResult, TrainingRun
    from nasface.train import LoopState

REPORT_MODES = ("rich", "quiet", "jsonl")
FINAL_LOSS_STEPS = 20  # a loss is reported as the mean over this many steps: one batch is noisy


class TrainingReporter:
    """Progress of a run: ``rich`` (a live bar on a terminal, a line every ``interval`` seconds
    otherwise), ``quiet``, or ``jsonl`` (one JSON object per event on stdout).

    Events (steps, verification, checkpoints, finished stages) also go to the run's ``log.jsonl``.
    """

    def __init__(self, mode: str = "rich", interval: float = 10.0):
        if mode not in REPORT_MODES:
            raise NasfaceError(f"unknown progress display {mode!r} (choose from {', '.join(REPORT_MODES)})")
        self.mode = mode
        self.interval = interval
        self.console = Console(highlight=False, soft_wrap=True)
        self.log_path: Path | None = None
        self.bar: Progress | None = None
        self.task = None
        self.last_shown = time.perf_counter()
        self.total_steps = 0
        self.done_steps = 0
        self.timed_steps = 0          # steps this process trained after its first (which pays for warm-up)
        self.clock: float | None = None
        self.stages = StageDisplay(mode, self.console, self._event, interval)  # decoding, a teacher's centres

    def log_to(self, path: Path) -> None:
        self.log_path = path

    def _event(self, kind: str, **fields) -> None:
        record = json.dumps({"event": kind, "time": round(time.time(), 3), **fields})
        if self.log_path is not None:
            with open(self.log_path, "a") as handle:
                handle.write(record + "\n")
        if self.mode == "jsonl":
            print(record, flush=True)

    def _print(self, text: str) -> None:
        if self.mode == "rich":
            self.console.print(text)

    def message(self, text: str) -> None:
        self._print(f"[dim]{text}[/dim]")
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
        self._print(f"[bold]nasface train[/bold] {run.spec.name} on {run.source.name} ({run.images:,} faces, "
                    f"{run.identities:,} identities) on {run.device.type}: {names}, {run.plan.steps:,} steps of "
                    f"{run.plan.batch_size} each, {where}; output {run.output}")
        if not run.val_pairs:
            self._print("[dim]no .bin verification files (recipe val_bins / --val-bin): no verification[/dim]")
        self._event("start", spec=run.spec.name, stages=[stage.name for stage in run.stages],
                    steps=run.plan.steps, where=where)

    def skipped(self, stage: str, steps: int) -> None:
        self.done_steps += steps
        self._print(f"  {stage}: already trained")

    def stage_started(self, stage: str, step: int, steps: int) -> None:
        self.done_steps += step
        if self.mode == "rich" and self.console.is_terminal:
            if self.bar is None:
                self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[status]}"), console=self.console)
                self.bar.start()
            self.task = self.bar.add_task(stage, total=steps, completed=step, status="")

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
        if self.bar is None and not due:
            return
        loss = float(np.mean(state.losses[-FINAL_LOSS_STEPS:]))
        lr = state.optimiser.param_groups[0]["lr"]
        eta = self._eta_seconds()
        status = f"loss {loss:.3f}  lr {lr:.3g}  ETA {format_duration(eta)}"
        if self.bar is not None:  # a live bar follows every step; the log gets a line now and then
            self.bar.update(self.task, completed=state.step, status=status)
        else:
            self._print(f"  {stage} step {state.step:,}/{plan.steps:,} ({state.step / plan.steps:.0%})  {status}")
        if not due:
            return
        self._event("step", stage=stage, step=state.step, steps=plan.steps, loss=loss, lr=lr,
                    eta_seconds=None if eta is None else round(eta, 1))

    def checkpointed(self, stage: str, step: int) -> None:
        self._event("checkpoint", stage=stage, step=step)

    def verified(self, stage: str, step: int, name: str, metrics: dict) -> None:
        self._print(f"  {stage} step {step:,}: {name} accuracy {metrics['accuracy']:.4f}")
        self._event("verification", stage=stage, step=step, bin=name, **metrics)

    def stage_finished(self, summary: dict) -> None:
        loss = "-" if summary["final_loss"] is None else f"{summary['final_loss']:.3f}"
        self._print(f"  [green]{summary['name']}[/green]: {summary['steps']:,} steps, final loss {loss}")
        self._event("stage_done", **summary)

    def finished(self, result: TrainingResult) -> None:
        self.close()
        self._print(f"wrote {result.weights} (spec {result.spec}) in {format_duration(result.wall_seconds)}")
        self._event("done", weights=str(result.weights), spec=str(result.spec))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
