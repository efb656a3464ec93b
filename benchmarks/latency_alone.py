"""One network measured alone, beside fixed companions, or in a group of eight: how far each figure moves
between sittings, and how well the table predicts it.

    python benchmarks/latency_alone.py [--runtime onnxruntime] [--precision fp32] [--networks 50]
                                       [--sittings 3] [--ways alone,alone-400,companions,groups]
                                       [--table PATH] [--fit 20] [--splits 200]

The ``--networks`` light-track networks of ``latency_predictor.py --light-track`` (seed 1) are measured
whole, in each sitting in another order (``sitting_order``), each of these ways:

- ``alone``: one network at a time, its 50 runs back to back (``measure(..., group=1)``: how a lone
  network was measured before, and still the time a network running by itself takes);
- ``alone-400``: the same with 400 runs, so its minimum is taken over as long as a group of eight takes;
- ``companions``: one network at a time beside the seven fixed ``companions`` (``measure([spec])``: how
  ``nasface latency SPEC`` and a search by measurement now measure a lone network);
- ``groups``: all of them eight at a time in turn (``measure(specs)``: how a table's networks and a
  search's front are measured).

For each way: how far two sittings read apart (the median ratio, the share within 5 % once it is divided
out, the spread of the log ratios), and, with ``--table`` (a table of the same networks' parts, such as
``latency_table-onnxruntime-fp32-1t-light-format6-median3.jsonl``), the predictor (fitted on ``--fit``,
scored on the others over ``--splits`` random splits) against each sitting and against the median of the
sittings.  Then the ratios a search by measurement meets: a network measured in a group (as the front is)
over the same network measured by another way (as its check was), over every pair of sittings, beside
the target's ``MEASUREMENT_MARGIN``.

Resumable: the figures are kept in ``results/latency_alone-<target>-figures.json``, one entry a way and
sitting, and only the sittings it lacks are measured (about 5 minutes a sitting of each way here, 50
networks of 2.5-32 ms in fp32).  A quiet machine is wanted: nothing else timed or trained beside it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, write_atomic, write_result  # noqa: E402
from benchmarks.latency_forms import scored  # noqa: E402
from nasface.arch.budget import LIGHT_TRACK  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402
from nasface.latency.build import sample_networks, sitting_order  # noqa: E402
from nasface.latency.measure import measure  # noqa: E402
from nasface.latency.table import LatencyPredictor, LatencyTable  # noqa: E402
from nasface.latency.target import LatencyTarget, prelu_by_signs  # noqa: E402
from nasface.search.latency import MEASUREMENT_MARGIN  # noqa: E402

SEED = 1  # the networks latency_predictor.py --light-track draws
# how each way measures one sitting's networks (in that sitting's order), and the sittings' shuffles:
# the order of sitting s is sitting_order(networks, s + ORDER_OFFSET[way])
WAYS = {
    "alone": lambda specs, target: [figure for spec in specs for figure in measure([spec], target, group=1)],
    "alone-400": lambda specs, target: [figure for spec in specs
                                        for figure in measure([spec], target, runs=400, group=1)],
    "companions": lambda specs, target: [figure for spec in specs for figure in measure([spec], target)],
    "groups": lambda specs, target: measure(specs, target),
}
ORDER_OFFSET = {"alone": 10, "alone-400": 10, "companions": 20, "groups": 40}


def between_sittings(sittings: list[dict[str, float]], names: list[str]) -> list[dict]:
    """For each pair of sittings: the median ratio, the share within 5 % of it, the spread of the logs."""
    rows = []
    for (first, one), (second, other) in itertools.combinations(enumerate(sittings, 1), 2):
        ratios = np.array([one[name] / other[name] for name in names])
        relative = ratios / np.median(ratios)
        rows.append({"sittings": [first, second], "median_ratio": float(np.median(ratios)),
                     "within_5": float(np.mean(np.abs(relative - 1) <= 0.05)),
                     "log_spread": float(np.std(np.log(relative)))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtime", default="onnxruntime")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--networks", type=int, default=50)
    parser.add_argument("--sittings", type=int, default=3)
    parser.add_argument("--ways", default=",".join(WAYS), help=f"Which ways to measure: of {', '.join(WAYS)}.")
    parser.add_argument("--table", help="A table of these networks' parts, to score the predictor against each way.")
    parser.add_argument("--fit", type=int, default=20)
    parser.add_argument("--splits", type=int, default=200)
    args = parser.parse_args()
    ways = args.ways.split(",")
    if unknown := set(ways) - set(WAYS):
        parser.error(f"unknown way {sorted(unknown)[0]!r} (ways: {', '.join(WAYS)})")
    target = LatencyTarget.parse(f"{args.runtime}:{args.precision}:1")
    specs = sample_networks(load_space("lfr"), args.networks, SEED, LIGHT_TRACK)
    names = [spec.name for spec in specs]
    kept = RESULTS / f"latency_alone-{target.runtime}-{target.precision}-figures.json"
    figures = json.loads(kept.read_text()) if kept.exists() else {}
    for way in ways:
        for sitting in range(len(figures.get(way, [])) + 1, args.sittings + 1):
            started, load = time.perf_counter(), os.getloadavg()
            measured = WAYS[way](sitting_order(specs, sitting + ORDER_OFFSET[way]), target)
            figures.setdefault(way, []).append({
                "figures": {figure.name: [figure.ms, figure.median_ms] for figure in measured},
                "seconds": time.perf_counter() - started, "load": [load, os.getloadavg()]})
            write_atomic(kept, json.dumps(figures))
            print(f"{way}, sitting {sitting}: {figures[way][-1]['seconds']:.0f} s, load {load} -> {os.getloadavg()}",
                  flush=True)

    least = {way: [{name: sitting["figures"][name][0] for name in names} for sitting in figures[way]]
             for way in ways if figures.get(way)}
    result: dict = {"target": target.key(), "networks": len(specs), "figures": kept.name, "ways": {}}
    predictor = columns = None
    if args.table:  # the correction's columns: the sum, the operators and (where it takes them) PReLU elements
        predictor = LatencyPredictor(LatencyTable.open(args.table, target.key(), create=False))
        columns = [np.array(column, dtype=float) for column in zip(*(predictor.summed(spec) for spec in specs))]
        columns[2] /= 1e6
        columns = columns if prelu_by_signs(target.key()) else columns[:2]
    rng = np.random.default_rng(0)
    splits = [rng.permutation(len(specs)) for _ in range(args.splits)]
    for way, sittings in least.items():
        row: dict = {"sittings": len(sittings), "between_sittings": between_sittings(sittings, names)}
        if predictor is not None:
            median = [float(np.median([sitting[name] for sitting in sittings])) for name in names]
            row["predictor_each_sitting"] = [scored(columns, np.array([s[name] for name in names]), splits,
                                                    args.fit) for s in sittings]
            row["predictor_median"] = scored(columns, np.array(median), splits, args.fit)
        result["ways"][way] = row
    margin = MEASUREMENT_MARGIN[target.runtime, target.precision]
    result["measurement_margin"] = margin
    result["groups_over"] = {}
    for way in (way for way in least if way != "groups" and "groups" in least):
        ratios = np.array([final[name] / check[name] for final in least["groups"] for check in least[way]
                           for name in names])
        result["groups_over"][way] = {"pairs": len(ratios), "median": float(np.median(ratios)),
                                      "p99": float(np.quantile(ratios, 0.99)), "most": float(ratios.max()),
                                      "over_margin": float(np.mean(ratios > 1 + margin))}
    path = write_result(f"latency_alone-{target.runtime}-{target.precision}", result)
    print(f"wrote {path}")
    for way, row in result["ways"].items():
        apart = row["between_sittings"]
        line = (f"{way:11s} sittings apart: within 5 % {min(r['within_5'] for r in apart):.0%}-"
                f"{max(r['within_5'] for r in apart):.0%}, log spread {min(r['log_spread'] for r in apart):.1%}-"
                f"{max(r['log_spread'] for r in apart):.1%}")
        if "predictor_median" in row:
            each = [score["within_10"] for score in row["predictor_each_sitting"]]
            line += (f"; predicted within 10 %: {min(each):.1%}-{max(each):.1%} a sitting, "
                     f"{row['predictor_median']['within_10']:.1%} against the median")
        print(line)
    for way, row in result["groups_over"].items():
        print(f"in a group / {way}: median {row['median']:.3f}, 99 % {row['p99']:.3f}, most {row['most']:.3f}, "
              f"over the margin ({margin:.1%}) {row['over_margin']:.1%} of {row['pairs']}")


if __name__ == "__main__":
    main()
