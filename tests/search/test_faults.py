"""Faults injected into real searches: a killed driver, a killed Ray worker, candidates that diverge
or raise, two drivers on one study (SQLite and PostgreSQL), a full disk, a read-only study folder.

Real Optuna storages, real Ray, real `nasface` processes; the tiny proxy keeps each one short.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import torch

from nasface.arch.model import count
from nasface.ui.progress import Reporter
from nasface.search import job, record, run_search
from nasface.search.driver import held_interrupt
from nasface.search.live import read_live
from nasface.search.study import baseline_presets
from nasface.arch.space import load_space
from nasface.arch.spec import load_spec
from tests.factories import (POSTGRES, STATES, created_study, finish, launch, needs_postgres, run, search_args,
                             tiny_config)


def sqlite_url(tmp_path: Path, study: str) -> str:
    return f"sqlite:///{tmp_path / 'studies' / study / 'study.db'}"


def report_rows(tmp_path: Path, study: str) -> dict[int, dict]:
    """Every trial as `nasface report --csv` writes it, by number."""
    out = tmp_path / f"{study}.csv"
    rc, _, err = run("report", study, "--studies-dir", str(tmp_path / "studies"), "--csv", str(out), "--json")
    assert rc == 0, err
    with open(out, newline="") as handle:
        return {int(row["number"]): row for row in csv.DictReader(handle)}


def snapshot(study: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.values, t.params) for t in study.get_trials()]


def assert_one_clear_line(rc: int, err: str, *phrases: str) -> None:
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for phrase in phrases:
        assert phrase in lines[0], err


# -- the driver is killed ------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_and_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    args = search_args(tmp_path, "k", "--trials", "4", "--no-baselines", "--seed", "3", steps=30)
    storage = sqlite_url(tmp_path, "k")
    first = launch(*args)
    try:
        deadline = time.time() + 300
        for line in first.stdout:  # one candidate finished...
            if json.loads(line).get("event") == "trial" and json.loads(line).get("kind") == "candidate":
                break
        while time.time() < deadline:  # ...and the next one is training: kill the driver now
            study = optuna.load_study(study_name="k", storage=storage)
            if any(facts.in_training for facts in record.records(study, states=(STATES.RUNNING,))):
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    finally:
        finish(first)
    study = optuna.load_study(study_name="k", storage=storage)
    completed_before = [t for t in study.get_trials() if t.state == STATES.COMPLETE]
    running_before = [t for t in study.get_trials() if t.state == STATES.RUNNING]
    assert completed_before and running_before  # killed between trials' training
    rc, _, err = run(*args)
    assert rc == 0, err
    study = optuna.load_study(study_name="k", storage=storage)
    trials = study.get_trials()
    after = {t.number: t for t in trials}
    for trial in completed_before:  # nothing completed was lost or changed
        assert after[trial.number].state == STATES.COMPLETE
        assert after[trial.number].values == trial.values
    facts = {t.number: record.read(t) for t in trials}
    for trial in running_before:  # the interrupted ones failed with the reason, and re-ran
        assert after[trial.number].state == STATES.FAIL and facts[trial.number].kind == "interrupted"
        assert "interrupted" in facts[trial.number].reason
        assert any(facts[t.number].retry_of == trial.number and t.state == STATES.COMPLETE for t in trials)
    assert not [t for t in trials if t.state in (STATES.RUNNING, STATES.WAITING)]
    trained = [t for t in trials if facts[t.number].kind == "candidate"]
    assert len(trained) == 4
    assert len({json.dumps(t.params, sort_keys=True) for t in trained}) == len(trained)  # no duplicate


# -- a Ray worker is killed ----------------------------------------------------------------------
def descendants(root: int) -> dict[int, str]:
    """pid -> command line (as the process titles itself) of every process below ``root``."""
    parents, titles = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            titles[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (OSError, IndexError, ValueError):
            continue  # ended while being read
    below, found = {root}, True
    while found:
        found = False
        for pid, parent in parents.items():
            if parent in below and pid not in below:
                below.add(pid)
                found = True
    return {pid: titles[pid] for pid in below - {root} if pid in titles}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes through /proc")
def test_a_killed_ray_worker_is_retried_then_its_trial_fails_and_the_study_goes_on(tmp_path):
    args = search_args(tmp_path, "w", "--trials", "2", "--no-baselines", "--workers", "1", steps=20,
                       executor="ray")
    driver = launch(*args)
    killed: list[int] = []
    target = None
    try:
        deadline = time.time() + 420
        # Ray names each task after its trial (ray::nasface-trial-N): kill the worker running the
        # first trained trial every time it is started again, one attempt more than Ray retries.
        while len(killed) < 3 and driver.poll() is None and time.time() < deadline:
            for pid, title in descendants(driver.pid).items():
                if not title.startswith("ray::nasface-trial-") or pid in killed:
                    continue
                target = target or title
                if title == target:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
            time.sleep(0.1)
    finally:
        rc, _, err = finish(driver)
    assert rc == 0, err
    assert len(killed) == 3, killed  # the first attempt and Ray's two retries, each in a new process
    number = int(target.rsplit("-", 1)[1])
    study = optuna.load_study(study_name="w", storage=sqlite_url(tmp_path, "w"))
    failed = record.read(study.trials[number])
    assert failed.state == "FAIL" and failed.kind == "failed"
    assert failed.reason.startswith("worker died: its process ended in each of 3 attempts")
    others = [facts for facts in record.records(study) if facts.kind == "candidate"]
    assert len(others) == 1 and others[0].state == "COMPLETE"  # the study went on and finished
    assert record.candidates_counted(study) == 2  # --trials 2: the failed candidate counts, it was trained
    assert report_rows(tmp_path, "w")[number]["fail_reason"] == failed.reason


# -- candidates that diverge or raise ------------------------------------------------------------
@pytest.fixture
def one_thread():
    """Train in this process on one torch thread (see ``launch``), as the drivers started here do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_diverging_and_raising_candidates_fail_with_the_reason_and_the_study_goes_on(tmp_path, monkeypatch,
                                                                                    one_thread):
    real = job.run_candidate
    calls: list[str] = []

    def faulty(payload: dict) -> dict:
        calls.append(payload["spec"]["name"])
        if len(calls) == 1:  # diverges for real: trained at an absurd learning rate
            return real({**payload, "proxy": {**payload["proxy"], "lr": 1e12}})
        if len(calls) == 2:  # raises inside the job, as a CUDA fault or a bug in a block would
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(payload)

    monkeypatch.setattr(job, "run_candidate", faulty)
    study = run_search(tiny_config(tmp_path, trials=3), Reporter("quiet"))
    trained = [facts for facts in record.records(study) if facts.kind in ("candidate", "failed")]
    assert [(facts.kind, facts.state) for facts in trained] == [("failed", "FAIL"), ("failed", "FAIL"),
                                                                ("candidate", "COMPLETE")]
    diverged, raised, fine = trained
    assert diverged.reason.startswith("diverged: the loss became")
    assert raised.reason == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert 0 <= fine.accuracy <= 1
    rows = report_rows(tmp_path, "t")
    for facts in (diverged, raised):
        assert rows[facts.number]["state"] == "FAIL" and rows[facts.number]["kind"] == "failed"
        assert rows[facts.number]["fail_reason"] == facts.reason
    assert rows[fine.number]["state"] == "COMPLETE" and rows[fine.number]["fail_reason"] == ""


