"""The benchmarks' statistics and resumable log, on cases whose answer is known."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau, spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, RowLog, rank_agreement  # noqa: E402
from nasface.core.ranking import kendall_rows, spearman_rows  # noqa: E402


def test_rank_agreement_known_tau_and_rho():
    # one discordant pair of six: tau = (5 - 1) / 6; rho = 1 - 6 * 2 / (4 * 15)
    result = rank_agreement([1, 2, 3, 4], [1, 3, 2, 4], resamples=200)
    assert result["tau"] == pytest.approx(2 / 3)
    assert result["rho"] == pytest.approx(0.8)
    low, high = result["tau_ci"]
    assert -1 <= low <= result["tau"] <= high <= 1


def test_rank_agreement_perfect_orderings_have_degenerate_intervals():
    same = rank_agreement(range(12), range(12), resamples=200)
    assert same["tau"] == pytest.approx(1) and same["tau_ci"] == pytest.approx([1, 1])
    assert same["rho_ci"] == pytest.approx([1, 1])
    reversed_ = rank_agreement(range(12), range(12)[::-1], resamples=200)
    assert reversed_["tau"] == pytest.approx(-1) and reversed_["tau_ci"] == pytest.approx([-1, -1])


def test_rank_agreement_paired_difference_against_another_predictor():
    truth = list(range(12))
    paired = rank_agreement(truth, truth, resamples=200, baselines={"backwards": truth[::-1]})["versus"]["backwards"]
    assert paired["tau_minus"] == pytest.approx(2.0)
    assert paired["ci"] == pytest.approx([2, 2])
    assert paired["above_fraction"] == 1.0


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 14).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.integers(0, 4), min_size=n, max_size=n), min_size=1, max_size=6),
    st.lists(st.lists(st.integers(0, 4), min_size=n, max_size=n), min_size=6, max_size=6))))
def test_rank_statistics_of_many_resamples_at_once_are_scipys_row_by_row(rows):
    """Small integer values: ties in one ranking, in both, and constant rows (NaN in both)."""
    x = np.array(rows[0], float)
    y = np.array(rows[1][:len(x)], float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on a constant row
        expected_tau = [kendalltau(a, b).statistic for a, b in zip(x, y)]
        expected_rho = [spearmanr(a, b).statistic for a, b in zip(x, y)]
    np.testing.assert_allclose(kendall_rows(x, y), expected_tau, atol=1e-12)
    np.testing.assert_allclose(spearman_rows(x, y), expected_rho, atol=1e-12)


def test_row_log_resumes_and_ignores_a_torn_last_line(tmp_path):
    path = tmp_path / "scores.jsonl"
    log = RowLog(path)
    log.add("a", {"value": 1})
    with path.open("a") as handle:
        handle.write('{"key": "b", "val')  # a process killed mid-write
    again = RowLog(path)
    assert again.get("a")["value"] == 1 and again.get("b") is None
    again.add("b", {"value": 2})
    assert RowLog(path).get("b")["value"] == 2
    assert json.loads(path.read_text().splitlines()[0])["key"] == "a"


def test_row_log_claims_hand_each_key_to_one_live_process(tmp_path):
    path = tmp_path / "scores.jsonl"
    holder = subprocess.Popen([sys.executable, "-c", CLAIM_AND_WAIT, str(path), "busy"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "True"  # the other process holds "busy"
        log = RowLog(path)
        assert not log.claim("busy")
        assert log.claim("free") and log.claim("free")  # a process may ask again for its own claim
    finally:
        holder.kill()
        holder.wait()
    assert log.claim("busy")  # its owner died without logging it: taken over
    other = RowLog(path)
    log.add("busy", {"value": 1})
    assert not other.claim("busy")  # logged by another process meanwhile: read on claiming
    assert other.get("busy")["value"] == 1


CLAIM_AND_WAIT = """
import sys, time
from pathlib import Path
from nasface.core.atomic import RowLog
print(RowLog(Path(sys.argv[1])).claim(sys.argv[2]), flush=True)
time.sleep(60)
"""


def _fake_table(count: int = 24) -> dict:
    """Architectures whose accuracy rises with the budget towards a quality of their own."""
    rng = np.random.default_rng(1)
    rows = []
    for index in range(count):
        quality, flops = rng.uniform(0.6, 0.95), float(10 ** rng.uniform(7.5, 9))
        results = [{"steps": b, "status": "ok", "accuracy": 0.5 + (quality - 0.5) * (1 - np.exp(-b / 300)),
                    "cpu_seconds": b * flops / 1e8, "eval_seconds": 1.0} for b in (30, 60, 120, 240, 480, 960)]
        rows.append({"key": str(index), "arch": f"a{index}", "seed": 0, "results": results,
                     "cost": {"flops": flops, "weight_bytes": float(rng.uniform(1e6, 19e6))}})
    return rows


def test_tabular_simulation_charges_and_promotes_as_described(tmp_path):
    from benchmarks.multifidelity_tabular import (front_of, load_table, run_random, run_successive_halving,
                                                  true_hypervolume)

    log = tmp_path / "log.jsonl"
    # a yardstick's fill line (nasface.fidelity) shares the log and is not an architecture
    fill = {"key": "yardstick-fill:dlib-resnet:0", "fills": "0", "arch": "a0", "seed": 0, "yardstick_cka": {}}
    log.write_text("".join(json.dumps(row) + "\n" for row in [*_fake_table(), fill]))
    table = load_table(log)
    assert len(table["archs"]) == 24 and table["budgets"] == [30, 60, 120, 240, 480, 960]
    whole = sum(a["cost"][120] for a in table["archs"].values())
    everything = run_random(table, 0, 120, whole)
    best = true_hypervolume(table, front_of(table, {n: a["accuracy"][960] for n, a in table["archs"].items()}))
    # scoring every architecture at 1x ranks them as the reference does here: the best front
    assert everything.values[-1] == pytest.approx(best) and everything.spent == pytest.approx(whole)
    assert all(a <= b for a, b in zip(everything.times, everything.times[1:]))
    kept = run_successive_halving(table, 0, [30, 120, 480], 4, whole / 2, continue_training=True)
    scratch = run_successive_halving(table, 0, [30, 120, 480], 4, whole / 2, continue_training=False)
    # the same decisions (same order, same scores); continuing costs less for every promotion
    assert len(kept.times) >= len(scratch.times) and kept.times[len(scratch.times) - 1] <= scratch.times[-1]
    # it stops when its time is spent (the last evaluation may run past it), not before
    assert kept.spent >= whole / 2


def test_tabular_costs_are_scaled_to_one_machine_by_a_power_law_of_flops(tmp_path):
    """The made-up runs' seconds are an exact power law of FLOPs; one of them is logged as if run on
    a machine 4x slower.  Recorded, it costs 4x; scaled to the law, as much as its FLOPs say, with
    its split between budgets kept."""
    from benchmarks.multifidelity_tabular import load_table

    rows = _fake_table()
    for row in rows:  # evaluation too in proportion to FLOPs: every run's seconds on one power law
        for result in row["results"]:
            result["eval_seconds"] = row["cost"]["flops"] / 1e8
    slow = rows[3]
    for result in slow["results"]:
        result["cpu_seconds"] *= 4
        result["eval_seconds"] *= 4
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(row) + "\n" for row in rows))
    recorded, scaled = load_table(log, costs="recorded"), load_table(log)
    others = [name for name in recorded["archs"] if name != slow["arch"]]
    law = {name: scaled["archs"][name]["cost"][960] / recorded["archs"][name]["cost"][960] for name in others}
    assert max(law.values()) / min(law.values()) == pytest.approx(1.0)  # the others stay on their law
    ratio = recorded["archs"][slow["arch"]]["cost"][960] / scaled["archs"][slow["arch"]]["cost"][960]
    assert ratio == pytest.approx(4.0)
    for budget in (30, 120):
        assert scaled["archs"][slow["arch"]]["train"][budget] / scaled["archs"][slow["arch"]]["train"][960] == \
            pytest.approx(budget * 1.0 / 960)  # within the run, the split between budgets is as recorded
    with pytest.raises(ValueError, match="'flops' or 'recorded'"):
        load_table(log, costs="wall")


def test_time_to_reach_reads_the_median_curve_even_when_half_the_seeds_never_get_there():
    from benchmarks.multifidelity_tabular import Trace, time_to_reach

    traces = []
    for steps in ([(10, 0.5), (10, 0.9)], [(10, 0.9)], [(10, 0.4)], [(30, 0.4)]):  # (seconds, hypervolume)
        trace = Trace({})
        for seconds, value in steps:
            trace.spent += seconds
            trace.times.append(trace.spent)
            trace.values.append(value)
        traces.append(trace)
    # medians of the four: 0 until 10 s, then (0.4 + 0.5) / 2 = 0.45, then (0.4 + 0.9) / 2 = 0.65 from 20 s
    assert time_to_reach(traces, 0.65, 60) == 20 and time_to_reach(traces, 0.45, 60) == 10
    assert time_to_reach(traces, 0.65, 15) is None and time_to_reach(traces, 0.7, 60) is None


def test_a_pick_scored_before_under_the_same_recipe_is_not_trained_again(tmp_path):
    from benchmarks.multifidelity_search import scored_before
    from nasface.core.atomic import RowLog

    log = RowLog(tmp_path / "log.jsonl")
    recipe = {"seed": 1, "rungs": "40,120", "eta": 3}
    scored = {"spec": {"name": "a"}, "reference_accuracy": 0.9, "reference_steps": 960}
    log.add("capped", {"flags": {**recipe, "study": "x", "trials": None, "timeout": "600s"}, "best": scored})
    log.add("other-seed", {"flags": {**recipe, "seed": 2}, "best": {**scored, "reference_accuracy": 0.5}})
    pick = {"flags": {**recipe, "study": "y", "trials": 10, "timeout": "60s"}, "best": {"spec": {"name": "a"}}}
    assert scored_before(log, pick) == {"reference_accuracy": 0.9, "reference_steps": 960,
                                        "reference_reused_from": "capped"}
    assert scored_before(log, {**pick, "best": {"spec": {"name": "b"}}}) is None        # another spec
    assert scored_before(log, {**pick, "flags": {**recipe, "eta": 2}}) is None           # another recipe


@pytest.mark.slow
def test_the_end_to_end_multifidelity_benchmark_runs_and_resumes(tmp_path):
    """Real searches with and without rungs (tiny), each pick trained again at the reference budget."""
    out = tmp_path / "result.json"
    command = [sys.executable, str(Path(__file__).resolve().parents[1] / "benchmarks" / "multifidelity_search.py"),
               "--quick", "--minutes", "1", "--seeds", "1", "--rungs", "2,4", "--eta", "2",
               "--reference-factor", "2", "--studies", str(tmp_path / "studies"), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    plain, rungs = result["runs"]
    assert (plain["mode"], rungs["mode"]) == ("plain", "rungs")
    assert plain["promotions"] == 0 and set(plain["evaluations_per_rung"]) <= {"0"}
    assert set(rungs["evaluations_per_rung"]) <= {"0", "1"}
    for run in (plain, rungs):  # what a search trained in its minute depends on the machine's load
        assert run["sampled"] == run["evaluations_per_rung"].get("0", 0)  # a promotion is no new candidate
        if run["best"] is not None:  # its pick, trained again at twice the top rung
            assert run["best"]["reference_steps"] == 8 and 0 <= run["best"]["reference_accuracy"] <= 1
    log = out.with_suffix(".jsonl").read_text()
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)  # all logged: no search
    assert again.returncode == 0, again.stderr
    assert out.with_suffix(".jsonl").read_text() == log


def test_rank_agreement_pairs_several_baselines_on_one_set_of_resamples():
    """Each baseline's paired difference is the one it alone gives on resamples where no ranking is
    constant: a predictor ranking backwards differs by 2, an exact one by 0."""
    truth = np.arange(12.0)
    noisy = truth + np.random.default_rng(3).normal(0, 3, 12)
    result = rank_agreement(noisy, truth, resamples=300, baselines={"backwards": -truth, "exact": truth})
    alone = rank_agreement(noisy, truth, resamples=300, baselines={"backwards": -truth})
    assert result["tau"] == alone["tau"] and result["tau_ci"] == alone["tau_ci"]
    backwards, exact = result["versus"]["backwards"], result["versus"]["exact"]
    assert backwards["tau_minus"] == pytest.approx(alone["versus"]["backwards"]["tau_minus"]) \
        == pytest.approx(result["tau"] + 1)
    assert backwards["ci"] == pytest.approx(alone["versus"]["backwards"]["ci"])
    assert exact["tau_minus"] == pytest.approx(result["tau"] - 1) and exact["ci"][1] <= 0
    assert exact["above_fraction"] == 0.0 and backwards["above_fraction"] == 1.0


def test_the_fidelity_tables_mark_each_goal_with_the_number_that_decides_it(tmp_path, capsys):
    """A made-up analysis: tau 0.81 meets 0.8, a lower bound of 0.598 misses 0.6 (and reads so),
    0.81 is more than 0.1 under a modelled ceiling of 0.95, and an interval against parameters
    alone reaching below zero does not show it beaten."""
    from benchmarks.fidelity_tables import main

    # the committed synthetic analysis gives every field these figures leave alone
    committed = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "fidelity-synthetic" / "fidelity.json"
    base = json.loads(committed.read_text())
    base_row, ceiling = base["signals"]["accuracy"], base["noise_ceiling"]
    no_regret = {"mean": 0.01, "top": 0.0, "random": 0.03}

    def row(tau, low, strata, versus, regret=no_regret):
        return {**base_row, "available": True, "partial": False, "tau": tau, "tau_ci": [low, tau + 0.1],
                "strata": {**base_row["strata"], "mean_tau": strata},
                "versus": {name: {"tau_minus": d, "ci": [lo, d + 0.2], "above_fraction": 0.5}
                           for name, (d, lo) in versus.items()},
                "regret": regret}

    accuracy = row(0.81, 0.598, 0.55, {"log_flops": (0.4, 0.1), "log_params": (0.3, -0.05)},
                   {"mean": 0.004, "top": 0.0, "random": 0.03})
    report = {**base, "proxy_steps": 120, "reference_steps": 960, "measured": 30,
              "signals": {"accuracy": accuracy, "zico": {"available": False, "measured": 0},
                          "log_flops": row(0.4, 0.1, -0.1, {"log_params": (0.0, -0.2)}),
                          "log_params": row(0.4, 0.1, 0.0, {"log_flops": (0.0, -0.2)})},
              "combined": None, "budgets": {"120": accuracy, "480": row(0.9, 0.8, 0.8, {}, {"mean": 0.004, "top": 0.0, "random": 0.03})},
              "cpu_seconds": {"120": {"train": 100.2, "evaluate": 5.1}, "480": {"train": 400.4, "evaluate": 5.0}},
              "noise_ceiling": {"pairs": 12, "reference": {**ceiling["reference"], "tau": 0.9, "tau_ci": [0.7, 1.0]},
                                "modelled": {**ceiling["modelled"], "tau": 0.95, "ci": [0.9, 0.99], "sigma": 0.004,
                                             "pairs": 12, "architectures": 30,
                                             "gaussian": {"tau": 0.9, "ci": [0.8, 0.97]}},
                                "modelled_by_size": {**ceiling["modelled_by_size"], "tau": 0.93, "ci": [0.88, 0.98],
                                                     "sigmas": [0.006, 0.002], "split_flops": 1.2e8,
                                                     "group_pairs": [6, 6]},
                                "differences": [{"arch": "big", "flops": 6e8, "reference": -0.012},
                                                {"arch": "small", "flops": 2e7, "reference": 0.003}]}}
    (tmp_path / "fidelity.json").write_text(json.dumps(report))
    main([str(tmp_path), "--tau-goal", "0.8"])
    printed = capsys.readouterr().out
    assert "| accuracy | +0.81 [+0.60, +0.91] | +0.55 | +0.40 [+0.10, +0.60] | +0.30 [-0.05, +0.50] | 0.4 | 0.0 |" \
        in printed
    assert "zico" not in printed and "accuracy at 480 steps" in printed and "accuracy at 120 steps" not in printed
    assert "| tau >= 0.8 | +0.810 | met |" in printed
    assert "| lower 95 % bound >= 0.6 | +0.598 | **missed** |" in printed
    assert "| tau within the FLOPs strata >= 0.5 | +0.550 | met |" in printed
    assert "| within 0.1 of the noise ceiling (modelled) | +0.810 against +0.950 | **missed** |" in printed
    assert "| above FLOPs alone, interval above zero | +0.40 [+0.10, +0.60] | met |" in printed
    assert "| above parameters alone, interval above zero | +0.30 [-0.05, +0.50] | **missed** |" in printed
    assert "by FLOPs: small (20M) +0.30, big (600M) -1.20 points." in printed
    assert ("Modelled with each FLOPs half's own seed noise (up to 120M FLOPs sigma 0.60 points from 6 pairs, above "
            "0.20 from 6): tau +0.93 [+0.88, +0.98].") in printed
    assert ("Noise ceiling modelled over all 30 architectures (each a seed-to-seed difference drawn from the 12 "
            "pairs): tau +0.95 [+0.90, +0.99]; as Gaussian noise of the same spread (sigma 0.40 points): +0.90 "
            "[+0.80, +0.97].") in printed
    assert "| 4x | 480 | 400 + 5 | +0.90 [+0.80, +1.00] | 0.4 |" in printed  # the proxy's length, with its cost
    with pytest.raises(SystemExit, match="cannot read a fidelity analysis"):
        main([str(tmp_path / "missing")])
    with pytest.raises(SystemExit, match="no measured signal 'zico'"):
        main([str(tmp_path), "--score", "zico"])


def test_first_eta_reads_the_first_estimate_and_the_longest_silence_from_a_stamped_log():
    from benchmarks.first_eta import analyse

    stamped = [(100.0, "nasface search study s"), (104.0, "  rendering faces: 30 faces in 0m04s"),
               (116.0, "  still working: timing a trial's parts, 0m16s elapsed; search ~1h02m left"),
               (120.0, "  trial 1: step 3/40, loss 4.2, 1.00 steps/s, ~0m37s left, 0m10s elapsed; search ~3m20s left"),
               (416.0, "where the time went: total 5m16s")]
    found = analyse(stamped)
    assert found["first_eta_seconds"] == 3720 and found["printed_after_seconds"] == 16.0
    assert found["actual_left_seconds"] == 300.0 and found["ratio_actual_to_eta"] == pytest.approx(300 / 3720)
    assert found["worst_gap_seconds"] == 296.0 and found["lines"] == 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(500, 1000), st.integers(500, 3000)), min_size=3, max_size=12,
                unique_by=(lambda p: p[0], lambda p: p[1])),
       st.floats(0.1, 10), st.floats(-5, 5))
def test_the_blend_is_accuracy_at_weight_zero_zico_at_infinity_and_blind_to_units(points, scale, shift):
    from benchmarks.blend_validity import blend

    accuracy, zico = (np.array(column, float) for column in zip(*points))
    accuracy /= 1000
    for weight in (0.0, 0.5, 2.0, float("inf")):
        # a signal's units (a scale, an offset) never change the blend's order
        assert np.allclose(blend(accuracy, zico, weight), blend(scale * accuracy + shift, zico / scale - shift, weight))
    assert kendalltau(blend(accuracy, zico, 0.0), accuracy)[0] == pytest.approx(1.0)
    assert kendalltau(blend(accuracy, zico, float("inf")), zico)[0] == pytest.approx(1.0)


def test_the_blend_at_its_ends_reads_the_fidelity_logs_as_the_fidelity_study_did():
    """At weight 0 the blend is the proxy's accuracy and at infinity ZiCo: against the committed logs
    they must give the taus the committed fidelity analyses report for those two signals."""
    from benchmarks.blend_validity import FIDELITY_LOGS, fidelity

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    for folder in FIDELITY_LOGS:
        analysed = json.loads((results / folder / "fidelity.json").read_text())["signals"]
        found = fidelity(folder)
        assert found["architectures"] == analysed["accuracy"]["n"]
        assert found["0.0"]["tau"] == pytest.approx(analysed["accuracy"]["tau"], abs=1e-9)
        assert found["inf"]["tau"] == pytest.approx(analysed["zico"]["tau"], abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.05, 3.0), min_size=3, max_size=6), st.floats(0.6, 1.0), st.floats(0.0, 0.01),
       st.floats(-0.2, 0.5), st.randoms(use_true_random=False))
def test_latency_forms_recover_an_exact_repeat_discount_on_a_hand_made_table(part_ms, discount, per_operator,
                                                                               intercept, random):
    """Networks whose measured figure is exactly their first copies + discount x their repeats + a cost
    per operator + an intercept: the fitted repeat form predicts the held-out networks exactly."""
    from benchmarks.latency_forms import features, fitted, forms

    keys = [json.dumps({"size": 7 * (index + 1), "part": "block"}) for index in range(len(part_ms))]
    entries = dict(zip(keys, part_ms))
    nodes = {key: random.randint(2, 30) for key in keys}
    part_lists = [[key for key in random.sample(keys, random.randint(1, len(keys)))
                   for _ in range(random.randint(1, 6))] for _ in range(12)]
    f = features(part_lists, entries, nodes, {key: (0, 0.0) for key in keys})
    firsts = np.array([sum(entries[key] for key in set(parts)) for parts in part_lists])
    assert f["repeats"] == pytest.approx(f["sum"] - firsts)
    measured = firsts + discount * f["repeats"] + per_operator * f["operators"] + intercept
    order = np.array(random.sample(range(12), 12))
    fit, held = order[:6], order[6:]
    columns = forms(f)["+ repeats fitted"]
    assume(np.linalg.matrix_rank(np.array([*columns, np.ones(12)]).T[fit]) == len(columns) + 1)
    np.testing.assert_allclose(fitted(columns, measured, fit, held), measured[held], rtol=1e-6)


def test_the_capacity_pick_reads_the_committed_logs_as_the_rules_define_it():
    """Against the committed validations and fidelity studies: in every group the largest within noise is
    at least as large as the most accurate and no more than its margin below it in proxy accuracy, and on
    the task each pick fits its budget and reads its 960-step accuracy from the log."""
    from benchmarks.capacity_pick import BUDGETS, FIDELITY, on_task, published_picks
    from nasface.search.results import within_noise_margin

    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    found = published_picks("validate-synthetic")
    report = json.loads((results / "validate-synthetic" / "validate.json").read_text())
    proxies = {n["preset"]: n["proxy"] for g in report["groups"] for n in g["networks"] if n["preset"]}
    assert found["seed_noise_points"] == report["overall"]["seed_noise"]["std_points_mean"] and found["groups"]
    for group in found["groups"]:
        best, largest = group["most_accurate"], group["largest_within_noise"]
        assert largest["flops"] >= best["flops"]
        assert proxies[largest["preset"]] >= proxies[best["preset"]] - within_noise_margin(found["seed_noise_points"]) - 1e-12
        assert group["published_best"] >= max(best["published"], largest["published"])
    task = on_task(next(iter(FIDELITY)), {"none": 0.0})
    for budget, row in zip(BUDGETS, task["budgets"].values()):
        most, none = row["most_accurate"], row["largest_within_noise (none, 0.00 points)"]
        assert most["flops"] <= budget and most["proxy"] == none["proxy"]  # no noise: the most accurate again
        assert 0 <= most["reference_regret_points"] and row["largest_flops"] <= budget


def test_the_bound_benchmark_counts_held_out_networks_within_their_bound():
    """Networks scattered log-normally (5 %) about a line: over random splits the t bound holds for about
    its confidence of the held-out networks and the largest held-out error for about 20 / 21, with the
    wider margin."""
    from benchmarks.latency_bound import coverage

    rng = np.random.default_rng(1)
    sums = rng.uniform(2, 30, 120)
    scattered = [{"parts_ms": x, "nodes": 0, "ms": (1.1 * x + 0.3) * np.exp(rng.normal(0, 0.05))} for x in sums]
    found = coverage(scattered, fit=20, splits=40)
    assert found["t bound"]["within_bound"] >= 0.98 and found["largest"]["within_bound"] < 0.97
    assert found["t bound"]["median_margin"] > found["largest"]["median_margin"] > 0


@settings(max_examples=30, deadline=None)
@given(st.floats(0.8, 1.25), st.floats(1.15, 1.4), st.integers(0, 5))
def test_repeat_agreement_divides_out_the_day_and_tells_a_group_shift_from_each_networks(speed, shift, shifted):
    """A second sitting at another machine speed, with one group of networks read ``shift`` high: the speed is
    the median ratio and costs no agreement; the group's shift shows as spread between groups, not within."""
    from benchmarks.latency_repeat import GROUP, agreement

    rng = np.random.default_rng(0)
    first = {f"n{i:02d}": float(x) for i, x in enumerate(rng.uniform(1, 30, 48))}
    second = {name: ms * speed * (shift if index // GROUP == shifted else 1.0)
              for index, (name, ms) in enumerate(first.items())}
    found = agreement(first, second)
    assert found["networks"] == 48 and found["median_ratio"] == pytest.approx(speed)
    assert found["within_10"] == pytest.approx(1 - GROUP / 48) and found["largest"] == pytest.approx(shift - 1)
    assert found["within_group_spread"] < 1e-9 < found["group_mean_spread"]
    assert agreement(first, {**first, "extra": 1.0})["within_5"] == 1.0  # only networks both measured


def test_the_measurement_margins_are_the_committed_repeats_99th_percentiles():
    """``--latency-by measurement``'s margin per target is what ``latency_repeat.py`` found."""
    from nasface.search.latency import MEASUREMENT_MARGIN

    found = json.loads((RESULTS / "latency_repeat.json").read_text())["reads_higher"]
    for (runtime, precision), share in MEASUREMENT_MARGIN.items():
        assert share == pytest.approx(found[f"{runtime} {precision}"]["p99"], abs=0.0005)


def test_repeats_read_higher_over_every_ordered_pair_of_sittings():
    from benchmarks.latency_repeat import reads_higher

    sittings = [{"a": 1.0, "b": 2.0}, {"a": 1.1, "b": 2.0}, {"b": 1.0}]  # "a" in two sittings, "b" in three
    found = reads_higher(sittings)
    assert found["sittings"] == 3 and found["repeats"] == 2 + 6
    assert found["largest"] == pytest.approx(1.0) and found["p99"] <= found["largest"]
