"""Accuracy blended with ZiCo: more published pairs in order, at what cost to the fidelity study?

    python benchmarks/blend_validity.py

No training: both sides are read from committed logs, where every proxy run records its accuracy
and its ZiCo at initialisation.  The blend of a set of networks is ``z(accuracy) + w * z(zico)``,
each standardised over the set being ranked (one validate log's networks, or one fidelity study's
architectures); w = 0 is today's proxy, ``inf`` ZiCo alone.

- **Published pairs**: each ``validate-*`` log's seed-0 runs (every network has one), counted
  against nasface's published table as ``nasface validate`` counts them.
- **Fidelity**: each ``fidelity-<source>`` log's seed-0 architectures, the blend at the proxy's
  120 steps against the 8x-longer (960-step) accuracy: Kendall tau overall and its mean within
  FLOPs terciles (the issue's fidelity goals: tau >= 0.7 and above FLOPs alone within terciles).

w is chosen on one group only (SeesawFaceNets, the issue's ladder, in validate-ladders-synthetic:
the smallest w that orders the most of its pairs) and judged on everything else, so the other
groups, sources and the fidelity studies are held out from the choice.  Writes
results/blend_validity.json.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, write_result  # noqa: E402
from nasface.validity.published import load_published  # noqa: E402
from nasface.validity.validate import LOG, Buildable, analyse  # noqa: E402

WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, math.inf)
CHOOSE_ON = ("validate-ladders-synthetic", "seesawfacenets")
VALIDATE_LOGS = ("validate-ladders-synthetic", "validate-ladders-synthetic-hard", "validate-synthetic", "validate-orl")
FIDELITY_LOGS = ("fidelity-synthetic", "fidelity-orl")
PROXY_STEPS, REFERENCE_STEPS, SEED = 120, 960, 0


def standardised(values) -> np.ndarray:
    values = np.asarray(values, float)
    spread = values.std()
    return np.zeros_like(values) if spread == 0 else (values - values.mean()) / spread


def blend(accuracy, zico, weight: float) -> np.ndarray:
    if math.isinf(weight):
        return standardised(zico)
    return standardised(accuracy) + weight * standardised(zico)


def rows_of(folder: str) -> list[dict]:
    path = RESULTS / folder / LOG
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def published_pairs(table, folder: str) -> dict:
    """For each weight: the pairs the blend orders, overall and per group, in one validate log's seed-0 runs."""
    rows = [r for r in rows_of(folder) if r["seed"] == SEED and r["result"]["status"] == "ok"]
    networks = [Buildable(r["preset"], None, r["flops"], r["params"], None) for r in rows]
    accuracy = [r["result"]["accuracy"] for r in rows]
    zico = [r["result"]["signals"]["zico"] for r in rows]
    found = {}
    for weight in WEIGHTS:
        scores = blend(accuracy, zico, weight)
        runs = {(r["preset"], SEED): {"result": {"status": "ok", "blend": float(s)}} for r, s in zip(rows, scores)}
        report = analyse(table, networks, [SEED], runs, score="blend")
        found[str(weight)] = {
            "overall": _pairs(report["overall"]["proxy"]),
            "groups": {g["id"]: _pairs(g["proxy"]) for g in report["groups"] if g["trained"] >= 2 and g["proxy"]["counted"]}}
        found.setdefault("flops_alone", _pairs(report["overall"]["flops"]))
        found.setdefault("params_alone", _pairs(report["overall"]["params"]))
    found["networks"] = len(rows)
    return found


def fidelity(folder: str) -> dict:
    """For each weight: Kendall tau of the blend at the proxy's steps with the reference accuracy."""
    archs = []
    for row in rows_of(folder):
        if "results" not in row:  # a yardstick's fill-in line: no run of its own
            continue
        at = {r["steps"]: r for r in row["results"] if r["status"] == "ok"}
        if row["seed"] == SEED and PROXY_STEPS in at and REFERENCE_STEPS in at:
            archs.append((at[PROXY_STEPS]["accuracy"], at[PROXY_STEPS]["signals"]["zico"],
                          at[REFERENCE_STEPS]["accuracy"], row["cost"]["flops"]))
    accuracy, zico, reference, flops = (np.array(column, float) for column in zip(*archs))
    terciles = np.array_split(np.argsort(flops, kind="stable"), 3)

    def taus(scores) -> dict:
        within = [kendalltau(scores[t], reference[t])[0] for t in terciles]
        return {"tau": float(kendalltau(scores, reference)[0]), "tercile_tau_mean": float(np.mean(within))}

    return {"architectures": len(archs), "flops_alone": taus(np.log10(flops)),
            **{str(w): taus(blend(accuracy, zico, w)) for w in WEIGHTS}}


def _pairs(entry: dict) -> dict:
    return {"ordered": entry["ordered"], "counted": entry["counted"], "tau": entry["tau"]}


def show(title: str, found_by_log: dict, cell, about) -> None:
    """One line per log: each weight's figure (``cell``), then what the log is (``about``)."""
    print(title)
    for name, found in found_by_log.items():
        print(f"  {name} ({about(found)}): " + "  ".join(f"w={w}: {cell(found[str(w)])}" for w in WEIGHTS))


def main() -> None:
    table = load_published()
    pairs = {folder: published_pairs(table, folder) for folder in VALIDATE_LOGS}
    folder, group = CHOOSE_ON
    on = {w: pairs[folder][str(w)]["groups"][group]["ordered"] for w in WEIGHTS}
    chosen = min((w for w in WEIGHTS if on[w] == max(on.values())), key=lambda w: w)
    fidelities = {f: fidelity(f) for f in FIDELITY_LOGS}
    print(f"w chosen on {group} in {folder}: {chosen} (orders {on[chosen]} of its "
          f"{pairs[folder]['0.0']['groups'][group]['counted']} pairs; w=0: {on[0.0]})")
    show("published pairs ordered, seed 0 (held out: every group but the one w is chosen on)", pairs,
         lambda cell: f"{cell['overall']['ordered']}/{cell['overall']['counted']}",
         lambda found: f"{found['networks']} networks; FLOPs alone {found['flops_alone']['ordered']}, "
                       f"parameters alone {found['params_alone']['ordered']}")
    show("fidelity: tau with the 960-step reference (mean within FLOPs terciles)", fidelities,
         lambda cell: f"{cell['tau']:+.2f} ({cell['tercile_tau_mean']:+.2f})",
         lambda found: f"{found['architectures']} architectures; more FLOPs higher {found['flops_alone']['tau']:+.2f}")
    path = write_result("blend_validity", {"weights": [str(w) for w in WEIGHTS], "chosen_on": list(CHOOSE_ON),
                                           "chosen_weight": str(chosen), "published_pairs": pairs,
                                           "fidelity": fidelities})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
