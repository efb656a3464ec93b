"""Face-verification scoring: embed image pairs, then insightface's 10-fold protocol.

Scores are cosine similarities of L2-normalised embeddings (insightface thresholds the
squared L2 distance d = 2 - 2 cos of the same vectors: the same ranking). A pair is
declared "same" when its score is strictly above the threshold.
"""

from __future__ import annotations

import hashlib

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import Tensor, nn

from nasface.core.errors import NasfaceError

IMAGE_SIZE = 112


class VerificationPairs(Protocol):
    """What ``evaluate_pairs`` needs: pair i is images[2i] and images[2i + 1]."""

    images: np.ndarray  # uint8, (2P, 112, 112, 3)
    issame: np.ndarray  # bool, (P,)


def to_input_tensor(images: np.ndarray | Tensor) -> Tensor:
    """uint8 N x H x W x 3 (RGB) -> float32 N x 3 x H x W in [-1, 1], insightface's (x - 127.5) / 128."""
    if isinstance(images, np.ndarray) and not images.flags.writeable:
        images = np.array(images)  # memory-mapped caches are read-only; torch wants to own writable data
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise NasfaceError(
            f"face images must be uint8 N x H x W x 3, got {images.dtype} {tuple(images.shape)}"
        )
    return (images.permute(0, 3, 1, 2).float() - 127.5) / 128.0


