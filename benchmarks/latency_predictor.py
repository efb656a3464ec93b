"""The per-part latency predictor against measurement, on random networks of the default space.

    python benchmarks/latency_predictor.py [--runtime onnxruntime] [--precision fp32] [--threads 1]
                                           [--networks 40] [--fit 10] [--seed 1] [--table PATH]
                                           [--light-track] [--alone] [--face-maps] [--splits 200]
                                           [--sittings 1] [--space lfr] [--unchained] [--convolved-maps] [--solo]

Draws ``--networks`` random networks of the default space (lfr.yaml), measures every part they need (the
table's build time is timed), measures every network whole (min of 50 runs after 10 warm-ups, eight
networks at a time run in turn), fits the correction on the first ``--fit`` and scores the others
(held out): share within +-10 % and +-5 % of measured, mean absolute percentage error, Kendall tau.
Beside it: a line on the sum alone (no per-part term), the plain sum, and the baseline, a line fitted
on MACs over the same ``--fit`` networks.  One prediction is timed
over every held-out network.  The machine is shared: its load average is recorded before and after.

Parts are timed in context (behind a lead, less the lead) on a reference network's activations at
their size, a part a stage repeats as a chain of copies (the table's format 6).  ``--convolved-maps``
also times every part on a face resized and convolved at every size (format 5), ``--unchained``
every part once behind its lead (format 4's chain), ``--solo`` every part with its lead and nothing else in
turn (the table runs eight parts in turn, and a small part's figure carries what the other seven evict
from the caches), ``--face-maps`` every part in context on the
faces' smoother maps (format 3's input) and ``--alone`` every part alone (each its own model, as format
2 did), in the same sitting, and scores the same fitted forms on those sums against the same measured
networks: the method before and after, with the load alike.  One split is a small sample, so the
predictor's form is also fitted on ``--fit`` networks and scored on the others over ``--splits``
random splits (the same splits for every method), and so is the form with and without the term per
element a PReLU takes, which the product takes on onnxruntime only (``PRELU_BY_SIGNS``).  With ``--table`` and ``--face-maps`` the face-map
parts are kept beside the table (``...-facemaps.jsonl``, a file no table reads) for
``benchmarks/latency_forms.py --parts``.  ``--sittings N`` times the parts and the networks in N sittings
(each a pass over every part or network, eight at a time in turn, in another order after the first), and
the table counts each at the median of its figures: the held-out networks are then scored against their
median figure too.
``--space`` draws the networks from another space (a bundled name or a YAML path; the results file is
named after it).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.stats import kendalltau  # noqa: E402

from benchmarks._common import write_result  # noqa: E402
from benchmarks.latency_forms import scored  # noqa: E402
from rich.console import Console  # noqa: E402

from nasface.arch.budget import LIGHT_TRACK, Budgets  # noqa: E402
from nasface.latency.build import ensure_networks, ensure_parts, sample_networks  # noqa: E402
from nasface.latency.build import GROUP  # noqa: E402
from nasface.latency.measure import (TIMED_RUNS, WARMUP_RUNS, calibration_faces, clock,  # noqa: E402
                                     convolved_face_maps, measure_parts, mixed_channels, onnx_model, part_module,
                                     part_shape, runner, time_in_turn, with_fixed_weights)
from nasface.latency.parts import parts  # noqa: E402
from nasface.latency.table import FORMAT, Correction, LatencyPredictor, LatencyTable  # noqa: E402
from nasface.latency.target import LatencyTarget, prelu_by_signs  # noqa: E402
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
        models = [onnx_model(with_fixed_weights(lambda: part_module(part)), part_shape(part)) for part in group]
        runners = [runner(model, part_shape(part), target, faces) for part, model in zip(group, models)]
        for part, timing in zip(group, time_in_turn(runners, now=clock(target))):
            alone[part.key] = timing.ms
    return alone, time.perf_counter() - started


def resized_face_maps(shape: tuple[int, ...], faces: np.ndarray) -> list[np.ndarray]:
    """Table format 3's input of a part: each face resized to the map's size (nearest pixel), its
    channels mixed into ``shape[1]`` by a fixed random matrix, at unit spread (smoother than a network's
    activations: ``nasface.latency.measure.convolved_face_maps``)."""
    _, channels, height, width = shape
    rows = ((np.arange(height) + 0.5) * faces.shape[2] / height).astype(int)
    columns = ((np.arange(width) + 0.5) * faces.shape[3] / width).astype(int)
    return mixed_channels(faces[:, :, rows][:, :, :, columns], channels)


def parts_in_context(specs, target: LatencyTarget, kept: Path | None = None, group_size: int = GROUP,
                     **how) -> tuple[dict[str, float], float]:
    """Every distinct part of ``specs`` timed in context (``measure_parts`` with ``how``), ``group_size`` at a
    time in turn: part key -> ms, and the seconds it took; each part's row appended to ``kept`` (a header first)."""
    started = time.perf_counter()
    distinct = list({part.key: part for spec in specs for part in parts(spec)}.values())
    if kept:
        kept.write_text(json.dumps({"kind": "header", "format": "3: face maps, written by a benchmark",
                                    "key": target.key()}) + "\n")
    timed = {}
    for first in range(0, len(distinct), group_size):
        group = distinct[first:first + group_size]
        for part, timing in zip(group, measure_parts(group, target, **how)):
            timed[part.key] = timing.ms
            if kept:
                with kept.open("a") as handle:
                    handle.write(json.dumps({"kind": "part", "part": part.key, "ms": timing.ms,
                                             "nodes": timing.nodes}) + "\n")
    return timed, time.perf_counter() - started


