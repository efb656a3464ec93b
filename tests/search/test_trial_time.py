"""The search's time left before any trial has finished: each part of a trial timed on seed networks
(``nasface.search.trial_time``), then corrected by the trials that finish.  Structure, not absolute times."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nasface.data.base import PairSet
from nasface.arch.model import count
from nasface.core.stages import Stages
from nasface.search import job
from nasface.search.eta import Progress
from nasface.search.trial_time import TrialCostModel, TrialTimes, calibrate, calibration_pairs, modelled_time_left
from nasface.search.live import LiveTrial
from nasface.training.settings import ProxyBudget
from tests.factories import TINY_DATA

SMALL = TrialTimes(flops=100, setup=3.0, step=0.1, evaluation=2.0)
BIG = TrialTimes(flops=300, setup=5.0, step=0.5, evaluation=6.0)
MODEL = TrialCostModel((BIG, SMALL))


def test_a_trial_is_its_setup_its_steps_and_its_evaluation_each_a_line_in_flops():
    assert MODEL.seconds(100, 10) == pytest.approx(3.0 + 10 * 0.1 + 2.0)
    assert MODEL.seconds(300, 10) == pytest.approx(5.0 + 10 * 0.5 + 6.0)
    assert MODEL.seconds(200, 10) == pytest.approx(4.0 + 10 * 0.3 + 4.0)  # halfway: each part halfway
    # a network far below the cheapest timed one keeps a share of its overhead (never 0 or less)
    assert MODEL.setup_seconds(0) > 0 and MODEL.evaluation_seconds(0) > 0 and MODEL.step_seconds(0) > 0
    alone = TrialCostModel((SMALL,))
    assert alone.seconds(5_000, 10) == alone.seconds(100, 10)  # one network timed: its parts, whatever the FLOPs


@given(st.floats(1, 1e4), st.floats(1, 1e4), st.integers(0, 1000), st.integers(0, 1000))
def test_more_flops_or_more_steps_never_cost_less(flops, more, steps, extra):
    model = TrialCostModel((SMALL, BIG))
    assert model.seconds(flops + more, steps) >= model.seconds(flops, steps) > 0
    assert model.seconds(flops, steps + extra) >= model.seconds(flops, steps)


def test_the_time_left_counts_every_trial_left_with_its_overhead_then_follows_the_measured_wall_time():
    progress = Progress(planned=2, proxy_steps=10, parallel=1, expected_flops=200, model=MODEL)
    progress.queued_flops = {0: 100, 1: 300}
    whole = MODEL.seconds(100, 10) + MODEL.seconds(300, 10) + 2 * MODEL.seconds(200, 10)
    assert progress.eta_seconds() == pytest.approx(whole)
    assert Progress(planned=2, proxy_steps=10, parallel=2, expected_flops=200, model=MODEL,
                    queued_flops={0: 100, 1: 300}).eta_seconds() == pytest.approx(whole / 2)

    # trial 0 in training, 4 of 10 steps done at 10 steps/s (as modelled): its steps left at that rate,
    # then its evaluation
    progress.live[0] = LiveTrial(number=0, label="baseline a", flops=100, steps=10, baseline=True,
                                 started=time.time(), phase="training", done=4, steps_per_second=10.0)
    after = MODEL.seconds(300, 10) + 2 * MODEL.seconds(200, 10)
    assert progress.eta_seconds() == pytest.approx(6 / 10.0 + MODEL.evaluation_seconds(100) + after)

    # it finished at twice what the model said: everything left is corrected by that ratio
    progress.live.clear()
    progress.queued_flops = {1: 300}
    progress.finished(seconds=2 * MODEL.seconds(100, 10), steps=10, flops=100)
    assert progress.eta_seconds() == pytest.approx(2 * after)
    assert modelled_time_left(progress) == progress.eta_seconds()


def test_before_any_trial_finishes_the_trials_in_training_correct_the_estimate_of_the_others():
    progress = Progress(planned=1, proxy_steps=10, model=MODEL, expected_flops=100, queued_flops={1: 300})
    waiting = MODEL.seconds(300, 10) + MODEL.seconds(100, 10)
    whole = MODEL.seconds(100, 10)  # 3 s setup, 10 steps of 0.1 s, 2 s evaluation
    # training at half the modelled step rate: the trial takes 1 s more than its modelled 6 s, and
    # the trials waiting are taken to go that much slower, as a finished trial's ratio would say
    progress.live[0] = LiveTrial(number=0, label="baseline a", flops=100, steps=10, baseline=True,
                                 started=time.time(), phase="training", done=5, steps_per_second=5.0)
    ratio = (whole + 10 * (0.2 - 0.1)) / whole
    assert MODEL.measured_ratio(progress.live[0]) == pytest.approx(ratio)
    assert progress.eta_seconds() == pytest.approx(5 / 5.0 + ratio * MODEL.evaluation_seconds(100) + ratio * waiting)
    # still starting, 9 s into a modelled 3 s setup: the trial is at least 6 s longer than modelled
    progress.live[0] = LiveTrial(number=0, label="baseline a", flops=100, steps=10, baseline=True,
                                 started=time.time() - 9.0, phase="starting")
    assert MODEL.measured_ratio(progress.live[0]) == pytest.approx((whole + 6.0) / whole, rel=0.05)
    assert progress.eta_seconds() == pytest.approx(2 * (10 * 0.1 + 2.0) + 2 * waiting, rel=0.05)
    # starting within its modelled setup: nothing measured yet
    progress.live[0].started = time.time()
    assert MODEL.measured_ratio(progress.live[0]) is None


@given(st.floats(0.5, 1e3), st.integers(1, 10_000), st.floats(0.01, 100.0))
def test_a_slow_part_of_one_trial_scales_the_others_by_what_it_adds_to_that_trial_not_by_its_own_ratio(
        overrun, steps, steps_per_second):
    """A setup running long early in a run (the first one warms the caches) once scaled every trial
    left by the setup's own overrun ratio: the README study's ETA jumped from 17 to 33 minutes and
    back within a minute.  The correction is the trial's whole measured-to-modelled ratio."""
    starting = LiveTrial(number=0, label="trial 0", flops=300, steps=steps, baseline=False,
                         started=time.time() - MODEL.setup_seconds(300) - overrun, phase="starting")
    whole = MODEL.seconds(300, steps)
    assert MODEL.measured_ratio(starting) == pytest.approx((whole + overrun) / whole, rel=1e-3, abs=1e-3)
    training = LiveTrial(number=0, label="trial 0", flops=300, steps=steps, baseline=False,
                         started=time.time(), phase="training", done=1, steps_per_second=steps_per_second)
    step_ratio = 1.0 / steps_per_second / MODEL.step_seconds(300)
    ratio = MODEL.measured_ratio(training)
    assert min(1.0, step_ratio) <= ratio * (1 + 1e-9) and ratio <= max(1.0, step_ratio) * (1 + 1e-9)


