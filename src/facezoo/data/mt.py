"""The MT (BeautyGAN / PSGAN) makeup dataset: unpaired non-makeup sources and makeup references.

The on-disk layout is the one PSGAN's official loader reads (``wtjiang98/PSGAN: tools/data_reader.py``, ``README.md``)::

    <root>/images/makeup/*.png         RGB faces wearing makeup (the references)
    <root>/images/non-makeup/*.png     RGB faces without makeup (the sources)
    <root>/segs/{makeup,non-makeup}/*.png
                                       uint8 label maps, same file names, in MT's 14-label scheme
                                       (:data:`facezoo.face.labels.MT`: 0 background, 1 face, …, 13 neck)
    <root>/landmarks/{makeup,non-makeup}/*.png
                                       NOT images: pickled numpy ``(68, 2)`` arrays in **(y, x)** order, pixel
                                       coordinates of the image (dlib's ``[p.y, p.x]``, wtjiang98/PSGAN#14)
    <root>/makeup.txt                  one relative path per line, e.g. ``makeup/xxx.png``
    <root>/non-makeup.txt              e.g. ``non-makeup/yyy.png``

facezoo converts on reading: landmarks to (x, y) (the facezoo convention), label maps to the CelebAMask-HQ
scheme (:func:`facezoo.face.labels.convert_labels`, ``"mt"`` → ``"celebamask_hq"``), images to [-1, 1], all
resized to ``size`` (images bicubic, label maps nearest, landmarks with the pixel-centre mapping).

Sampling is unpaired as in the official loader (``tools/data_reader.py: pick``): each index draws one random
non-makeup source and one random makeup reference; the dataset length is ``max(#makeup, #non-makeup)``. The
draw of index ``i`` is a pure function of ``(seed, split, i)``, so a resumed run sees the same pairs.
Real MT has no ground-truth transfer, so samples carry no ``target``.

``scripts/make_synthetic.py --format mt`` writes this layout from the built-in renderer.

Example:
    >>> ds = MT("data/MT", size=256)                                           # doctest: +SKIP
    >>> s = ds[0]; s["image"].shape, s["reference_landmarks"].shape             # doctest: +SKIP
    (torch.Size([3, 256, 256]), torch.Size([68, 2]))
"""

from __future__ import annotations

import pickle
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from facezoo.data.multipie import resize_five_points as resize_points
from facezoo.face.labels import MT as MT_LABELS
from facezoo.face.labels import convert_labels
from facezoo.face.photo import open_image
from facezoo.utils import FacezooError

__all__ = ["MT", "DOMAINS", "LIST_FILES", "read_mt_landmarks", "read_mt_seg", "format_mt_landmarks"]

#: The two domains, as directory names under ``images/``, ``segs/`` and ``landmarks/``.
DOMAINS: tuple[str, str] = ("makeup", "non-makeup")
#: Default list file of each domain (relative to the root).
LIST_FILES: dict[str, str] = {"makeup": "makeup.txt", "non-makeup": "non-makeup.txt"}


