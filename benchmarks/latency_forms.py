"""Correction forms for the latency predictor, re-scored offline on one sitting's measurements.

    python benchmarks/latency_forms.py [TABLE] [--also TABLE] [--networks 40] [--seed 1] [--splits 200]

No new measurement: TABLE is the table ``benchmarks/latency_predictor.py --light-track --table TABLE``
built and measured (its parts in context and its networks whole; by default the committed table of
format 3's sitting 2, behind ``results/latency_predictor-onnxruntime-fp32-1t-light-format3.json``; the
results file is named after any other table).  The networks are
drawn again from the same seed, so each network's parts are known, and each correction form is fitted
on 10 networks (as the benchmark does) and on 20 and scored on the others, over ``--splits`` random
splits (the same splits for every form), and in-sample on all of them.  The forms beside the predictor's (slope, cost
per operator, cost per PReLU element, intercept) and its form before (no PReLU term) are the ones the
profiler suggested: a discount on each repeat of an identical
part in a network (fitted, or fixed at the profiler's 0.87 and at large maps only), a slope of its own
for the FLGC blocks, a cost per operator of its own on small maps, and a cost per PReLU or per
element a PReLU takes (onnxruntime runs it unfused, and its run time depends on the data: a PReLU
in a network ran up to twice as long as in the same part timed in context).  ``--also`` scores a
second sitting's table and networks of the same seed the same way, ``--parts`` a sitting of the same
parts alone against the first table's networks, and each part's least figure over every table given
against each sitting's networks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scipy.stats import kendalltau  # noqa: E402

from benchmarks._common import RESULTS, write_result  # noqa: E402
from nasface.arch.budget import LIGHT_TRACK  # noqa: E402
from nasface.arch.space import load_space  # noqa: E402
from nasface.latency.build import sample_networks  # noqa: E402
from nasface.latency.parts import parts  # noqa: E402

REPEAT_FACTOR = 0.87  # the profiler's: a repeated Seesaw block at 56 px ran at 0.90 ms after its first copy's 1.03
LARGE_MAP = 28  # px: where the profiler saw repeats run faster
SMALL_MAP = 7  # px: where it saw an operator cost about 5 microseconds more in a network than timed alone
DEFAULT_TABLE = "latency_table-onnxruntime-fp32-1t-light.jsonl"  # format 3's sitting 2
PREDICTOR = "slope, cost per operator, cost per PReLU element (the predictor)"


def read_table(path: Path) -> tuple[dict, dict, dict]:
    """A table's parts (key -> ms), their operators (key -> count, where it recorded them) and its
    networks (name -> ms); a part or network timed in several sittings at the median of its figures, as
    the predictor reads it."""
    part_figures, nodes, network_figures = defaultdict(list), {}, defaultdict(list)
    for line in path.read_text().splitlines()[1:]:
        row = json.loads(line)
        if row["kind"] == "part":
            part_figures[row["part"]].append(row["ms"])
            if "nodes" in row:
                nodes.setdefault(row["part"], row["nodes"])
        elif row["kind"] == "network":
            network_figures[row["name"]].append(row["ms"])
    median = {key: float(np.median(found)) for key, found in part_figures.items()}
    return median, nodes, {name: float(np.median(found)) for name, found in network_figures.items()}


def prelu_work(keyed_parts: dict) -> dict[str, tuple[int, float]]:
    """The PReLU operators each part's exported graph runs and the elements they take, in millions (no
    lead has one), for one copy of a chained part, as its figure is (results committed before the
    predictor took the PReLU term counted the whole chain's); the elements are what ``nasface.latency.parts.prelu_elements`` counts."""
    import onnx

    from nasface.latency.measure import part_onnx

    work = {}
    for key, part in keyed_parts.items():
        graph = onnx.shape_inference.infer_shapes(onnx.load_from_string(part_onnx(part, chain=1))).graph
        shapes = {value.name: [dim.dim_value for dim in value.type.tensor_type.shape.dim]
                  for value in [*graph.value_info, *graph.input, *graph.output]}
        prelus = [node for node in graph.node if node.op_type == "PRelu"]
        work[key] = (len(prelus), sum(int(np.prod(shapes[node.input[0]])) for node in prelus) / 1e6)
    return work


def features(part_lists: list[list[str]], entries: dict, nodes: dict, prelus: dict) -> dict[str, np.ndarray]:
    """Per network: the sum of its parts, its operators, the share of the sum that repeats an identical
    part before it (all, and at large maps), its PReLUs and their elements (``prelus``: key -> both),
    its FLGC blocks' sum and its operators on small maps."""
    columns = {name: [] for name in ("sum", "operators", "repeats", "large_repeats", "prelus", "prelu_elements",
                                     "flgc", "small_map_operators")}
    for keys in part_lists:
        seen: Counter = Counter()
        repeats = large_repeats = flgc = 0.0
        small_map_operators = 0
        for key in keys:
            spec = json.loads(key)
            flgc += entries[key] if spec.get("family") == "flgc" else 0.0
            small_map_operators += nodes[key] if spec["size"] <= SMALL_MAP else 0
            if seen[key]:
                repeats += entries[key]
                if spec["size"] >= LARGE_MAP:
                    large_repeats += entries[key]
            seen[key] += 1
        columns["sum"].append(sum(entries[key] for key in keys))
        columns["operators"].append(sum(nodes[key] for key in keys))
        columns["repeats"].append(repeats)
        columns["large_repeats"].append(large_repeats)
        columns["prelus"].append(sum(prelus[key][0] for key in keys))
        columns["prelu_elements"].append(sum(prelus[key][1] for key in keys))
        columns["flgc"].append(flgc)
        columns["small_map_operators"].append(small_map_operators)
    return {name: np.array(values, dtype=float) for name, values in columns.items()}


def forms(f: dict[str, np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Each correction form as its columns (an intercept is added to all)."""
    return {
        "line on the sum": [f["sum"]],
        "slope, cost per operator (the predictor's form before its PReLU term)": [f["sum"], f["operators"]],
        "+ repeats fitted": [f["sum"], f["operators"], f["repeats"]],
        f"repeats x {REPEAT_FACTOR} fixed, cost per operator": [f["sum"] - (1 - REPEAT_FACTOR) * f["repeats"],
                                                               f["operators"]],
        f"repeats at >= {LARGE_MAP} px x {REPEAT_FACTOR} fixed, cost per operator":
            [f["sum"] - (1 - REPEAT_FACTOR) * f["large_repeats"], f["operators"]],
        f"+ repeats at >= {LARGE_MAP} px fitted": [f["sum"], f["operators"], f["large_repeats"]],
        "+ FLGC blocks' sum (a per-family slope)": [f["sum"], f["operators"], f["flgc"]],
        f"a cost per operator at maps <= {SMALL_MAP} px and one above": [f["sum"], f["small_map_operators"],
                                                                     f["operators"] - f["small_map_operators"]],
        "slope, cost per PReLU": [f["sum"], f["prelus"]],
        "slope, cost per operator, cost per PReLU": [f["sum"], f["operators"], f["prelus"]],
        PREDICTOR: [f["sum"], f["operators"], f["prelu_elements"]],
    }


def fitted(columns: list[np.ndarray], measured: np.ndarray, fit: np.ndarray, score: np.ndarray) -> np.ndarray:
    """The form fitted on ``fit`` by least squares on relative residuals (as the predictor fits), predicting
    ``score``."""
    design = np.array([*columns, np.ones(len(measured))]).T
    weights = np.linalg.lstsq(design[fit] / measured[fit, None], np.ones(len(fit)), rcond=None)[0]
    return design[score] @ weights


def scored(columns: list[np.ndarray], measured: np.ndarray, splits: list[np.ndarray], fit_size: int) -> dict:
    within, mape, tau = [], [], []
    for order in splits:
        fit, held = order[:fit_size], order[fit_size:]
        predicted = fitted(columns, measured, fit, held)
        errors = predicted / measured[held] - 1
        within.append(np.mean(np.abs(errors) <= 0.10))
        mape.append(np.mean(np.abs(errors)))
        tau.append(kendalltau(predicted, measured[held])[0])
    return {"within_10": float(np.mean(within)), "mape": float(np.mean(mape)), "kendall_tau": float(np.mean(tau)),
            "worst_split_within_10": float(np.min(within))}


def score_all(f: dict, measured: np.ndarray, splits: list[np.ndarray]) -> dict:
    everyone = np.arange(len(measured))
    result = {}
    for name, columns in forms(f).items():
        errors = fitted(columns, measured, everyone, everyone) / measured - 1
        result[name] = {"fit_10": scored(columns, measured, splits, 10),
                        "fit_20": scored(columns, measured, splits, 20),
                        "in_sample": {"within_10": float(np.mean(np.abs(errors) <= 0.10)),
                                      "mape": float(np.mean(np.abs(errors)))}}
    return result


def agreement(part_lists: list[list[str]], nodes: dict, prelus: dict, sittings: list[tuple[dict, np.ndarray]]) -> dict:
    """How far two sittings' figures of the same networks agree: the networks measured whole, the sums of
    their parts, each part (by its size), and the predictor's in-sample residuals (fitted on all the
    networks of each sitting): residuals that agree are the form's or the parts', not noise."""
    (first, first_measured), (second, second_measured) = sittings
    everyone = np.arange(len(first_measured))

    def spread(ratios: np.ndarray) -> float:
        return float(np.std(np.log(ratios / np.median(ratios))))

    residuals = []
    for entries, measured in sittings:
        columns = forms(features(part_lists, entries, nodes, prelus))[PREDICTOR]
        residuals.append(measured / fitted(columns, measured, everyone, everyone) - 1)
    keys = [key for key in first if first[key] > 0 and second.get(key, 0) > 0]
    part_ratios = np.array([first[key] / second[key] for key in keys])
    sizes = np.array([second[key] for key in keys])
    by_size = {f"{low}-{high} ms": spread(part_ratios[(sizes >= low) & (sizes < high)])
               for low, high in ((0.02, 0.1), (0.1, 0.3), (0.3, 1.0), (1.0, 100.0))}
    sums = [np.array([sum(entries[key] for key in keys) for keys in part_lists]) for entries, _ in sittings]
    return {"networks_log_sd": spread(first_measured / second_measured), "part_sums_log_sd": spread(sums[0] / sums[1]),
            "parts_log_sd_by_ms": by_size, "residual_correlation": float(np.corrcoef(*residuals)[0, 1]),
            "residual_sd": [float(np.std(r)) for r in residuals]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", nargs="?", default=str(RESULTS / DEFAULT_TABLE))
    parser.add_argument("--also", help="A second sitting's table of the same networks (its operators may be absent).")
    parser.add_argument("--parts", action="append", default=[],
                        help="Another sitting's table of the same parts only (no networks needed); repeatable.")
    parser.add_argument("--networks", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--splits", type=int, default=200)
    args = parser.parse_args()
    specs = sample_networks(load_space(), args.networks, args.seed, LIGHT_TRACK)
    part_lists = [[part.key for part in parts(spec)] for spec in specs]
    prelus = prelu_work({part.key: part for spec in specs for part in parts(spec)})
    entries, nodes, networks = read_table(Path(args.table))
    rng = np.random.default_rng(0)
    splits = [rng.permutation(len(specs)) for _ in range(args.splits)]
    measured = np.array([networks[spec.name] for spec in specs])

    def score(table: dict, against: np.ndarray) -> dict:
        return score_all(features(part_lists, table, nodes, prelus), against, splits)

    sittings = {"table": score(entries, measured)}
    result = {"table": Path(args.table).name, "also": args.also and Path(args.also).name,
              "parts": [Path(path).name for path in args.parts], "networks": len(specs), "seed": args.seed,
              "splits": args.splits, "sittings": sittings}
    tables = [entries]
    for path in args.parts:
        tables.append(read_table(Path(path))[0])
        sittings[f"parts {Path(path).name}, table's networks"] = score(tables[-1], measured)
    if args.also:
        other, _, other_networks = read_table(Path(args.also))
        other_measured = np.array([other_networks[spec.name] for spec in specs])
        tables.append(other)
        sittings["also"] = score(other, other_measured)
        result["agreement"] = agreement(part_lists, nodes, prelus, [(entries, measured), (other, other_measured)])
    if len(tables) > 1:
        least = {key: min(table[key] for table in tables) for key in entries}
        sittings["least of every table, table's networks"] = score(least, measured)
        if args.also:
            sittings["least of every table, also's networks"] = score(least, other_measured)
    # one results file per table scored (and number of networks); the committed sitting's keeps its name
    table_name = Path(args.table).stem.removeprefix("latency_table-")
    default = Path(args.table).name == DEFAULT_TABLE and args.networks == 40
    path = write_result("latency_forms" if default else f"latency_forms-{table_name}-{len(specs)}", result)
    print(f"wrote {path}")
    for sitting, rows in sittings.items():
        print(sitting)
        for name, row in rows.items():
            print(f"  {name:62s} fit 10: {row['fit_10']['within_10']:6.1%} MAPE {row['fit_10']['mape']:5.1%}  "
                  f"fit 20: {row['fit_20']['within_10']:6.1%} MAPE {row['fit_20']['mape']:5.1%}  "
                  f"all {len(specs)}: {row['in_sample']['within_10']:6.1%} {row['in_sample']['mape']:5.1%}")
    if args.also:
        print(f"between the sittings: {result['agreement']}")


if __name__ == "__main__":
    main()
