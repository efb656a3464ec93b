"""Search throughput: trained trials per hour with 1 and 2 Ray workers.

    python benchmarks/ray_scaling.py --quick                                   # CPU, tiny proxy, 8 trials each
    python benchmarks/ray_scaling.py --device cuda --workers 1,2,4 --gpus-per-trial 0.25

Each worker count runs the same real nasface search (``run_search``, SQLite study, a local Ray
started by nasface with one CPU per trial) from scratch: random sampler with the same seed, so
every run draws the same candidates, and a fixed number of trained trials.  Reported: trained
trials per hour over the search's whole wall time (Ray start included) and in steady state (first
training start to last result), and the speed-up over one worker.  The load average is recorded
before and after: on a shared machine, other work takes cores away from the workers.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from benchmarks.search_efficiency import BUDGETS, QUICK_DATA  # noqa: E402
from nasface.ui.progress import Reporter  # noqa: E402
from nasface.search import DataSettings, SearchConfig, run_search  # noqa: E402
from nasface.search.record import read  # noqa: E402
from nasface.training.settings import ProxyBudget  # noqa: E402

NAME = "ray_scaling"


def one_run(workers: int, trials: int, proxy: ProxyBudget, data: DataSettings, seed: int, gpus: float,
            folder: Path) -> dict:
    config = SearchConfig(study=f"workers-{workers}", studies_dir=str(folder), budgets=BUDGETS, data=data,
                          proxy=dataclasses.replace(proxy, seed=seed), teacher="none", sampler="random",
                          trials=trials, executor="ray", workers=workers, cpus_per_trial=1.0, gpus_per_trial=gpus,
                          baselines=False, seed=seed)
    load_before = os.getloadavg()[0]
    start = time.time()
    study = run_search(config, Reporter("quiet"))
    wall = time.time() - start
    trials = study.get_trials(deepcopy=False)
    trained = [(trial, facts) for trial, facts in zip(trials, map(read, trials))
               if facts.kind in ("candidate", "baseline", "failed")]
    first = min(facts.training_started for _, facts in trained)
    last = max(trial.datetime_complete.timestamp() for trial, _ in trained)
    return {"workers": workers, "trained": len(trained), "wall_seconds": wall, "steady_seconds": last - first,
            "trials_per_hour": 3600 * len(trained) / wall,
            "steady_trials_per_hour": 3600 * len(trained) / (last - first),
            "median_trial_seconds": sorted(facts.wall_seconds for _, facts in trained)[len(trained) // 2],
            "load_before": load_before, "load_after": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny proxy (24 steps at 32x32), 8 trials per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--trials", type=int, help="trained trials per run (default 8 quick, 32 full)")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--gpus-per-trial", type=float, help="with --device cuda (default 0.25)")
    parser.add_argument("--out", help=f"results file (default benchmarks/results/{NAME}.json)")
    args = parser.parse_args()
    trials = args.trials or (8 if args.quick else 32)
    gpus = 0.0 if args.device == "cpu" else (args.gpus_per_trial or 0.25)
    proxy = ProxyBudget(steps=24 if args.quick else ProxyBudget().steps, resolution=32 if args.quick else 64,
                        distill="none", device=args.device)
    data = QUICK_DATA if args.quick else DataSettings()
    rows = []
    folder = Path(tempfile.mkdtemp(prefix="nasface-ray-scaling-"))
    try:
        for workers in (int(w) for w in args.workers.split(",")):
            row = one_run(workers, trials, proxy, data, args.seed, gpus, folder)
            rows.append(row)
            print(f"{workers} worker(s): {row['trained']} trained in {row['wall_seconds']:.0f} s -> "
                  f"{row['trials_per_hour']:.0f} trials/hour ({row['steady_trials_per_hour']:.0f} in steady state), "
                  f"median trial {row['median_trial_seconds']:.1f} s, load {row['load_before']:.1f} -> "
                  f"{row['load_after']:.1f}", flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    for row in rows:
        row["speedup"] = row["trials_per_hour"] / rows[0]["trials_per_hour"]
        row["steady_speedup"] = row["steady_trials_per_hour"] / rows[0]["steady_trials_per_hour"]
    path = write_result(NAME, {"quick": args.quick, "seed": args.seed, "trials": trials, "device": args.device,
                               "cpu_count": os.cpu_count(), "gpus_per_trial": gpus,
                               "proxy": dataclasses.asdict(proxy), "data": dataclasses.asdict(data), "rows": rows},
                        args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