@pytest.mark.slow
def test_a_driver_killed_while_a_promotion_trains_loses_nothing_and_promotes_once(tmp_path):
    args = search_args(tmp_path, "sh", "--trials", "4", "--no-baselines", "--seed", "1", "--rungs", "4,30",
                       "--eta", "2", "--sampler", "random")
    storage = sqlite_url(tmp_path, "sh")
    first = launch(*args)
    try:
        assert json.loads(first.stdout.readline())["event"] == "start"
        deadline = time.time() + 300
        while time.time() < deadline:  # kill the driver while a promoted candidate is training
            study = created_study("sh", storage)
            if study is not None and any(facts.promoted and facts.in_training for facts in record.records(study)):
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
    finally:
        finish(first)
    killed = [facts for facts in record.records(optuna.load_study(study_name="sh", storage=storage))
              if facts.promoted and facts.in_training]
    assert killed, "the driver was not killed while a promotion trained"
    rc, _, err = run(*args)
    assert rc == 0, err
    everything = record.records(optuna.load_study(study_name="sh", storage=storage))
    (victim,) = killed
    assert everything[victim.number].kind == "interrupted"
    (retry,) = [facts for facts in everything if facts.retry_of == victim.number]
    assert (retry.kind, retry.rung, retry.promoted_from) == ("candidate", 1, victim.promoted_from)
    assert retry.metrics["resumed_at"] > 0  # it continued the rung below's run, whose state was kept for it
    sources = [facts.promoted_from for facts in everything if facts.promoted and facts.kind != "interrupted"]
    assert len(sources) == len(set(sources))  # each candidate promoted once, across both drivers
    assert record.candidates_counted(optuna.load_study(study_name="sh", storage=storage)) == 4
    assert not [facts for facts in everything if facts.state in ("RUNNING", "WAITING")]


