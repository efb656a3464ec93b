"""A finished or running study read back: open it, its settings, its trials as a table, its front.

``nasface report``, ``nasface export``, the latency front and notebooks read a study through these;
none of them needs the page (``nasface.ui.study_page``) or plotly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from nasface.arch.space import SECTIONS, knob_summary
from nasface.core.errors import NasfaceError
from nasface.search.latency import measured_latency
from nasface.search.record import TRAINED, read, records, superseded
from nasface.search.rungs import nondominated_fronts
from nasface.training.signals import SEARCH_SIGNALS


STATES = optuna.trial.TrialState


def open_study(name: str, studies_dir: str | os.PathLike = "studies", storage: str | None = None) -> optuna.Study:
    """Load an existing study (NasfaceError when there is none by that name)."""
    if storage is None:
        path = Path(studies_dir) / name / "study.db"
        if not path.is_file():
            raise NasfaceError(f"no study {name!r} in {studies_dir} (no {path}); give --studies-dir (or --storage) "
                               f"where the search kept it, or run nasface search --study {name}")
        storage = f"sqlite:///{path.as_posix()}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise NasfaceError(f"the storage {storage} holds no study named {name!r}") from None


def study_settings(study: optuna.Study) -> dict:
    return study.user_attrs.get("nasface_config", {})


def study_frame(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: state, kind, baseline, accuracy, costs, failure reason, Pareto flag, and its
    choices by knob (``nasface.arch.space.knob_summary``: columns such as ``stages.width``)."""
    pareto = {t.number for t in pareto_front(study)}
    measured = measured_latency(study)
    rows = []
    everything = records(study)
    history = superseded(everything)
    for facts in everything:
        cost = facts.cost or {}
        rows.append({
            "number": facts.number,
            "state": facts.state,
            "kind": facts.kind,
            "baseline": facts.baseline or "",
            "accuracy": facts.accuracy,
            "tar_at_far": (facts.metrics or {}).get("tar_at_far"),
            "flops": cost.get("flops"),
            "macs": cost.get("macs"),
            "lfr_flops": cost.get("lfr_flops"),
            "params": cost.get("params"),
            "weight_bytes": cost.get("weight_bytes"),
            "activation_bytes": cost.get("activation_bytes"),
            "latency_ms": cost.get("latency_ms"),  # predicted (nasface.latency), with a --latency target
            "latency_measured_ms": measured.get(facts.number, {}).get("ms"),  # the final front's, measured
            "feasible": facts.feasible,
            "pareto": facts.number in pareto,
            "fail_reason": facts.reason or "",
            "over_budget": facts.over_budget or "",
            "wall_seconds": facts.wall_seconds,
            # successive halving: the rung it trained at, the run it continued, and whether a higher
            # rung of the same candidate has finished (then this row is history, not a result)
            "rung": facts.rung,
            "promoted_from": facts.promoted_from,
            "superseded": facts.number in history,
            # every ranking signal the candidate's run recorded (nasface.training.signals), for re-ranking
            **{f"signal_{name}": facts.signals.get(name) for name in SEARCH_SIGNALS if name not in ("accuracy", "tar_at_far")},
            **knob_summary(facts.params),
        })
    columns = ["number", "state", "kind", "baseline", "accuracy", "tar_at_far", "flops", "macs", "lfr_flops",
               "params", "weight_bytes", "activation_bytes", "latency_ms", "latency_measured_ms", "feasible", "pareto", "fail_reason", "over_budget",
               "wall_seconds", "rung", "promoted_from", "superseded", *(f"signal_{name}" for name in SEARCH_SIGNALS if name not in ("accuracy", "tar_at_far"))]
    frame = pd.DataFrame(rows)
    if frame.empty:  # a study with no trial yet: the same columns, the flags as booleans (for masks)
        frame = pd.DataFrame(columns=columns).astype({"feasible": bool, "pareto": bool, "superseded": bool})
    return frame


def knob_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that are knobs of the space (named by its sections: ``stages.width``)."""
    return [column for column in frame.columns if column.split(".")[0] in SECTIONS]


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Feasible Pareto-optimal trials; empty when no trial is feasible (optuna issue 6242).

    With successive halving each candidate stands at the highest rung it has finished: its lower
    rungs' trials are history, and the front is taken over the candidates as they stand.
    """
    if not study_settings(study).get("rungs"):
        try:
            return [t for t in study.best_trials if read(t).trained]
        except ValueError:
            return []
    everything = records(study)
    history = superseded(everything)
    standing = [facts for facts in everything if facts.trained and facts.feasible and facts.values is not None
                and facts.number not in history]
    if not standing:
        return []
    signs = [1.0 if d == optuna.study.StudyDirection.MAXIMIZE else -1.0 for d in study.directions]
    fronts = nondominated_fronts(np.array([[sign * v for sign, v in zip(signs, facts.values)] for facts in standing]))
    return [study.trials[facts.number] for facts, front in zip(standing, fronts) if front == 0]


# Two networks' proxy scores, each with seed noise sigma, differ by less than this many sigma * sqrt(2)
# 95 % of the time when the networks are equally good: a smaller gap is one the proxy cannot call.
NOISE_Z = 1.96


def _usable(study: optuna.Study) -> pd.DataFrame:
    frame = study_frame(study)
    usable = frame[frame.kind.isin(TRAINED) & frame.feasible & frame.accuracy.notna()]
    if usable.empty:
        raise NasfaceError("no trained trial within the budgets yet; let the search run longer")
    return usable


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The most accurate trained trial within the budgets (baselines over budget excluded)."""
    usable = _usable(study)
    number = int(usable.sort_values(["accuracy", "flops"], ascending=[False, True]).iloc[0]["number"])
    return study.trials[number]


def within_noise_margin(seed_noise_points: float) -> float:
    """How far below the best a proxy accuracy (a fraction) can lie and still not be told from it."""
    return NOISE_Z * float(np.sqrt(2.0)) * seed_noise_points / 100.0


def largest_within_noise(study: optuna.Study, seed_noise_points: float) -> optuna.trial.FrozenTrial:
    """The trained trial within the budgets with the most FLOPs among those whose proxy accuracy the
    proxy cannot tell from the best's (``seed_noise_points``: a network's accuracy's sd over seeds, in
    points, as ``nasface validate`` measures it).  Where the proxy cannot choose, size decides, as it
    mostly does at full scale: within a training recipe, published larger networks score higher in
    most pairs (``nasface.resources.published``), which a short proxy on a small task does not show."""
    usable = _usable(study)
    chosen = largest_within_noise_of(usable.accuracy.to_numpy(), usable.flops.to_numpy(), seed_noise_points)
    return study.trials[int(usable.number.iloc[chosen])]


def largest_within_noise_of(accuracy, flops, seed_noise_points: float) -> int:
    """The index of the largest network (most FLOPs; of equal FLOPs the more accurate) whose accuracy
    (a fraction) is within ``within_noise_margin`` of the best's."""
    if not seed_noise_points >= 0:
        raise NasfaceError(f"seed noise {seed_noise_points!r} points: it must be a number of points, 0 or more")
    accuracy, flops = np.asarray(accuracy, float), np.asarray(flops, float)
    close = np.flatnonzero(accuracy >= accuracy.max() - within_noise_margin(seed_noise_points) - 1e-12)
    return int(max(close, key=lambda i: (flops[i], accuracy[i])))
