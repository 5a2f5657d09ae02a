"""Non-leaking adaptive discriminator augmentation (ADA; Karras et al., NeurIPS 2020) for small datasets.

The discriminator sees real and generated images through the same random augmentation, applied with probability
``p`` per transform; ``p`` is tuned so that the sign of D's outputs on reals, ``r_t = E[sign(D(x))]``, stays near a
target (0.6). Below ``p ≈ 0.8`` the augmentations do not leak into the generated distribution.

The pipeline and its distributions follow rosinality's port (``rosinality/stylegan2-pytorch: non_leaking.py``,
``augment`` = geometric ``sample_affine`` then colour ``sample_color``; ``AdaptiveAugment.tune``), which follows
``NVlabs/stylegan2-ada-pytorch: training/augment.py`` ("bgc"): x-flip, 90° rotations, integer translation,
isotropic scaling, arbitrary rotation (probability ``1 − √(1 − p)`` before and after), anisotropic scaling,
fractional translation; brightness, contrast, luma flip, hue rotation, saturation. facezoo resamples with reflect
padding and bilinear ``grid_sample`` on a 2× supersampled image, then a 2× average pool (rosinality filters
with a 12-tap wavelet instead; the distributions of the transforms are the same).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["AdaptiveAugment", "augment", "sample_affine", "sample_color"]


def _eye(n: int, size: int, device) -> Tensor:
    return torch.eye(n, device=device).expand(size, n, n).clone()


def _apply_with(p: float, transform: Tensor, prev: Tensor) -> Tensor:
    """``transform @ prev`` for each sample with probability ``p``, else ``prev``."""
    select = (torch.rand(transform.shape[0], 1, 1, device=transform.device) < p).to(transform)
    eye = _eye(transform.shape[-1], transform.shape[0], transform.device)
    return (select * transform + (1 - select) * eye) @ prev


def _affine(a11, a12, a13, a21, a22, a23) -> Tensor:
    """``(B, 3, 3)`` matrices from per-sample entries (tensors or scalars broadcast to the batch)."""
    rows = torch.broadcast_tensors(*(torch.as_tensor(v, dtype=torch.float32) for v in (a11, a12, a13, a21, a22, a23)))
    zero, one = torch.zeros_like(rows[0]), torch.ones_like(rows[0])
    return torch.stack([torch.stack(rows[:3], -1), torch.stack(rows[3:], -1), torch.stack([zero, zero, one], -1)], -2)


def _rotation(theta: Tensor) -> Tensor:
    return _affine(torch.cos(theta), -torch.sin(theta), 0, torch.sin(theta), torch.cos(theta), 0)


def sample_affine(p: float, size: int, height: int, width: int) -> Tensor:
    """Random geometric transforms in pixel units (output → input), ``(size, 3, 3)``.

    Each transform is applied with probability ``p`` (the two arbitrary rotations with ``1 − √(1 − p)``).
    """
    g = _eye(3, size, "cpu")
    flip = torch.randint(0, 2, (size,)).float()
    g = _apply_with(p, _affine(1 - 2 * flip, 0, 0, 0, 1, 0), g)
    g = _apply_with(p, _rotation(-math.pi / 2 * torch.randint(0, 4, (size,)).float()), g)
    shift = (torch.rand(2, size) * 0.25 - 0.125)
    g = _apply_with(p, _affine(1, 0, torch.round(shift[1] * width), 0, 1, torch.round(shift[0] * height)), g)
    scale = torch.exp(torch.randn(size) * 0.2 * math.log(2))
    g = _apply_with(p, _affine(scale, 0, 0, 0, scale, 0), g)
    p_rot = 1 - math.sqrt(1 - p)
    g = _apply_with(p_rot, _rotation(-(torch.rand(size) * 2 - 1) * math.pi), g)
    aniso = torch.exp(torch.randn(size) * 0.2 * math.log(2))
    g = _apply_with(p, _affine(aniso, 0, 0, 0, 1 / aniso, 0), g)
    g = _apply_with(p_rot, _rotation(-(torch.rand(size) * 2 - 1) * math.pi), g)
    frac = torch.randn(2, size) * 0.125
    return _apply_with(p, _affine(1, 0, frac[1] * width, 0, 1, frac[0] * height), g)


def sample_color(p: float, size: int) -> Tensor:
    """Random colour transforms, ``(size, 4, 4)`` acting on homogeneous RGB in [-1, 1]."""
    c = _eye(4, size, "cpu")
    axis = torch.full((3,), 1 / math.sqrt(3))

    def mat(linear: Tensor | None = None, shift: Tensor | None = None) -> Tensor:
        m = _eye(4, size, "cpu")
        if linear is not None:
            m[:, :3, :3] = linear
        if shift is not None:
            m[:, :3, 3] = shift
        return m

    outer = torch.outer(axis, axis)
    c = _apply_with(p, mat(shift=(torch.randn(size) * 0.2)[:, None].expand(size, 3)), c)            # brightness
    contrast = torch.exp(torch.randn(size) * 0.5 * math.log(2))
    c = _apply_with(p, mat(linear=contrast[:, None, None] * torch.eye(3)), c)                         # contrast
    luma = torch.randint(0, 2, (size,)).float()
    c = _apply_with(p, mat(linear=torch.eye(3) - 2 * outer * luma[:, None, None]), c)                  # luma flip
    theta = (torch.rand(size) * 2 - 1) * math.pi
    cross = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    rot = (torch.cos(theta)[:, None, None] * torch.eye(3) + torch.sin(theta)[:, None, None] * cross
           + (1 - torch.cos(theta))[:, None, None] * outer)
    c = _apply_with(p, mat(linear=rot), c)                                                            # hue rotation
    sat = torch.exp(torch.randn(size) * math.log(2))
    c = _apply_with(p, mat(linear=outer + (torch.eye(3) - outer) * sat[:, None, None]), c)            # saturation
    return c


def _resample(img: Tensor, g: Tensor) -> Tensor:
    """``img`` sampled at ``g @ (x, y, 1)`` for every output pixel centre (reflect padding, 2× supersampled)."""
    b, _, h, w = img.shape
    up = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
    ys, xs = torch.meshgrid(torch.arange(2 * h, device=img.device, dtype=img.dtype),
                            torch.arange(2 * w, device=img.device, dtype=img.dtype), indexing="ij")
    # output pixel centres of the 2x grid in input pixel units, centred on the image centre
    pts = torch.stack([(xs + 0.5) / 2 - w / 2, (ys + 0.5) / 2 - h / 2, torch.ones_like(xs)], -1).view(-1, 3)
    src = pts @ g.to(img).transpose(1, 2)                                       # (B, 4hw, 3)
    grid = torch.stack([src[..., 0] / (w / 2), src[..., 1] / (h / 2)], -1).view(b, 2 * h, 2 * w, 2)
    out = F.grid_sample(up, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return F.avg_pool2d(out, 2)


def augment(img: Tensor, p: float) -> Tensor:
    """The ADA pipeline on a batch: geometric then colour transforms, each with probability ``p``.

    Args:
        img: ``(B, 3, H, W)`` in [-1, 1] (real or generated; differentiable w.r.t. ``img``).
        p: augmentation probability in [0, 1]; 0 returns ``img`` itself.

    Returns:
        ``(B, 3, H, W)``.

    Example:
        >>> x = torch.rand(2, 3, 8, 8) * 2 - 1
        >>> torch.equal(augment(x, 0.0), x), augment(x, 0.5).shape
        (True, torch.Size([2, 3, 8, 8]))
    """
    if p <= 0:
        return img
    b, _, h, w = img.shape
    img = _resample(img, sample_affine(p, b, h, w))
    c = sample_color(p, b).to(img)
    return torch.einsum("bij,bjhw->bihw", c[:, :3, :3], img) + c[:, :3, 3, None, None]


class AdaptiveAugment:
    """The ADA heuristic: ``p`` moves towards the value where ``r_t = E[sign(D(real))]`` equals ``target``.

    Every ``update_every`` calls of :meth:`tune`, ``p += sign(r_t − target) · n / length`` with ``n`` the real
    images seen since the last update (summed over processes under DDP), clipped to [0, 1]; so ``p`` can go from
    0 to 1 in ``length`` images (rosinality: 500k, update every 8 batches; stylegan2-ada: every 4 batches).

    Args:
        target: the r_t target (0.6).
        length: images for ``p`` to go from 0 to 1.
        update_every: calls of :meth:`tune` between updates.
        p: the starting probability.
    """

    def __init__(self, target: float = 0.6, length: int = 500_000, update_every: int = 8, p: float = 0.0):
        if not 0 < target < 1 or length <= 0 or update_every < 1:
            raise ValueError(f"ADA needs 0 < target < 1, length > 0, update_every >= 1, got {target}, {length}, "
                             f"{update_every}")
        self.target, self.length, self.update_every = target, length, update_every
        self.p, self.r_t = float(p), 0.0
        self._signs, self._count, self._calls = 0.0, 0.0, 0

    @torch.no_grad()
    def tune(self, real_pred: Tensor) -> float:
        """Account for one batch of D outputs on (augmented) reals; returns the current ``p``."""
        stats = torch.tensor([torch.sign(real_pred).sum().item(), real_pred.shape[0]], dtype=torch.float64)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            stats = stats.to(real_pred.device)
            torch.distributed.all_reduce(stats)
        self._signs += float(stats[0])
        self._count += float(stats[1])
        self._calls += 1
        if self._calls % self.update_every == 0:
            self.r_t = self._signs / max(self._count, 1.0)
            step = self._count / self.length
            self.p = min(1.0, max(0.0, self.p + (step if self.r_t > self.target else -step)))
            self._signs = self._count = 0.0
        return self.p

    def state_dict(self) -> dict:
        return {"p": self.p, "r_t": self.r_t, "signs": self._signs, "count": self._count, "calls": self._calls}

    def load_state_dict(self, state: dict) -> None:
        self.p, self.r_t = float(state["p"]), float(state["r_t"])
        self._signs, self._count, self._calls = float(state["signs"]), float(state["count"]), int(state["calls"])
