"""What a search keeps of each trial: one typed record, one writer, one reader.

Optuna keeps a trial's facts as string-keyed ``user_attrs``; this module is the only code that
names those keys.  The driver writes through ``write`` (which refuses unknown fields and kinds),
and the report, progress lines, export, command line, notebook and benchmarks read ``read(trial)``.

A trial's ``kind`` says what became of it:

- ``candidate``: an architecture the sampler proposed, trained and scored;
- ``baseline``: a seed network (``baseline`` names the preset), trained and scored as a reference;
- ``rejected``: over a budget; counted, never trained;
- ``invalid``: the sampled knobs make no valid network (or none the proxy's input size takes);
- ``duplicate``: the same architecture as a trial already trained; its result is told again;
- ``failed``: its training crashed or diverged (``reason`` says which);
- ``interrupted``: its driver stopped (Ctrl-C, or died) mid-training; it is enqueued again, and the
  new trial's ``retry_of`` names this one.

``--trials N`` counts the candidates whose training was started, by any driver: those trained
(``candidate``), those whose training failed (``failed``, not baselines) and those in training
now.  Baselines, rejections, invalid architectures and duplicates cost no training and are not
counted, and neither are interrupted trials (their retry is) nor successive halving's promotions
(a promotion is a trial of its own, at a higher ``rung``, that continues the ``promoted_from`` trial).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import optuna

KINDS = ("candidate", "baseline", "rejected", "invalid", "duplicate", "failed", "interrupted")
TRAINED = ("candidate", "baseline")
STATES = optuna.trial.TrialState

# The record's field -> its user_attrs key (the same name unless the stored key is older).
_KEYS = {"kind": "kind", "baseline": "baseline", "spec": "spec", "cost": "cost", "metrics": "metrics",
         "reason": "fail_reason", "over_budget": "over_budget", "wall_seconds": "wall_seconds",
         "width_scale": "width_scale", "duplicate_of": "duplicate_of", "retry_of": "retry_of",
         "driver": "driver", "heartbeat": "heartbeat", "training_started": "training_started",
         "rung": "rung", "promoted_from": "promoted_from", "checkpoint": "checkpoint"}
# What an enqueued trial carries from the start, and a retry of it again.
ENQUEUED = ("baseline", "rung", "promoted_from")


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str  # Optuna's: RUNNING, WAITING, COMPLETE, FAIL, ...
    kind: str | None = None  # None until the driver has decided (asked, in training, or waiting)
    baseline: str | None = None  # the seed network's preset name, for a baseline trial
    spec: dict | None = None  # the architecture as trained (after fill-budget scaling)
    cost: dict | None = None  # exact costs; FLGC's are the deployed network's once trained
    metrics: dict | None = None  # the proxy's result: accuracy, TAR@FAR, signals, losses, ...
    reason: str | None = None  # why it was not trained, or why its training failed
    over_budget: str | None = None  # a baseline's budget violations (baselines are trained anyway)
    wall_seconds: float | None = None
    width_scale: float | None = None  # --fill-budget's width factor
    duplicate_of: int | None = None
    retry_of: int | None = None  # the interrupted trial this one runs again
    driver: str | None = None  # host:pid of the driver that asked for it
    heartbeat: float | None = None
    training_started: float | None = None
    rung: int | None = None  # successive halving: the rung it trained at (0: the lowest); None without rungs
    promoted_from: int | None = None  # the trial of the rung below that this one continues
    checkpoint: str | None = None  # its run's state at its cool-down, kept while it may be promoted
    constraints: dict = field(default_factory=dict)
    values: tuple | None = None
    params: dict = field(default_factory=dict)  # the knobs' values as the sampler chose them

    @property
    def trained(self) -> bool:
        return self.kind in TRAINED

    @property
    def accuracy(self) -> float | None:
        metrics = self.metrics or {}
        return metrics.get("accuracy") if self.trained and metrics.get("status") == "ok" else None

    @property
    def signals(self) -> dict:
        return (self.metrics or {}).get("signals") or {}

    @property
    def feasible(self) -> bool:
        return bool(self.constraints) and all(v <= 0 for v in self.constraints.values())

    @property
    def in_training(self) -> bool:
        return self.state == "RUNNING" and self.training_started is not None

    @property
    def promoted(self) -> bool:
        return self.promoted_from is not None

    @property
    def counts_towards_trials(self) -> bool:
        """What ``--trials`` counts: a sampled candidate (not a baseline, not a promotion) whose training
        was started."""
        return not self.baseline and not self.promoted and (self.kind in ("candidate", "failed")
                                                            or self.in_training)


def read(trial: optuna.trial.FrozenTrial | optuna.trial.Trial) -> TrialRecord:
    """The record of a trial (a finished one, or a live one as stored now), from any driver's version."""
    if isinstance(trial, optuna.trial.Trial):
        trial = trial.study._storage.get_trial(trial._trial_id)
    attrs = trial.user_attrs
    fields = {name: attrs.get(key) for name, key in _KEYS.items()}
    if fields["kind"] == "trained":  # before kinds were split: a failed training was "trained" too
        ok = (fields["metrics"] or {}).get("status") == "ok" and trial.state == STATES.COMPLETE
        fields["kind"] = ("baseline" if fields["baseline"] else "candidate") if ok else "failed"
    return TrialRecord(number=trial.number, state=trial.state.name, constraints=dict(trial.constraints or {}),
                       values=tuple(trial.values) if trial.values is not None else None, params=dict(trial.params),
                       **fields)


