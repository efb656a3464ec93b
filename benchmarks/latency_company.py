"""Sittings in the same order against sittings each in its own order: does a part's company move its figure?

    python benchmarks/latency_company.py [--runtime onnxruntime --precision int8] [--out FOLDER]

A table times its parts eight at a time in turn, and a part's figure carries what the other seven evict
from the caches between its runs; a table timed in several sittings counts each part at its least
figure.  If every sitting groups the parts alike, a part that met costly company once meets it every
time and the least figure keeps it.  This builds two tables of seed 1's 50 light-track networks (the
draw of ``latency_predictor.py --light-track``) in one window, their sittings interleaved so that the
machine's load falls on both alike:

- ``same order``: three sittings, each timing the parts in the order the networks meet them (how tables
  were built before, each part at its least figure);
- ``shuffled``: the same first sitting (shared), then two each in its own order (``sitting_order``, how
  ``ensure_parts`` times them now, each part at the median of its figures).

Each table is scored with its parts at their least figure and at their median.

The 50 networks are then measured whole in three sittings, each in its own random order, and each table
predicts them over ``--splits`` random splits (the correction fitted on 20, scored on the other 30), against
each sitting's figure and against each network's least and median figure.  The first table's first sitting alone is scored
beside, and the networks' sittings against each other (``latency_repeat.agreement``: the floor under
any predictor's error).  Resumable: the tables are the product's append-only logs and the networks' figures are
written after each sitting; a finished folder is only analysed again.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, write_atomic, write_result  # noqa: E402
from benchmarks.latency_repeat import agreement  # noqa: E402
from nasface.arch.budget import LIGHT_TRACK  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402
from nasface.latency.build import GROUP, sample_networks, sitting_order  # noqa: E402
from nasface.latency.measure import measure, measure_parts  # noqa: E402
from nasface.latency.parts import part_keys  # noqa: E402
from nasface.latency.table import Correction, LatencyTable  # noqa: E402
from nasface.latency.target import LatencyTarget  # noqa: E402

SITTINGS = 3
NETWORK_ORDER_SEED = 300  # sitting s of the whole networks runs them in permutation(default_rng(300 + s))
TIMED: list[tuple[float, float, float]] = []  # the load average after each sitting this run timed


def time_sitting(table: LatencyTable, specs, target: LatencyTarget, sitting: int, shuffled: bool,
                 copy_to: LatencyTable | None = None) -> None:
    """One sitting of ``table``'s parts (``copy_to`` gets the same figures: the shared first sitting)."""
    missing = table.missing(specs, sitting)
    if shuffled:
        missing = sitting_order(missing, sitting)
    for first in range(0, len(missing), GROUP):
        group = missing[first:first + GROUP]
        for part, timing in zip(group, measure_parts(group, target)):
            for kept in (table, copy_to) if copy_to is not None else (table,):
                kept.add_part(part, timing.ms, timing.median_ms, timing.runs, timing.nodes, timing.lead_ms,
                              timing.copies)
    if missing:
        TIMED.append(os.getloadavg())
        print(f"{table.path.name} sitting {sitting} done {time.strftime('%H:%M:%S')}, load {os.getloadavg()}",
              flush=True)


def parts_at(table: LatencyTable, sittings: int, rule) -> dict[str, tuple[float, int]]:
    """part key -> (``rule`` of its figures in its first ``sittings`` sittings, operators)."""
    return {key: (float(rule(found[:sittings])), table.nodes[key]) for key, found in table.figures.items()}