def baseline_being_drawn(db_path: Path) -> int | None:
    """The number of a RUNNING baseline trial whose knobs are being suggested now (some stored, no
    spec yet), read straight from the SQLite file so that the 0.1-0.5 s window is not missed."""
    if not db_path.is_file():
        return None
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=0.1) as db:
            row = db.execute(
                "SELECT t.number FROM trials t WHERE t.state = 'RUNNING'"
                " AND EXISTS (SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'baseline')"
                " AND NOT EXISTS (SELECT 1 FROM trial_user_attributes a WHERE a.trial_id = t.trial_id AND a.key = 'spec')"
                " AND EXISTS (SELECT 1 FROM trial_params p WHERE p.trial_id = t.trial_id)").fetchone()
    except sqlite3.OperationalError:  # the schema is being created, or the writer holds the lock
        return None
    return None if row is None else row[0]


def assert_every_baseline_is_its_preset(study: optuna.Study) -> None:
    space = load_space()
    trained = [facts for facts in record.records(study) if facts.kind == "baseline"]
    assert sorted(facts.baseline for facts in trained) == sorted(baseline_presets(space))
    for facts in trained:
        assert facts.params == space.params_of(load_spec(facts.baseline)), facts.baseline
        assert facts.cost["flops"] == count(facts.baseline)["flops"], facts.baseline


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_baseline_stopped_while_its_knobs_are_drawn_comes_back_as_its_preset(tmp_path, stop):
    """The driver stops while a baseline's knobs are being written (just after the previous baseline
    trained); the retry, and every baseline the resumed study trains, is exactly its preset."""
    args = search_args(tmp_path, "b", "--trials", "1", "--seed", "0", steps=1)
    db_path = tmp_path / "studies" / "b" / "study.db"
    first = launch(*args)
    try:
        deadline, victim = time.time() + 600, None
        while victim is None and first.poll() is None and time.time() < deadline:
            victim = baseline_being_drawn(db_path)
            time.sleep(0.005)
        first.send_signal(stop)
    finally:
        rc, _, err = finish(first)
    assert victim is not None, "the driver was not stopped while a baseline's knobs were drawn"
    storage = sqlite_url(tmp_path, "b")
    study = optuna.load_study(study_name="b", storage=storage)
    if stop == signal.SIGINT:  # stopped in order: exit 130, nothing left running, the retry queued
        assert rc == 130, err
        assert err.strip().splitlines()[-1].startswith("interrupted: ") and "Traceback" not in err, err
        trials = study.get_trials()
        assert not [t for t in trials if t.state == STATES.RUNNING]
        assert record.read(trials[victim]).kind == "interrupted"
        (retry,) = [t for t in trials if record.read(t).retry_of == victim]
        assert retry.state == STATES.WAITING
        preset = load_spec(record.read(trials[victim]).baseline)
        assert retry.system_attrs["fixed_params"] == load_space().params_of(preset)
    rc, _, err = run(*args)
    assert rc == 0, err
    study = optuna.load_study(study_name="b", storage=storage)
    assert record.read(study.trials[victim]).kind == "interrupted"
    assert not [t for t in study.get_trials() if t.state in (STATES.RUNNING, STATES.WAITING)]
    assert_every_baseline_is_its_preset(study)


