"""The ORL face database (Olivetti Research Laboratory, 40 people x 10 images), bundled.

The package ships ``resources/orl/orl_faces.npz``: the original 92 x 112 grey
pixels (uint8 400 x 112 x 92, subjects s1..s40 in numeric order, images 1..10)
and their labels.  Faces are padded to 112 x 112 with black columns either side
(as the RecordIO copy in insightface's layout is) and repeated over 3 channels.
Rebuild the file from the original PGMs with ``python -m nasface.data.orl ORL_DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np

from nasface.data.base import FaceSourceBase, sample_report
from nasface.data.images import open_image, pad_to_face
from nasface.core.errors import NasfaceError

ORL_SUBJECTS = 40
ORL_IMAGES_PER_SUBJECT = 10
ORL_HEIGHT, ORL_WIDTH = 112, 92
ORL_RESOURCE = ("resources", "orl", "orl_faces.npz")


def convert_orl(orl_dir: Path, out_path: Path) -> None:
    """Pack the original ORL folder (s1..s40/1.pgm..10.pgm) into one compressed .npz."""
    orl_dir = Path(orl_dir)
    faces = np.empty((ORL_SUBJECTS * ORL_IMAGES_PER_SUBJECT, ORL_HEIGHT, ORL_WIDTH), np.uint8)
    for subject in range(ORL_SUBJECTS):
        for image in range(ORL_IMAGES_PER_SUBJECT):
            path = orl_dir / f"s{subject + 1}" / f"{image + 1}.pgm"
            if not path.is_file():
                raise NasfaceError(f"{path}: missing; expected the original ORL layout s1..s40/1..10.pgm")
            pixels = np.asarray(open_image(None, str(path), path=str(path)))
            if pixels.shape != (ORL_HEIGHT, ORL_WIDTH):
                raise NasfaceError(f"{path}: is {pixels.shape[1]}x{pixels.shape[0]} "
                                   f"{'grey' if pixels.ndim == 2 else 'colour'}; ORL images are "
                                   f"{ORL_WIDTH}x{ORL_HEIGHT} grey")
            faces[subject * ORL_IMAGES_PER_SUBJECT + image] = pixels
    labels = np.repeat(np.arange(ORL_SUBJECTS, dtype=np.int64), ORL_IMAGES_PER_SUBJECT)
    np.savez_compressed(out_path, faces=faces, labels=labels)


class OrlSource(FaceSourceBase):
    """The bundled ORL faces: identities s1..s40, 10 images each."""

    name = "orl"

    @cached_property
    def _faces(self) -> np.ndarray:
        resource = resources.files("nasface").joinpath(*ORL_RESOURCE)
        try:
            with resource.open("rb") as handle, np.load(handle) as archive:
                faces = archive["faces"]
        except (OSError, KeyError, ValueError) as error:
            raise NasfaceError(f"the bundled ORL faces ({'/'.join(ORL_RESOURCE)}) are missing or damaged "
                               f"({error}); reinstall nasface") from None
        return faces

    def identities(self) -> list:
        return [f"s{subject + 1}" for subject in range(ORL_SUBJECTS)]

    def image_count(self, identity_index: int) -> int:
        return ORL_IMAGES_PER_SUBJECT

    def read_images(self, identity_index: int, image_indices: np.ndarray) -> np.ndarray:
        rows = self._faces[identity_index * ORL_IMAGES_PER_SUBJECT + np.asarray(image_indices)]
        return np.stack([pad_to_face(face) for face in rows])

    def read_photo(self, identity_index: int, image_index: int) -> np.ndarray:
        """One face as photographed (92 x 112 grey, unpadded): what alignment starts from."""
        return self._faces[identity_index * ORL_IMAGES_PER_SUBJECT + image_index]

    def photo_name(self, identity_index: int, image_index: int) -> str:
        return f"s{identity_index + 1}/{image_index + 1}.pgm"

    def describe(self) -> dict:
        report = {"format": "orl", "images": ORL_SUBJECTS * ORL_IMAGES_PER_SUBJECT,
                  "identities": ORL_SUBJECTS, "pairs": None, "positives": None, "path": None}
        # The bundled faces are served padded, so the sample's size is the padded one.
        report.update(sample_report(lambda: list(self.read_images(0, np.arange(1)).shape[1:3])))
        return report

    def fingerprint(self) -> dict:
        return {"format": "orl", "sha256": hashlib.sha256(self._faces.tobytes()).hexdigest()}


def main() -> None:
    parser = argparse.ArgumentParser(description="Pack the original ORL faces into nasface's bundled .npz")
    parser.add_argument("orl_dir", type=Path, help="folder holding s1..s40")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1].joinpath(*ORL_RESOURCE))
    arguments = parser.parse_args()
    convert_orl(arguments.orl_dir, arguments.out)


if __name__ == "__main__":
    main()
