"""The most accurate network, or the largest the proxy cannot tell from it? Both picks, judged twice.

    python benchmarks/capacity_pick.py

No training: every figure is read from committed logs.  ``--trial best`` exports the most accurate
trial; ``--trial largest-within-noise`` the one with the most FLOPs among those within
``1.96 * sqrt(2) * seed noise`` of it (``nasface.search.results.largest_within_noise_of``).

- **Against published full training**: in each group of a ``validate-*`` log (the published
  networks of one training recipe, each network's proxy accuracy the mean over its seeds), which
  network each rule picks, and its published score against the group's best; the seed noise is the
  log's own (what ``nasface export`` reads from ``validate.json``).
- **On the task** (the fidelity studies, 43 architectures per source at seed 0): under FLOPs budgets
  of 250M, 500M and 1G, each rule's pick, its share of the budget, and its accuracy after 8x the
  proxy's training (960 steps) against the best any architecture within the budget reaches there.
  The seed noise is the validation's of the same source and proxy, and also the fidelity study's
  own (its 12 architectures trained with a second seed, at the proxy's 120 steps).

Writes results/capacity_pick.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, write_result  # noqa: E402
from nasface.search.results import largest_within_noise_of  # noqa: E402

VALIDATE_LOGS = ("validate-synthetic", "validate-synthetic-noteacher", "validate-orl",
                 "validate-ladders-moredata-480")
FIDELITY = {"fidelity-synthetic": "validate-synthetic", "fidelity-orl": "validate-orl"}
BUDGETS = (250e6, 500e6, 1e9)
PROXY_STEPS, REFERENCE_STEPS = "120", "960"


def published_picks(folder: str) -> dict | None:
    """Per group of a validation: the published score of each rule's pick against the group's best."""
    path = RESULTS / folder / "validate.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    noise = report["overall"]["seed_noise"]["std_points_mean"]
    groups = []
    for group in report["groups"]:
        trained = [n for n in group["networks"] if n["proxy"] is not None]
        if len(trained) < 2 or noise is None:
            continue
        accuracy, flops = [n["proxy"] for n in trained], [n["flops"] for n in trained]
        best = trained[int(np.argmax(accuracy))]  # of equal accuracy the first: no tie in these logs
        largest = trained[largest_within_noise_of(accuracy, flops, noise)]
        top = max(n["published"] for n in trained)
        groups.append({"group": group["id"], "networks": len(trained), "published_best": top,
                       "most_accurate": {"preset": best["preset"], "published": best["published"],
                                         "flops": best["flops"]},
                       "largest_within_noise": {"preset": largest["preset"], "published": largest["published"],
                                                "flops": largest["flops"]}})
    return {"seed_noise_points": noise, "seeds": report["seeds"], "runs": report["runs_logged"], "groups": groups,
            "shortfall_points": {rule: float(np.sum([g["published_best"] - g[rule]["published"] for g in groups]))
                                 for rule in ("most_accurate", "largest_within_noise")}}


def fidelity_archs(folder: str) -> tuple[list[dict], float]:
    """The seed-0 architectures of a fidelity study, and its proxy's seed noise (points) from the
    architectures it trained twice."""
    report = json.loads((RESULTS / folder / "fidelity.json").read_text())
    by_arch: dict[str, dict] = {}
    for row in report["table"]:
        by_arch.setdefault(row["arch"], {})[row["seed"]] = row
    archs = [seeds[0] for seeds in by_arch.values()
             if 0 in seeds and None not in (seeds[0]["accuracy"].get(PROXY_STEPS), seeds[0]["accuracy"].get(REFERENCE_STEPS))]
    gaps = [seeds[0]["accuracy"][PROXY_STEPS] - seeds[1]["accuracy"][PROXY_STEPS] for seeds in by_arch.values()
            if 0 in seeds and 1 in seeds and seeds[1]["accuracy"].get(PROXY_STEPS) is not None]
    return archs, 100 * float(np.sqrt(np.mean(np.square(gaps)) / 2))  # sd of one run from paired differences


def on_task(folder: str, noises: dict) -> dict:
    archs, own_noise = fidelity_archs(folder)
    noises = {**noises, "fidelity study's own": own_noise}
    budgets = {}
    for budget in BUDGETS:
        fits = [a for a in archs if a["flops"] <= budget]
        accuracy, flops = [a["accuracy"][PROXY_STEPS] for a in fits], [a["flops"] for a in fits]
        reference_best = max(a["accuracy"][REFERENCE_STEPS] for a in fits)

        def described(arch: dict) -> dict:
            return {"arch": arch["arch"], "flops": arch["flops"], "budget_share": arch["flops"] / budget,
                    "proxy": arch["accuracy"][PROXY_STEPS], "reference": arch["accuracy"][REFERENCE_STEPS],
                    "reference_regret_points": 100 * (reference_best - arch["accuracy"][REFERENCE_STEPS])}

        budgets[f"{budget / 1e6:.0f}M"] = {
            "architectures": len(fits), "largest_flops": max(flops),
            "most_accurate": described(fits[int(np.argmax(accuracy))]),
            **{f"largest_within_noise ({name}, {noise:.2f} points)":
               described(fits[largest_within_noise_of(accuracy, flops, noise)]) for name, noise in noises.items()}}
    return {"architectures": len(archs), "seed_noise_points": noises, "budgets": budgets}


def main() -> None:
    published = {folder: found for folder in VALIDATE_LOGS if (found := published_picks(folder)) is not None}
    task = {}
    for folder, validation in FIDELITY.items():
        noise = (published.get(validation) or {}).get("seed_noise_points")
        task[folder] = on_task(folder, {} if noise is None else {"validation's": noise})
    print("Against published full training (each group's picks; published score, and the group's best):")
    for folder, found in published.items():
        print(f"  {folder} (seeds {found['seeds']}, {found['runs']} runs, seed noise "
              f"{found['seed_noise_points']:.2f} points):")
        for g in found["groups"]:
            print(f"    {g['group']:<26} best {g['published_best']:6.2f} | most accurate "
                  f"{g['most_accurate']['preset']} {g['most_accurate']['published']:.2f} | largest within noise "
                  f"{g['largest_within_noise']['preset']} {g['largest_within_noise']['published']:.2f}")
        print(f"    points short of each group's best, summed: most accurate "
              f"{found['shortfall_points']['most_accurate']:.2f}, largest within noise "
              f"{found['shortfall_points']['largest_within_noise']:.2f}")
    print("On the task (fidelity studies, seed 0; regret: points of 960-step accuracy below the budget's best):")
    for folder, found in task.items():
        print(f"  {folder} ({found['architectures']} architectures):")
        for budget, row in found["budgets"].items():
            for rule, pick in row.items():
                if isinstance(pick, dict):
                    print(f"    {budget:>5} {rule:<52} {pick['arch']} {pick['flops'] / 1e6:6.0f}M "
                          f"({100 * pick['budget_share']:3.0f} % of the budget) proxy {pick['proxy']:.4f} "
                          f"960 steps {pick['reference']:.4f} (regret {pick['reference_regret_points']:.2f})")
    write_result("capacity_pick", {"published": published, "on_task": task})


if __name__ == "__main__":
    main()
