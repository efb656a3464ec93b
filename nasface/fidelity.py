"""``nasface fidelity``: how far the proxy's ranking of architectures can be trusted, measured.

Given proxy data, a space, budgets and a proxy (a study file's, by default the README's), it

1. draws N feasible architectures stratified over the space's FLOPs range (plus the seed presets
   that fit), in an order whose every prefix spans the range, so a study cut short is still usable;
2. trains each once to the reference budget (``factors``: by default 1/4, 1/2, 1, 2, 4 and 8 times
   the proxy's steps; the largest is the reference) and measures it at every budget on the way:
   under the proxy's warm-up-stable-decay schedule a shorter budget is a branch off the stable
   phase, equal to the run that budget would train on its own (``nasface.train.score_budgets``);
   every ranking signal of ``nasface.signals`` is recorded at every budget, with its CPU time, so
   the log doubles as a tabular benchmark for multi-fidelity search;
3. repeats the run with a second seed on a subset spread over the FLOPs range, which gives the
   noise ceiling: how well the reference ranks itself;
4. reports, for every signal at the proxy's budget (and accuracy at every budget): Kendall tau and
   Spearman rho against the reference with bootstrap intervals, overall and within FLOPs strata,
   the recall of the reference's top 5 in the signal's top 10, the paired difference to FLOPs
   alone, and a combination of the signals fitted with leave-one-architecture-out
   cross-validation.

A *yardstick* (``--yardstick dlib-resnet``, or any teacher) adds one signal: the student's
agreement with a second teacher it does not learn from.  It changes no training, so it is not part
of a run's key: architectures logged before it was given keep their lines, and the signal is filled
in for them by replaying each run up to the proxy's budget (an eighth of its cost by default) and
appending a *fill* line.  A replay is used only where it reproduces the logged accuracy and loss
exactly, as a CPU run does; one that does not (another machine, a GPU) is logged as differing and
its architecture keeps lacking the signal.  A signal some architectures lack is analysed on those
that have it (with their count), outside the combination.

Every trained architecture is one line of ``log.jsonl`` in the output folder, appended when it
finishes; a killed run continues where it stopped (an architecture cut off mid-run is trained
again).  ``fidelity.json`` and ``fidelity.html`` (offline plotly) hold the analysis.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from nasface.core.atomic import RowLog, write_atomic
from nasface.arch.budget import Budgets
from nasface.arch.checkpoint import load_training_state
from nasface.core.errors import NasfaceError
from nasface.arch.model import count
from nasface.core.stages import SILENT, Stages, format_duration
from nasface.core.ranking import (budget_regret, loo_combination, modelled_ceiling, rank_agreement, strata_of,
                                  stratified_tau, top_recall)
from nasface.training.signals import SIGNALS, oriented
from nasface.arch.space import feasible_sample, load_space
from nasface.arch.spec import load_spec, preset_names, spec_to_dict
from nasface.train import ProxyBudget, proxy_spec, score_budgets

if TYPE_CHECKING:
    from nasface.search import SearchConfig

DEFAULT_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
MIN_ARCHITECTURES = 8      # below this a bootstrap interval of tau says nothing
MIN_HALF_PAIRS = 3         # seed pairs each half needs for a sigma of its own
TIMEOUT_MARGIN = 1.5       # a run's wall time varies with the machine's load: start it only with room to spare
LOG, REPORT, PAGE = "log.jsonl", "fidelity.json", "fidelity.html"
PROGRESS = "progress"  # under the cache: each run in progress keeps its state here (nasface.train.score_budgets)
TRIVIAL = ("log_flops", "log_params")
# a signal no search can score with (its teacher is not the study's), only measured: it is compared
# with its natural rival on the same architectures (paired bootstrap), never combined or chosen.
# Agreement with a yardstick teacher against agreement with the teacher the students learn from.
COUNTERPART = {"yardstick_cka": "teacher_cka"}
FIDELITY_RUNS = "fidelity runs"  # the stage that trains the architectures
YARDSTICK_FILLS = "yardstick replays"  # the stage that fills a yardstick in for runs logged without it
FILL = "yardstick-fill"  # the prefix of a fill line's key in the log


@dataclass(frozen=True)
class FidelitySettings:
    """What a fidelity study measures; everything in it decides the scores (the log's key)."""

    search: SearchConfig          # data, space, budgets, proxy and teacher, as a search (or study file) gives them
    architectures: int = 40
    presets: bool = True
    factors: tuple[float, ...] = DEFAULT_FACTORS
    second_seeds: int = 12
    signals: tuple[str, ...] = tuple(SIGNALS)
    bootstrap: int = 2000
    yardstick: str | None = None  # a second teacher, only measured against (the yardstick_cka signal)

    @property
    def proxy(self) -> ProxyBudget:
        """The proxy under test, its warm-up pinned so that every budget shares it."""
        base = self.search.proxy
        return dataclasses.replace(base, warmup_steps=base.schedule.warmup_steps)

    def steps(self) -> list[int]:
        return [max(1, int(round(f * self.proxy.steps))) for f in self.factors]

    @property
    def proxy_steps(self) -> int:
        return self.proxy.steps

    @property
    def reference_steps(self) -> int:
        return max(self.steps())


def check_settings(settings: FidelitySettings) -> None:
    """One clear line for settings that cannot give an answer."""
    if settings.architectures + (3 if settings.presets else 0) < MIN_ARCHITECTURES or settings.architectures < 1:
        raise NasfaceError(f"--archs {settings.architectures}: a rank interval needs at least {MIN_ARCHITECTURES} "
                           f"architectures (40 give an interval of about +/-0.2)")
    if not settings.factors or any(not math.isfinite(f) or f <= 0 for f in settings.factors):
        raise NasfaceError(f"--factors {','.join(map(str, settings.factors))}: budgets are positive multiples of "
                           f"the proxy's steps, e.g. 0.25,0.5,1,2,4,8")
    if 1.0 not in settings.factors:
        raise NasfaceError("--factors must include 1 (the proxy itself)")
    if max(settings.factors) <= 1.0:
        raise NasfaceError(f"the reference budget ({max(settings.factors)}x the proxy) must be larger than the proxy: "
                           f"add a factor above 1, e.g. 8")
    if settings.second_seeds < 0:
        raise NasfaceError(f"--second-seeds must be 0 or more, got {settings.second_seeds}")
    unknown = [s for s in settings.signals if s not in SIGNALS]
    if unknown:
        raise NasfaceError(f"unknown signal {unknown[0]!r} (signals: {', '.join(SIGNALS)})")
    if settings.proxy.steps < 1:
        raise NasfaceError("the proxy must train at least one step to be measured")
    if settings.yardstick is not None:
        from nasface.training.teacher import check_teacher

        if settings.yardstick in ("none", settings.search.teacher):
            raise NasfaceError(f"--yardstick {settings.yardstick}: name a teacher other than the study's own "
                               f"(--teacher {settings.search.teacher}), e.g. dlib-resnet")
        check_teacher(settings.yardstick, flag="--yardstick")
    proxy = settings.proxy
    shortest = dataclasses.replace(proxy, steps=min(settings.steps()))
    if proxy.schedule.warmup_steps > shortest.schedule.decay_start:
        raise NasfaceError(f"the shortest budget ({shortest.steps} steps) ends its warm-up-stable phase before the "
                           f"proxy's warm-up of {proxy.schedule.warmup_steps} steps does: drop factors below "
                           f"{proxy.schedule.warmup_steps / max(1, proxy.steps) / (1 - proxy.cooldown_fraction):.2f}")


# -- which architectures ---------------------------------------------------------------------------
def draw_architectures(settings: FidelitySettings) -> list:
    """N feasible architectures spread evenly over log FLOPs, then the presets that fit.

    A pool of 12N feasible random points is drawn (seeded); the k-th of N picks the unused point
    nearest to the k-th of N equally spaced log-FLOPs targets between the pool's extremes.  The
    list is then put in an order whose every prefix spans the range (bisection order), so a study
    cut short still covers cheap and costly architectures alike.
    """
    config = settings.search
    space = load_space(config.space)
    limits: Budgets = config.budgets
    resolution = settings.proxy.resolution

    def runs(spec) -> bool:
        try:
            proxy_spec(spec, resolution)
        except NasfaceError:
            return False
        return True

    pool = [s for s in feasible_sample(space, limits, 0, config.seed, keep=12 * settings.architectures)["specs"]
            if runs(s)]
    if len(pool) < settings.architectures:
        raise NasfaceError(f"only {len(pool)} feasible architectures of the space run at {resolution} px under "
                           f"these budgets; loosen them or ask for fewer --archs")
    logs = np.log10([count(s, limits.convention)["flops"] for s in pool])
    low, high = float(logs.min()), float(logs.max())
    chosen: list[int] = []
    for k in range(settings.architectures):
        target = low + (high - low) * (k + 0.5) / settings.architectures
        free = [i for i in np.argsort(np.abs(logs - target), kind="stable") if i not in chosen]
        chosen.append(int(free[0]))
    specs = [dataclasses.replace(pool[i], name=f"arch-{n:02d}") for n, i in enumerate(chosen)]
    ordered = [specs[i] for i in _spread_order(len(specs))]
    if settings.presets:
        for name in preset_names():
            spec = load_spec(name)
            try:
                space.params_of(spec)
            except NasfaceError:
                continue  # not a point of the space (a teacher)
            if limits.fits(count(spec, limits.convention)) and runs(spec):
                ordered.append(spec)
    return ordered


def _spread_order(n: int) -> list[int]:
    """0..n-1 in bit-reversed order, whose every prefix is spread over the range (n=8: 0 4 2 6 1 5 3 7)."""
    bits = max(1, (n - 1).bit_length())
    reversed_ = (int(format(i, f"0{bits}b")[::-1], 2) for i in range(1 << bits))
    return [i for i in reversed_ if i < n]


def second_seed_subset(specs: list, count_wanted: int) -> list:
    """Every k-th architecture in FLOPs order, so the repeated ones span the range, listed (and so
    run) in bisection order: every prefix spans it too, so the seed noise that a study cut short
    has measured is that of small and large networks alike, not of the smallest only."""
    if count_wanted <= 0:
        return []
    by_cost = sorted(specs, key=lambda s: count(s)["flops"])
    picks = np.unique(np.linspace(0, len(by_cost) - 1, min(count_wanted, len(by_cost))).round().astype(int))
    return [by_cost[picks[i]] for i in _spread_order(len(picks))]


# -- running ---------------------------------------------------------------------------------------
RECIPE_FIELDS = ("steps", "batch_size", "resolution", "lr", "momentum", "weight_decay", "warmup_steps",
                 "cooldown_fraction", "margin", "scale", "distill", "alpha")


def row_key(settings: FidelitySettings, data_key: str, spec, seed: int, teacher: dict | None) -> str:
    """Everything that decides an architecture's scores, named field by field so that a setting
    added later with a neutral default leaves the log's keys (and a study in progress) alone."""
    proxy = settings.proxy
    recipe = {"data": data_key, "spec": spec_to_dict(spec), "seed": seed, "steps": settings.steps(),
              "proxy": {name: getattr(proxy, name) for name in RECIPE_FIELDS}, "teacher": teacher}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:24]


