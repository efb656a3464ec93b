"""The analysis of a fidelity log: how every signal ranks architectures against the reference.

Rank agreement with bootstrap intervals, overall and within FLOPs strata, the paired difference to
the trivial baselines, the seed-noise ceiling, the combination of signals, and what each budget
below the reference costs beside how it ranks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nasface.fidelity.report import (Agreement, Best, BudgetCost, Combined, Counterpart, Estimate, FidelityReport,
                                     FlopsStrata, ModelledBySize, ModelledCeiling, NoiseCeiling, Paired,
                                     RankAgreement, Regret, SeedDifference, ShortestTrusted, SignalAgreement, Strata,
                                     TableRow, UnmeasuredSignal, VersusScore)
from nasface.fidelity.settings import FidelitySettings
from nasface.core.ranking import (budget_regret, loo_combination, modelled_ceiling, rank_agreement, strata_of, stratified_tau, top_recall)
from nasface.training.signals import oriented

MIN_HALF_PAIRS = 3         # seed pairs each half needs for a sigma of its own
TRIVIAL = ("log_flops", "log_params")
# a signal no search can score with (its teacher is not the study's), only measured: it is compared
# with its natural rival on the same architectures (paired bootstrap), never combined or chosen.
# Agreement with a yardstick teacher against agreement with the teacher the students learn from.
COUNTERPART = {"yardstick_cka": "teacher_cka"}
def result_at(row: dict | None, steps: int) -> dict | None:
    """A logged run's result at ``steps``, if it was measured there and succeeded."""
    if row is None:
        return None
    for result in row["results"]:
        if result["steps"] == steps:
            return result if result["status"] == "ok" else None
    return None


