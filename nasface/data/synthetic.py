"""Procedurally generated face-like identities: data that needs no download.

An identity is a set of shape and colour parameters (face oval, chin, hairline and
hair colour, eye placement, size and iris colour, brows, nose, mouth, moles, a
beard or glasses for some).  An image of it adds what changes between photos of
one person: head pose (rotation, scale, shift, a little yaw), expression (eye
openness, gaze, brow raise, smile, open mouth), directional light on a rounded
face, exposure, contrast, gamma and colour cast, background, blur and sensor
noise.

Identities are drawn from a narrow range and the nuisances are strong, so telling
two people apart takes learned features: an untrained network is near chance and
a briefly trained one is well short of perfect, which is what lets a search
separate architectures.  Everything is drawn from numpy generators seeded by
(seed, identity) and (seed, identity, image), so an image is the same bits in any
process and identities are generated only when asked for.

Rendering works on all images of an identity at once, channels first (numpy's
inner loops then run over whole rows), and draws small features only inside the
pixel window they can reach.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nasface.data.base import FACE_SIZE, FaceSourceBase, check_count, check_seed

# Bump when the generator changes, so cached proxies made with the old one are not reused.
GENERATOR_VERSION = 1
DEFAULT_IDENTITIES = 1000
DEFAULT_PER_IDENTITY = 20
# Faces are drawn at half resolution and upsampled: a quarter of the pixels to shade, and
# the camera blur that follows hides the difference.
_RENDER_SIZE = FACE_SIZE // 2
_PIXEL = 2.0 / _RENDER_SIZE  # the canvas spans [-1, 1] in face units, so one render pixel is this long
_IDENTITY_STREAM, _IMAGE_STREAM, _NOISE_STREAM = 1, 2, 3
_NOISE_FIELDS, _NOISE_MARGIN = 16, 16

# Canvas coordinates of pixel centres.
_AXIS = ((np.arange(_RENDER_SIZE, dtype=np.float32) + 0.5) * _PIXEL - 1.0)
_X = _AXIS[None, None, :]
_Y = _AXIS[None, :, None]


@lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """Fixed unit Gaussian noise fields; an image uses a shifted crop of one (drawing fresh
    noise for every pixel would cost more than rendering the face)."""
    side = FACE_SIZE + _NOISE_MARGIN
    return np.random.default_rng([_NOISE_STREAM]).standard_normal((_NOISE_FIELDS, 3, side, side),
                                                                    dtype=np.float32)


def _f32(values) -> np.ndarray:
    return np.asarray(values, np.float32)


def identity_params(seed: int, identity: int) -> dict:
    """The parameters of one identity, drawn from a narrow range around an average face.

    Lengths are in face units, the canvas spanning [-1, 1]; the averages put eyes,
    nose tip and mouth where insightface's 112 x 112 alignment puts them.
    """
    rng = np.random.default_rng([seed, _IDENTITY_STREAM, identity])

    def normal(mean: float, spread: float) -> float:
        return float(rng.normal(mean, spread))

    skin_tone = rng.uniform(0.0, 1.0)
    hair_tone = rng.uniform(0.0, 1.0) ** 2  # mostly dark hair
    mole_count = int(rng.integers(0, 4))
    has_beard, has_glasses = rng.random() < 0.2, rng.random() < 0.15
    skin = np.array([0.80, 0.62, 0.50]) * (0.55 + 0.45 * skin_tone) + rng.normal(0, 0.025, 3)
    return {
        "face_rx": normal(0.78, 0.04), "face_ry": normal(0.98, 0.04), "face_cy": normal(0.12, 0.03),
        "chin": normal(0.3, 0.08), "skin": _f32(np.clip(skin, 0.05, 1.0)),
        "hair": _f32(np.array([0.10, 0.07, 0.05]) + hair_tone * np.array([0.55, 0.45, 0.25])),
        "hairline": normal(-0.5, 0.08), "hair_slant": normal(0.0, 0.2), "hair_volume": normal(0.12, 0.04),
        "eye_dx": normal(0.31, 0.022), "eye_y": normal(-0.08, 0.03),
        "eye_rx": normal(0.12, 0.012), "eye_ry": normal(0.055, 0.009), "eye_tilt": normal(0.0, 0.08),
        "iris_r": normal(0.048, 0.005),
        "iris": _f32(np.array([0.25, 0.16, 0.10]) + rng.uniform(0, 1) * np.array([0.10, 0.22, 0.30])),
        "brow_gap": normal(0.15, 0.025), "brow_rx": normal(0.16, 0.02), "brow_ry": normal(0.03, 0.007),
        "brow_tilt": normal(0.0, 0.12), "brow_arch": normal(3.0, 1.5),
        "nose_length": normal(0.34, 0.03), "nose_width": normal(0.1, 0.012),
        "mouth_y": normal(0.62, 0.03), "mouth_rx": normal(0.25, 0.025), "lip_ry": normal(0.05, 0.01),
        "lip_red": float(rng.uniform(0.0, 1.0)),
        "moles": rng.uniform([-0.5, -0.3, 0.015], [0.5, 0.7, 0.03], (mole_count, 3)).tolist(),
        "beard": float(rng.uniform(0.3, 0.8)) if has_beard else 0.0,
        "glasses": float(rng.uniform(0.5, 1.0)) if has_glasses else 0.0,
        "glasses_colour": _f32(rng.uniform(0.05, 0.5, 3)),
    }


def image_params(seed: int, identity: int, images: np.ndarray) -> dict:
    """Per-image pose, expression and nuisances (arrays, one entry per image)."""
    normal, uniform, noise_picks = image_draws([seed, _IMAGE_STREAM, identity], images, 24)
    return {
        "angle": _f32(0.14 * normal[:, 0]), "scale": _f32(np.exp(0.08 * normal[:, 1])),
        "shift_x": _f32(0.06 * normal[:, 2]), "shift_y": _f32(0.06 * normal[:, 3]),
        "yaw": _f32(np.clip(0.12 * normal[:, 4], -0.3, 0.3)), "gaze": _f32(0.015 * normal[:, 5]),
        "eye_open": _f32(0.25 + 0.95 * uniform[:, 0]), "brow_raise": _f32(0.05 * (uniform[:, 1] - 0.5)),
        "smile": _f32(3.0 * (uniform[:, 2] - 0.4)), "mouth_open": _f32(np.maximum(0, uniform[:, 3] - 0.5)),
        "mouth_stretch": _f32(0.85 + 0.3 * uniform[:, 4]),
        "light_angle": _f32(2 * np.pi * uniform[:, 5]), "light_tilt": _f32(0.9 * np.sqrt(uniform[:, 6])),
        "ambient": _f32(0.25 + 0.45 * uniform[:, 7]), "exposure": _f32(0.55 + 0.9 * uniform[:, 8]),
        "contrast": _f32(0.6 + 0.7 * uniform[:, 9]), "gamma": _f32(0.7 + 0.7 * uniform[:, 10]),
        "blur": _f32(1.6 * uniform[:, 11]), "noise": _f32(0.01 + 0.06 * uniform[:, 12]),
        "glasses_on": _f32(uniform[:, 13] < 0.8), "backdrop_angle": _f32(2 * np.pi * uniform[:, 14]),
        "background": _f32(uniform[:, 15:18]), "background_far": _f32(uniform[:, 18:21]),
        "cast": _f32(0.88 + 0.24 * uniform[:, 21:24]), "noise_pick": noise_picks,
    }


def image_draws(stream: list, images: np.ndarray, uniforms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each image's own random numbers, from a generator seeded by ``stream`` + its index: six
    normals, ``uniforms`` uniforms and where its sensor noise comes from in the noise bank."""
    normals, draws, noise_picks = [], [], []
    for image in images:
        rng = np.random.default_rng([*stream, int(image)])
        normals.append(rng.standard_normal(6))
        draws.append(rng.random(uniforms))
        noise_picks.append(rng.integers(0, [_NOISE_FIELDS, _NOISE_MARGIN, _NOISE_MARGIN]))
    return np.array(normals), np.array(draws), np.array(noise_picks)


