"""The CUDA path of the proxy, preset by preset: it trains, stays finite, and how fast it is.

    python benchmarks/gpu_check.py [--steps 60] [--resolution 64 --batch 32] [--device cuda] [--out FILE]

Each seed network trains ``--steps`` steps on the ORL faces (20 people to train on, 20 held out,
1,800 pairs) with nasface's own loop -- on CUDA that is bf16 autocast and channels_last -- and is
verified on the held-out pairs.  Exits 1 if any preset fails or its loss is not finite, so a GPU
session can run it first and stop before spending device time on a broken path.  Prints, per
preset, training images/s (the branch's own steps, warm-up excluded by a first short run) and the
accuracy reached.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import nasface  # noqa: E402
from benchmarks._common import machine, write_result  # noqa: E402
from nasface.search.config import DataSettings  # noqa: E402
from nasface.search.job import load_proxy_data  # noqa: E402
from nasface.arch.spec import load_spec  # noqa: E402
from nasface.training.proxy import score  # noqa: E402
from nasface.training.settings import ProxyBudget


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", help="results file (default benchmarks/results/gpu_check.json)")
    args = parser.parse_args()
    print(machine(), "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA", flush=True)
    settings = DataSettings.for_source("orl", train_identities=20, val_identities=20, pairs=1800)
    with tempfile.TemporaryDirectory() as cache:
        data = load_proxy_data(settings, 0, cache)
        rows, broken = [], []
        for preset in nasface.preset_names():
            budget = ProxyBudget(steps=args.steps, batch_size=args.batch, resolution=args.resolution,
                                 distill="none", device=args.device)
            score(load_spec(preset), data.train, data.pairs, dataclasses.replace(budget, steps=4),
                  signals=False)  # warm-up: CUDA context, cuDNN's algorithm choice
            begun = time.perf_counter()
            result = score(load_spec(preset), data.train, data.pairs, budget, signals=False)
            row = {"preset": preset, "status": result["status"], "reason": result["reason"],
                   "device": result["device"], "accuracy": result.get("accuracy"),
                   "final_loss": result.get("final_loss"), "images_per_s": result.get("images_per_second"),
                   "wall_s": time.perf_counter() - begun}
            rows.append(row)
            finite = row["final_loss"] is not None and math.isfinite(row["final_loss"])
            if row["status"] != "ok" or not finite:
                broken.append(preset)
            print(f"{preset:24s} {row['status']:6s} on {row['device']}: accuracy {row['accuracy'] or 0:.4f}, "
                  f"final loss {row['final_loss'] or float('nan'):.3f}, {row['images_per_s'] or 0:8.1f} img/s, "
                  f"{row['wall_s']:.1f} s {row['reason'] or ''}", flush=True)
    path = write_result("gpu_check", {"steps": args.steps, "resolution": args.resolution, "batch": args.batch,
                                      "device": args.device, "rows": rows}, args.out)
    print(f"wrote {path}")
    if broken:
        print(f"FAILED on {args.device}: {', '.join(broken)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
