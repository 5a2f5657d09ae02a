"""Landmark heatmaps: Gaussian maps of landmarks and landmarks back from maps (soft-argmax).

Operations, not losses: the landmark network (:mod:`facezoo.nets.landmarks`) and the losses
(:func:`facezoo.losses.heatmap_loss`) both use them. GANnotation's own 7×7-patch encoding is
:func:`facezoo.methods.gannotation.networks.landmark_heatmaps_official`.
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from facezoo._checks import _check_image, _check_tensor

__all__ = ["landmark_heatmaps", "landmarks_from_heatmaps"]


def _check_landmarks(lm: Tensor, name: str) -> Tensor:
    lm = _check_tensor(lm, name)
    if lm.ndim != 3 or lm.shape[-1] != 2:
        raise ValueError(f"{name} must have shape (B, N, 2) as (x, y) pixels, got {tuple(lm.shape)}")
    return lm


def landmark_heatmaps(
    landmarks: Tensor,
    size: tuple[int, int],
    sigma: float = 1.75,
    to_range: tuple[float, float] | None = None,
) -> Tensor:
    r"""One Gaussian heatmap per landmark, :math:`\exp(-\|p - l\|^2 / 2\sigma^2)`, peak 1 at the landmark.

    GANnotation draws each point as a 7x7 patch with :math:`\sigma = 0.25 \cdot 7 = 1.75` px (its default) and
    maps the maps to [-1, 1] with :math:`2(h - 0.5)`, i.e. ``to_range=(-1, 1)``. Here the Gaussian is not
    truncated to 7x7 (the values outside are below ``exp(-1.47) ~ 0.23`` at the patch border and decay fast).
    The maps are differentiable with respect to the landmarks.

    Args:
        landmarks: ``(B, N, 2)`` (x, y) pixel coordinates of the heatmap grid.
        size: ``(H, W)`` of the heatmaps.
        sigma: Gaussian standard deviation in pixels, > 0.
        to_range: ``None`` for values in [0, 1], or ``(lo, hi)`` to map linearly to [lo, hi].

    Returns:
        heatmaps ``(B, N, H, W)`` in [0, 1] (or ``to_range``).

    Example:
        >>> h = landmark_heatmaps(torch.tensor([[[2.0, 1.0]]]), (4, 5))
        >>> h.shape, h[0, 0, 1, 2]
        (torch.Size([1, 1, 4, 5]), tensor(1.))
    """
    _check_landmarks(landmarks, "landmarks")
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {tuple(size)}")
    dtype = landmarks.dtype if landmarks.is_floating_point() else torch.float32
    xs = torch.arange(width, device=landmarks.device, dtype=dtype)
    ys = torch.arange(height, device=landmarks.device, dtype=dtype)
    x = landmarks[..., 0].to(dtype)[..., None, None]
    y = landmarks[..., 1].to(dtype)[..., None, None]
    d2 = (xs.view(1, 1, 1, width) - x).pow(2) + (ys.view(1, 1, height, 1) - y).pow(2)
    heat = torch.exp(-d2 / (2.0 * sigma**2))
    if to_range is not None:
        lo, hi = to_range
        heat = heat * (hi - lo) + lo
    return heat


def landmarks_from_heatmaps(
    heatmaps: Tensor,
    soft: bool = True,
    temperature: float | None = None,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> Tensor:
    r"""Landmark coordinates from heatmaps, by (differentiable) soft-argmax or hard argmax.

    The maps are first mapped from ``value_range`` to [0, 1] (pass ``(-1, 1)`` for GANnotation-style maps).

    - ``soft=True, temperature=None``: centre of mass of the clamped map,
      :math:`\sum_p p\,h(p) / \sum_p h(p)` with :math:`h \ge 0` (exact for an untruncated Gaussian away from
      the border; background noise pulls it towards the image centre).
    - ``soft=True, temperature=T``: expectation under :math:`\mathrm{softmax}(h / T)` over the pixels
      (kornia's ``spatial_expectation2d``). Small ``T`` approaches the hard argmax.
    - ``soft=False``: integer argmax, not differentiable.

    Args:
        heatmaps: ``(B, N, H, W)``.
        soft: differentiable soft-argmax (True) or hard argmax (False).
        temperature: softmax temperature, > 0, or ``None`` for the centre of mass.
        value_range: the range of ``heatmaps``' values (background, peak).

    Returns:
        landmarks ``(B, N, 2)`` as (x, y) pixel coordinates; ``(0, 0)`` for an all-background map in
        centre-of-mass mode.

    Example:
        >>> h = landmark_heatmaps(torch.tensor([[[10.3, 7.6]]]), (20, 24))
        >>> landmarks_from_heatmaps(h)
        tensor([[[10.3000,  7.6000]]])
    """
    _check_image(heatmaps, "heatmaps")
    lo, hi = value_range
    if hi <= lo:
        raise ValueError(f"value_range must be (lo, hi) with hi > lo, got {value_range}")
    h = (heatmaps - lo) / (hi - lo)
    b, n, height, width = h.shape
    if not soft:
        idx = h.flatten(2).argmax(-1)
        return torch.stack([idx % width, idx // width], dim=-1).to(h.dtype)
    if temperature is None:
        w = h.clamp(min=0.0)
        w = w / w.sum(dim=(-2, -1), keepdim=True).clamp(min=torch.finfo(w.dtype).tiny)
    else:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        w = F.softmax(h.flatten(2) / temperature, dim=-1).view_as(h)
    return kornia.geometry.subpix.spatial_expectation2d(w, normalized_coordinates=False)
