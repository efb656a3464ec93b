"""Successive halving end to end: real searches with and without ``--rungs`` at an equal time limit.

    python benchmarks/multifidelity_search.py [--minutes 10] [--seeds 3] [--rungs 40,120] [--quick]

For each seed, two real ``nasface search`` runs (the README study's data, teacher and proxy
settings; inline executor, one torch thread, no baselines) get the same wall-clock limit:

- ``plain``: every candidate trains the proxy (the top rung's steps: 120 by default, the README
  study's proxy);
- ``rungs``: asynchronous successive halving over ``--rungs`` with ``--eta`` (by default 40 then
  120 steps, eta 3: what the README study would do with rungs).

The data and the teacher are cached before a search starts, so the limit is the candidates' time.

Reported per search: candidates sampled, evaluations per rung, promotions, and its best feasible
candidate (the highest proxy accuracy among the candidates as they stand, at the highest rung each
reached) **trained again at the reference budget** (``--reference-factor`` times the top rung, 8 by
default) and verified, so the two searches are judged by what the longer training says, not by
their own proxies.  Each finished search and each reference score is a line of a resumable log
(``multifidelity_search.jsonl``): a killed run continues where it stopped.  Several processes may
share the log (one per core), each search and each reference score taken by one of them.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks._common import RowLog, result_path, write_result  # noqa: E402
from nasface.ui.progress import Reporter  # noqa: E402
from nasface.search.results import pareto_front  # noqa: E402
from nasface.search import config_from_options, load_proxy_data, record, run_search  # noqa: E402
from nasface.arch.spec import spec_from_dict  # noqa: E402
from nasface.training.teacher import teacher_targets  # noqa: E402
from nasface.training.proxy import score  # noqa: E402

NAME = "multifidelity_search"
UNCAPPED = 1_000_000  # candidates: far more than any search here can train in its time
STUDY_FILE = Path(__file__).resolve().parents[1] / "studies" / "lfr-light.yaml"
QUICK = {"train_identities": 12, "images_per_identity": 4, "val_identities": 8, "pairs": 80, "proxy_batch": 8,
         "resolution": 32, "teacher": "none"}


def search_settings(mode: str, seed: int, args) -> dict:
    # trials: no cap of candidates, only the time limit (a flag given as None would leave the study
    # file's trials: 6 in force)
    flags = {"study": f"{mode}-seed{seed}", "studies_dir": str(args.studies), "trials": UNCAPPED,
             "timeout": f"{args.minutes * 60:.0f}s", "executor": "inline", "baselines": False, "seed": seed,
             "device": "cpu", **(QUICK if args.quick else {})}
    if mode == "rungs":
        flags.update(rungs=args.rungs, eta=args.eta)
    else:
        flags["proxy_steps"] = int(args.rungs.split(",")[-1])
    return flags


def best_standing(study) -> record.TrialRecord | None:
    """The most accurate feasible candidate as it stands (its highest rung), by the search's own proxy."""
    front = [record.read(t) for t in pareto_front(study)]
    return max(front, key=lambda facts: facts.accuracy, default=None)


def run_key(flags: dict) -> str:
    # the searches' folder is scratch space: a run continued elsewhere is the same run
    return hashlib.sha256(json.dumps({k: v for k, v in flags.items() if k != "studies_dir"},
                                     sort_keys=True).encode()).hexdigest()[:16]


def run_one(mode: str, seed: int, args, log: RowLog) -> None:
    """The search and its pick's reference score, each unless logged or taken by another process
    sharing the log (one per core: each search is timed alone on its core)."""
    flags = search_settings(mode, seed, args)
    key = run_key(flags)
    row = log.get(key)
    if row is None:
        if not log.claim(key):
            return
        config = config_from_options(flags, STUDY_FILE)
        # a search cut off by a kill starts again from nothing: resumed, it would get more than its time
        shutil.rmtree(config.study_dir, ignore_errors=True)
        share_caches(config.study_dir, args.studies / "cache")
        search_inputs(config)  # data and teacher cached first: the time limit is the search's alone
        load_before = os.getloadavg()[0]
        started = time.time()
        study = run_search(config, Reporter("quiet"))
        everything = record.records(study)
        best = best_standing(study)
        trained = [facts for facts in everything if facts.kind in ("candidate", "failed")]
        row = log.add(key, {
            "mode": mode, "seed": seed, "flags": flags, "wall_seconds": time.time() - started,
            "load_average": [load_before, os.getloadavg()[0]],
            "sampled": record.candidates_counted(study),
            "evaluations_per_rung": {str(r): sum(1 for f in trained if (f.rung or 0) == r)
                                     for r in sorted({f.rung or 0 for f in trained})},
            "promotions": sum(1 for facts in everything if facts.promoted),
            "best": None if best is None else {"trial": best.number, "rung": best.rung, "accuracy": best.accuracy,
                                               "spec": best.spec, "flops": best.cost["flops"]}})
    scoring = f"{key}/reference"
    if row["best"] is None or "reference_accuracy" in row["best"] or not log.claim(scoring):
        return
    try:
        row = log.get(key)  # claim() re-read the log: another process may have scored it meanwhile
        if "reference_accuracy" not in row["best"]:
            reference = scored_before(log, row) or reference_score(flags, row["best"]["spec"], args)
            log.add(key, {**{k: v for k, v in row.items() if k != "key"}, "best": {**row["best"], **reference}})
    finally:
        log.release(scoring)


