"""MXNet RecordIO (insightface's train.rec / train.idx / property), read without mxnet.

File format (dmlc-core recordio): every part is ``uint32 magic 0xced7230a``,
``uint32 lrecord`` (top 3 bits a continuation flag, low 29 bits the length), the
payload, then zero padding to a multiple of 4 bytes.  The writer splits a record
wherever the payload holds the magic number at a 4-byte-aligned position: it drops
those 4 bytes and starts a new part, flagged 1 (first), 2 (middle), 3 (last); flag
0 is a whole record.  Joining therefore puts the magic back between parts.

The payload of an image record is an IRHeader (``IfQQ``: flag, label, id, id2),
then ``flag`` float32 labels when flag > 0 (the first one is the identity), then
the encoded image.  insightface files start with "header0" (record 0, flag 2,
no image, labels [first identity record, end]); each identity record's labels
are the [start, end) range of its image records.  Files written by plain im2rec
have no header0, and identities come from the image records' labels.
"""

from __future__ import annotations

import struct
from functools import cached_property
from pathlib import Path

import numpy as np

from nasface.data.base import FaceSourceBase, sample_report
from nasface.data.images import decode_face, image_size
from nasface.core.errors import NasfaceError

RECORDIO_MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", RECORDIO_MAGIC)
PART_HEADER = struct.Struct("<II")
IR_HEADER = struct.Struct("<IfQQ")
LENGTH_MASK = (1 << 29) - 1
WHOLE, FIRST, MIDDLE, LAST = 0, 1, 2, 3


def padded_length(length: int) -> int:
    return (length + 3) & ~3


def read_record(handle, offset: int, rec_path: Path, what: str, max_bytes: int | None = None) -> bytes:
    """The payload of the record starting at ``offset``, its split parts joined.

    With ``max_bytes`` only (at least) that many leading bytes are read, which is
    all a label scan needs.
    """
    pieces: list[bytes] = []
    collected = 0
    position = offset
    while True:
        handle.seek(position)
        head = handle.read(PART_HEADER.size)
        if len(head) < PART_HEADER.size:
            raise NasfaceError(f"{rec_path}: truncated: {what} at byte {position} is cut off; "
                               "re-copy or re-create the file")
        magic, lrecord = PART_HEADER.unpack(head)
        if magic != RECORDIO_MAGIC:
            raise NasfaceError(f"{rec_path}: no RecordIO record at byte {position} ({what}); the file "
                               "is corrupt or its .idx belongs to another file")
        flag, length = lrecord >> 29, lrecord & LENGTH_MASK
        expected = (WHOLE, FIRST) if not pieces else (MIDDLE, LAST)
        if flag not in expected:
            raise NasfaceError(f"{rec_path}: {what} at byte {position} has continuation flag {flag} "
                               f"where {' or '.join(map(str, expected))} belongs; the file is corrupt")
        wanted = length if max_bytes is None else min(length, max_bytes - collected)
        body = handle.read(wanted)
        if len(body) < wanted:
            raise NasfaceError(f"{rec_path}: truncated: {what} needs {length} bytes at byte "
                               f"{position + PART_HEADER.size} but the file ends first; "
                               "re-copy or re-create the file")
        pieces.append(body)
        collected += len(body)
        if flag in (WHOLE, LAST) or (max_bytes is not None and collected >= max_bytes):
            return b"".join(pieces)
        # The writer cut the record at a magic number it dropped: restore it.
        pieces.append(MAGIC_BYTES)
        collected += len(MAGIC_BYTES)
        position += PART_HEADER.size + padded_length(length)