class _Render:
    """The canvas (n x 3 x H x W, float32 0..1) of n images of one identity, and their face coordinates."""

    def __init__(self, shot: dict):
        self.count = len(shot["angle"])
        self.pose = {key: shot[key][:, None, None] for key in ("angle", "scale", "shift_x", "shift_y")}
        cos, sin = np.cos(self.pose["angle"]), np.sin(self.pose["angle"])
        x, y = _X - self.pose["shift_x"], _Y - self.pose["shift_y"]
        # Face coordinates of every pixel: undo the head's rotation, scale and shift.
        self.u = (x * cos + y * sin) / self.pose["scale"]
        self.v = (y * cos - x * sin) / self.pose["scale"]
        # Turning the head slides the inner features sideways more than the outline.
        self.feature_shift = shot["yaw"] * 0.35
        self.feature_u = self.u - self.feature_shift[:, None, None]
        self.canvas = np.empty((self.count, 3, _RENDER_SIZE, _RENDER_SIZE), np.float32)

    def window(self, centre_u, centre_v, extent: float, edge_px: float) -> tuple[slice, slice]:
        """Rows and columns that a feature within ``extent`` of its centre can touch in any image."""
        scale, angle = self.pose["scale"][:, 0, 0], self.pose["angle"][:, 0, 0]
        centre_u = centre_u + self.feature_shift
        x = scale * (centre_u * np.cos(angle) - centre_v * np.sin(angle)) + self.pose["shift_x"][:, 0, 0]
        y = scale * (centre_u * np.sin(angle) + centre_v * np.cos(angle)) + self.pose["shift_y"][:, 0, 0]
        reach = (extent * scale.max() + edge_px * _PIXEL) / _PIXEL + 1

        def span(position: np.ndarray) -> slice:
            centre = (position + 1) / _PIXEL - 0.5
            low = int(np.clip(np.floor(centre.min() - reach), 0, _RENDER_SIZE))
            return slice(low, int(np.clip(np.ceil(centre.max() + reach) + 1, low, _RENDER_SIZE)))

        return span(y), span(x)

    def ellipse(self, cx, cy, rx, ry, angle=0.0, bend=0.0, edge_px=0.8, where=None):
        """(window, coverage 0..1) of a soft-edged ellipse among the inner features.

        ``bend`` curves its long axis into a parabola (smiles, arched brows); per-image
        parameters come as n x 1 x 1 arrays.  ``where`` reuses another feature's window.
        """
        rx_max, ry_max = float(np.max(rx)), float(np.max(ry))
        # Farthest reach: the end of the long axis, displaced sideways by the bend and the short radius.
        extent = float(np.hypot(rx_max, ry_max + float(np.max(np.abs(bend))) * rx_max ** 2))
        rows, cols = where if where is not None else self.window(
            float(np.mean(cx)), float(np.mean(cy)), extent + float(np.ptp(cx)) + float(np.ptp(cy)), edge_px)
        du, dv = self.feature_u[:, rows, cols] - cx, self.v[:, rows, cols] - cy
        cos, sin = _f32(np.cos(angle)), _f32(np.sin(angle))
        along = du * cos + dv * sin
        across = dv * cos - du * sin - bend * np.square(along)
        distance = np.square(along / rx) + np.square(across / ry)
        # Near the rim the normalised distance grows by about 2 / radius per unit length.
        sharpness = _f32(np.minimum(rx, ry) / (2 * edge_px * _PIXEL))
        return (rows, cols), np.clip((1.0 - distance) * sharpness, 0.0, 1.0)

    def paint(self, coverage, colour, window=(slice(None), slice(None))):
        """Alpha-composite a colour (3, or n x 3 per image) over the canvas where ``coverage`` says."""
        colour = np.broadcast_to(_f32(colour), (self.count, 3))[:, :, None, None]
        region = self.canvas[:, :, window[0], window[1]]
        region += coverage[:, None] * (colour - region)


