"""Search efficiency: nasface's default sampler (TPE) against random sampling, and against the papers' networks.

    python benchmarks/search_efficiency.py --quick              # CPU: cheap proxy, 20 trials x 3 seeds
    python benchmarks/search_efficiency.py --device cuda        # the default proxy, 60 trials x 5 seeds

For each seed, two real nasface searches (``run_search``: an Optuna study in its own SQLite file,
over-budget candidates rejected by the analytic count and told to the study untrained) with the
same proxy, data, budgets (1G FLOPs lfr, 20 MB) and number of trained trials, one with
``--sampler tpe`` (nasface's default) and one with ``--sampler random``; no baselines are
enqueued, so neither sampler is shown the papers' networks.  Reported per sampler, medians over
seeds:

- hypervolume of the feasible trained trials in (accuracy - 0.5) / 0.5 x (1 - FLOPs / 1G) x
  (1 - weight bytes / 20 MB), i.e. the reference point is chance accuracy and the full budgets;
- the fraction of sampled candidates rejected as over budget (each asserted never trained);
- the fraction of each budget the Pareto-optimal trials use.

Against the published networks: each seed preset within the budgets is scored with the same
proxy, data and seed as the search, and the best found architecture with FLOPs and weight bytes
no higher than the preset's is compared with it ("dominated" when it is at least as accurate).

``--quick`` uses a cheap proxy (48 steps at 32x32, 1,000 pairs of 50 held-out synthetic
identities) that a CPU runs in seconds per candidate.  A study left unfinished is continued on
the next run (the study files are kept under ``--studies-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import write_result  # noqa: E402
from nasface.arch.budget import Budgets  # noqa: E402
from nasface.arch.model import count  # noqa: E402
from nasface.ui.progress import Reporter  # noqa: E402
from nasface.search.results import pareto_front, study_frame
from nasface.ui.study_page import hypervolume, normalised_objectives  # noqa: E402
from nasface.search import DataSettings, SearchConfig, load_proxy_data, run_search  # noqa: E402
from nasface.search.record import read, records  # noqa: E402
from nasface.arch.spec import load_spec, preset_names  # noqa: E402
from nasface.training.proxy import score  # noqa: E402
from nasface.training.settings import ProxyBudget

NAME = "search_efficiency"
SAMPLERS = ("tpe", "random")
BUDGETS = Budgets.parse(flops="1G", mem="20MB")
QUICK_DATA = DataSettings(source="synthetic", train_identities=200, images_per_identity=10, val_identities=50,
                          pairs=1000)


def search_config(sampler: str, seed: int, trials: int, proxy: ProxyBudget, data: DataSettings,
                  studies_dir: Path, executor: str = "inline", workers: int = 1, tag: str = "") -> SearchConfig:
    """A study per (settings, sampler, seed): its name carries a hash of the settings, so a rerun with
    other settings starts afresh instead of being refused as a changed study."""
    settings = json.dumps({"proxy": {k: v for k, v in dataclasses.asdict(proxy).items() if k != "device"},
                           "data": dataclasses.asdict(data), "trials": trials}, sort_keys=True)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:10]
    return SearchConfig(study=f"{tag}{sampler}-seed{seed}-{digest}", studies_dir=str(studies_dir), budgets=BUDGETS,
                        data=data, proxy=dataclasses.replace(proxy, seed=seed), teacher="none", sampler=sampler,
                        trials=trials, executor=executor, workers=workers, baselines=False, seed=seed)


def summarise(study: optuna.Study) -> dict:
    frame = study_frame(study)
    # a trial whose driver was killed mid-training has no kind: it is re-run by the next driver
    candidates = frame[(frame.baseline == "") & frame.kind.notna()]
    rejected = candidates[candidates.kind == "rejected"]
    for facts in records(study):
        if facts.kind == "rejected":
            # the driver marks a candidate before handing it to the executor; a rejected one never is
            assert facts.training_started is None and facts.metrics is None, facts.number
    trained = candidates[(candidates.kind == "candidate") & candidates.feasible & candidates.accuracy.notna()]
    points = normalised_objectives(trained, BUDGETS.flops, BUDGETS.weight_bytes)
    front = [facts for facts in map(read, pareto_front(study)) if not facts.baseline]
    flops_use = [facts.cost["flops"] / BUDGETS.flops for facts in front]
    bytes_use = [facts.cost["weight_bytes"] / BUDGETS.weight_bytes for facts in front]
    return {
        "sampled": len(candidates), "trained": int(candidates.kind.isin(["candidate", "failed"]).sum()),
        "rejected": len(rejected), "rejected_fraction": len(rejected) / max(1, len(candidates)),
        "rejected_trained": 0,  # asserted above
        "invalid": int((candidates.kind == "invalid").sum()), "duplicates": int((candidates.kind == "duplicate").sum()),
        "failed": int((candidates.kind == "failed").sum()),
        "hypervolume": float(hypervolume(points)),
        "pareto_size": len(front),
        "pareto_flops_use_median": statistics.median(flops_use) if front else None,
        "pareto_bytes_use_median": statistics.median(bytes_use) if front else None,
        "pareto_tighter_use_median": statistics.median(max(f, b) for f, b in zip(flops_use, bytes_use)) if front else None,
        "best_accuracy": float(trained.accuracy.max()) if len(trained) else None,
        "mean_train_seconds": float(trained.wall_seconds.mean()) if len(trained) else None,
        "trained_points": trained[["number", "accuracy", "flops", "weight_bytes"]].to_dict("records"),
    }


def score_presets(config: SearchConfig) -> dict:
    """Each fitting preset under the search's own proxy, data and seed (what a baseline trial would get)."""
    data = load_proxy_data(config.data, config.seed, config.study_dir / "cache")
    rows = {}
    for name in preset_names():
        spec = load_spec(name)
        cost = count(spec, BUDGETS.convention)
        if not BUDGETS.fits(cost):
            continue
        result = score(spec, data.train, data.pairs, config.proxy)
        rows[name] = {"accuracy": result.get("accuracy"), "status": result["status"], "flops": cost["flops"],
                      "weight_bytes": cost["weight_bytes"]}
    return rows


