"""``nasface search`` end to end: real Optuna storage, real Ray, real (tiny) training."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from nasface.budget import Budgets
from nasface.errors import NasfaceError
from nasface.progress import Reporter
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


def cli(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasface", *args], capture_output=True, text=True,
                          timeout=600, **kwargs)


TINY_FLAGS = ["--teacher", "none", "--proxy-steps", "3", "--proxy-batch", "8", "--resolution", "32",
              "--device", "cpu", "--no-baselines"]


@pytest.mark.parametrize("flag, value", [
    ("--budget-flops", "abc"), ("--budget-flops", "-1G"), ("--budget-flops", "1X"), ("--budget-flops", ""),
    ("--budget-flops", "0"), ("--budget-mem", "lots"), ("--timeout", "soon"), ("--data", "no/such/folder"),
    ("--space", "no-such-space.yaml"), ("--sampler", "annealing"),
])
def test_bad_search_input_is_one_line_exit_2_nothing_written(tmp_path, flag, value):
    result = cli("search", flag, value, "--studies-dir", str(tmp_path / "studies"), *TINY_FLAGS)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "studies").exists()


@pytest.mark.slow
def test_sigkill_and_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    studies = tmp_path / "studies"
    definition = tmp_path / "k.yaml"
    definition.write_text(json.dumps(TINY_DATA))  # JSON is YAML: the tiny proxy data sizes
    args = ["search", "--config", str(definition), "--budget-flops", "1G", "--budget-mem", "20MB",
            "--studies-dir", str(studies), "--study", "k", "--executor", "inline", "--trials", "4",
            "--output", "jsonl", "--proxy-steps", "150", "--proxy-batch", "8", "--resolution", "32",
            "--teacher", "none", "--device", "cpu", "--no-baselines", "--seed", "3"]
    first = subprocess.Popen([sys.executable, "-m", "nasface", *args], stdout=subprocess.PIPE, text=True)
    storage = f"sqlite:///{studies / 'k' / 'study.db'}"
    deadline = time.time() + 300
    while time.time() < deadline:
        line = first.stdout.readline()
        if line and json.loads(line).get("event") == "trial" and json.loads(line).get("kind") == "trained":
            break
    while time.time() < deadline:  # kill while a candidate is being trained
        study = optuna.load_study(study_name="k", storage=storage)
        if any("training_started" in t.user_attrs
               for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))):
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    study = optuna.load_study(study_name="k", storage=storage)
    completed_before = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]
    running_before = [t for t in study.get_trials() if t.state == optuna.trial.TrialState.RUNNING]
    assert completed_before and running_before  # killed between trials' training
    second = subprocess.run([sys.executable, "-m", "nasface", *args], capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    study = optuna.load_study(study_name="k", storage=storage)
    trials = study.get_trials()
    after = {t.number: t for t in trials}
    for trial in completed_before:  # nothing completed was lost or changed
        assert after[trial.number].state == optuna.trial.TrialState.COMPLETE
        assert after[trial.number].values == trial.values
    for trial in running_before:  # the interrupted ones failed with the reason, and re-ran
        assert after[trial.number].state == optuna.trial.TrialState.FAIL
        assert "interrupted" in after[trial.number].user_attrs["fail_reason"]
        assert any(t.user_attrs.get("retry_of") == trial.number and t.state == optuna.trial.TrialState.COMPLETE
                   for t in trials)
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    trained = [t for t in trials if t.user_attrs.get("kind") == "trained"
               and t.state == optuna.trial.TrialState.COMPLETE]
    assert len(trained) == 4
    assert len({json.dumps(t.params, sort_keys=True) for t in trained}) == len(trained)  # no duplicate


@pytest.mark.slow
def test_search_on_a_two_node_ray_cluster(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        config = tiny_config(tmp_path, executor="ray", address=cluster.address, workers=2, cpus_per_trial=1,
                             trials=4, proxy_steps=15)
        study = run_search(config, Reporter("quiet"))
    finally:
        cluster.shutdown()
    trained = [t for t in study.get_trials() if t.user_attrs.get("kind") == "trained"]
    assert len(trained) == 4
    nodes = {t.user_attrs["metrics"]["ray_node"] for t in trained}
    assert len(nodes) == 2  # both nodes trained candidates
    assert_budget_invariant(study, config.budgets)
