"""The trial record: one writer that refuses what is not a field, one reader, and what --trials counts."""

from __future__ import annotations

import optuna
import pytest

from nasface.search import record

STATES = optuna.trial.TrialState


@pytest.fixture
def study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(directions=["maximize", "minimize"])


def told(study: optuna.Study, state=STATES.COMPLETE, **fields) -> record.TrialRecord:
    trial = study.ask()
    record.write(trial, **fields)
    study.tell(trial, values=[0.5, 1.0] if state == STATES.COMPLETE else None, state=state)
    return record.read(study.trials[trial.number])


def test_a_record_reads_back_what_was_written(study):
    facts = told(study, kind="candidate", spec={"name": "n"}, cost={"flops": 7}, reason=None, wall_seconds=2.5,
                 metrics={"status": "ok", "accuracy": 0.75, "signals": {"loss_sum": 3.0}})
    assert (facts.kind, facts.spec, facts.cost, facts.wall_seconds) == ("candidate", {"name": "n"}, {"flops": 7}, 2.5)
    assert facts.accuracy == 0.75 and facts.signals == {"loss_sum": 3.0} and facts.trained
    assert facts.state == "COMPLETE" and facts.values == (0.5, 1.0)
    # stored under Optuna's user_attrs: the reason keeps its older key, so old studies read the same
    assert study.trials[0].user_attrs["kind"] == "candidate"
    failed = told(study, STATES.FAIL, kind="failed", reason="diverged: the loss became nan",
                  metrics={"status": "failed", "accuracy": 0.1})
    assert failed.reason == "diverged: the loss became nan" and study.trials[1].user_attrs["fail_reason"] == failed.reason
    assert failed.accuracy is None and not failed.trained  # a failed run's numbers are not a score


def test_the_writer_refuses_unknown_fields_and_kinds(study):
    trial = study.ask()
    with pytest.raises(TypeError, match="no field 'colour'"):
        record.write(trial, colour="red")
    with pytest.raises(ValueError, match="unknown trial kind 'trained'"):
        record.write(trial, kind="trained")
    with pytest.raises(TypeError, match="no field 'colour'"):
        record.enqueue(study, {}, colour="red")
    assert trial.user_attrs == {}  # nothing half-written


def test_studies_written_before_the_kinds_were_split_read_with_the_new_kinds(study):
    def legacy(state, **attrs) -> record.TrialRecord:
        trial = study.ask()
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        study.tell(trial, values=[0.5, 1.0] if state == STATES.COMPLETE else None, state=state)
        return record.read(study.trials[trial.number])

    ok = {"status": "ok", "accuracy": 0.8}
    assert legacy(STATES.COMPLETE, kind="trained", metrics=ok).kind == "candidate"
    assert legacy(STATES.COMPLETE, kind="trained", metrics=ok, baseline="mobilefacenet").kind == "baseline"
    crashed = legacy(STATES.FAIL, kind="trained", fail_reason="worker died")
    assert crashed.kind == "failed" and crashed.reason == "worker died"
    assert legacy(STATES.COMPLETE, kind="rejected", fail_reason="over budget").kind == "rejected"


def test_trials_counts_the_candidates_whose_training_started(study):
    counted = [told(study, kind="candidate"), told(study, STATES.FAIL, kind="failed")]
    in_training = study.ask()
    record.write(in_training, training_started=1.0)
    asked_only = study.ask()  # asked, not yet sampled: not counted until its training starts
    not_counted = [told(study, kind="baseline", baseline="mobilefacenet"), told(study, kind="rejected"),
                   told(study, STATES.FAIL, kind="invalid"), told(study, kind="duplicate"),
                   told(study, STATES.FAIL, kind="interrupted"),
                   told(study, STATES.FAIL, kind="failed", baseline="vargfacenet")]
    assert all(facts.counts_towards_trials for facts in counted)
    assert not any(facts.counts_towards_trials for facts in not_counted)
    assert record.read(in_training).in_training and not record.read(asked_only).in_training
    assert record.candidates_counted(study) == 3  # two finished and one in training
    assert record.trained_candidates(study) == 1
