"""The proxy task a search trains and scores every candidate on, decoded once and cached.

``proxy_data`` draws K training identities x M images and a disjoint set of held-out
identities, and builds verification pairs from the held-out ones (or reads them
from a .bin).  With a cache folder the result is written once as .npy files plus a
manifest under ``cache_dir/<key>/`` and memory-mapped by every later call, in any
process, so Ray workers share one decoded copy.

Rules when a source is smaller than asked: too few identities is an error; an
identity with fewer than M images contributes all it has.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasface.core.keys import json_digest
from nasface.core.atomic import atomic_dir
from nasface.data.base import (FACE_SHAPE, FaceSet, FaceSourceBase, PairSet, check_count, check_identity_split,
                               check_seed, file_fingerprint)
from nasface.data.binfile import read_bin
from nasface.data.sources import open_source
from nasface.core.errors import NasfaceError
from nasface.core.stages import SILENT, Stages

# Bump when the layout or the way the subset is drawn changes, so old caches are not reused.
CACHE_VERSION = 1
_MANIFEST = "manifest.json"
_TRAIN_IMAGES, _TRAIN_LABELS = "train_images.npy", "train_labels.npy"
_PAIR_IMAGES, _PAIR_ISSAME = "pair_images.npy", "pair_issame.npy"
# Tags that keep the random streams drawn from one seed apart (base.py uses 10).
_SPLIT_STREAM, _PAIR_STREAM = 11, 12


@dataclass(frozen=True)
class ProxyData:
    """Training faces, verification pairs, and the key naming exactly what produced them."""

    train: FaceSet
    pairs: PairSet
    key: str


def proxy_key(source: FaceSourceBase, settings: dict, bin_path: Path | None) -> str:
    """A hash of everything that determines the proxy data; the same in every process."""
    recipe = {"version": CACHE_VERSION, "source": source.fingerprint(), "settings": settings,
              "bin": file_fingerprint(bin_path) if bin_path is not None else None}
    return json_digest(recipe, 20, compact=True)


def split_identities(count: int, train: int, held_out: int, seed: int, source_name: str):
    check_identity_split(count, train, held_out, source_name)
    order = np.random.default_rng([seed, _SPLIT_STREAM]).permutation(count)
    # Sorted, so a file-backed source is read front to back.
    return np.sort(order[:train]), np.sort(order[train:train + held_out])


def draw_pairs(labels: np.ndarray, pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first, second, issame) image indices of ``pairs`` pairs: half positive (two different
    images of one identity), half negative (images of two identities), in shuffled order.

    Repeats are avoided while the set of possible pairs allows it.
    """
    rng = np.random.default_rng([seed, _PAIR_STREAM])
    members = [np.flatnonzero(labels == identity) for identity in range(int(labels.max()) + 1)]
    repeatable = [group for group in members if len(group) >= 2]
    if not repeatable:
        raise NasfaceError("the held-out identities have one image each; positive pairs need two "
                           "images of a person: raise images_per_identity or use another source")
    positives = pairs // 2
    chosen: list[tuple[int, int, bool]] = []
    seen: set[tuple[int, int]] = set()
    for index in range(pairs):
        same = index < positives
        for _ in range(20):
            if same:
                group = repeatable[rng.integers(len(repeatable))]
                first, second = rng.choice(group, 2, replace=False)
            else:
                one, other = rng.choice(len(members), 2, replace=False)
                first, second = rng.choice(members[one]), rng.choice(members[other])
            pair = (int(min(first, second)), int(max(first, second)))
            if pair not in seen:
                break
        seen.add(pair)
        chosen.append((int(first), int(second), same))
    chosen = [chosen[index] for index in rng.permutation(pairs)]
    first, second, issame = (np.array(column) for column in zip(*chosen))
    return first, second, issame.astype(np.bool_)


def _images_in(plan: list) -> int:
    return sum(len(images) for _, images in plan)


def _build(source: FaceSourceBase, train_indices, held_indices, images_per_identity: int, pairs: int,
           seed: int, bin_path: Path | None, allocate, progress: Stages) -> tuple[FaceSet, PairSet]:
    """Decode the proxy into arrays from ``allocate(name, shape, dtype)`` (memory or .npy files): the
    training and held-out faces as one stage of ``progress``, a .bin's pairs as another."""
    plan = source.plan(train_indices, images_per_identity, seed)
    held_plan = source.plan(held_indices, images_per_identity, seed) if bin_path is None else []
    total = _images_in(plan)
    train_images = allocate(_TRAIN_IMAGES, (total, *FACE_SHAPE), np.uint8)
    train_labels = allocate(_TRAIN_LABELS, (total,), np.int64)
    held_images = np.empty((_images_in(held_plan), *FACE_SHAPE), np.uint8)
    held_labels = np.empty(len(held_images), np.int64)
    with progress.stage(f"{source.making} faces", total + len(held_images), "faces") as stage:
        source.write_plan(plan, train_images, train_labels, on_rows=stage.update)
        source.write_plan(held_plan, held_images, held_labels, on_rows=lambda rows: stage.update(total + rows))
    if bin_path is not None:
        verification = read_bin(bin_path, progress)
        pair_images = allocate(_PAIR_IMAGES, verification.images.shape, np.uint8)
        pair_images[:] = verification.images
        issame, name = verification.issame, verification.name
    else:
        first, second, issame = draw_pairs(held_labels, pairs, seed)
        pair_images = allocate(_PAIR_IMAGES, (2 * pairs, *FACE_SHAPE), np.uint8)
        pair_images[0::2] = held_images[first]
        pair_images[1::2] = held_images[second]
        name = f"{source.name}-held-out"
    pair_issame = allocate(_PAIR_ISSAME, issame.shape, np.bool_)
    pair_issame[:] = issame
    return FaceSet(train_images, train_labels), PairSet(pair_images, pair_issame, name)


