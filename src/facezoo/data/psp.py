"""pSp's data: the encoder's source and the face the decoder should produce, for each of pSp's tasks.

Every sample is a dict with ``image`` = the encoder's input (``C_in`` channels, :data:`TASK_CHANNELS`) and
``target`` = the RGB face ``(3, S, S)`` in [-1, 1] that pSp's losses compare the decoder's output with
(``eladrich/pixel2style2pixel: datasets/images_dataset.py`` returns ``(from_im, to_im)``). What the source is, by
task (``configs/transforms_config.py``, ``configs/data_configs.py``):

============  ========  ===========================================================================
task          ``C_in``  source
============  ========  ===========================================================================
encode        3         the target itself (``ffhq_encode``: ``transform_source = None``)
frontalize    3         the same face at another yaw; the target is frontal (the official fakes the
                        pair by flipping one FFHQ image twice, facezoo renders the true frontal view)
sketch2face   1         :func:`sketch` of the target (``celebs_sketch_to_face``)
seg2face      19        :func:`one_hot_labels` of the target's CelebAMask-HQ parsing (``celebs_seg_to_face``)
superres      3         :func:`degrade` of the target by a random factor (``celebs_super_resolution``)
============  ========  ===========================================================================

Two datasets make them: :class:`SyntheticPSP` renders them (facezoo's built-in faces, the same faces a StyleGAN2
trained on :class:`~facezoo.data.synthetic.SyntheticFaces` has seen), :class:`PairedFolders` reads a folder of
sources and a folder of targets paired by sorted order (the official ``ImagesDataset``). :class:`PSPDataModule`
is the :class:`~facezoo.data.datamodule.FaceDataModule` of ``conf/data/synthetic_psp.yaml`` and
``conf/data/paired_folders.yaml``: it also takes their config-level keys (``task``, ``source_root``,
``target_root``) and checks that the dataset's input channels fit the task.

Sources are in facezoo's image convention: a sketch or a grey source in [-1, 1], a one-hot map in {0, 1}. The
official feeds its sketch (and grey) sources in [0, 1] (``SketchToImageTransforms``: ``ToTensor`` without
``Normalize``): an official sketch release wants ``(x + 1) / 2`` of facezoo's sketches.

Example:
    >>> ds = SyntheticPSP(task="superres", size=32, length=4, num_identities=2)
    >>> s = ds[0]
    >>> s["image"].shape, s["target"].shape, int(s["factor"]) in ds.factors
    (torch.Size([3, 32, 32]), torch.Size([3, 32, 32]), True)
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from kornia.color import rgb_to_grayscale
from kornia.filters import filter2d, get_sobel_kernel2d
from PIL import Image
from torch.utils.data import Dataset

from facezoo.data.datamodule import FaceDataModule
from facezoo.data.folder import IMAGE_SUFFIXES, split_of
from facezoo.data.synthetic import SPLITS, FaceParams, Pose, SyntheticFaces, _add, sample_face
from facezoo.face.labels import CELEBAMASK_HQ, LABEL_MAPS, convert_labels
from facezoo.face.photo import center_crop, image_to_tensor, read_photo, resize
from facezoo.utils import FacezooError

__all__ = ["TASK_CHANNELS", "TASKS", "input_channels", "sketch", "one_hot_labels", "degrade", "read_label_map",
           "SyntheticPSP", "PairedFolders", "PSPDataModule"]

#: pSp's tasks and the encoder's input channels they need (the official ``--input_nc``: 3 RGB, 1 sketch,
#: 19 one-hot CelebAMask-HQ labels).
TASK_CHANNELS: dict[str, int] = {"encode": 3, "frontalize": 3, "sketch2face": 1, "seg2face": 19, "superres": 3}

#: The task names, in the order of :data:`TASK_CHANNELS`.
TASKS: tuple[str, ...] = tuple(TASK_CHANNELS)

#: The official super-resolution factors (``configs/transforms_config.py: SuperResTransforms``).
DEFAULT_FACTORS: tuple[int, ...] = (1, 2, 4, 8, 16, 32)


def input_channels(task: str) -> int:
    """The encoder's input channels for ``task`` (:data:`TASK_CHANNELS`).

    Example:
        >>> input_channels("seg2face"), input_channels("sketch2face")
        (19, 1)
    """
    if task not in TASK_CHANNELS:
        raise ValueError(f"unknown pSp task {task!r}; use one of {', '.join(TASKS)}")
    return TASK_CHANNELS[task]


# ------------------------------------------------------------------------------------------ pure functions
def _batched(x: torch.Tensor, name: str, channels: Sequence[int] | None = None) -> tuple[torch.Tensor, bool]:
    """``(C, H, W)`` or ``(B, C, H, W)`` → ``(B, C, H, W)`` and whether the input had no batch dimension."""
    if not isinstance(x, torch.Tensor) or x.ndim not in (3, 4):
        raise ValueError(f"{name} expects a (C, H, W) or (B, C, H, W) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    single = x.ndim == 3
    x = x[None] if single else x
    if channels is not None and x.shape[1] not in channels:
        raise ValueError(f"{name} expects {' or '.join(map(str, channels))} channels, got {x.shape[1]}")
    return x, single


def _round_half_up(x: torch.Tensor) -> torch.Tensor:
    """Rounding as OpenCV's fixed-point colour conversion and blur do it (ties up, not to even)."""
    return torch.floor(x + 0.5)