def render(person: dict, shot: dict) -> np.ndarray:
    """Images (uint8 n x 112 x 112 x 3) of one identity under n sets of per-image conditions."""
    draw = _Render(shot)
    u, v = draw.u, draw.v
    col = {key: value[:, None, None] for key, value in shot.items() if value.ndim == 1}
    skin, hair = person["skin"], person["hair"]

    paint_backdrop(draw, shot, col)
    neck = np.clip((0.4 - np.abs(u - col["yaw"] * 0.1)) * 15, 0, 1) * np.clip((v - 0.6) * 15, 0, 1)
    draw.paint(neck, skin * 0.75)

    face_rx, face_ry, face_cy = person["face_rx"], person["face_ry"], person["face_cy"]
    hair_rx, hair_ry = face_rx + person["hair_volume"], face_ry * 0.92 + person["hair_volume"]
    hair_outer = np.clip((1 - np.square((u - col["yaw"] * 0.05) / hair_rx)
                          - np.square((v - face_cy + 0.1) / hair_ry)) * 10, 0, 1)
    draw.paint(hair_outer, hair)
    # The chin narrows the oval below its centre; yaw narrows it a little.
    chin_u = (u - col["yaw"] * 0.05) / (1.0 - person["chin"] * np.clip(v - face_cy, 0, None))
    face_width = face_rx * (1 - np.abs(col["yaw"]) * 0.3)
    face_depth = 1 - np.square(chin_u / face_width) - np.square((v - face_cy) / face_ry)
    face = np.clip(face_depth * 10, 0, 1)
    draw.paint(face, skin)
    hairline = person["hairline"] + person["hair_slant"] * u
    draw.paint(hair_outer * np.clip((hairline - v) * 12 + 0.5, 0, 1), hair)
    paint_beard_and_moles(draw, person, face)

    _draw_eyes_and_brows(draw, person, col)
    _draw_nose_and_mouth(draw, person, col)

    # Light on a rounded face: the oval is the front of an ellipsoid; the background gets a gradient.
    light_x = np.cos(col["light_angle"]) * col["light_tilt"]
    light_y = np.sin(col["light_angle"]) * col["light_tilt"]
    light_z = np.sqrt(1 - np.square(col["light_tilt"]))
    lambert = np.clip((chin_u / face_width) * light_x + ((v - face_cy) / face_ry) * light_y
                      + np.sqrt(np.clip(face_depth, 0, 1)) * light_z, 0, 1)
    flat = 0.5 + 0.5 * (_X * light_x + _Y * light_y)
    shading = col["ambient"] + (1 - col["ambient"]) * (face * lambert + (1 - face) * flat)
    return develop(draw.canvas, shading, shot, col)


