"""Faces aligned on loading: photos of any size become 112 x 112 crops on insightface's template.

``orl-aligned`` (the bundled ORL faces) and ``aligned:FOLDER`` (a folder of identity sub-folders
holding unaligned photos) wrap a source whose images are photos.  Every photo goes through dlib's
HOG detector, its 5 landmarks and a similarity transform onto insightface's five-point template
(``nasface.data.dlib_models``, which says how dlib's points are mapped onto the template's).  That is done
once per source: the aligned faces are cached under ``alignment_cache_dir()`` (``NASFACE_CACHE_DIR``,
else ``$XDG_CACHE_HOME/nasface``, else ``~/.cache/nasface``) and memory-mapped afterwards.

A photo in which dlib finds no face is left out of the aligned source, counted, and named in
``describe()`` (what ``nasface data`` shows) and on stderr when the cache is built; an identity left
with no face at all is dropped the same way.  Building the cache is the ``ALIGNMENT`` stage of the
progress given to ``prepare`` (a search's, ``nasface train``'s, ``nasface data``'s display).  Needs
the ``nasface[dlib]`` extra.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from functools import cached_property
from pathlib import Path

import numpy as np

from nasface.core.keys import json_digest
from nasface.core.atomic import current_umask
from nasface.data.base import FACE_SHAPE, FaceSourceBase, sample_report
from nasface.core.errors import NasfaceError
from nasface.core.stages import SILENT, Stages

logger = logging.getLogger(__name__)

# Bump when the alignment changes (template, landmark mapping, warp), so old caches are not reused.
ALIGN_VERSION = 1
ALIGNER = "dlib HOG detector + 5 landmarks, similarity onto insightface's 112x112 template"
_FACES, _INDEX, _REPORT = "faces.npy", "index.npy", "alignment.json"
ALIGNMENT = "face alignment"  # the progress stage that builds the cache


def alignment_cache_dir() -> Path:
    explicit = os.environ.get("NASFACE_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "nasface"


class AlignedSource(FaceSourceBase):
    """The faces of ``photos`` (a source with ``read_photo`` and ``photo_name``), aligned by dlib."""

    _progress: Stages = SILENT  # where building the cache reports (``prepare``)

    def __init__(self, photos: FaceSourceBase, name: str):
        from nasface.data.dlib_models import load_models, model_versions

        self.photos = photos
        self.name = name
        self._models = load_models(embedder=False)  # without dlib: one line saying what to install
        self._versions = model_versions()

    def fingerprint(self) -> dict:
        return {"format": "aligned", "version": ALIGN_VERSION, "photos": self.photos.fingerprint(),
                "models": self._versions}

    def prepare(self, progress: Stages = SILENT) -> None:
        self._progress = progress
        self._folder  # noqa: B018  (built here, as a stage of progress, unless cached)

    def check(self) -> None:
        self.photos.read_photo(0, 0)  # a photo decodes; aligning them all is the cache's work, not a check's

    @cached_property
    def _folder(self) -> Path:
        key = json_digest(self.fingerprint(), 20)
        folder = alignment_cache_dir() / "aligned" / key
        if not (folder / _REPORT).is_file():
            self._build(folder)
        return folder

    @cached_property
    def report(self) -> dict:
        """How many photos were aligned, and which were not (names), as written when it was built."""
        return json.loads((self._folder / _REPORT).read_text())

    @cached_property
    def _faces(self) -> np.ndarray:
        return np.load(self._folder / _FACES, mmap_mode="r")[:self.report["aligned"]]

    @cached_property
    def _kept(self) -> tuple[list, np.ndarray]:
        """The identities that kept a face (keys of ``photos``) and where each one's faces start."""
        index = np.load(self._folder / _INDEX)[:self.report["aligned"]]
        kept = np.unique(index[:, 0])
        names = self.photos.identities()
        starts = np.searchsorted(index[:, 0], kept)
        return [names[i] for i in kept], np.append(starts, len(index))

    def _build(self, folder: Path) -> None:
        """Align every photo into a private staging folder, then rename it into place (never half written)."""
        from nasface.data.dlib_models import align

        total = sum(self.photos.image_count(i) for i in range(len(self.photos.identities())))
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
            staging.chmod(0o777 & ~current_umask())  # mkdtemp's folder is private (0700); a cache is not
        except OSError as error:
            raise NasfaceError(f"{folder.parent}: cannot write the alignment cache ({error.strerror}); set "
                               "NASFACE_CACHE_DIR to a writable folder") from None
        try:
            faces = np.lib.format.open_memmap(staging / _FACES, mode="w+", dtype=np.uint8, shape=(total, *FACE_SHAPE))
            index, undetected, done = [], [], 0
            start = time.perf_counter()
            with self._progress.stage(ALIGNMENT, total, "photos") as stage:
                for identity in range(len(self.photos.identities())):
                    for image in range(self.photos.image_count(identity)):
                        aligned = align(self.photos.read_photo(identity, image), self._models)
                        if aligned is None:
                            undetected.append(self.photos.photo_name(identity, image))
                        else:
                            faces[len(index)] = aligned
                            index.append((identity, image))
                        done += 1
                        stage.update(done)
            faces.flush()
            del faces
            np.save(staging / _INDEX, np.array(index, np.int64).reshape(-1, 2))
            with_faces = {identity for identity, _ in index}
            report = {"aligner": ALIGNER, "photos": total, "aligned": len(index), "undetected": undetected,
                      "identities_without_faces": [name for i, name in enumerate(self.photos.identities())
                                                   if i not in with_faces],
                      "seconds": round(time.perf_counter() - start, 2)}
            if not index:
                raise NasfaceError(f"{self.name}: dlib found no face in any of its {total} photos; nothing "
                                   "to align")
            (staging / _REPORT).write_text(json.dumps(report, indent=1))
            if undetected:
                logger.warning(f"aligning {self.name}: {len(undetected)} of {total} photos without a face dlib "
                               f"could find are left out ({_some(undetected)})")
            try:
                os.rename(staging, folder)
            except OSError as error:
                if not (folder / _REPORT).is_file():  # not a concurrent process that won the race
                    raise NasfaceError(f"{folder}: cannot put the alignment cache in place ({error})") from None
        except OSError as error:
            raise NasfaceError(f"{staging}: cannot write the alignment cache ({error}); free some space or "
                               "set NASFACE_CACHE_DIR to another folder") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def identities(self) -> list:
        return self._kept[0]

    def image_count(self, identity_index: int) -> int:
        starts = self._kept[1]
        return int(starts[identity_index + 1] - starts[identity_index])

    def read_images(self, identity_index: int, image_indices: np.ndarray) -> np.ndarray:
        return np.array(self._faces[self._kept[1][identity_index] + np.asarray(image_indices)])

    def describe(self) -> dict:
        report = self.report
        missing = len(report["undetected"])
        description = {"format": "aligned", "images": report["aligned"], "identities": len(self.identities()),
                       "pairs": None, "positives": None,
                       "path": str(self.photos.root) if hasattr(self.photos, "root") else None,
                       "photos": report["photos"], "aligned_fraction": report["aligned"] / report["photos"],
                       "undetected": report["undetected"],
                       "identities_without_faces": report["identities_without_faces"],
                       "alignment": f"{ALIGNER}: {report['aligned']} of {report['photos']} photos aligned "
                                    f"({report['aligned'] / report['photos']:.1%})"
                                    + (f"; {missing} without a face dlib finds left out ({_some(report['undetected'])})"
                                       if missing else "")}
        description.update(sample_report(lambda: list(self.read_images(0, np.arange(1)).shape[1:3])))
        return description


def _some(names: list[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")