def _sobel_magnitude_u8(x: torch.Tensor) -> torch.Tensor:
    """OpenCV's ``Sobel(x, CV_8U, 0, 1) | Sobel(x, CV_8U, 1, 0)`` on 0..255 integers: the positive parts of the
    vertical and horizontal 3×3 Sobel responses, saturated to 0..255, bitwise OR-ed."""
    kernels = get_sobel_kernel2d().to(x)                                       # (2, 3, 3): d/dx, d/dy
    responses = [filter2d(x, k[None], border_type="reflect").round().clamp(0, 255).to(torch.uint8)
                 for k in kernels]
    return torch.bitwise_or(*responses).to(x.dtype)


def sketch(image: torch.Tensor) -> torch.Tensor:
    """pSp's sketch of a face: dark edge strokes on a white background, one channel.

    The recipe of ``eladrich/pixel2style2pixel: scripts/generate_sketch_data.py`` (``sketch``), on 8-bit values
    as the official runs it with OpenCV:

    1. grey = ``round(0.299 R + 0.587 G + 0.114 B)`` (``cv2.COLOR_BGR2GRAY``);
    2. ``f = round(blur(grey))`` with the 3×3 Gaussian OpenCV uses for ``GaussianBlur(…, (3, 3), 0)``,
       the binomial ``[1, 2, 1] / 4`` in each direction, reflect-101 borders;
    3. edges ``e(f) = Sobel_y⁺(f) | Sobel_x⁺(f)``: the 3×3 Sobel responses (kornia's kernels), negative parts
       cut to 0, saturated to 255, bitwise OR (``cv2.Sobel(…, cv2.CV_8U, …)``, ``cv2.bitwise_or``);
    4. the same on the inverted image ``255 − f`` (its positive responses are ``f``'s negative ones), so
       edges of both signs count;
    5. ``sketch = 255 − sat(round(0.75 e(f) + 0.75 e(255 − f)))`` (``cv2.addWeighted``), mapped to [-1, 1].

    The official then cleans these edge maps with Simo-Serra et al.'s sketch-simplification network
    (``sketch_gan.t7``, not redistributable here); facezoo's sketches are the maps before that step.

    Args:
        image: RGB in [-1, 1] (or an already grey single channel).

    Returns:
        The sketch in [-1, 1]: 1 where the image is flat, lower (down to -1) on edges.

    Shape:
        - Input: :math:`(3, H, W)` or :math:`(B, 3, H, W)` (or 1 channel).
        - Output: :math:`(1, H, W)` or :math:`(B, 1, H, W)`.

    Example:
        >>> flat = torch.zeros(3, 16, 16)
        >>> bool((sketch(flat) == 1).all())
        True
    """
    x, single = _batched(image, "sketch", (1, 3))
    x = x.float()
    u8 = ((x.clamp(-1, 1) + 1) * 127.5).round()                             # the 8-bit picture
    grey = _round_half_up(rgb_to_grayscale(u8)) if u8.shape[1] == 3 else u8
    binomial = torch.tensor([1.0, 2.0, 1.0], device=x.device) / 4
    f = _round_half_up(filter2d(grey, torch.outer(binomial, binomial)[None], border_type="reflect"))
    edges = 0.75 * _sobel_magnitude_u8(f) + 0.75 * _sobel_magnitude_u8(255 - f)
    out = (255 - edges.round().clamp(0, 255)) / 127.5 - 1
    return out[0] if single else out


