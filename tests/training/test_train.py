"""The training loop, the proxy score, the teacher cache and checkpoints, on real (small) data."""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import nasface
from nasface.arch.checkpoint import load_checkpoint, save_weights
from nasface.core.errors import NasfaceError
from nasface.arch.model import deployed_cost
from nasface.search import DataSettings, load_proxy_data
from nasface.arch.spec import spec_from_dict
from nasface.training.teacher import read_teacher, teacher_targets
from nasface.training.loop import make_loop_state, train_loop
from nasface.training.proxy import build_student, score
from nasface.training.settings import ProxyBudget
from nasface.training.student import proxy_spec
from tests.factories import SMALL_NET, TINY_BUDGET


def test_score_reports_the_metrics(small_data):
    result = score(SMALL_NET, small_data.train, small_data.pairs, TINY_BUDGET)
    assert result["status"] == "ok"
    for key in ("accuracy", "tar_at_far", "final_loss", "images_per_second", "wall_seconds", "train_seconds"):
        assert key in result
    assert 0 <= result["accuracy"] <= 1 and result["pairs"] == 120
    # balanced FLGC: the deployed network costs what the spec said
    assert list(result["learnt_structure"]) == ["stage2.block1"]
    assert deployed_cost(SMALL_NET, result, "lfr")["macs"] == nasface.count(SMALL_NET)["macs"]


def test_score_is_deterministic_on_cpu(small_data):
    first = score(SMALL_NET, small_data.train, small_data.pairs, TINY_BUDGET)
    second = score(SMALL_NET, small_data.train, small_data.pairs, TINY_BUDGET)
    assert first["accuracy"] == second["accuracy"] and first["final_loss"] == second["final_loss"]


def test_a_diverging_candidate_is_recorded_not_raised(small_data):
    result = score(SMALL_NET, small_data.train, small_data.pairs, dataclasses.replace(TINY_BUDGET, lr=1e12))
    assert result["status"] == "failed"
    assert result["reason"].startswith("diverged: the loss became")


def test_resumed_loop_sees_the_same_batches(small_data):
    budget = dataclasses.replace(TINY_BUDGET, steps=6)

    def run(splits):
        torch.manual_seed(0)
        model = build_student(SMALL_NET, 32)
        state = make_loop_state(model, small_data.train.num_identities, 128, budget, None, torch.device("cpu"))
        for stop in splits:
            train_loop(state, small_data.train, budget, None, torch.device("cpu"), stop)
        return state

    whole, resumed = run([6]), run([3, 6])
    assert whole.losses == resumed.losses
    for a, b in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def test_proxy_resolution_that_collapses_the_network_is_a_clear_error():
    assert proxy_spec(nasface.load_spec("mobilefacenet"), 64).input_size == 64
    deep = spec_from_dict({"name": "deep", "stem": {"width": 16, "stride": 2}, "head": {"kind": "dw"},
                           "stages": [{"family": "bottleneck", "repeats": 1, "width": 16, "stride": 2}] * 5,
                           "embedding": {"kind": "gap", "width": 32, "size": 128}})
    with pytest.raises(NasfaceError, match="deep cannot run at the proxy resolution 32"):
        proxy_spec(deep, 32)


@pytest.mark.parametrize("distill", ["angular", "margin"])
def test_teacher_is_trained_once_and_cached(small_data, tmp_path, distill, caplog):
    caplog.set_level(logging.INFO, logger="nasface")
    budget = dataclasses.replace(TINY_BUDGET, distill=distill)
    targets = teacher_targets("auto", small_data, tmp_path, budget, teacher_spec=SMALL_NET, teacher_steps=3)
    messages = caplog.messages
    assert len(messages) == 2 and "training the teacher" in messages[0]
    assert messages[1].startswith("teacher auto verifies") and "10-fold accuracy over" in messages[1]
    assert targets.embeddings.shape == (len(small_data.train.labels), 128)
    assert targets.flipped.shape == targets.embeddings.shape and targets.centres.shape == (16, 128)
    again = teacher_targets("auto", small_data, tmp_path, budget, teacher_spec=SMALL_NET, teacher_steps=3)
    messages = caplog.messages
    assert messages[2:] == [messages[1]]  # read from the cache, nothing retrained; its own score told again
    assert np.array_equal(again.embeddings, targets.embeddings)
    assert read_teacher(targets.folder).centres.shape == (16, 128)
    result = score(SMALL_NET, small_data.train, small_data.pairs, budget, targets)
    assert result["status"] == "ok" and result["distill"] == distill


def test_checkpoints_round_trip_and_refuse_other_architectures(tmp_path):
    model = nasface.build_model(SMALL_NET).eval()
    path = save_weights(tmp_path / "w.safetensors", model, SMALL_NET)
    spec, loaded = load_checkpoint(path)
    assert spec == SMALL_NET
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x))
    # a plain state dict with other names (insightface-style) loads by position onto the given spec
    renamed = {f"layer{i}": tensor for i, tensor in enumerate(model.state_dict().values())}
    torch.save(renamed, tmp_path / "backbone.pth")
    _, by_position = load_checkpoint(tmp_path / "backbone.pth", SMALL_NET)
    with torch.no_grad():
        assert torch.allclose(by_position(x), model(x))
    with pytest.raises(NasfaceError, match="checkpoint from another architecture"):
        load_checkpoint(path, "mobilefacenet")


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {_Exploit.marker}",))


def test_a_pickled_payload_in_a_checkpoint_is_refused(tmp_path):
    _Exploit.marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pt", "wb") as handle:
        pickle.dump({"weight": _Exploit()}, handle)
    with pytest.raises(NasfaceError, match="weights_only=True"):
        load_checkpoint(tmp_path / "evil.pt", SMALL_NET)
    assert not Path(_Exploit.marker).exists()


@pytest.mark.slow
@pytest.mark.parametrize("source", ["synthetic", "orl"])
def test_the_default_proxy_learns(source, tmp_path):
    data = load_proxy_data(DataSettings.for_source(source), 0, tmp_path)
    default = ProxyBudget(distill="none", device="cpu")
    untrained = score("mobilefacenet", data.train, data.pairs, dataclasses.replace(default, steps=0))
    trained = score("mobilefacenet", data.train, data.pairs, default)
    margin = 0.1 if source == "synthetic" else 0.0  # ORL's 10 held-out people saturate (README)
    assert trained["accuracy"] > untrained["accuracy"] + margin, (untrained, trained)
