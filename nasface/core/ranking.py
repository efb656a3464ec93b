"""Rank statistics for judging a proxy: how well one ranking of architectures predicts another.

Kendall tau-b and Spearman rho with bootstrap intervals over architectures, the paired difference
to a second predictor (FLOPs alone, say), agreement within cost strata, the recall of the
reference's best architectures, the seed-noise ceiling modelled over all architectures, what
picking by a signal loses at the reference under a cost budget, and a combination of several
signals judged by leave-one-architecture-out cross-validation, so that it is never scored on what
it was fitted to.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau, rankdata, spearmanr


# Resamples are taken in blocks whose pairwise sign arrays (block x n x n) hold at most this many
# values, 32 MB each, so that a study of hundreds of architectures stays in memory.
_PAIRWISE_BLOCK = 4_000_000


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row of ``x`` against the same row of ``y`` (both resamples x items).

    The statistic scipy's ``kendalltau`` gives row by row (pairs tied in one ranking count in that
    ranking's normaliser only; pairs tied in both, as repeated items of a bootstrap resample are,
    in neither), computed for all rows at once: a bootstrap of 2,000 resamples was 2,000 calls.
    NaN where a row of either is constant."""
    x, y = np.atleast_2d(np.asarray(x, float)), np.atleast_2d(np.asarray(y, float))
    taus = np.empty(len(x))
    block = max(1, _PAIRWISE_BLOCK // max(1, x.shape[1] ** 2))
    for first in range(0, len(x), block):
        rows = slice(first, first + block)
        sx = np.sign(x[rows, :, None] - x[rows, None, :])
        sy = np.sign(y[rows, :, None] - y[rows, None, :])
        concordance = np.einsum("rij,rij->r", sx, sy)
        with np.errstate(invalid="ignore", divide="ignore"):
            taus[rows] = concordance / np.sqrt(np.einsum("rij,rij->r", sx, sx) * np.einsum("rij,rij->r", sy, sy))
    return taus


def spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman rho of each row of ``x`` against the same row of ``y`` (average ranks for ties)."""
    rx, ry = (rankdata(np.atleast_2d(np.asarray(v, float)), axis=1) for v in (x, y))
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=1) / np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))


def rank_agreement(x, y, resamples: int = 2000, seed: int = 0, baselines: dict | None = None) -> dict:
    """Kendall tau-b and Spearman rho of ``x`` vs ``y``, with 95 % bootstrap intervals.

    The bootstrap resamples items (architectures) with replacement; resamples in which either
    ranking is constant are skipped (no correlation is defined).  With ``baselines`` ({name: a
    second predictor of ``y``}: FLOPs alone, say), it also reports under ``versus[name]`` the paired
    difference tau(x, y) - tau(baseline, y) over the same resamples and how often it is above zero,
    all baselines on one set of resamples (those where none of them is constant either).
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    others = {name: np.asarray(values, float) for name, values in (baselines or {}).items()}
    tau, rho = float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)
    picks = np.random.default_rng(seed).integers(0, len(x), (resamples, len(x)))
    usable = np.ptp(x[picks], axis=1) > 0
    for ranking in (y, *others.values()):
        usable &= np.ptp(ranking[picks], axis=1) > 0
    picks = picks[usable]
    taus = kendall_rows(x[picks], y[picks])
    rhos = spearman_rows(x[picks], y[picks])

    def paired(other: np.ndarray) -> dict:
        found = taus - kendall_rows(other[picks], y[picks])
        return {"tau_minus": tau - float(kendalltau(other, y).statistic), "ci": _interval(found),
                "above_fraction": float(np.mean(found > 0)) if len(found) else None}

    result = {"n": len(x), "tau": tau, "tau_ci": _interval(taus), "rho": rho, "rho_ci": _interval(rhos),
              "resamples": len(taus)}
    if baselines is not None:
        result["versus"] = {name: paired(other) for name, other in others.items()}
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