def parse_header(payload: bytes, origin: str) -> tuple[np.ndarray, bytes]:
    """(labels, rest) of a record: labels is the IRHeader label, or its label array when flag > 0."""
    if len(payload) < IR_HEADER.size:
        raise NasfaceError(f"{origin}: record is {len(payload)} bytes, shorter than its "
                           f"{IR_HEADER.size}-byte IRHeader; the file is corrupt")
    flag, label, _, _ = IR_HEADER.unpack_from(payload)
    if flag == 0:
        return np.array([label], np.float32), payload[IR_HEADER.size:]
    end = IR_HEADER.size + 4 * flag
    if len(payload) < end:
        raise NasfaceError(f"{origin}: IRHeader announces {flag} labels but the record holds only "
                           f"{len(payload) - IR_HEADER.size} bytes after it; the file is corrupt")
    return np.frombuffer(payload, "<f4", count=flag, offset=IR_HEADER.size), payload[end:]


def first_label(head: bytes, origin: str) -> float:
    """The identity label from a record's first bytes: the IRHeader label, or the first of its array."""
    if len(head) < IR_HEADER.size:
        raise NasfaceError(f"{origin}: record is {len(head)} bytes, shorter than its "
                           f"{IR_HEADER.size}-byte IRHeader; the file is corrupt")
    flag, label, _, _ = IR_HEADER.unpack_from(head)
    if flag == 0:
        return label
    if len(head) < IR_HEADER.size + 4:
        raise NasfaceError(f"{origin}: IRHeader announces {flag} labels but the record ends before them; "
                           "the file is corrupt")
    return struct.unpack_from("<f", head, IR_HEADER.size)[0]


