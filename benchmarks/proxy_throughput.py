"""Proxy-training throughput: nasface's loop vs a plain eager PyTorch loop, same model and batch.

    python benchmarks/proxy_throughput.py [--quick] [--resolution 64]

Both loops train the same network (MobileFaceNet, VarGFaceNet) -- the same model, head and
optimiser state, taking turns -- on batches of uint8 faces converted the same way; the plain loop
has no schedule, no augmentation, no distiller and no bookkeeping.  Median images/s over repeats of a fixed number of steps, after a warm-up, in one
process, alternating the two loops (and which goes first) so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import write_result  # noqa: E402
from nasface.data import open_source  # noqa: E402
from nasface.training.evaluate import to_input_tensor  # noqa: E402
from nasface.arch.spec import load_spec  # noqa: E402
from nasface.training.loop import make_loop_state, train_loop  # noqa: E402
from nasface.training.proxy import build_student
from nasface.training.settings import ProxyBudget


def plain_loop(model, head, optimiser, images, labels, batch, steps, rng) -> None:
    model.train()
    for _ in range(steps):
        index = rng.choice(len(labels), size=batch)
        x = to_input_tensor(images[index])
        y = torch.from_numpy(labels[index])
        loss = head(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--resolution", type=int, default=ProxyBudget().resolution)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    steps, repeats = (5, 4) if args.quick else (10, 8)
    faces = open_source("synthetic", num_identities=100, per_identity=10).load()
    images, labels = np.asarray(faces.images), np.asarray(faces.labels)
    device = torch.device("cpu")
    rows = []
    for preset in ("mobilefacenet", "vargfacenet"):
        spec = load_spec(preset)
        budget = ProxyBudget(batch_size=args.batch, resolution=args.resolution, distill="none", device="cpu",
                             steps=10**9)
        torch.manual_seed(0)
        state = make_loop_state(build_student(spec, args.resolution), faces.num_identities, spec.embedding.size,
                                budget, None, device)
        # The plain loop trains the very same model, head and optimiser: two separately trained
        # copies drift apart and their speed with them, which would be measured instead of the loops.
        plain_model, plain_head, plain_opt = state.model, state.head, state.optimiser
        rng = np.random.default_rng(0)
        train_loop(state, faces, budget, None, device, state.step + 2)  # warm-up
        plain_loop(plain_model, plain_head, plain_opt, images, labels, args.batch, 2, rng)
        ours, plain = [], []

        def time_ours():
            start = time.perf_counter()
            train_loop(state, faces, budget, None, device, state.step + steps)
            ours.append(steps * args.batch / (time.perf_counter() - start))

        def time_plain():
            start = time.perf_counter()
            plain_loop(plain_model, plain_head, plain_opt, images, labels, args.batch, steps, rng)
            plain.append(steps * args.batch / (time.perf_counter() - start))

        for repeat in range(repeats):  # alternate which loop runs first, so order effects cancel
            for run in ((time_ours, time_plain) if repeat % 2 == 0 else (time_plain, time_ours)):
                run()
        row = {"preset": preset, "nasface_images_per_s": statistics.median(ours),
               "plain_images_per_s": statistics.median(plain)}
        row["ratio"] = row["nasface_images_per_s"] / row["plain_images_per_s"]
        rows.append(row)
        print(f"{preset:14s} nasface {row['nasface_images_per_s']:7.1f} img/s, plain eager "
              f"{row['plain_images_per_s']:7.1f} img/s, ratio {row['ratio']:.3f}", flush=True)
    path = write_result("proxy_throughput", {"quick": args.quick, "resolution": args.resolution,
                                             "batch": args.batch, "threads": torch.get_num_threads(), "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
