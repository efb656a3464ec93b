"""Whether a runtime's PReLU runs slower the more its input's signs mix: the fact behind
``nasface.latency.target.PRELU_BY_SIGNS``.

    python benchmarks/latency_prelu_signs.py [--channels 128] [--size 56] [--runs 300]

A lone PReLU (``--channels`` x ``--size`` x ``--size``, batch 1) exported to ONNX and run by each runtime
installed, fp32 and int8 (quantised as the product quantises: the quantiser leaves a PReLU in float, in
a network between a DequantizeLinear and a QuantizeLinear, so it runs the fp32 kernel), one thread, with
the product's sessions (``nasface.latency.measure``): on
input all positive, all negative and of random signs (normal draws), the three timed in turn, least
and median of ``--runs`` each.  A runtime that branches on each element's sign runs the random signs
slower than either side (the branch is mispredicted half the time); one that computes both sides and
blends does not.  The correction takes a term per PReLU element on the first kind only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from nasface.latency.measure import _RUNNERS, clock, onnx_model, quantized, time_in_turn  # noqa: E402
from nasface.latency.target import PRECISIONS, PRELU_BY_SIGNS, RUNTIMES, LatencyTarget, runtime_version  # noqa: E402

INPUTS = ("positive", "negative", "random signs")


def signed_inputs(shape: tuple[int, ...], seed: int = 0) -> dict[str, np.ndarray]:
    draws = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return {"positive": np.abs(draws), "negative": -np.abs(draws), "random signs": draws}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=128)
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    shape = (1, args.channels, args.size, args.size)
    torch.manual_seed(0)
    fp32 = onnx_model(torch.nn.PReLU(args.channels), shape)
    inputs = signed_inputs(shape)
    load = os.getloadavg()
    result: dict = {"shape": list(shape), "runs": args.runs, "load_average_before": load, "targets": {}}
    for runtime in (name for name in RUNTIMES if importlib.util.find_spec(RUNTIMES[name])):
        for precision in PRECISIONS:
            target = LatencyTarget(runtime, precision, 1)
            model = quantized(fp32, list(inputs.values())) if precision == "int8" else fp32
            runners = [_RUNNERS[runtime](model, 1, sample) for sample in inputs.values()]
            timings = time_in_turn(runners, runs=args.runs, now=clock(target))
            figures = {name: {"ms": timing.ms, "median_ms": timing.median_ms} for name, timing in zip(INPUTS, timings)}
            slower = figures["random signs"]["ms"] / max(figures["positive"]["ms"], figures["negative"]["ms"])
            result["targets"][str(target)] = {"version": runtime_version(runtime), "figures": figures,
                                              "random_over_one_sided": slower,
                                              "prelu_by_signs": runtime in PRELU_BY_SIGNS}
            print(f"{target}: " + ", ".join(f"{name} {row['ms']:.3f} ms" for name, row in figures.items())
                  + f"; random signs / the slower side {slower:.2f}x", flush=True)
    result["load_average_after"] = os.getloadavg()
    print(f"wrote {write_result('latency_prelu_signs', result)}; load {load} -> {result['load_average_after']}")


if __name__ == "__main__":
    main()
