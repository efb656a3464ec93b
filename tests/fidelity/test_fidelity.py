"""The warm-up-stable-decay schedule, scoring several budgets from one run, and ``nasface fidelity``
end to end with real training: its log, its analysis, and a kill in the middle."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from nasface.arch.checkpoint import load_training_state, save_training_state
from nasface.core.errors import NasfaceError
from nasface.fidelity import (FidelitySettings, best_signal, by_size_text, fidelity_sentence, interleave,
                              measured_fidelity, modelled_text, run_fidelity, run_plan, second_seed_subset,
                              shortest_trusted_budget, teacher_digest)
from nasface.fidelity.analysis import _like_for_like, _noise_ceiling, _versus_score
from nasface.fidelity.choice import _spread_order
from nasface.fidelity.report import (Best, FidelityReport, MeasuredFidelity, NoiseCeiling, ShortestTrusted,
                                    UnmeasuredSignal)
from nasface.core.ranking import (budget_regret, loo_combination, modelled_ceiling, rank_agreement, strata_of, stratified_tau, top_recall)
from nasface.ui.progress import Reporter
from nasface.ui.study_page import write_report
from nasface.search import config_from_options, run_search
from nasface.search.job import payload_base, run_candidate
from nasface.training.proxy import score, score_budgets
from nasface.training.settings import ProxyBudget, TeacherTargets, WarmupStableDecay
from nasface.ui.fidelity_page import write_page
from tests.killing import killed_then_finished
from tests.factories import REPO, SMALL_NET, TINY_BUDGET
TINY = {"budget_flops": "150M", "budget_mem": "4MB", "teacher": "none", "proxy_steps": 4, "proxy_batch": 8,
        "resolution": 32, "train_identities": 12, "images_per_identity": 4, "val_identities": 8, "pairs": 80,
        "device": "cpu", "seed": 0}
TINY_ARGS = ["--budget-flops", "150M", "--budget-mem", "4MB", "--teacher", "none", "--proxy-steps", "4",
             "--proxy-batch", "8", "--resolution", "32", "--train-identities", "12", "--val-identities", "8",
             "--pairs", "80", "--device", "cpu", "--archs", "8", "--no-presets", "--factors", "0.5,1,2",
             "--second-seeds", "4", "--bootstrap", "100", "--threads", "1"]


def test_warmup_stable_decay_by_hand():
    schedule = WarmupStableDecay(steps=10, warmup_steps=2, cooldown_steps=4)
    rates = [schedule.learning_rate(step, 1.0) for step in range(10)]
    assert rates == pytest.approx([0.5, 1, 1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2])
    # the default proxy: a tenth of warm-up, a fifth of cool-down
    assert (ProxyBudget(steps=120).schedule.warmup_steps, ProxyBudget(steps=120).schedule.decay_start) == (12, 96)


def test_each_budget_of_one_run_is_the_run_that_budget_trains_alone(small_data):  # noqa: F811
    budget = dataclasses.replace(TINY_BUDGET, steps=4, warmup_steps=1)
    many = score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [2, 4, 8])
    assert [r["steps"] for r in many] == [2, 4, 8]
    for result in many:
        alone = score(SMALL_NET, small_data.train, small_data.pairs, dataclasses.replace(budget, steps=result["steps"]))
        assert alone["accuracy"] == result["accuracy"]
        assert alone["signals"] == result["signals"]  # the whole loss trajectory, bit for bit
    # a budget alone costs at least its own steps, and the longest includes the shared run
    assert many[0]["cpu_seconds"] <= many[-1]["cpu_seconds"]


def test_a_run_continued_from_its_stable_phase_is_the_run_trained_from_the_start(small_data, tmp_path):  # noqa: F811
    """Successive halving's promotion: rung 4 saved at its cool-down, continued to 8 steps, then to 12."""
    budget = dataclasses.replace(TINY_BUDGET, warmup_steps=1)
    kept, kept_again = tmp_path / "rung0.pt", tmp_path / "rung1.pt"
    first = score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [4], save_to=kept)[0]
    assert first == {**first, "steps": 4, "status": "ok"} and kept.is_file()
    second = score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [8], resume_from=kept,
                           save_to=kept_again)[0]
    third = score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [12], resume_from=kept_again)[0]
    for continued in (second, third):
        alone = score(SMALL_NET, small_data.train, small_data.pairs, dataclasses.replace(budget,
                                                                                         steps=continued["steps"]))
        assert continued["accuracy"] == alone["accuracy"]
        assert continued["signals"] == alone["signals"]  # zero-cost ones carried over, the loss trajectory whole
    assert second["resumed_at"] == 3 and third["resumed_at"] == 6  # the cool-downs of 4 and 8 steps
    with pytest.raises(NasfaceError, match="past the cool-down of the 4-step budget"):
        score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [4], resume_from=kept_again)


class Killed(Exception):
    """Stands for the kill of a worker in the middle of a run."""


def _without_times(results: list[dict]) -> list[dict]:
    timed = ("train_seconds", "cpu_seconds", "wall_seconds", "eval_seconds", "images_per_second",
             "zero_cost_seconds", "continued_at")
    return [{k: v for k, v in json.loads(json.dumps(r)).items() if k not in timed} for r in results]


def test_a_run_killed_in_the_middle_continues_from_its_progress_file_bit_for_bit(small_data, tmp_path):  # noqa: F811
    """Kept at every step (progress_seconds 0): killed as the 8-step budget is measured, the run
    continues from the last step it kept, inside the trunk, and ends as the uninterrupted run."""
    budget = dataclasses.replace(TINY_BUDGET, warmup_steps=1)
    whole = score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [4, 8, 12])
    progress = tmp_path / "run.pt"

    def kill_at_eight(result):
        if result["steps"] == 8:
            raise Killed

    with pytest.raises(Killed):
        score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [4, 8, 12], on_result=kill_at_eight,
                      progress_file=progress, progress_seconds=0)
    assert progress.is_file()
    spent_before = load_training_state(progress)["clock"].tolist()[1]  # CPU seconds of the trunk, 6 steps
    continued = score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [4, 8, 12],
                              progress_file=progress, progress_seconds=0)
    assert _without_times(continued) == _without_times(whole)
    # it had kept step 6 (the 8-step budget's cool-down starts there) and the 4-step budget's result
    assert [r.get("continued_at") for r in continued] == [None, 6, 6]
    assert continued[1]["cpu_seconds"] >= spent_before > 0  # the seconds spent before the kill still count
    # and it went on from the kept weights, not from a new start (which would end the same, slower):
    # the same file with its weights halved continues to other results
    kept = load_training_state(progress)
    assert int(kept["step"]) == 12  # kept at the last step, before its measure
    kept["model"] = {name: value * 0.5 if value.is_floating_point() else value for name, value in kept["model"].items()}
    save_training_state(progress, kept)
    tampered = score_budgets(SMALL_NET, small_data.train, small_data.pairs, budget, [4, 8, 12],
                             progress_file=progress, progress_seconds=0)
    assert tampered[-1]["accuracy"] != whole[-1]["accuracy"] or tampered[-1]["signals"] != whole[-1]["signals"]
    # another run's progress (another seed) is not taken for this one's
    other = dataclasses.replace(budget, seed=budget.seed + 1)
    alone = score_budgets(SMALL_NET, small_data.train, small_data.pairs, other, [4, 8, 12])
    ignored = score_budgets(SMALL_NET, small_data.train, small_data.pairs, other, [4, 8, 12], progress_file=progress)
    assert _without_times(ignored) == _without_times(alone) and "continued_at" not in ignored[-1]
    progress.write_bytes(b"not a checkpoint")  # unreadable: the run starts again
    again = score_budgets(SMALL_NET, small_data.train, small_data.pairs, other, [4, 8, 12], progress_file=progress)
    assert _without_times(again) == _without_times(alone)


