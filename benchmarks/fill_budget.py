"""How much of the LFR budgets random feasible candidates use, with and without --fill-budget.

    python benchmarks/fill_budget.py [--quick]

Draws random points of the default space, keeps those within 1G FLOPs (lfr) and 20 MB, and
reports the fraction of the tighter budget each one uses before and after ``fill_budget``
widens its stages, and the time a fill takes (analytic counts only, no training).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nasface  # noqa: E402
from benchmarks._common import write_result  # noqa: E402
from nasface.arch.budget import Budgets  # noqa: E402
from nasface.core.errors import NasfaceError  # noqa: E402
from nasface.arch.space import RandomChooser, fill_budget, load_space  # noqa: E402


def used(cost: dict, budgets: Budgets) -> float:
    return max(cost[key] / limit for key, limit in budgets.limits().items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    draws = 600 if args.quick else 5000
    space, budgets = load_space(), Budgets.parse(flops="1G", mem="20MB")
    before, after, seconds = [], [], []
    for draw in range(draws):
        try:
            spec = space.sample(RandomChooser(args.seed * 1_000_003 + draw))
        except NasfaceError:
            continue
        cost = nasface.count(spec)
        if not budgets.fits(cost):
            continue
        start = time.perf_counter()
        filled, _ = fill_budget(spec, budgets)
        seconds.append(time.perf_counter() - start)
        before.append(used(cost, budgets))
        after.append(used(nasface.count(filled), budgets))
    result = {"draws": draws, "feasible": len(before),
              "median_budget_used_before": statistics.median(before),
              "median_budget_used_after": statistics.median(after),
              "p10_budget_used_before": statistics.quantiles(before, n=10)[0],
              "p10_budget_used_after": statistics.quantiles(after, n=10)[0],
              "median_fill_ms": 1e3 * statistics.median(seconds)}
    path = write_result("fill_budget", {"quick": args.quick, "seed": args.seed, **result})
    print(f"{len(before)} feasible of {draws} draws; budget used (median) {result['median_budget_used_before']:.0%} "
          f"-> {result['median_budget_used_after']:.0%} with --fill-budget "
          f"(10th percentile {result['p10_budget_used_before']:.0%} -> {result['p10_budget_used_after']:.0%}); "
          f"{result['median_fill_ms']:.1f} ms per fill; wrote {path}")


if __name__ == "__main__":
    main()