def analyse(settings: FidelitySettings, specs: list, repeated: list, rows: list) -> FidelityReport:
    """Rank agreement of every signal with the reference, over the architectures measured so far."""
    proxy_steps, reference_steps = settings.proxy_steps, settings.reference_steps
    by_arch = {(row["arch"], row["seed"]): row for row in rows if row is not None}
    seed = settings.proxy.seed
    # each first-seed architecture's successful result at each budget, looked up once
    first = {s.name: {steps: result_at(by_arch.get((s.name, seed)), steps) for steps in settings.steps()}
             for s in specs}
    complete = [name for name, at in first.items() if at[proxy_steps] and at[reference_steps]]
    failed = {row["arch"]: [r["reason"] for r in row["results"] if r["status"] != "ok"]
              for row in by_arch.values() if any(r["status"] != "ok" for r in row["results"])}
    report = FidelityReport(architectures=len(specs), measured=len(complete), failed=failed, proxy_steps=proxy_steps,
                            reference_steps=reference_steps, signals={}, budgets={}, strata=None, noise_ceiling=None,
                            combined=None, cpu_seconds=_cpu_seconds(by_arch, seed, settings.steps()),
                            table=_table(by_arch))
    if len(complete) < 4:
        return dataclasses.replace(
            report, note=f"{len(complete)} architectures measured so far: at least 4 are needed for rank statistics")
    reference = np.array([first[n][reference_steps]["accuracy"] for n in complete])
    costs = {n: by_arch[(n, seed)]["cost"] for n in complete}
    flops = np.log10([costs[n]["flops"] for n in complete])
    resamples, groups = settings.bootstrap, strata_of(flops)
    signals: dict[str, SignalAgreement | UnmeasuredSignal] = {}
    features, partial = {}, {}
    for name in settings.signals:
        raw = [(first[n][proxy_steps].get("signals") or {}).get(name) for n in complete]
        have = np.array([v is not None for v in raw])
        if have.sum() < 4:
            signals[name] = UnmeasuredSignal(measured=int(have.sum()))
            continue
        values = np.array([np.nan if v is None else oriented(name, v) for v in raw])
        if name in TRIVIAL and float(rank_agreement(values[have], reference[have], 0)["tau"]) < 0:
            # a trivial baseline is given the better of its two directions (bigger or smaller is
            # better), so that beating it is not the result of guessing its sign wrongly
            values = -values
        features[name] = values
        if not have.all():  # e.g. a yardstick given after some architectures were logged: its own subset
            partial[name] = have
    baselines = {name: features[name] for name in TRIVIAL if name in features}
    points = {}
    for name, values in features.items():
        have = partial.get(name, np.ones(len(complete), bool))
        against = {other: base[have] for other, base in baselines.items() if other != name}
        subset = groups if name not in partial else strata_of(flops[have])
        agreement = _agreement(values[have], reference[have], subset, resamples, against, flops[have])
        like_for_like = {} if name not in partial and name not in COUNTERPART else \
            _like_for_like(name, values, have, reference, features, partial, resamples)
        signals[name] = SignalAgreement(**_fields_of(agreement), measured=int(have.sum()), partial=name in partial,
                                        measure_only=name in COUNTERPART, **like_for_like)
        points[name] = [values[have].tolist(), reference[have].tolist(), [n for n, kept in zip(complete, have) if kept]]
    for name in {*partial, *COUNTERPART} & set(features):  # the combination and the best signal compare
        del features[name]                                 # scores a search can use, on the same architectures
    budgets = {}
    for steps in settings.steps():
        values = np.array([first[n][steps]["accuracy"] if first[n][steps] else np.nan for n in complete])
        if steps != reference_steps and not np.isnan(values).any():
            budgets[str(steps)] = _agreement(values, reference, groups, resamples, baselines, flops)
    report = dataclasses.replace(
        report, signals=signals, budgets=budgets, points=points,
        strata=FlopsStrata(bounds_log10_flops=[[float(flops[g].min()), float(flops[g].max())] for g in groups]),
        noise_ceiling=_noise_ceiling(by_arch, repeated, seed, settings, resamples, reference, 10 ** flops))
    usable = {n: v for n, v in features.items() if np.ptp(v) > 0}
    scores = dict(features)  # what the best is chosen from: the signals a search can use, and the combination
    if len(usable) >= 2 and len(complete) >= 6:
        combined = loo_combination(usable, reference)
        scores["combined"] = np.array(combined["predictions"])
        agreement = _agreement(scores["combined"], reference, groups, resamples, baselines, flops)
        report = dataclasses.replace(report, combined=Combined(weights=combined["weights"], **_fields_of(agreement)))
    best = best_signal(report)
    if best is not None:
        best = dataclasses.replace(best, versus_score=_versus_score(best.signal, settings.search.score, scores,
                                                                    reference, resamples))
    return dataclasses.replace(report, shortest_trusted=shortest_trusted_budget(report), best=best)


def _fields_of(agreement: Agreement) -> dict:
    """An agreement's fields, to build a richer row from (a signal's, the combination's)."""
    return {item.name: getattr(agreement, item.name) for item in dataclasses.fields(Agreement)}


def _versus_score(best: str, score: str, values: dict, reference, resamples: int) -> VersusScore | None:
    """The best signal against the score the study's search maximises (``--score``), paired over
    the same resamples: whether making the best one the default would be a measured gain or noise."""
    if best == score or score not in values:
        return None
    paired = rank_agreement(values[best], reference, resamples, 0, baselines={score: values[score]})["versus"][score]
    return VersusScore(score=score, tau_score=rank_agreement(values[score], reference, 0)["tau"], **paired)


def _like_for_like(name: str, values, have, reference, features: dict, partial: dict, resamples: int) -> dict:
    """A partial signal's tau is over fewer architectures than the others': each complete signal's
    tau over the same ones (``same_architectures``), and the paired difference to its counterpart
    (``COUNTERPART``; ``paired``)."""
    complete = [other for other in features if other not in partial and other != name]
    found = {"same_architectures": {other: rank_agreement(features[other][have], reference[have], 0)["tau"]
                                    for other in complete if np.ptp(features[other][have]) > 0}}
    rival = COUNTERPART.get(name)
    if rival in found["same_architectures"]:
        paired = rank_agreement(values[have], reference[have], resamples, 0,
                                baselines={rival: features[rival][have]})["versus"][rival]
        found["paired"] = Counterpart(rival=rival, tau_other=found["same_architectures"][rival],
                                      tau_minus_other=paired["tau_minus"], tau_minus_other_ci=paired["ci"],
                                      tau_above_other_fraction=paired["above_fraction"])
    return found


