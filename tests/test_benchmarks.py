"""The benchmarks' statistics and resumable log, on cases whose answer is known."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RowLog, rank_agreement  # noqa: E402


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
    result = rank_agreement(truth, truth, resamples=200, against=truth[::-1])
    assert result["tau_minus_other"] == pytest.approx(2.0)
    assert result["tau_minus_other_ci"] == pytest.approx([2, 2])
    assert result["tau_above_other_fraction"] == 1.0


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
