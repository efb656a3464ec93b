"""How often a latency budget's bound holds when measured: the table's margin against held-out networks.

    python benchmarks/latency_bound.py [RESULT.json ...] [--fit 20] [--splits 200]

A search under a latency budget accepts a candidate whose *bound* (its prediction raised by the table's
margin: ``nasface.latency.table.margin``) is within the budget, so a front meets its budget when measured
as often as a network's measured figure falls within its bound.  This reads the networks that
``latency_predictor.py`` measured (its results files; by default every format-6 one committed), and over
``--splits`` random splits fits the correction and the margin on ``--fit`` networks, as a table of that many
measured networks would, and counts the held-out networks measured within their bound.  Two margins, on
the same splits:

- ``t bound``: the current rule (``margin``): a one-sided prediction bound at ``BOUND_CONFIDENCE`` on the
  next network's held-out error, its logs taken as normal (Student's t);
- ``largest``: the rule before, the 99th percentile of the fit networks' held-out errors, which with 20
  networks is about their largest.

The correction takes its PReLU term where the table would (``PRELU_BY_SIGNS``) and the results file
counted the PReLUs' elements (those written since the term was taken).  No measuring: it reads stored figures, so it runs in seconds and its numbers follow from the committed
results.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, write_result  # noqa: E402
from nasface.latency.table import BOUND_CONFIDENCE, Correction, held_out_errors, margin  # noqa: E402
from nasface.latency.target import prelu_by_signs  # noqa: E402

OLD_QUANTILE = 0.99  # the rule before: this quantile of the fit networks' held-out errors


def largest_margin(networks: list[dict]) -> float:
    errors = held_out_errors(networks)
    return max(0.0, float(np.quantile(errors, OLD_QUANTILE))) if errors else 0.0


def coverage(rows: list[dict], fit: int, splits: int) -> dict:
    """Per rule: the share of held-out networks measured within their bound, over ``splits`` random
    splits of ``fit`` networks fitted and the rest held out, and the median margin and share of the
    worst split."""
    rng = np.random.default_rng(0)
    found = {"t bound": (margin, [], []), "largest": (largest_margin, [], [])}
    for _ in range(splits):
        order = rng.permutation(len(rows))
        fitted, held = [rows[i] for i in order[:fit]], [rows[i] for i in order[fit:]]
        correction = Correction.fit(fitted)
        for rule, shares, margins in found.values():
            raised = 1.0 + rule(fitted)
            shares.append(np.mean([row["ms"] <= correction(row["parts_ms"], row["nodes"], row.get("prelu_elements", 0))
                                   * raised for row in held]))
            margins.append(raised - 1.0)
    return {name: {"within_bound": float(np.mean(shares)), "worst_split": float(np.min(shares)),
                   "median_margin": float(np.median(margins))}
            for name, (_, shares, margins) in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="*", help="latency_predictor results files (default: the format-6 ones)")
    parser.add_argument("--fit", type=int, default=20, help="Networks a table has measured whole.")
    parser.add_argument("--splits", type=int, default=200)
    args = parser.parse_args()
    paths = [Path(p) for p in args.results] or sorted(RESULTS.glob("latency_predictor-*-format6*.json"))
    found = {}
    for path in paths:
        stored = json.loads(path.read_text())
        counted = prelu_by_signs(stored["target"]) and all("prelu_elements" in row for row in stored["rows"])
        rows = [{"ms": row["measured_ms"], "parts_ms": row["parts_ms"], "nodes": row["nodes"],
                 **({"prelu_elements": row["prelu_elements"]} if counted else {})} for row in stored["rows"]]
        found[path.name] = {"networks": len(rows), **coverage(rows, args.fit, args.splits)}
    written = write_result("latency_bound", {"fit": args.fit, "splits": args.splits, "confidence": BOUND_CONFIDENCE,
                                             "old_quantile": OLD_QUANTILE, "results": found})
    print(f"| results (fit {args.fit}, {args.splits} splits) | t bound at {BOUND_CONFIDENCE}: within bound "
          f"(worst split), median margin | largest: within bound (worst split), median margin |")
    print("| --- | ---: | ---: |")
    for name, row in found.items():
        cells = [f"{row[rule]['within_bound']:.1%} ({row[rule]['worst_split']:.0%}), +{row[rule]['median_margin']:.1%}"
                 for rule in ("t bound", "largest")]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
