"""Running a fidelity study: train what the log lacks, then analyse it and write ``fidelity.json``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from nasface.core.atomic import RowLog, write_atomic
from nasface.core.errors import NasfaceError
from nasface.fidelity.analysis import analyse
from nasface.fidelity.choice import draw_architectures, run_plan, second_seed_subset
from nasface.fidelity.report import FidelityReport
from nasface.fidelity.settings import (LOG, PROGRESS, REPORT, FidelitySettings, check_settings, describe, row_key,
                                       teacher_identity)
from nasface.fidelity.walltime import (TIMEOUT_MARGIN, _part_left, _power_law, expected_run_seconds,
                                       expected_wall_seconds)
from nasface.fidelity.yardstick import FILL, YARDSTICK_FILLS, _fill_yardstick, _lacks_yardstick, _with_fill, fill_key
from nasface.arch.model import count
from nasface.core.stages import SILENT, Stages, format_duration
from nasface.arch.spec import spec_to_dict
from nasface.training.proxy import score_budgets

logger = logging.getLogger(__name__)

FIDELITY_RUNS = "fidelity runs"  # the stage that trains the architectures
def run_fidelity(settings: FidelitySettings, out: str | Path, analyse_only: bool = False,
                 progress: Stages = SILENT, timeout: float | None = None) -> FidelityReport:
    """Train what the log lacks (unless ``analyse_only``), then analyse and write the report.

    The data, the teacher and the runs are stages of ``progress``; the runs' ETA counts the runs
    other processes sharing the log take off this one's hands as done at once, so with two
    processes it is about the time the two of them need.

    ``timeout`` (seconds) starts only the runs expected to end within it: each run's wall time is
    expected from a power law of FLOPs fitted to the log as it stands (runs of other machines and
    loads among them), scaled by this process's own pace once it has finished a run (the median
    ratio of its runs' wall time to the law's, within 4x either way), with a margin of
    ``TIMEOUT_MARGIN``; until three sizes are logged a run starts while any time is left.  On a
    machine lent for a fixed time, the time goes to runs that finish rather than to one cut off.
    What it does (the plan, each run's outcome) goes to this module's logger."""
    from nasface.search import check_config, load_proxy_data
    from nasface.training.teacher import teacher_targets

    deadline = None if timeout is None else time.time() + timeout

    check_settings(settings)
    check_config(settings.search)  # the data, space, budgets and teacher, before anything is written
    out = Path(out)
    if analyse_only:
        check_log_to_analyse(out / LOG)
    config = settings.search
    specs = draw_architectures(settings)
    repeated = second_seed_subset(specs, settings.second_seeds)
    data = load_proxy_data(config.data, config.seed, out / "cache", progress)
    proxy = settings.proxy
    teacher_info = teacher_identity(config)
    rows = RowLog(out / LOG)
    plan = run_plan(specs, repeated, proxy.seed)
    logger.info(f"fidelity: {len(specs)} architectures ({settings.architectures} drawn + "
                f"{len(specs) - settings.architectures} presets), {len(repeated)} with a second seed; budgets "
                f"{settings.steps()} steps (proxy {proxy.steps}, reference {settings.reference_steps}); log {out / LOG}")
    keys = [row_key(settings, data.key, spec, seed, teacher_info) for spec, seed in plan]
    todo = [] if analyse_only else [(spec, seed) for (spec, seed), key in zip(plan, keys) if rows.get(key) is None]
    forget_logged_progress(out / "cache" / PROGRESS, [key for key in keys if rows.get(key) is not None])
    fills = [] if analyse_only else [(spec, seed, key) for (spec, seed), key in zip(plan, keys)
                                     if _lacks_yardstick(settings, rows, key)]
    if todo or fills:
        # the search's own proxy budget, so the teacher is the one the search trains (and caches)
        teacher = teacher_targets(config.teacher, data, out / "cache", config.proxy,
                                  teacher_spec=config.teacher_spec, teacher_steps=config.teacher_steps,
                                  progress=progress)
        yardstick = None if settings.yardstick is None else \
            teacher_targets(settings.yardstick, data, out / "cache", config.proxy, progress=progress).held_out
        if fills:  # first: a fill costs an eighth of a run and completes the signal for the analysis
            with progress.stage(YARDSTICK_FILLS, len(fills), "replays") as stage:
                for number, (spec, seed, key) in enumerate(fills, 1):
                    if (deadline is None or time.time() < deadline) and rows.claim(fill_key(key, settings.yardstick)):
                        _fill_yardstick(settings, spec, seed, key, data, teacher, yardstick, rows)
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
                    _measure(settings, spec, seed, data, teacher, yardstick, rows, len(plan), teacher_info,
                             out / "cache" / PROGRESS)
                    final = rows.get(key)["results"][-1]
                    if wall_law is not None and final["status"] == "ok":
                        own_pace.append(final["wall_seconds"] / wall_law(run_flops))
                stage.update(number)
        if left_out:
            logger.info(f"--timeout: {len(left_out)} runs not started, expected to end after it (the shortest in "
                        f"about {format_duration(min(left_out))}, {TIMEOUT_MARGIN}x the logged runs' wall time at its "
                        f"FLOPs); the same command continues")
    rows.refresh()
    report = dataclasses.replace(analyse(settings, specs, repeated,
                                         [_with_fill(rows, key, settings.yardstick) for key in keys]),
                                 command_settings=describe(settings), teacher=teacher_info)
    write_atomic(out / REPORT, json.dumps(report.to_json(), indent=2) + "\n")
    return report


def check_log_to_analyse(log: Path) -> None:
    """Refuse to analyse a log that is not there: an output folder mistyped, or a study not run yet,
    would otherwise give an analysis of nothing, with its data cache and report written."""
    if not log.is_file():
        raise NasfaceError(f"--analyse: {log} does not exist, so there is nothing to analyse; give --out the folder "
                           f"that holds the log (the repository's are under benchmarks/results/), or leave out "
                           f"--analyse to measure")


def forget_logged_progress(folder: Path, logged: list[str]) -> None:
    """Delete the kept progress of runs already logged: a process killed between logging a run and
    deleting its progress leaves a file no later run would ever continue or delete."""
    for key in logged:
        (folder / f"{key}.pt").unlink(missing_ok=True)

def _measure(settings: FidelitySettings, spec, seed: int, data, teacher, yardstick, rows: RowLog, planned: int,
             teacher_info: dict | None, progress_folder: Path) -> None:
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
    logger.info(f"[{runs}/{planned}] {spec.name} seed {seed}: {shown} ({time.time() - begun:.0f} s)")


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
