"""The promotion rule of successive halving, on hand-made rung results."""

from __future__ import annotations

import numpy as np
import pytest

from nasface.search.rungs import RungResult, crowding_distances, nondominated_fronts, promotions, rung_order


def test_fronts_by_hand():
    # maximise both: (2, 2) dominates (1, 1) and (2, 0); (0, 3) is dominated by nothing
    fronts = nondominated_fronts(np.array([[1, 1], [2, 2], [0, 3], [2, 0]]))
    assert fronts.tolist() == [1, 0, 0, 1]
    assert nondominated_fronts(np.array([[1, 1], [1, 1]])).tolist() == [0, 0]  # equal points: one front


def test_crowding_by_hand():
    # three points on a line: the ends are infinite, the middle spans (2 - 0) / 2 on each axis
    distance = crowding_distances(np.array([[0.0, 2.0], [1.0, 1.0], [2.0, 0.0]]))
    assert np.isinf(distance[0]) and np.isinf(distance[2]) and distance[1] == pytest.approx(2.0)


def test_promotion_takes_the_top_third_of_the_rung_by_front_then_crowding():
    results = [RungResult("a", (0.70, -300)), RungResult("b", (0.80, -300)), RungResult("c", (0.60, -100)),
               RungResult("d", (0.55, -400)), RungResult("e", (0.50, -500)), RungResult("f", (0.65, -200))]
    # front 0: b (best score), c (cheapest), f (between them); 6 // 3 = 2 places: the two ends of
    # the front (infinite crowding) before the one between
    assert promotions(results, eta=3, promoted=set()) == ["b", "c"]
    assert promotions(results, eta=3, promoted={"b"}) == ["c"]
    assert promotions(results[:2], eta=3, promoted=set()) == []  # too few have finished the rung


def test_ties_go_to_the_first_to_finish():
    results = [RungResult(k, (0.6, -100)) for k in "pqrs"]
    assert rung_order(results) == ["p", "q", "r", "s"]
    assert promotions(results, eta=2, promoted=set()) == ["p", "q"]


def test_infeasible_and_failed_candidates_count_but_never_rise():
    results = [RungResult("over", (0.99, -10), feasible=False), RungResult("crashed", (0.0, 0.0), failed=True),
               RungResult("ok", (0.60, -100)), RungResult("worse", (0.50, -200))]
    assert promotions(results, eta=2, promoted=set()) == ["ok", "worse"]
    assert promotions(results[:2], eta=2, promoted=set()) == []
    with pytest.raises(ValueError):
        promotions(results, eta=1, promoted=set())
