"""A search under a latency budget against the same search under the FLOPs budget it replaces, both
fronts measured.

    python benchmarks/latency_front.py [--flops 300M] [--trials 12] [--seed 0] [--table PATH] [--out NAME]
                                       [--proxy-steps 20] [--runtime onnxruntime --precision fp32]
                                       [--latency-by table|measurement]

Both searches run on the default space (within 20 MB of weights) with the same seed, sampler, trials
and a tiny proxy (32 px, ``--proxy-steps`` steps), so they run in minutes; their accuracies are a
tiny proxy's, compared with each other only.  The latency budget is the one the FLOPs budget stands
for: the median predicted latency of random networks that fill it (the 6 of 24 random networks within
``--flops`` that have the most FLOPs).  When both searches are done, every member of both fronts is
measured, all in turn (so load falls on both alike), and the benchmark reports: each front's members
(proxy accuracy, FLOPs, predicted latency, the bound the budget is checked against, measured latency), the share of the latency-budgeted front
within its budget when measured (and the FLOPs-budgeted one's, for comparison), and, at each
accuracy the FLOPs front reaches, the fastest measured member of each front that reaches it.
``--table`` starts from a table built on this machine for the target (it is copied; the searches'
own copy grows as they measure parts).  ``--latency-by measurement`` checks the latency search's
candidates by measuring each whole (``nasface search --latency-by measurement``) instead of by the
table's prediction; the budget is derived from the table either way, and ``checked_ms`` is the figure
each latency-front member was checked against.  Every candidate the latency search accepted and trained is
measured with the fronts, front or not: each was checked against the same bound, so each is one more
test of whether a network within its bound is within the budget when measured.  The load average is
recorded before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result  # noqa: E402
from nasface.arch.budget import Budgets, parse_quantity  # noqa: E402
from nasface.arch.model import count  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402
from nasface.arch.spec import spec_from_dict  # noqa: E402
from nasface.latency.build import sample_networks  # noqa: E402
from nasface.latency.measure import measure  # noqa: E402
from nasface.latency.target import LatencyTarget, default_table  # noqa: E402
from nasface.search import config_from_options, run_search  # noqa: E402
from nasface.search import record  # noqa: E402
from nasface.search.latency import _search_latency, measured_latency, measurement_margin  # noqa: E402
from nasface.search.results import pareto_front  # noqa: E402
from nasface.ui.progress import Reporter  # noqa: E402

WEIGHTS = "20MB"
FILLING = 6  # of FILL_DRAWS random networks within the FLOPs budget, those with the most FLOPs
FILL_DRAWS = 24


def search(studies: Path, name: str, args, **budgets) -> list:
    flags = {"studies_dir": str(studies), "study": name, "budget_mem": WEIGHTS, "teacher": "none",
             "executor": "inline", "trials": args.trials, "baselines": False, "seed": args.seed, "device": "cpu",
             "sampler": "random", "proxy_steps": args.proxy_steps, "proxy_batch": 16, "resolution": 32,
             "train_identities": 24, "images_per_identity": 4, "val_identities": 12, "pairs": 120, **budgets}
    config = config_from_options(flags)
    started = time.perf_counter()
    study = run_search(config, Reporter("quiet"))
    front = [record.read(trial) for trial in pareto_front(study)]
    return config, study, front, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flops", default="300M", help="The FLOPs budget the latency budget replaces.")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--proxy-steps", type=int, default=20)
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--table", help="A table of this target on this machine to start from (copied).")
    parser.add_argument("--latency-by", default="table", choices=("table", "measurement"),
                        help="How the latency search knows a candidate's latency before it trains.")
    parser.add_argument("--out", help="The result's name in benchmarks/results (default: latency_front-RUNTIME-"
                                      "PRECISION).")
    args = parser.parse_args()
    target = LatencyTarget.parse(f"{args.runtime}:{args.precision}:1")
    load_before = os.getloadavg()
    folder = tempfile.TemporaryDirectory(prefix="nasface-latency-front-")
    studies = Path(folder.name) / "studies"
    table_path = default_table(target, studies)
    table_path.parent.mkdir(parents=True)
    if args.table:
        shutil.copyfile(args.table, table_path)

    # the latency the FLOPs budget stands for: what random networks that fill it are predicted to take
    space = load_space()
    flops = parse_quantity(args.flops, "--flops")
    drawn = sample_networks(space, FILL_DRAWS, args.seed, Budgets.parse(flops=args.flops, mem=WEIGHTS))
    filling = sorted(drawn, key=lambda spec: count(spec)["flops"])[-FILLING:]
    model = _search_latency(str(target), str(studies), None, args.seed, "synthetic")
    budget_ms = statistics.median(model.predict(spec) for spec in filling)
    checked = (f"measured figures plus {measurement_margin(str(target)):.1%}" if args.latency_by == "measurement"
               else f"predictions plus {model.predictor.margin:.1%}")
    print(f"FLOPs budget {flops:,} stands for {budget_ms:.2f} ms (median prediction of {FILLING} networks that "
          f"fill it); the latency budget is checked against {checked}", flush=True)

    by_flops = search(studies, "flops", args, budget_flops=args.flops)
    by_latency = search(studies, "latency", args, budget_latency=f"{budget_ms:.4f}ms", latency=str(target),
                        latency_by=args.latency_by)
    fronts = {"flops": by_flops[2], "latency": by_latency[2]}
    in_search = {number: figure["ms"] for number, figure in measured_latency(by_latency[1]).items()}

    # the FLOPs front and every candidate the latency search accepted (its front among them), in turn
    accepted = [facts for facts in record.records(by_latency[1]) if facts.kind == "candidate"]
    members = [("flops", facts) for facts in fronts["flops"]] + [("accepted", facts) for facts in accepted]
    specs = [spec_from_dict({**facts.spec, "name": f"{label}-{facts.number}"}) for label, facts in members]
    figures = measure(specs, target)
    rows = {"flops": [], "latency": [], "accepted": []}
    in_front = {facts.number for facts in fronts["latency"]}
    for (label, facts), spec, figure in zip(members, specs, figures):
        row = {"trial": facts.number, "accuracy": facts.accuracy, "flops": count(spec)["flops"],
               "predicted_ms": model.predict(spec), "bound_ms": model.bound(spec), "measured_ms": figure.ms,
               "checked_ms": (facts.cost or {}).get("latency_ms") if label == "accepted" else None,
               "measured_in_search_ms": in_search.get(facts.number) if label == "accepted" else None}
        rows[label].append(row)
        if label == "accepted" and facts.number in in_front:
            rows["latency"].append(row)

    def within(label: str) -> float:
        return sum(row["measured_ms"] <= budget_ms for row in rows[label]) / max(1, len(rows[label]))

    def fastest_reaching(label: str, accuracy: float) -> float | None:
        reaching = [row["measured_ms"] for row in rows[label] if row["accuracy"] >= accuracy]
        return min(reaching) if reaching else None

    levels = sorted({row["accuracy"] for row in rows["flops"]})
    result = {
        "target": target.key(), "flops_budget": flops, "latency_budget_ms": budget_ms,
        "margin": model.predictor.margin, "trials": args.trials, "latency_by": args.latency_by,
        "seed": args.seed, "proxy_steps": args.proxy_steps, "load_average_before": load_before,
        "load_average_after": os.getloadavg(), "search_seconds": {"flops": by_flops[3], "latency": by_latency[3]},
        "fronts": {label: rows[label] for label in fronts}, "accepted": rows["accepted"],
        "within_latency_budget": {label: within(label) for label in rows},
        "latency_front_within_budget_in_search": (sum(ms <= budget_ms for ms in in_search.values())
                                                  / max(1, len(in_search))),
        "fastest_at_accuracy": [{"accuracy": level, "flops_front_ms": fastest_reaching("flops", level),
                                 "latency_front_ms": fastest_reaching("latency", level)} for level in levels],
    }
    path = write_result(args.out or f"latency_front-{target.runtime}-{target.precision}", result)
    print(f"wrote {path}")
    print(f"every candidate the latency search accepted: {sum(row['measured_ms'] <= budget_ms for row in rows['accepted'])}"
          f" of {len(rows['accepted'])} within {budget_ms:.2f} ms when measured")
    for label in fronts:
        print(f"{label} front ({len(rows[label])} members, searched in {result['search_seconds'][label]:.0f} s): "
              f"{within(label):.0%} within {budget_ms:.2f} ms when measured")
        for row in sorted(rows[label], key=lambda row: row["measured_ms"]):
            print(f"  trial {row['trial']}: accuracy {row['accuracy']:.3f}  {row['flops'] / 1e6:.0f} MFLOPs  "
                  f"predicted {row['predicted_ms']:.2f} ms (bound {row['bound_ms']:.2f} ms)  "
                  + (f"checked {row['checked_ms']:.2f} ms  " if row["checked_ms"] is not None else "")
                  + f"measured {row['measured_ms']:.2f} ms")
    for level in result["fastest_at_accuracy"]:
        print(f"  accuracy >= {level['accuracy']:.3f}: FLOPs front {level['flops_front_ms']} ms, "
              f"latency front {level['latency_front_ms']} ms")
    print(f"load {load_before} -> {result['load_average_after']}")


if __name__ == "__main__":
    main()
