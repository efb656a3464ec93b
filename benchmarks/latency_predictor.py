"""The per-part latency predictor against measurement, on random networks of the default space.

    python benchmarks/latency_predictor.py [--runtime onnxruntime] [--precision fp32] [--threads 1]
                                           [--networks 40] [--fit 10] [--seed 1] [--table PATH]
                                           [--light-track] [--alone]

Draws ``--networks`` random networks of the default space (lfr.yaml), measures every part they need (the
table's build time is timed), measures every network whole (min of 50 runs after 10 warm-ups, eight
networks at a time run in turn), fits the correction on the first ``--fit`` and scores the others
(held out): share within +-10 % and +-5 % of measured, mean absolute percentage error, Kendall tau.
Beside it: a line on the sum alone (no per-part term), the plain sum, and the baseline, a line fitted
on MACs over the same ``--fit`` networks.  One prediction is timed
over every held-out network.  The machine is shared: its load average is recorded before and after.

Parts are timed in context (behind a lead, less the lead: the table's format 3).  ``--alone`` also
times every part alone (each its own model, as table format 2 did), in the same sitting, and scores the
same fitted forms on those sums against the same measured networks: the method before and after, with
the load alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.stats import kendalltau  # noqa: E402

from benchmarks._common import write_result  # noqa: E402
from rich.console import Console  # noqa: E402

from nasface.arch.budget import Budgets  # noqa: E402
from nasface.latency.build import ensure_networks, ensure_parts, sample_networks  # noqa: E402
from nasface.latency.build import GROUP  # noqa: E402
from nasface.latency.measure import (TIMED_RUNS, WARMUP_RUNS, calibration_faces, clock, onnx_model,  # noqa: E402
                                     part_module, part_shape, runner, time_in_turn)
from nasface.latency.parts import parts  # noqa: E402
from nasface.latency.table import FORMAT, Correction, LatencyPredictor, LatencyTable  # noqa: E402
from nasface.latency.target import LatencyTarget  # noqa: E402
from nasface.arch.model import count  # noqa: E402
from nasface.ui.progress import StageDisplay  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402


def scores(predicted: list[float], measured: list[float]) -> dict:
    errors = [(p - m) / m for p, m in zip(predicted, measured)]
    return {"within_10": sum(abs(e) <= 0.10 for e in errors) / len(errors),
            "within_5": sum(abs(e) <= 0.05 for e in errors) / len(errors),
            "mape": statistics.mean(abs(e) for e in errors), "max_error": max(abs(e) for e in errors),
            "bias": statistics.mean(errors), "kendall_tau": float(kendalltau(predicted, measured)[0])}


def parts_alone(specs, target: LatencyTarget) -> tuple[dict[str, float], float]:
    """Every distinct part of ``specs`` timed alone (its own model, no lead), GROUP at a time in turn: part
    key -> ms, and the seconds it took."""
    started = time.perf_counter()
    distinct = list({part.key: part for spec in specs for part in parts(spec)}.values())
    faces = calibration_faces()
    alone = {}
    for first in range(0, len(distinct), GROUP):
        group = distinct[first:first + GROUP]
        runners = [runner(onnx_model(part_module(part), part_shape(part)), part_shape(part), target, faces)
                   for part in group]
        for part, timing in zip(group, time_in_turn(runners, now=clock(target))):
            alone[part.key] = timing.ms
    return alone, time.perf_counter() - started


def fitted_scores(sums, nodes, measured, fit, held) -> dict:
    """The fitted forms and the plain sum, fitted on ``fit`` and scored on ``held``."""
    line = Correction.fit([{"parts_ms": s, "nodes": n, "ms": m}
                           for s, n, m in zip(sums[fit], nodes[fit], measured[fit])])
    sum_line = Correction.fit([{"parts_ms": s, "ms": m} for s, m in zip(sums[fit], measured[fit])])
    return {"correction": {"slope": line.slope, "per_node_ms": line.per_node, "intercept_ms": line.intercept},
            "predictor": scores([line(s, n) for s, n in zip(sums[held], nodes[held])], measured[held]),
            "sum_line": scores([sum_line(s) for s in sums[held]], measured[held]),
            "raw_sum": scores(sums[held], measured[held])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--networks", type=int, default=40)
    parser.add_argument("--fit", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs", type=int, default=TIMED_RUNS, help="Timed runs per whole network.")
    parser.add_argument("--warmup", type=int, default=WARMUP_RUNS)
    parser.add_argument("--light-track", action="store_true",
                        help="Draw only networks within the LFR light track (1G FLOPs, 20 MB of weights).")
    parser.add_argument("--table", help="A table to reuse or continue (default: a fresh one, timed from empty).")
    parser.add_argument("--alone", action="store_true",
                        help="Also time every part alone (table format 2's way) and score it beside.")
    args = parser.parse_args()
    target = LatencyTarget.parse(f"{args.runtime}:{args.precision}:{args.threads}")
    load_before = os.getloadavg()
    folder = tempfile.TemporaryDirectory(prefix="nasface-latency-")
    table = LatencyTable.open(args.table or Path(folder.name) / "table.jsonl", target.key())
    budgets = Budgets(flops=10**9, weight_bytes=20 * 10**6) if args.light_track else Budgets()
    specs = sample_networks(load_space(), args.networks, args.seed, budgets)

    started = time.perf_counter()
    measured_parts = ensure_parts(table, specs, target)
    build_seconds = time.perf_counter() - started
    print(f"{measured_parts} parts measured in {build_seconds:.0f} s ({len(table.entries)} in the table)", flush=True)

    started = time.perf_counter()
    # kept in the table as they are measured: a killed run continues where it stopped
    ensure_networks(table, specs, target, args.runs, args.warmup, StageDisplay("rich", Console(stderr=True)))
    network_seconds = time.perf_counter() - started
    figures = {row["name"]: row for row in table.networks}

    predictor = LatencyPredictor(table)
    sums, nodes = (list(column) for column in zip(*(predictor.summed(spec) for spec in specs)))
    measured = [figures[spec.name]["ms"] for spec in specs]
    macs = [count(spec)["macs"] for spec in specs]
    fit, held = slice(0, args.fit), slice(args.fit, None)
    line = Correction.fit([{"parts_ms": s, "nodes": n, "ms": m}
                           for s, n, m in zip(sums[fit], nodes[fit], measured[fit])])
    by_macs = Correction.fit([{"parts_ms": x, "ms": m} for x, m in zip(macs[fit], measured[fit])])

    predictor.correction = line
    held_specs = specs[held]
    started = time.perf_counter()
    repeats = 200
    for _ in range(repeats):
        for spec in held_specs:
            predictor.predict(spec)
    prediction_us = (time.perf_counter() - started) / (repeats * len(held_specs)) * 1e6

    result = {
        "target": target.key(), "networks": len(specs), "fit_networks": args.fit, "held_out": len(held_specs),
        "seed": args.seed, "light_track": args.light_track, "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "table": {"parts_measured": measured_parts, "seconds": build_seconds,
                  "seconds_per_part": build_seconds / max(1, measured_parts)},
        "network_measurement_seconds": network_seconds,
        "table_format": FORMAT,
        "measured_ms": {"min": min(measured), "median": statistics.median(measured), "max": max(measured)},
        **fitted_scores(sums, nodes, measured, fit, held),
        "macs_line": scores([by_macs(x) for x in macs[held]], measured[held]),
        "prediction_microseconds": prediction_us,
        "runs": args.runs, "warmup": args.warmup,
        "rows": [{"name": spec.name, "macs": x, "parts_ms": s, "nodes": n, "parts": len(parts(spec)),
                  "measured_ms": m, "median_ms": figures[spec.name]["median_ms"]}
                 for spec, x, s, n, m in zip(specs, macs, sums, nodes, measured)],
    }
    if args.alone:
        alone, alone_seconds = parts_alone(specs, target)
        alone_sums = [sum(alone[part.key] for part in parts(spec)) for spec in specs]
        result["alone"] = {"seconds": alone_seconds, "load_average_after": os.getloadavg(),
                           **fitted_scores(alone_sums, nodes, measured, fit, held)}
        for row, alone_sum in zip(result["rows"], alone_sums):
            row["parts_alone_ms"] = alone_sum
    name = f"latency_predictor-{target.runtime}-{target.precision}-{target.threads}t" + ("-light" if args.light_track else "")
    path = write_result(name, result)
    print(f"wrote {path}")
    rows = [(label, result[label]) for label in ("predictor", "sum_line", "raw_sum", "macs_line")]
    rows += [(f"alone {label}", result["alone"][label]) for label in ("predictor", "sum_line", "raw_sum")
             if args.alone]
    for label, row in rows:
        print(f"{label:18s} within 10%: {row['within_10']:.1%}  within 5%: {row['within_5']:.1%}  "
              f"MAPE {row['mape']:.1%}  max {row['max_error']:.1%}  Kendall {row['kendall_tau']:.3f}")
    print(f"one prediction: {prediction_us:.1f} us; table: {measured_parts} parts in {build_seconds:.0f} s; "
          f"load {load_before} -> {result['load_average_after']}")


if __name__ == "__main__":
    main()