def scores(parts: dict, keys: list[list[str]], measured: np.ndarray, splits: int) -> dict:
    """Within +-10 % and mean absolute error of the corrected sums over random 20 / 30 splits."""
    rows = [{"parts_ms": sum(parts[k][0] for k in ks), "nodes": sum(parts[k][1] for k in ks), "ms": float(ms)}
            for ks, ms in zip(keys, measured)]
    rng = np.random.default_rng(0)
    within, errors = [], []
    for _ in range(splits):
        order = rng.permutation(len(rows))
        correction = Correction.fit([rows[i] for i in order[:20]])
        held = [rows[i] for i in order[20:]]
        ratios = np.array([row["ms"] / correction(row["parts_ms"], row["nodes"]) for row in held])
        within.append(np.mean(np.abs(ratios - 1) <= 0.10))
        errors.append(np.mean(np.abs(1 / ratios - 1)))
    return {"within_10": float(np.mean(within)), "mape": float(np.mean(errors))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--splits", type=int, default=200)
    parser.add_argument("--out", help="The folder of the two tables and the networks' figures (default: "
                                      "results/latency_company-<runtime>-<precision>/).")
    args = parser.parse_args()
    target = LatencyTarget.parse(f"{args.runtime}:{args.precision}:1")
    folder = Path(args.out or RESULTS / f"latency_company-{args.runtime}-{args.precision}")
    folder.mkdir(parents=True, exist_ok=True)
    specs = sample_networks(load_space("lfr"), 50, 1, LIGHT_TRACK)
    same = LatencyTable.open(folder / "same.jsonl", target.key())
    shuffled = LatencyTable.open(folder / "permuted.jsonl", target.key())
    time_sitting(same, specs, target, 1, shuffled=False, copy_to=shuffled)
    for sitting in range(2, SITTINGS + 1):  # interleaved: the load falls on both alike
        time_sitting(same, specs, target, sitting, shuffled=False)
        time_sitting(shuffled, specs, target, sitting, shuffled=True)
    networks_path = folder / "networks.json"
    found = json.loads(networks_path.read_text()) if networks_path.is_file() else []
    for sitting in range(len({row["sitting"] for row in found}), SITTINGS):
        order = np.random.default_rng(NETWORK_ORDER_SEED + sitting).permutation(len(specs))
        for first in range(0, len(order), GROUP):
            group = [specs[i] for i in order[first:first + GROUP]]
            found += [{"sitting": sitting, "name": spec.name, "ms": figure.ms, "median_ms": figure.median_ms}
                      for spec, figure in zip(group, measure(group, target))]
        write_atomic(networks_path, json.dumps(found))
        TIMED.append(os.getloadavg())
        print(f"networks sitting {sitting} done {time.strftime('%H:%M:%S')}, load {os.getloadavg()}", flush=True)

    figure = {(row["sitting"], row["name"]): row["ms"] for row in found}
    measured = np.array([[figure[(sitting, spec.name)] for sitting in range(SITTINGS)] for spec in specs])
    references = {**{f"sitting {s + 1}": measured[:, s] for s in range(SITTINGS)}, "least": measured.min(axis=1),
                  "median": np.median(measured, axis=1)}
    keys = [part_keys(spec) for spec in specs]
    tables = {"one sitting": parts_at(same, 1, min),
              "same order x3, least": parts_at(same, SITTINGS, min),
              "same order x3, median": parts_at(same, SITTINGS, np.median),
              "shuffled x3, least": parts_at(shuffled, SITTINGS, min),
              "shuffled x3, median (now)": parts_at(shuffled, SITTINGS, np.median)}
    result = {name: {label: scores(parts, keys, reference, args.splits) for label, reference in references.items()}
              for name, parts in tables.items()}
    repeats = {f"{a + 1} / {b + 1}": {name: value for name, value in agreement(
        dict(zip(range(len(specs)), measured[:, a])), dict(zip(range(len(specs)), measured[:, b]))).items()
        if name in ("median_ratio", "within_10", "within_5", "largest")}
        for a, b in itertools.combinations(range(SITTINGS), 2)}
    written = write_result(f"latency_company-{args.runtime}-{args.precision}",
                           {"target": target.key(), "networks": len(specs), "splits": args.splits,
                            # the load after each sitting this run timed: none where it only analysed again
                            # (the loads of the sittings that timed are printed as they end)
                            "load_after_each_sitting_timed_now": TIMED, "scores": result,
                            "network_sittings_agreement": repeats})
    for pair, found in repeats.items():
        print(f"networks whole, sittings {pair}: median ratio {found['median_ratio']:.3f}, within 10 % "
              f"{found['within_10']:.0%}, within 5 % {found['within_5']:.0%}, largest {found['largest']:.1%}")
    print(f"| parts | " + " | ".join(f"vs {label}" for label in references) + " |")
    print("| --- |" + " ---: |" * len(references))
    for name, row in result.items():
        print(f"| {name} | " + " | ".join(f"{cell['within_10']:.1%} ({cell['mape']:.1%})" for cell in row.values())
              + " |")
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
