"""CelebAMask-HQ (Lee et al., CVPR 2020): faces and their 19-label masks for MaskGAN and MaskVAE.

facezoo reads three on-disk layouts (``layout=``; ``"auto"`` picks the first that fits, in this order, and a given
``mask_dir`` means ``merged``):

``raw`` — the release as downloaded (``switchablenorms/CelebAMask-HQ: README.md``)::

    <root>/CelebA-HQ-img/{i}.jpg                                 1024×1024 RGB, i = 0 … 29999
    <root>/CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png  512×512 binary mask of one part (absent parts
                                                                 have no file)
    <root>/CelebA-HQ-to-CelebA-mapping.txt                       "idx orig_idx orig_file" rows after a header line

  The parts of image ``i`` are merged as ``face_parsing/Data_preprocessing/g_mask.py`` does: walk
  :data:`PART_ORDER` (skin, nose, eye_g, l_eye, r_eye, l_brow, r_brow, l_ear, r_ear, mouth, u_lip, l_lip, hair,
  hat, ear_r, neck_l, neck, cloth) and write id = position + 1 wherever the part's PNG is non-zero (channel 0 of
  OpenCV's BGR image, i.e. blue), so **later parts overwrite earlier ones** (hair over skin; note that neck, 17,
  also overwrites a necklace, 16, drawn under it). The ids are then exactly the CelebAMask-HQ ids
  (:data:`facezoo.face.labels.CELEBAMASK_HQ`). Each merged map is written once, atomically, as a uint8 PNG
  ``<cache_dir>/{i}.png`` (default ``<root>/CelebAMaskHQ-mask``, the folder ``g_mask.py`` writes, with the same
  content) when the sample is first read; later reads, and later datasets on the same root, read the cache.
  :meth:`CelebAMaskHQ.cache_masks` merges a whole split at once.

``merged`` — pre-merged label maps beside the images::

    <root>/CelebA-HQ-img/{i}.jpg
    <root>/<mask_dir>/{i}.png         uint8 id maps; mask_dir defaults to the first existing of MERGED_DIRS
                                      (CelebAMask-HQ-label, which g_partition.py reads; CelebAMaskHQ-mask, which
                                      g_mask.py writes; CelebAMask-HQ-mask)
    <root>/CelebA-HQ-to-CelebA-mapping.txt

  The ids are in the scheme ``label_order`` (any of :data:`facezoo.face.labels.LABEL_MAPS`, e.g.
  ``face_parsing_pytorch`` for maps made by zllrunning/face-parsing.PyTorch) and converted to CelebAMask-HQ ids.

``aligned`` — the MaskGAN demo's training/test layout (``MaskGAN_demo/data/aligned_dataset.py``), one folder per
role and phase (``phase``, default the split name)::

    <root>/train_img/  train_label/  [train_label_inter_1/  train_label_inter_2/]
    <root>/test_img/   test_label/   [test_labelref/]

  The files of each folder are sorted (numbers by value: 2.png before 10.png, as the demo's ``{i}.png`` lists) and
  zipped by position; the folders must hold as many files as ``<phase>_img`` and the i-th files the same stem.
  Label maps are ids in ``label_order`` as for ``merged``.

Splits. ``raw`` and ``merged`` use the official partition by the *original CelebA index* (column 2 of the mapping
file; ``face_parsing/Data_preprocessing/g_partition.py``): train < 162 771, val 162 771 … 182 637, test ≥ 182 638
(:data:`SPLIT_RANGES`); ``split="all"`` reads every ``{i}.jpg`` without the mapping file. ``aligned`` reads the
folders of ``phase``.

Samples (keys as :mod:`facezoo.data`), all resized to ``size × size`` (images bilinear with antialiasing, masks
nearest):

- ``image``: ``(3, size, size)`` float in [-1, 1].
- ``mask``: ``(size, size)`` int64 CelebAMask-HQ ids of ``image`` (``aligned`` with ``<phase>_labelref/``: that
  folder, the demo's ``label_ref``, the mask of the reference image).
- ``target_mask``: only ``aligned`` with ``<phase>_labelref/``: ``<phase>_label/``, the demo's ``label`` at test
  time, i.e. the edited mask to render in the style of ``image`` (what MaskGAN's ``predict_batch`` renders).
  There is no ``target`` image (real edits have no ground truth).
- ``inter_mask_1``, ``inter_mask_2``: only ``aligned`` with ``<phase>_label_inter_{1,2}/``: the demo's
  precomputed ``inter_label_1/2``, the two MaskVAE-interpolated masks of Editing Behaviour Simulated Training
  (written by ``scripts/make_inter_masks.py`` from a stage-1 MaskVAE; stage 2 uses them when present, else makes its
  own on the fly).
- ``name`` (str): the image file name.

``scripts/make_synthetic.py --format celebamask-hq`` writes the ``raw`` layout from the built-in renderer.

Example:
    >>> ds = CelebAMaskHQ("data/CelebAMask-HQ", split="train", size=512)          # doctest: +SKIP
    >>> s = ds[0]; s["image"].shape, s["mask"].shape, s["mask"].dtype           # doctest: +SKIP
    (torch.Size([3, 512, 512]), torch.Size([512, 512]), torch.int64)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from facezoo.face.labels import CELEBAMASK_HQ, LABEL_MAPS, convert_labels
from facezoo.face.photo import open_image
from facezoo.utils import FacezooError, atomic_write, check_writable

__all__ = [
    "CelebAMaskHQ",
    "LAYOUTS",
    "PART_ORDER",
    "SPLIT_RANGES",
    "IMAGE_DIR",
    "ANNO_DIR",
    "MAPPING_FILE",
    "MERGED_DIRS",
    "CACHE_DIR",
    "IMAGES_PER_FOLDER",
    "detect_layout",
    "read_mapping",
    "split_of",
    "part_path",
    "read_part",
    "merge_parts",
    "merge_annotation",
    "read_label_map",
]

#: The on-disk layouts :class:`CelebAMaskHQ` reads (module docstring).
LAYOUTS: tuple[str, ...] = ("raw", "merged", "aligned")
#: The images of the release.
IMAGE_DIR = "CelebA-HQ-img"
#: The per-part binary masks of the release, ``{i // 2000}/{i:05d}_{part}.png``.
ANNO_DIR = "CelebAMask-HQ-mask-anno"
#: Images per numbered folder of :data:`ANNO_DIR` (``g_mask.py``: ``folder_num = k // 2000``).
IMAGES_PER_FOLDER = 2000
#: CelebA-HQ index → original CelebA index and file; one header line.
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"
#: Folders of merged label maps looked up by the ``merged`` layout: ``g_partition.py`` reads the first,
#: ``g_mask.py`` writes the second.
MERGED_DIRS: tuple[str, ...] = ("CelebAMask-HQ-label", "CelebAMaskHQ-mask", "CelebAMask-HQ-mask")
#: Default cache of the ``raw`` layout's merged maps (under the root): the folder ``g_mask.py`` writes.
CACHE_DIR = "CelebAMaskHQ-mask"
#: The merge order of ``face_parsing/Data_preprocessing/g_mask.py`` (``label_list``, "list2"): part ``k`` gets id
#: ``k + 1`` and overwrites the parts before it. The ids equal :data:`facezoo.face.labels.CELEBAMASK_HQ`'s.
PART_ORDER: tuple[str, ...] = ("skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                               "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth")
#: ``[start, stop)`` of the original CelebA index of each split (``g_partition.py``).
SPLIT_RANGES: dict[str, tuple[int, int | None]] = {"train": (0, 162771), "val": (162771, 182638),
                                                   "test": (182638, None)}

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_NUMBERED = re.compile(r"^(\d+)\.jpg$")


# ------------------------------------------------------------------------------------------- files
def _listdir(folder: Path) -> list[str]:
    """Visible file names of ``folder`` (one ``scandir``: cheap on the 30 000-file folders)."""
    with os.scandir(folder) as entries:
        return [e.name for e in entries if not e.name.startswith(".") and e.is_file()]


def _natural_key(name: str) -> tuple:
    """Sort key: numeric stems by value first (``2.png`` before ``10.png``), then the other names."""
    stem = Path(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def split_of(orig_index: int) -> str:
    """The official split of an image from its original CelebA index (``g_partition.py``).

    Example:
        >>> [split_of(i) for i in (162770, 162771, 182637, 182638)]
        ['train', 'val', 'val', 'test']
    """
    for name, (start, stop) in SPLIT_RANGES.items():
        if start <= orig_index and (stop is None or orig_index < stop):
            return name
    raise ValueError(f"original CelebA index must be >= 0, got {orig_index}")


def read_mapping(path: str | Path) -> dict[int, int]:
    """Read ``CelebA-HQ-to-CelebA-mapping.txt``: ``{CelebA-HQ index: original CelebA index}``.

    The file has a header line (``idx orig_idx orig_file``) and one whitespace-separated row per image.

    Raises:
        FacezooError: a missing file, a malformed or duplicated row, or no rows (one line naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FacezooError(f"{path}: mapping file not found; the official train/val/test split of CelebAMask-HQ "
                           f"needs it (it ships with the dataset; split='all' reads every image without it)")
    mapping: dict[int, int] = {}
    for line_no, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields or (line_no == 1 and not fields[0].isdigit()):      # blank line or the header
            continue
        if len(fields) < 2 or not fields[0].isdigit() or not fields[1].isdigit():
            raise FacezooError(f"{path} line {line_no}: expected 'idx orig_idx orig_file', got {line.strip()!r}")
        idx, orig = int(fields[0]), int(fields[1])
        if idx in mapping:
            raise FacezooError(f"{path} line {line_no}: CelebA-HQ index {idx} is listed twice")
        mapping[idx] = orig
    if not mapping:
        raise FacezooError(f"{path}: the mapping file lists no image")
    return mapping


def part_path(anno_dir: str | Path, index: int, part: str) -> Path:
    """``<anno_dir>/{index // 2000}/{index:05d}_{part}.png``, the release's file of one part.

    Example:
        >>> part_path("anno", 4321, "hair").as_posix()
        'anno/2/04321_hair.png'
    """
    return Path(anno_dir) / str(index // IMAGES_PER_FOLDER) / f"{index:05d}_{part}.png"


def read_part(path: str | Path) -> np.ndarray:
    """Read one part mask of the release as ``g_mask.py`` does: ``cv2.imread(path)[:, :, 0] != 0``.

    OpenCV's channel 0 is blue; a grey (``L``) PNG has it equal to its single channel.

    Returns:
        ``(H, W)`` bool, True on the part.

    Raises:
        FacezooError: a missing or unreadable file (one line naming it).
    """
    img = open_image(Path(path), "part mask")
    arr = np.asarray(img if img.mode == "L" else img.convert("RGB"))
    return (arr if arr.ndim == 2 else arr[..., 2]) != 0


def merge_parts(parts: Mapping[str, np.ndarray], order: Sequence[str] = PART_ORDER) -> np.ndarray:
    """Merge binary part masks into one CelebAMask-HQ id map, later parts of ``order`` overwriting earlier ones.

    Args:
        parts: part name (:data:`PART_ORDER`) → ``(H, W)`` mask, non-zero on the part; absent parts are skipped.
        order: the painting order; the official one (default) is ``g_mask.py``'s. A part's id is its
            CelebAMask-HQ id whatever the order (official: position in :data:`PART_ORDER` + 1).

    Returns:
        ``(H, W)`` uint8 ids, 0 where no part is on.

    Example:
        >>> skin = np.array([[1, 1, 0]]); hair = np.array([[0, 1, 1]])
        >>> merge_parts({"skin": skin, "hair": hair}).tolist()           # hair (13) is painted after skin (1)
        [[1, 13, 13]]
    """
    unknown = sorted(set(parts) - set(PART_ORDER)) + sorted(set(order) - set(PART_ORDER))
    if unknown:
        raise ValueError(f"unknown CelebAMask-HQ parts {unknown}; the parts are {list(PART_ORDER)}")
    shapes = {np.shape(m) for m in parts.values()}
    if len(shapes) > 1 or any(len(s) != 2 for s in shapes):
        raise ValueError(f"part masks must be 2-D and of one shape, got {sorted(shapes)}")
    merged = np.zeros(shapes.pop() if shapes else (0, 0), np.uint8)
    for part in order:
        if part in parts:
            merged[np.asarray(parts[part]) != 0] = CELEBAMASK_HQ.index(part)
    return merged


def merge_annotation(anno_dir: str | Path, index: int) -> np.ndarray | None:
    """The merged id map of image ``index`` from the release's part files (:func:`merge_parts`, official order).

    Returns:
        ``(H, W)`` uint8 CelebAMask-HQ ids, or None when the image has no part file at all.

    Raises:
        FacezooError: an unreadable part file, or parts of different sizes (one line naming the file).
    """
    parts: dict[str, np.ndarray] = {}
    first: Path | None = None
    for part in PART_ORDER:
        path = part_path(anno_dir, index, part)
        if not path.is_file():                       # g_mask.py: os.path.exists, absent parts are skipped
            continue
        on = read_part(path)
        if first is None:
            first = path
        elif on.shape != next(iter(parts.values())).shape:
            h, w = next(iter(parts.values())).shape
            raise FacezooError(f"{path}: part mask is {on.shape[1]}x{on.shape[0]} but {first.name} is {w}x{h}")
        parts[part] = on
    return merge_parts(parts) if parts else None


def read_label_map(path: str | Path, label_order: str = "celebamask_hq") -> np.ndarray:
    """Read a merged label map (single-channel id PNG) in ``label_order``'s ids and convert it to CelebAMask-HQ ids.

    A 3-channel PNG is accepted when its channels are equal (some tools save grey as RGB).

    Returns:
        ``(H, W)`` int64 CelebAMask-HQ ids.

    Raises:
        FacezooError: a missing or unreadable file, channels that differ, or an id outside ``label_order``'s range
            (one line naming the file).
    """
    path = Path(path)
    scheme = LABEL_MAPS[label_order]
    img = open_image(path, "label map")
    seg = np.asarray(img.convert("RGB") if img.mode not in ("L", "P", "I", "I;16", "RGB") else img)
    if seg.ndim == 3:
        if not (np.array_equal(seg[..., 0], seg[..., 1]) and np.array_equal(seg[..., 0], seg[..., 2])):
            raise FacezooError(f"{path}: a label map must have one channel (or equal RGB channels), got colours")
        seg = seg[..., 0]
    seg = seg.astype(np.int64)
    if seg.size and (int(seg.min()) < 0 or int(seg.max()) >= len(scheme)):
        raise FacezooError(f"{path}: label {int(seg.max())} is not a {scheme.name} id (0-{len(scheme) - 1})")
    return seg if scheme.name == CELEBAMASK_HQ.name else convert_labels(seg, scheme.name, CELEBAMASK_HQ.name)


def detect_layout(root: str | Path) -> str:
    """The layout of a CelebAMask-HQ folder: ``raw`` (the part masks), ``merged`` (images beside one of
    :data:`MERGED_DIRS`) or ``aligned`` (a ``*_label`` folder of the MaskGAN demo), tried in this order.

    Raises:
        FacezooError: none fits (one line listing what each layout needs).
    """
    root = Path(root)
    if (root / ANNO_DIR).is_dir():
        return "raw"
    if (root / IMAGE_DIR).is_dir() and any((root / d).is_dir() for d in MERGED_DIRS):
        return "merged"
    if any((root / f"{phase}_label").is_dir() for phase in ("train", "val", "test")):
        return "aligned"
    raise FacezooError(f"{root}: not a CelebAMask-HQ folder: expected {ANNO_DIR}/ (raw), {IMAGE_DIR}/ beside one of "
                       f"{', '.join(MERGED_DIRS)} (merged) or the MaskGAN demo's train_label/, test_label/ (aligned)")


# ----------------------------------------------------------------------------------------- dataset
class CelebAMaskHQ(Dataset):
    """CelebAMask-HQ faces and masks from the ``raw``, ``merged`` or ``aligned`` layout (module docstring).

    Args:
        root: dataset root.
        split: ``train``, ``val`` or ``test`` (the official partition; ``raw``/``merged`` also ``all``); for
            ``aligned`` the default folder prefix.
        size: side of the returned image and masks (square, as the data).
        layout: ``"raw"``, ``"merged"``, ``"aligned"`` or ``"auto"`` (:func:`detect_layout`; ``merged`` when
            ``mask_dir`` is given).
        label_order: the id scheme of the ``merged``/``aligned`` label maps (:data:`facezoo.face.labels.LABEL_MAPS`);
            ``raw`` merges parts by name and takes only ``"celebamask_hq"``.
        mask_dir: ``merged``: the folder of ``{i}.png`` maps (relative to ``root`` or absolute); None = the first
            existing of :data:`MERGED_DIRS`.
        cache_dir: ``raw``: where merged maps are cached (relative to ``root`` or absolute); None =
            ``<root>/CelebAMaskHQ-mask`` (:data:`CACHE_DIR`).
        phase: ``aligned``: the folder prefix (``train``, ``test``…); None = ``split``.
        length: at most this many samples (the first of the split); None = all.

    Returns (per sample), a dict: ``image`` (3, size, size) in [-1, 1]; ``mask`` (size, size) int64; ``name``;
    with ``aligned``, ``target_mask`` and ``inter_mask_1``/``inter_mask_2`` where their folders exist.

    Raises:
        ValueError: a bad argument (unknown layout, split or label order, ``size < 1``).
        FacezooError: at construction, a missing root, folder, mapping file or listed file, a malformed mapping
            row, aligned folders of different lengths or names, an unwritable cache; when a sample is read, an
            unreadable image or mask, a label outside the scheme, part masks of different sizes, or a mask whose
            aspect ratio is not its image's. Each message is one line naming the file.
    """

    def __init__(self, root: str | Path, split: str = "train", size: int = 512, layout: str = "auto",
                 label_order: str = "celebamask_hq", mask_dir: str | Path | None = None,
                 cache_dir: str | Path | None = None, phase: str | None = None, length: int | None = None):
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise ValueError(f"length must be a positive integer or None, got {length!r}")
        if layout not in (*LAYOUTS, "auto"):
            raise ValueError(f"layout must be one of {[*LAYOUTS, 'auto']}, got {layout!r}")
        if label_order not in LABEL_MAPS:
            raise ValueError(f"label_order must be one of {sorted(LABEL_MAPS)}, got {label_order!r}")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise FacezooError(f"{self.root}: CelebAMask-HQ root directory not found (set data.root=DIR)")
        if layout == "auto":
            layout = "merged" if mask_dir is not None else detect_layout(self.root)
        self.split, self.size, self.layout, self.label_order = split, size, layout, label_order
        self.indices: list[int] = []                      # raw / merged: CelebA-HQ indices of the split
        self.records: list[dict[str, Path]] = []          # aligned: key → file of each sample
        if layout == "aligned":
            self.phase = phase or split
            self._init_aligned()
        else:
            if split not in (*SPLIT_RANGES, "all"):
                raise ValueError(f"split must be one of {[*SPLIT_RANGES, 'all']} for the {layout} layout, "
                                 f"got {split!r}")
            if layout == "raw" and label_order != CELEBAMASK_HQ.name:
                raise ValueError(f"label_order={label_order!r} applies to the merged and aligned layouts; the raw "
                                 f"layout merges its part masks into CelebAMask-HQ ids")
            self.image_dir = self.root / IMAGE_DIR
            self.indices = self._split_indices()
            if layout == "raw":
                self._init_raw(cache_dir)
            else:
                self._init_merged(mask_dir)
        available = len(self.records or self.indices)
        self.length = min(available, length) if length is not None else available

    # --------------------------------------------------------------------------- construction
    def _resolve(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        return path if path.is_absolute() else self.root / path

    def _split_indices(self) -> list[int]:
        if not self.image_dir.is_dir():
            raise FacezooError(f"{self.image_dir}: image folder not found ({self.layout} layout)")
        on_disk = {int(m.group(1)) for m in map(_NUMBERED.match, _listdir(self.image_dir)) if m}
        if self.split == "all":
            indices = sorted(on_disk)
        else:
            mapping = read_mapping(self.root / MAPPING_FILE)
            indices = sorted(i for i, orig in mapping.items() if split_of(orig) == self.split)
            missing = [i for i in indices if i not in on_disk]
            if missing:
                raise FacezooError(f"{self.image_dir / f'{missing[0]}.jpg'}: listed in {MAPPING_FILE} but not found"
                                   + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        if not indices:
            raise FacezooError(f"{self.root}: no {self.split} image ({IMAGE_DIR}/{{i}}.jpg"
                               + ("" if self.split == "all" else f" whose {MAPPING_FILE} row is in that split") + ")")
        return indices

    def _init_raw(self, cache_dir) -> None:
        self.anno_dir = self.root / ANNO_DIR
        if not self.anno_dir.is_dir():
            raise FacezooError(f"{self.anno_dir}: part-mask folder not found (raw layout)")
        for folder in sorted({i // IMAGES_PER_FOLDER for i in self.indices}):
            if not (self.anno_dir / str(folder)).is_dir():
                raise FacezooError(f"{self.anno_dir / str(folder)}: part-mask folder of images "
                                   f"{folder * IMAGES_PER_FOLDER}-{(folder + 1) * IMAGES_PER_FOLDER - 1} not found")
        self.cache_dir = self._resolve(cache_dir if cache_dir is not None else CACHE_DIR)
        cached = set(_listdir(self.cache_dir)) if self.cache_dir.is_dir() else set()
        todo = [i for i in self.indices if f"{i}.png" not in cached]
        if todo:
            try:
                check_writable(self.cache_dir / f"{todo[0]}.png", "cache_dir")
            except FacezooError as err:
                raise FacezooError(f"{err}; the raw layout caches its merged masks there (set "
                                   f"data.dataset.cache_dir=DIR)") from None

    def _init_merged(self, mask_dir) -> None:
        if mask_dir is None:
            found = [d for d in MERGED_DIRS if (self.root / d).is_dir()]
            if not found:
                raise FacezooError(f"{self.root}: no merged mask folder ({', '.join(MERGED_DIRS)}); name yours with "
                                   f"mask_dir=")
            mask_dir = found[0]
        self.mask_dir = self._resolve(mask_dir)
        if not self.mask_dir.is_dir():
            raise FacezooError(f"{self.mask_dir}: merged mask folder not found (merged layout)")
        on_disk = set(_listdir(self.mask_dir))
        missing = [i for i in self.indices if f"{i}.png" not in on_disk]
        if missing:
            raise FacezooError(f"{self.mask_dir / f'{missing[0]}.png'}: label map of {missing[0]}.jpg not found"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))

    def _init_aligned(self) -> None:
        folder = {"image": f"{self.phase}_img"}
        has = {s: (self.root / f"{self.phase}_{s}").is_dir() for s in ("labelref", "label_inter_1", "label_inter_2")}
        if has["labelref"]:                              # test: render <phase>_label in the style of the reference
            folder.update(mask=f"{self.phase}_labelref", target_mask=f"{self.phase}_label")
        else:
            folder["mask"] = f"{self.phase}_label"
        if has["label_inter_1"] != has["label_inter_2"]:
            present, absent = ("1", "2") if has["label_inter_1"] else ("2", "1")
            raise FacezooError(f"{self.root / f'{self.phase}_label_inter_{absent}'}: not found but "
                               f"{self.phase}_label_inter_{present}/ is (the aligned layout needs both or neither)")
        if has["label_inter_1"]:
            folder.update(inter_mask_1=f"{self.phase}_label_inter_1", inter_mask_2=f"{self.phase}_label_inter_2")
        files: dict[str, list[str]] = {}
        for key, name in folder.items():
            path = self.root / name
            if not path.is_dir():
                raise FacezooError(f"{path}: folder not found (aligned layout, phase {self.phase!r}: {self.phase}_img/ "
                                   f"and {self.phase}_label/ are required)")
            suffixes = _IMAGE_SUFFIXES if key == "image" else (".png",)
            files[key] = sorted((n for n in _listdir(path) if n.lower().endswith(suffixes)), key=_natural_key)
            if not files[key]:
                raise FacezooError(f"{path}: no {' / '.join(suffixes)} file")
        images = files["image"]
        for key, names in files.items():
            where = self.root / folder[key]
            if len(names) != len(images):
                raise FacezooError(f"{where}: {len(names)} files but {folder['image']}/ has {len(images)}; the aligned "
                                   f"layout pairs the i-th files of its folders")
            for k, (name, image) in enumerate(zip(names, images)):
                if Path(name).stem != Path(image).stem:
                    raise FacezooError(f"{where / name}: file {k} of the sorted list but {folder['image']}/'s is "
                                       f"{image}; the aligned layout pairs files of one name")
        self.folders = folder
        self.records = [{key: self.root / folder[key] / files[key][k] for key in folder} for k in range(len(images))]

    # --------------------------------------------------------------------------------- reading
    def __len__(self) -> int:
        return self.length

    def merged_mask(self, index: int) -> np.ndarray:
        """``raw``: the merged ``(H, W)`` int64 id map of CelebA-HQ image ``index`` at its file size, from the cache,
        or merged from its part files and cached (atomically) on first use.

        Raises:
            FacezooError: an unreadable part file, parts of different sizes, or a mask whose aspect ratio is not the
                image's (nothing is cached then).
        """
        cached = self.cache_dir / f"{index}.png"
        if cached.is_file():
            return read_label_map(cached)
        merged = merge_annotation(self.anno_dir, index)
        width, height = open_image(self.image_dir / f"{index}.jpg", "image").size
        if merged is None:                               # no part at all: background, at the image's size
            merged = np.zeros((height, width), np.uint8)
        self._check_aspect(merged.shape, str(part_path(self.anno_dir, index, "*")), self.image_dir / f"{index}.jpg",
                           (width, height))
        atomic_write(cached, lambda f: Image.fromarray(merged).save(f, format="PNG"))
        return merged.astype(np.int64)

    def cache_masks(self) -> int:
        """``raw``: merge and cache every not yet cached mask of the split now; returns how many were merged."""
        if self.layout != "raw":
            raise ValueError(f"cache_masks is for the raw layout, this dataset reads the {self.layout} layout")
        todo = [i for i in self.indices if not (self.cache_dir / f"{i}.png").is_file()]
        for i in todo:
            self.merged_mask(i)
        return len(todo)

    def _image(self, path: Path) -> tuple[torch.Tensor, tuple[int, int]]:
        img = open_image(path, "image").convert("RGB")
        size = img.size
        if img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.Resampling.BILINEAR)   # PIL: antialiased
        image = torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1).contiguous() / 127.5 - 1.0
        return image, size

    @staticmethod
    def _check_aspect(shape: tuple[int, ...], where: str, image: Path, image_size: tuple[int, int]) -> None:
        (h, w), (width, height) = shape, image_size
        if h * width != w * height:
            raise FacezooError(f"{where}: mask is {w}x{h} but {image} is {width}x{height} (another aspect ratio)")

    def _mask(self, mask: np.ndarray, where: str, image: Path, image_size: tuple[int, int]) -> torch.Tensor:
        self._check_aspect(mask.shape, where, image, image_size)
        if mask.shape != (self.size, self.size):
            mask = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((self.size, self.size),
                                                                           Image.Resampling.NEAREST))
        return torch.from_numpy(mask.astype(np.int64))

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of length {len(self)}")
        index %= len(self)
        if self.layout == "aligned":
            record = self.records[index]
            image, image_size = self._image(record["image"])
            sample = {"image": image}
            for key, path in record.items():
                if key != "image":
                    sample[key] = self._mask(read_label_map(path, self.label_order), str(path), record["image"],
                                             image_size)
            sample["name"] = record["image"].name
            return sample
        i = self.indices[index]
        path = self.image_dir / f"{i}.jpg"
        image, image_size = self._image(path)
        if self.layout == "raw":
            mask, where = self.merged_mask(i), str(part_path(self.anno_dir, i, "*"))
        else:
            where = str(self.mask_dir / f"{i}.png")
            mask = read_label_map(where, self.label_order)
        return {"image": image, "mask": self._mask(mask, where, path, image_size), "name": path.name}

    def __repr__(self) -> str:
        where = f"phase={self.phase!r}" if self.layout == "aligned" else f"split={self.split!r}"
        return (f"CelebAMaskHQ(root={str(self.root)!r}, layout={self.layout!r}, {where}, size={self.size}, "
                f"length={len(self)})")
