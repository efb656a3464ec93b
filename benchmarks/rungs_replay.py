"""Successive halving's rungs against the fidelity study's budgets, on the real study.

    python benchmarks/rungs_replay.py [--log benchmarks/results/fidelity-synthetic] [--archs 5 | --arch NAME ...]

Takes the smallest architectures of a fidelity study's log (seed 0) and trains each the way a
search with ``--rungs`` at the log's budgets (1/4x, 1x and 4x the proxy, eta 4) and
``--proxy-warmup`` set to the proxy's own trains it: the search worker's own job
(``nasface.search.job.run_candidate``), rung after rung, each promotion continuing the run below.
Each rung's accuracy and final loss are compared with what the log holds for that budget (and the
teacher with the log's ``teacher_digest``, where the run recorded one).  On
the machine that logged a run (the same floating-point kernels, the log's thread count) they are
the same to the last bit: a rung search there reproduces the fidelity study's runs.  A run logged
on another machine differs, as a run with another seed does, and says how far a fidelity study's
figures carry to another machine run for run.  The study's data and teacher are the log's cached
ones (``<log>/cache``; a teacher missing there is trained again, on this machine).  Writes
``benchmarks/results/rungs_replay.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks._common import RESULTS, machine, write_atomic  # noqa: E402
from nasface.fidelity import LOG, FidelitySettings, teacher_digest  # noqa: E402
from nasface.search import config_from_options, load_proxy_data  # noqa: E402
from nasface.search.job import payload_base, run_candidate  # noqa: E402
from nasface.training.teacher import teacher_targets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", type=Path, default=RESULTS / "fidelity-synthetic",
                        help="a fidelity study's output folder (log.jsonl and cache/)")
    parser.add_argument("--config", default="studies/lfr-light.yaml", help="the study file the fidelity study measured")
    parser.add_argument("--archs", type=int, default=5, help="how many of the smallest architectures")
    parser.add_argument("--arch", action="append", default=[], help="these architectures instead (repeatable)")
    parser.add_argument("--out", type=Path, default=RESULTS / "rungs_replay.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # nasface's messages (the teacher's)

    rows = [json.loads(line) for line in (args.log / LOG).read_text().splitlines()]
    plain = config_from_options({}, args.config)
    proxy = FidelitySettings(search=plain).proxy  # the warm-up the study pinned for every budget
    rungs = [proxy.steps // 4, proxy.steps, proxy.steps * 4]
    with tempfile.TemporaryDirectory() as scratch:
        halving = config_from_options({"rungs": ",".join(map(str, rungs)), "eta": 4,
                                       "proxy_warmup": proxy.schedule.warmup_steps, "studies_dir": scratch}, args.config)
        runs = sorted((row for row in rows if row.get("seed") == 0 and "results" in row
                       and all(r["status"] == "ok" for r in row["results"])), key=lambda row: row["cost"]["flops"])
        torch.set_num_threads(runs[0]["threads"])
        data = load_proxy_data(halving.data, halving.seed, args.log / "cache")
        teacher = teacher_targets(halving.teacher, data, args.log / "cache", plain.proxy,
                                  teacher_spec=halving.teacher_spec, teacher_steps=halving.teacher_steps)
        base = {**payload_base(halving, teacher), "cache_dir": str(args.log / "cache")}
        digest = teacher_digest(teacher)

        def same_teacher(row: dict) -> bool | None:  # None: logged before runs recorded their teacher's digest
            return None if row.get("teacher_digest") is None else row["teacher_digest"] == digest

        checked = []
        for row in [row for row in runs if row["arch"] in args.arch] if args.arch else runs[:args.archs]:
            logged = {r["steps"]: r for r in row["results"]}
            payload, resume_from = {**base, "spec": row["spec"]}, None
            for rung, steps in enumerate(rungs):
                save_to = str(Path(scratch) / f"{row['arch']}-{rung}.pt") if rung < halving.top_rung else None
                began = time.process_time()
                result = run_candidate({**payload, "proxy": dataclasses.asdict(halving.rung_budget(rung)),
                                        "resume_from": resume_from, "save_to": save_to})
                resume_from = save_to
                same = all(result[field] == logged[steps][field] for field in ("accuracy", "final_loss"))
                checked.append({"arch": row["arch"], "flops": row["cost"]["flops"], "rung": rung, "steps": steps,
                                "same_teacher": same_teacher(row),
                                "accuracy": result["accuracy"], "logged_accuracy": logged[steps]["accuracy"],
                                "final_loss": result["final_loss"], "logged_final_loss": logged[steps]["final_loss"],
                                "same": same, "cpu_seconds": time.process_time() - began})
                print(f"{row['arch']} rung {rung} ({steps} steps): accuracy {result['accuracy']:.4f}, logged "
                      f"{logged[steps]['accuracy']:.4f}: {'the same' if same else 'DIFFERENT'}")
    write_atomic(args.out, json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": machine(),
                                       "threads": torch.get_num_threads(), "log": str(args.log.name),
                                       "rungs": rungs, "proxy_warmup": proxy.schedule.warmup_steps,
                                       "runs": checked, "all_the_same": all(c["same"] for c in checked)},
                                      indent=2) + "\n")
    print(f"{sum(c['same'] for c in checked)} of {len(checked)} rung evaluations the same as the log; wrote {args.out}")


if __name__ == "__main__":
    main()
