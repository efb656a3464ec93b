"""Proxy scoring: a candidate trained briefly, measured at one or several step budgets of one run.

``score`` trains a candidate for the proxy budget and measures verification on identities it never
saw; ``score_budgets`` (a ``BudgetRun``) measures it at several budgets from one run, branching each
shorter one off the run's stable phase, and can continue a run from a kept state.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from nasface.arch.checkpoint import load_training_state, save_training_state
from nasface.data import FaceSet, PairSet
from nasface.core.errors import NasfaceError
from nasface.training.evaluate import embed_pairs, pair_metrics
from nasface.arch.model import count, learnt_structure
from nasface.training.signals import linear_cka, loss_signals, trivial_signals, zero_cost_signals
from nasface.arch.spec import ArchSpec, dump_spec, load_spec
from nasface.training.loop import (CandidateFailed, LoopState, loop_checkpoint, make_loop_state, restore_loop,
                                   train_loop)
from nasface.training.settings import ProxyBudget, TeacherTargets
from nasface.training.student import build_student


def score(spec: ArchSpec | str, train_set: FaceSet, pairs: PairSet, budget: ProxyBudget = ProxyBudget(),
          teacher: TeacherTargets | None = None, signals: bool = True,
          on_step: Callable[[LoopState], None] | None = None) -> dict:
    """Train ``spec`` briefly and measure verification on held-out pairs (``on_step`` is told of each
    training step, e.g. to show how far it is).

    Returns JSON-friendly metrics and, with ``signals``, every ranking signal of
    ``nasface.training.signals`` under ``signals``; a candidate that diverges or runs out of memory returns
    ``status: failed`` with the reason instead of raising.
    """
    return score_budgets(spec, train_set, pairs, budget, (budget.steps,), teacher, signals, on_step=on_step)[0]


def initial_signals(spec: ArchSpec, model: torch.nn.Module, train_set: FaceSet, budget: ProxyBudget) -> dict:
    """The zero-cost and trivial signals of the untrained ``model`` (built from ``spec`` under
    ``budget``'s seed), on the zero-cost batches of ``train_set`` that ``budget``'s seed draws."""
    found = zero_cost_signals(model, train_set.images, train_set.labels, train_set.num_identities,
                              spec.embedding.size, budget.resolution, budget.margin, budget.scale, budget.seed)
    return {**found, **trivial_signals(count(spec))}


def score_budgets(spec: ArchSpec | str, train_set: FaceSet, pairs: PairSet, budget: ProxyBudget,
                  steps: Sequence[int], teacher: TeacherTargets | None = None, signals: bool = True,
                  on_result: Callable[[dict], None] | None = None, resume_from: str | Path | None = None,
                  save_to: str | Path | None = None, yardstick: np.ndarray | None = None,
                  progress_file: str | Path | None = None, progress_seconds: float = 600.0,
                  on_step: Callable[[LoopState], None] | None = None) -> list[dict]:
    """``score`` at several step budgets of ``budget``'s recipe, from one training run.

    The run trains to the largest budget; each shorter one is a branch off its stable phase at
    that budget's cool-down, cooled down on a copy and measured.  Under the warm-up-stable-decay
    schedule with a fixed ``warmup_steps`` every branch is, bit for bit on a CPU, the run that
    budget would train on its own (the tests hold ``score`` at each budget against it).  The
    result of each budget, shortest first, is passed to ``on_result`` as soon as it is measured.
    ``train_seconds`` / ``cpu_seconds`` of a budget count what training it alone would cost: the
    shared steps up to its branch plus its own cool-down.

    Successive halving continues a promoted candidate rather than training it again: ``save_to``
    keeps the run's state at the longest budget's cool-down (its stable phase, which any longer
    budget shares), and ``resume_from`` starts from such a state, so the seconds counted are the
    new steps only.  A resumed run is the same run, bit for bit on a CPU, as one from the start.

    ``yardstick`` is a second teacher's flip-summed embeddings of the distinct held-out faces (a
    ``TeacherTargets.held_out``) that the run does not learn from; the student's agreement with it
    is the ``yardstick_cka`` signal.

    ``on_step`` is told of each step of the run's trunk (the longest budget's training).

    ``progress_file`` makes a long run survive a kill: the run keeps its whole state there (the
    loop, the budgets measured so far, the seconds spent) after each budget it measures and every
    ``progress_seconds`` of training, and a run that finds the file of this same run continues from
    it, bit for bit on a CPU the uninterrupted run, losing at most ``progress_seconds`` of work.
    A file of another run (another spec, recipe, seed or list of budgets) or an unreadable one is
    ignored and overwritten; the data and the teacher's targets are not checked, so the caller
    names the file by them too (``nasface.fidelity`` uses the log's row key, which holds both) and
    deletes it once the results are safe.
    """
    run = BudgetRun(spec, train_set, pairs, budget, steps, teacher, signals, yardstick)
    return run.run(on_result=on_result, on_step=on_step, resume_from=resume_from, save_to=save_to,
                   progress_file=progress_file, progress_seconds=progress_seconds)


class BudgetRun:
    """One training run of a candidate to the longest of ``steps``, measured at every budget on the way
    (``score_budgets`` says how).  What decides the results is given here; where the run keeps its
    state and whom it tells are given to ``run``, which is called once."""

    def __init__(self, spec: ArchSpec | str, train_set: FaceSet, pairs: PairSet, budget: ProxyBudget,
                 steps: Sequence[int], teacher: TeacherTargets | None = None, signals: bool = True,
                 yardstick: np.ndarray | None = None):
        self.spec = load_spec(spec)
        budget.check()
        self.steps = sorted(set(int(s) for s in steps))
        if not self.steps or self.steps[0] < 0:
            raise NasfaceError(f"step budgets must be 0 or more, got {self.steps}")
        self.longest = dataclasses.replace(budget, steps=self.steps[-1])
        self.longest.check()
        if len(self.steps) > 1 and budget.warmup_steps is None:
            raise NasfaceError("scoring several budgets from one run needs a fixed warmup_steps in the proxy budget")
        self.branch_budgets = [dataclasses.replace(budget, steps=s) for s in self.steps]
        for shorter in self.branch_budgets:
            shorter.check()  # its warm-up must fit before its own cool-down
        if teacher is not None and len(teacher.embeddings) != len(train_set.labels):
            raise NasfaceError(f"the teacher's cache holds {len(teacher.embeddings)} embeddings for "
                               f"{len(train_set.labels)} training images; rebuild it for this data")
        self.train_set, self.pairs, self.budget, self.teacher = train_set, pairs, budget, teacher
        self.signals, self.yardstick = signals, yardstick
        self.device = budget.torch_device()

    def run(self, on_result: Callable[[dict], None] | None = None,
            on_step: Callable[[LoopState], None] | None = None, resume_from: str | Path | None = None,
            save_to: str | Path | None = None, progress_file: str | Path | None = None,
            progress_seconds: float = 600.0) -> list[dict]:
        """The results of every budget, shortest first (a failed candidate's last one says why)."""
        spec, budget, train_set, device = self.spec, self.budget, self.train_set, self.device
        self.on_result, self.on_step = on_result, on_step
        self.progress_file, self.progress_seconds = progress_file, progress_seconds
        self.start = time.perf_counter()
        self.run_id = _run_identity(spec, budget, self.steps, self.teacher, self.yardstick, self.signals, resume_from)
        saved = self._saved_state(resume_from)
        torch.manual_seed(budget.seed)
        model = build_student(spec, budget.resolution)
        self.base = {"spec": spec.name, "status": "ok", "reason": None, "batch_size": budget.batch_size,
                     "resolution": budget.resolution, "device": device.type,
                     "distill": budget.distill if self.teacher is not None else "none"}
        self.found: dict = {}
        self.results: list[dict] = []
        self.clock = _Clock()
        if saved is not None:
            self._take_back(saved)
        elif self.signals:
            signal_start = time.perf_counter()
            self.found = initial_signals(spec, model, train_set, budget)
            self.base["zero_cost_seconds"] = time.perf_counter() - signal_start
        self.kept_at = time.perf_counter()
        try:
            state = make_loop_state(model, train_set.num_identities, spec.embedding.size, self.longest,
                                    self.teacher, device)
            if saved is not None:
                restore_loop(state, saved)
            self._train(state, save_to)
        except CandidateFailed as failure:
            return self._failed(str(failure))
        except (torch.cuda.OutOfMemoryError, MemoryError) as err:
            return self._failed(f"out of memory: {str(err).splitlines()[0][:200]}")
        return self.results

    def _saved_state(self, resume_from: str | Path | None) -> dict | None:
        """The state the run continues from: its own kept progress (``progress_file``: this run,
        killed), else ``resume_from`` (a lower rung's run, kept at its cool-down), else None."""
        progress = _read_progress(self.progress_file, self.run_id)
        if progress is not None or resume_from is None:
            return progress
        resumed = load_training_state(resume_from)
        if int(resumed["step"]) > min(b.schedule.decay_start for b in self.branch_budgets):
            raise NasfaceError(f"{resume_from}: its run is at step {int(resumed['step'])}, past the cool-down of the "
                               f"{self.steps[0]}-step budget; it cannot be continued to it")
        return resumed

    def _take_back(self, saved: dict) -> None:
        """What the saved run had measured (its signals at initialisation, which a run cannot
        measure again) and, where it is this run's own progress, its results and seconds spent."""
        self.found = dict(zip(saved["signal_names"], saved["signal_values"].tolist()))
        if "run" not in saved:  # another run's state: this one starts at its step
            self.base["resumed_at"] = int(saved["step"])
            return
        self.base = {**json.loads(saved["base"]), "continued_at": int(saved["step"])}
        self.results = json.loads(saved["results"])
        self.clock.wall, self.clock.cpu = saved["clock"].tolist()
        self.start -= float(saved["elapsed"])

    def _train(self, state: LoopState, save_to: str | Path | None) -> None:
        """The trunk to each shorter budget's cool-down, its branch cooled down on a copy and measured;
        then the trunk to the end (kept at its own cool-down in ``save_to``) and measured."""
        longest, train_set, teacher, device = self.longest, self.train_set, self.teacher, self.device
        for shorter in self.branch_budgets[len(self.results):-1]:  # a continued run measured the first ones already
            with self.clock:
                train_loop(state, train_set, longest, teacher, device, until=shorter.schedule.decay_start,
                           on_step=self._trunk_step)
            branch, own = copy.deepcopy(state), _Clock()
            with own:
                train_loop(branch, train_set, shorter, teacher, device)
            self._measure(branch, shorter, own)
            del branch
            if self.progress_file is not None:
                self._keep_progress(state)
        with self.clock:
            # past it, a continued run had kept this state before it was killed
            if save_to is not None and state.step <= longest.schedule.decay_start:
                train_loop(state, train_set, longest, teacher, device, until=longest.schedule.decay_start,
                           on_step=self._trunk_step)
                save_training_state(save_to, self._checkpoint(state))
            train_loop(state, train_set, longest, teacher, device, on_step=self._trunk_step)
        self._measure(state, longest, _Clock())

    def _measure(self, state: LoopState, shorter: ProxyBudget, own: _Clock) -> None:
        result = {**self.base, "steps": shorter.steps, "train_seconds": self.clock.wall + own.wall,
                  "cpu_seconds": self.clock.cpu + own.cpu}
        eval_start = time.perf_counter()
        faces, slot = embed_pairs(state.model, self.pairs, batch_size=128, device=self.device)
        metrics = pair_metrics(faces, slot, self.pairs.issame)
        final_losses = state.losses[-max(1, len(state.losses) // 10):]
        result.update(
            accuracy=metrics["accuracy"], accuracy_std=metrics["accuracy_std"], tar_at_far=metrics["tar_at_far"],
            far=metrics["far"], pairs=metrics["pairs"],
            final_loss=float(np.mean(final_losses)) if final_losses else None,
            images_per_second=shorter.steps * shorter.batch_size / result["train_seconds"] if shorter.steps else None,
            eval_seconds=time.perf_counter() - eval_start)
        if self.signals:
            measured = {**self.found, "accuracy": metrics["accuracy"], "tar_at_far": metrics["tar_at_far"],
                        **loss_signals(state.losses)}
            held_out = None if self.teacher is None else self.teacher.held_out
            if held_out is not None and len(held_out) == len(faces):
                measured["teacher_cka"] = linear_cka(faces, held_out)
            if self.yardstick is not None and len(self.yardstick) == len(faces):
                measured["yardstick_cka"] = linear_cka(faces, self.yardstick)
            result["signals"] = measured
        # what training decided that the deployed cost depends on (uneven FLGC groups cost more):
        # the search judges the budgets again on nasface.arch.model.deployed_cost
        result["learnt_structure"] = learnt_structure(state.model)
        result["wall_seconds"] = time.perf_counter() - self.start
        self.results.append(result)
        if self.on_result is not None:
            self.on_result(result)

    def _checkpoint(self, state: LoopState) -> dict:
        """The loop's state with the signals measured at initialisation: the run cannot remeasure them."""
        checkpoint = loop_checkpoint(state)
        checkpoint["signal_names"] = sorted(self.found)
        checkpoint["signal_values"] = torch.tensor([float(self.found[name]) for name in checkpoint["signal_names"]],
                                                   dtype=torch.float64)
        return checkpoint

    def _keep_progress(self, state: LoopState) -> None:
        checkpoint = self._checkpoint(state)
        checkpoint.update(run=self.run_id, base=json.dumps(self.base), results=json.dumps(self.results),
                          clock=torch.tensor(self.clock.reading(), dtype=torch.float64),
                          elapsed=time.perf_counter() - self.start)
        save_training_state(self.progress_file, checkpoint)
        self.kept_at = time.perf_counter()

    def _trunk_step(self, state: LoopState) -> None:
        if self.progress_file is not None and time.perf_counter() - self.kept_at >= self.progress_seconds:
            self._keep_progress(state)
        if self.on_step is not None:
            self.on_step(state)

    def _failed(self, reason: str) -> list[dict]:
        """The budgets measured, then the one the run failed on, with why."""
        return [*self.results, {**self.base, "steps": self.steps[len(self.results)], "status": "failed",
                                "reason": reason, "wall_seconds": time.perf_counter() - self.start}]


def _run_identity(spec: ArchSpec, budget: ProxyBudget, steps: list[int], teacher, yardstick, signals: bool,
                  resume_from) -> str:
    """What makes a kept progress file this run's: everything the results depend on."""
    return json.dumps({"spec": dump_spec(spec, "json", every_field=True), "budget": dataclasses.asdict(budget),
                       "steps": steps, "teacher": teacher is not None, "yardstick": yardstick is not None,
                       "signals": signals,
                       "resume_from": None if resume_from is None else str(resume_from)}, sort_keys=True, default=str)


def _read_progress(path: str | Path | None, run_id: str) -> dict | None:
    if path is None or not Path(path).is_file():
        return None
    try:
        progress = load_training_state(path)
    except NasfaceError:
        return None  # unreadable: the run starts again and overwrites it
    return progress if progress.get("run") == run_id else None


class _Clock:
    """Wall and CPU seconds spent inside ``with`` blocks, added up."""

    def __init__(self):
        self.wall = self.cpu = 0.0
        self._open = False

    def __enter__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        self._open = True
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = self.reading()
        self._open = False

    def reading(self) -> tuple[float, float]:
        """The totals so far, the block in progress included."""
        if not self._open:
            return self.wall, self.cpu
        return self.wall + time.perf_counter() - self._wall, self.cpu + time.process_time() - self._cpu