def against(presets: dict, points: list[dict]) -> dict:
    """For each preset: the most accurate found architecture costing no more in FLOPs and in weights."""
    rows = {}
    for name, preset in presets.items():
        cheaper = [p for p in points if p["flops"] <= preset["flops"] and p["weight_bytes"] <= preset["weight_bytes"]]
        best = max(cheaper, key=lambda p: p["accuracy"]) if cheaper else None
        rows[name] = {"preset_accuracy": preset["accuracy"], "best_no_costlier": best,
                      "dominated": bool(best and preset["accuracy"] is not None
                                        and best["accuracy"] >= preset["accuracy"])}
    return rows


def median_of(rows: list[dict], key: str):
    values = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="cheap proxy, 20 trials per study: a CPU run")
    parser.add_argument("--seed", type=int, default=0, help="first seed; seeds are seed, seed+1, ...")
    parser.add_argument("--seeds", type=int, default=None, help="default 3 quick, 5 full")
    parser.add_argument("--trials", type=int, help="trained candidates per study (default 20 quick, 60 full)")
    parser.add_argument("--out", help=f"results file (default benchmarks/results/{NAME}.json)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--studies-dir", default=str(Path(tempfile.gettempdir()) / "nasface-bench-studies"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trials = args.trials or (20 if args.quick else 60)
    proxy = ProxyBudget(steps=48, resolution=32, distill="none", device=args.device) if args.quick \
        else ProxyBudget(distill="none", device=args.device)
    data = QUICK_DATA if args.quick else DataSettings()
    studies_dir = Path(args.studies_dir)
    reporter = Reporter("quiet")
    seeds = list(range(args.seed, args.seed + (args.seeds or (3 if args.quick else 5))))
    runs: dict[str, list[dict]] = {sampler: [] for sampler in SAMPLERS}
    print(f"{trials} trained trials per study, seeds {seeds}; proxy {proxy.steps} steps x {proxy.batch_size} at "
          f"{proxy.resolution} px on {data.source} ({data.train_identities} x {data.images_per_identity} faces, "
          f"{data.pairs} pairs)", flush=True)
    for seed in seeds:  # seed-major, so a run cut short still has paired samplers
        presets = None
        for sampler in SAMPLERS:
            config = search_config(sampler, seed, trials, proxy, data, studies_dir)
            start = time.perf_counter()
            study = run_search(config, reporter)
            row = {"seed": seed, "wall_seconds": time.perf_counter() - start, **summarise(study)}
            if presets is None:  # the data and proxy seed depend on the seed only, not on the sampler
                presets = score_presets(config)
            row["against_presets"] = against(presets, row["trained_points"])
            runs[sampler].append(row)
            beaten = [name for name, v in row["against_presets"].items() if v["dominated"]]
            print(f"seed {seed} {sampler:6s}: hypervolume {row['hypervolume']:.4f}, {row['trained']} trained, "
                  f"{row['rejected']} of {row['sampled']} sampled rejected over budget ({row['rejected_fraction']:.0%}), "
                  f"Pareto {row['pareto_size']} using {row['pareto_tighter_use_median'] or 0:.0%} of the tighter budget "
                  f"(median), best accuracy {row['best_accuracy']:.4f}; presets matched or beaten at no higher cost: "
                  f"{', '.join(beaten) or 'none'} ({row['wall_seconds']:.0f} s)", flush=True)
    summary = {}
    for sampler, rows in runs.items():
        summary[sampler] = {key: median_of(rows, key) for key in (
            "hypervolume", "rejected_fraction", "pareto_flops_use_median", "pareto_bytes_use_median",
            "pareto_tighter_use_median", "best_accuracy", "mean_train_seconds")}
        summary[sampler]["hypervolumes"] = [r["hypervolume"] for r in rows]
        summary[sampler]["presets_dominated"] = {
            name: sum(1 for r in rows if r["against_presets"][name]["dominated"]) for name in rows[0]["against_presets"]}
    wins = sum(1 for t, r in zip(runs["tpe"], runs["random"]) if t["hypervolume"] > r["hypervolume"])
    met = bool(summary["tpe"]["hypervolume"] > summary["random"]["hypervolume"])
    print("\nsampler  median HV  rejected  Pareto budget use (FLOPs / weights / tighter)  presets dominated (of seeds)")
    for sampler, row in summary.items():
        print(f"{sampler:7s}  {row['hypervolume']:.4f}     {row['rejected_fraction']:.0%}      "
              f"{row['pareto_flops_use_median']:.0%} / {row['pareto_bytes_use_median']:.0%} / "
              f"{row['pareto_tighter_use_median']:.0%}                    {row['presets_dominated']}")
    print(f"TPE beats random on {wins} of {len(seeds)} seeds; goal (median HV above random's) "
          f"{'met' if met else 'missed'}")
    path = write_result(NAME, {
        "quick": args.quick, "seeds": seeds, "trials": trials, "device": args.device, "threads": args.threads,
        "proxy": dataclasses.asdict(proxy), "data": dataclasses.asdict(data),
        "budgets": {"flops": BUDGETS.flops, "convention": BUDGETS.convention, "weight_bytes": BUDGETS.weight_bytes},
        "hypervolume_reference": "accuracy 0.5 (chance), FLOPs 1e9 (lfr), weight bytes 2e7",
        "summary": summary, "tpe_wins": wins, "goal_met": met, "runs": runs}, args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
