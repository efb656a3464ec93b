"""insightface verification .bin files: both flavours, and a pickle that tries to run code."""

from __future__ import annotations

import builtins
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from nasface.data import describe, read_bin
from nasface.core.errors import NasfaceError
from tests.factories import REPO, faces, png

SHARED = REPO.parent / "shared"


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared/data (the insightface reference files) is not next to this checkout")
    return SHARED / "data"


def write_pickle(path: Path, content) -> Path:
    path.write_bytes(pickle.dumps(content, protocol=4))
    return path


def test_mxnet_era_bin_with_bytes_images(shared):
    pairs = read_bin(shared / "orl_rec" / "orl_pairs.bin")
    assert pairs.images.shape == (1200, 112, 112, 3) and pairs.images.dtype == np.uint8
    assert pairs.issame.shape == (600,) and pairs.issame.dtype == np.bool_
    assert int(pairs.issame.sum()) == 300 and pairs.name == "orl_pairs"


def test_bin_with_numpy_array_images(shared):
    pairs = read_bin(shared / "insightface_small" / "small_lfw.bin")
    assert pairs.images.shape == (20, 112, 112, 3)
    assert pairs.issame.tolist() == [True] * 10


def test_describe_bin(shared):
    description = describe(str(shared / "orl_rec" / "orl_pairs.bin"))
    assert description["format"] == "bin" and description["identities"] is None
    assert (description["pairs"], description["positives"], description["images"]) == (600, 300, 1200)
    assert description["image_size"] == [112, 112] and description["sample_decodes"] is True


@pytest.mark.parametrize("flavour", ["bytes", "numpy", "numpy-issame"])
def test_written_bins_decode_exactly(tmp_path, flavour):
    pixels = faces(4)
    encoded = [png(image) for image in pixels]
    issame = [True, False]
    if flavour != "bytes":
        encoded = [np.frombuffer(data, np.uint8) for data in encoded]
    if flavour == "numpy-issame":
        issame = np.array(issame)
    pairs = read_bin(write_pickle(tmp_path / "mine.bin", (encoded, issame)))
    np.testing.assert_array_equal(pairs.images, np.stack(pixels))
    assert pairs.issame.tolist() == [True, False] and pairs.name == "mine"


def test_numpy_bool_scalars_are_accepted(tmp_path):
    path = write_pickle(tmp_path / "scalars.bin", ([png(f) for f in faces(2)], [np.bool_(True)]))
    assert read_bin(path).issame.tolist() == [True]


class _RunsCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class _OpensFile:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return builtins.open, (str(self.marker), "w")


@pytest.mark.parametrize("payload", [_RunsCommand, _OpensFile])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload):
    marker = tmp_path / "pwned"
    path = write_pickle(tmp_path / "evil.bin", ([png(f) for f in faces(2)], [payload(marker)]))
    with pytest.raises(NasfaceError, match=r"evil\.bin: refusing to unpickle (posix|nt|os|builtins|io)\."):
        read_bin(path)
    assert not marker.exists()
    with pytest.raises(NasfaceError, match="refusing to unpickle"):
        describe(str(path))
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    ({"images": []}, r"holds \(images, issame\)"),
    (([b"x"] * 3, [True]), r"3 images for 1 pairs"),
    (([b"x"] * 2, [1]), r"list of booleans"),
    (([b"x", 7], [True]), r"image 1 is a int"),
    (([], []), r"holds no pairs"),
])
def test_wrong_structure_is_refused(tmp_path, content, message):
    with pytest.raises(NasfaceError, match=message):
        read_bin(write_pickle(tmp_path / "odd.bin", content))


def test_not_a_pickle_is_refused(tmp_path):
    path = tmp_path / "garbage.bin"
    path.write_bytes(b"\x00\x01 definitely not a pickle")
    with pytest.raises(NasfaceError, match=r"garbage\.bin: not a readable verification \.bin"):
        read_bin(path)


def test_truncated_pickle_is_refused(tmp_path):
    path = write_pickle(tmp_path / "cut.bin", ([png(f) for f in faces(2)], [True]))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(NasfaceError, match=r"cut\.bin: not a readable"):
        read_bin(path)


def test_wrong_image_size_names_file_and_size(tmp_path):
    path = write_pickle(tmp_path / "small.bin", ([png(f) for f in faces(2, (96, 80))], [False]))
    with pytest.raises(NasfaceError, match=r"small\.bin image 0: image is 80x96 \(width x height\)"):
        read_bin(path)


def test_corrupt_image_names_it(tmp_path):
    path = write_pickle(tmp_path / "broken.bin", ([png(faces(1)[0]), b"\xff\xd8\xff junk"], [True]))
    with pytest.raises(NasfaceError, match=r"broken\.bin image 1: cannot decode image"):
        read_bin(path)


def test_missing_bin(tmp_path):
    with pytest.raises(NasfaceError, match=r"nothere\.bin: verification file not found"):
        read_bin(tmp_path / "nothere.bin")
    with pytest.raises(NasfaceError, match="not found"):
        describe(str(tmp_path / "nothere.bin"))