def one_hot_labels(mask: torch.Tensor, num_classes: int = 19) -> torch.Tensor:
    """A label map as one channel per label (pSp's ``datasets/augmentations.py: ToOneHot``).

    Args:
        mask: integer ids in ``[0, num_classes)`` (CelebAMask-HQ ids for pSp's 19 classes).
        num_classes: channels of the output.

    Returns:
        float in {0, 1}; the channels sum to 1 at every pixel.

    Shape:
        - Input: :math:`(H, W)` or :math:`(B, H, W)`.
        - Output: :math:`(C, H, W)` or :math:`(B, C, H, W)` with :math:`C` = ``num_classes``.

    Example:
        >>> one_hot_labels(torch.tensor([[0, 2]]), 3)[:, 0].tolist()
        [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
    """
    if not isinstance(mask, torch.Tensor) or mask.ndim not in (2, 3):
        raise ValueError(f"one_hot_labels expects an (H, W) or (B, H, W) label map, got "
                         f"{tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__}")
    if mask.is_floating_point() or mask.is_complex() or mask.dtype == torch.bool:
        raise ValueError(f"one_hot_labels expects integer ids, got {mask.dtype}")
    if mask.numel() and (int(mask.min()) < 0 or int(mask.max()) >= num_classes):
        raise ValueError(f"label ids {int(mask.min())}..{int(mask.max())} are outside [0, {num_classes})")
    return F.one_hot(mask.long(), num_classes).movedim(-1, -3).float()