def test_agreement_with_a_yardstick_is_linear_cka_whatever_its_basis(small_data):  # noqa: F811
    """teacher_cka and yardstick_cka on a hand-made teacher: the same embeddings give the same
    value, an orthogonal change of basis and a scale leave it (CKA's invariances), another does not."""
    from nasface.training.evaluate import distinct_faces
    from nasface.training.teacher import mean_centres

    rng = np.random.default_rng(0)
    train, pairs = small_data.train, small_data.pairs
    embeddings = rng.normal(size=(len(train.labels), 16)).astype(np.float32)
    held_out = rng.normal(size=(len(distinct_faces(np.asarray(pairs.images))[0]), 16)).astype(np.float32)
    teacher = TeacherTargets(embeddings=embeddings, flipped=embeddings[:, ::-1].copy(), held_out=held_out,
                             centres=mean_centres(embeddings, np.asarray(train.labels), train.num_identities))
    rotation = np.linalg.qr(rng.normal(size=(16, 16)))[0]
    budget = dataclasses.replace(TINY_BUDGET, steps=4, warmup_steps=1)
    for yardstick, same in ((held_out, True), (3.0 * held_out @ rotation, True),
                            (rng.normal(size=held_out.shape), False)):
        signals = score_budgets(SMALL_NET, train, pairs, budget, [4], teacher, yardstick=yardstick)[0]["signals"]
        assert 0 < signals["teacher_cka"] <= 1 and 0 <= signals["yardstick_cka"] <= 1
        assert (signals["yardstick_cka"] == pytest.approx(signals["teacher_cka"], rel=1e-5)) is same
    # a yardstick of other faces (not one row per held-out face) is not measured against
    assert "yardstick_cka" not in score_budgets(SMALL_NET, train, pairs, budget, [4], teacher,
                                                yardstick=held_out[:-1])[0]["signals"]


def test_rank_tools_on_known_cases():
    reference = np.arange(20.0)
    assert top_recall(reference, reference) == 1.0
    assert top_recall(-reference, reference) == 0.0    # its ten best are the reference's ten worst
    assert top_recall(np.r_[reference[:15], -reference[15:]], reference) == 0.0
    reference = np.arange(10.0)
    groups = strata_of(reference, 2)
    assert [g.tolist() for g in groups] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    within = stratified_tau(reference, reference, groups, resamples=50)
    assert within["per_stratum"] == pytest.approx([1.0, 1.0]) and within["mean_tau"] == pytest.approx(1.0)
    # one signal that is the reference plus noise, one that is noise: the combination leans on the first
    rng = np.random.default_rng(0)
    truth = rng.normal(size=30)
    combined = loo_combination({"good": truth + 0.1 * rng.normal(size=30), "noise": rng.normal(size=30)}, truth)
    assert combined["weights"]["good"] > 5 * abs(combined["weights"]["noise"])
    assert np.corrcoef(combined["predictions"], truth)[0, 1] > 0.9


def test_the_modelled_noise_ceiling_on_known_cases():
    """No seed noise: a second seed ranks exactly as the first (tau 1).  Gaussian noise far above
    the spread: no agreement left (tau about 0).  Drawn from the pairs instead, four of five
    networks exact and one 50 points off: only that fifth's pairs lose their order, so tau is
    about 0.8^2 (both exact) + 0.2^2 / 2 (both off, the same way) = 0.66, where a Gaussian of the
    same spread drowns every network."""
    reference = np.linspace(0.7, 0.9, 30)
    for noise in ("empirical", "gaussian"):
        exact = modelled_ceiling(reference, np.zeros(5), resamples=200, noise=noise)
        assert exact["tau"] == 1.0 and exact["ci"] == [1.0, 1.0] and exact["sigma"] == 0.0
        assert exact["pairs"] == 5 and exact["architectures"] == 30 and exact["noise"] == noise
    drowned = modelled_ceiling(reference, np.full(5, 50.0), resamples=200, noise="gaussian")
    assert abs(drowned["tau"]) < 0.05 and drowned["sigma"] == pytest.approx(50 / np.sqrt(2))
    one_unstable = np.array([0.0, 0.0, 0.0, 0.0, 50.0])
    assert modelled_ceiling(reference, one_unstable, resamples=2000)["tau"] == pytest.approx(0.66, abs=0.03)
    assert abs(modelled_ceiling(reference, one_unstable, resamples=500, noise="gaussian")["tau"]) < 0.1
    with pytest.raises(ValueError, match="'empirical' or 'gaussian'"):
        modelled_ceiling(reference, one_unstable, noise="laplace")


