"""Decoding encoded images (JPEG, PNG, PGM, BMP) into 112 x 112 RGB faces with PIL."""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from nasface.data.base import FACE_SIZE
from nasface.core.errors import NasfaceError


def fit_to_face(image: Image.Image) -> np.ndarray:
    """Scale so the longer side is 112 (keeping the aspect ratio), then centre on black.

    Padding rather than cropping keeps the whole face, the way ORL's 92-pixel-wide
    images are padded.
    """
    width, height = image.size
    scale = FACE_SIZE / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(image.resize(new_size, Image.Resampling.BILINEAR))
    return pad_to_face(resized)


def pad_to_face(pixels: np.ndarray) -> np.ndarray:
    """Centre an h x w (x 3) uint8 image no larger than 112 x 112 on a black 112 x 112 RGB canvas."""
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    height, width = pixels.shape[:2]
    top, left = (FACE_SIZE - height) // 2, (FACE_SIZE - width) // 2
    canvas = np.zeros((FACE_SIZE, FACE_SIZE, 3), np.uint8)
    canvas[top:top + height, left:left + width] = pixels
    return canvas


def to_face(image: Image.Image, origin: str, resize: bool = False,
            fix: str = f"align and crop them to {FACE_SIZE}x{FACE_SIZE} first") -> np.ndarray:
    """A PIL image as uint8 112 x 112 x 3 RGB; other sizes are an error (saying ``fix``) unless ``resize``."""
    rgb = image.convert("RGB")
    if rgb.size != (FACE_SIZE, FACE_SIZE):
        if not resize:
            width, height = rgb.size
            raise NasfaceError(f"{origin}: image is {width}x{height} (width x height), nasface needs "
                               f"aligned {FACE_SIZE}x{FACE_SIZE} faces; {fix}")
        return fit_to_face(rgb)
    return np.asarray(rgb)


def open_image(data: bytes | None, origin: str, path: str | None = None) -> Image.Image:
    """Open encoded bytes (or a file path) with PIL, turning any decoder failure into one line."""
    try:
        with warnings.catch_warnings():
            # PIL only warns about an absurdly large image; refuse it instead of filling memory.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data) if path is None else path)
            image.load()
        return image
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as error:
        # PIL names what it read from: a path (the origin says it) or "<_io.BytesIO object at 0x...>"
        reason = re.sub(r"\s*<_io\.BytesIO object at 0x[0-9a-fA-F]+>", "", str(error))
        raise NasfaceError(f"{origin}: cannot decode image ({reason}); the file is not a readable "
                           "JPEG/PNG/PGM/BMP or is truncated") from None


def decode_face(data: bytes, origin: str, resize: bool = False) -> np.ndarray:
    """Encoded image bytes as uint8 112 x 112 x 3 RGB (see ``to_face``)."""
    return to_face(open_image(data, origin), origin, resize)


def read_face_file(path: str, resize: bool = False) -> np.ndarray:
    """An image file of a folder of identity sub-folders as uint8 112 x 112 x 3 RGB (see ``to_face``)."""
    root = Path(path).parent.parent
    return to_face(open_image(None, path, path=path), path, resize,
                   fix=f"give the folder as --data aligned:{root} to detect and align the faces, or crop them to "
                       f"{FACE_SIZE}x{FACE_SIZE} first")


def image_size(data: bytes | None, origin: str, path: str | None = None) -> list[int]:
    """[height, width] of an encoded image, decoding it fully so a broken one is caught."""
    width, height = open_image(data, origin, path).size
    return [height, width]
