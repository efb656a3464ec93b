"""How long a run is expected to take: a power law of FLOPs fitted to the log as it stands.

It weighs the runs' ETA (a 900M-FLOPs run is not a 20M one) and decides, under ``--timeout``, which
runs can still end in time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nasface.core.atomic import RowLog
from nasface.arch.checkpoint import load_training_state
from nasface.core.errors import NasfaceError
from nasface.fidelity.yardstick import FILL

TIMEOUT_MARGIN = 1.5       # a run's wall time varies with the machine's load: start it only with room to spare
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
