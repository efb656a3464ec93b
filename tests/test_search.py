"""``nasface search`` end to end: real Optuna storage, real Ray, real (tiny) training."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from nasface.budget import Budgets
from nasface.errors import NasfaceError
from nasface.progress import Reporter
from nasface.report import study_frame
from nasface.search import (SearchConfig, cheapest_spec, config_from_options, parse_duration,
                            run_search)
from nasface.space import load_space

TINY_DATA = {"train_identities": 12, "images_per_identity": 4, "val_identities": 8, "pairs": 80}
TINY_PROXY = {"proxy_steps": 3, "proxy_batch": 8, "resolution": 32}


def tiny_config(tmp_path: Path, **overrides) -> SearchConfig:
    flags = {"budget_flops": "1G", "budget_mem": "20MB", "studies_dir": str(tmp_path / "studies"),
             "study": "t", "teacher": "none", "executor": "inline", "trials": 2, "baselines": False,
             "seed": 0, "device": "cpu", **TINY_PROXY, **TINY_DATA, **overrides}
    return config_from_options(flags)


def trials_by_kind(study: optuna.Study) -> dict[str, list]:
    kinds: dict[str, list] = {}
    for trial in study.get_trials():
        kinds.setdefault(trial.user_attrs.get("kind"), []).append(trial)
    return kinds


def assert_budget_invariant(study: optuna.Study, budgets: Budgets) -> None:
    """Every trained candidate (not a baseline) is within budget; rejected ones never trained."""
    for trial in study.get_trials():
        attrs = trial.user_attrs
        if attrs.get("kind") == "trained" and not attrs.get("baseline"):
            assert budgets.fits(attrs["cost"]), (trial.number, attrs["cost"])
        if attrs.get("kind") == "rejected":
            assert "metrics" not in attrs
            assert attrs["fail_reason"].startswith("over budget")
            assert any(value > 0 for value in trial.constraints.values())


def test_inline_search_with_baselines(tmp_path):
    config = tiny_config(tmp_path, baselines=True, trials=2)
    study = run_search(config, Reporter("quiet"))
    assert (tmp_path / "studies" / "t" / "study.db").is_file()
    kinds = trials_by_kind(study)
    trained = [t for t in kinds.get("trained", []) if not t.user_attrs.get("baseline")]
    assert len(trained) == 2
    baselines = {t.user_attrs["baseline"] for t in study.get_trials() if t.user_attrs.get("baseline")}
    assert {"mobilefacenet", "vargfacenet", "seesaw-shuffle-facenet"} <= baselines
    varg = next(t for t in study.get_trials() if t.user_attrs.get("baseline") == "vargfacenet")
    assert "FLOPs 1,022,864,152 > 1,000,000,000" in varg.user_attrs["over_budget"]
    assert varg.constraints["flops"] > 0  # a reference point, never on the feasible front
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        assert "spec" in attrs and "cost" in attrs
        if attrs["kind"] == "trained":
            assert 0.0 <= attrs["metrics"]["accuracy"] <= 1.0 and attrs["wall_seconds"] > 0
    assert_budget_invariant(study, config.budgets)


def test_the_score_objective_maximises_the_chosen_signal_and_every_trial_keeps_all_signals(tmp_path):
    config = tiny_config(tmp_path, trials=2, score="loss_sum", objectives="score,flops")
    study = run_search(config, Reporter("quiet"))
    trained = [t for t in trials_by_kind(study)["trained"] if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trained) == 2
    for trial in trained:
        signals = trial.user_attrs["metrics"]["signals"]
        assert {"accuracy", "loss_sum", "loss_ema", "synflow", "naswot", "zico", "grad_norm", "snip",
                "log_flops", "log_params"} <= set(signals)
        assert trial.values[0] == -signals["loss_sum"]  # a lower loss sum is the better score
    frame = study_frame(study)
    assert frame[frame.kind == "trained"].signal_loss_sum.notna().all()
    with pytest.raises(NasfaceError, match="--score 'vibes': choose a signal"):
        run_search(tiny_config(tmp_path / "other", score="vibes"), Reporter("quiet"))


def test_continuing_a_study_adds_trials_and_keeps_old_ones(tmp_path):
    first = run_search(tiny_config(tmp_path, trials=1), Reporter("quiet"))
    numbers = {t.number for t in first.get_trials()}
    again = run_search(tiny_config(tmp_path, trials=2), Reporter("quiet"))
    assert numbers <= {t.number for t in again.get_trials()}
    assert len([t for t in trials_by_kind(again)["trained"]]) == 2
    with pytest.raises(NasfaceError, match="created with other settings"):
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
    trained = trials_by_kind(study)["trained"]
    assert len(trained) == 3
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trained)
    assert_budget_invariant(study, config.budgets)



def test_an_inline_trial_keeps_beating_while_it_trains(tmp_path, monkeypatch):
    """The loop is blocked in an inline candidate: the heartbeat thread must beat meanwhile, or a
    driver on another machine would take the trial for an orphan after STALE_SECONDS."""
    import time

    from nasface import search

    monkeypatch.setattr(search, "HEARTBEAT_SECONDS", 0.1)
    config = tiny_config(tmp_path, trials=1)
    beats = []
    train = search.run_candidate

    def slow_candidate(payload):
        def heartbeat() -> float:
            study = optuna.load_study(study_name=config.study, storage=config.storage_url)
            (trial,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            return trial.user_attrs["heartbeat"]

        first = heartbeat()
        time.sleep(1.0)
        beats.append(heartbeat() - first)
        return train(payload)

    monkeypatch.setattr(search, "run_candidate", slow_candidate)
    study = run_search(config, Reporter("quiet"))
    assert len(trials_by_kind(study)["trained"]) == 1
    assert beats and beats[0] >= 0.5, beats  # beaten during the second the candidate trained
