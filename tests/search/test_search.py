"""``nasface search`` end to end: real Optuna storage, real Ray, real (tiny) training."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from nasface.core.errors import NasfaceError
from nasface.fidelity import FidelitySettings
from nasface.ui.progress import Reporter
from nasface.search.results import pareto_front, study_frame
from nasface.search import (cheapest_spec, config_from_options, load_proxy_data, parse_duration,
                            record, run_search)
from nasface.arch.space import load_space
from nasface.arch.spec import spec_from_dict
from nasface.training.proxy import score
from tests.factories import assert_budget_invariant, tiny_config


def trials_by_kind(study: optuna.Study) -> dict[str, list[record.TrialRecord]]:
    kinds: dict[str, list] = {}
    for facts in record.records(study):
        kinds.setdefault(facts.kind, []).append(facts)
    return kinds


def test_inline_search_with_baselines(tmp_path):
    config = tiny_config(tmp_path, baselines=True, trials=2)
    study = run_search(config, Reporter("quiet"))
    assert (tmp_path / "studies" / "t" / "study.db").is_file()
    kinds = trials_by_kind(study)
    assert len(kinds["candidate"]) == 2 and all(not facts.baseline for facts in kinds["candidate"])
    baselines = {facts.baseline for facts in kinds["baseline"]}
    assert {"mobilefacenet", "vargfacenet", "seesaw-shuffle-facenet"} <= baselines
    varg = next(facts for facts in kinds["baseline"] if facts.baseline == "vargfacenet")
    assert "FLOPs 1,022,864,152 > 1,000,000,000" in varg.over_budget
    assert varg.constraints["flops"] > 0  # a reference point, never on the feasible front
    for facts in record.records(study, states=(optuna.trial.TrialState.COMPLETE,)):
        assert facts.spec is not None and facts.cost is not None
        if facts.trained:
            assert 0.0 <= facts.accuracy <= 1.0 and facts.wall_seconds > 0
    assert_budget_invariant(study, config.budgets)


def test_the_score_objective_maximises_the_chosen_signal_and_every_trial_keeps_all_signals(tmp_path):
    config = tiny_config(tmp_path, trials=2, score="loss_sum", objectives="score,flops")
    study = run_search(config, Reporter("quiet"))
    trained = trials_by_kind(study)["candidate"]
    assert len(trained) == 2
    for facts in trained:
        signals = facts.signals
        assert {"accuracy", "loss_sum", "loss_ema", "synflow", "naswot", "zico", "grad_norm", "snip",
                "log_flops", "log_params"} <= set(signals)
        assert facts.values[0] == -signals["loss_sum"]  # a lower loss sum is the better score
    frame = study_frame(study)
    assert frame[frame.kind == "candidate"].signal_loss_sum.notna().all()
    with pytest.raises(NasfaceError, match="--score 'vibes': choose a signal"):
        run_search(tiny_config(tmp_path / "other", score="vibes"), Reporter("quiet"))


def test_continuing_a_study_adds_trials_and_keeps_old_ones(tmp_path):
    first = run_search(tiny_config(tmp_path, trials=1), Reporter("quiet"))
    numbers = {t.number for t in first.get_trials()}
    again = run_search(tiny_config(tmp_path, trials=2), Reporter("quiet"))
    assert numbers <= {t.number for t in again.get_trials()}
    assert len(trials_by_kind(again)["candidate"]) == 2
    with pytest.raises(NasfaceError, match="created with other settings: budgets.flops: 1000000000 in the study, "
                                           "500000000 now; continue it"):
        run_search(tiny_config(tmp_path, trials=3, budget_flops="500M"), Reporter("quiet"))


def test_rejections_are_told_and_never_trained(tmp_path):
    # a budget most of the space misses: the sampler is told every rejection
    config = tiny_config(tmp_path, budget_flops="60M", budget_mem="2MB", trials=1, sampler="random")
    study = run_search(config, Reporter("quiet"))
    kinds = trials_by_kind(study)
    assert kinds.get("rejected"), "expected over-budget candidates at a tight budget"
    assert_budget_invariant(study, config.budgets)


def test_unsatisfiable_budget_names_the_cheapest_architecture(tmp_path):
    config = tiny_config(tmp_path, budget_flops="1K")
    with pytest.raises(NasfaceError, match="no architecture of the space lfr fits these budgets: the cheapest"):
        run_search(config, Reporter("quiet"))
    assert not (tmp_path / "studies").exists()
    cheapest = cheapest_spec(load_space())
    from nasface import count
    assert count(cheapest)["flops"] < count("seesaw-shuffle-facenet")["flops"]


def test_durations():
    assert parse_duration("30m") == 1800 and parse_duration("2h") == 7200
    assert parse_duration("1h30m") == 5400 and parse_duration("90s") == 90 and parse_duration("90") == 90
    for bad in ("", "soon", "-5m", "0"):
        with pytest.raises(NasfaceError):
            parse_duration(bad)


def test_study_definition_file_and_flags(tmp_path):
    definition = tmp_path / "s.yaml"
    definition.write_text("budget_flops: 500M\nbudget-mem: 10MB\nproxy_steps: 7\nstudy: from-file\n")
    config = config_from_options({"proxy_steps": 9}, definition)
    assert config.budgets.flops == 500_000_000 and config.budgets.weight_bytes == 10_000_000
    assert config.proxy.steps == 9 and config.study == "from-file"
    definition.write_text("budget_flop: 1G\n")
    with pytest.raises(NasfaceError, match="unknown option 'budget_flop'"):
        config_from_options({}, definition)


@pytest.mark.slow
def test_ray_search_with_two_workers(tmp_path):
    config = tiny_config(tmp_path, executor="ray", workers=2, cpus_per_trial=1, trials=3)
    study = run_search(config, Reporter("quiet"))
    trained = trials_by_kind(study)["candidate"]
    assert len(trained) == 3
    assert all(facts.state == "COMPLETE" for facts in trained)
    assert_budget_invariant(study, config.budgets)


def test_an_inline_trial_keeps_beating_while_it_trains(tmp_path, monkeypatch):
    """The loop is blocked in an inline candidate: the heartbeat thread must beat meanwhile, or a
    driver on another machine would take the trial for an orphan after STALE_SECONDS."""
    import time

    from nasface.search import job, recovery

    monkeypatch.setattr(recovery, "HEARTBEAT_SECONDS", 0.1)
    config = tiny_config(tmp_path, trials=1)
    beats = []
    train = job.run_candidate

    def slow_candidate(payload):
        def heartbeat() -> float:
            study = optuna.load_study(study_name=config.study, storage=config.storage_url)
            (trial,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            return record.read(trial).heartbeat

        first = heartbeat()
        time.sleep(1.0)
        beats.append(heartbeat() - first)
        return train(payload)

    monkeypatch.setattr(job, "run_candidate", slow_candidate)
    study = run_search(config, Reporter("quiet"))
    assert len(trials_by_kind(study)["candidate"]) == 1
    assert beats and beats[0] >= 0.5, beats  # beaten during the second the candidate trained


def test_successive_halving_promotes_by_continuing_each_run(tmp_path):
    config = tiny_config(tmp_path, trials=4, rungs="2,4,8", eta=2, sampler="random")
    study = run_search(config, Reporter("quiet"))
    everything = record.records(study)
    assert record.candidates_counted(study) == 4  # --trials counts sampled candidates, not promotions
    by_rung: dict[int, list] = {}
    for facts in everything:
        if facts.trained:
            by_rung.setdefault(facts.rung, []).append(facts)
    assert len(by_rung[0]) == 4 and len(by_rung[1]) >= 2 and len(by_rung[2]) >= 1  # ASHA: at least n // eta rise
    sources = [facts.promoted_from for facts in everything if facts.promoted]
    assert len(sources) == len(set(sources))  # each run promoted once
    for facts in by_rung[1] + by_rung[2]:
        source = record.read(study.trials[facts.promoted_from])
        assert source.rung == facts.rung - 1 and study.trials[facts.number].params == study.trials[source.number].params
        assert facts.metrics["steps"] == config.rungs[facts.rung] and facts.metrics["resumed_at"] > 0
        assert source.checkpoint and not Path(source.checkpoint).exists()  # spent once the promotion ran
    assert all(facts.checkpoint is None for facts in by_rung[2])  # the top rung keeps nothing
    # a promotion continues its run: the very result of training that rung from the start
    data = load_proxy_data(config.data, config.seed, config.study_dir / "cache")
    top = by_rung[2][0]
    alone = score(spec_from_dict(top.spec), data.train, data.pairs, config.rung_budget(2))
    assert alone["accuracy"] == top.accuracy and alone["signals"] == top.signals
    frame = study_frame(study)
    assert set(frame.rung.dropna()) == {0, 1, 2}
    # the front compares each candidate at the highest rung it reached
    front = {facts.number for facts in map(record.read, pareto_front(study))}
    superseded = {facts.promoted_from for facts in everything if facts.promoted and facts.trained}
    assert front and not front & superseded


def test_adding_rungs_to_a_study_keeps_its_teacher(tmp_path):
    """Successive halving pins the candidates' warm-up to its lowest rung; the automatic teacher
    trains on its own schedule, so a study with --rungs distils from the plain study's teacher."""
    from nasface.training.teacher import teacher_targets

    plain = tiny_config(tmp_path, teacher="auto", teacher_steps=4, proxy_steps=8)
    halving = tiny_config(tmp_path, teacher="auto", teacher_steps=4, rungs="2,8")
    assert halving.proxy.steps == plain.proxy.steps and halving.proxy.warmup_steps != plain.proxy.warmup_steps
    cache = tmp_path / "cache"
    data = load_proxy_data(plain.data, plain.seed, cache)
    folders = {teacher_targets("auto", data, cache, config.proxy, teacher_steps=4).folder
               for config in (plain, halving)}
    assert len(folders) == 1


