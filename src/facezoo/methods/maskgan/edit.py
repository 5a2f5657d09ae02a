"""Mask edits without drawing: the common changes a MaskGAN user paints by hand, as functions on label maps.

MaskGAN renders a face from an edited semantic mask (CelebAMask-HQ's 19 labels,
:data:`facezoo.face.labels.CELEBAMASK_HQ`); its demo (``MaskGAN_demo/demo.py``) has the user paint the edit in a
GUI. These helpers make the usual edits in code, for tests, notebooks and the evaluation:

* :func:`grow` / :func:`shrink`: widen or narrow a part by ``pixels`` (bigger lips, thinner brows, longer hair),
  taking pixels only from the parts named in ``into`` / giving them to ``fill``;
* :func:`transplant`: a part of another mask in place of this mask's (another person's eyes or hair);
* :func:`interpolate`: a blend of two masks through MaskVAE's latent space (the paper's mask interpolation).

Parts are CelebAMask-HQ names (``"u_lip"``), groups of them (:data:`PART_GROUPS`: ``"lips"``, ``"eyes"``,
``"brows"``, ``"ears"``) or ids. Masks are ``(H, W)`` or ``(B, H, W)`` int64 tensors of ids; every helper returns a
new mask of the same shape and leaves its input alone.

Example:
    >>> mask = torch.zeros(8, 8, dtype=torch.long); mask[2:6, 2:6] = 1; mask[4, 3:5] = 12      # skin, a lower lip
    >>> int((grow(mask, "lips", 1, into="skin") == 12).sum()), int((mask == 12).sum())
    (12, 2)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from facezoo.face.labels import CELEBAMASK_HQ

__all__ = ["PART_GROUPS", "part_ids", "grow", "shrink", "transplant", "interpolate"]

#: Names that stand for several CelebAMask-HQ parts.
PART_GROUPS: dict[str, tuple[str, ...]] = {
    "lips": ("u_lip", "l_lip"),
    "eyes": ("l_eye", "r_eye"),
    "brows": ("l_brow", "r_brow"),
    "ears": ("l_ear", "r_ear"),
    "mouth_all": ("mouth", "u_lip", "l_lip"),
}

Parts = str | int | Sequence[str | int]


def part_ids(parts: Parts) -> list[int]:
    """CelebAMask-HQ ids of a part name, a group name (:data:`PART_GROUPS`), an id, or a sequence of those.

    Raises:
        KeyError: an unknown name (the message lists the known ones); ValueError: an id outside 0-18.
    """
    if isinstance(parts, (str, int)):
        parts = [parts]
    ids: list[int] = []
    for part in parts:
        if isinstance(part, int):
            if not 0 <= part < len(CELEBAMASK_HQ):
                raise ValueError(f"label id {part} outside 0-{len(CELEBAMASK_HQ) - 1}")
            ids.append(part)
        elif part in PART_GROUPS:
            ids.extend(CELEBAMASK_HQ.index(name) for name in PART_GROUPS[part])
        elif part in CELEBAMASK_HQ.names:
            ids.append(CELEBAMASK_HQ.index(part))
        else:
            raise KeyError(f"unknown mask part {part!r}; known: {', '.join(CELEBAMASK_HQ.names)} and the groups "
                           f"{', '.join(PART_GROUPS)}")
    return list(dict.fromkeys(ids))


def _batched(mask: Tensor) -> Tensor:
    if mask.ndim not in (2, 3) or mask.dtype not in (torch.int64, torch.int32, torch.uint8):
        raise ValueError(f"mask must be an integer (H, W) or (B, H, W) label map, got {tuple(mask.shape)} "
                         f"{mask.dtype}")
    return mask.long().unsqueeze(0) if mask.ndim == 2 else mask.long()


def _isin(mask: Tensor, ids: Sequence[int]) -> Tensor:
    return torch.isin(mask, torch.tensor(list(ids), device=mask.device))


def _dilate(region: Tensor, pixels: int) -> Tensor:
    """Boolean ``(B, H, W)`` region grown by ``pixels`` (a square neighbourhood, one pixel per step: a diamond
    after two steps would need a disc; a square of side 2·pixels + 1 is what max pooling gives)."""
    x = region.unsqueeze(1).float()
    return F.max_pool2d(x, 2 * pixels + 1, stride=1, padding=pixels).squeeze(1) > 0


def grow(mask: Tensor, part: Parts, pixels: int, into: Parts | None = "skin") -> Tensor:
    """``part`` widened by ``pixels``, over the pixels of ``into`` only (``None``: over any other part).

    With several ids (``"lips"``) each grows in turn into what is still free, so neighbours do not swap pixels.
    """
    if pixels < 0:
        raise ValueError(f"pixels must be >= 0, got {pixels}")
    out = _batched(mask).clone()
    ids = part_ids(part)
    allowed = None if into is None else part_ids(into)
    for label in ids:
        grown = _dilate(out == label, pixels)
        free = ~_isin(out, ids) if allowed is None else _isin(out, allowed)
        out[grown & free] = label
    return out.view_as(mask) if mask.ndim == 3 else out[0]


def shrink(mask: Tensor, part: Parts, pixels: int, fill: str | int = "skin") -> Tensor:
    """``part`` narrowed by ``pixels`` (its border of that width becomes ``fill``); a part thinner than
    ``2·pixels + 1`` disappears."""
    if pixels < 0:
        raise ValueError(f"pixels must be >= 0, got {pixels}")
    out = _batched(mask).clone()
    (fill_id,) = part_ids(fill)
    for label in part_ids(part):
        region = out == label
        kept = ~_dilate(~region, pixels)
        out[region & ~kept] = fill_id
    return out.view_as(mask) if mask.ndim == 3 else out[0]


def transplant(mask: Tensor, donor: Tensor, part: Parts, fill: str | int = "skin") -> Tensor:
    """``mask`` with its ``part`` replaced by ``donor``'s: this mask's part pixels become ``fill``, then the donor's
    part pixels are pasted over whatever is there. ``donor``: a label map of the same size (and batch, or one map
    for every mask of the batch)."""
    target, source = _batched(mask), _batched(donor)
    if target.shape[-2:] != source.shape[-2:] or source.shape[0] not in (1, target.shape[0]):
        raise ValueError(f"donor mask {tuple(donor.shape)} does not match mask {tuple(mask.shape)}")
    ids = part_ids(part)
    (fill_id,) = part_ids(fill)
    out = target.clone()
    out[_isin(out, ids)] = fill_id
    pasted = _isin(source, ids).expand_as(out)
    out[pasted] = source.expand_as(out)[pasted]
    return out.view_as(mask) if mask.ndim == 3 else out[0]


@torch.no_grad()
def interpolate(vae, mask_a: Tensor, mask_b: Tensor, alpha: float | Sequence[float]) -> Tensor:
    """Masks between ``mask_a`` (α 0) and ``mask_b`` (α 1) through a MaskVAE's latent means
    (:func:`facezoo.methods.maskgan.module.interpolate_masks`): the masks' shape for one α, with a leading α
    dimension for a sequence."""
    from facezoo.methods.maskgan.module import interpolate_masks

    single = isinstance(alpha, (int, float))
    out = interpolate_masks(vae, _batched(mask_a), _batched(mask_b), [alpha] if single else list(alpha))
    if mask_a.ndim == 2:
        out = out[:, 0]
    return out[0] if single else out