def _load_cached(folder: Path, key: str) -> ProxyData:
    try:
        manifest = json.loads((folder / _MANIFEST).read_text())
        train = FaceSet(np.load(folder / _TRAIN_IMAGES, mmap_mode="r"), np.load(folder / _TRAIN_LABELS))
        pairs = PairSet(np.load(folder / _PAIR_IMAGES, mmap_mode="r"), np.load(folder / _PAIR_ISSAME),
                        manifest["pairs_name"])
    except (OSError, ValueError, KeyError) as error:
        raise NasfaceError(f"{folder}: damaged proxy-data cache ({error}); delete this folder and "
                           "it will be rebuilt") from None
    return ProxyData(train, pairs, key)


def _write_cache(cache_dir: Path, key: str, build) -> ProxyData:
    """Build into a private staging folder and rename it into place in one step (``atomic_dir``):
    never a half-written ``<key>`` folder; when two processes race, the first rename wins."""
    with atomic_dir(cache_dir / key, _MANIFEST, "the proxy-data cache") as staging:
        arrays = []

        def allocate(name: str, shape: tuple, dtype) -> np.ndarray:
            array = np.lib.format.open_memmap(staging / name, mode="w+", dtype=dtype, shape=shape)
            arrays.append(array)
            return array

        train, pairs = build(allocate)
        for array in arrays:
            array.flush()
        manifest = {"key": key, "version": CACHE_VERSION, "train_images": len(train.images),
                    "train_identities": train.num_identities, "pairs": len(pairs.issame),
                    "pairs_name": pairs.name}
        (staging / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        # Close the maps before the rename (Windows will not rename a folder with open files).
        del arrays, train, pairs
    return _load_cached(cache_dir / key, key)


def proxy_data(source_spec, *, train_identities: int, images_per_identity: int, val_identities: int,
               pairs: int, seed: int, cache_dir: Path | None, bin_path: str | None = None,
               progress: Stages = SILENT) -> ProxyData:
    """The proxy task: K x M training faces and verification pairs, deterministic from ``seed``.

    ``source_spec`` is a spec (or path) for ``open_source``, or a source it returned.  Pairs come
    from ``val_identities`` held-out identities (disjoint from training, half positive)
    or, with ``bin_path``, are all pairs of that .bin (``val_identities`` and ``pairs``
    are then unused).  With ``cache_dir`` the data is decoded once and memory-mapped.  Decoding
    (or rendering, or aligning photos) reports to ``progress``; a cached proxy is read without a stage.
    """
    source = open_source(os.fspath(source_spec)) if isinstance(source_spec, (str, os.PathLike)) \
        else source_spec
    source.prepare(progress)  # an aligned source aligns its photos (once) before it can be read
    train_identities = check_count(train_identities, "train_identities")
    images_per_identity = check_count(images_per_identity, "images_per_identity")
    seed = check_seed(seed)
    bin_file = Path(bin_path).expanduser() if bin_path is not None else None
    if bin_file is not None:
        if not bin_file.is_file():
            raise NasfaceError(f"{bin_file}: verification file not found")
        val_identities = pairs = 0
    else:
        val_identities = check_count(val_identities, "val_identities", minimum=2)
        pairs = check_count(pairs, "pairs", minimum=2)
    settings = {"train_identities": train_identities, "images_per_identity": images_per_identity,
                "val_identities": val_identities, "pairs": pairs, "seed": seed}
    key = proxy_key(source, settings, bin_file)
    train_indices, held_indices = split_identities(len(source.identities()), train_identities,
                                                    val_identities, seed, source.name)

    def build(allocate):
        return _build(source, train_indices, held_indices, images_per_identity, pairs, seed, bin_file,
                      allocate, progress)

    if cache_dir is None:
        train, pair_set = build(lambda name, shape, dtype: np.empty(shape, dtype))
        return ProxyData(train, pair_set, key)
    cache_dir = Path(cache_dir).expanduser()
    if (cache_dir / key / _MANIFEST).is_file():
        return _load_cached(cache_dir / key, key)
    return _write_cache(cache_dir, key, build)
