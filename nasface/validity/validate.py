"""``nasface validate``: does the proxy rank the published networks as full training did?

Given a proxy (a study file's data, proxy and teacher, or the same flags as ``nasface fidelity``),
it trains every network of the published table that nasface can build (a ``preset``) with several
seeds, each once even where several groups list it, cheapest first and seed by seed (so a log cut
short has every network's first seed before any second).  Each run is a line of ``log.jsonl`` in
the output folder, appended when it finishes; the same command skips what is logged (a run cut
off mid-way continues from the progress it keeps, as fidelity's runs do).  Needs neither Optuna
nor Ray: it runs where only torch is installed.

The analysis, per group and over all groups (``analyse``): the share of the counted published
pairs (``nasface.validity.pairs``) the proxy's score orders as published, Kendall tau with the
published score, the same two for FLOPs alone and parameters alone (nasface's exact counts, so
every network is counted one way), whether the largest network scores above the smallest, and
seed noise (each network's spread over its seeds, and the share of pairs each seed alone orders);
and, from the table alone, how its printed FLOPs order all of a group's networks (full scale's
FLOPs-alone baseline, over networks nasface cannot build too).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from nasface.core.keys import json_digest
from nasface.core.atomic import RowLog, write_atomic
from nasface.core.errors import NasfaceError
from nasface.fidelity import (RECIPE_FIELDS, check_log_to_analyse, forget_logged_progress, reports_of_study,
                              teacher_identity, wanted_proxy)
from nasface.arch.model import count
from nasface.core.stages import SILENT, Stages
from nasface.arch.spec import load_spec, preset_names, spec_to_dict
from nasface.training.proxy import score_budgets
from nasface.training.settings import ProxyBudget
from nasface.training.signals import SEARCH_SIGNALS, SIGNALS, oriented
from nasface.training.student import proxy_spec
from nasface.validity.pairs import NO_PAIRS, PairCount, count_pairs, pooled_tau, similar_in_size
from nasface.validity.published import METRICS, PublishedTable, load_published

if TYPE_CHECKING:
    from nasface.search import SearchConfig

logger = logging.getLogger(__name__)

LOG, REPORT, PAGE = "log.jsonl", "validate.json", "validate.html"
PROGRESS = "progress"        # under the cache: a run in progress keeps its state here
VALIDATE_RUNS = "validate runs"
PREDICTORS = ("proxy", "flops", "params")
# Pairs whose networks are within this factor of each other's FLOPs (nasface's counts) are where size
# cannot decide the published order, and a proxy has to: the analysis counts them apart as well.
SIMILAR_FLOPS = 1.5
# What a logged run can be judged by: any signal a proxy run records (nasface.training.signals): its
# 10-fold verification accuracy (the default), the true accept rate at the proxy's low false accept
# rate (evaluate.FAR_TARGET, the open-set score full-scale benchmarks report), its loss trajectory,
# teacher agreement, or a zero-cost score of the untrained network (no training needed to know it).
SCORES = SEARCH_SIGNALS
PERCENT_SCORES = ("accuracy", "tar_at_far")  # fractions, shown and spread in percentage points


def score_scale(score: str) -> tuple[float, str]:
    """(factor, unit) a score's values and seed spreads are shown in: a fraction in percentage points,
    a loss or a zero-cost signal in its own units (a ZiCo of 1,150 is not 115,000 points)."""
    return (100.0, "points") if score in PERCENT_SCORES else (1.0, "units")


@dataclass(frozen=True)
class ValidateSettings:
    """What a validation measures; the proxy (data, recipe, teacher) and the seeds decide the log's keys."""

    search: SearchConfig
    seeds: int = 3
    published: str | None = None   # a published table of one's own; None: nasface's
    score: str = "accuracy"        # which of SCORES the proxy's ranking is read from

    @property
    def proxy(self) -> ProxyBudget:
        """The proxy under test, its warm-up pinned as ``nasface fidelity`` pins it."""
        base = self.search.proxy
        return dataclasses.replace(base, warmup_steps=base.schedule.warmup_steps)

    def seed_list(self) -> list[int]:
        return [self.proxy.seed + k for k in range(self.seeds)]


