"""A folder of identity sub-folders (``ROOT/<identity>/<image>``) as a face source."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nasface.data.base import FaceSourceBase, natural_key, sample_report
from nasface.data.images import image_size, open_image, read_face_file
from nasface.core.errors import NasfaceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".pgm", ".bmp"}


def _listing(folder: Path) -> list[Path]:
    """A folder's visible entries in natural order."""
    try:
        entries = [entry for entry in folder.iterdir() if not entry.name.startswith(".")]
    except OSError as error:
        raise NasfaceError(f"{folder}: cannot list this folder ({error.strerror})") from None
    return sorted(entries, key=lambda entry: natural_key(entry.name))


class FolderSource(FaceSourceBase):
    """One sub-folder per identity, images .jpg/.jpeg/.png/.pgm/.bmp.

    Identities and images are in natural order (s2 before s10); hidden entries and
    other files are ignored.  Images must be 112 x 112 (grey ones become RGB);
    with ``resize=True`` any size is scaled so its longer side is 112 and centred
    on black, so faces are never cropped.
    """

    def __init__(self, root: Path, resize: bool = False):
        self.root = Path(root)
        self.name = str(self.root)
        self.resize = bool(resize)
        folders = [entry for entry in _listing(self.root) if entry.is_dir()]
        if not folders:
            raise NasfaceError(f"{self.root}: no identity sub-folders; a folder source needs "
                               "ROOT/<identity>/<image files>")
        self.folders = folders
        self.files: list[list[Path]] = []
        for folder in folders:
            images = [entry for entry in _listing(folder)
                      if entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file()]
            if not images:
                raise NasfaceError(f"{folder}: identity folder has no images "
                                   f"({', '.join(sorted(IMAGE_SUFFIXES))}); add some or remove it")
            self.files.append(images)

    def identities(self) -> list:
        return [folder.name for folder in self.folders]

    def image_count(self, identity_index: int) -> int:
        return len(self.files[identity_index])

    def read_images(self, identity_index: int, image_indices: np.ndarray) -> np.ndarray:
        files = self.files[identity_index]
        return np.stack([read_face_file(str(files[index]), self.resize) for index in image_indices])

    def read_photo(self, identity_index: int, image_index: int) -> np.ndarray:
        """One image as it is stored (any size, RGB): what alignment starts from."""
        path = str(self.files[identity_index][image_index])
        return np.asarray(open_image(None, path, path=path).convert("RGB"))

    def photo_name(self, identity_index: int, image_index: int) -> str:
        return str(self.files[identity_index][image_index].relative_to(self.root))

    def describe(self) -> dict:
        report = {"format": "folder", "images": sum(map(len, self.files)), "identities": len(self.files),
                  "pairs": None, "positives": None, "path": str(self.root)}
        sample = str(self.files[0][0])
        report.update(sample_report(lambda: image_size(None, sample, path=sample)))
        return report

    def fingerprint(self) -> dict:
        # Every file's size and mtime: adding, removing or editing an image changes the cache key.
        listing = []
        for path in (path for files in self.files for path in files):
            stat = path.stat()
            listing.append([str(path.relative_to(self.root)), stat.st_size, stat.st_mtime_ns])
        return {"format": "folder", "root": str(self.root.resolve()), "resize": self.resize,
                "files": listing}
