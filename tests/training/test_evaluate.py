"""Verification protocol (folds, thresholds, TAR@FAR) and embedding extraction."""

import json
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from nasface.core.errors import NasfaceError
from nasface.training.evaluate import embed, evaluate_pairs, to_input_tensor, verification_metrics


def pairs_with_scores(scores) -> tuple[np.ndarray, np.ndarray]:
    """2-D embedding pairs whose cosine similarities are exactly `scores` (up to rounding)."""
    angles = np.arccos(np.asarray(scores, dtype=np.float64))
    first = np.tile([[3.0, 0.0]], (len(angles), 1))  # norm 3: metrics must normalise
    second = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return first, second


def metrics_for(scores, issame, **kwargs) -> dict:
    return verification_metrics(*pairs_with_scores(scores), np.asarray(issame, dtype=bool), **kwargs)


# --- accuracy and folds ---------------------------------------------------------------


def test_separable_scores_give_perfect_accuracy():
    rng = np.random.default_rng(0)
    issame = rng.random(200) < 0.5
    scores = np.where(issame, rng.uniform(0.6, 0.9, 200), rng.uniform(-0.2, 0.4, 200))
    metrics = metrics_for(scores, issame)
    assert metrics["accuracy"] == 1.0
    assert metrics["accuracy_std"] == 0.0
    assert 0.4 <= metrics["best_threshold"] <= 0.6
    assert (metrics["pairs"], metrics["positives"], metrics["folds"]) == (200, int(issame.sum()), 10)


def test_a_gap_narrower_than_a_threshold_grid_is_still_found():
    issame = np.array([True, False] * 20)
    scores = np.where(issame, 0.50004, 0.50001)
    assert metrics_for(scores, issame)["accuracy"] == 1.0


def test_random_embeddings_give_chance_accuracy():
    rng = np.random.default_rng(1)
    embeddings_a, embeddings_b = rng.normal(size=(2, 3000, 64))
    issame = rng.random(3000) < 0.5
    metrics = verification_metrics(embeddings_a, embeddings_b, issame)
    assert metrics["accuracy"] == pytest.approx(0.5, abs=0.04)


def test_each_contiguous_fold_is_scored_with_the_threshold_of_the_other_folds():
    # Two folds, pairs {0, 1} and {2, 3}.
    # Fold {0, 1} is scored with a threshold fitted on pairs 2 (same, 0.3) and 3 (different, 0.45):
    # "all same" and "all different" tie at 1/2 and the lower threshold wins (just below 0.3),
    # so 0.9 -> same (right) and 0.1 -> different (right): 1.0.
    # Fold {2, 3} uses the threshold fitted on 0.9 (same) and 0.1 (different), their midpoint 0.5:
    # 0.3 -> different (wrong), 0.45 -> different (right): 0.5.
    # (Interleaved folds {0, 2}, {1, 3} would give 0.5 and 0.5 instead.)
    metrics = metrics_for([0.9, 0.1, 0.3, 0.45], [True, False, True, False], n_folds=2)
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["accuracy_std"] == pytest.approx(0.25)
    assert metrics["folds"] == 2


def test_fewer_pairs_than_folds_uses_one_fold_per_pair():
    metrics = metrics_for([0.9, 0.8, 0.2, 0.1, 0.85], [True, True, False, False, True])
    assert metrics["folds"] == 5
    assert metrics["accuracy"] == 1.0


def test_bad_inputs_are_rejected():
    with pytest.raises(NasfaceError, match="at least 2 pairs"):
        metrics_for([0.5], [True])
    with pytest.raises(NasfaceError, match="n_folds"):
        metrics_for([0.5, 0.2], [True, False], n_folds=1)
    with pytest.raises(NasfaceError, match="P x D"):
        verification_metrics(np.zeros((3, 4)), np.zeros((3, 5)), np.ones(3, dtype=bool))


# --- TAR at FAR -----------------------------------------------------------------------


def constructed_tar_case(negative_count: int) -> tuple[list[float], list[bool]]:
    """Negatives: one at 0.5, one at 0.3, the rest at 0.0; positives at 0.2, 0.35, 0.4, 0.6."""
    negatives = [0.5, 0.3] + [0.0] * (negative_count - 2)
    positives = [0.2, 0.35, 0.4, 0.6]
    return negatives + positives, [False] * negative_count + [True] * len(positives)


