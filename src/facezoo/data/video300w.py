"""300VW-style face videos as GANnotation trains on them: A → B → C triplets of frames of one video.

facezoo reads the layout of GANnotation's training code (``ESanchezLozano/GANnotation:
training/databases.py``)::

    <root>/<video>/frames/*.jpg       the frames, in sorted file-name order (names are frame numbers,
                                      e.g. 000001.jpg; any image format PIL reads works)
    <root>/<video>/pts.pt             torch.save'd list of per-frame (68, 2) (x, y) points, in frame order
    <root>/<video>/annot/*.pts        instead of pts.pt: one 300-W ``.pts`` file per frame, same stem
                                      as the frame (300VW's own annotation layout)
    <root>/<split>.txt                optional: the split's video ids, one per line

Without ``<root>/train.txt``, the train split is every video directory except 300VW's category-C videos
(:data:`CATEGORY_C`), as the official code; the other splits need their list file.

A sample is built as the official ``SuperDB.__getitem__``: ``B`` (``target``) is the indexed frame; ``A``
(``image``) and ``C`` (``third``) are drawn independently from the frames of the same video within
``±max_gap`` frames of B and **more than** ``min_gap`` frames away from it (:func:`triplet_candidates`).
Each face is cropped by :func:`crop_box` (landmark bounding box + ``tight``% of the face size, resized to
``size × size``, the official ``utils.crop``). With augmentation (default: train split only) each face is
first rotated about the frame centre by ``clip(N(0, σ²), ±40°)`` with ``σ = 15/30/45°`` for B/A/C, the crop
margin is jittered by ``4·N(0, 1)``, and one horizontal flip (probability ½) is shared by the triplet; the
flip also permutes the landmark indices (:data:`~facezoo.face.labels.IBUG68_HFLIP`), so index 36 stays the
image-left eye's outer corner.

Differences from the official code, all for exactness: rotation and crop are one resampling (bilinear,
border replicated as ``cv2.BORDER_REPLICATE``) instead of two; landmarks follow the pixel-centre convention
of the image (``x' = (x − x0 + ½)·s − ½``, flip ``x' = S − 1 − x``) and are not floored; a frame whose window
holds no partner is not used as B (the official code raises there).

Every sample is a pure function of ``(seed, index)``: the same in every epoch and after a resume.

Example:
    >>> ds = Video300W("data/300vw", split="train", size=128)                  # doctest: +SKIP
    >>> s = ds[0]; s["image"].shape, s["target_landmarks"].shape               # doctest: +SKIP
    (torch.Size([3, 128, 128]), torch.Size([68, 2]))
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import kornia
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from facezoo.face.labels import IBUG68_HFLIP, landmarks_68_to_66
from facezoo.utils import FacezooError

__all__ = [
    "CATEGORY_C",
    "FRAME_DIR",
    "POINTS_FILE",
    "ANNOT_DIR",
    "read_pts",
    "format_pts",
    "triplet_candidates",
    "sample_triplet",
    "crop_box",
    "rotation_about_centre",
    "face_transform",
    "Video300W",
]

log = logging.getLogger("facezoo.data.video300w")

#: 300VW's category-C videos, left out of GANnotation's training set (``training/databases.py``).
CATEGORY_C: tuple[str, ...] = ("410", "411", "516", "517", "526", "528", "529", "530", "531", "533", "557",
                               "558", "559", "562")
FRAME_DIR, POINTS_FILE, ANNOT_DIR = "frames", "pts.pt", "annot"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Rotation angles are clipped to this many degrees (official ``process_image``).
MAX_ROTATION = 40.0


# -------------------------------------------------------------------------------------- .pts files
def read_pts(path: str | Path) -> np.ndarray:
    """Read a 300-W ``.pts`` file: ``version: 1``, ``n_points: N``, ``{``, N lines ``x y``, ``}``.

    The coordinates are returned as written (facezoo's exporter writes 0-based pixel centres).

    Args:
        path: the file.

    Returns:
        ``(N, 2)`` float32 (x, y) points.

    Raises:
        FacezooError: missing/unreadable file, no ``n_points`` header, missing braces, a point count that
            differs from the header, or a non-numeric / non-finite value; the message names the file.

    Example:
        >>> import tempfile, os
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = os.path.join(tmp.name, "a.pts")
        >>> _ = open(p, "w").write(format_pts(np.array([[1.5, 2.0], [3.0, 4.25]])))
        >>> read_pts(p).tolist()
        [[1.5, 2.0], [3.0, 4.25]]
        >>> tmp.cleanup()
    """
    path = Path(path)
    try:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except UnicodeDecodeError as err:
        raise FacezooError(f"{path}: not a text .pts file (byte 0x{err.object[err.start]:02x} at offset {err.start} "
                           "is not UTF-8)") from None
    except OSError as err:
        raise FacezooError(f"{path}: cannot read the .pts file ({type(err).__name__})") from err
    header = {}
    i = 0
    while i < len(lines) and lines[i] != "{":
        key, sep, value = lines[i].partition(":")
        if not sep:
            raise FacezooError(f"{path}: malformed .pts header line {lines[i]!r} (expected 'key: value')")
        header[key.strip()] = value.strip()
        i += 1
    if "n_points" not in header:
        raise FacezooError(f"{path}: .pts header has no 'n_points:' line")
    try:
        count = int(header["n_points"])
    except ValueError:
        raise FacezooError(f"{path}: n_points {header['n_points']!r} is not an integer") from None
    if i == len(lines) or lines[-1] != "}":
        raise FacezooError(f"{path}: .pts points must be enclosed in '{{' and '}}' lines")
    body = [ln.split() for ln in lines[i + 1:-1]]
    if len(body) != count or any(len(row) != 2 for row in body):
        raise FacezooError(f"{path}: expected {count} lines of 'x y' (n_points), got {len(body)} lines "
                           f"with {sorted({len(row) for row in body})} fields")
    try:
        points = np.array([[float(v) for v in row] for row in body], np.float32).reshape(count, 2)
    except ValueError as err:
        raise FacezooError(f"{path}: non-numeric value in the .pts file ({err})") from None
    if not np.isfinite(points).all():
        raise FacezooError(f"{path}: non-finite value in the .pts file")
    return points


def format_pts(points: np.ndarray) -> str:
    """The text of a 300-W ``.pts`` file for ``(N, 2)`` points (inverse of :func:`read_pts`).

    Example:
        >>> print(format_pts(np.array([[1.0, 2.0]])), end="")
        version: 1
        n_points: 1
        {
        1.000 2.000
        }
    """
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"expected (N, 2) points, got shape {points.shape}")
    rows = "".join(f"{x:.3f} {y:.3f}\n" for x, y in points)
    return f"version: 1\nn_points: {len(points)}\n{{\n{rows}}}\n"


# ------------------------------------------------------------------------------------- triplets
def triplet_candidates(frame_numbers: Sequence[int], position: int, min_gap: int = 50,
                       max_gap: int = 200) -> np.ndarray:
    """Positions of the frames that may be A or C when the frame at ``position`` is B.

    A partner is within ``max_gap`` frames of B and more than ``min_gap`` frames away from it, measured by
    frame number (the official rule: ``±200`` frames and ``> 50`` apart).

    Args:
        frame_numbers: ``(T,)`` increasing frame numbers of a video.
        position: index of B in ``frame_numbers``.
        min_gap, max_gap: the gap rule, ``0 <= min_gap < max_gap``.

    Returns:
        ``(K,)`` int64 positions (empty when the video is too short around B).

    Example:
        >>> triplet_candidates(range(10), 5, min_gap=2, max_gap=4).tolist()
        [1, 2, 8, 9]
    """
    numbers = np.asarray(frame_numbers, np.int64)
    if not 0 <= min_gap < max_gap:
        raise ValueError(f"need 0 <= min_gap < max_gap, got {min_gap}, {max_gap}")
    if not 0 <= position < len(numbers):
        raise IndexError(f"position {position} outside a video of {len(numbers)} frames")
    gap = np.abs(numbers - numbers[position])
    return np.flatnonzero((gap > min_gap) & (gap <= max_gap))


def sample_triplet(frame_numbers: Sequence[int], position: int, rng: np.random.Generator, min_gap: int = 50,
                   max_gap: int = 200) -> tuple[int, int, int]:
    """Positions ``(A, B, C)`` of one triplet: B is ``position``, A and C independent draws of
    :func:`triplet_candidates` (they may coincide, as in the official ``random.sample`` calls).

    Raises:
        ValueError: no candidate for this B.
    """
    cand = triplet_candidates(frame_numbers, position, min_gap, max_gap)
    if cand.size == 0:
        raise ValueError(f"no frame within {max_gap} and more than {min_gap} frames from position {position}")
    a, c = rng.integers(len(cand), size=2)
    return int(cand[a]), int(position), int(cand[c])


# ----------------------------------------------------------------------------------- geometry
def rotation_about_centre(width: int, height: int, angle: float) -> tuple[np.ndarray, int, int]:
    """The official ``affine_trans``: rotate a ``width × height`` frame by ``angle`` degrees about
    ``(width // 2, height // 2)`` (clockwise on screen for ``angle > 0``) into a canvas enlarged to hold it.

    Returns:
        ``(M, new_width, new_height)`` with ``M`` the ``(2, 3)`` float64 map from frame pixels to canvas pixels.
    """
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    cx, cy = width // 2, height // 2
    new_w = int(height * abs(sin) + width * abs(cos))
    new_h = int(height * abs(cos) + width * abs(sin))
    rot = np.array([[cos, -sin], [sin, cos]])
    m = np.zeros((2, 3))
    m[:, :2] = rot
    m[:, 2] = np.array([new_w / 2.0, new_h / 2.0]) - rot @ np.array([cx, cy], np.float64)
    return m, new_w, new_h


def crop_box(landmarks: np.ndarray, width: int, height: int, tight: float = 16) -> tuple[int, int, int, int]:
    """GANnotation's face box (official ``utils.crop``): landmark bounding box plus a margin.

    The margin is ``int(tight · δ / 100)`` pixels with ``δ`` the mean of the box's width and height (8 pixels
    when ``δ < 20``); the box is rounded and clipped to the ``width × height`` image.

    Args:
        landmarks: ``(N, 2)`` (x, y) pixels.
        width, height: image size.
        tight: margin in percent of the face size (16 in the official code).

    Returns:
        ``(x0, y0, x1, y1)`` ints; the crop is columns ``x0 … x1 − 1`` and rows ``y0 … y1 − 1``.

    Example:
        >>> crop_box(np.array([[20.0, 30.0], [70.0, 80.0]]), 200, 200)
        (12, 22, 78, 88)
    """
    pts = np.asarray(landmarks, np.float64)
    lo, hi = pts.min(0), pts.max(0)
    delta = 0.5 * float((hi - lo).sum())
    margin = 8 if delta < 20 else int(tight * delta / 100)
    x0 = int(max(np.round(lo[0]) - margin, 0))
    y0 = int(max(np.round(lo[1]) - margin, 0))
    x1 = int(min(np.round(hi[0]) + margin, width - 1))
    y1 = int(min(np.round(hi[1]) + margin, height - 1))
    return x0, y0, x1, y1


def face_transform(landmarks: np.ndarray, width: int, height: int, size: int, angle: float = 0.0,
                   tight: float = 16) -> np.ndarray:
    """The map from frame pixels to the ``size × size`` face crop: rotation (:func:`rotation_about_centre`)
    then :func:`crop_box` in the rotated canvas, resized (anisotropically, as ``cv2.resize``) to ``size``.

    Pixel centres map onto pixel centres: ``x' = (x − x0 + ½)·size/(x1 − x0) − ½``.

    Returns:
        ``(2, 3)`` float64 matrix.

    Raises:
        ValueError: the box is empty (landmarks outside the frame).
    """
    rot, new_w, new_h = rotation_about_centre(width, height, angle)
    pts = np.asarray(landmarks, np.float64) @ rot[:, :2].T + rot[:, 2]
    x0, y0, x1, y1 = crop_box(pts, new_w, new_h, tight)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty face box {(x0, y0, x1, y1)}: the landmarks are outside the {width}x{height} frame")
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    scale = np.array([[sx, 0.0, (0.5 - x0) * sx - 0.5], [0.0, sy, (0.5 - y0) * sy - 0.5], [0.0, 0.0, 1.0]])
    return (scale @ np.vstack([rot, [0.0, 0.0, 1.0]]))[:2]


# ----------------------------------------------------------------------------------------- files
def _load_frame(path: Path) -> torch.Tensor:
    """Frame file → ``(1, 3, H, W)`` float in [-1, 1]."""
    try:
        with Image.open(path) as img:
            img.load()
            arr = np.asarray(img.convert("RGB"), np.float32)
    except FileNotFoundError as err:
        raise FacezooError(f"{path}: frame not found") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FacezooError(f"{path}: unreadable or truncated frame ({reason})") from err
    return torch.from_numpy(arr).permute(2, 0, 1)[None].div_(127.5).sub_(1.0)


def _frame_numbers(names: Sequence[str]) -> np.ndarray:
    """Frame numbers from the file stems (``000123.jpg`` → 123), or positions when a stem is not a number."""
    stems = [os.path.splitext(n)[0] for n in names]
    if all(s.isdigit() for s in stems):
        numbers = np.array([int(s) for s in stems], np.int64)
        if np.all(np.diff(numbers) > 0):
            return numbers
    return np.arange(len(names), dtype=np.int64)


def _load_points(video_dir: Path, frames: Sequence[str]) -> np.ndarray:
    """The ``(T, 68, 2)`` points of a video from ``pts.pt`` or, without it, ``annot/<stem>.pts``."""
    pts_file = video_dir / POINTS_FILE
    if pts_file.is_file():
        try:
            obj = torch.load(pts_file, map_location="cpu", weights_only=True)
        except Exception as err:  # truncated or not a torch file
            raise FacezooError(f"{pts_file}: cannot read the points file ({type(err).__name__})") from None
        try:
            points = np.stack([np.asarray(torch.as_tensor(p, dtype=torch.float32)) for p in obj])
        except (TypeError, ValueError, RuntimeError):
            raise FacezooError(f"{pts_file}: expected a list of (68, 2) point tensors, one per frame") from None
        source = pts_file
    elif (video_dir / ANNOT_DIR).is_dir():
        points = np.stack([read_pts(video_dir / ANNOT_DIR / (os.path.splitext(f)[0] + ".pts")) for f in frames])
        source = video_dir / ANNOT_DIR
    else:
        raise FacezooError(f"{pts_file}: points file not found (nor an {ANNOT_DIR}/ directory of .pts files)")
    if points.ndim != 3 or points.shape[1:] != (68, 2):
        raise FacezooError(f"{source}: expected (68, 2) points per frame, got {tuple(points.shape[1:])}")
    if len(points) != len(frames):
        raise FacezooError(f"{source}: {len(points)} point sets for {len(frames)} frames in "
                           f"{video_dir / FRAME_DIR}")
    if not np.isfinite(points).all():
        raise FacezooError(f"{source}: non-finite landmark coordinates")
    return points


# --------------------------------------------------------------------------------------- dataset
class Video300W(Dataset):
    """GANnotation's re-posing triplets from a 300VW-style tree (layout in the module docstring).

    Args:
        root: dataset root holding one directory per video.
        split: split name; its videos are listed in ``<root>/<split>.txt`` (or ``list_file``).
        size: side of the returned face crops.
        num_points: 68 (iBUG) or 66 (GANnotation's scheme, :func:`~facezoo.face.labels.landmarks_68_to_66`).
        seed: sample ``i`` is a function of ``(seed, i)`` only.
        min_gap, max_gap: the triplet gap rule (:func:`triplet_candidates`).
        augment: rotations, margin jitter and the shared flip; ``None`` = on for ``split == "train"`` only.
        rotation_sigma: rotation σ in degrees for (B, A, C); the official ``angle=15`` gives (15, 30, 45).
        flip: allow the shared horizontal flip (with ``augment``).
        tight: crop margin in percent of the face size; tight_jitter: σ of its jitter (with ``augment``).
        list_file: the split's list (relative to ``root`` or absolute); default ``<split>.txt``.
        exclude: videos left out when the train split has no list file (default :data:`CATEGORY_C`).

    Returns (per sample), a dict:
        - ``image`` / ``target`` / ``third``: A / B / C as ``(3, size, size)`` float in [-1, 1].
        - ``landmarks`` / ``target_landmarks`` / ``third_landmarks``: ``(num_points, 2)`` float32 (x, y)
          pixels of each crop.
        - ``identity``: int64 scalar, the video's index in :attr:`videos`.
        - ``frame_numbers``: ``(3,)`` int64 frame numbers of (A, B, C).

    Raises:
        FacezooError: missing root or list, a listed video without frames, a missing / garbled ``pts.pt``
            or ``.pts`` (at construction); an unreadable frame (when the sample is read).
    """

    def __init__(self, root: str | Path, split: str = "train", size: int = 128, num_points: int = 68,
                 seed: int = 0, min_gap: int = 50, max_gap: int = 200, augment: bool | None = None,
                 rotation_sigma: Sequence[float] = (15.0, 30.0, 45.0), flip: bool = True, tight: float = 16,
                 tight_jitter: float = 4.0, list_file: str | Path | None = None,
                 exclude: Sequence[str] = CATEGORY_C):
        super().__init__()
        if int(size) < 8:
            raise ValueError(f"size must be >= 8, got {size}")
        if num_points not in (66, 68):
            raise ValueError(f"num_points must be 68 or 66, got {num_points}")
        if not 0 <= min_gap < max_gap:
            raise ValueError(f"need 0 <= min_gap < max_gap, got {min_gap}, {max_gap}")
        if len(rotation_sigma) != 3 or min(rotation_sigma) < 0:
            raise ValueError(f"rotation_sigma needs three non-negative values (B, A, C), got {rotation_sigma}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.root = Path(root).expanduser()
        self.split, self.size, self.num_points, self.seed = split, int(size), int(num_points), int(seed)
        self.min_gap, self.max_gap = int(min_gap), int(max_gap)
        self.augment = split == "train" if augment is None else bool(augment)
        self.rotation_sigma = tuple(float(s) for s in rotation_sigma)
        self.flip, self.tight, self.tight_jitter = bool(flip), float(tight), float(tight_jitter)
        if not self.root.is_dir():
            raise FacezooError(f"{self.root}: 300VW root directory not found (set data.root=DIR; layout: "
                               f"DIR/<video>/frames/*.jpg + DIR/<video>/pts.pt — see facezoo.data.video300w)")
        self.videos = self._video_list(list_file, exclude)
        self.frames: list[list[str]] = []
        self.frame_numbers: list[np.ndarray] = []
        self.points: list[np.ndarray] = []
        self.index: list[tuple[int, int]] = []           # (video, position of B)
        unusable = 0
        for v, video in enumerate(self.videos):
            frame_dir = self.root / video / FRAME_DIR
            if not frame_dir.is_dir():
                raise FacezooError(f"{frame_dir}: frames directory of video {video!r} not found")
            names = sorted(n for n in os.listdir(frame_dir) if n.lower().endswith(_IMAGE_SUFFIXES))
            if not names:
                raise FacezooError(f"{frame_dir}: no frames (*.jpg) in video {video!r}")
            numbers = _frame_numbers(names)
            self.frames.append(names)
            self.frame_numbers.append(numbers)
            self.points.append(_load_points(self.root / video, names))
            for pos in range(len(names)):
                gap = np.abs(numbers - numbers[pos])
                if np.any((gap > self.min_gap) & (gap <= self.max_gap)):
                    self.index.append((v, pos))
                else:
                    unusable += 1
        if unusable:
            log.warning("300VW %s: %d frame(s) have no partner within %d and more than %d frames apart and are "
                        "not used as B", split, unusable, self.max_gap, self.min_gap)
        if not self.index:
            raise FacezooError(f"{self.root}: no usable triplet in split {split!r} (videos shorter than "
                               f"min_gap={self.min_gap}+2 frames?)")

    def _video_list(self, list_file, exclude) -> list[str]:
        path = Path(list_file) if list_file is not None else Path(f"{self.split}.txt")
        path = path if path.is_absolute() else self.root / path
        if path.is_file():
            videos = [ln.strip() for ln in path.read_text().splitlines()
                      if ln.strip() and not ln.lstrip().startswith("#")]
            if not videos:
                raise FacezooError(f"{path}: the video list of split {self.split!r} is empty")
            for video in videos:
                if not (self.root / video).is_dir():
                    raise FacezooError(f"{path}: listed video {video!r} has no directory {self.root / video}")
            return videos
        if list_file is not None or self.split != "train":
            raise FacezooError(f"{path}: video list of split {self.split!r} not found (one video id per line)")
        skip = set(exclude)
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and d.name not in skip)

    # ------------------------------------------------------------------------------------- access
    @property
    def num_identities(self) -> int:
        """Number of videos (``identity`` labels are ``0 … num_identities − 1``)."""
        return len(self.videos)

    def __len__(self) -> int:
        return len(self.index)

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        """The generator of sample ``index``: ``default_rng([seed, index, stream])`` (stream 0: the triplet,
        1: the augmentation)."""
        return np.random.default_rng([self.seed, int(index), int(stream)])

    def triplet(self, index: int) -> tuple[int, tuple[int, int, int]]:
        """``(video, (A, B, C) frame positions)`` of sample ``index`` (no file is read)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        index %= len(self)
        video, pos = self.index[index]
        triplet = sample_triplet(self.frame_numbers[video], pos, self.rng(index), self.min_gap, self.max_gap)
        return video, triplet

    def _face(self, video: int, position: int, angle: float, tight: float, flip: bool):
        path = self.root / self.videos[video] / FRAME_DIR / self.frames[video][position]
        frame = _load_frame(path)
        height, width = frame.shape[-2:]
        points = self.points[video][position]
        try:
            m = face_transform(points, width, height, self.size, angle, tight)
        except ValueError as err:
            raise FacezooError(f"{path}: {err}") from None
        if flip:
            m = np.array([[-1.0, 0.0, self.size - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0.0, 0.0, 1.0]])
        crop = kornia.geometry.transform.warp_affine(frame, torch.from_numpy(m[None]).float(),
                                                     (self.size, self.size), mode="bilinear",
                                                     padding_mode="border", align_corners=True)[0]
        lm = points.astype(np.float64) @ m[:, :2].T + m[:, 2]
        if flip:
            lm = lm[list(IBUG68_HFLIP)]
        lm = torch.from_numpy(lm.astype(np.float32))
        if self.num_points == 66:
            lm = landmarks_68_to_66(lm)
        return crop.clamp_(-1.0, 1.0), lm

    def __getitem__(self, index: int) -> dict:
        video, (a, b, c) = self.triplet(index)
        rng = self.rng(index % len(self), stream=1)
        flip = self.augment and self.flip and bool(rng.uniform() < 0.5)
        sample = {"identity": torch.tensor(video, dtype=torch.int64),
                  "frame_numbers": torch.tensor([int(self.frame_numbers[video][p]) for p in (a, b, c)])}
        # official order: B (σ 15), A (σ 30), C (σ 45)
        for key, pos, sigma in (("target", b, self.rotation_sigma[0]), ("image", a, self.rotation_sigma[1]),
                                ("third", c, self.rotation_sigma[2])):
            angle, tight = 0.0, self.tight
            if self.augment:
                angle = float(np.clip(rng.normal() * sigma, -MAX_ROTATION, MAX_ROTATION))
                tight = float(int(self.tight + self.tight_jitter * rng.normal()))
            img, lm = self._face(video, pos, angle, tight, flip)
            sample[key] = img
            sample["landmarks" if key == "image" else f"{key}_landmarks"] = lm
        return sample

    def __repr__(self) -> str:
        return (f"Video300W(root={str(self.root)!r}, split={self.split!r}, size={self.size}, "
                f"videos={len(self.videos)}, samples={len(self)}, augment={self.augment})")
