"""Progress of the long stages (rendering faces, training and running the teacher), the search's time
left, where its time went, and Ctrl-C during a stage.

Real `nasface search` processes on tiny settings; their ``--output jsonl`` events are what is checked.
"""

from __future__ import annotations

import io
import json
import signal
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from nasface.cli.base import NOTHING_HALF_WRITTEN
from nasface.arch.model import count
from nasface.core.stages import Stages
from nasface.ui.progress import Reporter, StageDisplay
from nasface.search import record, run_search
from nasface.search.eta import Progress
from nasface.search.study import baseline_presets
from nasface.search.live import LiveTrial
from nasface.arch.space import load_space
from nasface.training.teacher import TEACHER_EMBEDDING, TEACHER_TRAINING
from tests.factories import finish, launch, run
from tests.factories import TINY_DATA, tiny_config

RENDERING = "rendering faces"


def search_args(tmp_path: Path, *extra: str, output: str = "jsonl") -> list[str]:
    """A search that builds its data and teacher and trains no candidate (--trials 0)."""
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in TINY_DATA.items()]
    return ["search", *flags, "--budget-flops", "1G", "--budget-mem", "20MB", "--studies-dir",
            str(tmp_path / "studies"), "--study", "p", "--executor", "inline", "--proxy-steps", "3", "--proxy-batch",
            "8", "--resolution", "32", "--device", "cpu", "--no-baselines", "--trials", "0", "--output", output,
            *extra]


