"""What the driver writes to the study under the study lock, beside the trials it tells: the study's
settings (refused when they differ), the seed networks enqueued as baselines, and successive
halving's promotions."""

from __future__ import annotations

import dataclasses
import json
import logging

import optuna

from nasface.arch.space import SearchSpace
from nasface.arch.spec import load_spec, preset_names
from nasface.core.errors import NasfaceError
from nasface.search import record
from nasface.search.config import OBJECTIVES, SearchConfig
from nasface.search.rungs import RungResult, promotions

logger = logging.getLogger(__name__)


def check_settings(study: optuna.Study, config: SearchConfig) -> int:
    """Record the study's settings (or refuse other ones); return how many drivers started it before."""
    fingerprint = json.loads(json.dumps(config.fingerprint()))
    saved = study.user_attrs.get("nasface_config")
    if saved is None:
        study.set_user_attr("nasface_config", fingerprint)
    elif saved != fingerprint:
        raise NasfaceError(f"study {config.study} was created with other settings: "
                           f"{settings_difference(saved, fingerprint)}; continue it with the same settings or "
                           f"start a new --study")
    launch = int(study.user_attrs.get("nasface_launches", 0))
    study.set_user_attr("nasface_launches", launch + 1)
    return launch


def settings_difference(saved: dict, now: dict, limit: int = 3) -> str:
    """"data.source: 'orl' in the study, 'synthetic' now; ..." for the first ``limit`` settings that differ
    (nested settings by their dotted name)."""
    def flat(settings: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in settings.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out

    before, after = flat(saved), flat(now)
    changed = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    shown = [f"{key}: {before.get(key)!r} in the study, {after.get(key)!r} now" for key in changed[:limit]]
    return "; ".join(shown) + (f"; and {len(changed) - limit} more" if len(changed) > limit else "")


def enqueue_baselines(study: optuna.Study, space: SearchSpace) -> list[str]:
    """Enqueue each seed network that is a point of the space, once per study (run under the lock)."""
    present = {facts.baseline for facts in record.records(study)}
    enqueued = []
    for name in baseline_presets(space):
        if name not in present:
            record.enqueue(study, space.params_of(load_spec(name)), baseline=name)
            enqueued.append(name)
    if enqueued:
        logger.info(f"baselines enqueued: {', '.join(enqueued)}")
    return enqueued


def baseline_presets(space: SearchSpace) -> list[str]:
    """The presets that are points of the space: the baselines a search trains."""
    names = []
    for name in preset_names():
        try:
            space.params_of(load_spec(name))
        except NasfaceError:
            continue  # not a point of this space (e.g. a teacher)
        names.append(name)
    return names


def rung_payload(study: optuna.Study, trial: optuna.trial.Trial, config: SearchConfig) -> dict:
    """The candidate's spec, its rung's proxy, and the run it continues (successive halving)."""
    facts = record.read(trial)
    if facts.rung is None:
        return {"spec": facts.spec}
    resume_from = save_to = None
    if facts.promoted:
        resume_from = record.read(study.trials[facts.promoted_from]).checkpoint
    if facts.rung < config.top_rung and not facts.baseline:
        save_to = str(config.study_dir / "checkpoints" / f"trial-{trial.number}.pt")
        record.write(trial, checkpoint=save_to)
    return {"spec": facts.spec, "proxy": dataclasses.asdict(config.rung_budget(facts.rung)),
            "resume_from": resume_from, "save_to": save_to}


def promote(study: optuna.Study, config: SearchConfig) -> list[int]:
    """Enqueue the candidates successive halving promotes now (run under the study lock).

    A rung's candidates are those trained at it (failed ones included: they count towards the
    rung's size but never rise), in trial order; ``nasface.search.rungs.promotions`` ranks the feasible
    ones by non-dominated sorting of the search's objectives, then crowding distance.  A candidate
    promoted once is never promoted again, whichever driver did it.
    """
    everything = record.records(study)
    promoted = {facts.promoted_from for facts in everything if facts.promoted}
    signs = [1.0 if OBJECTIVES[name] == "maximize" else -1.0 for name in config.objectives]
    enqueued = []
    for rung in range(config.top_rung):
        results = [RungResult(key=facts.number, failed=facts.kind == "failed", feasible=facts.feasible,
                              objectives=tuple(sign * value for sign, value in zip(signs, facts.values or signs)))
                   for facts in everything
                   if facts.rung == rung and not facts.baseline and facts.kind in ("candidate", "failed")]
        for number in promotions(results, config.eta, promoted):
            source = study.trials[number]
            record.enqueue(study, source.params, rung=rung + 1, promoted_from=number)
            enqueued.append(number)
    if enqueued:
        logger.info(f"promoted to the next rung: trial{'s' if len(enqueued) > 1 else ''} "
                    f"{', '.join(map(str, enqueued))}")
    return enqueued


def waiting(study: optuna.Study) -> list:
    """Enqueued trials not asked for yet: baselines, successive halving's promotions, retries of those."""
    return [facts for facts in record.records(study, states=(optuna.trial.TrialState.WAITING,))
            if facts.baseline or facts.promoted]