@dataclass(frozen=True)
class Buildable:
    """A preset the published table names, and whether the proxy can run it."""

    preset: str
    spec: object
    flops: int
    params: int
    reason: str | None   # why it cannot run at the proxy's resolution; None when it can


def check_settings(settings: ValidateSettings) -> PublishedTable:
    """One clear line for settings that cannot give an answer; the checked published table."""
    if settings.seeds < 1:
        raise NasfaceError(f"--seeds must be 1 or more, got {settings.seeds}")
    if settings.score not in SCORES:
        raise NasfaceError(f"--score must be one of {', '.join(SCORES)}, got {settings.score!r}")
    table = load_published(settings.published)
    known = set(preset_names())
    for index, group in enumerate(table.groups):
        for number, network in enumerate(group.networks):
            if network.preset is not None and network.preset not in known:
                raise NasfaceError(f"{table.source}: groups[{index}].networks[{number}].preset: unknown preset "
                                   f"{network.preset!r} (presets: {', '.join(sorted(known))}; null where nasface "
                                   f"cannot build it)")
    if not any(n.preset for g in table.groups for n in g.networks):
        raise NasfaceError(f"{table.source}: no network names a preset, so nothing can be trained")
    return table


def buildable_networks(table: PublishedTable, resolution: int) -> list[Buildable]:
    """Each preset the table names, once, cheapest first."""
    found = {}
    for group in table.groups:
        for network in group.networks:
            if network.preset is None or network.preset in found:
                continue
            spec = load_spec(network.preset)
            figures = count(spec)
            try:
                proxy_spec(spec, resolution)
                reason = None
            except NasfaceError as err:
                reason = f"cannot run at {resolution} px: {err}"
            found[network.preset] = Buildable(network.preset, spec, figures["flops"], figures["params"], reason)
    return sorted(found.values(), key=lambda b: (b.flops, b.preset))


def run_key(settings: ValidateSettings, data_key: str, spec, seed: int, teacher: dict | None) -> str:
    """Everything that decides a run's score, named field by field (as ``nasface.fidelity.row_key``)."""
    proxy = settings.proxy
    recipe = {"data": data_key, "spec": spec_to_dict(spec), "seed": seed,
              "proxy": {name: getattr(proxy, name) for name in RECIPE_FIELDS}, "teacher": teacher}
    return json_digest(recipe, 24)