def _agreement(values, reference, groups, resamples: int, baselines: dict, flops) -> Agreement:
    """Rank agreement with the reference, the paired difference to each trivial baseline in
    ``baselines`` (FLOPs alone, parameters alone): what a score must beat, on the same resamples;
    and the reference accuracy lost by picking with it under a FLOPs budget."""
    found = rank_agreement(values, reference, resamples, 0, baselines=baselines)
    return Agreement(**{name: found[name] for name in ("n", "tau", "tau_ci", "rho", "rho_ci", "resamples")},
                     versus={name: Paired(**paired) for name, paired in found["versus"].items()},
                     strata=Strata(**stratified_tau(values, reference, groups, resamples)),
                     top5_in_top10=top_recall(values, reference),
                     regret=Regret(**budget_regret(values, reference, flops)))


def _noise_ceiling(by_arch: dict, repeated: list, seed: int, settings: FidelitySettings, resamples: int,
                   reference: np.ndarray, flops: np.ndarray) -> NoiseCeiling:
    """Seed-to-seed agreement at the reference (the ceiling any proxy can reach) and at the proxy,
    over the repeated architectures; and at the reference over every measured one (``reference``,
    ``flops``), modelled from the repeated ones' seed-to-seed differences (``modelled_ceiling``:
    drawn from them, and beside it Gaussian): with one seed noise for all, and with one for the
    smaller and one for the larger half of the pairs (split at their median FLOPs), which tells
    whether one fits all."""
    both = [s.name for s in repeated
            if result_at(by_arch.get((s.name, seed)), settings.reference_steps)
            and result_at(by_arch.get((s.name, seed + 1)), settings.reference_steps)]
    if len(both) < 4:
        return NoiseCeiling(pairs=len(both), note="fewer than 4 architectures have both seeds yet")
    measured = {}
    accuracies = {}  # (first seed's, second seed's) accuracies of the pairs at each budget
    for label, steps in (("reference", settings.reference_steps), ("proxy", settings.proxy_steps)):
        first = [result_at(by_arch[(n, seed)], steps) for n in both]
        second = [result_at(by_arch[(n, seed + 1)], steps) for n in both]
        if all(first) and all(second):
            accuracies[label] = (np.array([r["accuracy"] for r in first]), np.array([r["accuracy"] for r in second]))
            measured[label] = RankAgreement(**rank_agreement(accuracies[label][1], accuracies[label][0], resamples))
    differences = accuracies["reference"][0] - accuracies["reference"][1]  # every pair has its reference
    modelled = modelled_ceiling(reference, differences, resamples)
    gaussian = modelled_ceiling(reference, differences, resamples, noise="gaussian")  # for comparison
    # each pair's seed-to-seed difference beside its FLOPs: whether one sigma fits small and large alike
    pair_flops = np.array([by_arch[(n, seed)]["cost"]["flops"] for n in both])
    split = float(np.median(pair_flops))
    pair_groups, arch_groups = np.where(pair_flops <= split, 0, 1), np.where(flops <= split, 0, 1)
    by_size = None
    if min(np.sum(pair_groups == 0), np.sum(pair_groups == 1)) >= MIN_HALF_PAIRS:
        found = modelled_ceiling(reference, differences, resamples, arch_groups=arch_groups, pair_groups=pair_groups)
        by_size = ModelledBySize(**{name: found[name] for name in ("tau", "ci", "noise", "pairs", "architectures")},
                                 sigmas=[found["sigmas"]["0"], found["sigmas"]["1"]],
                                 group_pairs=[found["group_pairs"]["0"], found["group_pairs"]["1"]],
                                 split_flops=split,
                                 group_architectures=[int(np.sum(arch_groups == 0)), int(np.sum(arch_groups == 1))])
    return NoiseCeiling(pairs=len(both), **measured,
                        modelled=ModelledCeiling(**modelled, gaussian=Estimate(tau=gaussian["tau"], ci=gaussian["ci"])),
                        differences=[SeedDifference(arch=n, flops=int(f), reference=d)
                                     for n, f, d in zip(both, pair_flops, differences.tolist())],
                        modelled_by_size=by_size)


