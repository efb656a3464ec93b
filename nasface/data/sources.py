"""Turning a data spec (what the user typed) into a source, and describing it."""

from __future__ import annotations

import inspect
from pathlib import Path

from nasface.data.aligned import AlignedSource
from nasface.data.base import FaceSourceBase, check_identity_split
from nasface.data.binfile import describe_bin
from nasface.data.folder import FolderSource
from nasface.data.orl import OrlSource
from nasface.data.recordio import RecordIOSource
from nasface.data.synthetic import SyntheticSource
from nasface.core.errors import NasfaceError
from nasface.core.stages import SILENT, Stages
from nasface.data.synthetic_hard import HardSyntheticSource

SPEC_HELP = ("'synthetic', 'synthetic-hard', 'orl', 'orl-aligned', a folder of identity sub-folders (aligned:FOLDER to align "
             "its photos), or a RecordIO folder/prefix (train.rec + train.idx)")
ALIGNED_PREFIX = "aligned:"


def _construct(kind, spec: str, *arguments, **options) -> FaceSourceBase:
    accepted = [name for name in inspect.signature(kind).parameters][len(arguments):]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise NasfaceError(f"data source '{spec}' does not take option(s) {', '.join(unknown)}; "
                           f"it accepts: {', '.join(accepted) or 'none'}")
    return kind(*arguments, **options)


def _recordio_prefix(path: Path) -> Path | None:
    """The PREFIX of PREFIX.rec + PREFIX.idx that ``path`` names, if it names one."""
    if path.is_dir():
        if (path / "train.rec").is_file():
            return path / "train"
        records = sorted(path.glob("*.rec"))
        return records[0].with_suffix("") if len(records) == 1 else None
    if path.suffix == ".rec":
        return path.with_suffix("")
    if Path(f"{path}.rec").is_file():
        return path
    return None


def _photos(spec: str) -> FaceSourceBase:
    """The source of unaligned photos that ``aligned:FOLDER`` names."""
    path = Path(spec[len(ALIGNED_PREFIX):]).expanduser()
    if not path.is_dir() or _recordio_prefix(path) is not None:
        raise NasfaceError(f"data source '{spec}': {path} is not a folder of identity sub-folders (aligned: "
                           "takes a folder of photos)")
    return FolderSource(path)


def open_source(spec: str, **options) -> FaceSourceBase:
    """A face source from a spec: "synthetic" or "synthetic-hard" (options seed, num_identities, per_identity),
    "orl", "orl-aligned", a folder of identity sub-folders or a RecordIO folder/prefix (option resize),
    or "aligned:FOLDER" (a folder of photos, aligned on loading)."""
    if spec == "synthetic":
        return _construct(SyntheticSource, spec, **options)
    if spec == "synthetic-hard":
        return _construct(HardSyntheticSource, spec, **options)
    if spec == "orl":
        return _construct(OrlSource, spec, **options)
    if spec == "orl-aligned" or spec.startswith(ALIGNED_PREFIX):
        photos = OrlSource() if spec == "orl-aligned" else _photos(spec)
        return _construct(AlignedSource, spec, photos, spec, **options)
    path = Path(spec).expanduser()
    prefix = _recordio_prefix(path)
    if prefix is not None:
        return _construct(RecordIOSource, spec, prefix, **options)
    if path.is_dir():
        return _construct(FolderSource, spec, path, **options)
    if path.suffix == ".bin" and path.is_file():
        raise NasfaceError(f"{path}: a verification .bin holds pairs, not identities to train on; "
                           "verify on it with --val-bin (bin_path in Python), or describe it with `nasface data`")
    if not path.exists():
        raise NasfaceError(f"data source '{spec}' not found; expected {SPEC_HELP}")
    raise NasfaceError(f"{path}: not a data source; expected {SPEC_HELP}")


def describe(spec: str, progress: Stages = SILENT) -> dict:
    """What ``nasface data SPEC --json`` prints.

    Keys: format ("synthetic" | "synthetic-hard" | "orl" | "folder" | "recordio" | "bin" | "aligned"), images,
    identities, pairs, positives (null where they do not apply), image_size
    ([height, width] of a decoded sample as the source stores it; ORL's as padded),
    sample_decodes (a sample was actually decoded), sample_error (why not, else
    null) and path (null for the built-in sources).  An aligned source adds photos, aligned_fraction,
    undetected (the photos left out), identities_without_faces and alignment (a sentence).
    Aligning the photos, the first time, is a stage of ``progress``.
    """
    if Path(spec).suffix == ".bin":
        return describe_bin(Path(spec).expanduser())
    source = open_source(spec)
    source.prepare(progress)
    return source.describe()


def check_training_source(spec: str, train_identities: int = 0, held_out: int = 0) -> None:
    """Raise NasfaceError unless ``spec`` opens as a source to train on, one image of it decodes to a
    face the way training will decode them, and it has the identities asked for (what a search
    checks before creating anything; an aligned source counts its identities once its photos are
    aligned, the data stage's work)."""
    source = open_source(spec)
    source.check()
    if not isinstance(source, AlignedSource):
        check_identity_split(len(source.identities()), train_identities, held_out, spec)