def test_the_modelled_noise_ceiling_with_a_seed_noise_per_group():
    """Five small networks without seed noise, five large ones 50 points off.  Gaussian: only the
    ten pairs among the small ones keep their order, tau about 10 / 45.  Drawn from the pairs (all
    50 points, random signs): so do the large ones' pairs moved the same way, half of the ten,
    tau about 15 / 45.  One group for all is the common model."""
    reference = np.linspace(0.7, 0.9, 10)
    arch_groups, pair_groups = [0] * 5 + [1] * 5, [0, 0, 0, 1, 1, 1]
    differences = np.array([0.0, 0.0, 0.0, 50.0, -50.0, 50.0])
    for noise, expected in (("gaussian", 10 / 45), ("empirical", 15 / 45)):
        split = modelled_ceiling(reference, differences, resamples=2000, arch_groups=arch_groups,
                                 pair_groups=pair_groups, noise=noise)
        assert split["tau"] == pytest.approx(expected, abs=0.03)
        assert split["sigmas"] == pytest.approx({"0": 0.0, "1": 50 / np.sqrt(2)})
        assert split["group_pairs"] == {"0": 3, "1": 3}
        common = modelled_ceiling(reference, differences, resamples=300, seed=4, noise=noise)
        assert modelled_ceiling(reference, differences, resamples=300, seed=4, arch_groups=[7] * 10,
                                pair_groups=[7] * 6, noise=noise) == common
    with pytest.raises(ValueError, match="needs seed pairs of its own"):
        modelled_ceiling(reference, differences, arch_groups=[0] * 5 + [2] * 5, pair_groups=pair_groups)


def test_the_noise_ceiling_gives_each_flops_half_its_sigma_once_each_has_three_pairs():
    """Ten architectures logged by hand (1M ... 10M FLOPs), the six largest trained twice: the small
    ones differ by 0.2 points between seeds, the large ones by 2.  Split at the pairs' median FLOPs."""
    flops = [10 ** 6 * (i + 1) for i in range(10)]

    def row(i, accuracy):
        return {"cost": {"flops": flops[i]}, "results": [{"steps": s, "status": "ok", "accuracy": accuracy}
                                                         for s in (4, 8)]}
    by_arch = {(f"a{i}", 0): row(i, 0.8 + 0.01 * i) for i in range(10)}
    repeated = [SimpleNamespace(name=f"a{i}") for i in range(4, 10)]
    for i in range(4, 10):
        by_arch[(f"a{i}", 1)] = row(i, 0.8 + 0.01 * i - (0.002 if i < 7 else 0.02))
    settings = SimpleNamespace(reference_steps=8, proxy_steps=4)
    reference = np.array([0.8 + 0.01 * i for i in range(10)])
    ceiling = _noise_ceiling(by_arch, repeated, 0, settings, 200, reference, np.array(flops, float))
    by_size = ceiling.modelled_by_size
    assert by_size.split_flops == 7.5e6 and by_size.group_pairs == [3, 3]
    assert by_size.group_architectures == [7, 3]  # 1M ... 7M, and 8M ... 10M
    assert by_size.sigmas == pytest.approx([0.002 / np.sqrt(2), 0.02 / np.sqrt(2)])
    assert ceiling.modelled.sigma == pytest.approx(np.sqrt((0.002 ** 2 + 0.02 ** 2) / 4))
    assert "(up to 8M FLOPs sigma 0.14 points from 3 pairs, above 1.41 from 3)" in by_size_text(by_size)
    assert ceiling.modelled.noise == "empirical" and -1 <= ceiling.modelled.gaussian.tau <= 1
    assert "(each a seed-to-seed difference drawn from the 6 pairs)" in modelled_text(ceiling.modelled)
    assert "as Gaussian noise of the same spread (sigma 1.00 points)" in modelled_text(ceiling.modelled)
    del by_arch[("a9", 1)]  # two pairs left above: too few for a sigma of their own
    assert _noise_ceiling(by_arch, repeated, 0, settings, 200, reference,
                          np.array(flops, float)).modelled_by_size is None


def test_expected_run_seconds_follow_a_power_law_of_flops_fitted_to_the_log(tmp_path):
    """Logged runs whose CPU seconds grow as the square root of FLOPs: a run of 4x the FLOPs is
    expected to take 2x.  With fewer than three sizes logged, FLOPs themselves are the weights."""
    from nasface.core.atomic import RowLog
    from nasface.fidelity import FILL, expected_run_seconds

    rows = RowLog(tmp_path / "log.jsonl")
    assert expected_run_seconds([1e6, 4e6], rows) == [1e6, 4e6]
    for index, flops in enumerate((1e6, 4e6, 16e6, 16e6)):
        rows.add(f"run{index}", {"cost": {"flops": flops}, "results": [{"status": "ok", "cpu_seconds": 3 * flops ** 0.5}]})
    rows.add(f"{FILL}:x:run0", {"cost": {"flops": 1e9}, "results": [{"status": "ok", "cpu_seconds": 1.0}]})
    rows.add("failed", {"cost": {"flops": 1e9}, "results": [{"status": "failed", "cpu_seconds": 1.0}]})
    expected = expected_run_seconds([1e8, 4e8], rows)
    assert expected == pytest.approx([3e4, 6e4])  # a fill or a failed run is no run's cost


@pytest.mark.slow
def test_a_timeout_starts_only_the_runs_expected_to_end_within_it(tmp_path, caplog):
    """Runs logged beforehand (under other keys) say a run takes 10 s x (FLOPs / 30M)^20 of wall time:
    with ten minutes, the runs under 30M FLOPs start (at most 15 s with the margin) and those over
    39M do not (at least 3000 s).  Then no time at all: nothing more is trained, and the analysis is
    still written.  Without a timeout the same command trains the rest."""
    from nasface.core.atomic import RowLog

    settings = FidelitySettings(search=config_from_options(TINY), architectures=8, presets=False,
                                factors=(0.5, 1.0, 2.0), second_seeds=4, bootstrap=100)
    out = tmp_path / "f"
    out.mkdir()
    logged_before = RowLog(out / "log.jsonl")
    for flops in (10e6, 20e6, 40e6, 80e6):
        wall = 10 * (flops / 30e6) ** 20
        logged_before.add(f"other-{flops:.0f}", {"cost": {"flops": flops},
                                                 "results": [{"status": "ok", "wall_seconds": wall, "cpu_seconds": wall}]})
    caplog.set_level(logging.INFO, logger="nasface")
    run_fidelity(settings, out, timeout=600)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    trained = {(row["arch"], row["cost"]["flops"]) for row in rows if not row["key"].startswith("other-")}
    sizes = {spec_flops for _, spec_flops in trained}
    assert max(sizes) < 39e6 and len(trained) >= 3  # arch-00, arch-01, arch-02 (16M, 23M, 29M)
    assert any(m.startswith("--timeout: ") and "runs not started" in m for m in caplog.messages)
    before = (out / "log.jsonl").read_bytes()
    report = run_fidelity(settings, out, timeout=1e-6)
    assert (out / "log.jsonl").read_bytes() == before and report.measured == len({a for a, _ in trained})
    assert (out / "fidelity.json").is_file()
    final = run_fidelity(settings, out)
    assert final.measured == 8


