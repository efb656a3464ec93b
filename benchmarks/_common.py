"""What every benchmark shares: the machine description, the results files, rank statistics."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from datetime import date
from pathlib import Path

import numpy as np

from nasface.atomic import write_atomic

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


class RowLog:
    """One JSON line per finished unit of work, keyed, so a run cut short resumes where it stopped.

    A line is appended and flushed as soon as its work is done; a torn last line (the process was
    killed mid-write) is cut off on reading and its work is simply done again.
    """

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[str, dict] = {}
        if path.exists():
            text = path.read_text()
            whole, _, torn = text.rpartition("\n")
            if torn:  # cut it off, or the next line would be appended to it
                path.write_text(whole + "\n" if whole else "")
            for row in map(json.loads, whole.splitlines()):
                self.rows[row["key"]] = row

    def get(self, key: str) -> dict | None:
        return self.rows.get(key)

    def add(self, key: str, row: dict) -> dict:
        row = {"key": key, **row}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        self.rows[key] = row
        return row


def rank_agreement(x, y, resamples: int = 2000, seed: int = 0, against=None) -> dict:
    """Kendall tau-b and Spearman rho of ``x`` vs ``y``, with 95 % bootstrap intervals.

    The bootstrap resamples items (architectures) with replacement; resamples in which either
    ranking is constant are skipped (no correlation is defined).  With ``against`` (a second
    predictor of ``y``), it also reports the paired difference tau(x, y) - tau(against, y) over the
    same resamples, and how often it is above zero.
    """
    from scipy.stats import kendalltau, spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    other = None if against is None else np.asarray(against, float)
    tau, rho = float(kendalltau(x, y).statistic), float(spearmanr(x, y).statistic)
    rng = np.random.default_rng(seed)
    taus, rhos, diffs = [], [], []
    for _ in range(resamples):
        pick = rng.integers(0, len(x), len(x))
        if np.ptp(x[pick]) == 0 or np.ptp(y[pick]) == 0 or (other is not None and np.ptp(other[pick]) == 0):
            continue
        taus.append(kendalltau(x[pick], y[pick]).statistic)
        rhos.append(spearmanr(x[pick], y[pick]).statistic)
        if other is not None:
            diffs.append(taus[-1] - kendalltau(other[pick], y[pick]).statistic)

    def interval(values: list[float]) -> list[float] | None:
        return [float(v) for v in np.percentile(values, [2.5, 97.5])] if values else None

    result = {"n": len(x), "tau": tau, "tau_ci": interval(taus), "rho": rho, "rho_ci": interval(rhos),
              "resamples": len(taus)}
    if other is not None:
        result.update(tau_minus_other=tau - float(kendalltau(other, y).statistic), tau_minus_other_ci=interval(diffs),
                      tau_above_other_fraction=float(np.mean(np.asarray(diffs) > 0)) if diffs else None)
    return result
