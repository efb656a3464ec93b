"""Search overhead per trial (ask, sample + count + reject, tell, storage, Ray dispatch) vs training.

    python benchmarks/search_overhead.py [--quick]

Part 1 drives a real Optuna study (SQLite file, the default TPE sampler with constraints) through
nasface's own ask -> sample -> count -> tell path for N trials, with every candidate told as a
completed trial (accuracy from a cheap stand-in: no training), and times each step; the ask time
grows with the number of finished trials, so medians are quoted for the first and last tenth.
Part 2 times a Ray task round trip on a local Ray (what dispatching a candidate costs).
Part 3 times one real proxy training of MobileFaceNet at the default proxy budget on synthetic
data, the denominator of the overhead fraction.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402

from benchmarks._common import write_result  # noqa: E402
from nasface.arch.budget import Budgets  # noqa: E402
from nasface.search import DataSettings, SearchConfig, load_proxy_data, make_sampler  # noqa: E402
from nasface.search.candidate import prepare_trial  # noqa: E402
from nasface.search.record import read  # noqa: E402
from nasface.arch.model import _block_cost, count  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402
from nasface.arch.spec import spec_from_dict  # noqa: E402
from nasface.training.proxy import score  # noqa: E402
from nasface.training.settings import ProxyBudget


def optuna_overhead(trials: int, sampler: str) -> dict:
    space, budgets = load_space(), Budgets.parse(flops="1G", mem="20MB")
    config = SearchConfig(budgets=budgets, sampler=sampler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as folder:
        study = optuna.create_study(storage=f"sqlite:///{folder}/study.db", sampler=make_sampler(sampler, 0),
                                    directions=["maximize", "minimize", "minimize"])
        ask, prepare, tell, rejected, check = [], [], [], [], []
        for _ in range(trials):
            start = time.perf_counter()
            trial = study.ask()
            asked = time.perf_counter()
            outcome = prepare_trial(study, trial, space, config)
            prepared = time.perf_counter()
            facts = read(trial)
            if outcome is None:
                cost = facts.cost
                study.tell(trial, values=[1.0 - cost["flops"] / 2e9, cost["flops"], cost["weight_bytes"]])
            else:
                study.tell(trial, **outcome)
            rejected.append(outcome is not None)
            told = time.perf_counter()
            if facts.spec is not None:  # the analytic reject step alone: count (cold) + budget check
                spec = spec_from_dict(facts.spec)
                _block_cost.cache_clear()
                begin = time.perf_counter()
                budgets.fits(count(spec, budgets.convention))
                check.append(time.perf_counter() - begin)
            ask.append(asked - start)
            prepare.append(prepared - asked)
            tell.append(told - prepared)
    tenth = max(1, trials // 10)
    return {"trials": trials, "sampler": sampler, "rejected_fraction": sum(rejected) / trials,
            "rejected_first_tenth": sum(rejected[:tenth]) / tenth, "rejected_last_tenth": sum(rejected[-tenth:]) / tenth,
            "ask_ms_first_tenth": 1e3 * statistics.median(ask[:tenth]),
            "ask_ms_last_tenth": 1e3 * statistics.median(ask[-tenth:]),
            "prepare_ms": 1e3 * statistics.median(prepare), "tell_ms": 1e3 * statistics.median(tell),
            "count_and_check_ms": 1e3 * statistics.median(check)}


def _noop(payload: dict) -> dict:
    return payload


def ray_dispatch(jobs: int) -> dict:
    from nasface.search.executor import RayExecutor

    start = time.perf_counter()
    executor = RayExecutor(workers=1, cpus_per_trial=1)
    startup = time.perf_counter() - start
    round_trips = []
    for index in range(jobs):
        begin = time.perf_counter()
        executor.submit(index, _noop, {"spec": {"name": "x" * 2000}})
        while not executor.wait(timeout=1.0):
            pass
        round_trips.append(time.perf_counter() - begin)
    executor.shutdown()
    return {"ray_start_s": startup, "dispatch_ms_first": 1e3 * round_trips[0],
            "dispatch_ms_median": 1e3 * statistics.median(round_trips[1:])}


def training_seconds() -> dict:
    budget = ProxyBudget(distill="none", device="cpu", resolution=64, steps=120)
    data = load_proxy_data(DataSettings(), 0, Path(tempfile.gettempdir()) / "nasface-bench-cache")
    result = score("mobilefacenet", data.train, data.pairs, budget)
    return {"train_seconds": result["wall_seconds"], "proxy": {"steps": budget.steps, "batch": budget.batch_size,
                                                                "resolution": budget.resolution}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    trials = 100 if args.quick else 500
    rows = {sampler: optuna_overhead(trials, sampler) for sampler in ("tpe", "nsga2")}
    dispatch = ray_dispatch(10 if args.quick else 50)
    training = training_seconds()
    tpe = rows["tpe"]
    per_trial = (tpe["ask_ms_last_tenth"] + tpe["prepare_ms"] + tpe["tell_ms"] + dispatch["dispatch_ms_median"]) / 1e3
    fraction = per_trial / training["train_seconds"]
    path = write_result("search_overhead", {"quick": args.quick, "samplers": rows, "ray": dispatch, **training,
                                            "overhead_seconds_per_trial": per_trial,
                                            "overhead_fraction_of_training": fraction})
    for sampler, row in rows.items():
        print(f"{sampler}: ask {row['ask_ms_first_tenth']:.1f} ms (first tenth) -> {row['ask_ms_last_tenth']:.1f} ms "
              f"(last tenth of {trials}), sample (suggests written to SQLite) + count + attributes {row['prepare_ms']:.1f} ms "
              f"of which count + budget check {row['count_and_check_ms']:.3f} ms, tell {row['tell_ms']:.1f} ms, "
              f"rejected {row['rejected_first_tenth']:.0%} of the first tenth, {row['rejected_last_tenth']:.0%} of the last")
    print(f"ray: start {dispatch['ray_start_s']:.1f} s, dispatch round trip {dispatch['dispatch_ms_median']:.1f} ms")
    print(f"training one candidate (MobileFaceNet, default CPU proxy): {training['train_seconds']:.1f} s; "
          f"overhead per trial {per_trial * 1e3:.0f} ms = {fraction:.2%} of it; wrote {path}")


if __name__ == "__main__":
    main()
