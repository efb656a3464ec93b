"""The nasface[dlib] extra: 5-point alignment of photos, and dlib's pretrained ResNet as the teacher.

Run on a few of the bundled ORL faces.  Tests that need dlib take the ``dlib_installed`` fixture:
skipped without the extra, failed in CI (``CI`` set), which installs it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nasface.data import dlib_models
from nasface.data import describe, open_source, proxy_data
from nasface.core.errors import NasfaceError
from nasface.arch.spec import spec_from_dict
from nasface.core.stages import Stages
from nasface.training.teacher import DLIB_CHIPS, DLIB_TEACHER, TEACHER_EMBEDDING, teacher_info, teacher_targets
from nasface.training.proxy import score
from nasface.training.settings import ProxyBudget

STUDENT = spec_from_dict({  # 64-d embeddings: not the teacher's 128
    "name": "student", "stem": {"width": 16, "stride": 2},
    "stages": [{"family": "bottleneck", "repeats": 1, "width": 16, "stride": 2, "expansion": 2}],
    "embedding": {"kind": "gdc", "size": 64, "width": 64}})


class RecordedStages(Stages):
    """Every progress update, as (stage, done, total)."""

    def __init__(self):
        self.updates = []

    def updated(self, progress) -> None:
        self.updates.append((progress.name, progress.done, progress.total))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private alignment cache (NASFACE_CACHE_DIR) for the module."""
    folder = tmp_path_factory.mktemp("dlib-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NASFACE_CACHE_DIR", str(folder / "aligned"))
        yield folder


def orl_photos(folder: Path, people: int, per_person: int) -> Path:
    """ORL's first photos (92 x 112 grey, unaligned) as a folder of identity sub-folders."""
    orl = open_source("orl")
    for person in range(people):
        (folder / f"s{person + 1}").mkdir(parents=True)
        for image in range(per_person):
            Image.fromarray(orl.read_photo(person, image)).save(folder / f"s{person + 1}" / f"{image + 1}.pgm")
    return folder


def test_similarity_transform_recovers_a_known_one():
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -2.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = np.array([[10.0, 20.0], [40.0, 22.0], [25.0, 45.0]])
    target = source @ (scale * rotation).T + shift
    matrix = dlib_models.similarity_transform(source, target)
    np.testing.assert_allclose(matrix, np.hstack([scale * rotation, shift[:, None]]), atol=1e-9)
    # A reflection is not a similarity: mirrored targets are fitted by a rotation, not flipped.
    mirrored = dlib_models.similarity_transform(source, target * [-1, 1])
    assert np.linalg.det(mirrored[:, :2]) > 0


def test_the_alignment_targets_are_insightfaces_eyes_and_a_nose_base_below_its_nose_tip():
    np.testing.assert_array_equal(dlib_models.ALIGNMENT_TARGET[:2], dlib_models.ARCFACE_TEMPLATE[:2])
    nose_base, nose_tip = dlib_models.ALIGNMENT_TARGET[2], dlib_models.ARCFACE_TEMPLATE[2]
    assert nose_base[0] == nose_tip[0] and 0 < nose_base[1] - nose_tip[1] < 10


