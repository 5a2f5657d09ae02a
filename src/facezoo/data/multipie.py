"""Multi-PIE as TP-GAN trains on it: 128×128 crops, a 5-point file per crop, CSV split lists.

The images are crops made by TP-GAN's ``face_db_align_single_custom.m`` (eye centre at ``y = 40``,
eye-centre-to-mouth-centre distance 48 px, see :func:`facezoo.face.align.multipie_alignment`), named
``SSS_ss_rr_CCC_II`` = subject, session, recording, camera, illumination
(``HRLTY/TP-GAN: net_input_everything_featparts.py``).
facezoo reads this layout::

    <root>/images/SSS_ss_rr_CCC_II_cropped.png   RGB crops (128×128; any size works, resized to ``size``)
    <root>/5pt/SSS_ss_rr_CCC_trans.5pt            5 points of that crop, five lines "x y": image-left eye,
                                                  image-right eye, nose tip, left and right mouth corner
    <root>/train.csv  val.csv  test.csv          one image file name per line (profiles and frontals)

The camera field maps to a yaw (TP-GAN's ``cameraPositions``, :data:`CAMERA_YAW`); camera ``051`` (05_1) is
the frontal view. A sample's input is a non-frontal image of the list and its target the frontal image of
the same subject, session, recording and illumination. Negative yaws are mirrored to the positive side
(TP-GAN's ``MIRROR_TO_ONE_SIDE``): the image is flipped left-right and its 5 points mirrored with the
left/right labels swapped, so every index keeps its meaning.

``scripts/make_synthetic.py --format multipie`` writes this layout from the built-in renderer.

Example:
    >>> ds = MultiPIE("data/multipie", split="train", size=128)           # doctest: +SKIP
    >>> s = ds[0]; s["image"].shape, s["five_points"].shape, s["pose"]     # doctest: +SKIP
    (torch.Size([3, 128, 128]), torch.Size([5, 2]), tensor([45., 0., 0.]))
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from facezoo.utils import FacezooError

__all__ = [
    "CAMERA_YAW",
    "YAW_CAMERA",
    "FRONTAL_CAMERA",
    "FIVE_POINT_HFLIP",
    "MultiPIEName",
    "parse_name",
    "read_five_points",
    "format_five_points",
    "mirror_five_points",
    "resize_five_points",
    "MultiPIE",
]

log = logging.getLogger("facezoo.data.multipie")

#: Camera field (``CCC``, the camera label ``CC_C`` without its underscore) → yaw in degrees.
CAMERA_YAW: dict[str, int] = {
    "240": 90, "010": 75, "200": 60, "190": 45, "041": 30, "050": 15, "051": 0,
    "140": -15, "130": -30, "080": -45, "090": -60, "120": -75, "110": -90,
}
#: Yaw in degrees → camera field.
YAW_CAMERA: dict[int, str] = {yaw: cam for cam, yaw in CAMERA_YAW.items()}
#: The frontal camera (05_1): the target view.
FRONTAL_CAMERA = "051"
#: ``mirrored = five_points[FIVE_POINT_HFLIP]`` after ``x → W-1-x`` keeps each index's meaning.
FIVE_POINT_HFLIP: tuple[int, ...] = (1, 0, 2, 4, 3)

IMAGE_DIR, FIVE_POINT_DIR = "images", "5pt"
IMAGE_SUFFIX, FIVE_POINT_SUFFIX = "_cropped.png", "_trans.5pt"
_NAME = re.compile(r"^(\d{3})_(\d{2})_(\d{2})_(\d{3})_(\d{2})(?:_cropped)?(?:\.png)?$")


# ------------------------------------------------------------------------------------------ names
@dataclass(frozen=True, order=True)
class MultiPIEName:
    """The fields of a Multi-PIE file name ``SSS_ss_rr_CCC_II`` (all kept as the zero-padded strings).

    Example:
        >>> n = parse_name("001_01_01_140_08_cropped.png")
        >>> n.yaw, n.image_name, n.five_point_name, n.frontal().stem
        (-15, '001_01_01_140_08_cropped.png', '001_01_01_140_trans.5pt', '001_01_01_051_08')
    """

    subject: str
    session: str
    recording: str
    camera: str
    illumination: str

    @property
    def stem(self) -> str:
        """``SSS_ss_rr_CCC_II``."""
        return f"{self.subject}_{self.session}_{self.recording}_{self.camera}_{self.illumination}"

    @property
    def image_name(self) -> str:
        """File name under ``<root>/images``."""
        return self.stem + IMAGE_SUFFIX

    @property
    def five_point_name(self) -> str:
        """File name under ``<root>/5pt`` (no illumination field: shared by all illuminations)."""
        return f"{self.subject}_{self.session}_{self.recording}_{self.camera}{FIVE_POINT_SUFFIX}"

    @property
    def yaw(self) -> int:
        """Yaw of the camera in degrees (TP-GAN's ``cameraPositions``)."""
        return CAMERA_YAW[self.camera]

    def frontal(self) -> MultiPIEName:
        """The same subject, session, recording and illumination seen by the frontal camera."""
        return replace(self, camera=FRONTAL_CAMERA)

    @classmethod
    def make(cls, subject: int, session: int, recording: int, yaw: int, illumination: int) -> MultiPIEName:
        """Build a name from numbers, the camera from its yaw (e.g. ``make(1, 1, 1, -15, 8)``)."""
        if yaw not in YAW_CAMERA:
            raise ValueError(f"yaw {yaw} is not a Multi-PIE camera yaw (one of {sorted(YAW_CAMERA)})")
        return cls(f"{subject:03d}", f"{session:02d}", f"{recording:02d}", YAW_CAMERA[yaw],
                   f"{illumination:02d}")


def parse_name(name: str, where: str | None = None) -> MultiPIEName:
    """Parse ``SSS_ss_rr_CCC_II`` with an optional ``_cropped`` and ``.png`` suffix and any directory part.

    Args:
        name: a file name or path, e.g. ``"001_01_01_051_08_cropped.png"`` or ``"a/b/001_01_01_051_08"``.
        where: prefix of the error message (e.g. ``"train.csv line 3"``).

    Returns:
        The :class:`MultiPIEName`.

    Raises:
        FacezooError: the name does not follow the pattern or its camera is not one of :data:`CAMERA_YAW`.
    """
    base = os.path.basename(name.strip())
    match = _NAME.match(base)
    prefix = f"{where}: " if where else ""
    if match is None:
        raise FacezooError(f"{prefix}malformed Multi-PIE file name {base!r} "
                           f"(expected SSS_ss_rr_CCC_II{IMAGE_SUFFIX}, e.g. 001_01_01_051_08{IMAGE_SUFFIX})")
    parsed = MultiPIEName(*match.groups())
    if parsed.camera not in CAMERA_YAW:
        raise FacezooError(f"{prefix}unknown camera {parsed.camera!r} in {base!r} "
                           f"(known: {', '.join(sorted(CAMERA_YAW))})")
    return parsed


# ----------------------------------------------------------------------------------------- points
def read_five_points(path: str | Path) -> np.ndarray:
    """Read a ``.5pt`` file: five lines ``x y`` (blank lines ignored).

    Returns:
        ``(5, 2)`` float32 (x, y) pixel coordinates.

    Raises:
        FacezooError: missing file, or not exactly five lines of two numbers (the message names the file).
    """
    path = Path(path)
    try:
        lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise FacezooError(f"{path}: cannot read the 5-point file ({type(err).__name__})") from err
    if len(lines) != 5 or any(len(ln) != 2 for ln in lines):
        raise FacezooError(f"{path}: expected 5 lines of 'x y', got {len(lines)} non-empty lines "
                           f"with {[len(ln) for ln in lines]} fields")
    try:
        points = np.array([[float(v) for v in ln] for ln in lines], np.float32)
    except ValueError as err:
        raise FacezooError(f"{path}: non-numeric value in the 5-point file ({err})") from err
    if not np.isfinite(points).all():
        raise FacezooError(f"{path}: non-finite value in the 5-point file")
    return points


def format_five_points(points: np.ndarray) -> str:
    """The text of a ``.5pt`` file for ``(5, 2)`` points (inverse of :func:`read_five_points`)."""
    points = np.asarray(points, np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected (5, 2) points, got {points.shape}")
    return "".join(f"{x:.4f} {y:.4f}\n" for x, y in points)


def mirror_five_points(points, width: int):
    """Mirror 5 points for a left-right flipped image: ``x → W-1-x`` and swap the left/right labels.

    Args:
        points: ``(..., 5, 2)`` (x, y) pixels (array or tensor).
        width: width ``W`` of the image they belong to.

    Returns:
        The mirrored points, same shape and type; index 0 is still the image-left eye.

    Example:
        >>> mirror_five_points(np.array([[40., 40], [88, 40], [64, 60], [44, 88], [84, 88]]), 128).tolist()
        [[39.0, 40.0], [87.0, 40.0], [63.0, 60.0], [43.0, 88.0], [83.0, 88.0]]
    """
    if points.shape[-2:] != (5, 2):
        raise ValueError(f"expected (..., 5, 2) points, got shape {tuple(points.shape)}")
    out = points[..., list(FIVE_POINT_HFLIP), :]
    out = out.clone() if isinstance(out, torch.Tensor) else out.copy()
    out[..., 0] = (width - 1) - out[..., 0]
    return out


def resize_five_points(points, src_size: tuple[int, int], dst_size: tuple[int, int]):
    """Rescale (x, y) pixel points (pixel centres at integers) from a ``(w, h)`` image to a ``(w', h')`` one.

    ``x' = (x + 0.5) · w'/w − 0.5``, the mapping of the image resize itself.
    """
    sx, sy = dst_size[0] / src_size[0], dst_size[1] / src_size[1]
    out = points.clone() if isinstance(points, torch.Tensor) else np.array(points, copy=True)
    out[..., 0] = (out[..., 0] + 0.5) * sx - 0.5
    out[..., 1] = (out[..., 1] + 0.5) * sy - 0.5
    return out


# ---------------------------------------------------------------------------------------- images
def _load_rgb(path: Path) -> Image.Image:
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError as err:
        raise FacezooError(f"{path}: image file not found") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FacezooError(f"{path}: unreadable or truncated image ({reason})") from err


def _to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB → ``(3, H, W)`` float in [-1, 1]."""
    arr = np.asarray(img, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous() / 127.5 - 1.0


# --------------------------------------------------------------------------------------- dataset
class MultiPIE(Dataset):
    """Profile → frontal pairs from a Multi-PIE tree in TP-GAN's crop format.

    Args:
        root: dataset root holding ``images/``, ``5pt/`` and the split lists (layout in the module docstring).
        split: split name; the list file defaults to ``<root>/<split>.csv``.
        size: side of the returned images (crops of another size are resized, bicubic).
        list_file: the split's list, relative to ``root`` or absolute: one file name per line (only the
            first CSV field is read, directories are ignored, ``#`` starts a comment line).
        poses: allowed camera yaws in degrees **before** mirroring (any of -90, -75, …, 90); ``None``
            keeps all 12 non-frontal views. E.g. ``[15, -15, 30, -30]`` or ``range(-45, 46, 15)``.
        mirror_negative: flip negative-yaw inputs to the positive side (TP-GAN's ``MIRROR_TO_ONE_SIDE``).
        include_frontal_inputs: also use the frontal images as inputs (a frontal → itself pair).

    Returns (per sample), a dict:
        - ``image``: ``(3, size, size)`` float in [-1, 1], the (mirrored) input view.
        - ``target``: ``(3, size, size)`` float in [-1, 1], the frontal view.
        - ``five_points``: ``(5, 2)`` float32 (x, y) pixels of ``image``; ``target_five_points``: of
          ``target``.
        - ``identity``: int64 scalar, the subject's index among the split's sorted subjects.
        - ``pose``: ``(3,)`` float32 ``(yaw, 0, 0)`` of ``image`` (after mirroring, so ≥ 0 when mirrored).
        - ``name``: the input's stem ``SSS_ss_rr_CCC_II``.

    Raises:
        FacezooError: missing root or list file, a malformed list entry, a listed image that does not
            exist, a missing 5-point file (at construction); a bad 5-point file or an unreadable image
            (when the sample is read). Inputs whose frontal image is missing are skipped with one warning.

    Example:
        >>> ds = MultiPIE("data/multipie", split="test", size=64, poses=[15, -15])   # doctest: +SKIP
        >>> ds.num_identities, len(ds)                                             # doctest: +SKIP
    """

    def __init__(self, root: str | Path, split: str = "train", size: int = 128,
                 list_file: str | Path | None = None, poses: Iterable[int] | None = None,
                 mirror_negative: bool = True, include_frontal_inputs: bool = False):
        super().__init__()
        if int(size) <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.root = Path(root).expanduser()
        self.split = split
        self.size = int(size)
        self.mirror_negative = bool(mirror_negative)
        self.include_frontal_inputs = bool(include_frontal_inputs)
        self.poses = self._check_poses(poses)
        if not self.root.is_dir():
            raise FacezooError(f"{self.root}: Multi-PIE root directory not found (set data.root=DIR; "
                               f"layout: DIR/images, DIR/5pt, DIR/<split>.csv — see docs/data/multipie.md)")
        list_path = Path(list_file) if list_file is not None else Path(f"{split}.csv")
        self.list_file = list_path if list_path.is_absolute() else self.root / list_path
        if not self.list_file.is_file():
            raise FacezooError(f"{self.list_file}: list file of split {split!r} not found")

        names = self._read_list(self.list_file)
        on_disk = self._listdir(self.root / IMAGE_DIR)
        points_on_disk = self._listdir(self.root / FIVE_POINT_DIR)
        for line, name in names:
            if name.image_name not in on_disk:
                missing = self.root / IMAGE_DIR / name.image_name
                raise FacezooError(f"{self.list_file} line {line}: image {missing} does not exist")

        self.samples: list[tuple[MultiPIEName, MultiPIEName]] = []
        self.skipped_without_frontal = 0
        for _, name in names:
            if name.camera == FRONTAL_CAMERA and not self.include_frontal_inputs:
                continue
            if name.camera != FRONTAL_CAMERA and name.yaw not in self.poses:
                continue
            target = name.frontal()
            if target.image_name not in on_disk:
                self.skipped_without_frontal += 1
                continue
            for n in (name, target):
                if n.five_point_name not in points_on_disk:
                    raise FacezooError(f"{self.root / FIVE_POINT_DIR / n.five_point_name}: 5-point file of "
                                       f"{n.image_name} not found")
            self.samples.append((name, target))
        if self.skipped_without_frontal:
            log.warning("Multi-PIE %s: skipped %d input(s) of %s whose frontal (camera %s) image is missing",
                        split, self.skipped_without_frontal, self.list_file, FRONTAL_CAMERA)
        self.subjects: list[str] = sorted({name.subject for name, _ in self.samples})
        self._subject_index = {s: i for i, s in enumerate(self.subjects)}

    # -------------------------------------------------------------------------------- construction
    @staticmethod
    def _check_poses(poses: Iterable[int] | None) -> frozenset[int]:
        if poses is None:
            return frozenset(y for y in YAW_CAMERA if y != 0)
        out = set()
        for p in poses:
            if float(p) != int(p) or int(p) not in YAW_CAMERA:
                raise ValueError(f"poses: {p} is not a Multi-PIE camera yaw (one of {sorted(YAW_CAMERA)})")
            out.add(int(p))
        return frozenset(out)

    @staticmethod
    def _read_list(path: Path) -> list[tuple[int, MultiPIEName]]:
        seen: set[MultiPIEName] = set()
        out = []
        with open(path, newline="") as f:
            for line, row in enumerate(csv.reader(f), start=1):
                if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
                    continue
                name = parse_name(row[0], where=f"{path} line {line}")
                if name not in seen:
                    seen.add(name)
                    out.append((line, name))
        return out

    @staticmethod
    def _listdir(path: Path) -> set[str]:
        if not path.is_dir():
            raise FacezooError(f"{path}: directory not found (a Multi-PIE root holds images/ and 5pt/)")
        with os.scandir(path) as it:
            return {entry.name for entry in it}

    # ------------------------------------------------------------------------------------- access
    @property
    def num_identities(self) -> int:
        """Number of subjects among the split's samples (identity labels are ``0 … num_identities-1``)."""
        return len(self.subjects)

    def __len__(self) -> int:
        return len(self.samples)

    def _view(self, name: MultiPIEName, mirror: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Read one crop and its 5 points, mirrored if asked, at ``self.size``."""
        img = _load_rgb(self.root / IMAGE_DIR / name.image_name)
        points = read_five_points(self.root / FIVE_POINT_DIR / name.five_point_name)
        if mirror:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            points = mirror_five_points(points, img.width)
        if img.size != (self.size, self.size):
            points = resize_five_points(points, img.size, (self.size, self.size))
            img = img.resize((self.size, self.size), Image.Resampling.BICUBIC)
        return _to_tensor(img), torch.from_numpy(np.ascontiguousarray(points, np.float32))

    def __getitem__(self, index: int) -> dict:
        name, target = self.samples[index]
        mirror = self.mirror_negative and name.yaw < 0
        image, five = self._view(name, mirror)
        target_image, target_five = self._view(target, False)
        yaw = -name.yaw if mirror else name.yaw
        return {
            "image": image,
            "target": target_image,
            "five_points": five,
            "target_five_points": target_five,
            "identity": torch.tensor(self._subject_index[name.subject], dtype=torch.int64),
            "pose": torch.tensor([yaw, 0.0, 0.0], dtype=torch.float32),
            "name": name.stem,
        }

    def __repr__(self) -> str:
        return (f"MultiPIE(root={str(self.root)!r}, split={self.split!r}, size={self.size}, "
                f"samples={len(self)}, "
                f"identities={self.num_identities}, poses={sorted(self.poses)})")