def test_the_timeout_expects_the_logs_law_at_this_processs_own_pace():
    from nasface.fidelity import TIMEOUT_MARGIN, expected_wall_seconds

    assert expected_wall_seconds(100.0, []) == TIMEOUT_MARGIN * 100  # no run of its own yet: the law
    assert expected_wall_seconds(100.0, [0.5, 0.4, 0.6]) == pytest.approx(TIMEOUT_MARGIN * 50)  # twice as fast
    assert expected_wall_seconds(100.0, [10.0]) == TIMEOUT_MARGIN * 400  # at most 4x the law either way
    assert expected_wall_seconds(100.0, [0.01], part_left=0.5) == TIMEOUT_MARGIN * 12.5


def test_theil_sen_is_not_tilted_by_a_few_outliers():
    from nasface.fidelity import theil_sen

    x = np.log(np.geomspace(1e7, 1e9, 12))
    y = 0.8 * x - 5
    y[[1, 4]] += np.log(4)  # two runs of a machine 4x slower
    assert theil_sen(x, y) == pytest.approx((0.8, -5))
    assert np.polyfit(x, y, 1)[0] != pytest.approx(0.8, abs=0.01)  # least squares is


def test_a_run_that_kept_its_progress_is_expected_to_take_only_the_part_left(tmp_path):
    from nasface.fidelity.walltime import _part_left

    kept = tmp_path / "run.pt"
    assert _part_left(kept, 960) == 1.0  # none kept
    save_training_state(kept, {"step": 240})
    assert _part_left(kept, 960) == 0.75
    kept.write_bytes(b"torn")
    assert _part_left(kept, 960) == 1.0  # unreadable: the run starts again


def test_the_modelled_noise_ceiling_predicts_seed_to_seed_tau_over_all_architectures():
    """Simulated studies: 40 architectures trained with two seeds (accuracies 0.70-0.90), of which
    only 12 are known twice.  Gaussian seed noise of 1 point: both models match the actual
    seed-to-seed tau over all 40 (mean error under 0.03; they read a little high, as documented)
    and their intervals cover it in most studies.  Heavy-tailed noise (12 % of the networks 13x
    noisier, as one unstable network in a few): the model drawn from the pairs errs less than the
    Gaussian one, which spreads the unstable networks' noise over all."""
    errors: dict = {}
    for tails in ("gaussian", "heavy"):
        rng = np.random.default_rng(3)
        for study in range(30):
            truth = rng.uniform(0.70, 0.90, 40)
            spread = 0.01 if tails == "gaussian" else np.where(rng.random(40) < 0.12, 0.04, 0.003)
            first, second = truth + rng.normal(0, 1, 40) * spread, truth + rng.normal(0, 1, 40) * spread
            actual = rank_agreement(first, second, 0)["tau"]
            for noise in ("empirical", "gaussian"):
                modelled = modelled_ceiling(first, (first - second)[:12], resamples=400, seed=study, noise=noise)
                found = errors.setdefault((tails, noise), {"errors": [], "covered": 0})
                found["errors"].append(modelled["tau"] - actual)
                found["covered"] += modelled["ci"][0] <= actual <= modelled["ci"][1]
    for noise in ("empirical", "gaussian"):
        found = errors[("gaussian", noise)]
        assert abs(np.mean(found["errors"])) < 0.03 and np.std(found["errors"]) < 0.05
        assert found["covered"] >= 24
    heavy_empirical, heavy_gaussian = errors[("heavy", "empirical")]["errors"], errors[("heavy", "gaussian")]["errors"]
    assert np.sqrt(np.mean(np.square(heavy_empirical))) < 0.7 * np.sqrt(np.mean(np.square(heavy_gaussian)))


def test_budget_regret_by_hand():
    """Three architectures of cost 1, 2, 3 whose reference accuracy is 0.5, 0.9, 0.7.  A signal that
    puts the 0.9 first loses nothing; one that puts the 0.5 first loses 0.4 at budgets 2 and 3 (mean
    0.8 / 3); a tie between the 0.5 and the 0.9 is a fair draw, 0.2 at budgets 2 and 3.  A random pick
    loses 0.9 - 0.7 at budget 2 and 0.9 - 0.7 at budget 3."""
    costs, reference = [1, 2, 3], [0.5, 0.9, 0.7]
    right = budget_regret([0.1, 0.3, 0.2], reference, costs)
    assert right == pytest.approx({"mean": 0.0, "top": 0.0, "random": 0.4 / 3})
    wrong = budget_regret([0.3, 0.1, 0.2], reference, costs)
    assert wrong == pytest.approx({"mean": 0.8 / 3, "top": 0.4, "random": 0.4 / 3})
    tied = budget_regret([0.3, 0.3, 0.1], reference, costs)
    assert tied == pytest.approx({"mean": 0.4 / 3, "top": 0.2, "random": 0.4 / 3})
    # the order of the architectures is irrelevant; only the largest budget admits the costliest
    assert budget_regret([0.2, 0.3, 0.1], [0.7, 0.5, 0.9], [3, 1, 2]) == pytest.approx(wrong)


@hypothesis_settings(max_examples=200, deadline=None)
@given(st.integers(1, 12).flatmap(lambda n: st.tuples(*(st.lists(st.integers(0, 5), min_size=n, max_size=n)
                                                          for _ in range(3)))))
def test_budget_regret_properties(case):
    """Never negative, never above the reference's spread; the reference itself loses nothing;
    a monotone transform of the signal or of the costs changes nothing."""
    values, reference, costs = (np.array(a, float) for a in case)
    found = budget_regret(values, reference, costs)
    spread = np.ptp(reference)
    for key in ("mean", "top", "random"):
        assert -1e-12 <= found[key] <= spread + 1e-12
    assert budget_regret(reference, reference, costs)["mean"] == pytest.approx(0.0, abs=1e-12)
    assert budget_regret(np.exp(values), reference, costs ** 3 + 1) == pytest.approx(found)
    if np.ptp(values) == 0:  # a constant signal is a fair draw among all that fit: a random pick
        assert found["mean"] == pytest.approx(found["random"])


@hypothesis_settings(max_examples=80, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1)))))
def test_each_second_seed_is_run_after_its_first(case):
    """Every run exactly once; a second seed after its first seed; the architectures without a
    second seed keep their order."""
    n, chosen = case
    specs = [SimpleNamespace(name=f"a{i}") for i in range(n)]
    repeated = [specs[i] for i in sorted(chosen)]
    plan = [(spec.name, seed) for spec, seed in run_plan(specs, repeated, 7)]
    assert sorted(plan) == sorted([(s.name, 7) for s in specs] + [(s.name, 8) for s in repeated])
    for spec in repeated:
        assert plan.index((spec.name, 7)) < plan.index((spec.name, 8))
    alone = [name for name, seed in plan if seed == 7 and name not in {s.name for s in repeated}]
    assert alone == [s.name for s in specs if s not in repeated]