def teacher_identity(config: SearchConfig) -> dict | None:
    """What the teacher is (its spec and steps, or its checkpoint), not where its cache lies."""
    from nasface.training.teacher import auto_teacher

    if config.teacher == "none":
        return None
    if config.teacher == "auto":
        spec, steps = auto_teacher(config.proxy, config.teacher_spec, config.teacher_steps)
        return {"teacher": "auto", "spec": spec, "steps": steps}
    return {"teacher": str(config.teacher)}


def interleave(first: list, second: list) -> list:
    """``first`` in order, with ``second``'s items spread evenly among them (noise ceiling early)."""
    if not second:
        return list(first)
    every = max(1, math.ceil(len(first) / len(second)))
    merged, pending = [], list(second)
    for index, item in enumerate(first, 1):
        merged.append(item)
        if index % every == 0 and pending:
            merged.append(pending.pop(0))
    return merged + pending


def run_plan(specs: list, repeated: list, seed: int) -> list[tuple]:
    """The order the runs are taken in: the first seeds in ``specs``'s order with the second seeds
    (of ``repeated``) spread evenly among them, each second seed after its first seed, which is
    brought forward where it would come later: every second seed trained completes a pair of the
    noise ceiling at once, instead of waiting hours for its first."""
    plan, placed = [], set()
    for spec, run_seed in interleave([(spec, seed) for spec in specs], [(spec, seed + 1) for spec in repeated]):
        if spec.name in placed and run_seed == seed:
            continue  # brought forward already
        if spec.name not in placed:
            plan.append((spec, seed))
            placed.add(spec.name)
        if run_seed != seed:
            plan.append((spec, run_seed))
    return plan


