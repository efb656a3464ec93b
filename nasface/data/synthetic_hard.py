"""``synthetic-hard``: procedural faces made hard enough that a network's capacity should show.

Issue 26: on ``synthetic`` (nasface.data.synthetic) every network from 40M to 1G FLOPs reaches the
task's ceiling.  The literature on synthetic face training (IDiff-Face, DigiFace-1M, SFace) says what
makes a synthetic set teach real ability: many identities, wide variation within each, and strong
nuisances.  This source keeps ``synthetic``'s drawing primitives and adds, per identity, wider
spreads of every shape and colour parameter, ears, a nose that stands out of the face and a skin
texture of blotches; and per image:

- head yaw uniform in +-60 degrees, rendered on an ellipsoid: a pixel is mapped back to the frontal
  face it shows, so features on the turning-away side crowd together and vanish past the profile,
  the far ear comes into view and the back of the head shows as hair; the nose tip slides further
  than the surface (it sticks out);
- light from anywhere up to grazing, and a wide range of strength and exposure;
- stronger expressions (closed eyes, wide smiles, open mouths);
- occluders: sunglasses, a hand or a bar across the face, a face mask;
- camera blur and low resolution (the face block-averaged down to 56, 28 or 16 pixels).

Because the renders are random in all of these, the nuisances act as heavy augmentation of the
proxy's training images; and since poses are uniform, a positive verification pair differs by 40
degrees of yaw on average (``synthetic``: about 8).

Everything is drawn from numpy generators seeded by (seed, identity) and (seed, identity, image),
with stream tags of its own, so an image is the same bits in any process.  ``synthetic``'s
images do not change: its cached proxies and stored results stay valid.
"""

from __future__ import annotations

import numpy as np

from nasface.data.base import FACE_SIZE
from nasface.data.synthetic import (_RENDER_SIZE, _X, _Y, SyntheticSource, _draw_eyes_and_brows, _draw_nose_and_mouth,
                                    _f32, _Render, develop, image_draws, paint_backdrop, paint_beard_and_moles)

# Bump when the generator changes, so cached proxies made with the old one are not reused.
GENERATOR_VERSION = 1
DEFAULT_IDENTITIES = 5000
DEFAULT_PER_IDENTITY = 40
MAX_YAW_DEGREES = 60.0
# Down-sampling factors of the 112-pixel face (to 56, 28 and 16 pixels) and how often each is drawn.
LOW_RESOLUTION_FACTORS = (1, 2, 4, 7)
_FACTOR_ODDS = np.cumsum([0.6, 0.2, 0.15, 0.05])
# Stream tags of their own, so no draw of ``synthetic`` is repeated here.
_IDENTITY_STREAM, _IMAGE_STREAM = 21, 22
_HIDDEN = 10.0  # the frontal coordinate given to pixels that show no part of the face's front
_SKIN_PAST_PROFILE = 0.3  # radians of skin behind the profile line, before the hair


def identity_params(seed: int, identity: int) -> dict:
    """One identity: ``synthetic``'s parameters with spreads about twice as wide, and more of them."""
    rng = np.random.default_rng([seed, _IDENTITY_STREAM, identity])

    def normal(mean: float, spread: float) -> float:
        return float(rng.normal(mean, spread))

    skin_tone = rng.uniform(0.0, 1.0)
    hair_tone = rng.uniform(0.0, 1.0) ** 1.5
    mole_count = int(rng.integers(0, 6))
    has_beard, has_glasses = rng.random() < 0.25, rng.random() < 0.25
    skin = np.array([0.82, 0.62, 0.50]) * (0.35 + 0.65 * skin_tone) + rng.normal(0, 0.04, 3)
    return {
        "face_rx": normal(0.74, 0.07), "face_ry": normal(0.96, 0.07), "face_cy": normal(0.12, 0.05),
        "chin": normal(0.3, 0.15), "skin": _f32(np.clip(skin, 0.05, 1.0)),
        "hair": _f32(np.clip(np.array([0.08, 0.06, 0.05]) + hair_tone * np.array([0.75, 0.6, 0.4])
                             + rng.normal(0, 0.03, 3), 0.02, 1.0)),
        "hairline": normal(-0.5, 0.15), "hair_slant": normal(0.0, 0.35), "hair_volume": normal(0.12, 0.07),
        "eye_dx": normal(0.31, 0.04), "eye_y": normal(-0.08, 0.05),
        "eye_rx": normal(0.12, 0.02), "eye_ry": normal(0.055, 0.014), "eye_tilt": normal(0.0, 0.15),
        "iris_r": normal(0.048, 0.008),
        "iris": _f32(np.array([0.2, 0.13, 0.08]) + rng.uniform(0, 1) * np.array([0.15, 0.3, 0.4])),
        "brow_gap": normal(0.15, 0.04), "brow_rx": normal(0.16, 0.035), "brow_ry": normal(0.03, 0.012),
        "brow_tilt": normal(0.0, 0.2), "brow_arch": normal(3.0, 2.5),
        "nose_length": normal(0.34, 0.05), "nose_width": normal(0.1, 0.025),
        "nose_depth": normal(0.18, 0.05),
        "mouth_y": normal(0.62, 0.05), "mouth_rx": normal(0.25, 0.045), "lip_ry": normal(0.05, 0.016),
        "lip_red": float(rng.uniform(0.0, 1.0)),
        "ear_size": normal(0.16, 0.03), "ear_y": normal(0.05, 0.05),
        "moles": rng.uniform([-0.55, -0.35, 0.012], [0.55, 0.75, 0.035], (mole_count, 3)).tolist(),
        "blotches": rng.uniform([-0.6, -0.6, 0.06, -0.12], [0.6, 0.8, 0.2, 0.12], (6, 4)).tolist(),
        "beard": float(rng.uniform(0.3, 0.9)) if has_beard else 0.0,
        "glasses": float(rng.uniform(0.5, 1.0)) if has_glasses else 0.0,
        "glasses_colour": _f32(rng.uniform(0.05, 0.6, 3)),
    }