def test_the_second_seeds_span_the_flops_range_in_every_prefix(monkeypatch):
    """12 of 43 architectures, every k-th by FLOPs, taken in bisection order: the 1st, 9th, 5th and
    3rd of the twelve come first, so four pairs already reach from the cheapest to the upper quarter."""
    import nasface.fidelity.choice as choice

    specs = [SimpleNamespace(name=f"a{i:02d}", flops=float(i)) for i in range(43)][::-1]
    monkeypatch.setattr(choice, "count", lambda spec: {"flops": spec.flops})
    chosen = second_seed_subset(specs, 12)
    flops = [spec.flops for spec in chosen]
    assert sorted(flops) == [0, 4, 8, 11, 15, 19, 23, 27, 31, 34, 38, 42]
    assert flops[:4] == [0, 31, 15, 8] and len(set(flops)) == 12
    assert second_seed_subset(specs, 0) == [] and len(second_seed_subset(specs, 50)) == 43


def test_spread_order_and_interleave():
    assert _spread_order(8) == [0, 4, 2, 6, 1, 5, 3, 7]
    assert sorted(_spread_order(11)) == list(range(11))
    assert interleave([1, 2, 3, 4], ["a", "b"]) == [1, 2, "a", 3, 4, "b"]
    # c's second seed is due after b, before c's first: c's first comes forward
    specs = [SimpleNamespace(name=name) for name in "abcd"]
    assert interleave(specs, ["c'", "d'"]) == [specs[0], specs[1], "c'", specs[2], specs[3], "d'"]
    plan = [(spec.name, seed) for spec, seed in run_plan(specs, [specs[2], specs[3]], 0)]
    assert plan == [("a", 0), ("b", 0), ("c", 0), ("c", 1), ("d", 0), ("d", 1)]


