"""The data layer: sources (synthetic, ORL, folders), describe, and the cached proxy task.

RecordIO and .bin readers have their own files (test_data_recordio.py, test_data_bin.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from nasface.data import FaceSet, FaceSource, PairSet, ProxyData, describe, open_source, proxy_data
from nasface.data.orl import convert_orl
from nasface.data.proxy import draw_pairs, split_identities
from nasface.data.synthetic import SyntheticSource
from nasface.core.errors import NasfaceError
from tests.factories import REPO, digest, run_python

SHARED = REPO.parent / "shared"
DESCRIBE_KEYS = {"format", "images", "identities", "pairs", "positives", "image_size", "sample_decodes",
                 "path"}


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared/data (the original ORL faces) is not next to this checkout")
    return SHARED / "data"


# ---------------------------------------------------------------- containers


def test_face_set_checks_its_arrays():
    images = np.zeros((3, 112, 112, 3), np.uint8)
    assert FaceSet(images, np.array([0, 1, 1])).num_identities == 2
    with pytest.raises(ValueError):
        FaceSet(np.zeros((3, 112, 92, 3), np.uint8), np.array([0, 1, 1]))
    with pytest.raises(ValueError):
        FaceSet(images, np.array([0, 1]))
    with pytest.raises(ValueError):
        PairSet(images, np.array([True]), "odd")


# ---------------------------------------------------------------- synthetic


def test_synthetic_shapes_and_labels():
    source = open_source("synthetic", seed=1, num_identities=5, per_identity=3)
    assert isinstance(source, FaceSource) and source.identities() == [0, 1, 2, 3, 4]
    faces = source.load(identities=[4, 2], per_identity=2)
    assert faces.images.shape == (4, 112, 112, 3) and faces.images.dtype == np.uint8
    np.testing.assert_array_equal(faces.labels, [0, 0, 1, 1])
    assert faces.labels.dtype == np.int64 and faces.num_identities == 2
    # Asking for more images than an identity has gives all it has.
    assert len(source.load(identities=[0], per_identity=50).images) == 3


def test_synthetic_is_deterministic_and_seed_dependent():
    first = SyntheticSource(seed=3, num_identities=4, per_identity=4).load()
    again = SyntheticSource(seed=3, num_identities=4, per_identity=4).load()
    other = SyntheticSource(seed=4, num_identities=4, per_identity=4).load()
    np.testing.assert_array_equal(first.images, again.images)
    assert digest(first.images) != digest(other.images)
    # Different people and different photos of one person are different images.
    assert len({digest(image) for image in first.images}) == len(first.images)


def test_synthetic_is_bit_identical_in_another_process():
    code = ("import hashlib; from nasface.data import open_source; "
            "s = open_source('synthetic', seed=7, num_identities=3, per_identity=5); "
            "print(hashlib.sha256(s.load().images.tobytes()).hexdigest())")
    here = digest(SyntheticSource(seed=7, num_identities=3, per_identity=5).load().images)
    assert run_python(code) == here
    assert run_python(code, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1") == here


@settings(max_examples=15, deadline=None)
@given(identity=st.integers(0, 10_000), images=st.lists(st.integers(0, 29), min_size=1, max_size=5,
                                                         unique=True))
def test_an_image_does_not_depend_on_its_batch(identity, images):
    # Features are drawn only inside windows computed per batch; a window too small would
    # make an image differ with its batch-mates.
    source = SyntheticSource(seed=2, num_identities=identity + 1, per_identity=30)
    batch = source.read_images(identity, np.array(images))
    for position, image in enumerate(images):
        np.testing.assert_array_equal(batch[position], source.read_images(identity, np.array([image]))[0])


def test_synthetic_identities_are_not_separable_by_raw_pixels():
    # Calibration guard: if nuisances stop dominating, plain pixel similarity would verify well.
    faces = SyntheticSource(seed=0, num_identities=40, per_identity=6).load()
    first, second, issame = draw_pairs(faces.labels, 300, seed=0)
    flat = faces.images.reshape(len(faces.images), -1).astype(np.float32)
    flat -= flat.mean(axis=1, keepdims=True)
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    similarity = (flat[first] * flat[second]).sum(axis=1)
    best = max(((similarity > threshold) == issame).mean() for threshold in similarity)
    assert best < 0.68


def test_synthetic_option_errors():
    with pytest.raises(NasfaceError, match="seed must be a non-negative integer"):
        open_source("synthetic", seed=-1)
    with pytest.raises(NasfaceError, match="num_identities must be an integer >= 1"):
        open_source("synthetic", num_identities=0)
    with pytest.raises(NasfaceError, match="does not take option"):
        open_source("synthetic", identities=3)


def test_identity_selection_errors():
    source = SyntheticSource(num_identities=3, per_identity=2)
    with pytest.raises(NasfaceError, match="identity index 3 is out of range"):
        source.load(identities=[3])
    with pytest.raises(NasfaceError, match="repeat an index"):
        source.load(identities=[1, 1])
    with pytest.raises(NasfaceError, match="per_identity must be an integer >= 1"):
        source.load(per_identity=0)


def test_images_chosen_per_identity_follow_the_seed():
    source = SyntheticSource(num_identities=3, per_identity=10)
    chosen = source.plan([2, 0], per_identity=4, seed=5)
    assert [index for index, _ in chosen] == [2, 0]
    assert all(len(images) == 4 and list(images) == sorted(images) for _, images in chosen)
    # The same identity gets the same images whoever it is requested with.
    np.testing.assert_array_equal(source.plan([2], 4, 5)[0][1], chosen[0][1])
    assert not np.array_equal(source.plan([2], 4, 6)[0][1], chosen[0][1])


# ---------------------------------------------------------------- ORL


def test_orl_is_bundled_and_padded():
    source = open_source("orl")
    assert source.identities() == [f"s{k}" for k in range(1, 41)]
    faces = source.load(identities=[0, 39])
    assert faces.images.shape == (20, 112, 112, 3)
    np.testing.assert_array_equal(faces.labels, np.repeat([0, 1], 10))
    # Grey in all three channels, black 10-column borders either side of the 92-wide face.
    assert (faces.images[..., 0] == faces.images[..., 2]).all()
    assert not faces.images[:, :, :10].any() and not faces.images[:, :, 102:].any()
    description = describe("orl")
    assert description["images"] == 400 and description["identities"] == 40
    assert description["image_size"] == [112, 112] and description["path"] is None


def test_orl_matches_the_original_pgms(shared):
    original = np.asarray(Image.open(shared / "orl_faces" / "s40" / "7.pgm"))
    loaded = open_source("orl").load(identities=[39])
    np.testing.assert_array_equal(loaded.images[6, :, 10:102, 1], original)


def test_orl_converter_reproduces_the_bundled_file(shared, tmp_path):
    convert_orl(shared / "orl_faces", tmp_path / "orl.npz")
    bundled = np.load(REPO / "nasface" / "resources" / "orl" / "orl_faces.npz")
    rebuilt = np.load(tmp_path / "orl.npz")
    for name in ("faces", "labels"):
        np.testing.assert_array_equal(rebuilt[name], bundled[name])


def test_orl_readme_credits_olivetti():
    readme = (REPO / "nasface" / "resources" / "orl" / "README").read_text()
    assert "please give credit to Olivetti Research Laboratory" in readme


# ---------------------------------------------------------------- folders


def save(path: Path, pixels: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def random_image(seed: int, size=(112, 112), channels=3) -> np.ndarray:
    shape = (*size, channels) if channels > 1 else size
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def test_folder_source_natural_order_and_grey(tmp_path):
    expected = {}
    for name, seed in (("id10", 1), ("id2", 2), ("id1", 3)):
        expected[name] = [save(tmp_path / name / f"{k}.png", random_image(seed * 10 + k)) for k in (2, 10, 1)]
    grey = save(tmp_path / "id2" / "11.pgm", random_image(99, channels=1))
    (tmp_path / "README.txt").write_text("not an identity")
    (tmp_path / "id1" / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path))
    assert source.identities() == ["id1", "id2", "id10"]
    faces = source.load()
    np.testing.assert_array_equal(faces.labels, [0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    # Images in natural order too: 1, 2, 10 (then 11).
    np.testing.assert_array_equal(faces.images[0], expected["id1"][2])
    np.testing.assert_array_equal(faces.images[2], expected["id1"][1])
    np.testing.assert_array_equal(faces.images[6], np.repeat(grey[:, :, None], 3, axis=2))
    description = source.describe()
    assert description["format"] == "folder" and description["images"] == 10
    assert description["identities"] == 3 and description["path"] == str(tmp_path)


def test_empty_identity_folder_is_named(tmp_path):
    save(tmp_path / "alice" / "1.png", random_image(0))
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "readme.txt").write_text("no faces here")
    with pytest.raises(NasfaceError, match=r"bob: identity folder has no images"):
        open_source(str(tmp_path))


def test_folder_without_identities(tmp_path):
    save(tmp_path / "loose.png", random_image(0))
    with pytest.raises(NasfaceError, match="no identity sub-folders"):
        open_source(str(tmp_path))


def test_wrong_image_size_names_the_file_unless_resized(tmp_path):
    save(tmp_path / "carol" / "1.png", random_image(0, (120, 80)))
    source = open_source(str(tmp_path))
    assert source.describe()["image_size"] == [120, 80]
    with pytest.raises(NasfaceError, match=r"carol/1\.png: image is 80x120 \(width x height\).*--data aligned:"):
        source.load()
    resized = open_source(str(tmp_path), resize=True).load().images[0]
    # Scaled to 75 x 112 and centred: black columns left and right, content in between.
    assert not resized[:, :18].any() and not resized[:, 94:].any() and resized[:, 19:93].any()


def test_orl_folder_resized_equals_bundled_orl(shared):
    folder = open_source(str(shared / "orl_faces"), resize=True).load(identities=[0, 1])
    np.testing.assert_array_equal(folder.images, open_source("orl").load(identities=[0, 1]).images)


def test_undecodable_file_is_named(tmp_path):
    save(tmp_path / "dave" / "1.png", random_image(0))
    (tmp_path / "dave" / "2.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    source = open_source(str(tmp_path))
    with pytest.raises(NasfaceError, match=r"dave/2\.jpg: cannot decode image"):
        source.load()


# ---------------------------------------------------------------- specs and describe


def test_missing_and_unknown_specs(tmp_path):
    with pytest.raises(NasfaceError, match=r"data source '.*nowhere' not found; expected 'synthetic', 'synthetic-hard', 'orl'"):
        open_source(str(tmp_path / "nowhere"))
    stray = tmp_path / "notes.txt"
    stray.write_text("hello")
    with pytest.raises(NasfaceError, match="not a data source"):
        open_source(str(stray))
    with pytest.raises(NasfaceError, match="does not take option"):
        open_source("orl", resize=True)


@pytest.mark.parametrize("spec", ["synthetic", "orl"])
def test_describe_builtin_sources(spec):
    description = describe(spec)
    assert DESCRIBE_KEYS <= set(description)
    assert description["format"] == spec and description["sample_decodes"] is True
    assert description["pairs"] is None and description["positives"] is None
    json.dumps(description)  # what `nasface data SOURCE --json` prints
    if spec == "synthetic":
        assert description["identities"] == 1000 and description["images"] == 20_000


def test_describe_reports_an_undecodable_sample(tmp_path):
    (tmp_path / "erin").mkdir()
    (tmp_path / "erin" / "1.png").write_bytes(b"\x89PNG broken")
    description = describe(str(tmp_path))
    assert description["sample_decodes"] is False and description["image_size"] is None
    assert "erin/1.png" in description["sample_error"]


# ---------------------------------------------------------------- proxy data


def small_proxy(cache_dir, source="synthetic", seed=3, **overrides):
    arguments = dict(train_identities=6, images_per_identity=3, val_identities=5, pairs=16, seed=seed,
                     cache_dir=cache_dir)
    arguments.update(overrides)
    if source == "synthetic":
        source = SyntheticSource(num_identities=20, per_identity=5)
    return proxy_data(source, **arguments)


def test_proxy_shapes_and_balance():
    proxy = small_proxy(None)
    assert isinstance(proxy, ProxyData)
    assert proxy.train.images.shape == (18, 112, 112, 3)
    np.testing.assert_array_equal(proxy.train.labels, np.repeat(np.arange(6), 3))
    assert proxy.pairs.images.shape == (32, 112, 112, 3) and int(proxy.pairs.issame.sum()) == 8


def test_proxy_is_deterministic_and_keyed():
    first, again, other = small_proxy(None), small_proxy(None), small_proxy(None, seed=4)
    assert first.key == again.key != other.key
    np.testing.assert_array_equal(first.train.images, again.train.images)
    np.testing.assert_array_equal(first.pairs.images, again.pairs.images)
    assert not np.array_equal(first.train.images, other.train.images)


def test_proxy_key_is_the_same_in_another_process():
    code = ("from nasface.data import proxy_data; print(proxy_data('orl', train_identities=4, "
            "images_per_identity=2, val_identities=2, pairs=4, seed=1, cache_dir=None).key)")
    here = proxy_data("orl", train_identities=4, images_per_identity=2, val_identities=2, pairs=4, seed=1,
                      cache_dir=None).key
    assert run_python(code) == here


class CountingSource(SyntheticSource):
    """A synthetic source that counts how many images it renders."""

    rendered = 0

    def read_images(self, identity_index, image_indices):
        CountingSource.rendered += len(image_indices)
        return super().read_images(identity_index, image_indices)


def test_proxy_cache_is_written_once_and_memory_mapped(tmp_path):
    source = CountingSource(num_identities=20, per_identity=5)
    first = small_proxy(tmp_path, source)
    rendered = CountingSource.rendered
    assert rendered == 6 * 3 + 5 * 3
    assert isinstance(first.train.images, np.memmap) and isinstance(first.pairs.images, np.memmap)
    assert os.listdir(tmp_path) == [first.key]
    manifest = tmp_path / first.key / "manifest.json"
    written = manifest.stat().st_mtime_ns

    second = small_proxy(tmp_path, source)
    assert CountingSource.rendered == rendered  # nothing decoded again
    assert second.key == first.key and manifest.stat().st_mtime_ns == written
    assert isinstance(second.train.images, np.memmap)
    assert Path(second.train.images.filename).parent == tmp_path / first.key
    np.testing.assert_array_equal(second.train.images, first.train.images)
    np.testing.assert_array_equal(second.train.labels, first.train.labels)
    np.testing.assert_array_equal(second.pairs.issame, first.pairs.issame)
    assert second.pairs.name == first.pairs.name
    # The cached data is what an uncached call computes.
    np.testing.assert_array_equal(small_proxy(None).pairs.images, second.pairs.images)


def _build_proxy_in_child(cache_dir: str) -> str:
    proxy = proxy_data("orl", train_identities=30, images_per_identity=10, val_identities=10, pairs=100,
                       seed=2, cache_dir=Path(cache_dir))
    return digest(proxy.train.images) + digest(proxy.pairs.images)


def test_concurrent_processes_share_one_cache(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_build_proxy_in_child, [str(tmp_path)] * 2)
    assert results[0] == results[1]
    # One finished cache, no staging folder left behind by the process that lost the race.
    assert len(os.listdir(tmp_path)) == 1 and not os.listdir(tmp_path)[0].startswith(".")
    assert results[0] == _build_proxy_in_child(str(tmp_path))


def test_stray_staging_folder_is_ignored(tmp_path):
    # What a process killed while writing leaves behind: a staging folder, never a <key> folder.
    (tmp_path / ".tmp-deadbeef-x").mkdir(parents=True)
    (tmp_path / ".tmp-deadbeef-x" / "train_images.npy").write_bytes(b"half")
    proxy = small_proxy(tmp_path)
    assert (tmp_path / proxy.key / "manifest.json").is_file()


def test_damaged_cache_says_how_to_fix(tmp_path):
    proxy = small_proxy(tmp_path)
    (tmp_path / proxy.key / "train_images.npy").unlink()
    with pytest.raises(NasfaceError, match="damaged proxy-data cache.*delete this folder"):
        small_proxy(tmp_path)


def test_unwritable_cache_location(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(NasfaceError, match="cannot create the proxy-data cache"):
        small_proxy(blocker / "cache")


def orl_identity_of(images: np.ndarray) -> list[int]:
    """Which ORL subject each image is (every ORL image is distinct)."""
    orl = open_source("orl").load()
    lookup = {digest(image): int(label) for image, label in zip(orl.images, orl.labels)}
    return [lookup[digest(image)] for image in images]


def test_proxy_train_and_held_out_identities_are_disjoint():
    proxy = proxy_data("orl", train_identities=30, images_per_identity=4, val_identities=10, pairs=200,
                       seed=9, cache_dir=None)
    train_people = orl_identity_of(proxy.train.images)
    pair_people = orl_identity_of(proxy.pairs.images)
    assert len(set(train_people)) == 30 and len(set(pair_people)) == 10
    assert not set(train_people) & set(pair_people)
    # issame says whether the two images show one person.
    same = [pair_people[2 * i] == pair_people[2 * i + 1] for i in range(200)]
    assert same == proxy.pairs.issame.tolist() and sum(same) == 100
    # Pairs of two identical images would be trivially "same".
    assert all(digest(proxy.pairs.images[2 * i]) != digest(proxy.pairs.images[2 * i + 1]) for i in range(200))


@settings(max_examples=50, deadline=None)
@given(count=st.integers(2, 300), data=st.data())
def test_split_identities_is_disjoint_and_deterministic(count, data):
    train = data.draw(st.integers(1, count - 1))
    held = data.draw(st.integers(1, count - train))
    seed = data.draw(st.integers(0, 2**32))
    train_ids, held_ids = split_identities(count, train, held, seed, "test")
    assert len(train_ids) == train and len(held_ids) == held
    assert not set(train_ids) & set(held_ids) and set(train_ids) | set(held_ids) <= set(range(count))
    again = split_identities(count, train, held, seed, "test")
    np.testing.assert_array_equal(again[0], train_ids)
    np.testing.assert_array_equal(again[1], held_ids)


def test_too_few_identities_is_an_error_and_images_are_clamped():
    with pytest.raises(NasfaceError, match=r"'orl' has 40 identities, but 35 training \+ 10 held-out"):
        proxy_data("orl", train_identities=35, images_per_identity=5, val_identities=10, pairs=10, seed=0,
                   cache_dir=None)
    proxy = proxy_data("orl", train_identities=30, images_per_identity=15, val_identities=10, pairs=10,
                       seed=0, cache_dir=None)
    assert len(proxy.train.images) == 300  # ORL has 10 images per person; all of them are used


def test_proxy_pairs_from_a_bin(shared):
    proxy = proxy_data(str(shared / "orl_rec"), train_identities=30, images_per_identity=2,
                       val_identities=0, pairs=0, seed=0, cache_dir=None,
                       bin_path=str(shared / "orl_rec" / "orl_pairs.bin"))
    assert proxy.train.num_identities == 30 and len(proxy.train.images) == 60
    assert proxy.pairs.name == "orl_pairs" and len(proxy.pairs.issame) == 600


def test_proxy_argument_errors(tmp_path):
    with pytest.raises(NasfaceError, match="val_identities must be an integer >= 2"):
        small_proxy(None, val_identities=1)
    with pytest.raises(NasfaceError, match=r"missing\.bin: verification file not found"):
        small_proxy(None, bin_path=str(tmp_path / "missing.bin"))
    with pytest.raises(NasfaceError, match="not found"):
        proxy_data(str(tmp_path / "nothing"), train_identities=2, images_per_identity=2, val_identities=2,
                   pairs=2, seed=0, cache_dir=None)


def test_positive_pairs_need_two_images():
    with pytest.raises(NasfaceError, match="positive pairs need two images"):
        small_proxy(None, images_per_identity=1)


def test_draw_pairs_avoids_repeats_when_it_can():
    labels = np.repeat(np.arange(4), 5)
    first, second, issame = draw_pairs(labels, 40, seed=1)
    pairs = {(min(a, b), max(a, b)) for a, b in zip(first, second)}
    assert len(pairs) == 40 and int(issame.sum()) == 20
    assert all((labels[a] == labels[b]) == same for a, b, same in zip(first, second, issame))
