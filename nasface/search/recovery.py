"""Liveness: which driver owns a trial, its heartbeat, and the recovery of a dead driver's trials.

A driver names itself ``host:pid`` on each trial it asks for and beats on its running trials every
``HEARTBEAT_SECONDS`` from a thread.  Another driver takes a running trial for an orphan when its
driver is a dead process of this machine, or when its heartbeat is older than ``STALE_SECONDS``
(a driver of another machine): it fails the trial with the reason and enqueues its architecture
once again, so nothing is lost and nothing is trained twice at once.

A retry is the same architecture: a baseline is enqueued again from its preset, any other trial
with every knob it was given (``record.full_params``), never with the few a driver stopped in the
middle of sampling had stored.  A candidate stopped before its knobs were all drawn was never an
architecture: it is failed and not enqueued (the sampler draws a new one).
"""

from __future__ import annotations

import logging
import time

import optuna

from nasface.core.atomic import process_alive, process_id
from nasface.search import record
from nasface.search.periodic import Periodic
from nasface.arch.space import SearchSpace
from nasface.arch.spec import load_spec
from nasface.search.storage import StudyLock

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0
STALE_SECONDS = 120.0


def driver_id() -> str:
    return process_id()


def recover_stale_trials(study: optuna.Study, space: SearchSpace) -> int:
    """Fail the trials whose driver died mid-trial and enqueue each once again.

    Run under the study lock: two drivers never recover the same trial, and a trial another driver
    has just asked for is never taken for an orphan before it carries its driver's name.
    """
    recovered = 0
    now = time.time()
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        facts = record.read(trial)
        if facts.driver == driver_id() or (process_alive(facts.driver) and now - (facts.heartbeat or 0.0)
                                           < STALE_SECONDS):
            continue
        again = fail_and_requeue(study, trial, "interrupted: its driver stopped", space)
        recovered += 1
        logger.info(f"trial {trial.number} was interrupted with its driver; "
                    + ("enqueued again" if again else "its architecture was not drawn yet: not enqueued again"))
    return recovered


def fail_and_requeue(study: optuna.Study, trial, reason: str, space: SearchSpace) -> bool:
    """Fail a trial that will never finish and enqueue the same architecture again; return whether it
    was enqueued (not a candidate stopped before its knobs were all drawn)."""
    frozen = study._storage.get_trial(trial._trial_id)
    facts = record.read(frozen)
    if facts.baseline:
        params = space.params_of(load_spec(facts.baseline))
    elif facts.spec is not None or facts.promoted:  # every knob drawn (a promotion's were enqueued)
        params = record.full_params(frozen)
    else:
        params = None
    record.write(frozen, study, kind="interrupted",
                 reason=f"{reason}; " + ("re-enqueued" if params is not None else "not drawn yet, not re-enqueued"))
    study.tell(frozen.number, state=optuna.trial.TrialState.FAIL)
    if params is not None:
        record.enqueue(study, params, retry_of=frozen.number, **record.enqueued_fields(facts))
    return params is not None


def still_ours(study: optuna.Study, trial: optuna.trial.Trial) -> bool:
    """False when another driver has failed this trial meanwhile (it took us for dead)."""
    return study._storage.get_trial(trial._trial_id).state == optuna.trial.TrialState.RUNNING


def trained_elsewhere(study: optuna.Study) -> bool:
    """Whether another driver is training a candidate of this study now."""
    return any(facts.in_training and facts.driver != driver_id()
               for facts in record.records(study, states=(optuna.trial.TrialState.RUNNING,)))


class Heartbeat(Periodic):
    """Beats for this driver's running trials from a thread, every ``HEARTBEAT_SECONDS``.

    Other machines' drivers take a trial whose heartbeat is older than ``STALE_SECONDS`` for the
    orphan of a dead driver.  The driver's loop cannot beat while it trains a candidate itself
    (``--executor inline``) or waits on a slow storage, so the beat runs beside it.
    """

    name = "nasface-heartbeat"

    @property
    def seconds(self) -> float:  # the module's setting when the thread waits, not when the class was made
        return HEARTBEAT_SECONDS

    def __init__(self, study: optuna.Study, lock: StudyLock, running: dict):
        self.study, self.lock, self.running = study, lock, running
        super().__init__()

    def tick(self) -> bool:
        try:
            self.beat()
        except Exception:  # noqa: BLE001 - the driver's own next write meets the same fault and reports it
            return False
        return True

    def beat(self) -> None:
        with self.lock.hold(self.study.study_name):
            for trial, _ in list(self.running.values()):  # a snapshot: the loop adds and removes trials
                if still_ours(self.study, trial):
                    record.write(trial, heartbeat=time.time())