def test_held_interrupt_defers_ctrl_c_and_leaves_an_ignored_sigint_ignored():
    with pytest.raises(KeyboardInterrupt):
        with held_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the signal arrives inside the block: held, not raised here
            held = True
    assert held
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as `nohup` or `cmd &` without job control start it
    try:
        with held_interrupt():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # ignored throughout, never raised
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_ctrl_c_while_a_candidate_trains_exits_130_and_the_same_command_resumes(tmp_path):
    # The signal goes as soon as the first candidate's job says it trains (its live file: read in
    # microseconds, where the study's records can be seconds old on a loaded machine, old enough that a
    # signal once found the search finished, exit 0), and two more candidates are left after it.
    args = search_args(tmp_path, "c", "--trials", "3", "--no-baselines", "--seed", "2", steps=120)
    storage = sqlite_url(tmp_path, "c")
    live = tmp_path / "studies" / "c" / "live"
    first = launch(*args)
    try:
        assert json.loads(first.stdout.readline())["event"] == "start"
        deadline, seen = time.time() + 300, None
        while seen is None and time.time() < deadline:
            seen = next((int(path.stem.split("-")[1]) for path in sorted(live.glob("trial-*.json"))
                         if (read_live(path) or {}).get("phase") == "training"), None)
            time.sleep(0.01)
        first.send_signal(signal.SIGINT)
    finally:
        rc, out, err = finish(first)
    assert seen is not None
    assert rc == 130, err  # a script can tell an interrupted search from a finished one
    assert err.strip().splitlines()[-1].startswith("interrupted: ") and "Traceback" not in err, err
    assert json.loads(out.strip().splitlines()[-1])["event"] == "finish"  # its summary still printed
    trials = optuna.load_study(study_name="c", storage=storage).get_trials()
    assert not [t for t in trials if t.state == STATES.RUNNING]
    (victim,) = [t for t in trials if record.read(t).kind == "interrupted"]
    assert victim.number == seen and victim.params  # the candidate cut in training, every knob drawn
    (retry,) = [t for t in trials if record.read(t).retry_of == victim.number]
    assert retry.state == STATES.WAITING and retry.system_attrs["fixed_params"] == victim.params
    rc, _, err = run(*args)
    assert rc == 0, err
    study = optuna.load_study(study_name="c", storage=storage)
    assert record.trained_candidates(study) == 3
    assert record.read(study.trials[retry.number]).kind == "candidate"  # the same architecture, trained
    assert study.trials[retry.number].params == victim.params


# -- two drivers on one study --------------------------------------------------------------------
def run_two_drivers(tmp_path: Path, study: str, storage: str | None, trials: int) -> optuna.Study:
    """Start two `nasface search` processes on the same study at the same moment; both must succeed."""
    extra = ["--trials", str(trials), "--seed", "0"] + (["--storage", storage] if storage else [])
    args = search_args(tmp_path, study, *extra, steps=1)
    drivers = [launch(*args), launch(*args)]
    for rc, _, err in [finish(driver) for driver in drivers]:
        assert rc == 0, err
        assert "Traceback" not in err and "database is locked" not in err, err
    return optuna.load_study(study_name=study, storage=storage or sqlite_url(tmp_path, study))


def assert_nothing_lost_or_doubled(study: optuna.Study, trials: int) -> None:
    everything = study.get_trials()
    assert sorted(t.number for t in everything) == list(range(len(everything)))  # unique, no gaps
    assert all(t.state in (STATES.COMPLETE, STATES.FAIL) for t in everything)  # nothing left behind
    facts = {t.number: record.read(t) for t in everything}
    baselines = [f.baseline for f in facts.values() if f.baseline]
    assert sorted(baselines) == sorted(set(baselines)), baselines  # each seed network enqueued once
    assert sorted(baselines) == sorted(baseline_presets(load_space()))
    trained = [t for t in everything if facts[t.number].kind == "candidate"]
    assert len(trained) == trials  # --trials counts the study's trained candidates, whoever trained them
    params = [json.dumps(t.params, sort_keys=True) for t in trained]
    assert len(set(params)) == len(params)  # no architecture trained twice
    drivers = {f.driver for f in facts.values() if f.trained}
    assert len(drivers) == 2  # both drivers trained candidates: they really ran side by side


