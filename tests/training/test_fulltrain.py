"""``nasface train``: full training of a recipe on real (small) data, kill + resume, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import nasface
from nasface.arch.checkpoint import load_checkpoint, read_metadata, save_weights
from nasface.data import open_source
from nasface.core.errors import NasfaceError
from nasface.training.recipe import Recipe, load_recipe, save_recipe
from nasface.training.fulltrain import (CHECKPOINT_FILE, FINAL_WEIGHTS, plan_from_recipe, prepare_training,
                                        run_training, train_recipe)
from nasface.ui.training_progress import TrainingReporter
from nasface.arch.spec import save_spec, spec_from_dict
from nasface.training.settings import ProxyBudget
from tests.factories import TINY_NET, write_recipe


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """Decoded faces shared by the tests (each source is decoded once)."""
    return tmp_path_factory.mktemp("faces")


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nasface", *args], capture_output=True, text=True,
                          timeout=timeout)


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[1].state_dict()


def test_the_recipe_schedule_in_steps():
    recipe = Recipe(spec="tiny", batch_size=32)
    plan = plan_from_recipe(recipe, images=400)  # 12.5 steps per epoch, 16 epochs
    assert plan.steps == 200 and plan.schedule.decay_steps == (112, 162, 188)
    rates = [plan.schedule.learning_rate(step, 0.1) for step in (0, 111, 112, 162, 188, 199)]
    assert rates == pytest.approx([0.1, 0.1, 0.01, 0.001, 1e-4, 1e-4])
    # --steps keeps the decay points at the same fraction of the run
    assert plan_from_recipe(Recipe(spec="tiny", steps=1600), images=10).schedule.decay_steps == (900, 1300, 1500)
    warm = plan_from_recipe(Recipe(spec="tiny", steps=160, warmup_epochs=1.0), images=10).schedule
    assert warm.warmup_steps == 10 and warm.learning_rate(0, 0.1) == pytest.approx(0.01)
    # the proxy keeps its warm-up-stable-decay schedule, through the same loop
    proxy = ProxyBudget().schedule
    assert (proxy.warmup_steps, proxy.decay_start) == (15, 120)


def test_recipe_fields_are_checked_and_paths_read_beside_it(tmp_path):
    path = write_recipe(tmp_path, data="faces", val_bins=("lfw.bin",))
    (tmp_path / "faces").mkdir()
    (tmp_path / "lfw.bin").write_bytes(b"")
    recipe = load_recipe(path)
    assert recipe.data == str(tmp_path / "faces") and recipe.val_bins == (str(tmp_path / "lfw.bin"),)
    path.write_text(path.read_text().replace("batch_size: 8", "batch_size: many"))
    with pytest.raises(NasfaceError, match=r"recipe.batch_size: expected an integer, got 'many'"):
        load_recipe(path)


def test_full_training_writes_weights_that_load_and_verifies_on_bins(tmp_path, cache_dir, shared_dir):
    pairs = shared_dir / "data" / "orl_rec" / "orl_pairs.bin"
    recipe = write_recipe(tmp_path, generations=2, val_bins=(str(pairs),))
    result = train_recipe(recipe, cache_dir=cache_dir)
    run = tmp_path / "run"  # the default output: beside the recipe
    assert result.weights == run / FINAL_WEIGHTS and result.spec == run / "spec.yaml"
    spec, model = load_checkpoint(result.weights)
    assert spec == TINY_NET and nasface.load_spec(result.spec) == TINY_NET
    assert int(read_metadata(result.weights)["step"]) == 6
    # recursive distillation: generation 2 distilled from generation 1, whose weights are kept
    assert [(s["name"], s["teacher"], s["steps"]) for s in result.stages] == \
        [("generation-1", None, 6), ("generation-2", "generation-1", 6)]
    assert torch.equal(weights_of(run / "generation-2.safetensors")["stem.0.weight"],
                       model.state_dict()["stem.0.weight"])
    for stage in result.stages:
        assert 0 <= stage["verification"]["orl_pairs"]["accuracy"] <= 1 and np.isfinite(stage["final_loss"])
    events = [json.loads(line)["event"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert {"start", "step", "checkpoint", "verification", "stage_done", "done"} <= set(events)
    assert not (run / CHECKPOINT_FILE).exists()  # finished: nothing left to resume
    assert json.loads((run / "result.json").read_text())["stages"] == result.stages


class _Killed(Exception):
    pass


class _KillAt(TrainingReporter):
    """Stops the run as a kill would: at a step after a checkpoint, before the next one."""

    def __init__(self, stage: str, step: int):
        super().__init__("quiet")
        self.kill_at = (stage, step)

    def stepped(self, stage, state, plan):
        super().stepped(stage, state, plan)
        if (stage, state.step) == self.kill_at:
            raise _Killed


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path, cache_dir):
    recipe = write_recipe(tmp_path, steps=8, generations=2)
    whole = train_recipe(recipe, output=tmp_path / "whole", cache_dir=cache_dir)
    with pytest.raises(_Killed):  # generation 2, step 5: its checkpoint at step 3 is on disk
        run_training(prepare_training(recipe, output=tmp_path / "killed", cache_dir=cache_dir),
                     _KillAt("generation-2", 5))
    assert torch.load(tmp_path / "killed" / CHECKPOINT_FILE, weights_only=True)["step"] == 3
    resumed = train_recipe(recipe, output=tmp_path / "killed", resume=True, cache_dir=cache_dir)
    assert [s["steps"] for s in resumed.stages] == [8, 8]
    assert [s["final_loss"] for s in resumed.stages] == [s["final_loss"] for s in whole.stages]
    expected, got = weights_of(whole.weights), weights_of(resumed.weights)
    assert all(torch.equal(expected[name], got[name]) for name in expected)


def test_resuming_with_another_recipe_or_spec_is_refused(tmp_path, cache_dir):
    recipe = write_recipe(tmp_path, steps=2)
    train_recipe(recipe, cache_dir=cache_dir)
    with pytest.raises(NasfaceError, match="already holds a training run; pass --resume"):
        prepare_training(recipe, cache_dir=cache_dir)
    with pytest.raises(NasfaceError, match=r"another recipe or spec \(plan.steps: 2 there, 3 now\)"):
        prepare_training(recipe, resume=True, steps=3, cache_dir=cache_dir)
    save_spec(spec_from_dict({**nasface.spec_to_dict(TINY_NET), "embedding": {"kind": "gdc", "width": 64, "size": 64}}),
              tmp_path / "tiny.yaml")
    with pytest.raises(NasfaceError, match=r"another recipe or spec \(spec.embedding.size: 128 there, 64 now\)"):
        prepare_training(recipe, resume=True, cache_dir=cache_dir)


def _write_folder_source(root: Path) -> str:
    faces = open_source("orl").load(identities=range(4), per_identity=3)
    for index, (face, label) in enumerate(zip(faces.images, faces.labels)):
        (root / f"person{label}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(face).save(root / f"person{label}" / f"{index}.png")
    return str(root)


@pytest.mark.parametrize("source", ["synthetic", "orl", "folder", "recordio"])
def test_every_kind_of_data_source_trains(source, tmp_path, cache_dir, request):
    data = {"synthetic": lambda: open_source("synthetic", num_identities=4, per_identity=3),
            "orl": lambda: "orl",
            "folder": lambda: _write_folder_source(tmp_path / "faces"),
            "recordio": lambda: str(request.getfixturevalue("shared_dir") / "data" / "orl_rec")}[source]()
    result = train_recipe(write_recipe(tmp_path, steps=2), data=data, cache_dir=cache_dir)
    assert load_checkpoint(result.weights)[0] == TINY_NET
    assert result.stages[0]["steps"] == 2


def test_auto_teacher_then_generations_with_margin_distillation(tmp_path, cache_dir):
    save_spec(TINY_NET, tmp_path / "teacher.yaml")
    recipe = write_recipe(tmp_path, teacher="auto", teacher_spec="teacher.yaml", distill="margin", generations=2,
                          steps=3)
    result = train_recipe(recipe, cache_dir=cache_dir)
    assert [(s["name"], s["teacher"]) for s in result.stages] == \
        [("teacher", None), ("generation-1", "teacher"), ("generation-2", "generation-1")]
    for name in ("teacher", "generation-1"):  # the centres margin distillation copied into the next head
        assert np.load(tmp_path / "run" / f"{name}.centres.npy").shape == (40, 128)


@pytest.mark.parametrize("distill", ["angular", "margin"])
def test_a_teacher_checkpoint_of_another_embedding_size_distils(tmp_path, cache_dir, distill):
    # angular through a learnt projection; margin through the teacher's centres carried into the student's space
    wide = spec_from_dict({**nasface.spec_to_dict(TINY_NET), "name": "wide",
                           "embedding": {"kind": "gdc", "width": 64, "size": 256}})
    teacher = save_weights(tmp_path / "teacher.safetensors", nasface.build_model(wide), wide)
    result = train_recipe(write_recipe(tmp_path, teacher=str(teacher), steps=2, distill=distill), cache_dir=cache_dir)
    assert result.stages[0]["teacher"] == str(teacher) and np.isfinite(result.stages[0]["final_loss"])


@pytest.mark.parametrize("case, message", [
    ("missing recipe", "no such recipe file"),
    ("bad field", "recipe.lr_steps: 20.0 is not inside the 16.0 epochs"),
    ("missing data", "data source 'no/such/faces' not found"),
    ("unfilled data", "recipe.data: fill in the training data"),
    ("teacher is a .bin", "not a checkpoint (.safetensors / .pt / .pth)"),
    ("teacher of another architecture", "checkpoint from another architecture"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(case, message, tmp_path):
    recipe = write_recipe(tmp_path, steps=None)
    args = [str(recipe)]
    if case == "missing recipe":
        args = [str(tmp_path / "nope.yaml")]
    elif case == "bad field":
        recipe.write_text(recipe.read_text() + "lr_steps: [20]\n")
    elif case == "missing data":
        args += ["--data", "no/such/faces"]
    elif case == "unfilled data":
        save_recipe(Recipe(spec="tiny.yaml", teacher="none"), recipe)
    elif case == "teacher is a .bin":
        (tmp_path / "lfw.bin").write_bytes(b"\x80\x04")
        args += ["--teacher", str(tmp_path / "lfw.bin")]
    else:
        mobile = nasface.load_spec("mobilefacenet")
        save_weights(tmp_path / "other.safetensors", nasface.build_model(mobile), mobile)
        args += ["--teacher", str(tmp_path / "other.safetensors"), "--teacher-spec", str(tmp_path / "tiny.yaml")]
    before = sorted(tmp_path.rglob("*"))
    result = cli("train", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr
    assert sorted(tmp_path.rglob("*")) == before  # no run folder, no cache


@pytest.mark.slow
def test_a_killed_cli_run_resumes_to_the_same_step_count(tmp_path, cache_dir):
    recipe = write_recipe(tmp_path, steps=150, checkpoint_every=10)
    output = tmp_path / "run"
    args = ["-m", "nasface", "train", str(recipe), "--cache-dir", str(cache_dir), "--progress", "quiet"]
    process = subprocess.Popen([sys.executable, *args])
    try:
        deadline = time.monotonic() + 240
        while not (output / CHECKPOINT_FILE).is_file():
            assert process.poll() is None and time.monotonic() < deadline, "no checkpoint before the run ended"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        returncode = process.wait(timeout=60)
    assert returncode == -signal.SIGKILL
    assert not (output / FINAL_WEIGHTS).exists()
    killed_at = torch.load(output / CHECKPOINT_FILE, weights_only=True)["step"]
    assert 10 <= killed_at < 150
    resumed = cli("train", str(recipe), "--cache-dir", str(cache_dir), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming generation-1 at step {killed_at}" in resumed.stdout
    assert int(read_metadata(output / FINAL_WEIGHTS)["step"]) == 150
    assert json.loads((output / "result.json").read_text())["stages"][0]["steps"] == 150
    spec, model = load_checkpoint(output / FINAL_WEIGHTS)
    assert spec == TINY_NET and model(torch.zeros(1, 3, 112, 112)).shape == (1, 128)
