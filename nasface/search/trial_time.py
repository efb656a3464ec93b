"""A trial's wall time before any has finished: timed on the seed networks, then corrected by the trials.

Training by FLOPs alone is not what a trial costs: on a CPU proxy much of a trial is the rest (building
the network, its zero-cost scores, embedding the held-out faces), and an estimate from training steps
alone was 4.4x low on a 40-step proxy at 32 px. So before the candidates the driver times each part of a
trial on the cheapest and the most expensive seed network of the space (``calibrate``: a few real
training steps, the real zero-cost scores and one batch of held-out faces), and ``TrialCostModel`` draws
a line in FLOPs through the two for each part. The search's time left
(``nasface.search.eta.Progress.eta_seconds``) is then the model's seconds of every trial still to run,
times the ratio of measured to modelled wall time of the trials finished in this run (before the first,
how the trials in training go against it; 1 before that), which folds in what the model cannot see (a
Ray worker's start, a machine busier than when it was timed).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from dataclasses import dataclass

import numpy as np

from nasface.data.base import PairSet
from nasface.arch.model import count
from nasface.arch.space import SearchSpace, cheapest_spec
from nasface.core.errors import NasfaceError
from nasface.search.config import SearchConfig
from nasface.search.study import baseline_presets
from nasface.training.evaluate import distinct_faces

CALIBRATION_STEPS = 4      # the first step allocates; the median of the others is a step's time
CALIBRATION_FACES = 128    # one evaluation batch of held-out faces


@dataclass(frozen=True)
class TrialTimes:
    """One network's trial, part by part: ``setup`` (build, zero-cost scores, optimiser), one training
    ``step``, and the evaluation on every held-out face (``evaluation``), in seconds."""

    flops: int
    setup: float
    step: float
    evaluation: float


@dataclass(frozen=True)
class TrialCostModel:
    """Each part of a trial as a line in FLOPs through the networks timed (with one, or two of the same
    FLOPs, each part is that network's)."""

    timed: tuple[TrialTimes, ...]

    def _part(self, name: str, flops: float) -> float:
        points = sorted(self.timed, key=lambda t: t.flops)
        low, high = points[0], points[-1]
        at_low, at_high = getattr(low, name), getattr(high, name)
        if high.flops == low.flops:
            return statistics.fmean(getattr(t, name) for t in points)
        slope = (at_high - at_low) / (high.flops - low.flops)
        # never below half the smaller timed value: noise can tilt the line down to zero or less
        return max(min(at_low, at_high) * 0.5, at_low + slope * (flops - low.flops))

    def setup_seconds(self, flops: float) -> float:
        return self._part("setup", flops)

    def step_seconds(self, flops: float) -> float:
        return self._part("step", flops)

    def evaluation_seconds(self, flops: float) -> float:
        return self._part("evaluation", flops)

    def seconds(self, flops: float, steps: int) -> float:
        """The wall time of a whole trial of ``steps`` steps of a network of ``flops`` FLOPs."""
        return self.setup_seconds(flops) + steps * self.step_seconds(flops) + self.evaluation_seconds(flops)

    def seconds_left(self, trial, correction: float) -> float:
        """What a trial in training (a ``nasface.search.live.LiveTrial``) still needs: its steps left at
        the rate its job reports (else the model's), its evaluation, and while it starts, the rest of
        its setup."""
        step = 1.0 / trial.steps_per_second if trial.steps_per_second else self.step_seconds(trial.flops) * correction
        left = max(0, trial.steps - trial.done) * step + self.evaluation_seconds(trial.flops) * correction
        if trial.phase == "starting":
            left += max(0.0, self.setup_seconds(trial.flops) * correction - (time.time() - trial.started))
        return left

    def measured_ratio(self, trial) -> float | None:
        """How much longer than modelled a trial in training will take as a whole (the ratio the finished
        trials give too): the modelled trial with what its job has measured put in, its steps at the
        rate it reports or, still starting past its modelled setup, that setup's overrun; None before
        either.  Whole-trial, not per part: a first setup running long (2.5x its modelled seconds on the
        README study's first baseline) once scaled every trial left by 2.5x and doubled the search's ETA."""
        modelled = self.seconds(trial.flops, trial.steps)
        if trial.steps_per_second:
            return (modelled + trial.steps * (1.0 / trial.steps_per_second - self.step_seconds(trial.flops))) / modelled
        overrun = time.time() - trial.started - self.setup_seconds(trial.flops)
        if trial.phase == "starting" and overrun > 0:
            return (modelled + overrun) / modelled
        return None


def calibration_pairs(pairs: PairSet, faces: int = CALIBRATION_FACES) -> tuple[PairSet, float]:
    """(a pair set of ``faces`` distinct held-out faces, how many times more distinct faces the whole
    set has): evaluation embeds each distinct face once, so its time scales with their number."""
    distinct, _ = distinct_faces(np.asarray(pairs.images))
    chosen = distinct[:faces - faces % 2]
    issame = np.arange(len(chosen) // 2) % 2 == 0
    return PairSet(np.asarray(pairs.images[np.sort(chosen)]), issame, "calibration"), len(distinct) / len(chosen)


def time_trial(spec, flops: int, data, proxy, pairs_scale: tuple[PairSet, float]) -> TrialTimes | None:
    """Time each part of the trial of ``spec`` (of ``flops`` FLOPs) on the proxy ``data`` (the real
    training and scoring, cut to ``CALIBRATION_STEPS`` steps and one batch of faces, then that batch
    twice more at the warm pace); None if it cannot train."""
    from nasface.training.evaluate import embed_pairs  # torch: not for the estimate's arithmetic
    from nasface.arch.spec import load_spec
    from nasface.training.proxy import build_student, score

    sample, scale = pairs_scale
    stamps: list[float] = []
    budget = dataclasses.replace(proxy, steps=CALIBRATION_STEPS, warmup_steps=None)
    try:
        result = score(spec, data.train, sample, budget, on_step=lambda state: stamps.append(time.perf_counter()))
    except (NasfaceError, RuntimeError, ValueError):  # e.g. too deep for the proxy's resolution
        return None
    if result["status"] != "ok" or len(stamps) < 2:
        return None
    step = statistics.median(np.diff(stamps))
    setup = max(0.0, result["wall_seconds"] - result["train_seconds"] - result["eval_seconds"])
    # the trial's first batch of faces is slow (new shapes); the others go at the warm pace, timed
    # on the same batch again
    model = build_student(load_spec(spec), budget.resolution)
    warm = []
    for _ in range(2):
        started = time.perf_counter()
        embed_pairs(model, sample, batch_size=CALIBRATION_FACES, device=budget.torch_device())
        warm.append(time.perf_counter() - started)
    evaluation = result["eval_seconds"] + min(warm) * (scale - 1.0)
    return TrialTimes(flops, setup, float(step), evaluation)


def calibrate(networks: list[tuple[object, int]], data, proxy, stages) -> TrialCostModel | None:
    """Time a trial of each of ``networks`` ((spec, FLOPs) pairs), a stage of ``stages``; None if none
    of them trains."""
    timed = []
    with stages.stage("timing a trial", len(networks), "networks") as stage:
        pairs_scale = calibration_pairs(data.pairs)
        for done, (spec, flops) in enumerate(networks, start=1):
            times = time_trial(spec, flops, data, proxy, pairs_scale)
            if times is not None:
                timed.append(times)
            stage.update(done)
    return TrialCostModel(tuple(timed)) if timed else None


def calibration_networks(space: SearchSpace, config: SearchConfig) -> list[tuple[object, int]]:
    """The cheapest and the most expensive seed network of the space, with their FLOPs (the space's
    cheapest network when it has none): what a trial's parts are timed on."""
    convention = config.budgets.convention
    seeds = sorted(((name, count(name, convention)["flops"]) for name in baseline_presets(space)),
                   key=lambda seed: seed[1])
    if not seeds:
        cheapest = cheapest_spec(space)
        return [(cheapest, count(cheapest, convention)["flops"])]
    return [seeds[0], seeds[-1]] if len(seeds) > 1 else seeds


def modelled_time_left(progress) -> float:
    """The search's seconds left by ``progress.model`` (a driver's ``Progress``): the trials in training,
    the baselines and promotions queued, and the candidates still to start at the expected FLOPs, each
    corrected by the finished trials' measured / modelled wall time (before one has finished, by the
    trials in training's), ``progress.parallel`` at a time."""
    model = progress.model
    live = dict(progress.live)  # a snapshot: the driver adds and removes trials
    if progress.finished_modelled > 0:
        correction = progress.finished_seconds / progress.finished_modelled
    else:  # before a trial has finished: how the trials in training go against the model, if known
        ratios = [ratio for ratio in (model.measured_ratio(trial) for trial in live.values()) if ratio]
        correction = statistics.fmean(ratios) if ratios else 1.0
    queued = progress.queued_waiting(live)
    to_start = progress.candidates_to_start(live)
    waiting = sum(model.seconds(flops, progress.proxy_steps) for flops in queued)
    if to_start:
        waiting += to_start * model.seconds(progress.expected_flops or 0.0, progress.proxy_steps)
    in_training = sum(model.seconds_left(trial, correction) for trial in live.values())
    return (in_training + waiting * correction) / progress.parallel