def degrade(image: torch.Tensor, factor: int, upsample: str = "bilinear") -> torch.Tensor:
    """pSp's super-resolution input: the image down-sampled by ``factor`` and resized back to its size.

    ``eladrich/pixel2style2pixel: datasets/augmentations.py: BilinearResize`` down-samples with ``BicubicDownSample``
    (a bicubic kernel, ``a = -0.5``, stretched by ``factor``: antialiased bicubic) to ``H // factor``, then
    ``transforms.Resize`` brings it back up, bilinearly (torchvision's default). Here the down-sampling is
    ``F.interpolate(mode="bicubic", antialias=True)`` (the same kernel; the borders are renormalised instead of
    reflect-padded) and the up-sampling ``upsample`` (``"bilinear"``: the official; ``"bicubic"``). Differences
    from the official: ``factor = 1`` is the identity (the official's 4-tap kernel shifts the image by half a
    pixel and blurs it slightly), and the low-resolution image is not rounded to 8 bits in between.

    Args:
        image: in [-1, 1].
        factor: positive integer, at most the image's shorter side.
        upsample: ``"bilinear"`` or ``"bicubic"``.

    Returns:
        Same shape, clamped to [-1, 1].

    Shape:
        - Input: :math:`(C, H, W)` or :math:`(B, C, H, W)`.
        - Output: same.

    Example:
        >>> x = torch.rand(3, 32, 32) * 2 - 1
        >>> torch.equal(degrade(x, 1), x), degrade(x, 8).shape
        (True, torch.Size([3, 32, 32]))
    """
    x, single = _batched(image, "degrade")
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"degrade factor must be a positive integer, got {factor!r}")
    if upsample not in ("bilinear", "bicubic"):
        raise ValueError(f"upsample must be 'bilinear' or 'bicubic', got {upsample!r}")
    factor = int(factor)
    h, w = x.shape[-2:]
    if factor > min(h, w):
        raise ValueError(f"degrade factor {factor} is larger than the {w}x{h} image")
    if factor == 1:
        return image.clamp(-1, 1)
    low = F.interpolate(x, size=(h // factor, w // factor), mode="bicubic", antialias=True, align_corners=False)
    low = low.clamp(-1, 1)                                                  # the official clamps it to [0, 1]
    out = F.interpolate(low, size=(h, w), mode=upsample, align_corners=False).clamp(-1, 1)
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------- synthetic
class SyntheticPSP(SyntheticFaces):
    """pSp's pairs from facezoo's synthetic faces.

    The target of sample ``i`` is :class:`~facezoo.data.synthetic.SyntheticFaces`' sample ``i`` (same seed, split
    and view, so for ``encode`` ``target`` is that dataset's ``image``), except for ``frontalize``, where the face
    is drawn with yaw in ``frontalize_yaw_range`` and the target is the same face with ``pose = Pose()``, rendered
    with the same camera and zoom (the framing of the plain faces a StyleGAN2 decoder learnt). Everything stays a
    pure function of ``(seed, split, index)``; a super-resolution factor comes from the sample's own stream 1.

    Args:
        split, size, length, num_identities, seed, supersample, yaw_range, makeup, zoom: as
            :class:`~facezoo.data.synthetic.SyntheticFaces`.
        task: one of :data:`TASKS`.
        factors: down-sampling factors of ``superres``, one drawn uniformly per sample.
        frontalize_yaw_range: yaw interval of the sources of ``frontalize`` (degrees).

    Sample keys: ``image`` (``(C_in, S, S)``: :data:`TASK_CHANNELS`), ``target`` ``(3, S, S)`` in [-1, 1],
    ``identity``; ``landmarks``, ``mask``, ``pose`` of ``image`` (and of ``target``: the same face except for
    ``frontalize``); for ``frontalize`` also ``target_landmarks``, ``target_mask``, ``target_pose`` (zeros); for
    ``superres`` ``factor`` (int64).
    """

    def __init__(self, split: str = "train", size: int = 128, length: int = 10000, num_identities: int = 200,
                 seed: int = 0, supersample: int = 2, yaw_range: Sequence[float] = (-30.0, 30.0),
                 makeup: float = 0.3, zoom: float = 0.85, task: str = "encode",
                 factors: Sequence[int] = DEFAULT_FACTORS,
                 frontalize_yaw_range: Sequence[float] = (-60.0, 60.0)):
        super().__init__(split, size, length, num_identities, seed, supersample, yaw_range, makeup, zoom)
        self.input_nc = input_channels(task)
        self.task = task
        self.factors = tuple(int(f) for f in factors)
        if not self.factors or min(self.factors) < 1:
            raise ValueError(f"factors must be positive integers, got {tuple(factors)}")
        if task == "superres" and max(self.factors) > self.size:
            raise ValueError(f"factor {max(self.factors)} is larger than the {self.size} px images (data.size)")
        lo, hi = (float(v) for v in frontalize_yaw_range)
        if not -90 <= lo <= hi <= 90:
            raise ValueError(f"frontalize_yaw_range must satisfy -90 <= low <= high <= 90, got "
                             f"{tuple(frontalize_yaw_range)}")
        self.frontalize_yaw_range = (lo, hi)

    def params(self, index: int) -> FaceParams:
        """The :class:`~facezoo.data.synthetic.FaceParams` of the source of sample ``index``."""
        if self.task != "frontalize":
            return super().params(index)
        index = self._check(index)
        return sample_face(self.rng(index), self.identity(index % self.num_identities), self.frontalize_yaw_range,
                           self.makeup_prob)

    def factor(self, index: int) -> int:
        """The super-resolution factor of sample ``index`` (drawn from its stream 1)."""
        index = self._check(index)
        return self.factors[int(self.rng(index, stream=1).integers(len(self.factors)))]

    def __getitem__(self, index: int) -> dict:
        if self.task == "frontalize":
            return self._frontalize_sample(index)
        sample = super().__getitem__(index)
        face = sample["target"] = sample.pop("image")
        if self.task == "encode":
            sample["image"] = face.clone()
        elif self.task == "sketch2face":
            sample["image"] = sketch(face)
        elif self.task == "seg2face":
            sample["image"] = one_hot_labels(sample["mask"], len(CELEBAMASK_HQ))
        else:                                                          # superres
            factor = self.factor(index)
            sample["image"] = degrade(face, factor)
            sample["factor"] = torch.tensor(factor, dtype=torch.int64)
        return sample

    def _frontalize_sample(self, index: int) -> dict:
        p = self.params(index)
        sample = {"identity": torch.tensor(p.identity.id, dtype=torch.int64)}
        _add(sample, "", self._render(p, zoom=self.zoom), p.pose)
        frontal = p.replace(pose=Pose())
        _add(sample, "target", self._render(frontal, zoom=self.zoom), frontal.pose)
        return sample


# ----------------------------------------------------------------------------------------------- folders
def read_label_map(path: str | Path, label_order: str = "celebamask_hq") -> np.ndarray:
    """A label-map file (one channel of integer ids in ``label_order``) as CelebAMask-HQ ids.

    Args:
        path: a PNG (or any lossless picture) of ids: mode ``L``, ``P`` (the palette indices are the ids), ``I``/
            16-bit, or RGB/RGBA whose colour channels are equal.
        label_order: the scheme of the ids, a name of :data:`facezoo.face.labels.LABEL_MAPS`.

    Returns:
        ``(H, W)`` uint8 CelebAMask-HQ ids (:func:`facezoo.face.labels.convert_labels`).

    Raises:
        FacezooError: missing or unreadable file, a colour picture, ids outside ``label_order`` (one line naming
            the file).
    """
    if label_order not in LABEL_MAPS:
        raise ValueError(f"unknown label_order {label_order!r}; use one of {', '.join(LABEL_MAPS)}")
    path = Path(path)
    if not path.is_file():
        raise FacezooError(f"{path}: no such file")
    try:
        with Image.open(path) as img:
            img.load()
            ids = np.asarray(img).astype(np.int64)
    except Exception as err:                                 # not an image, truncated, unsupported
        raise FacezooError(f"{path}: cannot read the label map ({type(err).__name__}: "
                           f"{' '.join(str(err).split())[:120]})") from None
    if ids.ndim == 3:
        ids = ids[..., :3] if ids.shape[2] >= 3 else ids[..., :1]          # drop alpha
        if not (ids == ids[..., :1]).all():
            raise FacezooError(f"{path}: a colour picture, not a label map; give one channel of integer ids "
                               f"({label_order} order)")
        ids = ids[..., 0]
    n = len(LABEL_MAPS[label_order])
    if ids.size == 0 or ids.min() < 0 or ids.max() >= n:
        raise FacezooError(f"{path}: label ids {int(ids.min())}..{int(ids.max())} are outside label_order "
                           f"{label_order} (0..{n - 1})")
    return np.asarray(convert_labels(ids, label_order, "celebamask_hq"), np.uint8)


def _center_crop_labels(ids: np.ndarray, size: int) -> np.ndarray:
    """:func:`facezoo.face.photo.center_crop`'s geometry with nearest-neighbour resizing (label maps)."""
    h, w = ids.shape
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    ids = resize(ids, (new_h, new_w), "nearest")
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return ids[top:top + size, left:left + size]


def _image_files(root: Path, key: str) -> list[Path]:
    if not root.is_dir():
        raise FacezooError(f"{root}: no such image folder (data.{key})")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FacezooError(f"{root}: no images in the folder (data.{key}; suffixes {', '.join(IMAGE_SUFFIXES)})")
    return files


class PairedFolders(Dataset):
    """Sources and targets from two folders, paired by sorted order (pSp's ``datasets/images_dataset.py``).

    Both folders are searched recursively for images (:data:`facezoo.data.folder.IMAGE_SUFFIXES`); the ``i``-th
    source in sorted path order goes with the ``i``-th target. Unlike the official ``ImagesDataset``, which zips
    silently, different counts are an error. Both are resized (shorter side) and centre-cropped to ``size``
    (:func:`facezoo.face.photo.center_crop`). The split of a pair is :func:`facezoo.data.folder.split_of` of the
    target's path relative to ``target_root``, so adding pairs never moves the others.

    Args:
        source_root, target_root: the folders (the same folder for ``encode``).
        split: ``"train"``, ``"val"`` or ``"test"``.
        size: output side.
        source_channels: 3 (RGB, in [-1, 1]), 1 (read as grey, ``Image.convert("L")`` as the official does for
            sketches, in [-1, 1]) or 19 (label maps: one channel of integer ids in ``label_order``, converted to
            CelebAMask-HQ ids, resized with nearest neighbours, one-hot).
        label_order: scheme of the label maps' ids (:data:`facezoo.face.labels.LABEL_MAPS`).
        val_fraction, test_fraction: shares of the pairs held out.
        length: use only the first ``length`` pairs of the split (``None``: all).
        factors: when given, the (RGB) source is :func:`degrade` d by one of these factors, drawn from a hash of
            its path and ``seed`` (the official ``celebs_super_resolution`` degrades the targets on the fly:
            ``source_root = target_root``).
        seed: seed of the factor draws.

    Sample keys: ``image`` ``(source_channels, size, size)``, ``target`` ``(3, size, size)`` in [-1, 1], ``name``
    (target path relative to ``target_root``), ``source_name``; ``mask`` ``(size, size)`` int64 CelebAMask-HQ ids
    for label-map sources; ``factor`` (int64) with ``factors``.

    Raises:
        FacezooError: a missing or empty folder, different numbers of sources and targets, no pair in the split,
            and (when a sample is read) an unreadable picture or label ids outside ``label_order`` (one line naming
            the folder or file).
    """

    def __init__(self, source_root: str, target_root: str, split: str = "train", size: int = 256,
                 source_channels: int = 3, label_order: str = "celebamask_hq", val_fraction: float = 0.01,
                 test_fraction: float = 0.01, length: int | None = None, factors: Sequence[int] | None = None,
                 seed: int = 0):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        if source_channels not in (1, 3, 19):
            raise ValueError(f"source_channels must be 1 (grey), 3 (RGB) or 19 (label maps), got {source_channels}")
        if label_order not in LABEL_MAPS:
            raise ValueError(f"unknown label_order {label_order!r}; use one of {', '.join(LABEL_MAPS)}")
        if factors is not None and (source_channels != 3 or not factors or min(int(f) for f in factors) < 1):
            raise ValueError(f"factors (super-resolution) need RGB sources and positive factors, got {factors} with "
                             f"source_channels={source_channels}")
        if factors is not None and max(int(f) for f in factors) > int(size):
            raise ValueError(f"factor {max(int(f) for f in factors)} is larger than the {size} px images (data.size)")
        self.source_root, self.target_root = Path(source_root), Path(target_root)
        self.split, self.size, self.seed = split, int(size), int(seed)
        self.source_channels = self.input_nc = int(source_channels)
        self.label_order = label_order
        self.factors = tuple(int(f) for f in factors) if factors is not None else None
        sources = _image_files(self.source_root, "source_root")
        targets = _image_files(self.target_root, "target_root")
        if len(sources) != len(targets):
            raise FacezooError(f"{self.source_root}: {len(sources)} source images but {self.target_root} has "
                               f"{len(targets)} targets; pairs go by sorted order, so the counts must be equal")
        fractions = {"val": val_fraction, "test": test_fraction}
        self.pairs = [(s, t) for s, t in zip(sources, targets)
                      if split_of(t.relative_to(self.target_root).as_posix(), fractions) == split]
        if length is not None:
            self.pairs = self.pairs[:int(length)]
        if not self.pairs:
            raise FacezooError(f"{self.target_root}: no {split} pairs ({len(targets)} pairs in all)")

    def __len__(self) -> int:
        return len(self.pairs)

    def factor(self, index: int) -> int:
        """The super-resolution factor of pair ``index`` (needs ``factors``)."""
        if self.factors is None:
            raise ValueError("this PairedFolders has no super-resolution factors")
        name = self.pairs[index][1].relative_to(self.target_root).as_posix()
        draw = int(hashlib.sha1(f"{self.seed}/{name}".encode()).hexdigest()[:12], 16)
        return self.factors[draw % len(self.factors)]

    def _source(self, path: Path, sample: dict) -> torch.Tensor:
        if self.source_channels == 19:
            ids = _center_crop_labels(read_label_map(path, self.label_order), self.size)
            sample["mask"] = torch.from_numpy(np.array(ids, np.int64))
            return one_hot_labels(sample["mask"], len(CELEBAMASK_HQ))
        rgb = read_photo(path, min_side=1)
        if self.source_channels == 1:
            grey = center_crop(np.asarray(Image.fromarray(rgb).convert("L")), self.size)
            return torch.from_numpy(grey.astype(np.float32))[None] / 127.5 - 1
        return image_to_tensor(center_crop(rgb, self.size))[0]

    def __getitem__(self, index: int) -> dict:
        source, target = self.pairs[index]
        sample = {"target": image_to_tensor(center_crop(read_photo(target), self.size))[0]}
        sample["image"] = self._source(source, sample)
        if self.factors is not None:
            factor = self.factor(index)
            sample["image"] = degrade(sample["image"], factor)
            sample["factor"] = torch.tensor(factor, dtype=torch.int64)
        sample["name"] = target.relative_to(self.target_root).as_posix()
        sample["source_name"] = source.relative_to(self.source_root).as_posix()
        return sample


# ------------------------------------------------------------------------------------------- data module
class PSPDataModule(FaceDataModule):
    """:class:`~facezoo.data.datamodule.FaceDataModule` for pSp's data configs.

    It takes the config-level keys ``conf/data/synthetic_psp.yaml`` and ``conf/data/paired_folders.yaml``
    interpolate into their dataset (``data.task``, ``data.source_root``, ``data.target_root``, so that
    ``data.task=sketch2face`` works), and checks that the datasets it builds give the encoder the channels the
    task needs.

    Args:
        dataset, splits, size, num_classes, batch_size, num_workers, seed, pin_memory, root: as
            :class:`~facezoo.data.datamodule.FaceDataModule`.
        task: one of :data:`TASKS`; ``input_nc`` is its :data:`TASK_CHANNELS`.
        source_root, target_root: the folders of :class:`PairedFolders` (only used through interpolation).

    Raises:
        ValueError: an unknown task, or a dataset whose ``input_nc`` differs from the task's (one line).
    """

    def __init__(self, dataset, splits=None, task: str = "encode", source_root: str | None = None,
                 target_root: str | None = None, **kwargs):
        super().__init__(dataset, splits, **kwargs)
        self.task, self.input_nc = task, input_channels(task)
        self.source_root, self.target_root = source_root, target_root

    def dataset(self, split: str) -> Dataset:
        ds = super().dataset(split)
        channels = getattr(ds, "input_nc", self.input_nc)
        if channels != self.input_nc:
            raise ValueError(f"data.task={self.task} needs {self.input_nc} input channels, but the {split} dataset "
                             f"gives {channels} (data.dataset.source_channels)")
        return ds
