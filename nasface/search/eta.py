"""How far a search has come: the driver's counts, its time left, and where its time went."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import optuna

from nasface.arch.model import count
from nasface.arch.space import SearchSpace
from nasface.core.stages import StageProgress
from nasface.search import record
from nasface.search.config import SearchConfig
from nasface.search.study import baseline_presets, waiting
from nasface.search.live import LiveTrial
from nasface.search.trial_time import TrialCostModel, modelled_time_left
from nasface.training.teacher import TEACHER_TRAINING


@dataclass
class Progress:
    """The driver's counts, its time left, and where its time went; ``trained`` counts every driver's
    candidates.

    The time left is the training work still queued, at the rate measured so far, ``parallel``
    trials at a time.  Work is steps x FLOPs (a step's time grows with the network's FLOPs): the steps
    left of the trials in training (``live``, as their jobs report them), the proxy's steps of each
    baseline or promotion waiting (``queued_flops``), and of each candidate still to start at
    ``expected_flops`` (the mean of the candidates trained so far; before one, of the seed networks
    within budget).  The rate, seconds per step per FLOP, is pooled over the trials finished in this
    run (their wall time, so zero-cost scores and evaluation count); before one has finished, taken
    from the steps of those in training; before that, from the teacher's steps (the same batches at
    the same resolution, ``teacher_flops`` a step); with none of these it is unknown.

    With a ``model`` (``nasface.search.trial_time``: each part of a trial timed on seed networks
    before the candidates) the time left is instead the model's seconds of each trial left, corrected
    by the finished trials' measured / modelled wall time (``finished_modelled``), so the first
    estimate already counts zero-cost scores and evaluation.
    """

    planned: int | None
    proxy_steps: int = 0
    parallel: int = 1
    trained: int = 0
    running: int = 0
    rejected: int = 0
    duplicates: int = 0
    failed: int = 0
    baselines: int = 0
    pareto: int | None = None                # the study's Pareto-optimal trials, as last counted
    queued_flops: dict[int, int] = field(default_factory=dict)  # trial number -> FLOPs
    expected_flops: float | None = None
    live: dict[int, LiveTrial] = field(default_factory=dict)
    finished_seconds: float = 0.0            # wall seconds of the trials finished in this run...
    finished_work: float = 0.0               # ...and their steps x FLOPs
    step_seconds: float | None = None        # one training step of the teacher, measured in this run
    teacher_flops: int | None = None
    started: float = field(default_factory=time.time)
    sections: dict[str, float] = field(default_factory=dict)   # data, teacher, candidates -> seconds
    interrupted: bool = False  # Ctrl-C ended the candidates
    doing: str = "checking the inputs"      # what the driver does now, for a line in a silent stretch
    model: TrialCostModel | None = None
    finished_modelled: float = 0.0           # the model's seconds for the trials finished in this run

    def finished(self, seconds: float, steps: int, flops: int) -> None:
        """A trial of ``steps`` steps of a ``flops`` network took ``seconds`` of wall time."""
        self.finished_seconds += seconds
        self.finished_work += steps * flops
        if self.model is not None:
            self.finished_modelled += self.model.seconds(flops, steps)

    def queued_waiting(self, live: dict[int, LiveTrial]) -> list[int]:
        """The FLOPs of each baseline or promotion queued and not yet in training."""
        return [flops for number, flops in self.queued_flops.items() if number not in live]

    def candidates_to_start(self, live: dict[int, LiveTrial]) -> int:
        return max(0, (self.planned or 0) - self.trained - sum(1 for trial in live.values() if not trial.baseline))

    def seconds_per_flop_step(self) -> float | None:
        if self.finished_work > 0:
            return self.finished_seconds / self.finished_work
        measured = [rate for rate in (trial.seconds_per_flop_step() for trial in list(self.live.values())) if rate]
        if measured:
            return sum(measured) / len(measured)
        if self.step_seconds and self.teacher_flops:
            return self.step_seconds / self.teacher_flops
        return None

    def work_left(self) -> float:
        """Steps x FLOPs still to train: the trials in training, those queued, the candidates to start."""
        live = dict(self.live)  # a snapshot: the driver adds and removes trials
        in_training = list(live.values())
        to_start = self.candidates_to_start(live)
        queued = sum(self.queued_waiting(live))
        return (sum(max(0, trial.steps - trial.done) * trial.flops for trial in in_training)
                + self.proxy_steps * (queued + to_start * (self.expected_flops or 0.0)))

    def eta_seconds(self) -> float | None:
        if self.planned is not None and self.model is not None:
            return modelled_time_left(self)
        rate = self.seconds_per_flop_step()
        if self.planned is None or rate is None:
            return None
        return self.work_left() * rate / self.parallel

    def eta_during(self, stage: StageProgress) -> float | None:
        """The search's time left while ``stage`` runs: the stage's own ETA, then the candidates'.

        While the teacher trains, its time per step so far is kept for the candidates' estimate.
        Unknown while the faces are rendered on a first run (no step has been timed yet); the
        teacher's embedding pass after its training (seconds) is left out."""
        if stage.name == TEACHER_TRAINING and stage.done:
            self.step_seconds = stage.seconds_per_unit()
        own, after = stage.eta_seconds(), self.eta_seconds()
        return None if own is None or after is None else own + after

    @contextmanager
    def section(self, name: str):
        """Add the time spent in the block to ``sections[name]``."""
        start = time.time()
        try:
            yield
        finally:
            self.sections[name] = self.sections.get(name, 0.0) + time.time() - start

    def where_the_time_went(self) -> dict[str, float]:
        """Each section's seconds, the rest (checking the inputs, opening the study, the summary) as
        ``other``, and ``total``."""
        total = time.time() - self.started
        return {**self.sections, "other": max(0.0, total - sum(self.sections.values())), "total": total}


def count_queued(progress: Progress, study: optuna.Study, space: SearchSpace, config: SearchConfig) -> None:
    """What the time left needs of the study: the FLOPs of the baselines and promotions waiting, and
    those a candidate is expected to have (the trained candidates' mean; before one, that of the
    seed networks of the space within budget, else the FLOPs budget)."""
    everything = record.records(study)
    convention = config.budgets.convention
    progress.queued_flops = {facts.number: count(facts.baseline, convention)["flops"] if facts.baseline
                             else everything[facts.promoted_from].cost["flops"] for facts in waiting(study)}
    trained = [facts.cost["flops"] for facts in everything if facts.kind == "candidate"]
    if not trained:
        seeds = [count(name, convention) for name in baseline_presets(space)]
        trained = [cost["flops"] for cost in seeds if not config.budgets.violations(cost)]
    if trained:
        progress.expected_flops = sum(trained) / len(trained)
    else:
        progress.expected_flops = config.budgets.flops