def test_rungs_are_checked_before_anything_is_created(tmp_path):
    for rungs, eta, message in (("8,4", 3, "rising"), ("4", 3, "two or more"), ("4,8", 1, "at least 2")):
        with pytest.raises(NasfaceError, match=message):
            run_search(tiny_config(tmp_path, rungs=rungs, eta=eta), Reporter("quiet"))
    # 30 steps cool down over their last 6: a 25-step warm-up cannot end before that
    with pytest.raises(NasfaceError, match="warm-up of 25 steps does not fit"):
        run_search(tiny_config(tmp_path, rungs="30,120", proxy_warmup=25), Reporter("quiet"))
    assert not (tmp_path / "studies").exists()


def test_proxy_warmup_makes_each_rung_the_budget_a_fidelity_study_measured(tmp_path):
    """The fidelity study measures 30, 120 and 480 steps as branches of one run with the 120-step
    proxy's warm-up (12); rungs 30,120,480 warm up for a tenth of 30 unless told otherwise."""
    measured = FidelitySettings(search=tiny_config(tmp_path, proxy_steps=120)).proxy
    halving = tiny_config(tmp_path, rungs="30,120,480", eta=4, proxy_warmup=12)
    for rung, steps in enumerate((30, 120, 480)):
        assert halving.rung_budget(rung) == dataclasses.replace(measured, steps=steps)
    assert tiny_config(tmp_path, rungs="30,120,480").rung_budget(1).warmup_steps == 3
    assert tiny_config(tmp_path, proxy_warmup=5).proxy.schedule.warmup_steps == 5
    assert tiny_config(tmp_path).proxy.warmup_steps is None  # unset: a tenth of the steps, as before