def image_params(seed: int, identity: int, images: np.ndarray) -> dict:
    """Per-image pose, expression, light, occluders and camera (arrays, one entry per image)."""
    normal, uniform, noise_picks = image_draws([seed, _IMAGE_STREAM, identity], images, 40)
    occluder = uniform[:, 30]
    return {
        "angle": _f32(0.2 * normal[:, 0]), "scale": _f32(np.exp(0.1 * normal[:, 1])),
        "shift_x": _f32(0.08 * normal[:, 2]), "shift_y": _f32(0.08 * normal[:, 3]),
        "yaw": _f32(np.radians(MAX_YAW_DEGREES) * (2 * uniform[:, 25] - 1)),
        "gaze": _f32(0.025 * normal[:, 5]),
        "eye_open": _f32(0.05 + 1.15 * uniform[:, 0]), "brow_raise": _f32(0.1 * (uniform[:, 1] - 0.5)),
        "smile": _f32(5.0 * (uniform[:, 2] - 0.4)), "mouth_open": _f32(1.6 * np.maximum(0, uniform[:, 3] - 0.45)),
        "mouth_stretch": _f32(0.75 + 0.5 * uniform[:, 4]),
        "light_angle": _f32(2 * np.pi * uniform[:, 5]), "light_tilt": _f32(0.98 * np.sqrt(uniform[:, 6])),
        "ambient": _f32(0.15 + 0.5 * uniform[:, 7]), "exposure": _f32(0.5 + 1.1 * uniform[:, 8]),
        "contrast": _f32(0.45 + 0.9 * uniform[:, 9]), "gamma": _f32(0.6 + 0.9 * uniform[:, 10]),
        "blur": _f32(2.5 * uniform[:, 11]), "noise": _f32(0.01 + 0.07 * uniform[:, 12]),
        "glasses_on": _f32(uniform[:, 13] < 0.8), "backdrop_angle": _f32(2 * np.pi * uniform[:, 14]),
        "background": _f32(uniform[:, 15:18]), "background_far": _f32(uniform[:, 18:21]),
        "cast": _f32(0.8 + 0.4 * uniform[:, 21:24]), "noise_pick": noise_picks,
        "low_resolution": np.searchsorted(_FACTOR_ODDS, uniform[:, 24] * _FACTOR_ODDS[-1]),
        # One occluder at most: sunglasses, a hand or a bar, a face mask, or none (55 %).
        "sunglasses": _f32(occluder < 0.12), "band": _f32((occluder >= 0.12) & (occluder < 0.32)),
        "mask": _f32((occluder >= 0.32) & (occluder < 0.45)),
        "band_is_hand": _f32(uniform[:, 31] < 0.5), "band_angle": _f32(np.pi * uniform[:, 32]),
        "band_offset": _f32(0.7 * (uniform[:, 33] - 0.5)), "band_width": _f32(0.1 + 0.2 * uniform[:, 34]),
        "occluder_colour": _f32(0.05 + 0.9 * uniform[:, 35:38]),
        "hidden_tone": _f32(0.7 + 0.3 * uniform[:, 38]),
    }