def run_fidelity(settings: FidelitySettings, out: str | Path, log=print, analyse_only: bool = False,
                 progress: Stages = SILENT, timeout: float | None = None) -> dict:
    """Train what the log lacks (unless ``analyse_only``), then analyse and write the report.

    The data, the teacher and the runs are stages of ``progress``; the runs' ETA counts the runs
    other processes sharing the log take off this one's hands as done at once, so with two
    processes it is about the time the two of them need.

    ``timeout`` (seconds) starts only the runs expected to end within it: each run's wall time is
    expected from a power law of FLOPs fitted to the log as it stands (runs of other machines and
    loads among them), scaled by this process's own pace once it has finished a run (the median
    ratio of its runs' wall time to the law's, within 4x either way), with a margin of
    ``TIMEOUT_MARGIN``; until three sizes are logged a run starts while any time is left.  On a
    machine lent for a fixed time, the time goes to runs that finish rather than to one cut off."""
    from nasface.search import check_config, load_proxy_data
    from nasface.training.teacher import teacher_targets

    deadline = None if timeout is None else time.time() + timeout

    check_settings(settings)
    check_config(settings.search)  # the data, space, budgets and teacher, before anything is written
    out = Path(out)
    config = settings.search
    specs = draw_architectures(settings)
    repeated = second_seed_subset(specs, settings.second_seeds)
    data = load_proxy_data(config.data, config.seed, out / "cache", progress)
    proxy = settings.proxy
    teacher_info = teacher_identity(config)
    rows = RowLog(out / LOG)
    plan = run_plan(specs, repeated, proxy.seed)
    log(f"fidelity: {len(specs)} architectures ({settings.architectures} drawn + {len(specs) - settings.architectures} "
        f"presets), {len(repeated)} with a second seed; budgets {settings.steps()} steps (proxy {proxy.steps}, "
        f"reference {settings.reference_steps}); log {out / LOG}")
    keys = [row_key(settings, data.key, spec, seed, teacher_info) for spec, seed in plan]
    todo = [] if analyse_only else [(spec, seed) for (spec, seed), key in zip(plan, keys) if rows.get(key) is None]
    forget_logged_progress(out / "cache" / PROGRESS, [key for key in keys if rows.get(key) is not None])
    fills = [] if analyse_only else [(spec, seed, key) for (spec, seed), key in zip(plan, keys)
                                     if _lacks_yardstick(settings, rows, key)]
    if todo or fills:
        # the search's own proxy budget, so the teacher is the one the search trains (and caches)
        teacher = teacher_targets(config.teacher, data, out / "cache", config.proxy,
                                  teacher_spec=config.teacher_spec, teacher_steps=config.teacher_steps, log=log,
                                  progress=progress)
        yardstick = None if settings.yardstick is None else \
            teacher_targets(settings.yardstick, data, out / "cache", config.proxy, log=log, progress=progress).held_out
        if fills:  # first: a fill costs an eighth of a run and completes the signal for the analysis
            with progress.stage(YARDSTICK_FILLS, len(fills), "replays") as stage:
                for number, (spec, seed, key) in enumerate(fills, 1):
                    if (deadline is None or time.time() < deadline) and rows.claim(fill_key(key, settings.yardstick)):
                        _fill_yardstick(settings, spec, seed, key, data, teacher, yardstick, rows, log)
                    stage.update(number)
        flops = [count(spec)["flops"] for spec, _ in todo]
        wall_law = None if deadline is None else _power_law(rows, "wall_seconds")  # the log as it stands
        left_out, own_pace = [], []  # own_pace: this process's runs' wall time over the law's
        with progress.stage(FIDELITY_RUNS, len(todo), "runs", weights=expected_run_seconds(flops, rows)) as stage:
            for number, ((spec, seed), run_flops) in enumerate(zip(todo, flops), 1):
                key = row_key(settings, data.key, spec, seed, teacher_info)
                expected = None if wall_law is None else expected_wall_seconds(
                    wall_law(run_flops), own_pace, _part_left(out / "cache" / PROGRESS / f"{key}.pt",
                                                              settings.reference_steps))
                if deadline is not None and time.time() + (expected or 0) >= deadline:
                    left_out.append(expected or 0)  # it would end past the timeout: left for another time
                    stage.leave_out(number - 1)
                # unclaimed: another process sharing this log has done it, or is doing it
                elif rows.claim(key):
                    _measure(settings, spec, seed, data, teacher, yardstick, rows, len(plan), teacher_info, log,
                             out / "cache" / PROGRESS)
                    final = rows.get(key)["results"][-1]
                    if wall_law is not None and final["status"] == "ok":
                        own_pace.append(final["wall_seconds"] / wall_law(run_flops))
                stage.update(number)
        if left_out:
            log(f"--timeout: {len(left_out)} runs not started, expected to end after it (the shortest in about "
                f"{format_duration(min(left_out))}, {TIMEOUT_MARGIN}x the logged runs' wall time at its FLOPs); "
                f"the same command continues")
    rows.refresh()
    report = analyse(settings, specs, repeated, [_with_fill(rows, key, settings.yardstick) for key in keys])
    report["command_settings"] = describe(settings)
    report["teacher"] = teacher_info
    write_atomic(out / REPORT, json.dumps(report, indent=2) + "\n")
    write_page(report, out / PAGE)
    return report


def forget_logged_progress(folder: Path, logged: list[str]) -> None:
    """Delete the kept progress of runs already logged: a process killed between logging a run and
    deleting its progress leaves a file no later run would ever continue or delete."""
    for key in logged:
        (folder / f"{key}.pt").unlink(missing_ok=True)


def _power_law(rows: RowLog, field: str) -> Callable[[float], float] | None:
    """Seconds (``field`` of a run's last budget: ``cpu_seconds`` or ``wall_seconds``) as a power law
    of FLOPs, fitted to the runs logged; None until three runs of different sizes are."""
    logged = [(row["cost"]["flops"], row["results"][-1].get(field)) for key, row in rows.rows.items()
              if not key.startswith(FILL) and row["results"][-1]["status"] == "ok"]
    logged = [(f, c) for f, c in logged if c and c > 0]
    if len({f for f, _ in logged}) < 3:
        return None
    slope, intercept = theil_sen(np.log([f for f, _ in logged]), np.log([c for _, c in logged]))
    return lambda flops: float(np.exp(intercept + slope * np.log(flops)))


