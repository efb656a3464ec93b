"""A stage's repeats timed as a chain of copies, against table format 4, in one sitting.

    python benchmarks/latency_chain.py [--copies 4] [--networks 50] [--fit 20] [--splits 200]

Draws the networks of ``latency_predictor.py --light-track`` (seed 1), times every distinct part the
way table format 4 does (behind its lead, less the lead, on ``activation_maps``), then times every
stride-1 block part with as many channels out as in (the repeats that make up a stage) once more, as
``--copies`` copies behind the lead, less the lead, divided by the copies (each copy with its own
weights, as a stage's repeats have), and measures the networks whole.  Both sums (format 4's; the
chain's where a part has one, format 4's elsewhere) are scored as the predictor is (slope, cost per
operator, intercept; fitted on ``--fit`` networks, scored on the others, over ``--splits`` random
splits).  onnxruntime fp32, one thread, CPU time.

Why: a part's figure moves by some 15 % between sittings on a shared machine, different parts
different ways, and a network of one part repeated nine times carries that whole (BENCHMARKS.md).
A chain times the part as a stage runs it, with K times the signal.  Writes results/latency_chain.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import machine, write_result  # noqa: E402
from benchmarks.latency_forms import scored  # noqa: E402
from nasface.arch.budget import Budgets  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402
from nasface.latency.build import GROUP, sample_networks  # noqa: E402
from nasface.latency.measure import (calibration_faces, clock, lead_module, lead_onnx, measure,  # noqa: E402
                                     measure_parts, onnx_model, part_module, part_shape, runner,
                                     time_in_turn, with_fixed_weights)
from nasface.latency.parts import Part, parts  # noqa: E402
from nasface.latency.target import LatencyTarget  # noqa: E402

TARGET = LatencyTarget("onnxruntime", "fp32", 1)


def chainable(part: Part) -> bool:
    """A part a stage repeats: a block that keeps its channels and its map size."""
    return part.kind == "block" and part.stride == 1 and part.cin == part.cout


def chain_onnx(part: Part, copies: int) -> bytes:
    import torch

    chain = with_fixed_weights(lambda: [part_module(part) for _ in range(copies)])
    return onnx_model(torch.nn.Sequential(lead_module(part.cin), *chain), part_shape(part))


def time_chains(found: list[Part], copies: int) -> dict[str, float]:
    """Each part's chain less its lead, over the copies: part key -> ms; GROUP chains at a time in turn."""
    faces = calibration_faces()
    figures = {}
    for first in range(0, len(found), GROUP):
        group = found[first:first + GROUP]
        leads = {part_shape(part): lead_onnx(part) for part in group}
        runners = [runner(chain_onnx(part, copies), part_shape(part), TARGET, faces) for part in group]
        runners += [runner(model, shape, TARGET, faces) for shape, model in leads.items()]
        timings = time_in_turn(runners, now=clock(TARGET))
        lead_of = dict(zip(leads, timings[len(group):]))
        for part, timing in zip(group, timings):
            figures[part.key] = (timing.ms - lead_of[part_shape(part)].ms) / copies
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--networks", type=int, default=50)
    parser.add_argument("--fit", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--splits", type=int, default=200)
    args = parser.parse_args()
    load_before = os.getloadavg()
    specs = sample_networks(load_space(), args.networks, args.seed, Budgets(flops=10**9, weight_bytes=20 * 10**6))
    distinct = list({part.key: part for spec in specs for part in parts(spec)}.values())

    started = time.perf_counter()
    format4, nodes = {}, {}
    for first in range(0, len(distinct), GROUP):
        group = distinct[first:first + GROUP]
        for part, timing in zip(group, measure_parts(group, TARGET)):
            format4[part.key], nodes[part.key] = timing.ms, timing.nodes
    format4_seconds = time.perf_counter() - started

    started = time.perf_counter()
    chains = time_chains([part for part in distinct if chainable(part)], args.copies)
    chain_seconds = time.perf_counter() - started

    whole = {}
    for first in range(0, len(specs), GROUP):
        group = specs[first:first + GROUP]
        whole.update((spec.name, figure.ms) for spec, figure in zip(group, measure(group, TARGET)))

    measured = np.array([whole[spec.name] for spec in specs])
    operators = np.array([sum(nodes[part.key] for part in parts(spec)) for spec in specs], dtype=float)
    sums = {"format4": np.array([sum(format4[part.key] for part in parts(spec)) for spec in specs]),
            "chain": np.array([sum(chains.get(part.key, format4[part.key]) for part in parts(spec))
                               for spec in specs])}
    rng = np.random.default_rng(0)
    splits = [rng.permutation(len(specs)) for _ in range(args.splits)]
    result = {"machine": machine(), "target": TARGET.key(), "copies": args.copies, "networks": len(specs),
              "fit": args.fit, "seed": args.seed, "parts": len(distinct), "chained_parts": len(chains),
              "seconds": {"format4": format4_seconds, "chains": chain_seconds},
              "load_average_before": load_before, "load_average_after": os.getloadavg(),
              "scores": {name: {**scored([column, operators], measured, splits, args.fit),
                                "spread_of_sum_over_measured": float(np.log(column / measured).std())}
                         for name, column in sums.items()},
              "rows": [{"name": spec.name, "measured_ms": float(m), "format4_ms": float(f), "chain_ms": float(c)}
                       for spec, m, f, c in zip(specs, measured, sums["format4"], sums["chain"])]}
    path = write_result("latency_chain", result)
    for name, row in result["scores"].items():
        print(f"{name:8s} within 10%: {row['within_10']:.1%}  MAPE {row['mape']:.1%}  Kendall {row['kendall_tau']:.3f}"
              f"  spread {row['spread_of_sum_over_measured']:.1%}")
    print(f"{len(chains)} of {len(distinct)} parts chained; load {load_before} -> {result['load_average_after']}; "
          f"wrote {path}")


if __name__ == "__main__":
    main()