@pytest.mark.slow
def test_two_drivers_share_a_sqlite_study(tmp_path):
    study = run_two_drivers(tmp_path, "both", None, trials=6)
    assert_nothing_lost_or_doubled(study, trials=6)
    with sqlite3.connect(tmp_path / "studies" / "both" / "study.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@pytest.mark.slow
def test_two_drivers_with_rungs_promote_each_candidate_once(tmp_path):
    """Successive halving's promotions are decided under the study lock: two drivers started at the
    same moment never promote one candidate twice, and each promotion continues its own run."""
    args = search_args(tmp_path, "sh2", "--trials", "6", "--no-baselines", "--seed", "2", "--rungs", "4,12",
                       "--eta", "2", "--sampler", "random")
    drivers = [launch(*args), launch(*args)]
    for rc, _, err in [finish(driver) for driver in drivers]:
        assert rc == 0, err
        assert "Traceback" not in err and "database is locked" not in err, err
    study = optuna.load_study(study_name="sh2", storage=sqlite_url(tmp_path, "sh2"))
    everything = record.records(study)
    promotions = [facts for facts in everything if facts.promoted]
    sources = [facts.promoted_from for facts in promotions]
    assert promotions and len(sources) == len(set(sources))      # each candidate promoted once
    # (asynchronous halving may promote more than 1/eta of a rung in all: a candidate is promoted if
    # it is in the top 1/eta of those finished when it is judged; the rule is tested in test_rungs.py)
    for facts in promotions:
        source = everything[facts.promoted_from]
        assert (source.kind, source.rung, facts.rung) == ("candidate", 0, 1)
        assert facts.kind == "candidate" and facts.metrics["resumed_at"] > 0  # continued, not retrained
    assert record.candidates_counted(study) == 6
    assert len({facts.driver for facts in everything if facts.trained}) == 2  # both really ran
    assert not [facts for facts in everything if facts.state in ("RUNNING", "WAITING")]


@pytest.mark.slow
def test_a_driver_killed_beside_another_is_taken_over(tmp_path):
    args = search_args(tmp_path, "pair", "--trials", "4", "--no-baselines", "--seed", "0", steps=30)
    storage = sqlite_url(tmp_path, "pair")
    victim, survivor = launch(*args), launch(*args)
    training: dict = {}
    try:
        for driver in (victim, survivor):  # each announces itself before it decodes the data
            assert json.loads(driver.stdout.readline())["event"] == "start"
        deadline = time.time() + 300
        while time.time() < deadline:  # kill one driver while both are training a candidate
            study = created_study("pair", storage)
            training = {} if study is None else {
                facts.driver: facts for facts in record.records(study, states=(STATES.RUNNING,)) if facts.in_training}
            if len(training) == 2:
                break
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        victim.wait()  # reaped: its pid no longer exists, as after a crash
    finally:
        finish(victim)
        rc, _, err = finish(survivor)
    assert rc == 0, err  # the survivor waited for the victim's candidate, then trained it again itself
    orphan = training[f"{socket.gethostname()}:{victim.pid}"]
    trials = optuna.load_study(study_name="pair", storage=storage).get_trials()
    assert trials[orphan.number].state == STATES.FAIL
    assert record.read(trials[orphan.number]).reason == "interrupted: its driver stopped; re-enqueued"
    retry = [t for t in trials if record.read(t).retry_of == orphan.number]
    assert len(retry) == 1 and retry[0].state == STATES.COMPLETE
    assert retry[0].params == trials[orphan.number].params
    assert not [t for t in trials if t.state in (STATES.RUNNING, STATES.WAITING)]
    trained = [t for t in trials if record.read(t).kind == "candidate"]
    assert len(trained) == 4  # --trials 4 for the study, though one driver died
    assert len({json.dumps(t.params, sort_keys=True) for t in trained}) == 4


@pytest.mark.slow
@needs_postgres
def test_two_drivers_share_a_postgresql_study(tmp_path):
    name = f"both-{uuid.uuid4().hex[:8]}"
    try:
        study = run_two_drivers(tmp_path, name, POSTGRES, trials=6)
        assert_nothing_lost_or_doubled(study, trials=6)
    finally:
        try:
            optuna.delete_study(study_name=name, storage=POSTGRES)
        except KeyError:
            pass


# -- the disk is full, the folder is read-only -----------------------------------------------------
def _file_size_limit(limit: int):
    def apply() -> None:  # in the child: writes past ``limit`` bytes fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


@pytest.mark.slow
def test_a_full_disk_is_one_clear_line_and_the_study_stays_readable(tmp_path):
    args = search_args(tmp_path, "full", "--no-baselines")
    rc, _, err = run(*args, "--trials", "1")
    assert rc == 0, err
    storage = sqlite_url(tmp_path, "full")
    before = snapshot(optuna.load_study(study_name="full", storage=storage))
    # No file may grow past 4 KiB: SQLite's journal for the next write cannot be written.
    rc, _, err = run(*args, "--trials", "2", preexec_fn=_file_size_limit(4096))
    assert_one_clear_line(rc, err, "cannot write the study storage", "free disk space")
    assert snapshot(optuna.load_study(study_name="full", storage=storage)) == before
    with sqlite3.connect(tmp_path / "studies" / "full" / "study.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert set(report_rows(tmp_path, "full")) == {number for number, *_ in before}
    rc, _, err = run(*args, "--trials", "2")  # space again: the same command continues the study
    assert rc == 0, err
    study = optuna.load_study(study_name="full", storage=storage)
    assert snapshot(study)[:len(before)] == before
    assert len([facts for facts in record.records(study) if facts.kind == "candidate"]) == 2


def read_only(folder: Path, command: list[str]) -> list[str]:
    """``command`` run with ``folder`` mounted read-only (a private mount namespace, as root or not)."""
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    namespace = ["unshare", "-m"] if os.geteuid() == 0 else ["unshare", "-rm"]
    return [*namespace, "sh", "-c", script, "sh", str(folder), *command]


def can_mount_read_only(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp_path / "probe"
    probe.mkdir()
    done = subprocess.run(read_only(probe, ["touch", str(probe / "x")]), capture_output=True, text=True)
    return done.returncode != 0 and not (probe / "x").exists() and "mount" not in done.stderr


def test_a_read_only_study_folder_is_one_clear_line_and_the_study_stays_readable(tmp_path):
    args = search_args(tmp_path, "ro", "--no-baselines")
    rc, _, err = run(*args, "--trials", "1")
    assert rc == 0, err
    folder = tmp_path / "studies" / "ro"
    before = snapshot(optuna.load_study(study_name="ro", storage=sqlite_url(tmp_path, "ro")))
    nasface_cmd = [sys.executable, "-m", "nasface"]
    if can_mount_read_only(tmp_path):
        wrap = lambda command: read_only(folder, command)  # noqa: E731
    elif os.geteuid() != 0:  # no mount namespace here, but permissions bind a non-root user
        folder.chmod(0o555)
        wrap = lambda command: command  # noqa: E731
    else:
        pytest.skip("running as root without mount namespaces (unshare -m): nothing can make a folder read-only")
    try:
        done = subprocess.run(wrap([*nasface_cmd, *args, "--trials", "2"]), capture_output=True, text=True,
                              timeout=600)
        assert_one_clear_line(done.returncode, done.stderr, "cannot write", "make it writable")
        report = subprocess.run(wrap([*nasface_cmd, "report", "ro", "--studies-dir", str(tmp_path / "studies"),
                                      "--json"]), capture_output=True, text=True, timeout=600)
        assert report.returncode == 0, report.stderr  # readable where it cannot be written
        assert json.loads(report.stdout)
    finally:
        folder.chmod(0o755)
    assert snapshot(optuna.load_study(study_name="ro", storage=sqlite_url(tmp_path, "ro"))) == before