def records(study: optuna.Study, states=None) -> list[TrialRecord]:
    return [read(t) for t in study.get_trials(deepcopy=False, states=states)]


def write(trial, study: optuna.Study | None = None, **fields) -> None:
    """Store record fields on a trial: a live ``optuna.Trial``, or a frozen one with its ``study``."""
    for name, value in fields.items():
        if name not in _KEYS:
            raise TypeError(f"a trial record has no field {name!r}")
        if name == "kind" and value not in KINDS:
            raise ValueError(f"unknown trial kind {value!r} (one of {', '.join(KINDS)})")
        if isinstance(trial, optuna.trial.FrozenTrial):
            study._storage.set_trial_user_attr(trial._trial_id, _KEYS[name], value)
        else:
            trial.set_user_attr(_KEYS[name], value)


def enqueue(study: optuna.Study, params: dict, **fields) -> None:
    """Queue an architecture (its knob values) as a trial to run, with record fields set from the start."""
    for name in fields:
        if name not in _KEYS:
            raise TypeError(f"a trial record has no field {name!r}")
    study.enqueue_trial(params, user_attrs={_KEYS[name]: value for name, value in fields.items()})


def full_params(trial: optuna.trial.FrozenTrial) -> dict:
    """Every knob value a trial was given: those it was enqueued with (Optuna's ``fixed_params``, all
    of a baseline's or a promotion's, stored before it is asked for) and those sampled so far.

    A trial interrupted while its knobs were being suggested has only some of them in ``params``;
    retried with those alone, the sampler would invent the rest: another architecture.
    """
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def enqueued_fields(facts: TrialRecord) -> dict:
    """The fields a trial was enqueued with, for enqueueing it again."""
    return {name: getattr(facts, name) for name in ENQUEUED if getattr(facts, name) is not None}


def superseded(everything: list[TrialRecord]) -> set[int]:
    """Trials whose promotion has finished training: history, the candidate now stands at a higher rung."""
    return {facts.promoted_from for facts in everything if facts.promoted and facts.trained}


def candidates_counted(study: optuna.Study) -> int:
    """Candidates whose training any driver has started: what ``--trials`` counts."""
    return sum(1 for record in records(study) if record.counts_towards_trials)


def trained_candidates(study: optuna.Study) -> int:
    """Candidates trained and scored (baselines and failures excluded)."""
    return sum(1 for record in records(study) if record.kind == "candidate")


def as_row(record: TrialRecord) -> dict:
    """The facts of a trial a person or a script wants on one line (progress lines, ``--output jsonl``)."""
    cost = record.cost or {}
    return {"trial": record.number, "baseline": record.baseline, "kind": record.kind,
            "accuracy": record.accuracy, "tar_at_far": (record.metrics or {}).get("tar_at_far"),
            "flops": cost.get("flops"), "weight_bytes": cost.get("weight_bytes"),
            "reason": record.reason or record.over_budget, "seconds": record.wall_seconds, "rung": record.rung}