def modelled_ceiling(reference, differences, resamples: int = 2000, seed: int = 0, arch_groups=None,
                     pair_groups=None, noise: str = "empirical") -> dict:
    """Seed-to-seed Kendall tau of the reference over every measured architecture, modelled from
    the few that were trained with two seeds.

    Measured directly, the noise ceiling is tau over the repeated architectures only (a dozen):
    its interval spans most of [-1, 1], and it is over other architectures than a signal's tau.
    Here a second seed of every measured architecture is simulated as ``reference`` plus a
    seed-to-seed difference, and ``tau`` is the mean over ``resamples`` simulations:

    - ``noise="empirical"`` (the default): each architecture's difference is one of the repeated
      architectures' ``differences``, drawn at random with a random sign.  Seed noise is not
      Gaussian: most networks land within a fraction of a point of their other seed, a few
      unstable ones several points away, and this keeps that shape.
    - ``noise="gaussian"``: one Gaussian spread for all (sigma^2 = mean(d^2) / 2, a difference
      of spread sigma * sqrt 2).  With a heavy tail it spreads the few unstable networks' noise
      over all of them (measured on simulated studies, 12 % of the networks 13x noisier: error
      -0.03 +/- 0.08 against +0.02 +/- 0.04 for the empirical model; alike on Gaussian noise).

    The 95 % interval also resamples the differences, so noise known from few pairs widens it.
    It reads somewhat high: ``reference`` is itself one noisy draw, a little more spread out than
    the noiseless values.  ``sigma`` (the Gaussian spread) is given with either model.

    ``arch_groups`` and ``pair_groups`` (a label per architecture and per pair, e.g. small and
    large networks) give each group its own noise, from its own pairs, resampled within the group:
    whether one noise fits all networks.  Every architecture's group needs pairs of its own.
    """
    if noise not in ("empirical", "gaussian"):
        raise ValueError(f"noise must be 'empirical' or 'gaussian', not {noise!r}")
    reference, differences = np.asarray(reference, float), np.asarray(differences, float)
    if arch_groups is None:
        arch_groups, pair_groups = np.zeros(len(reference), int), np.zeros(len(differences), int)
    arch_groups, pair_groups = np.asarray(arch_groups), np.asarray(pair_groups)
    labels = sorted(set(arch_groups.tolist()))
    if not set(labels) <= set(pair_groups.tolist()):
        raise ValueError("every architecture's group needs seed pairs of its own")
    rng = np.random.default_rng(seed)
    sigmas = {g: float(np.sqrt(np.mean(differences[pair_groups == g] ** 2) / 2)) for g in labels}
    base = np.broadcast_to(reference, (resamples, len(reference)))
    if noise == "gaussian":
        unit = rng.normal(size=(resamples, len(reference))) * np.sqrt(2)
        drawn = unit * np.array([sigmas[g] for g in arch_groups.tolist()])
        varied_drawn = np.empty((resamples, len(reference)))
        for g in labels:
            own = differences[pair_groups == g]
            picks = rng.integers(0, len(own), (resamples, len(own)))
            varied_drawn[:, arch_groups == g] = np.sqrt(np.mean(own[picks] ** 2, axis=1) / 2)[:, None]
        varied_drawn *= unit
    else:
        drawn, varied_drawn = np.empty((resamples, len(reference))), np.empty((resamples, len(reference)))
        for g in labels:
            own, members = differences[pair_groups == g], arch_groups == g
            drawn[:, members] = own[rng.integers(0, len(own), (resamples, members.sum()))]
            pairs_again = own[rng.integers(0, len(own), (resamples, len(own)))]  # the pairs resampled
            varied_drawn[:, members] = np.take_along_axis(
                pairs_again, rng.integers(0, len(own), (resamples, members.sum())), axis=1)
        drawn *= rng.choice([-1.0, 1.0], drawn.shape)
        varied_drawn *= rng.choice([-1.0, 1.0], drawn.shape)
    at_noise = kendall_rows(base, reference + drawn)
    varied = kendall_rows(base, reference + varied_drawn)
    found = {"tau": float(np.nanmean(at_noise)), "ci": _interval(varied[~np.isnan(varied)]), "noise": noise,
             "pairs": len(differences), "architectures": len(reference)}
    if len(labels) == 1:
        return {**found, "sigma": sigmas[labels[0]]}
    return {**found, "sigmas": {str(g): sigmas[g] for g in labels},
            "group_pairs": {str(g): int(np.sum(pair_groups == g)) for g in labels}}


def budget_regret(values, reference, costs) -> dict:
    """What choosing by ``values`` loses at the reference, budget by budget.

    Each architecture's cost in turn is a budget; among the architectures that fit it, the one
    ``values`` ranks first is picked (tied firsts count as a fair draw among them), and its regret
    is the best reference value among those that fit minus the pick's.  Tau weighs every pair
    alike, also pairs no user would ever choose between; this is the question a user of the
    front asks: "at my budget, how much worse is the proxy's choice than the best one?".

    Returns the mean regret over the budgets (``mean``), the regret at the largest budget, where
    every architecture fits (``top``: what a search under that budget gives), and the mean for a
    pick made at random among those that fit (``random``).  No bootstrap interval: a resample
    that drops an architecture changes which ones compete at each budget, so its regret is
    biased low (measured: the point estimate sat at the top of its own percentile interval).
    """
    values, reference, costs = (np.asarray(a, float) for a in (values, reference, costs))
    fits = costs[None, :] <= costs[:, None]  # [budget, candidate]
    best = np.where(fits, reference, -np.inf).max(axis=1)
    chosen = fits & (values == np.where(fits, values, -np.inf).max(axis=1, keepdims=True))
    regrets = best - (chosen * reference).sum(axis=1) / chosen.sum(axis=1)
    uniform = best - (fits * reference).sum(axis=1) / fits.sum(axis=1)
    return {"mean": float(regrets.mean()), "top": float(regrets[np.argmax(costs)]), "random": float(uniform.mean())}


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
    resampled = np.full((resamples, len(groups)), np.nan)  # NaN: no tau in that group's resample
    for column, index in enumerate(groups):
        if len(index) >= 3:
            picks = rng.choice(index, (resamples, len(index)))
            resampled[:, column] = kendall_rows(x[picks], y[picks])
    some = ~np.isnan(resampled).all(axis=1)
    means = np.nanmean(resampled[some], axis=1) if some.any() else []
    return {"per_stratum": per_group, "sizes": [len(g) for g in groups],
            "mean_tau": float(np.mean(defined)) if defined else None, "mean_tau_ci": _interval(means)}


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks scaled to [0, 1] (ties share their mean rank)."""
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