# ------------------------------------------------------------------------------------------- files
def read_mt_landmarks(path: str | Path) -> np.ndarray:
    """Read an MT landmark file (a pickled ``(68, 2)`` array in (y, x) order) as (x, y) points.

    Args:
        path: the ``landmarks/<domain>/<name>.png`` file (a pickle despite the suffix).

    Returns:
        ``(68, 2)`` float32 (x, y) pixel coordinates of the image the file belongs to.

    Raises:
        FacezooError: missing file, not a pickle, or not a finite ``(68, 2)`` array (the message names the file).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)
    except FileNotFoundError:
        raise FacezooError(f"{path}: landmark file not found") from None
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a garbled file
        raise FacezooError(f"{path}: not a pickled landmark array ({type(err).__name__})") from None
    try:
        arr = np.asarray(data, dtype=np.float32)
    except (TypeError, ValueError):
        raise FacezooError(f"{path}: landmark file holds {type(data).__name__}, not a (68, 2) array") from None
    if arr.shape != (68, 2):
        raise FacezooError(f"{path}: expected a (68, 2) landmark array in (y, x) order, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise FacezooError(f"{path}: non-finite landmark coordinates")
    return np.ascontiguousarray(arr[:, ::-1])


def format_mt_landmarks(landmarks_xy: np.ndarray) -> bytes:
    """The bytes of an MT landmark file for (x, y) points: a pickled float64 ``(68, 2)`` array in (y, x) order.

    Example:
        >>> pts = np.arange(136, dtype=np.float32).reshape(68, 2)
        >>> pickle.loads(format_mt_landmarks(pts))[0].tolist()   # (y, x) of point 0 = (1, 0)
        [1.0, 0.0]
    """
    arr = np.asarray(landmarks_xy, dtype=np.float64)
    if arr.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got shape {arr.shape}")
    return pickle.dumps(np.ascontiguousarray(arr[:, ::-1]), protocol=2)


def read_mt_seg(path: str | Path) -> np.ndarray:
    """Read an MT label map (uint8 PNG, 14-label scheme) and convert it to CelebAMask-HQ labels.

    Returns:
        ``(H, W)`` int64 CelebAMask-HQ ids.

    Raises:
        FacezooError: missing/unreadable file, or ids outside MT's 0-13 (the message names the file).
    """
    path = Path(path)
    img = open_image(path, "label map")
    if img.mode not in ("L", "P", "I", "I;16"):
        img = img.convert("L")
    seg = np.asarray(img, dtype=np.int64)
    if seg.size and (seg.max() >= len(MT_LABELS) or seg.min() < 0):
        raise FacezooError(f"{path}: label {int(seg.max())} is not an MT label id (0-{len(MT_LABELS) - 1})")
    return convert_labels(seg, "mt", "celebamask_hq")


def _read_list(path: Path, domain: str) -> list[str]:
    """Stems listed in an MT list file (``makeup/xxx.png`` lines; blank lines and ``#`` comments skipped)."""
    if not path.is_file():
        raise FacezooError(f"{path}: list file of the {domain} images not found")
    names = []
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        parts = Path(entry).parts
        if len(parts) != 2 or parts[0] != domain or not parts[1].endswith(".png"):
            raise FacezooError(f"{path} line {line_no}: expected '{domain}/<name>.png', got {entry!r}")
        names.append(parts[1])
    if not names:
        raise FacezooError(f"{path}: the list of {domain} images is empty")
    return names


# ----------------------------------------------------------------------------------------- dataset
class MT(Dataset):
    """MT makeup transfer samples: a random non-makeup source and a random makeup reference per index.

    Args:
        root: dataset root (layout in the module docstring).
        split: split name; it only seeds the draws (MT has no official split lists; point a split at other
            list files with ``makeup_list`` / ``non_makeup_list``).
        size: side of the returned images (square; MT images are square).
        length: number of samples; ``None`` = ``max(#makeup, #non-makeup)`` as the official loader.
        seed: seed of the unpaired draws (index ``i`` → a pure function of ``(seed, split, i)``).
        makeup_list, non_makeup_list: the list files, relative to ``root`` or absolute.

    Returns (per sample), a dict:
        - ``image``: ``(3, size, size)`` float in [-1, 1], the non-makeup source.
        - ``landmarks``: ``(68, 2)`` float32 (x, y) pixels of ``image``.
        - ``mask``: ``(size, size)`` int64 CelebAMask-HQ labels of ``image``.
        - ``reference``, ``reference_landmarks``, ``reference_mask``: the makeup reference, same layouts.
        - ``name``, ``reference_name``: file names of the two images.

    Raises:
        FacezooError: missing root or list file, a malformed list entry, a listed image, label map or landmark
            file that does not exist (at construction); an unreadable image/label map or a garbled landmark
            pickle (when the sample is read). Each message is one line naming the file.
    """

    def __init__(self, root: str | Path, split: str = "train", size: int = 256, length: int | None = None,
                 seed: int = 0, makeup_list: str | Path = LIST_FILES["makeup"],
                 non_makeup_list: str | Path = LIST_FILES["non-makeup"]):
        super().__init__()
        if int(size) <= 0:
            raise ValueError(f"size must be positive, got {size}")
        if length is not None and int(length) <= 0:
            raise ValueError(f"length must be positive or None, got {length}")
        self.root = Path(root).expanduser()
        self.split, self.size, self.seed = split, int(size), int(seed)
        if not self.root.is_dir():
            raise FacezooError(f"{self.root}: MT root directory not found (set data.root=DIR; layout: "
                               f"DIR/images, DIR/segs, DIR/landmarks, DIR/makeup.txt, DIR/non-makeup.txt)")
        self.names: dict[str, list[str]] = {}
        for domain, list_file in (("makeup", makeup_list), ("non-makeup", non_makeup_list)):
            path = Path(list_file) if Path(list_file).is_absolute() else self.root / list_file
            self.names[domain] = _read_list(path, domain)
            for kind in ("images", "segs", "landmarks"):
                folder = self.root / kind / domain
                on_disk = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
                missing = [n for n in self.names[domain] if n not in on_disk]
                if missing:
                    raise FacezooError(f"{folder / missing[0]}: listed in {path.name} but not found"
                                       + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        self.length = int(length) if length is not None else max(len(v) for v in self.names.values())
        self._split_code = zlib.crc32(str(split).encode())

    def __len__(self) -> int:
        return self.length

    def pair(self, index: int) -> tuple[str, str]:
        """File names ``(non-makeup source, makeup reference)`` of sample ``index``.

        Example:
            >>> ds = MT("data/MT"); ds.pair(0)                                 # doctest: +SKIP
            ('vSYYZ306.png', 'vFG756.png')
        """
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        rng = np.random.default_rng([self.seed, self._split_code, index % self.length])
        source = int(rng.integers(len(self.names["non-makeup"])))
        reference = int(rng.integers(len(self.names["makeup"])))
        return self.names["non-makeup"][source], self.names["makeup"][reference]

    def read(self, domain: str, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One face of ``domain`` at ``self.size``: image (3, S, S) in [-1, 1], (68, 2) (x, y), (S, S) labels."""
        img = open_image(self.root / "images" / domain / name, "image").convert("RGB")
        seg = read_mt_seg(self.root / "segs" / domain / name)
        points = read_mt_landmarks(self.root / "landmarks" / domain / name)
        if seg.shape != (img.height, img.width):
            raise FacezooError(f"{self.root / 'segs' / domain / name}: label map is {seg.shape[1]}x{seg.shape[0]} "
                               f"but its image is {img.width}x{img.height}")
        if img.size != (self.size, self.size):
            points = resize_points(points, img.size, (self.size, self.size))
            img = img.resize((self.size, self.size), Image.Resampling.BICUBIC)
            seg = np.asarray(Image.fromarray(seg.astype(np.uint8)).resize((self.size, self.size),
                                                                          Image.Resampling.NEAREST), np.int64)
        image = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1).contiguous() / 127.5 - 1.0
        return image, torch.from_numpy(np.ascontiguousarray(points, np.float32)), torch.from_numpy(seg.copy())

    def __getitem__(self, index: int) -> dict:
        source, reference = self.pair(index)
        image, landmarks, mask = self.read("non-makeup", source)
        ref, ref_landmarks, ref_mask = self.read("makeup", reference)
        return {"image": image, "landmarks": landmarks, "mask": mask, "reference": ref,
                "reference_landmarks": ref_landmarks, "reference_mask": ref_mask,
                "name": source, "reference_name": reference}

    def __repr__(self) -> str:
        return (f"MT(root={str(self.root)!r}, split={self.split!r}, size={self.size}, length={self.length}, "
                f"makeup={len(self.names['makeup'])}, non_makeup={len(self.names['non-makeup'])})")
