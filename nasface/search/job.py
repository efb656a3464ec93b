"""The job a worker runs: train and score one candidate on the proxy (in a Ray worker, or inline)."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from pathlib import Path

from nasface.data import proxy_data
from nasface.core.stages import SILENT, Stages
from nasface.search.config import DataSettings
from nasface.search.live import LiveFile
from nasface.arch.spec import spec_from_dict
from nasface.training.teacher import read_teacher
from nasface.training.proxy import score, score_budgets
from nasface.training.settings import ProxyBudget


@functools.lru_cache(maxsize=4)
def _proxy(data_json: str, seed: int, cache_dir: str):
    """A worker's proxy data, memory-mapped once per process from the cache the driver built."""
    return load_proxy_data(DataSettings(**json.loads(data_json)), seed, cache_dir)


def load_proxy_data(data: DataSettings, seed: int, cache_dir: str | os.PathLike, progress: Stages = SILENT):
    """The proxy training set and verification pairs, decoded once into ``cache_dir`` (a stage of
    ``progress`` while they are)."""
    return proxy_data(data.source, train_identities=data.train_identities,
                      images_per_identity=data.images_per_identity, val_identities=data.val_identities,
                      pairs=data.pairs, seed=seed, cache_dir=Path(cache_dir), bin_path=data.val_bin,
                      progress=progress)


def payload_base(config, teacher) -> dict:
    """What every job of a search shares: plain data, so it travels to a Ray worker as it is."""
    return {"data": json.dumps(dataclasses.asdict(config.data), sort_keys=True), "seed": config.seed,
            "cache_dir": str(config.study_dir / "cache"), "proxy": dataclasses.asdict(config.proxy),
            "teacher_dir": teacher.folder if teacher is not None else None}


def run_candidate(payload: dict) -> dict:
    """Train and score one candidate: ``payload_base`` plus its ``spec`` (and, at a rung of successive
    halving, that rung's ``proxy``, the checkpoint it ``resume_from`` and the one to ``save_to``), and
    the ``live_file`` where it keeps how far it is for the driver to show."""
    budget = ProxyBudget(**payload["proxy"])
    live = LiveFile(payload["live_file"], budget.steps) if payload.get("live_file") else None
    on_step = None if live is None else live.step
    data = _proxy(payload["data"], payload["seed"], payload["cache_dir"])
    teacher = read_teacher(payload["teacher_dir"]) if payload["teacher_dir"] else None
    spec = spec_from_dict(payload["spec"])
    if payload.get("resume_from") is None and payload.get("save_to") is None:
        return score(spec, data.train, data.pairs, budget, teacher, on_step=on_step)
    # successive halving: continue the rung below's run, and keep this one's for the rung above
    return score_budgets(spec, data.train, data.pairs, budget, [budget.steps], teacher,
                         resume_from=payload.get("resume_from"), save_to=payload.get("save_to"),
                         on_step=on_step)[0]
