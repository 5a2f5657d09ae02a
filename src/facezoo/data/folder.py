"""Any folder of face images, for unconditional generators (StyleGAN2) and encoders on a new domain.

    <root>/**/*.{png,jpg,jpeg,bmp,webp}        found recursively, in sorted path order

Each image is resized (shorter side) and centre-cropped to ``size`` (``align="center"``: FFHQ-like datasets that
are aligned already), or FFHQ-aligned around its largest face found by facezoo's detector (``align="ffhq"``:
dlib's 68 points → :func:`facezoo.face.align.align_ffhq`, the crop of ``NVlabs/ffhq-dataset`` and of pSp's
``scripts/align_all_parallel.py``). The split of an image is a pure function of its relative path (a hash), so
adding images never moves the others between train, val and test.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from facezoo.face.photo import center_crop, image_to_tensor, read_photo
from facezoo.utils import FacezooError

__all__ = ["ImageFolder", "IMAGE_SUFFIXES", "split_of"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


def split_of(relative_path: str, fractions: dict[str, float]) -> str:
    """The split of a file: ``val`` / ``test`` with their fractions of a uniform hash of the path, else ``train``.

    Example:
        >>> split_of("a/b.png", {"val": 0.0, "test": 0.0})
        'train'
    """
    u = int(hashlib.sha1(relative_path.encode()).hexdigest()[:12], 16) / 16**12
    edge = 0.0
    for name in ("val", "test"):
        edge += fractions.get(name, 0.0)
        if u < edge:
            return name
    return "train"


class ImageFolder(Dataset):
    """Images under ``root`` (recursive) as ``{"image": (3, size, size) in [-1, 1], "name": relative path}``.

    Args:
        root: the folder.
        split: ``"train"``, ``"val"`` or ``"test"`` (:func:`split_of` with ``val_fraction`` / ``test_fraction``).
        size: output side.
        align: ``"center"`` (resize + centre crop) or ``"ffhq"`` (detect the largest face, FFHQ crop).
        val_fraction, test_fraction: shares of the images held out.
        length: use only the first ``length`` images of the split (``None``: all).
        detector: landmark backend for ``align="ffhq"`` (:func:`facezoo.face.detect.get_detector`).

    Raises:
        FacezooError: the folder is missing or holds no image of the split (one line naming it).
    """

    def __init__(self, root: str, split: str = "train", size: int = 256, align: str = "center",
                 val_fraction: float = 0.01, test_fraction: float = 0.01, length: int | None = None,
                 detector: str = "dlib"):
        if align not in ("center", "ffhq"):
            raise ValueError(f"align must be 'center' or 'ffhq', got {align!r}")
        self.root, self.size, self.align, self.split = Path(root), int(size), align, split
        if not self.root.is_dir():
            raise FacezooError(f"{self.root}: no such image folder (data.root)")
        fractions = {"val": val_fraction, "test": test_fraction}
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        self.files = [p for p in files if split_of(p.relative_to(self.root).as_posix(), fractions) == split]
        if length is not None:
            self.files = self.files[:int(length)]
        if not self.files:
            raise FacezooError(f"{self.root}: no {split} images ({len(files)} images in all; suffixes "
                               f"{', '.join(IMAGE_SUFFIXES)})")
        self.detector_name = detector
        self._detector = None

    def __len__(self) -> int:
        return len(self.files)

    def _aligned(self, image: np.ndarray, name: str) -> np.ndarray:
        if self.align == "center":
            return center_crop(image, self.size)
        from facezoo.face.align import align_ffhq
        from facezoo.face.detect import get_detector, largest_face

        if self._detector is None:
            self._detector = get_detector(self.detector_name)
        face = largest_face(self._detector.detect(image), name)
        return align_ffhq(image, face.landmarks, self.size)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        image = self._aligned(read_photo(path), str(path))
        return {"image": image_to_tensor(image)[0], "name": path.relative_to(self.root).as_posix()}