@pytest.mark.slow
def test_fidelity_end_to_end_then_analyse_only(tmp_path):
    config = config_from_options(TINY)
    settings = FidelitySettings(search=config, architectures=8, presets=False, factors=(0.5, 1.0, 2.0),
                                second_seeds=4, bootstrap=100)
    report = run_fidelity(settings, tmp_path / "f")
    rows = [json.loads(line) for line in (tmp_path / "f" / "log.jsonl").read_text().splitlines()]
    assert len(rows) == 8 + 4 and sum(r["seed"] == 1 for r in rows) == 4
    assert all("teacher_digest" in row and row["teacher_digest"] is None for row in rows)  # no teacher
    assert all([r["steps"] for r in row["results"]] == [2, 4, 8] for row in rows)
    assert report.measured == 8 and report.reference_steps == 8 and report.proxy_steps == 4
    for name in ("accuracy", "loss_sum", "synflow", "naswot", "zico", "log_flops"):
        row = report.signals[name]
        assert row.available and -1 <= row.tau <= 1 and row.tau_ci[0] <= row.tau_ci[1]
    assert set(report.budgets) == {"2", "4"}
    # each score is paired with FLOPs alone and with parameters alone, on the same resamples
    accuracy = report.signals["accuracy"]
    for baseline in ("log_flops", "log_params"):
        paired = accuracy.versus[baseline]
        assert paired.tau_minus == pytest.approx(accuracy.tau - report.signals[baseline].tau)
        assert paired.ci[0] <= paired.ci[1] and 0 <= paired.above_fraction <= 1
    assert set(report.signals["log_params"].versus) == {"log_flops"}
    assert report.noise_ceiling.pairs == 4 and -1 <= report.noise_ceiling.reference.tau <= 1
    modelled = report.noise_ceiling.modelled  # over all 8 architectures, from the 4 pairs
    assert modelled.architectures == 8 and modelled.pairs == 4 and -1 <= modelled.tau <= 1
    differences = report.noise_ceiling.differences
    assert len(differences) == 4 and modelled.sigma == pytest.approx(
        np.sqrt(np.mean([pair.reference ** 2 for pair in differences]) / 2))
    assert report.noise_ceiling.modelled_by_size is None  # 2 pairs a half: too few for a sigma each
    assert report.combined is not None and report.best.signal in {*report.signals, "combined"}
    # what picking by each signal under a FLOPs budget loses at the reference, beside a random pick's
    accuracy_regret = accuracy.regret
    assert 0 <= accuracy_regret.mean <= 1 and 0 <= accuracy_regret.top <= 1
    assert all(row.regret.random == accuracy_regret.random for row in report.budgets.values())
    versus = report.best.versus_score  # the best signal paired with the search's own score
    assert (versus is None) == (report.best.signal == "accuracy")
    assert versus is None or (versus.score == "accuracy" and len(versus.ci) == 2)
    assert "teacher_cka" in report.signals and not report.signals["teacher_cka"].available  # no teacher
    # fidelity.json is the report's JSON form, and reads back as the same report
    written = json.loads((tmp_path / "f" / "fidelity.json").read_text())
    assert written == report.to_json() and FidelityReport.from_json(written) == report
    write_page(report, tmp_path / "f" / "fidelity.html")  # what nasface fidelity draws of the report
    page = (tmp_path / "f" / "fidelity.html").read_text()
    assert "plotly" in page and "Kendall tau" in page and "tau - parameters alone" in page
    assert "top pick's regret" in page and "The proxy's length" in page and "<td>0.5x</td><td>2</td>" in page
    # the log is the record: analysing it again trains nothing and gives the same numbers
    log_before = (tmp_path / "f" / "log.jsonl").read_bytes()
    again = run_fidelity(settings, tmp_path / "f", analyse_only=True)
    assert (tmp_path / "f" / "log.jsonl").read_bytes() == log_before
    assert again.signals["accuracy"].tau == report.signals["accuracy"].tau
    # a study of the same proxy states the measured fidelity in its report; another proxy's does not
    quoted = (f"Kendall tau {report.signals['accuracy'].tau:.2f}",
              f"loses {100 * accuracy_regret.mean:.1f} points of 8-step accuracy")
    for steps, expected in ((4, quoted), (5, ("not measured",))):
        study = run_search(config_from_options({**TINY, "proxy_steps": steps, "studies_dir": str(tmp_path / "s"),
                                                "study": f"p{steps}", "trials": 1, "baselines": False,
                                                "executor": "inline"}), Reporter("quiet"))
        page = write_report(study, tmp_path / f"report{steps}.html", fidelity_dirs=[tmp_path]).read_text()
        assert all(text in page for text in expected)
    # successive halving over the measured budgets, warmed up as the proxy was: the job a search's
    # worker runs trains a logged architecture rung after rung exactly as the fidelity study logged it
    halving = config_from_options({**TINY, "rungs": "2,4,8", "eta": 2, "proxy_warmup": 1,
                                   "studies_dir": str(tmp_path / "h"), "study": "h"})
    logged = next(row for row in rows if row["seed"] == 0)
    payload, resume_from = {**payload_base(halving, None), "spec": logged["spec"]}, None
    for rung, at in enumerate(logged["results"]):
        save_to = str(tmp_path / f"rung{rung}.pt") if rung < halving.top_rung else None
        result = run_candidate({**payload, "proxy": dataclasses.asdict(halving.rung_budget(rung)),
                                "resume_from": resume_from, "save_to": save_to})
        assert (result["steps"], result["accuracy"], result["final_loss"]) == (at["steps"], at["accuracy"],
                                                                               at["final_loss"])
        resume_from = save_to
    # a real search whose proxy is a measured budget (as a ladder's top rung is) is quoted that budget's tau
    branch = run_search(config_from_options({**TINY, "proxy_steps": 2, "proxy_warmup": 1,
                                             "studies_dir": str(tmp_path / "s"), "study": "branch", "trials": 1,
                                             "baselines": False, "executor": "inline"}), Reporter("quiet"))
    page = write_report(branch, tmp_path / "branch.html", fidelity_dirs=[tmp_path]).read_text()
    branch_tau = report.budgets["2"].tau
    assert f"accuracy at 2 steps, a branch of the 4-step proxy's runs): Kendall tau {branch_tau:.2f}" in page
    # `nasface report` looks in the studies folder and in benchmarks/results (where the repository
    # keeps its measurement of the README study's proxy), relative to where it runs
    (tmp_path / "benchmarks" / "results" / "f").mkdir(parents=True)
    (tmp_path / "benchmarks" / "results" / "f" / "fidelity.json").write_bytes((tmp_path / "f" / "fidelity.json").read_bytes())
    shown = subprocess.run([sys.executable, "-m", "nasface", "report", "p4", "--studies-dir", "s"], cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert f"Kendall tau {report.signals['accuracy'].tau:.2f}" in (tmp_path / "s" / "p4" / "report.html").read_text()


def test_a_yardstick_added_to_a_study_in_progress_is_filled_in_by_exact_replays(tmp_path, caplog):
    """A yardstick trains nothing differently: runs logged without it stay, the rest gain its signal,
    and each logged run is replayed up to the proxy's budget to fill it in, but only where the replay
    reproduces the log exactly.  A signal only some architectures have is analysed on those."""
    settings = FidelitySettings(search=config_from_options(TINY), architectures=8, presets=False,
                                factors=(0.5, 1.0, 2.0), second_seeds=0, bootstrap=100)
    with_yardstick = dataclasses.replace(settings, yardstick="auto")
    # the same study with the yardstick from its start: what a fill must reproduce
    whole = run_fidelity(with_yardstick, tmp_path / "whole")
    expected = {row["arch"]: {str(r["steps"]): r["signals"]["yardstick_cka"] for r in row["results"]}
                for row in map(json.loads, (tmp_path / "whole" / "log.jsonl").read_text().splitlines())}
    out, log = tmp_path / "f", tmp_path / "f" / "log.jsonl"
    run_fidelity(settings, out)
    kept = [json.loads(line) for line in log.read_text().splitlines()[:4]]
    assert all("yardstick_cka" not in r["signals"] for row in kept for r in row["results"])
    kept[0]["results"][1]["accuracy"] += 1e-3  # a log this machine's replay cannot reproduce
    log.write_text("".join(json.dumps(row) + "\n" for row in kept))
    before = log.read_text().splitlines()
    caplog.set_level(logging.INFO, logger="nasface")
    report = run_fidelity(with_yardstick, out)
    messages = caplog.messages
    lines = log.read_text().splitlines()
    assert lines[:4] == before and len(lines) == 4 + 4 + 4      # nothing logged was trained again
    runs = [json.loads(line) for line in lines if not json.loads(line)["key"].startswith("yardstick-fill")]
    fills = {row["arch"]: row for row in map(json.loads, lines) if row["key"].startswith("yardstick-fill")}
    assert len(runs) == 8 and set(fills) == {row["arch"] for row in kept}
    for row in runs[4:]:
        assert all(0 <= result["signals"]["yardstick_cka"] <= 1 for result in row["results"])
    for row in kept[1:]:  # a replay is the logged run, bit for bit: its agreement is the whole study's
        assert fills[row["arch"]]["replay_differs"] is None
        assert fills[row["arch"]]["yardstick_cka"] == {k: v for k, v in expected[row["arch"]].items() if k != "8"}
    differs = fills[kept[0]["arch"]]
    assert differs["yardstick_cka"] == {} and differs["replay_differs"]["steps"] == 4
    assert any(f"yardstick for {kept[0]['arch']} seed 0: not filled in" in m for m in messages)
    row = report.signals["yardstick_cka"]
    assert row.available and row.partial and row.measured == 7 and len(report.points["yardstick_cka"][2]) == 7
    assert kept[0]["arch"] not in report.points["yardstick_cka"][2]
    assert report.signals["accuracy"].measured == 8 and not report.signals["accuracy"].partial
    assert report.best.signal != "yardstick_cka" and "yardstick_cka" not in report.combined.weights
    # the complete signals are also ranked on the yardstick's 7 architectures, like for like
    names = report.points["yardstick_cka"][2]
    values, reference, archs = report.points["accuracy"]
    chosen = [arch in names for arch in archs]
    assert row.same_architectures["accuracy"] == pytest.approx(
        rank_agreement(np.array(values)[chosen], np.array(reference)[chosen], 0)["tau"])
    assert row.paired is None  # this study has no teacher of its own to pair the yardstick with
    assert report.command_settings["yardstick"] == "auto"
    # the filled values are the ones analysed; once filled (or found differing) nothing is replayed again
    filled = dict(zip(report.points["yardstick_cka"][2], report.points["yardstick_cka"][0]))
    assert filled[kept[1]["arch"]] == pytest.approx(expected[kept[1]["arch"]]["4"])
    # measured on every architecture, it is still only measured: no search can score with it
    assert whole.signals["yardstick_cka"].measured == 8 and not whole.signals["yardstick_cka"].partial
    assert whole.signals["yardstick_cka"].measure_only and whole.best.signal != "yardstick_cka"
    assert "yardstick_cka" not in whole.combined.weights
    run_fidelity(with_yardstick, out)
    assert log.read_text().splitlines() == lines
    for bad, message in (("none", "other than the study's own"), (str(tmp_path / "missing.safetensors"),
                                                                   "--yardstick .*: no such checkpoint")):
        with pytest.raises(NasfaceError, match=message):
            run_fidelity(dataclasses.replace(settings, yardstick=bad), out)
    assert log.read_text().splitlines() == lines


def fidelity_json(**changes) -> dict:
    """A whole ``fidelity.json`` (the committed synthetic study's) with ``changes``."""
    return {**json.loads((REPO / "benchmarks" / "results" / "fidelity-synthetic" / "fidelity.json").read_text()),
            **changes}


def agreement_json(tau: float, **changes) -> dict:
    """A signal's or a budget's agreement with the reference as ``fidelity.json`` holds it, at ``tau``."""
    return {**fidelity_json()["signals"]["accuracy"], "tau": tau, **changes}


@pytest.mark.parametrize("source", ["orl", "synthetic"])
def test_a_committed_analysis_reads_back_as_a_report_that_writes_it_byte_for_byte(source):
    """fidelity.json is the typed report's JSON form, key for key and in order: what the analysis
    wrote before the report was typed reads back, and writes back, unchanged."""
    text = (REPO / "benchmarks" / "results" / f"fidelity-{source}" / "fidelity.json").read_text()
    report = FidelityReport.from_json(json.loads(text))
    assert json.dumps(report.to_json(), indent=2) + "\n" == text
    assert report.measured == 43 and report.best.signal in report.available()
    assert all(isinstance(row, UnmeasuredSignal) != row.available for row in report.signals.values())


def test_a_report_quotes_the_matching_fidelity_study_that_measured_the_most_architectures(tmp_path):
    """The same study on a GPU (``-cuda``, sorted first) with 4 architectures and on a CPU with 19:
    the 19 are quoted; a study of another proxy is never quoted, however complete; a file that is
    not a whole analysis is passed over."""
    proxy = {"steps": 120, "batch_size": 32, "resolution": 64, "warmup_steps": 12}
    study = {"data": {"source": "orl"}, "proxy": proxy, "teacher": "auto"}
    for folder, measured, steps in (("fid-cuda", 4, 120), ("fid", 19, 120), ("other", 40, 150)):
        (tmp_path / folder).mkdir()
        settings = {"data": {"source": "orl"}, "proxy": {**proxy, "steps": steps}, "teacher": "auto"}
        (tmp_path / folder / "fidelity.json").write_text(json.dumps(fidelity_json(measured=measured, budgets={},
                                                                                  command_settings=settings)))
    (tmp_path / "part").mkdir()
    whole_study = {"data": {"source": "orl"}, "proxy": proxy, "teacher": "auto"}  # but not a whole analysis
    (tmp_path / "part" / "fidelity.json").write_text(json.dumps({"measured": 43, "command_settings": whole_study}))
    assert measured_fidelity(study, [tmp_path]).report.measured == 19
    assert measured_fidelity({**study, "teacher": "none"}, [tmp_path]) is None
    # a study that leaves its warm-up unset has a tenth of its steps, what the fidelity pinned; another does not match
    assert measured_fidelity({**study, "proxy": {**proxy, "warmup_steps": None}}, [tmp_path]).report.measured == 19
    assert measured_fidelity({**study, "proxy": {**proxy, "warmup_steps": 3}}, [tmp_path]) is None


def test_a_study_that_trains_a_measured_budget_is_quoted_that_budgets_fidelity(tmp_path):
    """Successive halving's top rung of 480 steps, warmed up as the 120-step proxy was, is the 4x
    branch a fidelity study of that proxy measured: its report quotes that budget's tau, never the
    proxy's; a recipe that differs otherwise (another warm-up) is not measured; and a fidelity
    study of exactly the study's proxy comes first."""
    proxy = {"steps": 120, "batch_size": 32, "resolution": 64, "warmup_steps": 12}
    row = {"tau_ci": [0.6, 0.8]}
    report = fidelity_json(measured=43, architectures=43, proxy_steps=120, reference_steps=960,
                           signals={"accuracy": agreement_json(0.55, **row)},
                           budgets={"30": agreement_json(0.42, **row), "480": agreement_json(0.75, **row),
                                    "960": agreement_json(1.0, **row)},
                           command_settings={"data": {"source": "synthetic"}, "proxy": proxy, "teacher": "auto"})
    (tmp_path / "fid").mkdir()
    (tmp_path / "fid" / "fidelity.json").write_text(json.dumps(report))
    study = {"data": {"source": "synthetic"}, "teacher": "auto"}
    top_rung = measured_fidelity({**study, "proxy": {**proxy, "steps": 480}}, [tmp_path])
    assert top_rung.budget_steps == 480
    assert "Kendall tau 0.75" in fidelity_sentence(top_rung) and "accuracy at 480 steps" in fidelity_sentence(top_rung)
    assert "not measured" in fidelity_sentence(top_rung, "loss_sum")
    for unmeasured in ({**proxy, "steps": 480, "warmup_steps": 3}, {**proxy, "steps": 960}, {**proxy, "steps": 240}):
        assert measured_fidelity({**study, "proxy": unmeasured}, [tmp_path]) is None
    (tmp_path / "exact").mkdir()
    exact = {**report, "measured": 8, "command_settings": {**report["command_settings"], "proxy": {**proxy, "steps": 480}}}
    (tmp_path / "exact" / "fidelity.json").write_text(json.dumps(exact))
    assert measured_fidelity({**study, "proxy": {**proxy, "steps": 480}}, [tmp_path]).report.measured == 8


def test_the_shortest_budget_within_a_tenth_of_the_noise_ceiling_is_named():
    """Synthetic faces' figures: 30, 120 and 480 steps rank at 0.42, 0.55 and 0.75 against a
    ceiling of 0.76, so 480 steps is the shortest proxy within 0.1 of it; a report of the 120-step
    study says so, a report of a 480-step study has nothing to add."""
    plain = fidelity_json(proxy_steps=120, reference_steps=960, cpu_seconds={}, measured=43, architectures=43,
                          budgets={steps: agreement_json(tau) for steps, tau in (("30", 0.42), ("120", 0.55),
                                                                                 ("480", 0.75))},
                          signals={"accuracy": agreement_json(0.55)})
    report = FidelityReport.from_json(plain)

    def with_ceiling(tau: float) -> FidelityReport:
        modelled = dataclasses.replace(report.noise_ceiling.modelled, tau=tau, pairs=12)
        return dataclasses.replace(report, noise_ceiling=dataclasses.replace(report.noise_ceiling, modelled=modelled))

    shortest = shortest_trusted_budget(with_ceiling(0.76))
    assert shortest == ShortestTrusted(ceiling=0.76, margin=0.1, steps=480, factor=4.0, tau=0.75)
    measured = MeasuredFidelity(report=with_ceiling(0.76), path="fidelity.json")
    assert "within 0.1 of that ceiling: 480 steps (tau 0.75)" in fidelity_sentence(measured)
    assert "shortest" not in fidelity_sentence(dataclasses.replace(measured, budget_steps=480))
    assert shortest_trusted_budget(with_ceiling(0.5)).steps == 30
    assert shortest_trusted_budget(with_ceiling(0.95)).steps is None
    unreachable = MeasuredFidelity(report=with_ceiling(0.95), path="fidelity.json")
    assert "None of the budgets it measured below 960 steps" in fidelity_sentence(unreachable)
    too_few = dataclasses.replace(report, noise_ceiling=NoiseCeiling(pairs=2, note="too few"))
    assert shortest_trusted_budget(too_few) is None


def test_the_teacher_digest_tells_a_teacher_from_one_that_differs_in_one_bit():
    rng = np.random.default_rng(0)
    teacher = TeacherTargets(rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32),
                             rng.normal(size=(3, 4)).astype(np.float32), folder="somewhere")
    same = TeacherTargets(teacher.embeddings.copy(), teacher.flipped.copy(), teacher.centres.copy(), folder="elsewhere")
    assert teacher_digest(teacher) == teacher_digest(same) and len(teacher_digest(teacher)) == 16
    flipped_bit = teacher.centres.copy()
    flipped_bit.view(np.uint32)[2, 3] ^= 1
    assert teacher_digest(dataclasses.replace(teacher, centres=flipped_bit)) != teacher_digest(teacher)
    assert teacher_digest(None) is None