def test_tar_at_far_uses_the_lowest_threshold_within_the_false_accept_budget():
    scores, issame = constructed_tar_case(1000)
    # FAR 1e-3 of 1000 negatives allows one false accept (the 0.5): threshold 0.3, TAR 3/4.
    metrics = metrics_for(scores, issame, far_target=1e-3)
    assert metrics["tar_at_far"] == pytest.approx(0.75)
    assert metrics["far"] == 1e-3
    assert metrics["far_resolution"] == pytest.approx(1e-3)
    # Two false accepts allowed: threshold 0.0, every positive accepted.
    assert metrics_for(scores, issame, far_target=2e-3)["tar_at_far"] == 1.0


def test_tar_at_far_is_none_with_too_few_negatives():
    scores, issame = constructed_tar_case(999)
    metrics = metrics_for(scores, issame, far_target=1e-3)
    assert metrics["tar_at_far"] is None
    assert metrics["far_resolution"] == pytest.approx(1 / 999)


def test_tar_at_far_is_none_without_positives():
    metrics = metrics_for([0.1] * 20, [False] * 20, far_target=0.1)
    assert metrics["tar_at_far"] is None
    assert metrics["positives"] == 0


def test_metrics_are_plain_json_values():
    scores, issame = constructed_tar_case(1000)
    metrics = metrics_for(scores, issame)
    assert json.loads(json.dumps(metrics)) == metrics


# --- embedding ------------------------------------------------------------------------


class RowWeightedMean(nn.Module):
    """Deterministic, not flip-invariant: weights each image column by its index."""

    def __init__(self) -> None:
        super().__init__()
        self.dropout = nn.Dropout(0.5)  # must be inactive during embedding
        self.column_weights = nn.Parameter(torch.linspace(0.0, 1.0, 112))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout((x * self.column_weights).mean(dim=(2, 3)))


def test_to_input_tensor_normalises_like_insightface_and_moves_channels_first():
    images = np.zeros((1, 2, 3, 3), dtype=np.uint8)
    images[0, 1, 2] = [0, 128, 255]
    x = to_input_tensor(images)
    assert x.shape == (1, 3, 2, 3) and x.dtype == torch.float32
    assert x[0, :, 1, 2].tolist() == pytest.approx([-127.5 / 128, 0.5 / 128, 127.5 / 128])
    assert x[0, 0, 0, 0].item() == pytest.approx(-127.5 / 128)
    with pytest.raises(NasfaceError, match="uint8"):
        to_input_tensor(images.astype(np.float32))


def test_embed_sums_the_flipped_embedding_in_eval_mode_and_restores_training_mode():
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, size=(5, 112, 112, 3), dtype=np.uint8)
    model = RowWeightedMean().train()

    with torch.no_grad():
        model.eval()
        x = to_input_tensor(images)
        expected = (model(x) + model(torch.flip(x, dims=[3]))).numpy()
        unflipped = model(x).numpy()
        model.train()

    embeddings = embed(model, images, batch_size=2)
    assert embeddings.dtype == np.float32 and embeddings.shape == (5, 3)
    np.testing.assert_allclose(embeddings, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(embed(model, images, flip=False), unflipped, rtol=1e-5, atol=1e-6)
    assert model.training


def test_evaluate_pairs_scores_identical_images_as_same():
    @dataclass
    class Pairs:
        images: np.ndarray
        issame: np.ndarray

    rng = np.random.default_rng(3)
    issame = np.array([True, False] * 10)
    images = rng.integers(0, 256, size=(40, 112, 112, 3), dtype=np.uint8)
    images[1::2][issame] = images[0::2][issame]  # a "same" pair is the same picture twice
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 112 * 112, 16))
    metrics = evaluate_pairs(model, Pairs(images, issame), batch_size=16)
    assert metrics["accuracy"] == 1.0
    assert metrics["pairs"] == 20 and metrics["positives"] == 10
    with pytest.raises(NasfaceError, match="2 per pair"):
        evaluate_pairs(model, Pairs(images[:-1], issame))
