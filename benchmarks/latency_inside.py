"""Parts timed inside their network against the table's figures: where a per-part table's error comes from.

    python benchmarks/latency_inside.py --table benchmarks/results/latency_table-...-3sittings.jsonl
                                        [--networks lfr-1-046,lfr-1-028,lfr-1-007] [--sittings 2] [--runs 50]
                                        [--runtime onnxruntime --precision fp32] [--variants as-built,relu,noise]

For each named network of seed 1's light-track draw (the draw of ``latency_predictor.py --light-track``)
every prefix of the deployed network (stem; stem and head; ...; the whole network) is exported and the
prefixes are timed in turn (one thread, CPU time, min of ``--runs`` after 10; int8 prefixes each
quantised as the table's parts are, calibrated on the faces): the
difference between consecutive prefixes is what the part costs *inside* the network, beside the figure
the table holds for it (timed in context, behind a lead, on ``activation_maps``).  Three variants of
each network, each on the same face unless named:

- ``as built``: the network as the table's whole-network row measured it;
- ``relu``: every PReLU of it made a ReLU (onnxruntime's ReLU does not branch on the sign);
- ``noise input``: as built, on white noise instead of the face.

``--variants`` names the ones to time (``as-built``, ``relu``, ``noise``; all three unless named).

``--sittings N`` times everything N times, one sitting after the other, so the spread of a whole
network's figure between sittings is measured beside the parts' (the increments reported are each
prefix's least figure over the sittings).  Each
network's fitted residual (the table's correction fitted on all its measured networks) is reported too,
as the predictor would read it.  The figures are relative: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import machine, write_result  # noqa: E402
from nasface.arch.budget import LIGHT_TRACK  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402
from nasface.latency.build import sample_networks  # noqa: E402
from nasface.latency.measure import calibration_faces, onnx_model, runner, time_in_turn  # noqa: E402
from nasface.latency.parts import parts  # noqa: E402
from nasface.latency.table import Correction, LatencyTable  # noqa: E402
from nasface.latency.target import LatencyTarget  # noqa: E402

VARIANTS = {"as-built": "as built", "relu": "relu", "noise": "noise input"}  # --variants name -> label


def part_modules(spec, variant: str) -> list:
    """The deployed network's parts as modules, in the order ``parts(spec)`` lists them."""
    import torch

    from nasface.arch.model import build_model, deploy

    torch.manual_seed(0)
    network = deploy(build_model(spec).eval())
    if variant == "relu":
        for module in list(network.modules()):
            for name, child in list(module.named_children()):
                if isinstance(child, torch.nn.PReLU):
                    setattr(module, name, torch.nn.ReLU())
    modules = [network.stem] + ([network.head] if spec.head.kind != "none" else [])
    modules += [block for stage in network.stages for block in stage] + [network.embedding]
    assert len(modules) == len(parts(spec))
    return modules