def test_the_best_signal_is_never_a_trivial_baseline_which_is_reported_beside_it():
    plain = fidelity_json(signals={"accuracy": agreement_json(0.78), "log_params": agreement_json(0.87),
                                   "log_flops": agreement_json(0.56), "zico": {"available": False, "measured": 3},
                                   "yardstick_cka": agreement_json(0.95, partial=True)},
                          combined={**fidelity_json()["combined"], "tau": 0.70})
    report = FidelityReport.from_json(plain)
    assert best_signal(report) == Best(signal="accuracy", tau=0.78, baseline="log_params", baseline_tau=0.87)
    assert best_signal(dataclasses.replace(report, combined=dataclasses.replace(report.combined, tau=0.80))).signal \
        == "combined"
    alone = FidelityReport.from_json({**plain, "signals": {"log_flops": agreement_json(0.5)}, "combined": None})
    assert best_signal(alone) is None


def test_the_best_signal_is_paired_with_the_score_the_search_maximises():
    """A signal ranking 10 architectures exactly as the reference does, against a score ranking them
    backwards: the difference is 1 - (-1) = 2 in every resample.  The score itself, or a score not
    measured, gets no pairing."""
    reference = np.arange(10.0)
    values = {"loss_ema": reference.copy(), "accuracy": -reference}
    versus = _versus_score("loss_ema", "accuracy", values, reference, 200)
    assert versus.score == "accuracy" and versus.tau_score == pytest.approx(-1.0)
    assert versus.tau_minus == pytest.approx(2.0) and versus.ci == pytest.approx([2.0, 2.0])
    assert versus.above_fraction == 1.0
    assert _versus_score("accuracy", "accuracy", values, reference, 200) is None
    assert _versus_score("loss_ema", "tar_at_far", values, reference, 200) is None


