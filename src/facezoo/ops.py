"""Image operations shared by losses, baselines, metrics and training scripts.

* :func:`histogram_match`: per-channel histogram matching (PSGAN). An operation, not a loss:
  :func:`facezoo.losses.makeup_loss` and PSGAN's histogram-matching baseline both use it.
* :func:`random_blur`: Gaussian blur of a random subset of a batch, the augmentation that makes facezoo's
  synthetic-face evaluation networks (landmarks, identity) work on the softer images GANs produce.
"""

from __future__ import annotations

import math

import kornia
import torch
from torch import Tensor

from facezoo._checks import _as_mask, _check_image, _to_unit

__all__ = ["histogram_match", "random_blur"]

_LEVELS = 256


def _masked_cdf(levels: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per-channel 256-bin CDF of the masked pixels.

    Args:
        levels: ``(B, C, P)`` values in [0, 255].
        mask: ``(B, 1, P)`` boolean.

    Returns:
        bins ``(B, C, P)`` int64 in [0, 255], cdf ``(B, C, 256)`` float64, count ``(B,)`` of masked pixels.
    """
    bins = levels.floor().long().clamp_(0, _LEVELS - 1)
    weights = mask.expand_as(levels).to(torch.float64)
    hist = torch.zeros(*levels.shape[:2], _LEVELS, dtype=torch.float64, device=levels.device)
    hist.scatter_add_(2, bins, weights)
    count = mask.flatten(1).sum(1)
    cdf = hist.cumsum(-1) / count.clamp(min=1).to(torch.float64).view(-1, 1, 1)
    return bins, cdf, count


def histogram_match(source: Tensor, reference: Tensor, source_mask: Tensor, reference_mask: Tensor) -> Tensor:
    r"""Per-channel histogram matching of a source region to a reference region (PSGAN).

    Values are mapped from [-1, 1] to [0, 255] and binned into 256 unit bins (``torch.histc(bins=256, min=0,
    max=256)`` in the official code). Each masked source pixel in bin ``i`` becomes the level
    :math:`j = \min\{j : CDF_{ref}(j) \ge CDF_{src}(i)\}`; unmasked pixels keep their value. Everything runs
    in torch on the input's device, vectorised over the batch and channels, without gradient.

    Differences from the official Python loop (``ops/histogram_matching.py: cal_trans``), which are edge cases
    of its search rather than of histogram matching: it leaves source bins 0 and 255 unchanged, and leaves a
    bin unchanged when its CDF is below the reference's first bin.

    Masks are binarised with ``> 0`` (the official code indexes ``mask.nonzero()``). A sample whose source or
    reference mask is empty is returned unchanged.

    Args:
        source: ``(B, 3, H, W)`` or ``(3, H, W)`` images in [-1, 1].
        reference: ``(B, 3, H', W')`` or ``(3, H', W')`` images in [-1, 1] (same batch size).
        source_mask: region of the source, ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)``.
        reference_mask: region of the reference, same layouts at ``(H', W')``.

    Returns:
        matched image, same shape as ``source``, in [-1, 1], on the integer levels :math:`2j/255 - 1` inside
        the mask. Detached.

    Example:
        >>> src = torch.full((3, 4, 4), -1.0); ref = torch.ones(3, 4, 4)
        >>> histogram_match(src, ref, torch.ones(4, 4), torch.ones(4, 4)).unique()
        tensor([1.])
    """
    squeeze = False
    if isinstance(source, Tensor) and source.ndim == 3:
        source, squeeze = source[None], True
    if isinstance(reference, Tensor) and reference.ndim == 3:
        reference = reference[None]
    _check_image(source, "source", channels=3)
    _check_image(reference, "reference", channels=3)
    if source.shape[0] != reference.shape[0]:
        raise ValueError(
            f"source and reference batch sizes differ: {source.shape[0]} vs {reference.shape[0]}"
        )
    b = source.shape[0]
    m_src = _as_mask(source_mask, "source_mask", b, tuple(source.shape[-2:])).to(source.device) > 0
    m_ref = _as_mask(reference_mask, "reference_mask", b, tuple(reference.shape[-2:])).to(source.device) > 0

    with torch.no_grad():
        src_levels = _to_unit(source).flatten(2) * (_LEVELS - 1)
        ref_levels = _to_unit(reference.to(source)).flatten(2) * (_LEVELS - 1)
        m_src_flat, m_ref_flat = m_src.flatten(2), m_ref.flatten(2)
        src_bins, src_cdf, src_count = _masked_cdf(src_levels, m_src_flat)
        _, ref_cdf, ref_count = _masked_cdf(ref_levels, m_ref_flat)
        table = torch.searchsorted(ref_cdf.contiguous(), src_cdf.contiguous()).clamp_(max=_LEVELS - 1)
        matched_levels = table.gather(2, src_bins).to(source.dtype)
        valid = m_src_flat & ((src_count > 0) & (ref_count > 0)).view(b, 1, 1)
        out_levels = torch.where(valid, matched_levels, src_levels)
        out = (out_levels / (_LEVELS - 1) * 2.0 - 1.0).view_as(source)
    return out[0] if squeeze else out


def random_blur(images: Tensor, generator: torch.Generator, prob: float = 0.5, max_sigma: float = 1.2) -> Tensor:
    """Blur each image with probability ``prob`` by a Gaussian of σ ~ U(0.3, ``max_sigma``) pixels.

    Args:
        images: ``(B, C, H, W)``.
        generator: the CPU generator the draws come from (training scripts are pure functions of their seed).

    Returns:
        A new ``(B, C, H, W)`` tensor; the unblurred images are copies of the inputs.
    """
    out = images.clone()
    for i in range(len(images)):
        if float(torch.rand((), generator=generator)) < prob:
            sigma = 0.3 + (max_sigma - 0.3) * float(torch.rand((), generator=generator))
            k = 2 * math.ceil(2 * sigma) + 1
            out[i:i + 1] = kornia.filters.gaussian_blur2d(images[i:i + 1], (k, k), (sigma, sigma),
                                                          border_type="replicate")
    return out
