"""Proxy fidelity: does the brief proxy rank architectures as a budget 8x larger does?

    python benchmarks/proxy_fidelity.py --quick                 # CPU, scaled-down proxy (see below)
    python benchmarks/proxy_fidelity.py --device cuda           # the default proxy, on a GPU

Architectures: ``--archs`` random points of the default space within the LFR budgets (1G FLOPs,
lfr convention; 20 MB of fp32 weights), drawn with ``--seed``, plus the seed presets that fit.
Each is scored on every source with four budgets of the same recipe:

- ``proxy``: the proxy under test (full mode: nasface's default, 150 steps at 64x64);
- ``half_steps`` and ``low_res``: two cheaper proxies, half the steps / 3/4 of the resolution;
- ``reference``: ``--reference-factor`` (8) times the proxy's steps at its resolution.

Reported, per source and metric: Kendall tau-b and Spearman rho between each proxy's ranking
and the reference's, and those of two trivial predictors (FLOPs alone, parameters alone), each
with a 95 % bootstrap interval over architectures; for the proxies also the paired difference to
FLOPs-alone.  Metrics: 10-fold verification accuracy (what the search maximises) and TAR at FAR
1e-3.  ORL's usual split (30 people to train, 600 pairs of 10) is separated 91 % by an untrained
network and cannot show FAR 1e-3; here it is split 15 / 25 with all 1,125 positive pairs and as
many negatives, so TAR at FAR 1e-3 (one false accept allowed) is measurable.

``--quick`` keeps the recipe but shrinks the proxy to 64 steps at 32x32 (reference: 512 steps at
32x32; cheaper: 32 steps, and 64 steps at 24x24), about 25 minutes of one idle CPU core per source.
(At 40 steps MobileFaceNet barely moves off an untrained network on synthetic: 0.558 vs 0.531.)
Every score is appended to ``<out>.<source>.jsonl`` as it finishes; re-running skips what is
done, so a run that is cut short resumes, and ``--analyse`` reports on whatever is there.
``--shard 0/3``, ``1/3`` and ``2/3`` split the architectures between three processes appending
to the same log (each line is one small write to a file opened for appending).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks._common import RowLog, rank_agreement, result_path, write_result  # noqa: E402
from nasface.budget import Budgets  # noqa: E402
from nasface.errors import NasfaceError  # noqa: E402
from nasface.model import count  # noqa: E402
from nasface.search import DataSettings, load_proxy_data  # noqa: E402
from nasface.space import feasible_sample, load_space  # noqa: E402
from nasface.spec import load_spec, preset_names, spec_to_dict  # noqa: E402
from nasface.train import ProxyBudget, proxy_spec, score  # noqa: E402

NAME = "proxy_fidelity"
BUDGET_LABELS = ("proxy", "half_steps", "low_res", "reference")
METRICS = ("accuracy", "tar_at_far")
# ORL split so that FAR 1e-3 is measurable: 25 held-out people give 25 x C(10, 2) = 1,125 positive
# pairs, and as many negatives (>= 1,000 are needed for one allowed false accept).
SOURCES = {"synthetic": DataSettings.for_source("synthetic"),
           "orl": DataSettings.for_source("orl", train_identities=15, val_identities=25, pairs=2250)}


def budgets_for(steps: int, resolution: int, factor: int, seed: int, device: str) -> dict[str, ProxyBudget]:
    base = ProxyBudget(steps=steps, resolution=resolution, distill="none", seed=seed, device=device)
    return {"proxy": base,
            "half_steps": dataclasses.replace(base, steps=max(1, steps // 2)),
            "low_res": dataclasses.replace(base, resolution=max(16, round(resolution * 3 / 4))),
            "reference": dataclasses.replace(base, steps=factor * steps)}


def architectures(count_sampled: int, seed: int, resolutions: set[int]) -> list:
    """The first ``count_sampled`` feasible random points that every resolution can run, plus the fitting presets."""
    limits = Budgets.parse(flops="1G", mem="20MB")

    def runs_everywhere(spec) -> bool:
        try:
            for resolution in resolutions:
                proxy_spec(spec, resolution)
        except NasfaceError:
            return False
        return True

    drawn = feasible_sample(load_space(), limits, 0, seed, keep=count_sampled + 20)["specs"]
    sampled = [spec for spec in drawn if runs_everywhere(spec)][:count_sampled]
    if len(sampled) < count_sampled:
        raise SystemExit(f"only {len(sampled)} feasible architectures run at {sorted(resolutions)} px")
    presets = [load_spec(name) for name in preset_names()]
    fitting = [spec for spec in presets if limits.fits(count(spec)) and runs_everywhere(spec)]
    return sampled + fitting


def key_of(source: str, data: DataSettings, spec, budget: ProxyBudget) -> str:
    """Everything that decides a score (not the device: CPU and GPU runs of one budget are one row)."""
    recipe = {"source": source, "data": dataclasses.asdict(data), "spec": spec_to_dict(spec),
              "budget": {k: v for k, v in dataclasses.asdict(budget).items() if k != "device"}}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:24]


def run_scores(specs, budgets, sources, seed: int, logs: dict[str, RowLog], shard: tuple[int, int]) -> None:
    cache = Path(tempfile.gettempdir()) / "nasface-bench-cache"
    index, shards = shard
    for source in sources:
        data = load_proxy_data(SOURCES[source], seed, cache)
        for spec in specs[index::shards]:
            for label in ("reference", "proxy", "half_steps", "low_res"):
                budget = budgets[label]
                key = key_of(source, SOURCES[source], spec, budget)
                if logs[source].get(key):
                    continue
                result = score(spec, data.train, data.pairs, budget)
                logs[source].add(key, {"source": source, "arch": spec.name, "budget": label, "result": result})
                shown = "failed: " + str(result["reason"]) if result["status"] != "ok" else (
                    f"accuracy {result['accuracy']:.4f}, TAR@1e-3 {result['tar_at_far']}")
                print(f"{source:9s} {spec.name:24s} {label:10s} {budget.steps:4d} steps {budget.resolution:3d} px: "
                      f"{shown} ({result['wall_seconds']:.0f} s)", flush=True)


def analyse(specs, budgets, sources, logs: dict[str, RowLog], resamples: int, seed: int) -> dict:
    costs = {spec.name: count(spec) for spec in specs}
    report = {}
    for source in sources:
        table = {}
        for spec in specs:
            row = {}
            for label, budget in budgets.items():
                found = logs[source].get(key_of(source, SOURCES[source], spec, budget))
                if found:
                    row[label] = found["result"]
            table[spec.name] = row
        complete = [name for name, row in table.items()
                    if len(row) == len(budgets) and all(r["status"] == "ok" for r in row.values())]
        failed = {name: {label: r["reason"] for label, r in row.items() if r["status"] != "ok"}
                  for name, row in table.items() if any(r["status"] != "ok" for r in row.values())}
        agreement = {}
        if len(complete) >= 4:
            flops = [costs[name]["flops"] for name in complete]
            params = [costs[name]["params"] for name in complete]
            for metric in METRICS:
                values = {label: [table[name][label][metric] for name in complete] for label in budgets}
                if any(v is None for v in values["reference"]):
                    continue
                reference = values["reference"]
                rows = {label: rank_agreement(values[label], reference, resamples, seed, against=flops)
                        for label in ("proxy", "half_steps", "low_res")}
                rows["flops"] = rank_agreement(flops, reference, resamples, seed)
                rows["params"] = rank_agreement(params, reference, resamples, seed)
                agreement[metric] = rows
        seconds = {label: sum(table[name][label]["wall_seconds"] for name in complete) / max(1, len(complete))
                   for label in budgets}
        report[source] = {
            "architectures": len(specs), "complete": len(complete), "failed": failed,
            "agreement": agreement, "mean_wall_seconds": seconds,
            "scores": {name: {label: ({m: r.get(m) for m in (*METRICS, "final_loss")} if r["status"] == "ok" else None)
                              for label, r in row.items()} for name, row in table.items()},
        }
    return report


def goal(report: dict) -> dict:
    """Goal of issue 6: tau >= 0.6 for the proxy's accuracy ranking and above FLOPs-alone, per source."""
    verdict = {}
    for source, part in report.items():
        rows = part["agreement"].get("accuracy")
        if rows:
            verdict[source] = {"tau": rows["proxy"]["tau"], "flops_tau": rows["flops"]["tau"],
                               "met": rows["proxy"]["tau"] >= 0.6 and rows["proxy"]["tau"] > rows["flops"]["tau"]}
    return verdict


