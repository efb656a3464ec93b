"""Multi-fidelity search on a tabular benchmark: the fidelity study's measured architectures.

    python benchmarks/multifidelity_tabular.py [--log benchmarks/results/fidelity-synthetic/log.jsonl]

Every architecture of a ``nasface fidelity`` log was trained once to the reference budget and
measured at 1/4, 1/2, 1, 2, 4 and 8 times the proxy's steps, with the CPU seconds each budget costs
on its own.  That table lets search methods be simulated many times over at no training cost:
each evaluation returns the recorded score and charges its CPU time (``--costs``: scaled to one
machine by a power law of FLOPs, the default, or as recorded; ``load_table``).  One worker, no
overheads; the methods:

- ``random``: architectures in random order, each scored at the proxy's budget (1x);
- ``tpe``: Optuna's multi-objective TPE (nasface's settings) choosing among the table's
  architectures as one categorical knob, scored at 1x (the table is not the whole space, so this
  tells TPE's budget use on the measured points, not what it would find elsewhere);
- ``sh``: asynchronous successive halving (``nasface.search.rungs``) with rungs 1/4x, 1x, 4x and eta 4:
  new candidates start at 1/4x in random order, a candidate in the top quarter of its rung (by
  non-dominated sorting of score, FLOPs and weight bytes) continues to the next rung; promotion
  continues training, so it costs the longer budget less the stable steps already trained
  (warm-up-stable-decay: the shorter budget's cool-down is the only waste);
- ``sh-scratch``: the same, each rung trained from scratch (charged in full).

Each method's returned front is the non-dominated set of what it measured (scores at the highest
rung each candidate reached), and it is judged by the hypervolume of that front **measured with
the reference scores** (accuracy at 8x), on (accuracy - 0.5) / 0.5, 1 - FLOPs / 1G and
1 - weight bytes / 20 MB, against CPU seconds.  Each method gets ``--time-fraction`` (0.5) of the CPU time scoring
the whole table at 1x would take (the table is small: given all of it, random search would just
score everything).  Reported: median and quartiles over ``--seeds`` seeds at fractions of that
time, and the time each method needs to reach random search's final median hypervolume.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from benchmarks._common import write_result  # noqa: E402
from nasface.fidelity import FILL, theil_sen  # noqa: E402
from nasface.ui.study_page import hypervolume  # noqa: E402
from nasface.search.rungs import RungResult, nondominated_fronts, promotions  # noqa: E402

NAME = "multifidelity_tabular"
FLOPS_LIMIT, BYTES_LIMIT, CHANCE = 1e9, 20e6, 0.5
CHECKPOINTS = (0.1, 0.2, 0.33, 0.5, 0.75, 1.0)


def load_table(path: Path, seed: int = 0, costs: str = "flops") -> dict:
    """Architectures with every budget measured: accuracy and CPU cost per budget, costs, reference.

    ``costs="recorded"`` charges each budget the CPU seconds its run recorded.  The log's runs were
    trained over several sessions on machines of one kind whose speed differed up to about 4x
    (arch-29 of the synthetic study: 2,469 CPU-s with seed 0, 642 with seed 1, a session apart),
    so recorded seconds make the architectures of a fast session look cheap.  ``"flops"`` (the
    default) keeps each run's split of its seconds between budgets, training and evaluation, and
    scales the run as a whole to a power law of FLOPs fitted (Theil-Sen) to every run's reference
    seconds: one machine's costs, at the price of the per-architecture differences that FLOPs do
    not explain.
    """
    if costs not in ("flops", "recorded"):
        raise ValueError(f"costs must be 'flops' or 'recorded', not {costs!r}")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rows = [row for row in rows if not row["key"].startswith(FILL) and row["seed"] == seed
            and all(r["status"] == "ok" for r in row["results"])]
    scale = {row["arch"]: 1.0 for row in rows}
    if costs == "flops" and len({row["cost"]["flops"] for row in rows}) >= 3:
        whole = np.array([sum(row["results"][-1][k] for k in ("cpu_seconds", "eval_seconds")) for row in rows])
        flops = np.log([row["cost"]["flops"] for row in rows])
        slope, intercept = theil_sen(flops, np.log(whole))
        scale = {row["arch"]: float(np.exp(intercept + slope * f) / w) for row, f, w in zip(rows, flops, whole)}
    table = {}
    for row in rows:
        k = scale[row["arch"]]
        table[row["arch"]] = {
            "accuracy": {r["steps"]: r["accuracy"] for r in row["results"]},
            # what scoring that budget alone costs: its training (shared steps + own cool-down) and evaluation
            "cost": {r["steps"]: k * (r["cpu_seconds"] + r["eval_seconds"]) for r in row["results"]},
            "train": {r["steps"]: k * r["cpu_seconds"] for r in row["results"]},
            "eval": {r["steps"]: k * r["eval_seconds"] for r in row["results"]},
            "flops": row["cost"]["flops"], "weight_bytes": row["cost"]["weight_bytes"]}
    budgets = sorted(next(iter(table.values()))["accuracy"]) if table else []
    return {"archs": table, "budgets": budgets, "costs": costs}


def true_hypervolume(table: dict, chosen: list[str]) -> float:
    """Hypervolume of ``chosen`` (a returned front) measured with the reference accuracy."""
    if not chosen:
        return 0.0
    reference = max(table["budgets"])
    points = np.array([[(table["archs"][a]["accuracy"][reference] - CHANCE) / (1 - CHANCE),
                        1 - table["archs"][a]["flops"] / FLOPS_LIMIT,
                        1 - table["archs"][a]["weight_bytes"] / BYTES_LIMIT] for a in chosen])
    return hypervolume(points)


def front_of(table: dict, measured: dict[str, float]) -> list[str]:
    """The non-dominated set of measured architectures by (score, -FLOPs, -weight bytes)."""
    names = list(measured)
    points = np.array([[measured[n], -table["archs"][n]["flops"], -table["archs"][n]["weight_bytes"]] for n in names])
    fronts = nondominated_fronts(points)
    return [n for n, f in zip(names, fronts) if f == 0]


class Trace:
    """Hypervolume of the returned front after each evaluation, against CPU seconds spent."""

    def __init__(self, table: dict):
        self.table, self.spent, self.times, self.values = table, 0.0, [0.0], [0.0]

    def record(self, seconds: float, measured: dict[str, float]) -> None:
        self.spent += seconds
        self.times.append(self.spent)
        self.values.append(true_hypervolume(self.table, front_of(self.table, measured)))

    def at(self, seconds: float) -> float:
        index = np.searchsorted(self.times, seconds, side="right") - 1
        return self.values[max(0, index)]


def run_random(table: dict, seed: int, proxy: int, limit: float) -> Trace:
    trace, measured = Trace(table), {}
    for name in np.random.default_rng(seed).permutation(sorted(table["archs"])):
        if trace.spent >= limit:
            break
        measured[name] = table["archs"][name]["accuracy"][proxy]
        trace.record(table["archs"][name]["cost"][proxy], measured)
    return trace


def run_tpe(table: dict, seed: int, proxy: int, limit: float) -> Trace:
    from nasface.search import make_sampler

    names = sorted(table["archs"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(directions=["maximize", "minimize", "minimize"], sampler=make_sampler("tpe", seed))
    trace, measured = Trace(table), {}
    while trace.spent < limit and len(measured) < len(names):
        trial = study.ask()
        name = trial.suggest_categorical("arch", names)
        arch = table["archs"][name]
        repeat = name in measured  # the search never trains an architecture twice: told again, free
        measured[name] = arch["accuracy"][proxy]
        study.tell(trial, [measured[name], arch["flops"], arch["weight_bytes"]])
        if not repeat:
            trace.record(arch["cost"][proxy], measured)
    return trace


def run_successive_halving(table: dict, seed: int, rungs: list[int], eta: int, limit: float,
                           continue_training: bool, cooldown_fraction: float = 0.2) -> Trace:
    """One worker: promote when a promotion is due (highest rung first), else start a new candidate."""
    order = list(np.random.default_rng(seed).permutation(sorted(table["archs"])))
    trace = Trace(table)
    results: list[list[RungResult]] = [[] for _ in rungs]
    promoted: list[set] = [set() for _ in rungs]
    reached: dict[str, int] = {}
    measured: dict[str, float] = {}

    def evaluate(name: str, level: int) -> None:
        arch, steps = table["archs"][name], rungs[level]
        cost = arch["cost"][steps]
        if level > 0 and continue_training:
            # the stable steps of the previous rung are reused; its cool-down and evaluation are not
            previous = rungs[level - 1]
            per_step = arch["train"][steps] / steps
            cost -= per_step * previous * (1 - cooldown_fraction)
        reached[name] = level
        measured[name] = arch["accuracy"][steps]
        results[level].append(RungResult(name, (measured[name], -arch["flops"], -arch["weight_bytes"])))
        trace.record(cost, measured)

    while trace.spent < limit:
        for level in range(len(rungs) - 2, -1, -1):
            ready = promotions(results[level], eta, promoted[level])
            if ready:
                promoted[level].add(ready[0])
                evaluate(ready[0], level + 1)
                break
        else:
            if not order:
                break
            evaluate(order.pop(0), 0)
    return trace


def summarise(traces: list[Trace], times: list[float]) -> dict:
    values = np.array([[trace.at(t) for t in times] for trace in traces])
    return {"median": np.median(values, axis=0).tolist(), "q25": np.percentile(values, 25, axis=0).tolist(),
            "q75": np.percentile(values, 75, axis=0).tolist()}


def time_to_reach(traces: list[Trace], target: float, limit: float) -> float | None:
    """The CPU seconds at which the median hypervolume over seeds first reaches ``target``.

    The median curve, the one the table shows, rather than the median of each seed's first hit:
    with an even number of seeds the latter is undefined when half of them never get there, even
    for the method whose final median the target is."""
    moments = sorted({t for trace in traces for t in trace.times if t <= limit} | {limit})
    for moment in moments:
        if np.median([trace.at(moment) for trace in traces]) >= target - 1e-12:
            return moment
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", default="benchmarks/results/fidelity-synthetic/log.jsonl")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--eta", type=int, default=4)
    parser.add_argument("--rungs", default="0.25,1,4", help="rungs as multiples of the proxy's steps")
    parser.add_argument("--time-fraction", type=float, default=0.5,
                        help="CPU time given to each method, as a fraction of what scoring the whole table at 1x "
                             "costs (below 1, so that random search cannot simply exhaust the table)")
    parser.add_argument("--costs", choices=("flops", "recorded"), default="flops",
                        help="charge each run's CPU seconds scaled to a power law of FLOPs (one machine's costs; "
                             "the log's runs ran on machines of differing speed) or as recorded")
    parser.add_argument("--out", help=f"results file (default benchmarks/results/{NAME}.json)")
    args = parser.parse_args()
    table = load_table(Path(args.log), costs=args.costs)
    if len(table["archs"]) < 8:
        raise SystemExit(f"{args.log}: {len(table['archs'])} architectures have every budget; the simulation needs 8")
    budgets = table["budgets"]
    proxy = budgets[len(budgets) // 2 - 1] if 120 not in budgets else 120
    rungs = [int(round(float(f) * proxy)) for f in args.rungs.split(",")]
    missing = [r for r in rungs if r not in budgets]
    if missing:
        raise SystemExit(f"rungs {missing} are not budgets of the table ({budgets})")
    whole = sum(arch["cost"][proxy] for arch in table["archs"].values())  # random search, whole table
    limit = args.time_fraction * whole
    times = [fraction * limit for fraction in CHECKPOINTS]
    methods = {
        "random": lambda s: run_random(table, s, proxy, limit),
        "tpe": lambda s: run_tpe(table, s, proxy, limit),
        "sh": lambda s: run_successive_halving(table, s, rungs, args.eta, limit, True),
        "sh-scratch": lambda s: run_successive_halving(table, s, rungs, args.eta, limit, False),
    }
    traces = {name: [run(seed) for seed in range(args.seeds)] for name, run in methods.items()}
    best = true_hypervolume(table, front_of(table, {n: a["accuracy"][max(budgets)] for n, a in table["archs"].items()}))
    summary = {name: summarise(found, times) for name, found in traces.items()}
    target = summary["random"]["median"][-1]
    reach = {name: time_to_reach(found, target, limit) for name, found in traces.items()}
    print(f"{len(table['archs'])} architectures, proxy {proxy} steps, rungs {rungs}, eta {args.eta}, "
          f"{args.seeds} seeds; {limit:.0f} CPU-s each ({args.time_fraction} of scoring the whole table at 1x); "
          f"best possible hypervolume {best:.4f}")
    print("hypervolume (reference scores), median [q25, q75], at fractions of that time:")
    for name, row in summary.items():
        cells = "  ".join(f"{f:.2f}: {m:.4f} [{lo:.4f}, {hi:.4f}]"
                          for f, m, lo, hi in zip(CHECKPOINTS, row["median"], row["q25"], row["q75"]))
        print(f"  {name:10s} {cells}")
    for name, seconds in reach.items():
        shown = "never (within the time)" if seconds is None else f"{seconds / limit:.2f} of the time"
        print(f"  {name:10s} reaches random search's final median ({target:.4f}): {shown}")
    path = write_result(NAME, {"log": args.log, "architectures": len(table["archs"]), "budgets": budgets,
                               "proxy_steps": proxy, "rungs": rungs, "eta": args.eta, "seeds": args.seeds, "costs": args.costs,
                               "cpu_seconds_whole_table": whole, "cpu_seconds_per_method": limit, "checkpoints": list(CHECKPOINTS),
                               "best_possible_hypervolume": best, "hypervolume": summary,
                               "time_to_random_final": {k: (None if v is None else v / limit) for k, v in reach.items()}},
                        args.out)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
