"""How far a whole network's measured latency moves between sittings: the floor under a predictor's error.

    python benchmarks/latency_repeat.py [TABLE.jsonl ...]

A predictor is scored against networks measured whole, and a measured figure is itself one draw: the
same network, exported the same way with the same weights, timed again in another sitting, reads
otherwise.  This reads the whole-network rows of latency tables (``nasface.latency.table``) built on one
target at different times (by default every committed format-6 table, grouped by target) and, for each
pair of tables of a target, compares the figures of the networks both measured:

- ``median ratio``: how far the second sitting read from the first over all networks (the machine's
  speed that day);
- ``within 10 %`` and ``within 5 %``: the share of networks whose second figure is within that of the
  first, once the median ratio is divided out (what a predictor fitted in one sitting could at best
  reach against the other);
- ``groups``: networks are measured in turn in groups of ``nasface.latency.build.GROUP``; the spread of
  the groups' mean log ratios beside the spread within groups tells a shift shared by a group (when, or
  beside which others, it was timed) from each network's own.

And, per target, over every ordered pair of all its sittings (each sitting of the format-6 tables, of
``latency_company.py``'s networks and of ``latency_alone.py``'s networks in groups and beside companions,
the ways a search measures them; windows hours or days apart): how much higher a network read in the
second than in the first, as measured, the day's speed left in.  Its 99th percentile is the margin
``nasface search --latency-by measurement`` adds on that target (``MEASUREMENT_MARGIN``).

No measuring: it reads stored figures, so it runs in seconds and its numbers follow from the committed
tables.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, write_result  # noqa: E402
from nasface.latency.build import GROUP  # noqa: E402


def target_of(key: dict) -> str:
    return f"{key['runtime']} {key['precision']}"


def table_sittings(path: Path) -> tuple[str, list[dict[str, float]]]:
    """The table's target and its networks' figures in each sitting that measured them whole, each in the
    order it measured them (a table writes one row per network and sitting)."""
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    sittings: list[dict[str, float]] = []
    for row in lines:
        if row.get("kind") == "network":
            seen = sum(row["name"] in sitting for sitting in sittings)
            if seen == len(sittings):
                sittings.append({})
            sittings[seen][row["name"]] = row["ms"]
    return target_of(lines[0]["key"]), sittings


def company_sittings(folder: Path) -> tuple[str, list[dict[str, float]]]:
    """The target of a ``latency_company.py`` folder and the figures of its sittings of whole networks."""
    key = json.loads((folder / "same.jsonl").read_text().splitlines()[0])["key"]
    sittings: dict[int, dict[str, float]] = defaultdict(dict)
    for row in json.loads((folder / "networks.json").read_text()):
        sittings[row["sitting"]][row["name"]] = row["ms"]
    return target_of(key), [sittings[number] for number in sorted(sittings)]


def alone_sittings(path: Path) -> tuple[str, list[dict[str, float]]]:
    """The target of a ``latency_alone.py`` figures file and its sittings of the ways the product measures
    a network: in a group of eight, and beside the fixed companions (not alone)."""
    target = " ".join(path.stem.removeprefix("latency_alone-").removesuffix("-figures").split("-"))
    figures = json.loads(path.read_text())
    return target, [{name: least for name, (least, _) in sitting["figures"].items()}
                    for way in ("groups", "companions") for sitting in figures.get(way, [])]


def reads_higher(sittings: list[dict[str, float]]) -> dict:
    """Over every ordered pair of sittings and every network both measured: how much higher the second
    figure read than the first (negative: lower)."""
    rises = np.array([second[name] / first[name] - 1 for first, second in itertools.permutations(sittings, 2)
                      for name in first if name in second])
    return {"sittings": len(sittings), "repeats": len(rises), "p95": float(np.percentile(rises, 95)),
            "p99": float(np.percentile(rises, 99)), "largest": float(rises.max())}


def agreement(first: dict[str, float], second: dict[str, float]) -> dict:
    """The second sitting's figures against the first's, for the networks both measured (in the first's order)."""
    names = [name for name in first if name in second]
    ratios = np.array([second[name] / first[name] for name in names])
    scaled = ratios / np.median(ratios)
    logs = np.log(scaled)
    groups = [logs[start:start + GROUP] for start in range(0, len(logs), GROUP)]
    within = np.concatenate([group - group.mean() for group in groups])
    return {"networks": len(names), "median_ratio": float(np.median(ratios)),
            "within_10": float(np.mean(np.abs(scaled - 1) <= 0.10)),
            "within_5": float(np.mean(np.abs(scaled - 1) <= 0.05)),
            "largest": float(np.max(np.abs(scaled - 1))),
            "log_spread": float(logs.std()),
            "group_mean_spread": float(np.std([group.mean() for group in groups])),
            "within_group_spread": float(within.std())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", help="latency tables (default: the committed format-6 ones)")
    args = parser.parse_args()
    paths = [Path(p) for p in args.tables] or sorted(RESULTS.glob("latency_table-*-format6*.jsonl"))
    by_target: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    every_sitting: dict[str, list[dict]] = defaultdict(list)
    for path in paths:
        target, sittings = table_sittings(path)
        if sittings:
            by_target[target].append((path.stem.removeprefix("latency_table-"), sittings[-1]))
            every_sitting[target] += sittings
    if not args.tables:
        for folder in sorted(path.parent for path in RESULTS.glob("latency_company-*/networks.json")):
            target, sittings = company_sittings(folder)
            every_sitting[target] += sittings
        for path in sorted(RESULTS.glob("latency_alone-*-figures.json")):
            target, sittings = alone_sittings(path)
            every_sitting[target] += sittings
    found = {target: [{"first": a, "second": b, **agreement(fa, fb)}
                      for (a, fa), (b, fb) in itertools.combinations(tables, 2)]
             for target, tables in by_target.items()}
    higher = {target: reads_higher(sittings) for target, sittings in every_sitting.items() if len(sittings) > 1}
    written = write_result("latency_repeat", {"group": GROUP, "pairs": found, "reads_higher": higher})
    print("| target | tables | networks | median ratio | within 10 % | within 5 % | largest | groups: spread of "
          "means, within |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for target, pairs in found.items():
        for pair in pairs:
            print(f"| {target} | {pair['first']} / {pair['second']} | {pair['networks']} | {pair['median_ratio']:.3f} "
                  f"| {pair['within_10']:.0%} | {pair['within_5']:.0%} | {pair['largest']:.1%} "
                  f"| {pair['group_mean_spread']:.3f}, {pair['within_group_spread']:.3f} |")
    print("\n| target | sittings | repeats | read higher again: 95 % of repeats | 99 % | most |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for target, rise in higher.items():
        print(f"| {target} | {rise['sittings']} | {rise['repeats']} | {rise['p95']:+.1%} | {rise['p99']:+.1%} "
              f"| {rise['largest']:+.1%} |")
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