def print_table(report: dict, budgets: dict) -> None:
    def fmt(row: dict) -> str:
        ci = row["tau_ci"] or [float("nan")] * 2
        rci = row["rho_ci"] or [float("nan")] * 2
        return f"tau {row['tau']:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]  rho {row['rho']:+.2f} [{rci[0]:+.2f}, {rci[1]:+.2f}]"

    for source, part in report.items():
        print(f"\n{source}: {part['complete']} of {part['architectures']} architectures scored with every budget")
        for metric, rows in part["agreement"].items():
            print(f"  vs the reference ({budgets['reference'].steps} steps at {budgets['reference'].resolution} px), "
                  f"{metric}:")
            for label, row in rows.items():
                what = (f"{budgets[label].steps} steps at {budgets[label].resolution} px" if label in budgets
                        else label + " alone")
                print(f"    {label:10s} ({what:22s}) {fmt(row)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="64 steps at 32x32 (reference 512): a CPU run")
    parser.add_argument("--seed", type=int, default=0, help="architecture draw, data split and proxy seed")
    parser.add_argument("--out", help=f"results file (default benchmarks/results/{NAME}.json)")
    parser.add_argument("--archs", type=int, default=None, help="random architectures (default 12 quick, 24 full)")
    parser.add_argument("--steps", type=int, help="the proxy's steps (default: 64 quick, nasface's default full)")
    parser.add_argument("--resolution", type=int, help="the proxy's resolution (default: 32 quick, 64 full)")
    parser.add_argument("--reference-factor", type=int, default=8)
    parser.add_argument("--sources", default="synthetic,orl")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--shard", default="0/1", help="I/N: score only every N-th architecture from the I-th, "
                        "so N processes can share the work (then --analyse)")
    parser.add_argument("--analyse", action="store_true", help="only report on the scores already logged")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    default = ProxyBudget()
    steps = args.steps or (64 if args.quick else default.steps)
    resolution = args.resolution or (32 if args.quick else default.resolution)
    archs = args.archs or (12 if args.quick else 24)
    if archs < 12:
        parser.error("--archs must be at least 12 (issue 6)")
    sources = [s.strip() for s in args.sources.split(",")]
    budgets = budgets_for(steps, resolution, args.reference_factor, args.seed, args.device)
    specs = architectures(archs, args.seed, {b.resolution for b in budgets.values()})
    out = result_path(NAME, args.out)
    # one log per source, so the sources can run as separate processes (--sources orl) side by side
    logs = {source: RowLog(out.with_suffix(f".{source}.jsonl")) for source in sources}
    print(f"{len(specs)} architectures ({archs} sampled + presets {', '.join(s.name for s in specs[archs:])}), "
          f"sources {', '.join(sources)}; budgets: " + ", ".join(
              f"{label} {b.steps} steps at {b.resolution} px" for label, b in budgets.items()), flush=True)
    if not args.analyse:
        index, shards = (int(part) for part in args.shard.split("/"))
        run_scores(specs, budgets, sources, args.seed, logs, (index, shards))
    report = analyse(specs, budgets, sources, logs, args.bootstrap, args.seed)
    print_table(report, budgets)
    verdict = goal(report)
    print("\ngoal (accuracy tau >= 0.6 and above FLOPs alone): " + ", ".join(
        f"{s} {'met' if v['met'] else 'missed'} (tau {v['tau']:.2f}, FLOPs {v['flops_tau']:.2f})" for s, v in verdict.items()))
    path = write_result(NAME, {
        "quick": args.quick, "seed": args.seed, "device": args.device, "threads": args.threads,
        "budgets": {label: dataclasses.asdict(b) for label, b in budgets.items()},
        "data": {source: dataclasses.asdict(SOURCES[source]) for source in sources},
        "architectures": [{"name": s.name, **{k: v for k, v in count(s).items() if k != "stages"}} for s in specs],
        "bootstrap_resamples": args.bootstrap, "sources": report, "goal": verdict}, out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