def run_validate(settings: ValidateSettings, out: str | os.PathLike, analyse_only: bool = False,
                 progress: Stages = SILENT, write_page: Callable[[dict, Path], None] | None = None) -> dict:
    """Train what the log lacks (unless ``analyse_only``), then analyse and write ``validate.json``
    and, with ``write_page`` (``nasface.ui.validity_page.write_page``: the page is drawn by the layer
    above), ``validate.html``; returns the analysis.  What it does goes to this module's logger."""
    from nasface.search import check_config, load_proxy_data
    from nasface.training.teacher import teacher_targets

    table = check_settings(settings)
    check_config(settings.search)  # the data, space, budgets and teacher, before anything is written
    out = Path(out)
    if analyse_only:
        check_log_to_analyse(out / LOG)
    config, proxy = settings.search, settings.proxy
    networks = buildable_networks(table, proxy.resolution)
    runnable = [b for b in networks if b.reason is None]
    data = load_proxy_data(config.data, config.seed, out / "cache", progress)
    teacher_info = teacher_identity(config)
    rows = RowLog(out / LOG)
    plan = [(b, seed) for seed in settings.seed_list() for b in runnable]
    keys = {(b.preset, seed): run_key(settings, data.key, b.spec, seed, teacher_info) for b, seed in plan}
    logged = [key for key in keys.values() if rows.get(key) is not None]
    todo = [] if analyse_only else [(b, seed) for b, seed in plan if rows.get(keys[(b.preset, seed)]) is None]
    forget_logged_progress(out / "cache" / PROGRESS, logged)
    logger.info(f"validate: {len(runnable)} published networks nasface builds, {settings.seeds} seeds each; proxy "
                f"{proxy.steps} steps at {proxy.resolution} px; {len(logged)} of {len(plan)} runs logged; log "
                f"{out / LOG}")
    for network in networks:
        if network.reason is not None:
            logger.info(f"{network.preset} left out: {network.reason}")
    if todo:
        teacher = teacher_targets(config.teacher, data, out / "cache", config.proxy, teacher_spec=config.teacher_spec,
                                  teacher_steps=config.teacher_steps, progress=progress)
        with progress.stage(VALIDATE_RUNS, len(todo), "runs", weights=[b.flops for b, _ in todo]) as stage:
            for number, (network, seed) in enumerate(todo, 1):
                key = keys[(network.preset, seed)]
                if rows.claim(key):  # unclaimed: another process sharing the log has it
                    _train(settings, network, seed, key, data, teacher, rows, out / "cache" / PROGRESS)
                stage.update(number)
    rows.refresh()
    runs = {(b.preset, seed): rows.get(keys[(b.preset, seed)]) for b, seed in plan}
    report = analyse(table, networks, settings.seed_list(), runs, settings.score)
    report["command_settings"] = describe(settings)
    report["teacher"] = teacher_info
    report["log"] = str(out / LOG)
    write_atomic(out / REPORT, json.dumps(report, indent=2) + "\n")
    if write_page is None:
        return report
    try:
        write_page(report, out / PAGE)
    except ModuleNotFoundError as err:  # a GPU box with torch alone: the log and the analysis are what count
        package = (err.name or "plotly").split(".")[0]
        logger.warning(f"{package} is not installed: {out / PAGE} not written (nasface validate --analyse writes "
                       f"it where {package} is)")
    return report


def _train(settings: ValidateSettings, network: Buildable, seed: int, key: str, data, teacher, rows: RowLog,
           progress_folder: Path) -> None:
    """Train one network with one seed under the proxy and append its line to the log."""
    begun = time.time()
    progress_folder.mkdir(parents=True, exist_ok=True)
    progress_file = progress_folder / f"{key}.pt"
    proxy = dataclasses.replace(settings.proxy, seed=seed)
    result = score_budgets(network.spec, data.train, data.pairs, proxy, [proxy.steps], teacher,
                           progress_file=progress_file)[0]
    rows.add(key, {"preset": network.preset, "seed": seed, "flops": network.flops, "params": network.params,
                   "result": result, "finished": time.time(), "threads": torch.get_num_threads(),
                   "load_average": os.getloadavg()[0], "machine": platform.node()})
    progress_file.unlink(missing_ok=True)  # logged: the kept progress has served
    shown = f"accuracy {result['accuracy']:.4f}" if result["status"] == "ok" else f"failed: {result['reason']}"
    logger.info(f"{network.preset} seed {seed}: {shown} ({time.time() - begun:.0f} s)")


def describe(settings: ValidateSettings) -> dict:
    """The settings, in the shape ``nasface report`` matches a study's against (as fidelity's)."""
    config = settings.search
    return {"data": dataclasses.asdict(config.data),
            "proxy": {k: v for k, v in dataclasses.asdict(settings.proxy).items() if k != "device"},
            "teacher": config.teacher, "teacher_spec": config.teacher_spec, "teacher_steps": config.teacher_steps,
            "seeds": settings.seed_list(), "published": settings.published or "nasface"}


