"""Label-map and landmark-scheme registries, and the converters between them.

Every conversion between parsing schemes (CelebAMask-HQ official 19 labels, face-parsing.PyTorch order,
the MT dataset's 14 labels) and between landmark schemes (iBUG-68, 66, 5 points) lives here, so that no
method hard-codes label ids or landmark indices inline.

Example:
    >>> mask = torch.tensor([[0, 1, 17]])                      # face-parsing.PyTorch ids
    >>> convert_labels(mask, "face_parsing_pytorch", "celebamask_hq").tolist()
    [[0, 1, 13]]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "LabelMap",
    "LABEL_MAPS",
    "CELEBAMASK_HQ",
    "FACE_PARSING_PYTORCH",
    "MT",
    "label_lut",
    "convert_labels",
    "CELEBAMASK_HQ_COLORS",
    "colorize_labels",
    "labels_from_colors",
    "IBUG68_PARTS",
    "IBUG68_HFLIP",
    "landmarks_68_to_66",
    "landmarks_68_to_5",
    "LANDMARK_CONVERTERS",
]


@dataclass(frozen=True)
class LabelMap:
    """A parsing scheme: id ``i`` means ``names[i]``.

    Names are shared across schemes (``skin``, ``l_eye``…) so that converting is a lookup by name;
    ``aliases`` maps a name of another scheme onto one of ours where the parts merge (MT's ``face``
    covers CelebAMask-HQ's ``skin``).
    """

    name: str
    names: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()

    def index(self, part: str) -> int:
        """Id of ``part`` (or of the part it is an alias of) in this scheme."""
        alias = dict(self.aliases).get(part, part)
        try:
            return self.names.index(alias)
        except ValueError:
            raise KeyError(f"label map {self.name!r} has no part {part!r}") from None

    def __len__(self) -> int:
        return len(self.names)


# The official CelebAMask-HQ ids (face_parsing/README.md); facezoo's default scheme.
CELEBAMASK_HQ = LabelMap(
    "celebamask_hq",
    ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
     "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"),
)

# zllrunning/face-parsing.PyTorch (BiSeNet) order, used by PSGAN's and many pSp users' preprocessing.
FACE_PARSING_PYTORCH = LabelMap(
    "face_parsing_pytorch",
    ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
     "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat"),
)

# The MT / BeautyGAN makeup dataset's 14 labels (wtjiang98/PSGAN psgan/solver.py comment).
MT = LabelMap(
    "mt",
    ("background", "face", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "u_lip", "mouth", "l_lip",
     "hair", "l_ear", "r_ear", "neck"),
    aliases=(("skin", "face"),),
)

LABEL_MAPS: dict[str, LabelMap] = {m.name: m for m in (CELEBAMASK_HQ, FACE_PARSING_PYTORCH, MT)}


def label_lut(src: str | LabelMap, dst: str | LabelMap) -> np.ndarray:
    """Look-up table ``lut`` with ``dst_id = lut[src_id]``; parts ``dst`` lacks become background (0).

    MT's ``mouth`` label means the inner mouth (teeth), the same part as CelebAMask-HQ's ``mouth``.
    """
    src = LABEL_MAPS[src] if isinstance(src, str) else src
    dst = LABEL_MAPS[dst] if isinstance(dst, str) else dst
    src_aliases = {v: k for k, v in src.aliases}
    lut = np.zeros(len(src), dtype=np.int64)
    for i, part in enumerate(src.names):
        for candidate in (part, src_aliases.get(part)):
            if candidate is None:
                continue
            try:
                lut[i] = dst.index(candidate)
                break
            except KeyError:
                continue
    return lut


def convert_labels(mask: torch.Tensor | np.ndarray, src: str, dst: str):
    """Convert a label map between schemes.

    Args:
        mask: integer label map of any shape, ids in ``src``'s scheme.
        src, dst: scheme names from :data:`LABEL_MAPS`.

    Returns:
        A label map of the same shape and type (tensor or array) with ``dst`` ids.
    """
    lut = label_lut(src, dst)
    if isinstance(mask, torch.Tensor):
        if mask.numel() and int(mask.max()) >= len(lut):
            raise ValueError(f"label {int(mask.max())} is out of range for scheme {src!r}")
        return torch.as_tensor(lut, device=mask.device)[mask.long()]
    mask = np.asarray(mask)
    if mask.size and int(mask.max()) >= len(lut):
        raise ValueError(f"label {int(mask.max())} is out of range for scheme {src!r}")
    return lut[mask]


#: One RGB colour (0-255) per CelebAMask-HQ id, for pictures of label maps (sample grids, MaskVAE outputs):
#: background, skin, nose, eye_g, l_eye, r_eye, l_brow, r_brow, l_ear, r_ear, mouth, u_lip, l_lip, hair, hat,
#: ear_r, neck_l, neck, cloth. The colours are pairwise distinct, so :func:`labels_from_colors` inverts them.
CELEBAMASK_HQ_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (204, 153, 102), (255, 200, 0), (255, 255, 255), (0, 120, 255), (0, 220, 255),
    (120, 60, 0), (180, 100, 30), (255, 0, 120), (200, 0, 200), (60, 0, 0), (255, 40, 40),
    (160, 0, 60), (90, 50, 160), (0, 160, 80), (0, 255, 0), (150, 150, 0), (230, 120, 90),
    (60, 90, 140),
)


def _palette(colors, device) -> torch.Tensor:
    """``(K, 3)`` float palette in [-1, 1] (the image convention)."""
    return torch.tensor(colors, dtype=torch.float32, device=device) / 127.5 - 1.0


def colorize_labels(mask: torch.Tensor, colors=CELEBAMASK_HQ_COLORS) -> torch.Tensor:
    """A label map as a colour image: each id gets its colour from ``colors``.

    Args:
        mask: integer ids in ``[0, len(colors) - 1]``.
        colors: RGB triples 0-255, one per id (default :data:`CELEBAMASK_HQ_COLORS`).

    Returns:
        the picture in [-1, 1] (the image convention of facezoo).

    Shape:
        - mask: :math:`(B, H, W)` int64
        - output: :math:`(B, 3, H, W)` float32

    Example:
        >>> colorize_labels(torch.tensor([[[0, 3]]]))[0, :, 0].tolist()
        [[-1.0, 1.0], [-1.0, 1.0], [-1.0, 1.0]]
    """
    if not isinstance(mask, torch.Tensor) or mask.ndim != 3 or mask.dtype.is_floating_point:
        shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"mask must be an integer (B, H, W) label map, got {shape}")
    if mask.numel() and (int(mask.min()) < 0 or int(mask.max()) >= len(colors)):
        raise ValueError(f"mask ids must lie in [0, {len(colors) - 1}], got [{int(mask.min())}, {int(mask.max())}]")
    return _palette(colors, mask.device)[mask.long()].permute(0, 3, 1, 2).contiguous()


def labels_from_colors(image: torch.Tensor, colors=CELEBAMASK_HQ_COLORS) -> torch.Tensor:
    """The inverse of :func:`colorize_labels`: each pixel gets the id of the nearest palette colour.

    Args:
        image: a colour picture of a label map in [-1, 1] (exact palette colours give exact ids).
        colors: the palette (default :data:`CELEBAMASK_HQ_COLORS`).

    Returns:
        int64 ids.

    Shape:
        - image: :math:`(B, 3, H, W)`
        - output: :math:`(B, H, W)`

    Example:
        >>> mask = torch.tensor([[[0, 13], [1, 18]]])
        >>> torch.equal(labels_from_colors(colorize_labels(mask)), mask)
        True
    """
    if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"image must have shape (B, 3, H, W), got {shape}")
    palette = _palette(colors, image.device).to(image.dtype)                   # (K, 3)
    dist = (image[:, None] - palette[None, :, :, None, None]).square().sum(2)  # (B, K, H, W)
    return dist.argmin(1)


# --------------------------------------------------------------------------------------- landmarks
# iBUG-68 groups, by image side ("left" = image left = the subject's right).
IBUG68_PARTS: dict[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "left_brow": tuple(range(17, 22)),
    "right_brow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose_lower": tuple(range(31, 36)),
    "left_eye": tuple(range(36, 42)),
    "right_eye": tuple(range(42, 48)),
    "outer_lip": tuple(range(48, 60)),
    "inner_lip": tuple(range(60, 68)),
}


def _hflip_permutation() -> tuple[int, ...]:
    pairs = [(i, 16 - i) for i in range(17)]                         # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]                    # brows
    pairs += [(27 + i, 27 + i) for i in range(4)]                    # nose bridge
    pairs += [(31 + i, 35 - i) for i in range(5)]                    # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]   # eyes
    pairs += [(48 + i, (54 - i) if i <= 6 else 66 - i) for i in range(12)]
    pairs += [(60 + i, (64 - i) if i <= 4 else (72 - i)) for i in range(8)]
    perm = [0] * 68
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


#: ``flipped_landmarks = landmarks[..., IBUG68_HFLIP, :]`` after mirroring x keeps each index's meaning.
IBUG68_HFLIP: tuple[int, ...] = _hflip_permutation()


def landmarks_68_to_66(landmarks):
    """iBUG-68 → the 66-point scheme (GANnotation, 300VW/CMU): drops the inner mouth corners 60 and 64.

    Shape: ``(..., 68, D)`` → ``(..., 66, D)``.
    """
    keep = [i for i in range(68) if i not in (60, 64)]
    if landmarks.shape[-2] != 68:
        raise ValueError(f"expected 68 landmarks, got shape {tuple(landmarks.shape)}")
    return landmarks[..., keep, :]


def landmarks_68_to_5(landmarks):
    """iBUG-68 → 5 points: image-left eye centre, image-right eye centre, nose tip, mouth corners.

    Eye centres are the means of points 36-41 and 42-47; nose tip 30; mouth corners 48 and 54.
    Shape: ``(..., 68, 2)`` → ``(..., 5, 2)``; works on tensors and arrays.
    """
    if landmarks.shape[-2] != 68:
        raise ValueError(f"expected 68 landmarks, got shape {tuple(landmarks.shape)}")
    left_eye = landmarks[..., 36:42, :].mean(-2)
    right_eye = landmarks[..., 42:48, :].mean(-2)
    rest = landmarks[..., [30, 48, 54], :]
    if isinstance(landmarks, torch.Tensor):
        return torch.cat([left_eye[..., None, :], right_eye[..., None, :], rest], dim=-2)
    return np.concatenate([left_eye[..., None, :], right_eye[..., None, :], rest], axis=-2)


LANDMARK_CONVERTERS = {("ibug68", "ibug66"): landmarks_68_to_66, ("ibug68", "five"): landmarks_68_to_5}