class _TurnedRender(_Render):
    """``synthetic``'s canvas with the head turned on an ellipsoid.

    A pixel at face coordinate u lies on the head's horizontal cross-section of half-width R(v) at
    azimuth asin(u / R); turned by the yaw, it shows the point of the frontal face at azimuth
    asin(u / R) - yaw, whose frontal coordinate is R(v) sin of that.  ``feature_u`` holds it, so
    every feature drawn in frontal coordinates lands where the turned head puts it; points past the
    profile (the back of the head) get a coordinate far off the face.
    """

    def __init__(self, shot: dict, person: dict):
        super().__init__(shot)
        self.yaw = shot["yaw"]
        self.person = person
        half_width = self.half_width(self.v)
        azimuth = np.arcsin(np.clip(self.u / half_width, -1, 1)) - self.yaw[:, None, None]
        beyond = np.abs(azimuth) - np.pi / 2   # > 0 past the profile line
        # Skin reaches a little past the profile (the head is deeper than wide: cheek, then ear, then hair).
        self.front = np.clip((_SKIN_PAST_PROFILE - beyond) * 8, 0, 1)
        # The frontal coordinate of the nearest front point (continuous past the profile, for the hairline).
        self.surface_u = (half_width * np.sin(np.clip(azimuth, -np.pi / 2, np.pi / 2))).astype(np.float32)
        shows_front = (beyond <= 0) & (np.abs(self.u) < half_width)  # off the head is not the face's front
        self.feature_u = np.where(shows_front, self.surface_u, _f32(_HIDDEN))
        self.feature_shift = np.zeros_like(self.yaw)

    def half_width(self, v):
        """R(v): the head's half-width at height v (an ellipse narrowed below its centre by the chin)."""
        person = self.person
        height = (v - person["face_cy"]) / person["face_ry"]
        chin = 1.0 - person["chin"] * np.clip(v - person["face_cy"], 0, None)
        return _f32(np.maximum(person["face_rx"] * np.sqrt(np.clip(1 - np.square(height), 0, 1)) * chin, 1e-3))

    def window(self, centre_u, centre_v, extent: float, edge_px: float) -> tuple[slice, slice]:
        """Rows and columns whose frontal point lies within ``extent`` of the centre in any image.

        Read off the pixels themselves (the turned head bends a feature's outline), so a feature is
        never cut by its window and an image is the same whatever images share its batch.
        """
        near = (np.abs(self.feature_u - centre_u) <= extent) & (np.abs(self.v - centre_v) <= extent)
        rows, columns = np.flatnonzero(near.any(axis=(0, 2))), np.flatnonzero(near.any(axis=(0, 1)))
        if not len(rows):
            return slice(0, 0), slice(0, 0)
        margin = int(np.ceil(edge_px)) + 1

        def span(indices: np.ndarray) -> slice:
            return slice(max(int(indices[0]) - margin, 0), min(int(indices[-1]) + margin + 1, _RENDER_SIZE))

        return span(rows), span(columns)


def render(person: dict, shot: dict) -> np.ndarray:
    """Images (uint8 n x 112 x 112 x 3) of one identity under n sets of per-image conditions."""
    draw = _TurnedRender(shot, person)
    u, v = draw.u, draw.v
    col = {key: value[:, None, None] for key, value in shot.items() if value.ndim == 1}
    skin, hair = person["skin"], person["hair"]

    paint_backdrop(draw, shot, col)
    neck = np.clip((0.36 - np.abs(u + np.sin(col["yaw"]) * 0.1)) * 15, 0, 1) * np.clip((v - 0.6) * 15, 0, 1)
    draw.paint(neck, skin * 0.75)

    face_rx, face_ry, face_cy = person["face_rx"], person["face_ry"], person["face_cy"]
    hair_rx, hair_ry = face_rx + person["hair_volume"], face_ry * 0.92 + person["hair_volume"]
    hair_outer = np.clip((1 - np.square(u / hair_rx) - np.square((v - face_cy + 0.1) / hair_ry)) * 10, 0, 1)
    draw.paint(hair_outer, hair)
    # The head's silhouette; its front is skin, the back of the head past the profile is hair.
    head = np.clip((draw.half_width(v) - np.abs(u)) * 25, 0, 1) * (np.abs(v - face_cy) < face_ry)
    face = head * draw.front
    draw.paint(head, hair)
    draw.paint(face, skin)
    for blotch_u, blotch_v, radius, tone in person["blotches"]:
        window, blotch = draw.ellipse(blotch_u, blotch_v, radius, radius * 0.8, edge_px=4)
        draw.paint(blotch * face[:, window[0], window[1]] * abs(tone) * 2, skin * (1 + np.sign(tone) * 0.4), window)
    hairline = person["hairline"] + person["hair_slant"] * draw.surface_u
    draw.paint(face * np.clip((hairline - v) * 12 + 0.5, 0, 1), hair)
    paint_beard_and_moles(draw, person, face)
    for side in (-1.0, 1.0):  # ears sit on the profile line: one comes into view as the head turns
        ear_u = side * float(draw.half_width(np.float32(person["ear_y"]))) * 0.97
        window, ear = draw.ellipse(ear_u, person["ear_y"], person["ear_size"] * 0.35, person["ear_size"], edge_px=1.5)
        draw.paint(ear * 0.9, skin * 0.8, window)
        inner = draw.ellipse(ear_u, person["ear_y"], person["ear_size"] * 0.15, person["ear_size"] * 0.55,
                             where=window)[1]
        draw.paint(inner * 0.6, skin * 0.45, window)

    _draw_eyes_and_brows(draw, person, col)
    _draw_nose_and_mouth(draw, person, col)
    # The nose stands out of the face: its ridge slides further than the surface under it.
    nose_slide = person["nose_depth"] * np.tan(col["yaw"])
    window, ridge = draw.ellipse(nose_slide * 0.6, person["eye_y"] + person["nose_length"] * 0.55,
                                 person["nose_width"] * 0.35, person["nose_length"] * 0.5, edge_px=2)
    draw.paint(ridge * 0.45 * np.abs(np.sin(col["yaw"])), skin * 0.7, window)
    _draw_occluders(draw, person, shot, col)

    # Light on the ellipsoid: its normal at a pixel follows from where the pixel sits on the head.
    light_x = np.cos(col["light_angle"]) * col["light_tilt"]
    light_y = np.sin(col["light_angle"]) * col["light_tilt"]
    light_z = np.sqrt(1 - np.square(col["light_tilt"]))
    across = np.clip(u / draw.half_width(v), -1, 1)
    down = np.clip((v - face_cy) / face_ry, -1, 1)
    lambert = np.clip(across * light_x + down * light_y
                      + np.sqrt(np.clip(1 - np.square(across) - np.square(down), 0, 1)) * light_z, 0, 1)
    flat = 0.5 + 0.5 * (_X * light_x + _Y * light_y)
    shading = col["ambient"] + (1 - col["ambient"]) * (head * lambert + (1 - head) * flat)
    return develop(draw.canvas, shading, shot, col,
                   degrade=lambda image: _lower_resolution(image, shot["low_resolution"]))