# -- analysis --------------------------------------------------------------------------------------
def analyse(table: PublishedTable, networks: list[Buildable], seeds: list[int], runs: dict,
            score: str = "accuracy") -> dict:
    """The proxy's ordering of the published pairs, per group and overall, from the logged runs
    (``runs``: {(preset, seed): log row or None}), each run judged by its ``score``."""
    by_preset = {b.preset: b for b in networks}
    measured = {}  # preset -> {seed: accuracy} of its successful runs
    failed = {}
    for (preset, seed), row in runs.items():
        if row is None:
            continue
        value = score_of(row["result"], score) if row["result"]["status"] == "ok" else None
        if value is not None:
            measured.setdefault(preset, {})[seed] = value
        else:
            failed[f"{preset} seed {seed}"] = row["result"].get("reason")
    groups, pooled = [], {name: [] for name in PREDICTORS}
    totals = {name: NO_PAIRS for name in PREDICTORS}
    similar_totals = {name: NO_PAIRS for name in PREDICTORS}
    per_seed_totals = {seed: NO_PAIRS for seed in seeds}
    for group in table.groups:
        entry = _group_analysis(group, by_preset, measured, seeds, score_scale(score)[0])
        groups.append(entry)
        if entry["trained"] < 2:
            continue
        published = [n["published"] for n in entry["networks"] if n["proxy"] is not None]
        for name in PREDICTORS:
            values = [n[name] for n in entry["networks"] if n["proxy"] is not None]
            pooled[name].append((published, values))
            totals[name] += _pairs_of(entry[name])
            similar_totals[name] += _pairs_of(entry["similar_size"][name])
        for seed in seeds:
            if str(seed) in entry["per_seed"]:
                per_seed_totals[seed] += _pairs_of(entry["per_seed"][str(seed)])
    overall = {name: {**_pairs_dict(totals[name]), "tau": pooled_tau(pooled[name]) if pooled[name] else None}
               for name in PREDICTORS}
    overall["similar_size"] = {"flops_ratio": SIMILAR_FLOPS,
                               **{name: _pairs_dict(similar_totals[name]) for name in PREDICTORS}}
    spreads = [n["seed_std"] for g in groups for n in g["networks"] if n.get("seed_std") is not None]
    overall["seed_noise"] = {
        "std_points_mean": float(np.mean(spreads)) if spreads else None,
        "std_points_max": float(np.max(spreads)) if spreads else None,
        "per_seed": {str(seed): _pairs_dict(count) for seed, count in per_seed_totals.items() if count.counted}}
    printed = [g["printed_flops"] for g in groups if g["printed_flops"]]
    overall["printed_flops"] = {
        **_pairs_dict(sum((_pairs_of(row) for row in printed), NO_PAIRS)),
        "tau": pooled_tau([_printed_pairs(g) for g in table.groups if sum(n.flops is not None for n in g.networks) >= 2])}
    overall["largest_above_smallest"] = [g["id"] for g in groups if g.get("largest_above_smallest")]
    overall["largest_not_above_smallest"] = [g["id"] for g in groups if g.get("largest_above_smallest") is False]
    return {"published": table.source, "seeds": seeds, "score": score, "metrics": dict(METRICS),
            "networks": [{"preset": b.preset, "flops": b.flops, "params": b.params, "runnable": b.reason is None,
                          "reason": b.reason, "accuracy": measured.get(b.preset, {})} for b in networks],
            "runs_logged": sum(row is not None for row in runs.values()), "runs_planned": len(runs),
            "failed": failed, "groups": groups, "overall": overall}


def score_of(result: dict, score: str) -> float | None:
    """A successful run's ``score``, from the run's own figures or its recorded signals, turned so that
    higher predicts a better network (a loss is negated); a name that is no signal is taken as it is."""
    value = result[score] if score in result else result.get("signals", {}).get(score)
    return oriented(score, value) if score in SIGNALS else value