def theil_sen(x, y) -> tuple[float, float]:
    """A line through (x, y) that a few runs of a slow or loaded session do not tilt: the median of
    the pairwise slopes, and the median intercept under it."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    i, j = np.triu_indices(len(x), 1)
    distinct = x[i] != x[j]
    slope = float(np.median((y[j] - y[i])[distinct] / (x[j] - x[i])[distinct]))
    return slope, float(np.median(y - slope * x))


def expected_wall_seconds(by_law: float, own_pace: list[float], part_left: float = 1.0) -> float:
    """What a run may take, for ``--timeout``: the log's law (``by_law``) at this process's pace
    once it has one (the median of its runs' wall time over the law's, within 4x either way: how
    much faster or slower this machine and load are), for the part of the run left, with a margin."""
    pace = float(np.clip(np.median(own_pace), 0.25, 4.0)) if own_pace else 1.0
    return TIMEOUT_MARGIN * by_law * pace * part_left


def _part_left(progress_file: Path, steps: int) -> float:
    """The part of a run still to train: less than all of it where a killed run kept its progress."""
    if not progress_file.is_file():
        return 1.0
    try:
        done = int(load_training_state(progress_file)["step"])
    except (NasfaceError, KeyError, TypeError, ValueError):
        return 1.0  # unreadable: the run starts again
    return min(1.0, max(0.0, 1 - done / steps))


def expected_run_seconds(flops: list[float], rows: RowLog) -> list[float]:
    """Each run's expected CPU seconds, for an ETA that knows a 900M-FLOPs run is not a 20M one:
    a power law of FLOPs fitted to the runs logged so far (their reference budget's CPU seconds),
    or FLOPs themselves until three runs of different sizes are logged."""
    law = _power_law(rows, "cpu_seconds")
    return [float(f) if law is None else law(f) for f in flops]


def _measure(settings: FidelitySettings, spec, seed: int, data, teacher, yardstick, rows: RowLog, planned: int,
             teacher_info: dict | None, log, progress_folder: Path) -> None:
    """Train one architecture with one seed at every budget and append its line to the log.

    A run of the largest networks takes hours on a CPU: it keeps its progress every ten minutes,
    so a worker killed in the middle (a session's end) continues it where it stopped."""
    config = settings.search
    begun = time.time()
    key = row_key(settings, data.key, spec, seed, teacher_info)
    progress_folder.mkdir(parents=True, exist_ok=True)
    progress_file = progress_folder / f"{key}.pt"
    results = score_budgets(spec, data.train, data.pairs, dataclasses.replace(settings.proxy, seed=seed),
                            settings.steps(), teacher, yardstick=yardstick, progress_file=progress_file)
    rows.add(key,
             {"arch": spec.name, "seed": seed, "spec": spec_to_dict(spec),
              "cost": {k: v for k, v in count(spec, config.budgets.convention).items() if k != "stages"},
              "results": results, "teacher_digest": teacher_digest(teacher), "finished": time.time(),
              "threads": torch.get_num_threads(), "load_average": os.getloadavg()[0], "machine": platform.node()})
    progress_file.unlink(missing_ok=True)  # logged: the kept progress has served
    final = results[-1]
    shown = (f"reference accuracy {final['accuracy']:.4f}" if final["status"] == "ok"
             else f"failed: {final['reason']}")
    if "continued_at" in final:
        shown += f", continued from step {final['continued_at']}"
    runs = sum(not logged.startswith(FILL) for logged in rows.rows)
    log(f"[{runs}/{planned}] {spec.name} seed {seed}: {shown} ({time.time() - begun:.0f} s)")


def teacher_digest(teacher) -> str | None:
    """A fingerprint of the teacher's targets, to the bit.  The run's key names the teacher by its
    settings; an automatic teacher trained again on another machine has the same settings and other
    bits (BENCHMARKS.md, rungs against the fidelity log), and this tells the two apart."""
    if teacher is None:
        return None
    digest = hashlib.sha256()
    for array in (teacher.embeddings, teacher.flipped, teacher.centres):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


# -- a yardstick given to a study in progress --------------------------------------------------------
def fill_key(key: str, yardstick: str) -> str:
    return f"{FILL}:{yardstick}:{key}"


def _lacks_yardstick(settings: FidelitySettings, rows: RowLog, key: str) -> bool:
    """A run logged before the yardstick was given, whose proxy budget was measured, and not filled in yet."""
    if settings.yardstick is None:
        return False
    proxy = _at(rows.get(key), settings.proxy_steps)
    if proxy is None or "yardstick_cka" in (proxy.get("signals") or {}):
        return False
    return rows.get(fill_key(key, settings.yardstick)) is None


def _fill_yardstick(settings: FidelitySettings, spec, seed: int, key: str, data, teacher, yardstick: np.ndarray,
                    rows: RowLog, log) -> None:
    """Replay a logged run up to the proxy's budget with the yardstick and log its agreement with it,
    budget by budget, if the replay is the logged run (the same accuracy and loss to the last bit)."""
    logged = {r["steps"]: r for r in rows.get(key)["results"]}
    shorter = [s for s in settings.steps() if s <= settings.proxy_steps]
    begun, cpu = time.time(), time.process_time()
    replay = score_budgets(spec, data.train, data.pairs, dataclasses.replace(settings.proxy, seed=seed), shorter,
                           teacher, yardstick=yardstick)
    values, differs = {}, None
    for result in replay:
        before = logged.get(result["steps"], {})
        same = all(result.get(field) == before.get(field) for field in ("status", "accuracy", "final_loss"))
        if not same or "yardstick_cka" not in result.get("signals", {}):
            differs = {"steps": result["steps"], "logged": [before.get("accuracy"), before.get("final_loss")],
                       "replayed": [result.get("accuracy"), result.get("final_loss")]}
            values = {}
            break
        values[str(result["steps"])] = result["signals"]["yardstick_cka"]
    rows.add(fill_key(key, settings.yardstick),
             {"fills": key, "arch": spec.name, "seed": seed, "yardstick": settings.yardstick, "yardstick_cka": values,
              "replay_differs": differs, "cpu_seconds": time.process_time() - cpu, "finished": time.time(),
              "threads": torch.get_num_threads(), "load_average": os.getloadavg()[0], "machine": platform.node()})
    shown = "filled in" if differs is None else \
        f"not filled in: the replay differs from the log at {differs['steps']} steps (accuracy, loss " \
        f"{differs['logged']} logged, {differs['replayed']} replayed)"
    log(f"yardstick for {spec.name} seed {seed}: {shown} ({time.time() - begun:.0f} s)")


def _with_fill(rows: RowLog, key: str, yardstick: str | None) -> dict | None:
    """The run logged under ``key``, with the yardstick's agreement filled in where a replay measured it."""
    row = rows.get(key)
    fill = None if row is None or yardstick is None else rows.get(fill_key(key, yardstick))
    if fill is None or not fill["yardstick_cka"]:
        return row
    results = []
    for result in row["results"]:
        value = fill["yardstick_cka"].get(str(result["steps"]))
        if value is not None and "signals" in result and "yardstick_cka" not in result["signals"]:
            result = {**result, "signals": {**result["signals"], "yardstick_cka": value}}
        results.append(result)
    return {**row, "results": results}


def describe(settings: FidelitySettings) -> dict:
    config = settings.search
    return {"data": dataclasses.asdict(config.data), "space": config.space or "lfr",
            "budgets": config.budgets.stored(),
            "proxy": {k: v for k, v in dataclasses.asdict(settings.proxy).items() if k != "device"},
            "teacher": config.teacher, "teacher_spec": config.teacher_spec, "teacher_steps": config.teacher_steps,
            "architectures": settings.architectures, "presets": settings.presets,
            "factors": list(settings.factors), "steps": settings.steps(), "second_seeds": settings.second_seeds,
            "seed": config.seed, "yardstick": settings.yardstick}


# -- analysis --------------------------------------------------------------------------------------
def _at(row: dict | None, steps: int) -> dict | None:
    if row is None:
        return None
    for result in row["results"]:
        if result["steps"] == steps:
            return result if result["status"] == "ok" else None
    return None


def analyse(settings: FidelitySettings, specs: list, repeated: list, rows: list) -> dict:
    """Rank agreement of every signal with the reference, over the architectures measured so far."""
    proxy_steps, reference_steps = settings.proxy_steps, settings.reference_steps
    by_arch = {(row["arch"], row["seed"]): row for row in rows if row is not None}
    seed = settings.proxy.seed
    # each first-seed architecture's successful result at each budget, looked up once
    first = {s.name: {steps: _at(by_arch.get((s.name, seed)), steps) for steps in settings.steps()} for s in specs}
    complete = [name for name, at in first.items() if at[proxy_steps] and at[reference_steps]]
    failed = {row["arch"]: [r["reason"] for r in row["results"] if r["status"] != "ok"]
              for row in by_arch.values() if any(r["status"] != "ok" for r in row["results"])}
    report: dict = {"architectures": len(specs), "measured": len(complete), "failed": failed,
                    "proxy_steps": proxy_steps, "reference_steps": reference_steps, "signals": {},
                    "budgets": {}, "strata": None, "noise_ceiling": None, "combined": None,
                    "cpu_seconds": _cpu_seconds(by_arch, seed, settings.steps())}
    report["table"] = _table(by_arch)
    if len(complete) < 4:
        report["note"] = f"{len(complete)} architectures measured so far: at least 4 are needed for rank statistics"
        return report
    reference = np.array([first[n][reference_steps]["accuracy"] for n in complete])
    costs = {n: by_arch[(n, seed)]["cost"] for n in complete}
    flops = np.log10([costs[n]["flops"] for n in complete])
    resamples, groups = settings.bootstrap, strata_of(flops)
    features, partial = {}, {}
    for name in settings.signals:
        raw = [(first[n][proxy_steps].get("signals") or {}).get(name) for n in complete]
        have = np.array([v is not None for v in raw])
        if have.sum() < 4:
            report["signals"][name] = {"available": False, "measured": int(have.sum())}
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
    report["points"] = {}
    for name, values in features.items():
        have = partial.get(name, np.ones(len(complete), bool))
        against = {other: base[have] for other, base in baselines.items() if other != name}
        subset = groups if name not in partial else strata_of(flops[have])
        report["signals"][name] = {
            **_agreement(values[have], reference[have], subset, resamples, against, flops[have]),
            "measured": int(have.sum()), "partial": name in partial, "measure_only": name in COUNTERPART}
        if name in partial or name in COUNTERPART:
            report["signals"][name].update(_like_for_like(name, values, have, reference, features, partial, resamples))
        report["points"][name] = [values[have].tolist(), reference[have].tolist(),
                                  [n for n, kept in zip(complete, have) if kept]]
    for name in {*partial, *COUNTERPART} & set(features):  # the combination and the best signal compare
        del features[name]                                 # scores a search can use, on the same architectures
    for steps in settings.steps():
        values = np.array([first[n][steps]["accuracy"] if first[n][steps] else np.nan for n in complete])
        if steps != reference_steps and not np.isnan(values).any():
            report["budgets"][str(steps)] = _agreement(values, reference, groups, resamples, baselines, flops)
    report["strata"] = {"bounds_log10_flops": [[float(flops[g].min()), float(flops[g].max())] for g in groups]}
    report["noise_ceiling"] = _noise_ceiling(by_arch, repeated, seed, settings, resamples, reference,
                                             10 ** flops)
    report["shortest_trusted"] = shortest_trusted_budget(report)
    usable = {n: v for n, v in features.items() if np.ptp(v) > 0}
    scores = dict(features)  # what the best is chosen from: the signals a search can use, and the combination
    if len(usable) >= 2 and len(complete) >= 6:
        combined = loo_combination(usable, reference)
        scores["combined"] = np.array(combined["predictions"])
        report["combined"] = {"weights": combined["weights"],
                              **_agreement(scores["combined"], reference, groups, resamples, baselines, flops)}
    report["best"] = best_signal(report)
    if report["best"] is not None:
        report["best"]["versus_score"] = _versus_score(report["best"]["signal"], settings.search.score, scores,
                                                       reference, resamples)
    return report


def _versus_score(best: str, score: str, values: dict, reference, resamples: int) -> dict | None:
    """The best signal against the score the study's search maximises (``--score``), paired over
    the same resamples: whether making the best one the default would be a measured gain or noise."""
    if best == score or score not in values:
        return None
    paired = rank_agreement(values[best], reference, resamples, 0, baselines={score: values[score]})["versus"][score]
    return {"score": score, "tau_score": rank_agreement(values[score], reference, 0)["tau"], **paired}


def _like_for_like(name: str, values, have, reference, features: dict, partial: dict, resamples: int) -> dict:
    """A partial signal's tau is over fewer architectures than the others': each complete signal's
    tau over the same ones, and the paired difference to its counterpart (``COUNTERPART``)."""
    complete = [other for other in features if other not in partial and other != name]
    found = {"same_architectures": {other: rank_agreement(features[other][have], reference[have], 0)["tau"]
                                    for other in complete if np.ptp(features[other][have]) > 0}}
    rival = COUNTERPART.get(name)
    if rival in found["same_architectures"]:
        paired = rank_agreement(values[have], reference[have], resamples, 0,
                                baselines={rival: features[rival][have]})["versus"][rival]
        found["paired"] = {"with": rival, "tau_other": found["same_architectures"][rival],
                           "tau_minus_other": paired["tau_minus"], "tau_minus_other_ci": paired["ci"],
                           "tau_above_other_fraction": paired["above_fraction"]}
    return found


def _agreement(values, reference, groups, resamples: int, baselines: dict, flops) -> dict:
    """Rank agreement with the reference, the paired difference to each trivial baseline in
    ``baselines`` (FLOPs alone, parameters alone): what a score must beat, on the same resamples;
    and the reference accuracy lost by picking with it under a FLOPs budget."""
    result = rank_agreement(values, reference, resamples, 0, baselines=baselines)
    result["strata"] = stratified_tau(values, reference, groups, resamples)
    result["top5_in_top10"] = top_recall(values, reference)
    result["regret"] = budget_regret(values, reference, flops)
    result["available"] = True
    return result


def _noise_ceiling(by_arch: dict, repeated: list, seed: int, settings: FidelitySettings, resamples: int,
                   reference: np.ndarray, flops: np.ndarray) -> dict | None:
    """Seed-to-seed agreement at the reference (the ceiling any proxy can reach) and at the proxy,
    over the repeated architectures; and at the reference over every measured one (``reference``,
    ``flops``), modelled from the repeated ones' seed-to-seed differences (``modelled_ceiling``:
    drawn from them, and beside it Gaussian): with one seed noise for all, and with one for the
    smaller and one for the larger half of the pairs (split at their median FLOPs), which tells
    whether one fits all."""
    both = [s.name for s in repeated
            if _at(by_arch.get((s.name, seed)), settings.reference_steps)
            and _at(by_arch.get((s.name, seed + 1)), settings.reference_steps)]
    if len(both) < 4:
        return {"pairs": len(both), "note": "fewer than 4 architectures have both seeds yet"}
    result = {"pairs": len(both)}
    accuracies = {}  # (first seed's, second seed's) accuracies of the pairs at each budget
    for label, steps in (("reference", settings.reference_steps), ("proxy", settings.proxy_steps)):
        first = [_at(by_arch[(n, seed)], steps) for n in both]
        second = [_at(by_arch[(n, seed + 1)], steps) for n in both]
        if all(first) and all(second):
            accuracies[label] = (np.array([r["accuracy"] for r in first]), np.array([r["accuracy"] for r in second]))
            result[label] = rank_agreement(accuracies[label][1], accuracies[label][0], resamples)
    differences = accuracies["reference"][0] - accuracies["reference"][1]  # every pair has its reference
    result["modelled"] = modelled_ceiling(reference, differences, resamples)
    gaussian = modelled_ceiling(reference, differences, resamples, noise="gaussian")  # for comparison
    result["modelled"]["gaussian"] = {"tau": gaussian["tau"], "ci": gaussian["ci"]}
    # each pair's seed-to-seed difference beside its FLOPs: whether one sigma fits small and large alike
    pair_flops = np.array([by_arch[(n, seed)]["cost"]["flops"] for n in both])
    result["differences"] = [{"arch": n, "flops": int(f), "reference": d}
                             for n, f, d in zip(both, pair_flops, differences.tolist())]
    split = float(np.median(pair_flops))
    pair_groups, arch_groups = np.where(pair_flops <= split, 0, 1), np.where(flops <= split, 0, 1)
    if min(np.sum(pair_groups == 0), np.sum(pair_groups == 1)) >= MIN_HALF_PAIRS:
        by_size = modelled_ceiling(reference, differences, resamples, arch_groups=arch_groups, pair_groups=pair_groups)
        result["modelled_by_size"] = {**by_size, "split_flops": split,
                                      "sigmas": [by_size["sigmas"]["0"], by_size["sigmas"]["1"]],
                                      "group_pairs": [by_size["group_pairs"]["0"], by_size["group_pairs"]["1"]],
                                      "group_architectures": [int(np.sum(arch_groups == 0)),
                                                              int(np.sum(arch_groups == 1))]}
    return result


def best_signal(report: dict) -> dict | None:
    """The signal (or the combination) with the highest Kendall tau against the reference, among
    those measured on every architecture (a partial signal's tau is over another set), and beside
    it the better of the trivial baselines: FLOPs and parameters are what a score must beat, not a
    score (they restate the search's cost objectives), so they are never the best."""
    measured = {name: row["tau"] for name, row in report["signals"].items()
                if row.get("available") and not row.get("partial") and not row.get("measure_only")}
    candidates = {name: tau for name, tau in measured.items() if name not in TRIVIAL}
    if report.get("combined"):
        candidates["combined"] = report["combined"]["tau"]
    if not candidates:
        return None
    name = max(candidates, key=candidates.get)
    baselines = {n: measured[n] for n in TRIVIAL if n in measured}
    baseline = max(baselines, key=baselines.get) if baselines else None
    return {"signal": name, "tau": candidates[name], "baseline": baseline,
            "baseline_tau": None if baseline is None else baselines[baseline]}


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


def _table(by_arch: dict) -> list[dict]:
    """One row per architecture and seed: costs and accuracy at every budget (the tabular benchmark)."""
    table = []
    for (arch, s), row in sorted(by_arch.items()):
        table.append({"arch": arch, "seed": s, "flops": row["cost"]["flops"], "params": row["cost"]["params"],
                      "accuracy": {str(r["steps"]): r.get("accuracy") for r in row["results"]},
                      "cpu_seconds": {str(r["steps"]): r.get("cpu_seconds") for r in row["results"]}})
    return table


# -- the page --------------------------------------------------------------------------------------
def write_page(report: dict, path: Path) -> None:
    """Proxy signal against the reference, one panel per signal, as one offline HTML page."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = [n for n, row in report["signals"].items() if row.get("available")]
    header = (f"<h1>Proxy fidelity</h1><p>{report['measured']} of {report['architectures']} architectures measured; "
              f"proxy {report['proxy_steps']} steps, reference {report['reference_steps']} steps.</p>")
    if not names:
        write_atomic(path, f"<html><body>{header}<p>{report.get('note', 'nothing measured yet')}</p></body></html>\n")
        return
    columns = 4
    rows = math.ceil(len(names) / columns)
    titles = [f"{n}: tau {report['signals'][n]['tau']:+.2f}"
              + (f" ({report['signals'][n]['measured']} archs)" if report['signals'][n].get("partial") else "")
              for n in names]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles)
    points = report.get("points", {})
    for index, name in enumerate(names):
        xs, ys, labels = points.get(name, ([], [], []))
        figure.add_trace(go.Scatter(x=xs, y=ys, mode="markers", text=labels, showlegend=False,
                                    hovertemplate="%{text}<br>signal %{x:.4g}<br>reference %{y:.4f}<extra></extra>"),
                         row=index // columns + 1, col=index % columns + 1)
    figure.update_layout(height=260 * rows, width=1200, margin={"t": 40})
    rows_html = "".join(
        f"<tr><td>{n}</td><td>{r['tau']:+.2f} [{r['tau_ci'][0]:+.2f}, {r['tau_ci'][1]:+.2f}]</td>"
        f"<td>{r['rho']:+.2f}</td><td>{_fmt(r['strata']['mean_tau'])}</td><td>{r['top5_in_top10']:.1f}</td>"
        + "".join(f"<td>{versus_text(r, base)}</td>" for base in TRIVIAL)
        + "".join(f"<td>{text}</td>" for text in regret_text(r)) + "</tr>"
        for n, r in report["signals"].items() if r.get("available") and r.get("tau_ci"))
    body = (f"<html><head><meta charset='utf-8'></head><body>{header}<table border=1 cellpadding=4>"
            f"<tr><th>signal (at the proxy's budget)</th><th>Kendall tau [95 % CI]</th><th>Spearman rho</th>"
            f"<th>mean tau within FLOPs strata</th><th>top-5 in top-10</th><th>tau - FLOPs alone [95 % CI]</th>"
            f"<th>tau - parameters alone [95 % CI]</th><th>regret under FLOPs budgets (points)</th>"
            f"<th>top pick's regret (points)</th></tr>{rows_html}</table><p>{regret_note(report)}</p>"
            + _tradeoff_html(report) + figure.to_html(full_html=False, include_plotlyjs=True) + "</body></html>\n")
    write_atomic(path, body)


def _tradeoff_html(report: dict) -> str:
    """The proxy's length: each budget's CPU cost per architecture beside its tau and regret."""
    rows = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
                   for cells in tradeoff_cells(report))
    if not rows:
        return ""
    shortest = shortest_trusted_text(report)
    return ("<h2>The proxy's length</h2><table border=1 cellpadding=4><tr>"
            + "".join(f"<th>{name}</th>" for name in TRADEOFF_COLUMNS) + f"</tr>{rows}</table>"
            + ("" if shortest is None else f"<p>{shortest[0].upper()}{shortest[1:]}.</p>"))


def by_size_text(by_size: dict) -> str:
    """The ceiling modelled with a seed noise for the smaller and one for the larger networks."""
    low, high = by_size["ci"] or [float("nan")] * 2
    small, large = (100 * sigma for sigma in by_size["sigmas"])
    return (f"modelled with each FLOPs half's own seed noise (up to {by_size['split_flops'] / 1e6:.0f}M FLOPs sigma "
            f"{small:.2f} points from {by_size['group_pairs'][0]} pairs, above {large:.2f} from "
            f"{by_size['group_pairs'][1]}): tau {by_size['tau']:+.2f} [{low:+.2f}, {high:+.2f}]")


def modelled_text(modelled: dict) -> str:
    """The ceiling modelled over every architecture, from the seed pairs' differences."""
    low, high = modelled["ci"] or [float("nan")] * 2
    text = (f"noise ceiling modelled over all {modelled['architectures']} architectures (each a seed-to-seed "
            f"difference drawn from the {modelled['pairs']} pairs): tau {modelled['tau']:+.2f} [{low:+.2f}, {high:+.2f}]")
    gaussian = modelled.get("gaussian")
    if gaussian:
        low, high = gaussian["ci"] or [float("nan")] * 2
        text += (f"; as Gaussian noise of the same spread (sigma {100 * modelled['sigma']:.2f} points): "
                 f"{gaussian['tau']:+.2f} [{low:+.2f}, {high:+.2f}]")
    return text


def regret_note(report: dict) -> str:
    """What the regret columns mean, with a random pick's regret ('' before any is measured)."""
    regret = (report["signals"].get("accuracy") or {}).get("regret")
    if not regret:
        return ""
    return (f"regret: the points of {report['reference_steps']}-step accuracy lost by taking the signal's best "
            f"architecture under a FLOPs budget (each architecture's FLOPs in turn), mean over the budgets; a random "
            f"pick loses {100 * regret['random']:.1f}. The top pick's: under a budget that every architecture fits")


def versus_text(row: dict, baseline: str) -> str:
    """A signal's paired tau difference to a trivial baseline, with its interval ('' for the baseline itself)."""
    versus = (row.get("versus") or {}).get(baseline)
    if versus is None:
        return ""
    low, high = versus["ci"] or [float("nan")] * 2
    return f"{versus['tau_minus']:+.2f} [{low:+.2f}, {high:+.2f}]"


def regret_text(row: dict) -> tuple[str, str]:
    """A signal's mean regret under FLOPs budgets, and its top pick's, in accuracy points."""
    regret = row.get("regret")
    if regret is None:
        return "", ""
    return f"{100 * regret['mean']:.1f}", f"{100 * regret['top']:.1f}"


TRADEOFF_COLUMNS = ("budget", "steps", "CPU s per architecture (train + verify)", "Kendall tau [95 % CI]",
                    "regret (points)")


def tradeoff_cells(report: dict) -> list[tuple[str, ...]]:
    """``budget_tradeoff`` as text, one tuple per budget in the order of ``TRADEOFF_COLUMNS``."""
    cells = []
    for row in budget_tradeoff(report):
        low, high = row["tau_ci"] or [float("nan")] * 2
        cells.append((f"{row['factor']:g}x", str(row["steps"]),
                      "n/a" if row["train"] is None else f"{row['train']:.0f} + {row['evaluate']:.0f}",
                      f"{row['tau']:+.2f} [{low:+.2f}, {high:+.2f}]",
                      "" if row["regret"] is None else f"{100 * row['regret']:.1f}"))
    return cells


def budget_tradeoff(report: dict) -> list[dict]:
    """What each budget below the reference costs per architecture (mean CPU seconds to train it
    alone and to verify it) beside how its accuracy ranks as the reference does: the choice of a
    proxy's length, cheapest first."""
    rows = []
    for steps, row in sorted(report["budgets"].items(), key=lambda item: int(item[0])):
        cost = report["cpu_seconds"].get(steps) or {}
        rows.append({"steps": int(steps), "factor": int(steps) / report["proxy_steps"], "train": cost.get("train"),
                     "evaluate": cost.get("evaluate"), "tau": row["tau"], "tau_ci": row["tau_ci"],
                     "regret": (row.get("regret") or {}).get("mean")})
    return rows


CEILING_MARGIN = 0.1  # "as good as it gets": a proxy within this much tau of the seed-noise ceiling


def shortest_trusted_budget(report: dict, margin: float = CEILING_MARGIN) -> dict | None:
    """The cheapest budget below the reference whose accuracy ranks within ``margin`` of the
    modelled noise ceiling (point estimates): the shortest proxy that ranks about as well as a
    second seed of the reference would, the length to choose on this data.  ``steps`` is None when
    no budget comes that close; the whole is None without a modelled ceiling."""
    ceiling = ((report.get("noise_ceiling") or {}).get("modelled") or {}).get("tau")
    if ceiling is None or not report.get("budgets"):
        return None
    found = {"ceiling": ceiling, "margin": margin, "steps": None}
    for row in budget_tradeoff(report):
        if row["tau"] >= ceiling - margin:
            return {**found, "steps": row["steps"], "factor": row["factor"], "tau": row["tau"]}
    return found


def shortest_trusted_text(report: dict) -> str | None:
    """``shortest_trusted_budget`` of the report as a line (None without a modelled ceiling)."""
    found = shortest_trusted_budget(report)
    if found is None:
        return None
    if found["steps"] is None:
        return (f"no budget below the reference ranks within {found['margin']:.1f} of the noise ceiling "
                f"({found['ceiling']:+.2f}, modelled): a proxy longer than any measured is needed to rank that well")
    return (f"shortest budget within {found['margin']:.1f} of the noise ceiling ({found['ceiling']:+.2f}, modelled): "
            f"{found['steps']} steps ({found['factor']:g}x the proxy), tau {found['tau']:+.2f}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


# -- what a study's report says of its proxy -------------------------------------------------------
def measured_fidelity(study_settings: dict, folders) -> dict | None:
    """The fidelity analysis (``fidelity.json``) whose proxy is the study's, from ``folders``.

    Matched on what decides a score: the data settings, the proxy's recipe (``RECIPE_FIELDS``; the
    warm-up as the schedule takes it, a tenth of the steps when the study leaves it unset, which
    is what a fidelity study pins) and the teacher.  A study whose recipe differs only in its steps,
    which are one of the budgets a fidelity study measured on the way (successive halving's top
    rung with ``--proxy-warmup`` set to that study's), matches too: bit for bit it trains that
    budget's branch, and ``budget_steps`` says which.  None when no such study has been run there.
    Of several that match (the same study on a CPU and on a GPU, say), an exact match before a
    budget's, then the one that has measured the most architectures.
    """
    wanted = wanted_proxy(study_settings)
    steps = wanted.get("steps")
    found = []
    for path, report, proxy in reports_of_study(study_settings, folders, REPORT):
        if proxy == wanted:
            found.append({"path": str(path), **report})
        elif ({**proxy, "steps": steps} == wanted and str(steps) in (report.get("budgets") or {})
              and steps < report.get("reference_steps", 0)):
            found.append({"path": str(path), **report, "budget_steps": steps})
    return max(found, key=lambda report: ("budget_steps" not in report, report.get("measured", 0)), default=None)


def reports_of_study(study_settings: dict, folders, name: str):
    """(path, report, its proxy's recipe fields) of each ``*/name`` in ``folders`` measured on the
    study's data with its teacher (a measurement's ``command_settings``); unreadable ones skipped."""
    wanted = wanted_proxy(study_settings)
    for folder in folders:
        for path in sorted(Path(folder).glob(f"*/{name}")):
            try:
                report = json.loads(path.read_text())
                settings = report["command_settings"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if (settings.get("data") == study_settings.get("data")
                    and settings.get("teacher") == study_settings.get("teacher")):
                yield path, report, {k: v for k, v in settings.get("proxy", {}).items() if k in wanted}


def wanted_proxy(study_settings: dict) -> dict:
    """The study's proxy recipe (``RECIPE_FIELDS``) as a measurement of it records it: the warm-up
    as the schedule takes it, a tenth of the steps when the study leaves it unset."""
    wanted = {k: v for k, v in (study_settings.get("proxy") or {}).items() if k in RECIPE_FIELDS}
    if wanted.get("warmup_steps") is None and "steps" in wanted:  # the default: a tenth of the steps
        wanted["warmup_steps"] = ProxyBudget(steps=wanted["steps"]).schedule.warmup_steps
    return wanted


def fidelity_sentence(report: dict | None, score: str = "accuracy") -> str:
    """One honest line for a study's report: how well its proxy's score ranked as longer training did."""
    if report is None:
        return ("The proxy's fidelity is <b>not measured</b> for these settings: run <code>nasface fidelity</code> "
                "with this study's settings (the same <code>--config</code> file, or the same flags as its "
                "<code>nasface search</code>) to learn how far to trust this front.")
    budget = report.get("budget_steps")
    if budget is None:
        row, measured_as = (report.get("signals") or {}).get(score) or {}, score
    else:  # a fidelity study measures only the accuracy at its budgets other than the proxy's
        if score != "accuracy":
            return (f"The proxy's fidelity is <b>not measured</b> for the score {score}: the fidelity study that "
                    f"trained these {budget} steps ({report['path']}) ranks only the accuracy there.")
        row = report["budgets"][str(budget)]
        measured_as = f"{score} at {budget} steps, a branch of the {report['proxy_steps']}-step proxy's runs"
    if not row.get("available"):
        return (f"The proxy's fidelity study ({report['measured']} of {report['architectures']} architectures so "
                f"far, {report['path']}) cannot rank the score {measured_as} yet.")
    low, high = row["tau_ci"] or [float("nan")] * 2
    ceiling = report.get("noise_ceiling") or {}
    if "modelled" in ceiling:  # over the same architectures as the score's tau
        ceiling_text = (f"; seed noise alone would hold a perfect proxy to about tau {ceiling['modelled']['tau']:.2f} "
                        f"over them (modelled from {ceiling['modelled']['pairs']} architectures trained twice)")
    elif "reference" in ceiling:
        ceiling_text = f"; two seeds of the reference agree at tau {ceiling['reference']['tau']:.2f}"
    else:
        ceiling_text = ""
    regret = row.get("regret")
    picking = "" if regret is None else (
        f" Picking its best under a FLOPs budget loses {100 * regret['mean']:.1f} points of {report['reference_steps']}"
        f"-step accuracy on average over budgets (a random pick: {100 * regret['random']:.1f}).")
    return (f"Measured fidelity of this proxy's score ({measured_as}): Kendall tau {row['tau']:.2f} [95 % CI {low:.2f}, "
            f"{high:.2f}] against {report['reference_steps']}-step training over {report['measured']} architectures"
            + (f" (a study in progress: {report['measured']} of the {report['architectures']} planned)"
               if report["measured"] < report["architectures"] else "")
            + f"{ceiling_text} ({report['path']}).{picking}{_length_advice(report, budget or report['proxy_steps'])}")


def _length_advice(report: dict, own_steps: int) -> str:
    """Which proxy length the fidelity study found to rank about as well as seed noise allows, when
    it is not the study's own."""
    shortest = shortest_trusted_budget(report)
    if shortest is None or shortest["steps"] == own_steps:
        return ""
    if shortest["steps"] is None:
        return (f" None of the budgets it measured below {report['reference_steps']} steps ranks within "
                f"{shortest['margin']:.1f} of that ceiling.")
    return (f" The shortest budget it measured that ranks within {shortest['margin']:.1f} of that ceiling: "
            f"{shortest['steps']} steps (tau {shortest['tau']:.2f}).")