def _draw_occluders(draw: _TurnedRender, person: dict, shot: dict, col: dict) -> None:
    """Sunglasses, a hand or bar across the face, or a face mask, as each image's shot says."""
    colour = shot["occluder_colour"]
    for side in (-1.0, 1.0):
        window, lens = draw.ellipse(side * person["eye_dx"], person["eye_y"], person["eye_rx"] * 1.5,
                                    person["eye_ry"] * 2.4, edge_px=1.5)
        draw.paint(lens * col["sunglasses"] * 0.95, (0.04, 0.04, 0.05), window)
    u, v = draw.u, draw.v
    cos, sin = np.cos(col["band_angle"]), np.sin(col["band_angle"])
    across = u * cos + v * sin - col["band_offset"]
    along = v * cos - u * sin
    band = np.clip((col["band_width"] - np.abs(across)) * 30, 0, 1) * np.clip((0.75 - np.abs(along)) * 10, 0, 1)
    band_colour = np.where(shot["band_is_hand"][:, None] > 0.5, person["skin"] * 0.95, colour)
    draw.paint(band * col["band"], band_colour)
    mask_top = person["eye_y"] + person["nose_length"] * 0.75
    mask = draw.front * np.clip((v - mask_top) * 15, 0, 1) \
        * np.clip((draw.half_width(v) - np.abs(u)) * 25, 0, 1) * (v < person["face_cy"] + person["face_ry"] * 0.98)
    draw.paint(mask * col["mask"], np.clip(colour * 0.4 + 0.55, 0, 1))


def _lower_resolution(image: np.ndarray, factors: np.ndarray) -> None:
    """Block-average each image (n x 3 x 112 x 112) down by its factor and blow it back up, in place."""
    for index, choice in enumerate(factors):
        factor = LOW_RESOLUTION_FACTORS[int(choice)]
        if factor == 1:
            continue
        side = FACE_SIZE // factor
        blocks = image[index].reshape(3, side, factor, side, factor).mean(axis=(2, 4))
        image[index] = np.repeat(np.repeat(blocks, factor, axis=1), factor, axis=2)


class HardSyntheticSource(SyntheticSource):
    """``num_identities`` hard synthetic identities with ``per_identity`` images each."""

    name = "synthetic-hard"
    version = GENERATOR_VERSION

    def __init__(self, seed: int = 0, num_identities: int = DEFAULT_IDENTITIES,
                 per_identity: int = DEFAULT_PER_IDENTITY):
        super().__init__(seed, num_identities, per_identity)

    def read_images(self, identity_index: int, image_indices: np.ndarray) -> np.ndarray:
        person = identity_params(self.seed, identity_index)
        return render(person, image_params(self.seed, identity_index, np.asarray(image_indices)))
