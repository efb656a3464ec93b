"""What a part is timed on: PReLU's run time on the maps each table format feeds a part, against noise and
against the activations a network gives it.

    python benchmarks/latency_maps.py [--runs 100]

onnxruntime (fp32, 1 thread, timed by CPU time, all cases run in turn, min of ``--runs`` after 10).  The
parts are two blocks of ``lfr-1-039`` (seed 1's light-track draw, whose FLGC blocks read 14-22 % low
with table format 3): an FLGC 96->96 block at 28 px and an FLGC 320->320 block at 7 px.  For each: one
PReLU alone at the shape of the block's first PReLU, and the block in context (behind its lead, less the
lead) with PReLU and, as the control, ReLU, each on

- the faces' maps table format 3 timed parts on (a face resized, channels mixed: smooth);
- the maps table format 4 times them on (``nasface.latency.measure.convolved_face_maps``);
- i.i.d. standard-normal noise of the same shape;
- the activations the network itself (its random initial weights, as measured) gives the part on the
  same face, scaled to unit spread.

And, for the mechanism, the lone PReLU on noise with every sign the same (``|noise|``, ``-|noise|``) and
on the noise sorted (signs in two runs): if those run as fast as the smooth maps, the time goes on
mispredicted branches on the sign, not on the arithmetic.  Beside each input: how often neighbours
along a row change sign.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from benchmarks.latency_predictor import resized_face_maps  # noqa: E402
from nasface.arch.budget import LIGHT_TRACK  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402
from nasface.latency.build import sample_networks  # noqa: E402
from nasface.latency.measure import (calibration_faces, convolved_face_maps, lead_module, onnx_model,  # noqa: E402
                                     part_module, part_shape, runner, time_in_turn)
from nasface.latency.parts import Part, parts  # noqa: E402
from nasface.latency.target import LatencyTarget  # noqa: E402

NETWORK = "lfr-1-039"
PARTS = (4, 22)  # its FLGC 96->96 block at 28 px and FLGC 320->320 block at 7 px


def sign_changes(maps: np.ndarray) -> float:
    """How often neighbours along a row of N x C x H x W ``maps`` change sign."""
    signs = np.sign(maps)
    return float((signs[..., 1:] != signs[..., :-1]).mean())


def network_inputs(spec, faces: np.ndarray, block_index: int) -> tuple[np.ndarray, np.ndarray]:
    """What the network (deployed, its initial weights) gives its block ``block_index`` on the first face:
    the block's input and its first PReLU's input."""
    import torch

    from nasface.arch.model import build_model, deploy

    torch.manual_seed(0)
    network = deploy(build_model(spec).eval())
    block = [block for stage in network.stages for block in stage][block_index]
    prelu = next(module for module in block.modules() if isinstance(module, torch.nn.PReLU))
    seen = {}
    block.register_forward_pre_hook(lambda module, args: seen.update(block=args[0].numpy().copy()))
    prelu.register_forward_pre_hook(lambda module, args: seen.update(prelu=args[0].numpy().copy()))
    with torch.no_grad():
        network(torch.from_numpy(faces[:1]))
    return tuple(seen[name] / seen[name].std() for name in ("block", "prelu"))


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    target = LatencyTarget()
    load_before = os.getloadavg()
    faces = calibration_faces()
    spec = next(s for s in sample_networks(load_space(), 40, 1, LIGHT_TRACK)
                if s.name == NETWORK)
    noise = np.random.default_rng(0)
    cases = []  # (part, what is timed, input, its sign changes, runner)
    for index in PARTS:
        part = parts(spec)[index]
        shape = part_shape(part)
        block_input, prelu_input = network_inputs(spec, faces, index - 2)  # parts 0 and 1: stem and head
        inputs = {"face maps (format 3)": resized_face_maps(shape, faces)[0],
                  "activation maps (format 4)": convolved_face_maps(shape, faces)[0],
                  "noise": noise.standard_normal(shape).astype(np.float32), "the network's own": block_input}
        prelu_noise = noise.standard_normal(prelu_input.shape).astype(np.float32)
        prelu_inputs = {"face maps (format 3)": resized_face_maps(prelu_input.shape, faces)[0],
                        "activation maps (format 4)": convolved_face_maps(prelu_input.shape, faces)[0],
                        "noise": prelu_noise, "the network's own": prelu_input, "|noise|": np.abs(prelu_noise),
                        "-|noise|": -np.abs(prelu_noise),
                        "noise sorted": np.sort(prelu_noise, axis=None).reshape(prelu_input.shape)}
        label = f"{part.spec.family} {part.cin}->{part.cout} at {part.size} px"
        lone = onnx_model(torch.nn.PReLU(prelu_input.shape[1]), prelu_input.shape)
        for name, maps in prelu_inputs.items():
            cases.append((label, f"PReLU alone {prelu_input.shape[1:]}", name, sign_changes(maps),
                          runner(lone, prelu_input.shape, target, faces, lambda shape, faces, maps=maps: [maps])))
        for act in ("prelu", "relu"):
            block = Part(part.kind, dataclasses.replace(part.spec, act=act), part.cin, part.cout, part.stride, part.size)
            with_lead = onnx_model(torch.nn.Sequential(lead_module(part.cin), part_module(block)), shape)
            for name, maps in inputs.items():
                cases.append((label, f"block with {act}, lead included", name, sign_changes(maps),
                              runner(with_lead, shape, target, faces, lambda shape, faces, maps=maps: [maps])))
        lead = onnx_model(lead_module(part.cin), shape)
        for name, maps in inputs.items():
            cases.append((label, "lead", name, sign_changes(maps),
                          runner(lead, shape, target, faces, lambda shape, faces, maps=maps: [maps])))
    timings = time_in_turn([case[-1] for case in cases], runs=args.runs, now=time.process_time)
    rows = [{"part": part, "timed": timed, "input": name, "sign_changes": changes, "ms": timing.ms,
             "median_ms": timing.median_ms} for (part, timed, name, changes, _), timing in zip(cases, timings)]
    leads = {(row["part"], row["input"]): row["ms"] for row in rows if row["timed"] == "lead"}
    for row in rows:
        if row["timed"].startswith("block"):
            row["in_context_ms"] = row["ms"] - leads[row["part"], row["input"]]
    path = write_result("latency_maps", {"network": NETWORK, "runs": args.runs, "load_average_before": load_before,
                                         "load_average_after": os.getloadavg(), "rows": rows})
    print(f"wrote {path}")
    for row in rows:
        figure = row.get("in_context_ms", row["ms"])
        print(f"{row['part']:24s} {row['timed']:34s} {row['input']:28s} sign changes {row['sign_changes']:.2f}  "
              f"{'in context ' if 'in_context_ms' in row else ''}{figure:.3f} ms")
    print(f"load {load_before} -> {os.getloadavg()}")


if __name__ == "__main__":
    main()