def prefix_runners(spec, variant: str, target: LatencyTarget, faces: np.ndarray) -> list:
    import torch

    shape = (1, 3, spec.input_size, spec.input_size)
    inputs = faces if variant != "noise input" else \
        np.random.default_rng(0).standard_normal(faces.shape).astype(np.float32)
    modules = part_modules(spec, variant)
    return [runner(onnx_model(torch.nn.Sequential(*modules[:k]), shape), shape, target, inputs)
            for k in range(1, len(modules) + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True,
                        help="A 1-thread table of the target, of seed 1's draw, of the current format.")
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--variants", default="as-built,relu,noise",
                        help="Which variants to time, of as-built, relu and noise.")
    parser.add_argument("--networks", default="lfr-1-046,lfr-1-028,lfr-1-007")
    parser.add_argument("--sittings", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    target = LatencyTarget.parse(f"{args.runtime}:{args.precision}:1")
    named = args.variants.split(",")
    if "as-built" not in named or not set(named) <= set(VARIANTS):
        parser.error(f"--variants {args.variants}: as-built and any of {', '.join(VARIANTS)}")
    variants = [VARIANTS[name] for name in named]
    table = LatencyTable.open(args.table, target.key(), create=False)
    measured = {row["name"]: row for row in table.networks}
    correction = Correction.fit(table.networks)
    specs = {spec.name: spec for spec in sample_networks(load_space(), len(measured), 1, LIGHT_TRACK)}
    names = args.networks.split(",")
    faces = calibration_faces()
    load_before = os.getloadavg()
    cases = [(name, variant) for name in names for variant in variants]
    runners = {case: prefix_runners(specs[case[0]], case[1], target, faces) for case in cases}
    sittings = []
    for sitting in range(args.sittings):
        flat = [run for case in cases for run in runners[case]]
        timings = iter(time_in_turn(flat, runs=args.runs, now=time.process_time))
        sittings.append({case: [next(timings).ms for _ in runners[case]] for case in cases})
        print(f"sitting {sitting + 1} of {args.sittings} done", flush=True)
    result = {"machine": machine(), "table": Path(args.table).name, "runs": args.runs, "sittings": args.sittings,
              "load_average_before": load_before, "networks": []}
    for name in names:
        spec, row = specs[name], measured[name]
        keys = [part.key for part in parts(spec)]
        predicted = correction(row["parts_ms"], row["nodes"])
        network = {"name": name, "table_measured_ms": row["ms"], "parts_sum_ms": row["parts_ms"],
                   "predicted_ms": predicted, "residual": row["ms"] / predicted - 1.0, "variants": {}}
        for variant in variants:
            prefixes = [sitting[name, variant] for sitting in sittings]
            increments = [np.diff([0.0, *figures]).tolist() for figures in prefixes]
            network["variants"][variant] = {"whole_ms": [figures[-1] for figures in prefixes],
                                            "increments_ms": increments}
        # identical parts met more than once along the network: how far their inside figures spread
        built = np.array(network["variants"]["as built"]["increments_ms"]).min(axis=0)
        repeated = {}
        for index, key in enumerate(keys):
            repeated.setdefault(key, []).append(index)
        network["repeated_parts"] = [
            {"part": json.loads(key), "table_ms": table.entries[key], "inside_ms": built[indices].tolist()}
            for key, indices in repeated.items() if len(indices) > 2]
        network["parts"] = [{"part": json.loads(key), "table_ms": table.entries[key], "inside_ms": float(ms)}
                            for key, ms in zip(keys, built)]
        result["networks"].append(network)
    result["load_average_after"] = os.getloadavg()
    default_target = (args.runtime, args.precision) == ("onnxruntime", "fp32")
    path = write_result("latency_inside" + ("" if default_target else f"-{args.runtime}-{args.precision}"), result)
    print(f"wrote {path}")
    for network in result["networks"]:
        whole = network["variants"]
        print(f"{network['name']}: table's whole figure {network['table_measured_ms']:.2f} ms, sum of parts "
              f"{network['parts_sum_ms']:.2f}, predicted {network['predicted_ms']:.2f} "
              f"(measured {network['residual']:+.1%} of it)")
        for variant in variants:
            print(f"   {variant:12s} whole network, by sitting: "
                  + ", ".join(f"{ms:.2f}" for ms in whole[variant]["whole_ms"]) + " ms")
        for repeat in network["repeated_parts"]:
            part, inside = repeat["part"], repeat["inside_ms"]
            print(f"   {len(inside)} x {part.get('family', part['part'])} {part['cin']}->{part['cout']} "
                  f"at {part['size']} px ({part.get('act')}): table {repeat['table_ms']:.3f} ms, inside "
                  f"{min(inside):.3f}-{max(inside):.3f} (mean {np.mean(inside):.3f})")
    print(f"load {load_before} -> {result['load_average_after']}")


if __name__ == "__main__":
    main()
