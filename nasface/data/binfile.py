"""insightface verification files (lfw.bin, cfp_fp.bin, agedb_30.bin...).

A .bin is a pickle of (list of 2P encoded images, list of P booleans); pair i is
images 2i and 2i+1.  The images are ``bytes`` in most files and numpy uint8 arrays
holding the encoded bytes in others.  Unpickling runs whatever callables the file
names, so the unpickler here resolves only the few numpy names an array needs and
refuses every other one.
"""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import numpy as np

from nasface.data.base import FACE_SHAPE, PairSet, sample_report
from nasface.data.images import decode_face, image_size
from nasface.core.errors import NasfaceError
from nasface.core.stages import SILENT, Stages

_UPDATE_EVERY = 256  # images decoded between progress updates (a .bin holds thousands)


def _numpy_multiarray():
    # numpy 2 moved numpy.core to numpy._core; pickles name either, depending on who wrote them.
    try:
        return importlib.import_module("numpy._core.multiarray")
    except ImportError:
        return importlib.import_module("numpy.core.multiarray")


_MULTIARRAY = _numpy_multiarray()
_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _MULTIARRAY._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _MULTIARRAY._reconstruct,
    # numpy scalars (e.g. a numpy.bool_ in the issame list) pickle through multiarray.scalar.
    ("numpy.core.multiarray", "scalar"): _MULTIARRAY.scalar,
    ("numpy._core.multiarray", "scalar"): _MULTIARRAY.scalar,
}


class _VerificationUnpickler(pickle.Unpickler):
    def __init__(self, handle, path: Path):
        # insightface's own files come from Python 2; "bytes" keeps their str images as bytes.
        super().__init__(handle, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise NasfaceError(f"{self.path}: refusing to unpickle {module}.{name}: a verification .bin "
                               "may only hold images and booleans (the file is corrupt or malicious)")
        return allowed


def _unpickle(path: Path):
    if not path.is_file():
        raise NasfaceError(f"{path}: verification file not found")
    try:
        with open(path, "rb") as handle:
            return _VerificationUnpickler(handle, path).load()
    except NasfaceError:
        raise
    except Exception as error:  # a damaged pickle can fail in any of a dozen exception types
        raise NasfaceError(f"{path}: not a readable verification .bin ({type(error).__name__}: "
                           f"{error})") from None


def _encoded_images(path: Path, images) -> list[bytes]:
    if not isinstance(images, (list, tuple)):
        raise NasfaceError(f"{path}: expected a list of encoded images first, found {type(images).__name__}")
    encoded = []
    for index, image in enumerate(images):
        if isinstance(image, np.ndarray) and image.dtype == np.uint8:
            encoded.append(image.tobytes())
        elif isinstance(image, (bytes, bytearray)):
            encoded.append(bytes(image))
        else:
            raise NasfaceError(f"{path}: image {index} is a {type(image).__name__}, not encoded image "
                               "bytes (bytes or a numpy uint8 array)")
    return encoded


def _issame_flags(path: Path, issame) -> np.ndarray:
    if isinstance(issame, np.ndarray) and issame.dtype == np.bool_ and issame.ndim == 1:
        return issame.copy()
    if isinstance(issame, (list, tuple)) and all(isinstance(flag, (bool, np.bool_)) for flag in issame):
        return np.array(issame, dtype=np.bool_)
    raise NasfaceError(f"{path}: expected a list of booleans (same person or not) second")


def _read_structure(path: Path) -> tuple[list[bytes], np.ndarray]:
    content = _unpickle(path)
    if not isinstance(content, (list, tuple)) or len(content) != 2:
        raise NasfaceError(f"{path}: a verification .bin holds (images, issame), found "
                           f"{type(content).__name__}")
    encoded, issame = _encoded_images(path, content[0]), _issame_flags(path, content[1])
    if len(encoded) != 2 * len(issame):
        raise NasfaceError(f"{path}: {len(encoded)} images for {len(issame)} pairs; "
                           "a .bin needs exactly two images per pair")
    if not len(issame):
        raise NasfaceError(f"{path}: holds no pairs")
    return encoded, issame


def read_bin(path, progress: Stages = SILENT) -> PairSet:
    """All pairs of a verification .bin, decoded to 112 x 112 RGB (other sizes are an error); the
    decoding is a stage of ``progress``, updated every ``_UPDATE_EVERY`` images."""
    path = Path(path)
    encoded, issame = _read_structure(path)
    images = np.empty((len(encoded), *FACE_SHAPE), np.uint8)
    with progress.stage(f"decoding {path.name}", len(encoded), "images") as stage:
        for index, data in enumerate(encoded):
            images[index] = decode_face(data, f"{path} image {index}")
            if (index + 1) % _UPDATE_EVERY == 0 or index + 1 == len(encoded):
                stage.update(index + 1)
    return PairSet(images, issame, path.stem)


def describe_bin(path) -> dict:
    """``describe`` for a .bin: pair counts, and one image decoded to prove the file is usable."""
    path = Path(path)
    encoded, issame = _read_structure(path)
    report = {"format": "bin", "images": len(encoded), "identities": None, "pairs": len(issame),
              "positives": int(issame.sum()), "path": str(path)}
    report.update(sample_report(lambda: image_size(encoded[0], f"{path} image 0")))
    return report


def check_pairs_file(path) -> None:
    """Raise NasfaceError unless ``path`` is a verification .bin whose first image decodes to a face
    (what a search checks before creating anything; ``read_bin`` decodes them all later)."""
    path = Path(path).expanduser()
    encoded, _ = _read_structure(path)
    decode_face(encoded[0], f"{path} image 0")