def paint_backdrop(draw: _Render, shot: dict, col: dict) -> None:
    """A two-colour gradient behind the head, in each image's own direction."""
    backdrop = 0.5 + 0.5 * (np.cos(col["backdrop_angle"]) * _X + np.sin(col["backdrop_angle"]) * _Y)
    draw.canvas[:] = (shot["background"][:, :, None, None] * backdrop[:, None]
                      + shot["background_far"][:, :, None, None] * (1 - backdrop[:, None]))


def paint_beard_and_moles(draw: _Render, person: dict, face: np.ndarray) -> None:
    skin, hair = person["skin"], person["hair"]
    if person["beard"]:
        draw.paint(face * np.clip((draw.v - (person["mouth_y"] - 0.15)) * 8, 0, 1) * person["beard"], hair)
    for mole_u, mole_v, radius in person["moles"]:
        window, mole = draw.ellipse(mole_u, mole_v, radius, radius)
        draw.paint(mole * face[:, window[0], window[1]] * 0.8, skin * 0.45, window)


def develop(canvas: np.ndarray, shading: np.ndarray, shot: dict, col: dict, degrade=None) -> np.ndarray:
    """Light, expose and photograph the canvas: shading, exposure and colour cast, contrast, gamma,
    then the camera (blur, upsampling; ``degrade`` changes the 112-pixel image in place before the
    sensor noise) and 8-bit pixels (uint8 n x 112 x 112 x 3)."""
    canvas *= shading[:, None]
    canvas *= (shot["exposure"][:, None] * shot["cast"])[:, :, None, None]
    canvas -= 0.5
    canvas *= col["contrast"][:, None]
    canvas += 0.5
    np.clip(canvas, 0, 1, out=canvas)
    canvas **= col["gamma"][:, None]

    # The camera: blur (at render resolution, so half the sigma), upsample, sensor noise.
    image = _camera(canvas, shot["blur"] / 2)
    if degrade is not None:
        degrade(image)
    bank = _noise_bank()
    for index, (field, row, column) in enumerate(shot["noise_pick"]):
        image[index] += bank[field, :, row:row + FACE_SIZE, column:column + FACE_SIZE] * shot["noise"][index]
    image *= 255
    image += 0.5
    np.clip(image, 0, 255, out=image)
    return image.astype(np.uint8).transpose(0, 2, 3, 1).copy()