# what decides a pick's reference score besides its spec: the recipe, not the search's name or limits
NOT_RECIPE = ("study", "studies_dir", "trials", "timeout")


def scored_before(log: RowLog, row: dict) -> dict | None:
    """The reference score of the same spec under the same recipe, if a logged search's pick had it:
    training is deterministic on a CPU, so it is that score (the row says where it came from)."""
    recipe = {k: v for k, v in row["flags"].items() if k not in NOT_RECIPE}
    for other in log.rows.values():
        best = other.get("best") or {}
        if ("reference_accuracy" in best and best["spec"] == row["best"]["spec"]
                and {k: v for k, v in other["flags"].items() if k not in NOT_RECIPE} == recipe):
            return {**{k: v for k, v in best.items() if k.startswith("reference_")},
                    "reference_reused_from": other["key"]}
    return None


def share_caches(study_dir: Path, shared: Path) -> None:
    """One cache folder for every search: its entries are named by what they hold (the data and its
    seed, the teacher), so the two searches of a seed render the faces and train the teacher once."""
    shared.mkdir(parents=True, exist_ok=True)
    cache = study_dir / "cache"
    if not cache.exists():
        study_dir.mkdir(parents=True, exist_ok=True)
        cache.symlink_to(shared.resolve(), target_is_directory=True)


def search_inputs(config):
    """The search's proxy data and teacher targets, from (or into) its own caches."""
    cache = config.study_dir / "cache"
    data = load_proxy_data(config.data, config.seed, cache)
    teacher = teacher_targets(config.teacher, data, cache, config.proxy, teacher_spec=config.teacher_spec,
                              teacher_steps=config.teacher_steps)
    return data, teacher


def reference_score(flags: dict, spec: dict, args) -> dict:
    """Train the search's pick at the reference budget, with the search's data, teacher and proxy recipe."""
    config = config_from_options(flags, STUDY_FILE)
    data, teacher = search_inputs(config)
    top = config.rung_budget(config.top_rung)
    budget = dataclasses.replace(top, steps=top.steps * args.reference_factor)
    result = score(spec_from_dict(spec), data.train, data.pairs, budget, teacher, signals=False)
    return {"reference_steps": budget.steps, "reference_accuracy": result.get("accuracy"),
            "reference_status": result["status"], "reference_cpu_seconds": result.get("cpu_seconds")}


def summarise(rows: list[dict]) -> dict:
    out = {}
    for mode in ("plain", "rungs"):
        mine = [r for r in rows if r["mode"] == mode]
        picks = [r["best"]["reference_accuracy"] for r in mine if r["best"] and "reference_accuracy" in r["best"]]
        out[mode] = {"searches": len(mine), "sampled": [r["sampled"] for r in mine],
                     "promotions": [r["promotions"] for r in mine],
                     "evaluations_per_rung": [r["evaluations_per_rung"] for r in mine],
                     "best_reference_accuracy": picks,
                     "median_best_reference_accuracy": statistics.median(picks) if picks else None}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock limit of each search")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rungs", default="40,120", help="steps per rung; the plain search trains the top one")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--reference-factor", type=int, default=8, help="reference budget, times the top rung")
    parser.add_argument("--quick", action="store_true", help="tiny data and proxy (a test of the benchmark)")
    parser.add_argument("--studies", type=Path, default=None,
                        help="where the searches' studies and their shared caches live (default: a scratch folder; "
                             "name one to keep the caches for a rerun)")
    parser.add_argument("--out", default=None, help="result JSON (default benchmarks/results/)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # nasface's messages (the teacher's)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        args.studies = args.studies or Path(scratch)
        log = RowLog(result_path(NAME, args.out).with_suffix(".jsonl"))
        runs = [(mode, seed) for seed in range(args.seeds) for mode in ("plain", "rungs")]
        for mode, seed in runs:
            run_one(mode, seed, args, log)
    log.refresh()
    rows = [row for row in (log.get(run_key(search_settings(m, s, args))) for m, s in runs) if row is not None]
    if len(rows) < len(runs) or any(row["best"] and "reference_accuracy" not in row["best"] for row in rows):
        print("other processes sharing the log are still running searches or reference scores: the last "
              "one to finish writes the result")
        return
    path = write_result(NAME, {"settings": {k: str(v) for k, v in vars(args).items()}, "runs": rows,
                               "summary": summarise(rows)}, args.out)
    print(json.dumps(summarise(rows), indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
