"""MXNet RecordIO reading: files mxnet wrote (../shared), and files written here by a
writer that follows dmlc-core's RecordIOWriter::WriteRecord byte for byte."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nasface.data import open_source
from nasface.data.recordio import read_record
from nasface.core.errors import NasfaceError
from tests.factories import REPO, MAGIC, MAGIC_BYTES, face, ir_header, write_recordio

SHARED = REPO.parent / "shared"


@pytest.fixture
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared/data (the MXNet-written reference files) is not next to this checkout")
    return SHARED / "data"


# ---------------------------------------------------------------- a faithful writer


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def part_flags(rec_path: Path) -> list[int]:
    """The continuation flag of every part in a .rec, walking it front to back."""
    data, flags, position = rec_path.read_bytes(), [], 0
    while position < len(data):
        magic, lrecord = struct.unpack_from("<II", data, position)
        assert magic == MAGIC
        flags.append(lrecord >> 29)
        position += 8 + ((lrecord & (1 << 29) - 1) + 3) // 4 * 4
    return flags


def insightface_payloads(images_per_identity: list[list[np.ndarray]]) -> list[bytes]:
    """header0, the image records, then one record per identity with its [start, end) range."""
    image_records, ranges, key = [], [], 1
    for label, faces in enumerate(images_per_identity):
        ranges.append((key, key + len(faces)))
        image_records += [ir_header(float(label), png(pixels), record_id=key + i) for i, pixels in
                          enumerate(faces)]
        key += len(faces)
    identity_start = key
    header0 = ir_header([identity_start, identity_start + len(ranges)])
    return [header0, *image_records, *(ir_header(list(r)) for r in ranges)]


# ---------------------------------------------------------------- files mxnet wrote


def test_mxnet_written_insightface_recordio(shared):
    source = open_source(str(shared / "orl_rec"))
    assert source.identities() == list(range(30))
    faces = source.load()
    assert faces.images.shape == (300, 112, 112, 3) and faces.images.dtype == np.uint8
    np.testing.assert_array_equal(faces.labels, np.repeat(np.arange(30), 10))
    assert faces.num_identities == 30
    # Identity k is ORL subject s(k+1): the JPEGs match the bundled originals up to compression.
    orl = open_source("orl").load(identities=range(30))
    assert np.abs(faces.images.astype(int) - orl.images.astype(int)).mean() < 3
    description = source.describe()
    assert description["format"] == "recordio" and description["images"] == 300
    assert description["identities"] == 30 and description["image_size"] == [112, 112]
    assert description["sample_decodes"] is True


@pytest.mark.parametrize("spec", ["orl_rec", "orl_rec/train", "orl_rec/train.rec"])
def test_recordio_spec_forms(shared, spec):
    assert open_source(str(shared / spec)).describe()["identities"] == 30


# ---------------------------------------------------------------- layouts written here


def test_insightface_layout_with_header0(tmp_path):
    identities = [[face(10 * i + j) for j in range(count)] for i, count in enumerate([3, 1, 4])]
    write_recordio(tmp_path / "train", insightface_payloads(identities))
    source = open_source(str(tmp_path))
    assert source.identities() == [0, 1, 2]
    faces = source.load()
    np.testing.assert_array_equal(faces.labels, [0, 0, 0, 1, 2, 2, 2, 2])
    np.testing.assert_array_equal(faces.images, np.stack([f for group in identities for f in group]))
    assert source.describe()["images"] == 8


def test_plain_im2rec_layout_groups_by_label(tmp_path):
    # No header0: record 0 is an image, identities come from the labels, in label order.
    labels = [7, 2, 7, 2, 5]
    write_recordio(tmp_path / "faces", [ir_header(float(label), png(face(k))) for k, label in
                                        enumerate(labels)])
    source = open_source(str(tmp_path / "faces"))
    assert source.identities() == [2, 5, 7]
    faces = source.load()
    np.testing.assert_array_equal(faces.labels, [0, 0, 1, 2, 2])
    np.testing.assert_array_equal(faces.images, np.stack([face(k) for k in (1, 3, 4, 0, 2)]))


def test_label_arrays_use_the_first_label(tmp_path):
    payloads = [ir_header([label, 0.25, 9.0], png(face(k))) for k, label in enumerate([1, 0, 1])]
    write_recordio(tmp_path / "train", payloads)
    faces = open_source(str(tmp_path)).load()
    np.testing.assert_array_equal(faces.labels, [0, 1, 1])
    np.testing.assert_array_equal(faces.images[0], face(1))


def test_records_split_at_the_magic_number_are_joined(tmp_path):
    # The magic number in the IRHeader's id and id2 (offsets 8 and 16) splits the record in three.
    payloads = [ir_header(float(k % 2), png(face(k)), record_id=MAGIC, record_id2=MAGIC)
                for k in range(4)]
    write_recordio(tmp_path / "train", payloads)
    assert part_flags(tmp_path / "train.rec") == [1, 2, 3] * 4
    faces = open_source(str(tmp_path)).load()
    np.testing.assert_array_equal(faces.images, np.stack([face(k) for k in (0, 2, 1, 3)]))


payload_pieces = st.lists(st.one_of(st.binary(max_size=13), st.just(MAGIC_BYTES)), max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(payload_pieces.map(b"".join), min_size=1, max_size=6))
def test_write_read_round_trip(tmp_path_factory, records):
    prefix = tmp_path_factory.mktemp("roundtrip") / "train"
    write_recordio(prefix, records)
    rec_path = Path(f"{prefix}.rec")
    offsets = [int(line.split("\t")[1]) for line in Path(f"{prefix}.idx").read_text().splitlines()]
    with open(rec_path, "rb") as handle:
        assert [read_record(handle, offset, rec_path, "test") for offset in offsets] == records
    # Every aligned magic number became a split point.
    splits = sum(sum(1 for p in range(0, len(r) // 4 * 4, 4) if r[p:p + 4] == MAGIC_BYTES) for r in records)
    assert len(part_flags(rec_path)) == len(records) + splits


def test_label_scan_reads_only_the_header_of_split_records(tmp_path):
    payloads = [ir_header(3.0, png(face(0)), record_id=MAGIC), ir_header(1.0, png(face(1)))]
    write_recordio(tmp_path / "train", payloads)
    assert open_source(str(tmp_path)).identities() == [1, 3]


# ---------------------------------------------------------------- broken files


def test_truncated_rec_is_refused(tmp_path):
    write_recordio(tmp_path / "train", [ir_header(0.0, png(face(k))) for k in range(3)])
    rec = tmp_path / "train.rec"
    rec.write_bytes(rec.read_bytes()[:-50])
    with pytest.raises(NasfaceError, match=r"train\.rec: truncated"):
        open_source(str(tmp_path))


def test_idx_pointing_past_the_end_is_refused(tmp_path):
    write_recordio(tmp_path / "train", [ir_header(0.0, png(face(k))) for k in range(3)])
    with open(tmp_path / "train.idx", "a") as index:
        index.write("3\t999999\n")
    with pytest.raises(NasfaceError, match=r"train\.idx line 4: record 3 starts at byte 999999, past the end"):
        open_source(str(tmp_path))


def test_idx_pointing_inside_a_record_is_refused(tmp_path):
    write_recordio(tmp_path / "train", [ir_header(0.0, png(face(k))) for k in range(2)])
    (tmp_path / "train.idx").write_text("0\t0\n1\t12\n")
    with pytest.raises(NasfaceError, match=r"train\.rec: no RecordIO record at byte 12"):
        open_source(str(tmp_path)).load()


def test_malformed_idx_line_is_refused(tmp_path):
    write_recordio(tmp_path / "train", [ir_header(0.0, png(face(0)))])
    (tmp_path / "train.idx").write_text("0\t0\nnot an index line\n")
    with pytest.raises(NasfaceError, match=r"train\.idx line 2: expected 'key<TAB>offset'"):
        open_source(str(tmp_path))


def test_missing_idx_is_named(tmp_path):
    write_recordio(tmp_path / "train", [ir_header(0.0, png(face(0)))])
    (tmp_path / "train.idx").unlink()
    with pytest.raises(NasfaceError, match=r"train\.idx: not found"):
        open_source(str(tmp_path / "train.rec"))


def test_wrong_image_size_names_the_record(tmp_path):
    write_recordio(tmp_path / "train", [ir_header(0.0, png(face(k, (100, 90)))) for k in range(2)])
    with pytest.raises(NasfaceError, match=r"train\.rec record 0: image is 90x100 \(width x height\)"):
        open_source(str(tmp_path)).load()
    resized = open_source(str(tmp_path), resize=True).load()
    assert resized.images.shape == (2, 112, 112, 3)


def test_undecodable_image_names_the_record(tmp_path):
    write_recordio(tmp_path / "train", [ir_header(0.0, b"\xff\xd8 not really a jpeg")])
    source = open_source(str(tmp_path))
    description = source.describe()
    assert description["sample_decodes"] is False and "record 0" in description["sample_error"]
    with pytest.raises(NasfaceError, match=r"train\.rec record 0: cannot decode image"):
        source.load()


def test_header0_with_bad_identity_range_is_refused(tmp_path):
    payloads = insightface_payloads([[face(0)], [face(1)]])
    payloads[-1] = ir_header([2.0, 9.0])  # the last identity claims records beyond the images
    write_recordio(tmp_path / "train", payloads)
    with pytest.raises(NasfaceError, match=r"record 4 \(identity 1\): image range \[2, 9\)"):
        open_source(str(tmp_path)).identities()