def test_a_partial_signal_is_paired_with_its_counterpart_on_its_own_architectures():
    """yardstick_cka measured on 5 of 8 architectures is compared with teacher_cka on those 5:
    a yardstick ranking them exactly as the reference beats a teacher agreement ranking them
    backwards by tau 1 - (-1) = 2."""
    reference = np.arange(8.0)
    have = np.array([False, True, True, False, True, True, False, True])
    yardstick = np.where(have, reference, np.nan)
    teacher = np.where(have, -reference, reference)  # backwards on the yardstick's five only
    features = {"yardstick_cka": yardstick, "teacher_cka": teacher, "log_flops": np.ones(8)}
    found = _like_for_like("yardstick_cka", yardstick, have, reference, features, {"yardstick_cka": have}, 200)
    assert found["same_architectures"] == {"teacher_cka": pytest.approx(-1.0)}  # constant FLOPs: no tau
    paired = found["paired"]
    assert paired.rival == "teacher_cka" and paired.tau_other == pytest.approx(-1.0)
    assert paired.tau_minus_other == pytest.approx(2.0) and paired.tau_above_other_fraction == 1.0
    # measured on all 8 (filled in), it is still paired with its rival, on all 8, and not with itself
    everywhere = np.ones(8, bool)
    features["yardstick_cka"] = reference.copy()
    found = _like_for_like("yardstick_cka", reference, everywhere, reference, features, {}, 200)
    assert set(found["same_architectures"]) == {"teacher_cka"}
    assert found["paired"].tau_other == pytest.approx(rank_agreement(teacher, reference, 0)["tau"])


@pytest.mark.slow
def test_a_killed_fidelity_run_continues_where_it_stopped(tmp_path):
    out = tmp_path / "f"
    log = out / "log.jsonl"
    before, finished = killed_then_finished(["fidelity", *TINY_ARGS, "--out", str(out)], tmp_path, log)
    assert 2 <= len(before) < 12
    after = log.read_text().splitlines()
    assert after[:len(before)] == before                       # nothing finished was trained again
    keys = [json.loads(line)["key"] for line in after]
    assert len(keys) == len(set(keys)) == 12                     # and nothing twice
    assert list((out / "cache" / "progress").iterdir()) == []    # each run's kept progress deleted once logged
    assert "Kendall tau [95 % CI]" in finished.stdout and "tau - params [95 % CI]" in finished.stdout
    assert "top pick's regret" in finished.stdout and "noise ceiling modelled over all 8 architectures" in finished.stdout
    assert "the proxy's length" in finished.stdout and "0.5x" in finished.stdout  # each budget's cost and tau