def _draw_eyes_and_brows(draw: _Render, person: dict, col: dict) -> None:
    eye_y, eye_rx, eye_ry, iris_r = person["eye_y"], person["eye_rx"], person["eye_ry"], person["iris_r"]
    for side in (-1.0, 1.0):
        eye_x, tilt = side * person["eye_dx"], side * person["eye_tilt"]
        # One window for the whole eye, wide enough for the glasses' rims.
        window = draw.window(eye_x, eye_y, max(eye_rx * 1.6, eye_ry * 2.6), edge_px=2)
        socket = draw.ellipse(eye_x, eye_y, eye_rx * 1.5, eye_ry * 2.2, tilt, edge_px=2, where=window)[1]
        draw.paint(socket * 0.35, person["skin"] * 0.6, window)
        if person["glasses"]:
            rims = draw.ellipse(eye_x, eye_y, eye_rx * 1.6, eye_ry * 2.6, where=window)[1] \
                - draw.ellipse(eye_x, eye_y, eye_rx * 1.4, eye_ry * 2.2, where=window)[1]
            draw.paint(rims * (col["glasses_on"] * person["glasses"]), person["glasses_colour"], window)
        sclera = draw.ellipse(eye_x, eye_y, eye_rx, eye_ry * col["eye_open"], tilt, where=window)[1]
        draw.paint(sclera, (0.88, 0.88, 0.88), window)
        iris_x = eye_x + col["gaze"]
        iris = draw.ellipse(iris_x, eye_y, iris_r, iris_r, where=window)[1]
        draw.paint(iris * sclera, person["iris"], window)
        pupil = draw.ellipse(iris_x, eye_y, iris_r * 0.45, iris_r * 0.45, where=window)[1]
        draw.paint(pupil * sclera, (0.03, 0.03, 0.03), window)

        brow_y = eye_y - person["brow_gap"] - col["brow_raise"]
        window, brow = draw.ellipse(eye_x + side * 0.01, brow_y, person["brow_rx"], person["brow_ry"],
                                    side * person["brow_tilt"], bend=-person["brow_arch"])
        draw.paint(brow * 0.9, person["hair"] * 0.8, window)


def _draw_nose_and_mouth(draw: _Render, person: dict, col: dict) -> None:
    skin, nose_width, nose_length = person["skin"], person["nose_width"], person["nose_length"]
    nose_y = person["eye_y"] + nose_length
    for side in (-1.0, 1.0):
        window, nostril = draw.ellipse(side * nose_width * 0.5, nose_y, nose_width * 0.3, nose_width * 0.16)
        draw.paint(nostril * 0.8, skin * 0.35, window)
    # The nose casts a soft shadow away from the light.
    shadow_u = -np.cos(col["light_angle"]) * col["light_tilt"] * 0.04
    window, shadow = draw.ellipse(shadow_u, nose_y - nose_length * 0.35, nose_width * 0.45,
                                  nose_length * 0.45, edge_px=2)
    draw.paint(shadow * 0.4 * col["light_tilt"], skin * 0.55, window)

    mouth_rx, lip_ry = person["mouth_rx"] * col["mouth_stretch"], person["lip_ry"]
    lip_red = person["lip_red"]
    window, lips = draw.ellipse(0.0, person["mouth_y"], mouth_rx, lip_ry * (1 + col["mouth_open"]),
                                bend=-col["smile"])
    draw.paint(lips, skin * (0.75 - 0.1 * lip_red) + _f32([0.12, -0.03, -0.03]) * lip_red, window)
    opening = draw.ellipse(0.0, person["mouth_y"], mouth_rx * 0.85, lip_ry * col["mouth_open"] * 0.8 + 1e-3,
                           bend=-col["smile"], where=window)[1]
    draw.paint(opening, (0.08, 0.08, 0.08), window)