def embed(
    model: nn.Module,
    images: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    flip: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """float32 N x D embeddings of uint8 N x 112 x 112 x 3 faces, in eval mode.

    With ``flip`` each embedding is model(x) + model(horizontally flipped x), as in
    insightface's evaluation. ``device`` defaults to the model's. The model's
    train/eval mode is restored afterwards. ``on_batch`` is told how many faces are
    embedded after each batch.
    """
    if batch_size < 1:
        raise NasfaceError(f"batch_size must be >= 1, got {batch_size}")
    if len(images) == 0:
        raise NasfaceError("no face images to embed")
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise NasfaceError(
            f"face images must be N x {IMAGE_SIZE} x {IMAGE_SIZE} x 3, got {tuple(images.shape)}"
        )
    if device is None:
        first_parameter = next(model.parameters(), None)
        device = first_parameter.device if first_parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    batches = []
    try:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = to_input_tensor(images[start : start + batch_size]).to(device)
                embedding = model(x)
                if flip:
                    embedding = embedding + model(torch.flip(x, dims=[3]))
                batches.append(embedding.float().cpu().numpy())
                if on_batch is not None:
                    on_batch(start + len(x))
    finally:
        model.train(was_training)
    return np.concatenate(batches).astype(np.float32, copy=False)


def _best_threshold(scores: np.ndarray, issame: np.ndarray) -> tuple[float, float]:
    """Exact accuracy-maximising threshold over every cut between distinct scores.

    Returns (threshold, accuracy). Exact rather than insightface's 0.01 grid, so a
    narrow gap between classes is found too; the threshold is the midpoint of the
    chosen gap, and among equally accurate cuts the lowest threshold wins.
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    sorted_same = issame[order]
    n = len(scores)
    # Cut c declares sorted_scores[c:] "same": correct are negatives below plus positives from c on.
    negatives_below = np.concatenate([[0], np.cumsum(~sorted_same)])
    positives_below = np.concatenate([[0], np.cumsum(sorted_same)])
    correct = negatives_below + (positives_below[-1] - positives_below)
    # Only cut between distinct scores: tied scores get the same decision.
    valid = np.ones(n + 1, dtype=bool)
    valid[1:n] = sorted_scores[1:] > sorted_scores[:-1]
    best = int(np.flatnonzero(valid)[np.argmax(correct[valid])])
    if best == 0:
        threshold = np.nextafter(sorted_scores[0], -np.inf)
    elif best == n:
        threshold = sorted_scores[-1]
    else:
        below, above = sorted_scores[best - 1], sorted_scores[best]
        middle = below + (above - below) / 2
        # Adjacent floats can round the midpoint up onto `above`, which would reject it.
        threshold = middle if middle < above else below
    return float(threshold), float(correct[best] / n)


FAR_TARGET = 1e-3  # the false accept rate TAR@FAR is measured at (the LFR2019 challenge's)


def _tar_at_far(scores: np.ndarray, issame: np.ndarray, far_target: float) -> float | None:
    """True accept rate at the lowest threshold whose false accept rate is <= far_target.

    None when it cannot be measured: no positives, or fewer than 1 / far_target
    negatives (then not even one false accept is allowed and FAR = far_target is
    indistinguishable from FAR = 0).
    """
    negatives = np.sort(scores[~issame])[::-1]
    positives = scores[issame]
    allowed_false_accepts = math.floor(far_target * len(negatives) + 1e-9)
    if len(positives) == 0 or allowed_false_accepts < 1:
        return None
    if allowed_false_accepts >= len(negatives):
        return 1.0
    # Strictly above the (k+1)-th highest negative: at most k negatives accepted (fewer on ties).
    threshold = negatives[allowed_false_accepts]
    return float(np.mean(positives > threshold))


def verification_metrics(
    embeddings_a: np.ndarray,
    embeddings_b: np.ndarray,
    issame: np.ndarray,
    n_folds: int = 10,
    far_target: float = FAR_TARGET,
) -> dict:
    """insightface's verification protocol on P pairs (embeddings_a[i], embeddings_b[i]).

    Accuracy: the pairs are split into ``n_folds`` contiguous folds (sklearn
    ``KFold(shuffle=False)``, as insightface does); for each fold the threshold that is
    most accurate on the other folds is applied to it. With fewer pairs than folds,
    one fold per pair (leave-one-out) is used; ``folds`` says how many.

    TAR@FAR is computed over all pairs (see ``_tar_at_far``).

    Returns JSON-friendly values:
      accuracy, accuracy_std: mean and (population) std of the held-out fold accuracies
      best_threshold: the cosine threshold most accurate over all pairs ("same" iff score > it)
      tar_at_far: TAR at FAR <= far, or None when not measurable
      far: the FAR target
      far_resolution: 1 / negatives, the smallest non-zero FAR these pairs can show (None without negatives)
      pairs, positives, negatives, folds: counts
    """
    embeddings_a = np.asarray(embeddings_a, dtype=np.float64)
    embeddings_b = np.asarray(embeddings_b, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    pairs = len(issame)
    if embeddings_a.shape != embeddings_b.shape or embeddings_a.ndim != 2 or len(embeddings_a) != pairs:
        raise NasfaceError(
            f"verification needs two P x D embedding arrays and P labels, got "
            f"{embeddings_a.shape}, {embeddings_b.shape} and {issame.shape}"
        )
    if pairs < 2:
        raise NasfaceError(f"verification needs at least 2 pairs, got {pairs}")
    if n_folds < 2:
        raise NasfaceError(f"verification needs n_folds >= 2, got {n_folds}")
    if not 0 < far_target < 1:
        raise NasfaceError(f"FAR target must be in (0, 1), got {far_target}")

    def normalised(x: np.ndarray) -> np.ndarray:
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    scores = np.sum(normalised(embeddings_a) * normalised(embeddings_b), axis=1)

    folds = min(n_folds, pairs)
    fold_accuracies = []
    for test_index in np.array_split(np.arange(pairs), folds):
        train_mask = np.ones(pairs, dtype=bool)
        train_mask[test_index] = False
        threshold, _ = _best_threshold(scores[train_mask], issame[train_mask])
        fold_accuracies.append(np.mean((scores[test_index] > threshold) == issame[test_index]))

    best_threshold, _ = _best_threshold(scores, issame)
    positives = int(issame.sum())
    negatives = pairs - positives
    return {
        "accuracy": float(np.mean(fold_accuracies)),
        "accuracy_std": float(np.std(fold_accuracies)),
        "best_threshold": best_threshold,
        "tar_at_far": _tar_at_far(scores, issame, far_target),
        "far": float(far_target),
        "far_resolution": 1.0 / negatives if negatives else None,
        "pairs": pairs,
        "positives": positives,
        "negatives": negatives,
        "folds": folds,
    }


def evaluate_pairs(
    model: nn.Module,
    pairs: VerificationPairs,
    batch_size: int = 256,
    device: torch.device | str | None = None,
    flip: bool = True,
    n_folds: int = 10,
    far_target: float = FAR_TARGET,
) -> dict:
    """Embed a verification set's images and score it (``verification_metrics``)."""
    faces, slot = embed_pairs(model, pairs, batch_size, device, flip)
    return pair_metrics(faces, slot, pairs.issame, n_folds, far_target)


def embed_pairs(model: nn.Module, pairs: VerificationPairs, batch_size: int = 256,
                device: torch.device | str | None = None, flip: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(faces, slot): the embeddings of the set's distinct faces (``distinct_faces`` order, what a
    teacher's held-out embeddings are compared with) and each pair image's row among them."""
    if len(pairs.images) != 2 * len(pairs.issame):
        raise NasfaceError(
            f"verification set has {len(pairs.images)} images for {len(pairs.issame)} pairs; "
            f"it needs exactly 2 per pair"
        )
    images = np.asarray(pairs.images)
    distinct, slot = distinct_faces(images)
    return embed(model, images[distinct], batch_size, device, flip), slot


def pair_metrics(faces: np.ndarray, slot: np.ndarray, issame, n_folds: int = 10,
                 far_target: float = FAR_TARGET) -> dict:
    """``verification_metrics`` of the pairs whose images are rows ``slot`` of ``faces``."""
    embeddings = faces[slot]
    return verification_metrics(embeddings[0::2], embeddings[1::2], np.asarray(issame, dtype=bool), n_folds,
                                far_target)


def distinct_faces(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct, slot): ``images[distinct]`` holds each face once, in order of first appearance,
    and ``images[i]`` is ``images[distinct][slot[i]]``.  Pairs reuse faces (3000 pairs of 1000
    held-out images), so each is embedded once."""
    first_seen: dict[bytes, int] = {}
    slot = np.array([first_seen.setdefault(hashlib.blake2b(image.tobytes(), digest_size=16).digest(),
                                           len(first_seen)) for image in images])
    distinct = np.empty(len(first_seen), dtype=np.int64)
    distinct[slot] = np.arange(len(images))
    return distinct, slot