def test_a_starting_trial_still_owes_the_rest_of_its_setup():
    progress = Progress(planned=0, proxy_steps=10, model=MODEL)
    progress.live[0] = LiveTrial(number=0, label="baseline a", flops=100, steps=10, baseline=True,
                                 started=time.time() - 1.0, phase="starting")
    left = progress.eta_seconds()
    assert MODEL.seconds(100, 10) - 1.0 - 0.5 <= left <= MODEL.seconds(100, 10) - 1.0 + 0.01


def test_evaluation_is_timed_on_one_batch_and_scaled_by_the_distinct_faces():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 255, (40, 112, 112, 3), dtype=np.uint8)
    images = faces[rng.integers(0, 40, 400)]  # 200 pairs drawn from 40 faces, as pairs reuse faces
    images[:40] = faces  # every face appears
    sample, scale = calibration_pairs(PairSet(images, np.zeros(200, bool), "p"), faces=16)
    assert len(sample.images) == 16 and len({image.tobytes() for image in sample.images}) == 16
    assert scale == pytest.approx(40 / 16)


def test_calibration_times_each_part_of_a_real_trial(tmp_path):
    data = job.load_proxy_data(job.DataSettings(source="synthetic", **TINY_DATA), 0, tmp_path / "cache")
    proxy = ProxyBudget(steps=3, batch_size=8, resolution=32, device="cpu")
    flops = count("mobiface")["flops"]
    model = calibrate([("mobiface", flops)], data, proxy, Stages())
    (times,) = model.timed
    assert times.flops == flops and times.setup > 0 and times.step > 0 and times.evaluation > 0
    assert model.seconds(flops, 10) == pytest.approx(times.setup + 10 * times.step + times.evaluation)
