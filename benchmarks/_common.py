"""What every benchmark shares: the machine description, the results files, rank statistics."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path


from nasface.core.atomic import RowLog, write_atomic  # noqa: F401  (RowLog: the benchmarks' resumable log)
from nasface.core.ranking import rank_agreement  # noqa: F401

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core {cpu}, Python {platform.python_version()}, torch {torch.__version__}"


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def result_path(name: str, out: str | os.PathLike | None = None) -> Path:
    return Path(out) if out else RESULTS / f"{name}.json"


def write_result(name: str, payload: dict, out: str | os.PathLike | None = None) -> Path:
    """Write ``payload`` (plus date and machine) as JSON; atomically, so a reader never sees half a file."""
    payload = {"benchmark": name, "date": date.today().isoformat(), "machine": machine(), **payload}
    return write_atomic(result_path(name, out), json.dumps(payload, indent=2) + "\n")
