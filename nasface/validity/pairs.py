"""How a ranking orders a group's published pairs.

A *pair* is two networks of one group; it is *counted* when their published scores differ by at
least ``TIE_POINTS`` (closer, the table cannot say which is better).  A predictor (the proxy's
score, FLOPs, parameters) *orders* a counted pair as published when it puts the published better
one higher; a predictor that ties the two (same FLOPs, say) gets half the pair: it cannot choose,
and a coin would be right half of the time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nasface.validity.published import TIE_POINTS

_SLACK = 1e-9  # printed figures are decimals: 94.755 - 94.455 must not fall below 0.3 by rounding


@dataclass(frozen=True)
class PairCount:
    counted: int      # pairs whose published scores differ by TIE_POINTS or more
    ordered: float    # of those, how many the predictor orders as published (ties count a half)
    ties: int         # published ties, not counted

    @property
    def share(self) -> float | None:
        return None if self.counted == 0 else self.ordered / self.counted

    def __add__(self, other: "PairCount") -> "PairCount":
        return PairCount(self.counted + other.counted, self.ordered + other.ordered, self.ties + other.ties)


NO_PAIRS = PairCount(0, 0.0, 0)


def count_pairs(published, predicted, among=None) -> PairCount:
    """The published pairs of one group's networks that ``predicted`` orders as published; with
    ``among`` (a mask over the pairs, in ``np.triu_indices`` order), only those pairs."""
    published, predicted = np.asarray(published, float), np.asarray(predicted, float)
    i, j = np.triu_indices(len(published), 1)
    gap = published[i] - published[j]
    if among is not None:
        among = np.asarray(among, bool)
        i, j, gap = i[among], j[among], gap[among]
    counted = np.abs(gap) >= TIE_POINTS - _SLACK
    agreement = np.sign(gap[counted]) * np.sign(predicted[i][counted] - predicted[j][counted])
    return PairCount(counted=int(counted.sum()), ordered=float(np.sum(agreement > 0) + 0.5 * np.sum(agreement == 0)),
                     ties=int((~counted).sum()))


def similar_in_size(flops, ratio: float) -> np.ndarray:
    """The pairs (``np.triu_indices`` order) whose FLOPs are within ``ratio`` of each other: where size
    alone cannot say much, and a proxy has to."""
    flops = np.asarray(flops, float)
    i, j = np.triu_indices(len(flops), 1)
    return np.maximum(flops[i], flops[j]) <= ratio * np.minimum(flops[i], flops[j])


def pooled_tau(groups: list[tuple]) -> float | None:
    """Kendall tau-b of ``predicted`` against ``published`` over the pairs *within* each group
    ([(published, predicted), ...]), published scores closer than ``TIE_POINTS`` taken as tied: one
    group gives its tau-b; several pool their pairs, so a group of many networks weighs as its many
    pairs do.  None where either ranking has no untied pair."""
    concordance = published_untied = predicted_untied = 0.0
    for published, predicted in groups:
        published, predicted = np.asarray(published, float), np.asarray(predicted, float)
        i, j = np.triu_indices(len(published), 1)
        gap = published[i] - published[j]
        sx = np.where(np.abs(gap) >= TIE_POINTS - _SLACK, np.sign(gap), 0.0)
        sy = np.sign(predicted[i] - predicted[j])
        concordance += float(np.sum(sx * sy))
        published_untied += float(np.sum(sx != 0))
        predicted_untied += float(np.sum(sy != 0))
    if published_untied == 0 or predicted_untied == 0:
        return None
    return concordance / float(np.sqrt(published_untied * predicted_untied))
