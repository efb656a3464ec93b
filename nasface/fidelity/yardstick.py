"""A yardstick given to a study in progress: the runs logged without it are replayed to the
proxy's budget and their agreement with it is appended as *fill* lines."""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import time

import numpy as np
import torch

from nasface.core.atomic import RowLog
from nasface.fidelity.analysis import result_at
from nasface.fidelity.settings import FidelitySettings
from nasface.training.proxy import score_budgets

logger = logging.getLogger(__name__)

YARDSTICK_FILLS = "yardstick replays"  # the stage that fills a yardstick in for runs logged without it
FILL = "yardstick-fill"  # the prefix of a fill line's key in the log
def fill_key(key: str, yardstick: str) -> str:
    return f"{FILL}:{yardstick}:{key}"


def _lacks_yardstick(settings: FidelitySettings, rows: RowLog, key: str) -> bool:
    """A run logged before the yardstick was given, whose proxy budget was measured, and not filled in yet."""
    if settings.yardstick is None:
        return False
    proxy = result_at(rows.get(key), settings.proxy_steps)
    if proxy is None or "yardstick_cka" in (proxy.get("signals") or {}):
        return False
    return rows.get(fill_key(key, settings.yardstick)) is None


def _fill_yardstick(settings: FidelitySettings, spec, seed: int, key: str, data, teacher, yardstick: np.ndarray,
                    rows: RowLog) -> None:
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
    logger.info(f"yardstick for {spec.name} seed {seed}: {shown} ({time.time() - begun:.0f} s)")


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