def test_photos_are_aligned_once_and_faces_not_found_are_named(dlib_installed, cache, tmp_path):
    photos = orl_photos(tmp_path / "photos", people=2, per_person=3)
    (photos / "nobody").mkdir()
    Image.fromarray(np.full((112, 92), 128, np.uint8)).save(photos / "nobody" / "1.pgm")  # no face in it
    Image.fromarray(np.full((112, 92), 90, np.uint8)).save(photos / "s2" / "9.pgm")
    spec = f"aligned:{photos}"
    facts = describe(spec)
    assert facts["format"] == "aligned" and facts["photos"] == 8 and facts["images"] == 6
    assert facts["undetected"] == ["nobody/1.pgm", "s2/9.pgm"] and facts["identities_without_faces"] == ["nobody"]
    assert "6 of 8 photos aligned" in facts["alignment"] and facts["aligned_fraction"] == 0.75
    json.dumps(facts)
    source = open_source(spec)
    assert source.identities() == ["s1", "s2"] and source.image_count(1) == 3
    faces = source.load()
    assert faces.images.shape == (6, 112, 112, 3) and faces.labels.tolist() == [0, 0, 0, 1, 1, 1]
    # On the template: dlib finds the eyes of the aligned faces where insightface puts them.
    models = dlib_models.load_models(embedder=False)
    for face in faces.images:
        box = dlib_models.detect(face, models)
        points = dlib_models.eye_nose_points(models.landmarks(face, box))
        assert np.abs(points - dlib_models.ALIGNMENT_TARGET).max() < 4
    # Cached once: a second source reads the cache and never runs dlib.
    cached = list(Path(os.environ["NASFACE_CACHE_DIR"]).glob("aligned/*"))
    assert len(cached) == 1

    def refuse(*_):
        raise AssertionError("aligned again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dlib_models, "align", refuse)
        np.testing.assert_array_equal(open_source(spec).load().images, faces.images)


def test_aligning_is_a_progress_stage_and_checking_a_source_aligns_nothing(dlib_installed, cache, tmp_path):
    from nasface.data import check_training_source
    from nasface.data.aligned import ALIGNMENT

    spec = f"aligned:{orl_photos(tmp_path / 'photos', people=3, per_person=2)}"
    before = set(Path(os.environ["NASFACE_CACHE_DIR"]).glob("aligned/*"))
    check_training_source(spec)  # what a search checks before it creates anything: the photos decode
    assert set(Path(os.environ["NASFACE_CACHE_DIR"]).glob("aligned/*")) == before
    stages = RecordedStages()
    data = proxy_data(spec, train_identities=1, images_per_identity=2, val_identities=2, pairs=2, seed=0,
                      cache_dir=None, progress=stages)
    assert [update for update in stages.updates if update[0] == ALIGNMENT] == [(ALIGNMENT, n, 6) for n in range(1, 7)]
    assert len(data.train.labels) == 2
    assert len(set(Path(os.environ["NASFACE_CACHE_DIR"]).glob("aligned/*"))) == len(before) + 1


def test_aligned_needs_a_folder_of_photos(dlib_installed, tmp_path):
    with pytest.raises(NasfaceError, match="not a folder of identity sub-folders"):
        open_source(f"aligned:{tmp_path / 'nowhere'}")


def test_the_dlib_teacher_embeds_once_verifies_and_distils_into_another_size(dlib_installed, cache, caplog):
    data = proxy_data("orl-aligned", train_identities=3, images_per_identity=3, val_identities=2, pairs=8,
                      seed=0, cache_dir=cache / "proxy")
    budget = ProxyBudget(steps=2, batch_size=4, resolution=32, device="cpu")
    caplog.set_level(logging.INFO, logger="nasface")
    stages = RecordedStages()
    targets = teacher_targets(DLIB_TEACHER, data, cache / "teachers", budget, progress=stages)
    messages = list(caplog.messages)
    assert targets.embeddings.shape == targets.flipped.shape == (9, 128) and targets.centres.shape == (3, 128)
    info = teacher_info(targets)
    assert info["teacher"] == DLIB_TEACHER and info["training_faces"] == 9 and info["detected"] == 9
    assert info["verification"]["pairs"] == 8 and info["verification"]["accuracy"] >= 0.75
    assert messages[-1].startswith(f"teacher {DLIB_TEACHER} verifies orl-aligned-held-out at")
    # Progress: the 9 training crops and the distinct held-out ones searched, then each one's chip and
    # its mirror embedded.
    chips = [done for name, done, _ in stages.updates if name == DLIB_CHIPS]
    embedded = [(done, total) for name, done, total in stages.updates if name == TEACHER_EMBEDDING]
    assert chips == list(range(1, len(chips) + 1)) and len(chips) > 9
    assert embedded[-1] == (2 * len(chips), 2 * len(chips)) and embedded[0][0] == 16  # dlib's batch
    # The mirror's embedding (that of the mirrored chip) is what dlib gives the mirrored crop.
    models = dlib_models.load_models()
    mirrored = dlib_models.face_chips(np.asarray(data.train.images)[:3, :, ::-1], models)
    again = dlib_models.embed_chips(mirrored.chips, models)
    cosine = (again * targets.flipped[:3]).sum(1) / np.linalg.norm(again, axis=1) \
        / np.linalg.norm(targets.flipped[:3], axis=1)
    assert (cosine > 0.99).all()
    # Cached: a second call reads the arrays and only repeats the teacher's score.
    caplog.clear()
    assert np.array_equal(teacher_targets(DLIB_TEACHER, data, cache / "teachers", budget).embeddings,
                          targets.embeddings)
    assert caplog.messages == [messages[-1]]
    for distill in ("angular", "margin"):  # a 64-d student from the 128-d teacher
        result = score(STUDENT, data.train, data.pairs, ProxyBudget(steps=2, batch_size=4, resolution=32,
                                                                    device="cpu", distill=distill), targets)
        assert result["status"] == "ok" and result["distill"] == distill and np.isfinite(result["final_loss"])


@pytest.mark.parametrize("command", [["score", "mobilefacenet", "--teacher", DLIB_TEACHER, "--data", "orl"],
                                     ["data", "orl-aligned"]])
def test_without_dlib_one_line_says_what_to_install(tmp_path, command):
    # dlib made unimportable, as on a machine without the extra.
    code = ("import sys; sys.modules['dlib'] = None; from nasface.cli import main; "
            f"sys.argv = ['nasface', *{command!r}, *sys.argv[1:]]; main()")
    extra = ["--cache-dir", str(tmp_path / "cache")] if command[0] == "score" else []
    result = subprocess.run([sys.executable, "-c", code, *extra], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "NASFACE_CACHE_DIR": str(tmp_path / "aligned")})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: dlib's face models are not installed: {dlib_models.INSTALL_HINT}"]
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_search_with_the_dlib_teacher_keeps_its_score_with_the_study(dlib_installed, cache, tmp_path):
    from nasface.ui.progress import Reporter
    from nasface.search.results import open_study
    from nasface.search import config_from_options, run_search

    config = config_from_options({
        "budget_flops": "1G", "budget_mem": "20MB", "studies_dir": str(tmp_path / "studies"), "study": "d",
        "data": "orl-aligned", "teacher": DLIB_TEACHER, "executor": "inline", "trials": 1, "baselines": False,
        "device": "cpu", "proxy_steps": 2, "proxy_batch": 4, "resolution": 32, "train_identities": 3,
        "images_per_identity": 3, "val_identities": 2, "pairs": 8})
    run_search(config, Reporter("quiet"))
    study = open_study("d", tmp_path / "studies")
    teacher = study.user_attrs["nasface_teacher"]
    assert teacher["teacher"] == DLIB_TEACHER and teacher["verification"]["pairs"] == 8
    assert [t.user_attrs["metrics"]["distill"] for t in study.trials if t.user_attrs.get("metrics")] == ["angular"]
