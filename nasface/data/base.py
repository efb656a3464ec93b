"""The shapes every data source produces, and the selection logic they share.

A source knows how many images each identity has and how to decode some of them;
``FaceSourceBase.load`` turns a request (which identities, how many images each,
which seed) into a ``FaceSet``.  Keeping the choice of images here means every
source picks them the same way, so a seed means the same thing everywhere.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from nasface.core.errors import NasfaceError
from nasface.core.stages import SILENT, Stages

FACE_SIZE = 112
FACE_SHAPE = (FACE_SIZE, FACE_SIZE, 3)
# Tags that keep the random streams drawn from one seed apart (see also proxy.py).
_CHOICE_STREAM = 10


def _check_face_array(images: np.ndarray, what: str) -> None:
    # A wrong shape here is a bug in nasface (sources normalise every image), not a user mistake.
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != FACE_SHAPE:
        raise ValueError(f"{what} must be uint8 N x 112 x 112 x 3, got {images.dtype} {images.shape}")


@dataclass(frozen=True)
class FaceSet:
    """A labelled set of aligned faces, in memory or memory-mapped.

    ``images`` is uint8 N x 112 x 112 x 3 (RGB, HWC); ``labels`` is int64 N with
    identities numbered 0..num_identities-1.
    """

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        _check_face_array(self.images, "FaceSet.images")
        if self.labels.dtype != np.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(f"FaceSet.labels must be int64 of length {len(self.images)}, "
                             f"got {self.labels.dtype} {self.labels.shape}")

    @property
    def num_identities(self) -> int:
        return int(self.labels.max()) + 1 if len(self.labels) else 0


@dataclass(frozen=True)
class PairSet:
    """Verification pairs in insightface's layout: pair i is images[2i] and images[2i+1]."""

    images: np.ndarray
    issame: np.ndarray
    name: str

    def __post_init__(self) -> None:
        _check_face_array(self.images, "PairSet.images")
        if self.issame.dtype != np.bool_ or self.issame.shape != (len(self.images) // 2,) \
                or len(self.images) % 2:
            raise ValueError(f"PairSet needs 2P images and P booleans, got {len(self.images)} images "
                             f"and issame {self.issame.dtype} {self.issame.shape}")


@runtime_checkable
class FaceSource(Protocol):
    """One interface for every kind of face data (synthetic, bundled, folder, RecordIO)."""

    name: str

    def describe(self) -> dict: ...

    def identities(self) -> list: ...

    def load(self, identities: Sequence[int] | None = None, per_identity: int | None = None,
             seed: int = 0) -> FaceSet: ...


def file_fingerprint(path: str | os.PathLike) -> dict:
    """Which file this is, cheaply: its absolute path, size and modification time (a changed file
    gets a new cache key or is refused on resume without hashing gigabytes)."""
    stat = Path(path).stat()
    return {"path": str(Path(path).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def check_seed(seed: object, what: str = "seed") -> int:
    # numpy's SeedSequence needs a non-negative int; bool is an int subclass but surely a mistake.
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NasfaceError(f"{what} must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_count(value: object, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise NasfaceError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_identity_split(count: int, train: int, held_out: int, source_name: str) -> None:
    if count < train + held_out:
        raise NasfaceError(f"source '{source_name}' has {count} identities, but {train} training + {held_out} "
                           f"held-out were asked for; lower --train-identities / --val-identities "
                           f"(train_identities / val_identities in a study file)")


def choose_images(available: int, per_identity: int | None, seed: int, identity_index: int) -> np.ndarray:
    """Indices (ascending) of at most ``per_identity`` of an identity's ``available`` images.

    The choice depends only on the seed and the identity's own index, so an identity
    gets the same images whichever other identities are requested with it.
    """
    if per_identity is None or per_identity >= available:
        return np.arange(available)
    rng = np.random.default_rng([seed, _CHOICE_STREAM, identity_index])
    return np.sort(rng.choice(available, size=per_identity, replace=False))


def natural_key(name: str) -> list:
    """Sort key that orders s2 before s10 (numbers compared as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class FaceSourceBase(ABC):
    """Shared ``load`` for sources that can count and decode an identity's images."""

    name: str
    making = "decoding"  # what producing its images is called in progress lines ("rendering" if generated)

    @abstractmethod
    def identities(self) -> list:
        """Identity keys (folder names, labels...), in the order identity indices refer to."""

    @abstractmethod
    def image_count(self, identity_index: int) -> int:
        """How many images the identity has."""

    @abstractmethod
    def read_images(self, identity_index: int, image_indices: np.ndarray) -> np.ndarray:
        """Decode the given images of one identity as uint8 m x 112 x 112 x 3."""

    @abstractmethod
    def describe(self) -> dict:
        """The facts ``nasface data`` shows (see ``nasface.data.sources.describe``)."""

    @abstractmethod
    def fingerprint(self) -> dict:
        """JSON-able facts that change whenever the source's images do (the proxy cache key)."""

    def prepare(self, progress: Stages = SILENT) -> None:
        """Build what the source must cache before it can be read (an aligned source's faces), as a
        stage of ``progress``.  Reading a source unprepared builds the same, silently."""

    def check(self) -> None:
        """Raise NasfaceError unless an image decodes to a face as training will decode them; a
        cheap check, made before anything is written (an aligned source checks its photos)."""
        self.load(identities=[0], per_identity=1)

    def plan(self, identities: Sequence[int] | None, per_identity: int | None,
             seed: int) -> list[tuple[int, np.ndarray]]:
        """Which images ``load`` would decode: (identity index, image indices) per identity."""
        seed = check_seed(seed)
        if per_identity is not None:
            per_identity = check_count(per_identity, "per_identity")
        count = len(self.identities())
        if identities is None:
            indices = list(range(count))
        else:
            indices = []
            for index in identities:
                if isinstance(index, bool) or not isinstance(index, (int, np.integer)) \
                        or not 0 <= index < count:
                    raise NasfaceError(f"identity index {index!r} is out of range: source '{self.name}' "
                                       f"has {count} identities (indices 0..{count - 1})")
                indices.append(int(index))
            if len(set(indices)) != len(indices):
                raise NasfaceError(f"identities for source '{self.name}' repeat an index; "
                                   "each identity may be requested once")
        return [(index, choose_images(self.image_count(index), per_identity, seed, index))
                for index in indices]

    def write_plan(self, plan: list[tuple[int, np.ndarray]], images: np.ndarray,
                   labels: np.ndarray, on_rows: Callable[[int], None] | None = None) -> None:
        """Decode a plan into preallocated arrays; identity k of the plan gets label k.  ``on_rows``
        is told how many images are written after each identity."""
        row = 0
        for label, (index, image_indices) in enumerate(plan):
            end = row + len(image_indices)
            images[row:end] = self.read_images(index, image_indices)
            labels[row:end] = label
            row = end
            if on_rows is not None:
                on_rows(row)

    def load(self, identities: Sequence[int] | None = None, per_identity: int | None = None,
             seed: int = 0) -> FaceSet:
        """The given identities (indices into ``identities()``, None for all), at most
        ``per_identity`` images each chosen from ``seed``, labelled 0..K-1 in the given order."""
        plan = self.plan(identities, per_identity, seed)
        total = sum(len(image_indices) for _, image_indices in plan)
        images = np.empty((total, *FACE_SHAPE), np.uint8)
        labels = np.empty(total, np.int64)
        self.write_plan(plan, images, labels)
        return FaceSet(images, labels)


def sample_report(decode_sample) -> dict:
    """The describe() fields about one sample: its [height, width], or why it does not decode."""
    try:
        size = decode_sample()
    except NasfaceError as error:
        return {"image_size": None, "sample_decodes": False, "sample_error": str(error)}
    return {"image_size": size, "sample_decodes": True, "sample_error": None}
