"""Which candidates earn a longer budget: successive halving for a constrained multi-objective search.

Asynchronous successive halving (ASHA, Li et al. 2020) starts every candidate at the lowest rung
(the fewest proxy steps) and promotes a candidate to the next rung once it is in the top 1/eta of
the candidates that have finished its rung.  With several objectives "top" has no single meaning;
as in MO-ASHA (Schmucker et al. 2021) the candidates of a rung are ranked by non-dominated sorting
of the search's objectives, and within a front by crowding distance (boundary points first, as in
NSGA-II), then by the order they finished in, so the rule is deterministic.  Infeasible (over a
budget) and failed candidates are never promoted and take no place in the top 1/eta.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RungResult:
    """One candidate's result at one rung: objectives to *maximise* (negate costs to minimise)."""

    key: object
    objectives: tuple[float, ...]
    feasible: bool = True
    failed: bool = False


def nondominated_fronts(points: np.ndarray) -> np.ndarray:
    """Front index of each row (0: not dominated by any row), every objective maximised."""
    points = np.asarray(points, dtype=float)
    count = len(points)
    ranks = np.full(count, -1)
    remaining = np.arange(count)
    front = 0
    while remaining.size:
        part = points[remaining]
        dominated = np.array([np.any(np.all(part >= p, axis=1) & np.any(part > p, axis=1)) for p in part])
        ranks[remaining[~dominated]] = front
        remaining = remaining[dominated]
        front += 1
    return ranks


def crowding_distances(points: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row within its set (boundary rows: infinity)."""
    points = np.asarray(points, dtype=float)
    count, objectives = points.shape if points.ndim == 2 else (len(points), 0)
    distance = np.zeros(count)
    if count <= 2 and len(np.unique(points, axis=0)) == count:
        return np.full(count, np.inf)
    for column in range(objectives):
        order = np.argsort(points[:, column], kind="stable")
        values = points[order, column]
        span = values[-1] - values[0]
        if span == 0:
            continue  # all equal on this axis: it has no boundary and spreads nothing
        distance[order[0]] = distance[order[-1]] = np.inf
        distance[order[1:-1]] += (values[2:] - values[:-2]) / span
    return distance


def rung_order(results: Sequence[RungResult]) -> list:
    """The keys of the rung's promotable results, best first (front, then crowding, then arrival)."""
    usable = [r for r in results if r.feasible and not r.failed]
    if not usable:
        return []
    points = np.array([r.objectives for r in usable], dtype=float)
    fronts = nondominated_fronts(points)
    crowding = np.zeros(len(usable))
    for front in np.unique(fronts):
        members = np.flatnonzero(fronts == front)
        crowding[members] = crowding_distances(points[members])
    order = sorted(range(len(usable)), key=lambda i: (fronts[i], -crowding[i], i))
    return [usable[i].key for i in order]


def promotions(results: Sequence[RungResult], eta: int, promoted: set) -> list:
    """Keys to promote from a rung now: those in the top ``len(results) // eta`` not promoted yet.

    ``results`` are every result the rung has so far, in the order they finished (failed and
    infeasible ones included: they count towards the rung's size, as in ASHA, but never rise).
    """
    if eta < 2:
        raise ValueError(f"eta must be at least 2, got {eta}")
    places = len(results) // eta
    return [key for key in rung_order(results)[:places] if key not in promoted]