def read_index(idx_path: Path, rec_path: Path, rec_size: int) -> dict[int, int]:
    """key -> byte offset from a .idx ("key<TAB>offset" lines), each offset checked against the .rec."""
    offsets: dict[int, int] = {}
    try:
        lines = idx_path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise NasfaceError(f"{idx_path}: cannot read the RecordIO index ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2 or not all(field.isdigit() for field in fields):
            raise NasfaceError(f"{idx_path} line {number}: expected 'key<TAB>offset', got {line[:60]!r}")
        key, offset = int(fields[0]), int(fields[1])
        if key in offsets:
            raise NasfaceError(f"{idx_path} line {number}: key {key} appears twice; rebuild the index")
        if offset + PART_HEADER.size > rec_size:
            raise NasfaceError(f"{idx_path} line {number}: record {key} starts at byte {offset}, past the "
                               f"end of {rec_path.name} ({rec_size} bytes); the .idx does not belong to "
                               "this .rec or the .rec is truncated")
        offsets[key] = offset
    if not offsets:
        raise NasfaceError(f"{idx_path}: the RecordIO index is empty")
    return offsets


def whole_label(value: float, origin: str) -> int:
    if not np.isfinite(value) or value != int(value) or value < 0:
        raise NasfaceError(f"{origin}: label {value} is not an identity number (a whole number >= 0)")
    return int(value)


class RecordIOSource(FaceSourceBase):
    """Identities of an MXNet RecordIO file pair ``PREFIX.rec`` + ``PREFIX.idx``.

    Images must be 112 x 112 unless ``resize=True`` (then they are scaled and padded).
    """

    def __init__(self, prefix: Path, resize: bool = False):
        self.rec_path = Path(f"{prefix}.rec")
        self.idx_path = Path(f"{prefix}.idx")
        self.name = str(prefix)
        self.resize = bool(resize)
        for path in (self.rec_path, self.idx_path):
            if not path.is_file():
                raise NasfaceError(f"{path}: not found; a RecordIO source needs both "
                                   f"{self.rec_path.name} and {self.idx_path.name}")
        self.rec_size = self.rec_path.stat().st_size
        self.offsets = read_index(self.idx_path, self.rec_path, self.rec_size)
        # Truncation can only lose the tail: reading the last record whole proves the rest is there.
        with open(self.rec_path, "rb") as handle:
            self._read(handle, max(self.offsets, key=self.offsets.__getitem__))

    def _read(self, handle, key: int, max_bytes: int | None = None) -> bytes:
        if key not in self.offsets:
            raise NasfaceError(f"{self.idx_path}: has no record {key}, which {self.rec_path.name} "
                               "refers to; rebuild the index")
        return read_record(handle, self.offsets[key], self.rec_path, f"record {key}", max_bytes)

    @cached_property
    def _identity_keys(self) -> tuple[list, list[np.ndarray]]:
        """(identity names, record keys of each identity's images)."""
        header0 = self._header0()
        if header0 is not None:
            return self._identities_from_header0(*header0)
        return self._identities_from_labels()

    def _header0(self) -> tuple[int, int] | None:
        if 0 not in self.offsets:
            return None
        with open(self.rec_path, "rb") as handle:
            labels, rest = parse_header(self._read(handle, 0), f"{self.rec_path} record 0")
        # header0 carries the identity-record range and no image; an im2rec record 0 always has an image.
        if len(labels) < 2 or rest:
            return None
        start, end = (whole_label(value, f"{self.rec_path} record 0 (header0)") for value in labels[:2])
        if not 1 <= start < end:
            raise NasfaceError(f"{self.rec_path}: header0 gives identity records [{start}, {end}), "
                               "which is empty or overlaps it; the file is corrupt")
        return start, end

    def _identities_from_header0(self, start: int, end: int) -> tuple[list, list[np.ndarray]]:
        keys = []
        with open(self.rec_path, "rb") as handle:
            for key in range(start, end):
                origin = f"{self.rec_path} record {key} (identity {key - start})"
                labels, _ = parse_header(self._read(handle, key), origin)
                if len(labels) < 2:
                    raise NasfaceError(f"{origin}: an identity record needs a [start, end) label pair")
                first, stop = (whole_label(value, origin) for value in labels[:2])
                if not 1 <= first < stop <= start:
                    raise NasfaceError(f"{origin}: image range [{first}, {stop}) is empty or outside the "
                                       f"image records 1..{start - 1}; the file is corrupt")
                keys.append(np.arange(first, stop))
        return list(range(end - start)), keys

    def _identities_from_labels(self) -> tuple[list, list[np.ndarray]]:
        by_label: dict[int, list[int]] = {}
        with open(self.rec_path, "rb") as handle:
            for key in sorted(self.offsets):
                origin = f"{self.rec_path} record {key}"
                # The IRHeader plus the first label is all a scan needs; skip the image bytes.
                label = first_label(self._read(handle, key, IR_HEADER.size + 4), origin)
                by_label.setdefault(whole_label(label, origin), []).append(key)
        names = sorted(by_label)
        return names, [np.array(by_label[name]) for name in names]

    def identities(self) -> list:
        return list(self._identity_keys[0])

    def image_count(self, identity_index: int) -> int:
        return len(self._identity_keys[1][identity_index])

    def _image_bytes(self, handle, key: int) -> bytes:
        return parse_header(self._read(handle, key), f"{self.rec_path} record {key}")[1]

    def read_images(self, identity_index: int, image_indices: np.ndarray) -> np.ndarray:
        keys = self._identity_keys[1][identity_index][image_indices]
        with open(self.rec_path, "rb") as handle:
            return np.stack([decode_face(self._image_bytes(handle, int(key)),
                                         f"{self.rec_path} record {key}", self.resize) for key in keys])

    def describe(self) -> dict:
        names, keys = self._identity_keys
        first = int(keys[0][0])
        report = {"format": "recordio", "images": sum(len(k) for k in keys), "identities": len(names),
                  "pairs": None, "positives": None, "path": str(self.rec_path)}
        with open(self.rec_path, "rb") as handle:
            report.update(sample_report(
                lambda: image_size(self._image_bytes(handle, first), f"{self.rec_path} record {first}")))
        return report

    def fingerprint(self) -> dict:
        rec, idx = self.rec_path.stat(), self.idx_path.stat()
        return {"format": "recordio", "rec": str(self.rec_path.resolve()), "rec_size": rec.st_size,
                "rec_mtime_ns": rec.st_mtime_ns, "idx_size": idx.st_size, "idx_mtime_ns": idx.st_mtime_ns,
                "resize": self.resize}