def correction_rows(sums, nodes, prelus, measured) -> list[dict]:
    """Rows as the table gives them to ``Correction.fit``: the PReLUs' elements where ``prelus`` (the runtime's
    PReLU runs by its input's signs)."""
    return [{"parts_ms": s, "nodes": n, "ms": m, **({"prelu_elements": p} if prelus else {})}
            for s, n, p, m in zip(sums, nodes, prelus or [0] * len(sums), measured)]


def fitted_scores(sums, nodes, prelus, measured, fit, held) -> dict:
    """The fitted forms and the plain sum, fitted on ``fit`` and scored on ``held`` (``prelus``: as
    ``correction_rows`` takes them)."""
    line = Correction.fit(correction_rows(sums[fit], nodes[fit], prelus and prelus[fit], measured[fit]))
    sum_line = Correction.fit([{"parts_ms": s, "ms": m} for s, m in zip(sums[fit], measured[fit])])
    return {"correction": {"slope": line.slope, "per_node_ms": line.per_node,
                           "per_prelu_million_ms": line.per_prelu_million, "intercept_ms": line.intercept},
            "predictor": scores([line(row["parts_ms"], row["nodes"], row.get("prelu_elements", 0))
                                 for row in correction_rows(sums[held], nodes[held], prelus and prelus[held],
                                                            measured[held])], measured[held]),
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
    parser.add_argument("--convolved-maps", action="store_true",
                        help="Also time every part on convolved face maps at every size (table format 5's way).")
    parser.add_argument("--unchained", action="store_true",
                        help="Also time every part once behind its lead (table format 4's chain), beside.")
    parser.add_argument("--solo", action="store_true",
                        help="Also time every part with its lead and no other part in turn, beside.")
    parser.add_argument("--face-maps", action="store_true",
                        help="Also time every part in context on the faces' maps (table format 3's way), beside.")
    parser.add_argument("--splits", type=int, default=200, help="Random fit/held-out splits to average over.")
    parser.add_argument("--sittings", type=int, default=1,
                        help="Time every part and network in this many sittings, each at the median of its "
                             "figures (resumable).")
    parser.add_argument("--space", default="lfr",
                        help="The space to draw networks from: a bundled name or a YAML path.")
    args = parser.parse_args()
    target = LatencyTarget.parse(f"{args.runtime}:{args.precision}:{args.threads}")
    load_before = os.getloadavg()
    folder = tempfile.TemporaryDirectory(prefix="nasface-latency-")
    table = LatencyTable.open(args.table or Path(folder.name) / "table.jsonl", target.key())
    budgets = LIGHT_TRACK if args.light_track else Budgets()
    space = load_space(args.space)
    specs = sample_networks(space, args.networks, args.seed, budgets)

    started = time.perf_counter()
    measured_parts = ensure_parts(table, specs, target, sittings=args.sittings)
    build_seconds = time.perf_counter() - started
    print(f"{measured_parts} parts measured in {build_seconds:.0f} s ({len(table.entries)} in the table)", flush=True)

    started = time.perf_counter()
    # kept in the table as they are measured: a killed run continues where it stopped
    ensure_networks(table, specs, target, args.runs, args.warmup, StageDisplay("rich", Console(stderr=True)),
                    sittings=args.sittings)
    network_seconds = time.perf_counter() - started
    figures = {row["name"]: row for row in table.networks}

    predictor = LatencyPredictor(table)
    sums, nodes, elements = (list(column) for column in zip(*(predictor.summed(spec) for spec in specs)))
    prelus = elements if prelu_by_signs(table.key) else None  # the correction's third term, where it takes one
    measured = [figures[spec.name]["ms"] for spec in specs]
    macs = [count(spec)["macs"] for spec in specs]
    fit, held = slice(0, args.fit), slice(args.fit, None)
    line = Correction.fit(correction_rows(sums[fit], nodes[fit], prelus and prelus[fit], measured[fit]))
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
        "space": space.name, "seed": args.seed, "light_track": args.light_track,
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "table": {"parts_measured": measured_parts, "seconds": build_seconds,
                  "seconds_per_part": build_seconds / max(1, measured_parts)},
        "network_measurement_seconds": network_seconds,
        "table_format": FORMAT, "sittings": args.sittings,
        "measured_ms": {"min": min(measured), "median": statistics.median(measured), "max": max(measured)},
        **fitted_scores(sums, nodes, prelus, measured, fit, held),
        "macs_line": scores([by_macs(x) for x in macs[held]], measured[held]),
        "prediction_microseconds": prediction_us,
        "runs": args.runs, "warmup": args.warmup,
        "rows": [{"name": spec.name, "macs": x, "parts_ms": s, "nodes": n, "prelu_elements": p,
                  "parts": len(parts(spec)), "measured_ms": m, "median_ms": figures[spec.name]["median_ms"]}
                 for spec, x, s, n, p, m in zip(specs, macs, sums, nodes, elements, measured)],
    }
    rng = np.random.default_rng(0)
    splits = [rng.permutation(len(specs)) for _ in range(args.splits)]

    def random_splits(part_sums: list[float], prelu_term: bool) -> dict:
        columns = [np.array(part_sums), np.array(nodes, dtype=float)]
        columns += [np.array(elements, dtype=float) / 1e6] if prelu_term and any(elements) else []
        return scored(columns, np.array(measured), splits, args.fit)

    result["random_splits"] = random_splits(sums, prelus is not None)  # the product's form
    # the form with and without the PReLU term, whichever the product takes on this runtime
    result["random_splits_with_prelu_term"] = random_splits(sums, True)
    result["random_splits_without_prelu_term"] = random_splits(sums, False)
    others = []  # the same parts timed the ways of earlier table formats, in the same sitting
    if args.face_maps:
        kept = Path(args.table).with_name(f"{Path(args.table).stem}-facemaps.jsonl") if args.table else None
        others.append(("face_maps", *parts_in_context(specs, target, kept, maps=resized_face_maps)))
    if args.convolved_maps:
        others.append(("convolved_maps", *parts_in_context(specs, target, maps=convolved_face_maps)))
    if args.unchained:
        others.append(("unchained", *parts_in_context(specs, target, chain=1)))
    if args.solo:
        others.append(("solo", *parts_in_context(specs, target, group_size=1)))
    if args.alone:
        others.append(("alone", *parts_alone(specs, target)))
    for label, figures_of, seconds in others:
        other_sums = [sum(figures_of[part.key] for part in parts(spec)) for spec in specs]
        result[label] = {"seconds": seconds, "load_average_after": os.getloadavg(),
                         **fitted_scores(other_sums, nodes, prelus, measured, fit, held),
                         "random_splits": random_splits(other_sums, prelus is not None)}
        for row, other_sum in zip(result["rows"], other_sums):
            row[f"parts_{label}_ms"] = other_sum
    name = f"latency_predictor-{target.runtime}-{target.precision}-{target.threads}t" + ("-light" if args.light_track else "")
    name += "" if space.name == "lfr" else f"-{space.name}"
    path = write_result(name, result)
    print(f"wrote {path}")
    rows = [(label, result[label]) for label in ("predictor", "sum_line", "raw_sum", "macs_line")]
    rows += [(f"{other} {label}", result[other][label]) for other, *_ in others
             for label in ("predictor", "sum_line", "raw_sum")]
    for label, row in rows:
        print(f"{label:22s} within 10%: {row['within_10']:.1%}  within 5%: {row['within_5']:.1%}  "
              f"MAPE {row['mape']:.1%}  max {row['max_error']:.1%}  Kendall {row['kendall_tau']:.3f}")
    for label, row in ([("in context", result["random_splits"]),
                        ("with a PReLU term", result["random_splits_with_prelu_term"]),
                        ("without a PReLU term", result["random_splits_without_prelu_term"])]
                       + [(o, result[o]["random_splits"]) for o, *_ in others]):
        print(f"{label:22s} over {args.splits} random splits, fitted on {args.fit}: within 10%: "
              f"{row['within_10']:.1%}  MAPE {row['mape']:.1%}  Kendall {row['kendall_tau']:.3f}")
    print(f"one prediction: {prediction_us:.1f} us; table: {measured_parts} parts in {build_seconds:.0f} s; "
          f"load {load_before} -> {result['load_average_after']}")


if __name__ == "__main__":
    main()