def best_signal(report: FidelityReport) -> Best | None:
    """The signal (or the combination) with the highest Kendall tau against the reference, among
    those measured on every architecture (a partial signal's tau is over another set), and beside
    it the better of the trivial baselines: FLOPs and parameters are what a score must beat, not a
    score (they restate the search's cost objectives), so they are never the best."""
    measured = {name: row.tau for name, row in report.available().items() if not row.partial and not row.measure_only}
    candidates = {name: tau for name, tau in measured.items() if name not in TRIVIAL}
    if report.combined:
        candidates["combined"] = report.combined.tau
    if not candidates:
        return None
    name = max(candidates, key=candidates.get)
    baselines = {n: measured[n] for n in TRIVIAL if n in measured}
    baseline = max(baselines, key=baselines.get) if baselines else None
    return Best(signal=name, tau=candidates[name], baseline=baseline,
                baseline_tau=None if baseline is None else baselines[baseline])


def _cpu_seconds(by_arch: dict, seed: int, steps: list[int]) -> dict:
    """Mean CPU seconds per architecture: training at each budget alone, evaluation, zero-cost scores."""
    rows = [row for (arch, s), row in by_arch.items() if s == seed]
    out = {}
    for budget in steps:
        found = [r for row in rows for r in row["results"] if r["steps"] == budget and r["status"] == "ok"]
        if found:
            out[str(budget)] = {"train": float(np.mean([r["cpu_seconds"] for r in found])),
                                "evaluate": float(np.mean([r["eval_seconds"] for r in found]))}
    zero = [row["results"][0].get("zero_cost_seconds") for row in rows if row["results"]]
    zero = [z for z in zero if z is not None]
    if zero:
        out["zero_cost"] = float(np.mean(zero))
    return out


def _table(by_arch: dict) -> list[TableRow]:
    """One row per architecture and seed: costs and accuracy at every budget (the tabular benchmark)."""
    table = []
    for (arch, s), row in sorted(by_arch.items()):
        table.append(TableRow(arch=arch, seed=s, flops=row["cost"]["flops"], params=row["cost"]["params"],
                              accuracy={str(r["steps"]): r.get("accuracy") for r in row["results"]},
                              cpu_seconds={str(r["steps"]): r.get("cpu_seconds") for r in row["results"]}))
    return table

def budget_tradeoff(report: FidelityReport) -> list[BudgetCost]:
    """What each budget below the reference costs per architecture (mean CPU seconds to train it
    alone and to verify it) beside how its accuracy ranks as the reference does: the choice of a
    proxy's length, cheapest first."""
    rows = []
    for steps, row in sorted(report.budgets.items(), key=lambda item: int(item[0])):
        cost = report.cpu_seconds.get(steps) or {}
        rows.append(BudgetCost(steps=int(steps), factor=int(steps) / report.proxy_steps, train=cost.get("train"),
                               evaluate=cost.get("evaluate"), tau=row.tau, tau_ci=row.tau_ci, regret=row.regret.mean))
    return rows


CEILING_MARGIN = 0.1  # "as good as it gets": a proxy within this much tau of the seed-noise ceiling


def shortest_trusted_budget(report: FidelityReport, margin: float = CEILING_MARGIN) -> ShortestTrusted | None:
    """The cheapest budget below the reference whose accuracy ranks within ``margin`` of the
    modelled noise ceiling (point estimates): the shortest proxy that ranks about as well as a
    second seed of the reference would, the length to choose on this data.  ``steps`` is None when
    no budget comes that close; the whole is None without a modelled ceiling."""
    modelled = None if report.noise_ceiling is None else report.noise_ceiling.modelled
    if modelled is None or not report.budgets:
        return None
    for row in budget_tradeoff(report):
        if row.tau >= modelled.tau - margin:
            return ShortestTrusted(ceiling=modelled.tau, margin=margin, steps=row.steps, factor=row.factor,
                                   tau=row.tau)
    return ShortestTrusted(ceiling=modelled.tau, margin=margin, steps=None)