def events(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def updates(all_events: list[dict], stage: str) -> list[dict]:
    return [e for e in all_events if e["event"] == "progress" and e["stage"] == stage]


def ends(all_events: list[dict]) -> list[dict]:
    return [e for e in all_events if e["event"] == "progress_end"]


def assert_counts_up_to_its_total(stage_updates: list[dict], unit: str) -> None:
    done = [e["done"] for e in stage_updates]
    assert done[0] == 0 and done[-1] == stage_updates[0]["total"] > 0, done
    assert all(later > earlier for earlier, later in zip(done, done[1:])), done
    assert {e["unit"] for e in stage_updates} == {unit}
    assert stage_updates[0]["eta_seconds"] is None  # nothing done yet: no rate to extrapolate
    assert all(e["eta_seconds"] >= 0 for e in stage_updates[1:]) and stage_updates[-1]["eta_seconds"] == 0


def cache_entries(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "studies" / "p" / "cache"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def assert_only_whole_caches(tmp_path: Path) -> None:
    """No staging or temporary folder anywhere, and every cache folder holds its completion file."""
    assert not [p for p in (tmp_path / "studies").rglob(".*")], list((tmp_path / "studies").rglob(".*"))
    for entry in cache_entries(tmp_path):
        assert (entry / "manifest.json").is_file() or (entry / "teacher.json").is_file(), entry


def test_a_first_search_shows_each_stage_with_its_eta_and_a_second_finds_them_cached(tmp_path):
    teacher = ("--teacher", "auto", "--teacher-steps", "6")
    rc, out, err = run(*search_args(tmp_path, *teacher))
    assert rc == 0, err
    first = events(out)
    rendering, training, embedding = (updates(first, name) for name in (RENDERING, TEACHER_TRAINING,
                                                                          TEACHER_EMBEDDING))
    assert_counts_up_to_its_total(rendering, "faces")
    assert rendering[-1]["total"] == 12 * 4 + 8 * 4  # training and held-out identities, 4 faces each
    assert_counts_up_to_its_total(training, "steps")
    assert training[-1]["total"] == 6 and all(isinstance(e["loss"], float) for e in training[1:])
    assert_counts_up_to_its_total(embedding, "faces")
    assert [(e["stage"], e["status"]) for e in ends(first)] == [(RENDERING, "done"), (TEACHER_TRAINING, "done"),
                                                                (TEACHER_EMBEDDING, "done")]
    assert first.index(rendering[-1]) < first.index(training[0]) < first.index(embedding[0])
    # The search's time left: unknown while faces are rendered (nothing has been timed that predicts
    # training), known from the teacher's first step on, and never less than the stage's own.
    assert all(e["search_eta_seconds"] is None for e in rendering)
    assert all(e["search_eta_seconds"] >= e["eta_seconds"] for e in training[1:] + embedding[1:])
    seconds = first[-1]["seconds"]
    assert first[-1]["event"] == "finish" and list(seconds) == ["data", "teacher", "candidates", "other", "total"]
    assert seconds["teacher"] >= sum(e["seconds"] for e in ends(first)[1:]) - 0.1
    assert abs(sum(seconds.values()) - 2 * seconds["total"]) < 0.5  # the sections add up to the total

    rc, out, err = run(*search_args(tmp_path, *teacher, output="rich"))  # again, as a person reads it
    assert rc == 0, err
    assert RENDERING not in out and TEACHER_TRAINING not in out  # cached: no stage runs
    assert out.strip().splitlines()[-1].startswith("where the time went: data 0m0")


def test_the_search_eta_adds_the_candidates_at_the_teachers_time_per_flop():
    teacher = count("mobilefacenet")["flops"]
    progress = Progress(planned=5, proxy_steps=10, parallel=2, trained=1, expected_flops=teacher / 2,
                        teacher_flops=teacher)
    assert progress.eta_seconds() is None  # nothing timed yet
    with Stages().stage(TEACHER_TRAINING, 100, "steps") as stage:
        stage.started -= 20.0  # as if 20 s had passed
        stage.update(40)
        own = stage.eta_seconds()
        search = progress.eta_during(stage)
    assert own == pytest.approx(30.0, abs=0.2)  # 0.5 s a step, 60 steps left
    # 4 candidates of half the teacher's FLOPs, 2 at a time, each 10 steps at 0.25 s
    assert search == pytest.approx(own + 4 * 10 * 0.25 / 2, abs=0.2)


def test_the_search_eta_counts_the_queued_baselines_by_their_flops_from_the_start():
    """Before any candidate: the seed networks waiting weigh by their FLOPs, the trial in training by
    its steps left, at the rate its job measures; once trials finish, at their pooled wall time."""
    big, small = count("dw-seesawfacenet")["flops"], count("mobiface")["flops"]
    progress = Progress(planned=2, proxy_steps=100, expected_flops=small)
    progress.live[0] = LiveTrial(number=0, label="baseline mobilefacenet", flops=small, steps=100, baseline=True,
                                 started=time.time(), phase="training", done=40, steps_per_second=2.0)
    rate = 1 / (2.0 * small)  # seconds per step per FLOP, from the trial in training
    alone = progress.eta_seconds()
    assert alone == pytest.approx((60 * small + 2 * 100 * small) * rate)
    progress.queued_flops = {1: big}
    with_big = progress.eta_seconds()
    progress.queued_flops = {1: small, 0: big}  # trial 0 is in training: counted once, by its steps left
    with_small = progress.eta_seconds()
    assert with_big - alone == pytest.approx(100 * big * rate)  # the heavier seed network costs more...
    assert (with_big - alone) / (with_small - alone) == pytest.approx(big / small)  # ...by its FLOPs
    progress.finished(seconds=300.0, steps=100, flops=big)  # a finished trial's wall time rules from now on
    assert progress.eta_seconds() == pytest.approx((60 * small + 100 * small + 2 * 100 * small) * 300.0 / (100 * big))


STEPS = 20


def trial_updates(all_events: list[dict], number: int) -> list[dict]:
    return [e for e in all_events if e["event"] == "progress" and e.get("trial") == number]


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["inline", "ray"])
def test_a_trial_in_training_shows_its_step_loss_rate_and_the_search_eta_counts_the_queued_baselines(
        tmp_path, capsys, executor):
    """While each seed network trains (in the driver, or in a Ray worker) a progress line shows every
    interval; from the first one the search's time left includes the seed networks still queued."""
    config = tiny_config(tmp_path, baselines=True, trials=0, proxy_steps=STEPS, executor=executor)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray worker of one CPU: torch's spinning threads crawl on a loaded machine
    try:
        study = run_search(config, Reporter("jsonl", interval=0.2))
    finally:
        torch.set_num_threads(threads)
    everything = events(capsys.readouterr().out)
    trained = [e for e in everything if e["event"] == "trial" and e["kind"] == "baseline"]
    assert len(trained) == len(baseline_presets(load_space()))
    for finished in trained:  # each one showed while it trained, before its outcome
        shown = trial_updates(everything[:everything.index(finished)], finished["trial"])
        assert shown and shown[0]["total"] == STEPS and {e["unit"] for e in shown} == {"steps"}
        assert {e["stage"] for e in shown} == {f"baseline {finished['baseline']}"}
    training = [e for e in everything if e["event"] == "progress" and e.get("phase") == "training"]
    assert training and all(0 < e["done"] <= STEPS and isinstance(e["loss"], float) for e in training)
    rated = [e for e in training if e["steps_per_second"] is not None]  # from its second step seen on
    assert all(e["steps_per_second"] > 0 for e in rated)
    # A trial's parts were timed before the first trained (nasface.search.eta), so the time left is
    # known from the first line of the first trial, and it is more than that trial's own steps left:
    # its evaluation and every seed network queued are in it.
    timed = [e for e in everything if e["event"] == "progress_end" and e["stage"] == "timing a trial"]
    first_lines = trial_updates(everything, trained[0]["trial"])
    assert timed and timed[0]["status"] == "done" and everything.index(timed[0]) < everything.index(first_lines[0])
    assert all(e["search_eta_seconds"] is not None for e in first_lines)
    first = next(e for e in rated if e["trial"] == trained[0]["trial"])
    assert first["search_eta_seconds"] > first["eta_seconds"]
    assert not list((tmp_path / "studies" / "t" / "live").iterdir())  # each trial's file went with it


def test_a_trial_in_training_is_one_dim_line_in_a_log():
    reporter = Reporter("rich")
    reporter.console = Console(file=io.StringIO(), width=200)
    trial = LiveTrial(number=3, label="trial 3", flops=10**8, steps=200, baseline=False, started=time.time() - 30,
                      phase="training", done=50, loss=12.25, steps_per_second=2.5)
    reporter.training(trial, 700.0)
    trial.phase = "starting"
    reporter.training(trial, None)
    lines = reporter.console.file.getvalue().splitlines()
    assert lines[0] == "  trial 3: step 50/200, loss 12.25, 2.50 steps/s, ~1m00s left, 0m30s elapsed; search ~11m40s left"
    assert lines[1] == "  trial 3: starting (zero-cost scores), 0m30s elapsed"


def test_the_report_hint_after_a_search_is_a_command_a_shell_runs():
    from nasface.ui.progress import report_command
    from nasface.search import config_from_options

    assert report_command(config_from_options({"study": "tiny"})) == "nasface report tiny"
    moved = config_from_options({"study": "my study", "studies_dir": "elsewhere/studies"})
    assert report_command(moved) == "nasface report 'my study' --studies-dir elsewhere/studies"


def test_a_weighted_stage_extrapolates_by_the_work_left_not_the_units_left():
    """Runs of 1, 1 and 8 units of work: 20 s for the first two gives 80 s for the third, where
    counting runs would say 10 s."""
    with Stages().stage("fidelity runs", 3, "runs", weights=[1.0, 1.0, 8.0]) as stage:
        stage.started -= 20.0
        assert stage.eta_seconds() is None  # nothing done: no rate yet
        stage.update(2)
        assert stage.eta_seconds() == pytest.approx(80.0, abs=0.5)
        stage.leave_out(2)  # e.g. it would not end before a timeout: nobody will do it
        assert stage.eta_seconds() == 0
        stage.update(3)
        assert stage.eta_seconds() == 0
    with pytest.raises(ValueError, match="2 weights for 3 units"), Stages().stage("runs", 3, "runs", weights=[1, 2]):
        pass


def test_a_stage_in_a_log_is_a_line_every_interval_then_a_closing_line():
    output = io.StringIO()
    display = StageDisplay("rich", Console(file=output, width=200), interval=0.0)
    with display.stage(TEACHER_TRAINING, 4, "steps") as stage:
        for step in range(1, 5):
            stage.update(step, loss=2.5)
    lines = output.getvalue().splitlines()
    assert lines[0].startswith("  teacher training: 1/4 steps (25%), loss 2.5, 0m00s elapsed, ~0m00s left")
    assert len(lines) == 5 and lines[-1] == "  teacher training: 4 steps in 0m00s"
    with pytest.raises(KeyboardInterrupt), display.stage(RENDERING, 10, "faces") as stage:
        stage.update(3)
        raise KeyboardInterrupt
    assert output.getvalue().splitlines()[-1] == "  rendering faces: interrupted at 3/10 faces"


@pytest.mark.slow
@pytest.mark.parametrize("stage, extra", [
    (RENDERING, ["--train-identities", "150", "--images-per-identity", "10", "--teacher", "none"]),
    (TEACHER_TRAINING, ["--teacher", "auto", "--teacher-steps", "40"]),
])
def test_ctrl_c_in_a_stage_stops_cleanly_and_the_next_run_does_the_stage_again(tmp_path, stage, extra):
    args = search_args(tmp_path, *extra)
    process = launch(*args)
    try:
        deadline = time.time() + 300
        for line in process.stdout:  # Ctrl-C once the stage has begun to make progress
            event = json.loads(line)
            if event["event"] == "progress" and event["stage"] == stage and event["done"] > 0:
                process.send_signal(signal.SIGINT)
                break
            assert time.time() < deadline
    finally:
        rc, out, err = finish(process)
    assert rc == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == f"interrupted: {NOTHING_HALF_WRITTEN}"
    assert ends(events(out))[-1]["stage"] == stage and ends(events(out))[-1]["status"] == "interrupted"
    assert_only_whole_caches(tmp_path)
    cached = [entry.name for entry in cache_entries(tmp_path)]
    if stage == RENDERING:
        assert cached == []
    else:  # the data was finished before the teacher began: it is kept, and no teacher is
        assert len(cached) == 1 and not cached[0].startswith("teacher-")

    rc, out, err = run(*args)
    assert rc == 0, err
    again = updates(events(out), stage)
    assert again[0]["done"] == 0 and again[-1]["done"] == again[-1]["total"]  # from the start, to the end
    assert_only_whole_caches(tmp_path)
    assert len(cache_entries(tmp_path)) == (1 if stage == RENDERING else 2)
