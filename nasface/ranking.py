"""Rank statistics for judging a proxy: how well one ranking of architectures predicts another.

Kendall tau-b and Spearman rho with bootstrap intervals over architectures, the paired difference
to a second predictor (FLOPs alone, say), agreement within cost strata, the recall of the
reference's best architectures, and a combination of several signals judged by
leave-one-architecture-out cross-validation, so that it is never scored on what it was fitted to.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau, spearmanr


def rank_agreement(x, y, resamples: int = 2000, seed: int = 0, against=None, baselines: dict | None = None) -> dict:
    """Kendall tau-b and Spearman rho of ``x`` vs ``y``, with 95 % bootstrap intervals.

    The bootstrap resamples items (architectures) with replacement; resamples in which either
    ranking is constant are skipped (no correlation is defined).  With ``against`` (a second
    predictor of ``y``), it also reports the paired difference tau(x, y) - tau(against, y) over the
    same resamples, and how often it is above zero; with ``baselines`` ({name: predictor}), the same
    for each, under ``versus[name]``, all from one set of resamples.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    others = {name: np.asarray(values, float) for name, values in (baselines or {}).items()}
    if against is not None:
        others[None] = np.asarray(against, float)
    tau, rho = float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    taus, rhos, diffs = [], [], {name: [] for name in others}
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        if np.ptp(x[pick]) == 0 or np.ptp(y[pick]) == 0 or any(np.ptp(o[pick]) == 0 for o in others.values()):
            continue
        taus.append(kendalltau(x[pick], y[pick]).statistic)
        rhos.append(spearmanr(x[pick], y[pick]).statistic)
        for name, other in others.items():
            diffs[name].append(taus[-1] - kendalltau(other[pick], y[pick]).statistic)

    def interval(values: list[float]) -> list[float] | None:
        return [float(v) for v in np.percentile(values, [2.5, 97.5])] if values else None

    def paired(name) -> tuple[float, list[float] | None, float | None]:
        found = diffs[name]
        return (tau - float(kendalltau(others[name], y).statistic), interval(found),
                float(np.mean(np.asarray(found) > 0)) if found else None)

    result = {"n": len(x), "tau": tau, "tau_ci": interval(taus), "rho": rho, "rho_ci": interval(rhos),
              "resamples": len(taus)}
    if against is not None:
        result.update(zip(("tau_minus_other", "tau_minus_other_ci", "tau_above_other_fraction"), paired(None)))
    if baselines is not None:
        result["versus"] = {name: dict(zip(("tau_minus", "ci", "above_fraction"), paired(name)))
                            for name in baselines}
    return result


def _interval(values) -> list[float] | None:
    return [float(v) for v in np.percentile(values, [2.5, 97.5])] if len(values) else None


def top_recall(predicted, reference, top: int = 5, within: int = 10) -> float:
    """The fraction of the reference's ``top`` best items that are among the predictor's ``within`` best."""
    predicted, reference = np.asarray(predicted, float), np.asarray(reference, float)
    top = min(top, len(reference))
    best = set(np.argsort(-reference, kind="stable")[:top].tolist())
    chosen = set(np.argsort(-predicted, kind="stable")[:min(within, len(predicted))].tolist())
    return len(best & chosen) / top if top else float("nan")


def strata_of(costs, strata: int = 3) -> list[np.ndarray]:
    """Indices split into ``strata`` groups of consecutive cost (as equal in size as they can be)."""
    order = np.argsort(np.asarray(costs, float), kind="stable")
    return [part for part in np.array_split(order, strata) if len(part)]


def stratified_tau(x, y, groups: list[np.ndarray], resamples: int = 2000, seed: int = 0) -> dict:
    """Kendall tau within each group (e.g. a FLOPs stratum), their mean, and a bootstrap interval
    of the mean that resamples items within each group."""
    x, y = np.asarray(x, float), np.asarray(y, float)

    def tau_of(index) -> float | None:
        if len(index) < 3 or np.ptp(x[index]) == 0 or np.ptp(y[index]) == 0:
            return None
        return float(kendalltau(x[index], y[index]).statistic)

    per_group = [tau_of(index) for index in groups]
    defined = [t for t in per_group if t is not None]
    rng = np.random.default_rng(seed)
    means = []
    for _ in range(resamples):
        taus = [tau_of(rng.choice(index, len(index))) for index in groups]
        taus = [t for t in taus if t is not None]
        if taus:
            means.append(float(np.mean(taus)))
    return {"per_stratum": per_group, "sizes": [len(g) for g in groups],
            "mean_tau": float(np.mean(defined)) if defined else None, "mean_tau_ci": _interval(means)}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks scaled to [0, 1] (ties share their mean rank)."""
    from scipy.stats import rankdata

    return (rankdata(values) - 1) / max(1, len(values) - 1)


def _rank_within(train: np.ndarray, value: float) -> float:
    """Where ``value`` falls among ``train``, on the [0, 1] scale of ``_ranks`` (ties halfway)."""
    below = np.sum(train < value) + 0.5 * np.sum(train == value)
    return float(np.clip((below - 0.5) / max(1, len(train) - 1), 0.0, 1.0))


def loo_combination(features: dict[str, np.ndarray], reference, ridge: float = 1.0) -> dict:
    """Leave-one-architecture-out predictions of the reference from several signals.

    Each signal (oriented: higher predicts better) is turned into ranks on the training fold; a
    ridge regression of the reference's ranks on them is fitted there and predicts the held-out
    architecture from where its signals fall among the training fold's.  Returns the
    out-of-fold predictions and the mean weight each signal got over the folds.
    """
    names = list(features)
    matrix = np.column_stack([np.asarray(features[n], float) for n in names])
    reference = np.asarray(reference, float)
    count = len(reference)
    predictions = np.empty(count)
    weights = np.zeros(len(names))
    for held in range(count):
        train = np.delete(np.arange(count), held)
        ranked = np.column_stack([_ranks(matrix[train, j]) for j in range(len(names))])
        centre = ranked.mean(axis=0)
        target = _ranks(reference[train])
        design = ranked - centre
        coef = np.linalg.solve(design.T @ design + ridge * np.eye(len(names)), design.T @ (target - target.mean()))
        point = np.array([_rank_within(matrix[train, j], matrix[held, j]) for j in range(len(names))])
        predictions[held] = target.mean() + (point - centre) @ coef
        weights += coef / count
    return {"predictions": predictions.tolist(), "weights": dict(zip(names, weights.tolist()))}