def _group_analysis(group, by_preset: dict, measured: dict, seeds: list[int], scale: float) -> dict:
    rows = []
    for network in group.networks:
        accuracies = measured.get(network.preset, {}) if network.preset else {}
        values = [accuracies[s] for s in seeds if s in accuracies]
        built = by_preset.get(network.preset)
        rows.append({"name": network.name, "preset": network.preset, "planned_preset": network.planned_preset,
                     "published": group.score(network), "published_flops": network.flops,
                     "published_params": network.params,
                     "proxy": float(np.mean(values)) if values else None,
                     "seeds": {str(s): accuracies[s] for s in seeds if s in accuracies},
                     "seed_std": scale * float(np.std(values, ddof=1)) if len(values) > 1 else None,
                     "flops": None if built is None else built.flops, "params": None if built is None else built.params})
    trained = [r for r in rows if r["proxy"] is not None]
    entry = {"id": group.id, "paper": group.paper, "table": group.table, "training_set": group.training_set,
             "recipe": group.recipe, "verified": group.verified, "score_metrics": list(group.score_metrics),
             "networks": rows, "trained": len(trained), "size": len(rows), "per_seed": {}}
    published = [r["published"] for r in trained]
    similar = similar_in_size([r["flops"] for r in trained], SIMILAR_FLOPS)
    entry["similar_size"] = {}
    for name in PREDICTORS:
        values = [r[name] for r in trained]
        entry[name] = {**_pairs_dict(count_pairs(published, values)),
                       "tau": pooled_tau([(published, values)]) if len(trained) >= 2 else None}
        entry["similar_size"][name] = _pairs_dict(count_pairs(published, values, among=similar))
    for seed in seeds:  # seed noise in the answer itself: the pairs each seed alone orders
        have = [r for r in trained if str(seed) in r["seeds"]]
        if len(have) >= 2:
            entry["per_seed"][str(seed)] = _pairs_dict(count_pairs([r["published"] for r in have],
                                                                   [r["seeds"][str(seed)] for r in have]))
    # the table's own answer, no training: its printed FLOPs against its scores, over every network that has them
    published, flops = _printed_pairs(group)
    entry["printed_flops"] = {**_pairs_dict(count_pairs(published, flops)), "networks": len(flops),
                              "tau": pooled_tau([(published, flops)])} if len(flops) >= 2 else None
    spreads = [r["seed_std"] for r in trained if r["seed_std"] is not None]
    entry["seed_std_mean"] = float(np.mean(spreads)) if spreads else None
    if len(trained) >= 2:  # the largest above every smallest (Seesaw-share and -shuffle tie at the bottom)
        least, most = min(r["flops"] for r in trained), max(r["flops"] for r in trained)
        entry["largest_above_smallest"] = None if least == most else bool(
            min(r["proxy"] for r in trained if r["flops"] == most) > max(r["proxy"] for r in trained
                                                                          if r["flops"] == least))
    return entry


def _printed_pairs(group) -> tuple[list[float], list[int]]:
    """The published scores and printed FLOPs of the group's networks that have FLOPs printed."""
    have = [n for n in group.networks if n.flops is not None]
    return [group.score(n) for n in have], [n.flops for n in have]


def _pairs_dict(pairs: PairCount) -> dict:
    return {"counted": pairs.counted, "ordered": pairs.ordered, "ties": pairs.ties, "share": pairs.share}


def _pairs_of(row: dict) -> PairCount:
    return PairCount(row["counted"], row["ordered"], row["ties"])


# -- what a study's report says of its proxy -------------------------------------------------------
def measured_validity(study_settings: dict, folders) -> dict | None:
    """The validation (``validate.json``) of the study's proxy from ``folders``: the same data,
    proxy recipe and teacher as ``nasface.fidelity.measured_fidelity`` matches; of several, the one
    with the most runs logged.  None when none is there."""
    wanted = wanted_proxy(study_settings)
    found = [{"path": str(path), **report} for path, report, proxy in reports_of_study(study_settings, folders, REPORT)
             if proxy == wanted]
    return max(found, key=lambda report: report.get("runs_logged", 0), default=None)


def measured_seed_noise(study_settings: dict, folders) -> tuple[float, str] | None:
    """(points, path): how far a network's score under the study's proxy moves between seeds (the mean sd
    over the published networks), from the study's validation in ``folders``; None where none measured it."""
    return seed_noise_of(measured_validity(study_settings, folders))


def seed_noise_of(report: dict | None) -> tuple[float, str] | None:
    """(points, path) of a validation ``measured_validity`` found: its accuracy's mean seed sd; None where it
    has none (no report, no network with two seeds, or judged by another score)."""
    noise = None if report is None else report["overall"]["seed_noise"]["std_points_mean"]
    return None if noise is None or report.get("score", "accuracy") != "accuracy" else (noise, report["path"])