@lru_cache(maxsize=1)
def _upsampling_matrix() -> np.ndarray:
    """112 x 56 linear interpolation: each output pixel is 3/4 of its source pixel and 1/4 of
    the neighbour on its side (edges repeated), which keeps pixel centres aligned."""
    matrix = np.zeros((FACE_SIZE, _RENDER_SIZE), np.float32)
    source = np.arange(_RENDER_SIZE)
    for offset, neighbour in ((0, np.maximum(source - 1, 0)), (1, np.minimum(source + 1, _RENDER_SIZE - 1))):
        matrix[2 * source + offset, source] += 0.75
        matrix[2 * source + offset, neighbour] += 0.25
    return matrix


def _camera(canvas: np.ndarray, blur_sigmas: np.ndarray) -> np.ndarray:
    """Blur (3-tap Gaussian, per-image strength, edges repeated) and upsample to 112 x 112.

    Both are linear along each axis, so each image gets one 112 x 56 matrix L and
    becomes L @ image @ L.T: two matrix products instead of many array passes.
    """
    count, size = len(blur_sigmas), _RENDER_SIZE
    side = np.exp(-1 / (2 * np.square(np.maximum(blur_sigmas, 1e-2))))
    side_weight = _f32(side / (1 + 2 * side))[:, None]
    blur = np.zeros((count, size, size), np.float32)
    diagonal = np.arange(size)
    blur[:, diagonal, diagonal] = 1 - 2 * side_weight
    blur[:, diagonal[1:], diagonal[:-1]] = side_weight
    blur[:, diagonal[:-1], diagonal[1:]] = side_weight
    blur[:, 0, 0] += side_weight[:, 0]
    blur[:, -1, -1] += side_weight[:, 0]
    camera = _upsampling_matrix().astype(np.float64) @ blur
    # Contiguous per-channel copies let numpy hand each product to BLAS.  In float64: BLAS picks
    # other kernels (other summation orders) for other thread counts, and float32's rounding would
    # then reach the 8-bit pixels; float64's differences vanish when rounded back to float32.
    rows = np.ascontiguousarray(np.broadcast_to(camera[:, None], (count, 3, FACE_SIZE, size)))
    columns = np.ascontiguousarray(rows.transpose(0, 1, 3, 2))
    return (rows @ canvas.astype(np.float64) @ columns).astype(np.float32)


class SyntheticSource(FaceSourceBase):
    """``num_identities`` generated identities with ``per_identity`` images each."""

    name = "synthetic"
    making = "rendering"
    version = GENERATOR_VERSION

    def __init__(self, seed: int = 0, num_identities: int = DEFAULT_IDENTITIES,
                 per_identity: int = DEFAULT_PER_IDENTITY):
        self.seed = check_seed(seed)
        self.num_identities = check_count(num_identities, f"{self.name} num_identities")
        self.per_identity = check_count(per_identity, f"{self.name} per_identity")

    def identities(self) -> list:
        return list(range(self.num_identities))

    def image_count(self, identity_index: int) -> int:
        return self.per_identity

    def read_images(self, identity_index: int, image_indices: np.ndarray) -> np.ndarray:
        person = identity_params(self.seed, identity_index)
        return render(person, image_params(self.seed, identity_index, np.asarray(image_indices)))

    def describe(self) -> dict:
        sample = self.read_images(0, np.arange(1))
        return {"format": self.name, "images": self.num_identities * self.per_identity,
                "identities": self.num_identities, "pairs": None, "positives": None,
                "image_size": list(sample.shape[1:3]), "sample_decodes": True, "sample_error": None,
                "path": None}

    def fingerprint(self) -> dict:
        return {"format": self.name, "version": self.version, "seed": self.seed,
                "num_identities": self.num_identities, "per_identity": self.per_identity}
