"""A candidate before training: sampled, checked, counted, and told at once where it is not trained
(an invalid architecture, one over budget, a repeat of a trained one); and the values a trial is told.

Split from the driver (``nasface.search.driver``), which asks for a trial, hands it here, and trains
what ``prepare_trial`` lets through.
"""

from __future__ import annotations

import math

import optuna

from nasface.arch.budget import Budgets
from nasface.arch.model import count
from nasface.arch.space import SearchSpace, fill_budget
from nasface.arch.spec import load_spec, spec_to_dict
from nasface.core.errors import NasfaceError
from nasface.search import record
from nasface.search.config import DEFAULT_SCORE, SearchConfig
from nasface.search.latency import latency_cost
from nasface.training.signals import oriented
from nasface.training.student import proxy_spec

WORST_SCORE = -1e300  # an untrained candidate's score (Optuna refuses -inf)


def objective_values(objectives: tuple[str, ...], cost: dict, metrics: dict | None,
                     score: str = DEFAULT_SCORE) -> list[float]:
    """The trial's values; an untrained candidate gets the worst accuracy (0) and ``WORST_SCORE``."""
    values = []
    for objective in objectives:
        if objective == "accuracy":
            values.append(float(metrics["accuracy"]) if metrics else 0.0)
        elif objective == "tar":
            values.append(float(metrics.get("tar_at_far") or 0.0) if metrics else 0.0)
        elif objective == "score":
            found = oriented(score, (metrics.get("signals") or {}).get(score)) if metrics else None
            values.append(float(found) if found is not None else WORST_SCORE)
        else:  # a candidate over a counted budget has no latency figure (see prepare_trial): the worst
            values.append(float(cost.get(objective, math.inf)))
    return values


def prepare_trial(study: optuna.Study, trial: optuna.trial.Trial, space: SearchSpace, config: SearchConfig):
    """Sample and count the candidate; return tell() arguments when it must not be trained.

    Not trained: invalid architectures, candidates over budget, and repeats of a candidate the
    study already trained (its result is told again, so the sampler still learns from it).
    """
    facts = record.read(trial)  # a baseline or a promotion carries what it is from its enqueueing
    baseline = facts.baseline
    if config.rungs and facts.rung is None:  # baselines are references: they train the top rung's proxy
        record.write(trial, rung=config.top_rung if baseline else 0)
    try:
        spec = space.sample(trial, name=baseline or f"trial-{trial.number}")
    except NasfaceError as err:
        record.write(trial, kind="invalid", reason=f"invalid architecture: {err}")
        return {"state": optuna.trial.TrialState.FAIL}
    if baseline and trial.params != (preset := space.params_of(load_spec(baseline))):
        # enqueued again by an older nasface with the few knobs its interrupted trial had drawn
        record.write(trial, kind="invalid", reason=f"baseline {baseline} was enqueued with other knobs than its "
                                                   f"preset's; enqueued again from the preset")
        record.enqueue(study, preset, retry_of=trial.number, **record.enqueued_fields(facts))
        return {"state": optuna.trial.TrialState.FAIL}
    try:
        proxy_spec(spec, config.proxy.resolution)
    except NasfaceError as err:
        record.write(trial, kind="invalid", reason=str(err))
        return {"state": optuna.trial.TrialState.FAIL}
    if config.fill_budget and not baseline:  # deterministic: a promotion is widened as its first rung was
        spec, factor = fill_budget(spec, config.budgets)
        record.write(trial, width_scale=factor)
    cost = count(spec, config.budgets.convention)
    cost.pop("stages")
    if baseline or config.budgets.fits(cost):  # over a counted budget it is rejected without timing its parts,
        cost.update(latency_cost(spec, config))  # which for a network far over one may not even export
    record.write(trial, spec=spec_to_dict(spec), cost=cost)
    violations = config.budgets.violations(cost)
    if violations and not baseline:
        set_constraints(trial, config.budgets, cost)
        record.write(trial, kind="rejected", reason="over budget: " + "; ".join(violations))
        return {"values": objective_values(config.objectives, cost, None, config.score)}
    if violations:
        record.write(trial, over_budget="; ".join(violations))  # a reference point, trained anyway
    twin = None if baseline or facts.promoted else _twin(study, trial)
    if twin is not None:
        record.write(trial, kind="duplicate", duplicate_of=twin.number)
        if twin.state == "RUNNING":  # another driver or worker is training it now
            record.write(trial, reason=f"same architecture as trial {twin.number}, in training")
            return {"state": optuna.trial.TrialState.FAIL}
        set_constraints(trial, config.budgets, twin.cost)
        record.write(trial, metrics=twin.metrics)
        return {"values": list(twin.values)}
    return None


def set_constraints(trial: optuna.trial.Trial, budgets: Budgets, cost: dict) -> None:
    """Tell the sampler how far over (> 0) or under (<= 0) each budget the candidate is.

    Set once per trial, from its final cost: Optuna keeps the first value of a constraint.
    """
    for key, value in budgets.constraints(cost).items():
        trial.set_constraint(key, value)


def _twin(study: optuna.Study, trial: optuna.trial.Trial) -> record.TrialRecord | None:
    """A trial with exactly this trial's parameters that completed training or is training now."""
    params = trial.params
    for other in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                          optuna.trial.TrialState.RUNNING)):
        if other.params != params:
            continue
        facts = record.read(other)
        if (facts.trained or facts.in_training) and not facts.promoted:  # a candidate's first training
            return facts
    return None
