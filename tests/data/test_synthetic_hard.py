"""``synthetic-hard``: bit-reproducible renders, what it promises (counts, pose range, occluders, low
resolution, features that follow the turned head), its place in the proxy, and bad input."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nasface.cli import main
from nasface.data import open_source, proxy_data
from nasface.data.synthetic_hard import (LOW_RESOLUTION_FACTORS, MAX_YAW_DEGREES, HardSyntheticSource, _TurnedRender,
                                         identity_params, image_params, render)
from nasface.core.errors import NasfaceError
from tests.factories import digest, run_python


def test_counts_labels_and_description():
    source = open_source("synthetic-hard", seed=1, num_identities=6, per_identity=4)
    assert isinstance(source, HardSyntheticSource) and source.identities() == list(range(6))
    faces = source.load(identities=[5, 0], per_identity=3)
    assert faces.images.shape == (6, 112, 112, 3) and faces.images.dtype == np.uint8
    np.testing.assert_array_equal(faces.labels, [0, 0, 0, 1, 1, 1])
    described = source.describe()
    assert (described["format"], described["identities"], described["images"]) == ("synthetic-hard", 6, 24)
    assert source.fingerprint()["format"] == "synthetic-hard"
    assert source.fingerprint() != open_source("synthetic", seed=1, num_identities=6, per_identity=4).fingerprint()


def test_renders_are_the_same_bytes_twice_and_in_another_process():
    first = HardSyntheticSource(seed=5, num_identities=3, per_identity=6).load()
    again = HardSyntheticSource(seed=5, num_identities=3, per_identity=6).load()
    assert digest(first.images) == digest(again.images)
    assert digest(first.images) != digest(HardSyntheticSource(seed=6, num_identities=3, per_identity=6).load().images)
    assert len({digest(image) for image in first.images}) == len(first.images)
    code = ("import hashlib; from nasface.data import open_source; "
            "s = open_source('synthetic-hard', seed=5, num_identities=3, per_identity=6); "
            "print(hashlib.sha256(s.load().images.tobytes()).hexdigest())")
    assert run_python(code, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1") == digest(first.images)


def test_not_the_images_of_synthetic():
    # A new source of its own: synthetic's stored results depend on its images staying as they are.
    hard = HardSyntheticSource(seed=0, num_identities=2, per_identity=2).load()
    plain = open_source("synthetic", seed=0, num_identities=2, per_identity=2).load()
    assert digest(hard.images) != digest(plain.images)


def test_pose_occluder_and_resolution_draws_cover_their_ranges():
    shots = image_params(0, 3, np.arange(400))
    yaw = np.degrees(shots["yaw"])
    assert yaw.min() >= -MAX_YAW_DEGREES and yaw.max() <= MAX_YAW_DEGREES
    assert yaw.min() < -50 and yaw.max() > 50 and np.mean(np.abs(yaw)) > 20
    assert set(np.unique(shots["low_resolution"])) == set(range(len(LOW_RESOLUTION_FACTORS)))
    occluders = shots["sunglasses"] + shots["band"] + shots["mask"]
    assert occluders.max() == 1 and 0.3 < occluders.mean() < 0.6  # at most one occluder; most faces bare


def test_low_resolution_images_are_block_constant_before_noise():
    person = identity_params(0, 1)
    shots = image_params(0, 1, np.arange(60))
    shots["noise"][:] = 0
    images = render(person, shots).astype(np.int16)
    for image, choice in zip(images, shots["low_resolution"]):
        factor = LOW_RESOLUTION_FACTORS[int(choice)]
        blocks = image.reshape(112 // factor, factor, 112 // factor, factor, 3)
        assert np.abs(blocks - blocks[:, :1, :, :1]).max() <= 1


@settings(max_examples=25, deadline=None)
@given(identity=st.integers(0, 10_000), yaw=st.floats(-MAX_YAW_DEGREES, MAX_YAW_DEGREES),
       fraction=st.floats(-0.6, 0.6))
def test_a_frontal_point_shows_where_the_turned_ellipsoid_puts_it(identity, yaw, fraction):
    # A point of the frontal face at azimuth a on the head's cross-section (half-width R) shows, turned
    # by the yaw, at R sin(a + yaw): the pixel whose frontal coordinate is the point's own sits there.
    person = identity_params(0, identity)
    shots = image_params(0, identity, np.arange(1))
    shots["yaw"][:] = np.radians(yaw)
    shots["angle"][:], shots["scale"][:], shots["shift_x"][:], shots["shift_y"][:] = 0, 1, 0, 0
    draw = _TurnedRender(shots, person)
    row = int(np.argmin(np.abs(draw.v[0, :, 0] - person["eye_y"])))
    half_width = float(draw.half_width(draw.v[0, row, 0]))
    frontal = fraction * half_width
    expected = half_width * np.sin(np.arcsin(fraction) + np.radians(yaw))
    front = draw.feature_u[0, row] < 5  # pixels that show the face's front
    frontal_of_row, u_of_row = draw.feature_u[0, row][front], draw.u[0, row][front]
    assert np.all(np.diff(frontal_of_row) > 0)  # the face is not folded or mirrored
    shown = float(np.interp(frontal, frontal_of_row, u_of_row))
    assert abs(shown - expected) < 2 * 2.0 / draw.u.shape[-1]
    # Turning towards +x moves every front feature towards +x.
    assert (expected - frontal) * yaw >= -1e-6


@settings(max_examples=10, deadline=None)
@given(identity=st.integers(0, 10_000), images=st.lists(st.integers(0, 39), min_size=1, max_size=4, unique=True))
def test_an_image_does_not_depend_on_its_batch(identity, images):
    # Features are drawn only inside windows computed per batch: a window too small would show here.
    source = HardSyntheticSource(seed=2, num_identities=identity + 1)
    batch = source.read_images(identity, np.array(images))
    for position, image in enumerate(images):
        np.testing.assert_array_equal(batch[position], source.read_images(identity, np.array([image]))[0])


def test_proxy_pairs_are_balanced_and_from_held_out_identities(tmp_path):
    data = proxy_data("synthetic-hard", train_identities=5, images_per_identity=3, val_identities=4, pairs=20,
                      seed=0, cache_dir=tmp_path)
    assert data.train.images.shape == (15, 112, 112, 3) and data.train.num_identities == 5
    assert data.pairs.issame.sum() == 10 and len(data.pairs.issame) == 20
    assert data.pairs.name == "synthetic-hard-held-out"
    again = proxy_data("synthetic-hard", train_identities=5, images_per_identity=3, val_identities=4, pairs=20,
                       seed=0, cache_dir=tmp_path)
    assert again.key == data.key and digest(again.pairs.images) == digest(data.pairs.images)


def test_bad_options_name_the_source():
    with pytest.raises(NasfaceError, match="synthetic-hard num_identities must be an integer >= 1"):
        open_source("synthetic-hard", num_identities=0)
    with pytest.raises(NasfaceError, match="seed must be a non-negative integer"):
        open_source("synthetic-hard", seed=-2)
    with pytest.raises(NasfaceError, match="does not take option"):
        open_source("synthetic-hard", resize=64)


def test_too_many_identities_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    out = tmp_path / "validate"
    monkeypatch.setattr(sys, "argv", ["nasface", "validate", "--data", "synthetic-hard", "--train-identities", "4990",
                                      "--val-identities", "100", "--seeds", "1", "--teacher", "none",
                                      "--out", str(out)])
    with pytest.raises(SystemExit) as raised:
        main()
    assert raised.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'synthetic-hard' has 5000 identities" in error
    assert not out.exists()
