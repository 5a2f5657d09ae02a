"""The one common loss module of facezoo.

Every loss is a plain function named after the paper's term; a thin :class:`torch.nn.Module` exists only where
the loss holds weights or buffers (perceptual, LPIPS, identity) or dispatches between variants (adversarial).
A loss never knows which method calls it.

Conventions (see ``docs/architecture.md``):

- Images are float ``(B, 3, H, W)`` in **[-1, 1]**.
- Landmarks are float ``(B, N, 2)`` as **(x, y) pixel coordinates**; the centre of pixel ``(row i, column j)``
  has coordinates ``(x=j, y=i)`` (kornia's ``create_meshgrid(normalized_coordinates=False)``).
- Losses return a scalar tensor (mean reduction) unless the docstring says otherwise. Loss weights belong to
  the caller (``model.loss.<term>`` in the config); no function here multiplies by a method's lambda, except
  the weights that are part of a loss's definition (multi-scale L1 weights, pix2pixHD feature-matching
  weights, the WGAN-GP weight).

Sections: adversarial objectives, pixel losses, symmetry, total variation, landmark heatmaps, histogram
matching (PSGAN makeup loss), perceptual, LPIPS, identity, feature matching, KL divergence.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ADVERSARIAL_LOSSES",
    "AdversarialLoss",
    "IdentityLoss",
    "LPIPSLoss",
    "PerceptualLoss",
    "adversarial_losses",
    "feature_matching_loss",
    "gradient_penalty",
    "heatmap_loss",
    "hinge_d_loss",
    "hinge_g_loss",
    "histogram_match",
    "kl_divergence",
    "landmark_heatmaps",
    "landmark_loss",
    "landmarks_from_heatmaps",
    "lsgan_d_loss",
    "lsgan_g_loss",
    "makeup_loss",
    "multiscale_pixel_l1",
    "ns_d_loss",
    "ns_g_loss",
    "pixel_l1",
    "symmetry_loss",
    "total_variation",
    "wgan_d_loss",
    "wgan_g_loss",
]

Logits = Tensor | Sequence[Tensor] | Sequence[Sequence[Tensor]]
"""Discriminator output: a tensor, a list over scales, or pix2pixHD's list over scales of feature lists."""

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _check_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def _check_image(x: object, name: str, channels: int | None = None) -> Tensor:
    """Check that ``x`` is a ``(B, C, H, W)`` tensor (with ``C == channels`` when given)."""
    x = _check_tensor(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels (B, {channels}, H, W), got {tuple(x.shape)}")
    return x


def _check_same_shape(x: Tensor, y: Tensor, names: str) -> None:
    if x.shape != y.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def _as_mask(mask: Tensor, name: str, batch: int, size: tuple[int, int]) -> Tensor:
    """Return ``mask`` as a float ``(B, 1, H, W)`` tensor; accepts (H,W), (1,H,W), (B,H,W), (B,1,H,W)."""
    mask = _check_tensor(mask, name)
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None]
    elif mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"{name} must have shape (H, W), (B, H, W) or (B, 1, H, W), got {tuple(mask.shape)}")
    if tuple(mask.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} must be {tuple(size)} spatially, got {tuple(mask.shape[-2:])}")
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"{name} has batch size {mask.shape[0]}, expected 1 or {batch}")
    return mask.expand(batch, 1, *size).float()


def _scales(logits: Logits, name: str = "logits") -> list[Tensor]:
    """Flatten a discriminator output into a list of logit tensors, one per scale.

    A tensor is one scale; a list of tensors is one tensor per scale; a list of lists (pix2pixHD's
    ``getIntermFeat`` output: intermediate features then the logits) contributes the **last** element of each
    inner list.
    """
    if isinstance(logits, Tensor):
        return [logits]
    if not isinstance(logits, (list, tuple)) or len(logits) == 0:
        raise ValueError(
            f"{name} must be a tensor or a non-empty list of tensors, got {type(logits).__name__}"
        )
    out = []
    for item in logits:
        if isinstance(item, (list, tuple)):
            if len(item) == 0:
                raise ValueError(f"{name} contains an empty list of features")
            item = item[-1]
        out.append(_check_tensor(item, name))
    return out


def _mean_over_scales(fn: Callable[..., Tensor], *logits: Logits) -> Tensor:
    per_input = [_scales(x) for x in logits]
    n = len(per_input[0])
    if any(len(s) != n for s in per_input):
        raise ValueError(
            f"real and fake logits must have the same number of scales, got {[len(s) for s in per_input]}"
        )
    return sum(fn(*group) for group in zip(*per_input)) / n


def _to_unit(img: Tensor) -> Tensor:
    """Map [-1, 1] to [0, 1] with clamping (PSGAN's ``de_norm``)."""
    return ((img + 1.0) * 0.5).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------------
# adversarial objectives
# --------------------------------------------------------------------------------------------------


def lsgan_d_loss(real_logits: Logits, fake_logits: Logits) -> Tensor:
    r"""Least-squares GAN discriminator loss: :math:`E[(D(x)-1)^2] + E[D(G(z))^2]`.

    Used by PSGAN and MaskGAN (pix2pixHD). PSGAN's solver multiplies the sum by 0.5; that factor is left to
    the caller's weight (``model.loss.d_adv``).

    Args:
        real_logits: discriminator logits on real images, any shape, or a list over scales (averaged).
        fake_logits: discriminator logits on generated images, same structure as ``real_logits``.

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> lsgan_d_loss(torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4))
        tensor(0.)
    """
    return _mean_over_scales(lambda r, f: (r - 1).pow(2).mean() + f.pow(2).mean(), real_logits, fake_logits)


def lsgan_g_loss(fake_logits: Logits) -> Tensor:
    r"""Least-squares GAN generator loss: :math:`E[(D(G(z))-1)^2]`.

    Args:
        fake_logits: discriminator logits on generated images, any shape, or a list over scales (averaged).

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> lsgan_g_loss(torch.zeros(1, 1, 2, 2))
        tensor(1.)
    """
    return _mean_over_scales(lambda f: (f - 1).pow(2).mean(), fake_logits)


def ns_d_loss(real_logits: Logits, fake_logits: Logits, real_label: float = 0.9) -> Tensor:
    r"""Non-saturating (sigmoid cross-entropy) discriminator loss with one-sided label smoothing.

    :math:`BCE(\sigma(D(x)), t) + BCE(\sigma(D(G(z))), 0)`, with real target ``t = real_label``; TP-GAN's
    official code smooths the real label to 0.9 (``reference/methods.md`` §5.2).

    Args:
        real_logits: logits (before the sigmoid) on real images, any shape, or a list over scales (averaged).
        fake_logits: logits on generated images, same structure.
        real_label: target for real samples, in (0, 1].

    Returns:
        scalar tensor, >= 0 (its minimum is the entropy of ``real_label``, 0 only for ``real_label=1``).
    """
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1], got {real_label}")

    def _d(r: Tensor, f: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(r, torch.full_like(r, real_label)) + F.softplus(f).mean()

    return _mean_over_scales(_d, real_logits, fake_logits)


def ns_g_loss(fake_logits: Logits) -> Tensor:
    r"""Non-saturating generator loss :math:`E[-\log \sigma(D(G(z)))] = E[\mathrm{softplus}(-D(G(z)))]`.

    Args:
        fake_logits: logits on generated images, any shape, or a list over scales (averaged).

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> ns_g_loss(torch.zeros(3))  # log 2
        tensor(0.6931)
    """
    return _mean_over_scales(lambda f: F.softplus(-f).mean(), fake_logits)


def hinge_d_loss(real_logits: Logits, fake_logits: Logits) -> Tensor:
    r"""Hinge discriminator loss :math:`E[\max(0, 1-D(x))] + E[\max(0, 1+D(G(z)))]` (GANnotation's ``hinge``).

    Args:
        real_logits: logits on real images, any shape, or a list over scales (averaged).
        fake_logits: logits on generated images, same structure.

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> hinge_d_loss(torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0]))
        tensor(0.7500)
    """
    return _mean_over_scales(
        lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(), real_logits, fake_logits
    )


def hinge_g_loss(fake_logits: Logits) -> Tensor:
    r"""Hinge generator loss :math:`-E[D(G(z))]`.

    Args:
        fake_logits: logits on generated images, any shape, or a list over scales (averaged).

    Returns:
        scalar tensor, unbounded.
    """
    return _mean_over_scales(lambda f: -f.mean(), fake_logits)


def wgan_d_loss(real_logits: Logits, fake_logits: Logits) -> Tensor:
    r"""Wasserstein critic loss :math:`E[D(G(z))] - E[D(x)]` (add :func:`gradient_penalty` for WGAN-GP).

    Args:
        real_logits: critic outputs on real images, any shape, or a list over scales (averaged).
        fake_logits: critic outputs on generated images, same structure.

    Returns:
        scalar tensor, unbounded.
    """
    return _mean_over_scales(lambda r, f: f.mean() - r.mean(), real_logits, fake_logits)


def wgan_g_loss(fake_logits: Logits) -> Tensor:
    r"""Wasserstein generator loss :math:`-E[D(G(z))]` (GANnotation's and TP-GAN port's adversarial term).

    Args:
        fake_logits: critic outputs on generated images, any shape, or a list over scales (averaged).

    Returns:
        scalar tensor, unbounded.
    """
    return _mean_over_scales(lambda f: -f.mean(), fake_logits)


def gradient_penalty(
    discriminator: Callable[[Tensor], Logits],
    real: Tensor,
    fake: Tensor,
    weight: float = 10.0,
    alpha: Tensor | None = None,
) -> Tensor:
    r"""WGAN-GP gradient penalty :math:`w \cdot E[(\|\nabla_{\hat x} D(\hat x)\|_2 - 1)^2]`.

    :math:`\hat x = \alpha x + (1-\alpha) G(z)` with one :math:`\alpha \sim U(0, 1)` per sample. ``real`` and
    ``fake`` are detached; the gradient is taken with ``create_graph=True``, so the penalty back-propagates
    into the discriminator's parameters. With a multi-scale discriminator the gradient of the sum of all
    scales' outputs is penalised; a patch discriminator's outputs are summed (``grad_outputs`` of ones). For a
    conditional discriminator pass a closure, e.g. ``lambda x: D(torch.cat([cond, x], 1))``.

    Run it outside autocast under ``16-mixed`` (``reference/conventions.md`` §2.5).

    Args:
        discriminator: callable mapping ``(B, C, H, W)`` images to logits (tensor, list, or list of lists
            whose last element is the logits).
        real: real images ``(B, C, H, W)``.
        fake: generated images, same shape.
        weight: the penalty weight (10 in WGAN-GP, GANnotation and the TP-GAN port).
        alpha: optional interpolation factors of shape ``(B,)`` in [0, 1]; random when ``None``.

    Returns:
        scalar tensor, >= 0.
    """
    _check_image(real, "real")
    _check_image(fake, "fake")
    _check_same_shape(real, fake, "real and fake")
    b = real.shape[0]
    if alpha is None:
        alpha = torch.rand(b, device=real.device, dtype=real.dtype)
    elif alpha.shape != (b,):
        raise ValueError(f"alpha must have shape ({b},), got {tuple(alpha.shape)}")
    alpha = alpha.to(real).view(b, 1, 1, 1)
    interpolates = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    outputs = _scales(discriminator(interpolates), "discriminator output")
    (grad,) = torch.autograd.grad(sum(o.sum() for o in outputs), interpolates, create_graph=True)
    return weight * (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


ADVERSARIAL_LOSSES: dict[str, tuple[Callable[..., Tensor], Callable[..., Tensor]]] = {
    "lsgan": (lsgan_d_loss, lsgan_g_loss),
    "ns": (ns_d_loss, ns_g_loss),
    "hinge": (hinge_d_loss, hinge_g_loss),
    "wgan": (wgan_d_loss, wgan_g_loss),
}
"""Registry ``kind -> (d_loss, g_loss)`` of the adversarial objectives."""


def adversarial_losses(kind: str) -> tuple[Callable[..., Tensor], Callable[..., Tensor]]:
    """Return the ``(d_loss, g_loss)`` pair of an adversarial objective.

    Args:
        kind: one of ``"lsgan"``, ``"ns"``, ``"hinge"``, ``"wgan"``.

    Returns:
        ``(d_fn(real_logits, fake_logits), g_fn(fake_logits))``.

    Example:
        >>> d_fn, g_fn = adversarial_losses("hinge")
        >>> g_fn(torch.tensor([1.0, 3.0]))
        tensor(-2.)
    """
    if kind not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown adversarial loss {kind!r}; choose one of {sorted(ADVERSARIAL_LOSSES)}")
    return ADVERSARIAL_LOSSES[kind]


class AdversarialLoss(nn.Module):
    """Adversarial objective chosen by name, for configs: ``AdversarialLoss("lsgan")``.

    Logits may be a tensor or a list over discriminator scales. The functions average over scales;
    ``scale_reduction="sum"`` sums instead, as pix2pixHD's ``GANLoss`` does (MaskGAN parity).

    Args:
        kind: ``"lsgan"`` | ``"ns"`` | ``"hinge"`` | ``"wgan"``.
        real_label: real target of the ``"ns"`` discriminator loss (TP-GAN: 0.9); ignored by other kinds.
        scale_reduction: ``"mean"`` or ``"sum"`` over discriminator scales.

    Example:
        >>> adv = AdversarialLoss("lsgan")
        >>> adv.d(torch.ones(4), torch.zeros(4)), adv.g(torch.ones(4))
        (tensor(0.), tensor(0.))
    """

    def __init__(self, kind: str = "lsgan", real_label: float = 0.9, scale_reduction: str = "mean") -> None:
        super().__init__()
        self._d_fn, self._g_fn = adversarial_losses(kind)
        if scale_reduction not in ("mean", "sum"):
            raise ValueError(f"scale_reduction must be 'mean' or 'sum', got {scale_reduction!r}")
        self.kind = kind
        self.real_label = real_label
        self.scale_reduction = scale_reduction

    def _factor(self, logits: Logits) -> int:
        return len(_scales(logits)) if self.scale_reduction == "sum" else 1

    def d(self, real_logits: Logits, fake_logits: Logits) -> Tensor:
        """Discriminator loss (scalar); see the function of the chosen kind."""
        kwargs = {"real_label": self.real_label} if self.kind == "ns" else {}
        return self._d_fn(real_logits, fake_logits, **kwargs) * self._factor(fake_logits)

    def g(self, fake_logits: Logits) -> Tensor:
        """Generator loss (scalar); see the function of the chosen kind."""
        return self._g_fn(fake_logits) * self._factor(fake_logits)

    def forward(self, fake_logits: Logits, real_logits: Logits | None = None) -> Tensor:
        """Generator loss when ``real_logits`` is ``None``, discriminator loss otherwise."""
        return self.g(fake_logits) if real_logits is None else self.d(real_logits, fake_logits)

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, real_label={self.real_label}, scale_reduction={self.scale_reduction!r}"


# --------------------------------------------------------------------------------------------------
# pixel losses
# --------------------------------------------------------------------------------------------------


def pixel_l1(x: Tensor, y: Tensor, weight_mask: Tensor | None = None) -> Tensor:
    r"""Pixel-wise L1 :math:`\mathrm{mean}(w \cdot |x - y|)`.

    The mean runs over **all** ``B*C*H*W`` elements (a weight map, not a masked mean), so a mask that covers
    a quarter of the image gives a quarter of the unmasked loss.

    Args:
        x: prediction ``(B, C, H, W)``, images in [-1, 1].
        y: target, same shape.
        weight_mask: optional per-pixel weights, broadcastable to ``x``: ``(B, 1, H, W)``, ``(B, H, W)`` or
            ``(H, W)``; values usually in [0, 1].

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> pixel_l1(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2))
        tensor(1.)
    """
    _check_image(x, "x")
    _check_same_shape(x, y, "x and y")
    diff = (x - y).abs()
    if weight_mask is not None:
        diff = diff * _as_mask(weight_mask, "weight_mask", x.shape[0], tuple(x.shape[-2:])).to(diff)
    return diff.mean()


def multiscale_pixel_l1(
    preds: Sequence[Tensor],
    target: Tensor,
    weights: Sequence[float] | None = None,
    mode: str = "area",
) -> Tensor:
    r"""Weighted sum of L1 losses between predictions at several resolutions and the resized target.

    TP-GAN supervises its 128, 64 and 32 outputs with weights 1, 1, 1.5 (``L1_1_W``, ``L1_2_W``, ``L1_3_W``).
    The target is resized to each prediction's size (no resizing where sizes already match).

    Args:
        preds: list of predictions ``(B, C, h_i, w_i)`` in [-1, 1].
        target: full-resolution target ``(B, C, H, W)``.
        weights: one weight per prediction; all 1 when ``None``.
        mode: ``"area"`` (average pooling) or ``"bilinear"`` (antialiased) downsampling of the target.

    Returns:
        scalar tensor, >= 0: :math:`\sum_i w_i \, \mathrm{mean}|p_i - \mathrm{resize}(t)|`.

    Example:
        >>> t = torch.zeros(1, 3, 8, 8)
        >>> multiscale_pixel_l1([t + 1, t[..., :4, :4] + 1], t, weights=[1.0, 1.5])
        tensor(2.5000)
    """
    _check_image(target, "target")
    if len(preds) == 0:
        raise ValueError("preds must contain at least one prediction")
    weights = [1.0] * len(preds) if weights is None else list(weights)
    if len(weights) != len(preds):
        raise ValueError(f"got {len(preds)} predictions but {len(weights)} weights")
    if mode not in ("area", "bilinear"):
        raise ValueError(f"mode must be 'area' or 'bilinear', got {mode!r}")
    total = target.new_zeros(())
    for i, (pred, w) in enumerate(zip(preds, weights)):
        _check_image(pred, f"preds[{i}]", channels=target.shape[1])
        if pred.shape[0] != target.shape[0]:
            raise ValueError(f"preds[{i}] has batch size {pred.shape[0]}, target has {target.shape[0]}")
        size = tuple(pred.shape[-2:])
        t = target
        if size != tuple(target.shape[-2:]):
            if mode == "area":
                t = F.interpolate(target, size=size, mode="area")
            else:
                t = F.interpolate(target, size=size, mode="bilinear", align_corners=False, antialias=True)
        total = total + w * (pred - t).abs().mean()
    return total


# --------------------------------------------------------------------------------------------------
# symmetry (TP-GAN)
# --------------------------------------------------------------------------------------------------


def symmetry_loss(img: Tensor, space: str = "pixel", occluded: str | None = None) -> Tensor:
    r"""TP-GAN symmetry loss: L1 between the left half of a frontal face and the mirrored right half.

    Column ``c`` is compared with column ``W-1-c``; with odd ``W`` the middle column is skipped. ``occluded``
    names the half that **receives gradient**: the other (visible) half is detached, so only the occluded side
    is pulled towards the visible one. TP-GAN's official ``symL1`` stops the gradient on the left half, i.e.
    ``occluded="right"`` (its inputs are mirrored so that the visible side is always the same); ``None`` lets
    both halves receive gradient (the paper's formula).

    ``space="laplacian"`` compares the images after ``kornia.filters.laplacian`` (3x3, unnormalised, reflect
    border; the official kernel is the negative of kornia's, which L1 does not see); ``"both"`` compares the
    channel concatenation [image, Laplacian], TP-GAN's ``processor`` used at 64 and 32 pixels. The official
    128-pixel term works on the 2x2 average-pooled image: pool before calling.

    Args:
        img: generated frontal faces ``(B, C, H, W)`` in [-1, 1], ``W >= 2``.
        space: ``"pixel"`` | ``"laplacian"`` | ``"both"``.
        occluded: ``"left"`` | ``"right"`` | ``None``, the image half that receives gradient.

    Returns:
        scalar tensor, >= 0; 0 for a mirror-symmetric image.

    Example:
        >>> symmetry_loss(torch.tensor([[[[0.0, 1.0, 1.0, 0.0]]]]))
        tensor(0.)
    """
    _check_image(img, "img")
    if img.shape[-1] < 2:
        raise ValueError(f"img must be at least 2 pixels wide, got width {img.shape[-1]}")
    if occluded not in ("left", "right", None):
        raise ValueError(f"occluded must be 'left', 'right' or None, got {occluded!r}")
    if space == "pixel":
        x = img
    elif space in ("laplacian", "both"):
        lap = kornia.filters.laplacian(img, kernel_size=3, border_type="reflect", normalized=False)
        x = lap if space == "laplacian" else torch.cat([img, lap], dim=1)
    else:
        raise ValueError(f"space must be 'pixel', 'laplacian' or 'both', got {space!r}")
    half = x.shape[-1] // 2
    left = x[..., :half]
    right_mirrored = x[..., x.shape[-1] - half :].flip(-1)
    if occluded == "right":
        left = left.detach()
    elif occluded == "left":
        right_mirrored = right_mirrored.detach()
    return (left - right_mirrored).abs().mean()


# --------------------------------------------------------------------------------------------------
# total variation
# --------------------------------------------------------------------------------------------------


def total_variation(img: Tensor, squared: bool = False) -> Tensor:
    r"""Anisotropic total variation, averaged: :math:`\mathrm{mean}|\partial_y I| + \mathrm{mean}|\partial_x
    I|`.

    Each term is averaged over its own differences (``(H-1)W`` vertical, ``H(W-1)`` horizontal) and the sum is
    averaged over ``B`` and ``C`` (``kornia.losses.total_variation(reduction="mean").mean()``). TP-GAN uses
    the absolute version; ``squared=True`` squares the differences instead (GANnotation's TV term).

    Args:
        img: images ``(B, C, H, W)``, any range.
        squared: square the differences instead of taking absolute values.

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> total_variation(torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]]))  # mean|dy| = 2, mean|dx| = 1
        tensor(3.)
    """
    _check_image(img, "img")
    if not squared:
        return kornia.losses.total_variation(img, reduction="mean").mean()
    dy = img[..., 1:, :] - img[..., :-1, :]
    dx = img[..., :, 1:] - img[..., :, :-1]
    zero = img.new_zeros(())
    return (dy.pow(2).mean() if dy.numel() else zero) + (dx.pow(2).mean() if dx.numel() else zero)


# --------------------------------------------------------------------------------------------------
# landmark heatmaps (GANnotation)
# --------------------------------------------------------------------------------------------------


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


def heatmap_loss(pred_heatmaps: Tensor, target_heatmaps: Tensor) -> Tensor:
    """Mean squared error between predicted and target landmark heatmaps.

    Args:
        pred_heatmaps: ``(B, N, H, W)``.
        target_heatmaps: ``(B, N, H, W)``, same value range as the prediction.

    Returns:
        scalar tensor, >= 0.
    """
    _check_image(pred_heatmaps, "pred_heatmaps")
    _check_same_shape(pred_heatmaps, target_heatmaps, "pred_heatmaps and target_heatmaps")
    return F.mse_loss(pred_heatmaps, target_heatmaps)


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


def landmark_loss(pred_landmarks: Tensor, target_landmarks: Tensor, criterion: str = "l2") -> Tensor:
    """Distance between predicted and target landmarks, in pixels.

    Args:
        pred_landmarks: ``(B, N, 2)`` (x, y) pixels.
        target_landmarks: ``(B, N, 2)``.
        criterion: ``"l2"`` mean point-to-point Euclidean distance, ``"l1"`` mean absolute coordinate error,
            ``"mse"`` mean squared coordinate error.

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> landmark_loss(torch.zeros(1, 1, 2), torch.tensor([[[3.0, 4.0]]]))
        tensor(5.)
    """
    _check_landmarks(pred_landmarks, "pred_landmarks")
    _check_same_shape(pred_landmarks, target_landmarks, "pred_landmarks and target_landmarks")
    diff = pred_landmarks - target_landmarks
    if criterion == "l2":
        return torch.linalg.vector_norm(diff, dim=-1).mean()
    if criterion == "l1":
        return diff.abs().mean()
    if criterion == "mse":
        return diff.pow(2).mean()
    raise ValueError(f"criterion must be 'l2', 'l1' or 'mse', got {criterion!r}")


# --------------------------------------------------------------------------------------------------
# histogram matching (PSGAN makeup loss)
# --------------------------------------------------------------------------------------------------

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


def makeup_loss(
    fake: Tensor,
    source_mask: Tensor,
    reference: Tensor,
    reference_mask: Tensor,
    value_range: float = 255.0,
) -> Tensor:
    r"""PSGAN histogram-matching makeup loss for one facial region (lips, skin or eyes).

    :math:`\mathrm{mean}|f \odot m - \mathrm{sg}[HM(f \odot m_s, r \odot m_r)] \odot m|` where :math:`HM` is
    :func:`histogram_match` and :math:`\mathrm{sg}` stops the gradient (the target is detached), as PSGAN's
    ``ops/histogram_loss.py``. As there, images are mapped to [0, ``value_range``] after clamping (official:
    255, so the official weights lips 1 / skin 0.1 / eyes 1 apply), and the mean runs over all ``B*3*H*W``
    elements, so the loss scales with the region's area. Empty masks give 0.

    Args:
        fake: generated images ``(B, 3, H, W)`` in [-1, 1] (the source with the reference's makeup).
        source_mask: the region in ``fake``, ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)``; binarised by ``>
            0``.
        reference: reference (makeup) images ``(B, 3, H', W')`` in [-1, 1].
        reference_mask: the same region in ``reference``.
        value_range: the scale of the L1 (255 = official; 2 gives an L1 on the [-1, 1] scale).

    Returns:
        scalar tensor, >= 0; differentiable with respect to ``fake`` only.
    """
    _check_image(fake, "fake", channels=3)
    m = (_as_mask(source_mask, "source_mask", fake.shape[0], tuple(fake.shape[-2:])) > 0).to(fake)
    target = histogram_match(fake.detach(), reference, source_mask, reference_mask)
    target_scaled = _to_unit(target) * value_range
    return (_to_unit(fake) * value_range * m - target_scaled * m).abs().mean()


# --------------------------------------------------------------------------------------------------
# feature-network losses (perceptual, LPIPS, identity)
# --------------------------------------------------------------------------------------------------


def _freeze(net: nn.Module) -> nn.Module:
    net.requires_grad_(False)
    return net.eval()


def _feature_list(out: object, keys: Sequence | None) -> list[Tensor]:
    """Turn a feature network's output (tensor, list/tuple or dict) into a list, optionally by ``keys``."""
    if isinstance(out, Tensor):
        items: list | dict = [out]
    elif isinstance(out, Mapping):
        items = dict(out)
    elif isinstance(out, (list, tuple)):
        items = list(out)
    else:
        raise TypeError(
            f"feature network must return a tensor, a list/tuple or a dict, got {type(out).__name__}"
        )
    if keys is None:
        return list(items.values()) if isinstance(items, dict) else items
    try:
        return [items[k] for k in keys]
    except (KeyError, IndexError) as err:
        raise KeyError(f"feature {err} is not in the feature network's output") from err


_CRITERIA: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"l1": F.l1_loss, "mse": F.mse_loss}


class PerceptualLoss(nn.Module):
    r"""Perceptual (feature reconstruction) loss :math:`\sum_l w_l \, d(\phi_l(x), \phi_l(y))`.

    ``feature_net`` is frozen (``requires_grad=False``, kept in eval mode). Target features are computed
    without gradient. Recipes: PSGAN, MSE on VGG16 ``features`` output (``weights=[1]``); GANnotation, MSE
    summed over VGG16 relu1_2, relu2_2, relu3_3, relu4_3; MaskGAN (pix2pixHD), L1 on VGG19 relu1_1..relu5_1
    with weights 1/32, 1/16, 1/8, 1/4, 1. See :meth:`from_vgg` for the facezoo VGG.

    Args:
        feature_net: module mapping ``(B, 3, H, W)`` images in [-1, 1] to a list/tuple or dict of feature
            maps.
        layer_weights: ``None`` (all layers, weight 1); a sequence of weights, one per output of the network
            in order; or a dict ``key -> weight`` selecting outputs by dict key or list index.
        criterion: ``"l1"`` or ``"mse"`` (mean over each feature map).

    Example:
        >>> loss = PerceptualLoss(nn.Conv2d(3, 4, 3), criterion="mse")  # a tensor output is one layer
        >>> float(loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8)))
        0.0
    """

    def __init__(
        self,
        feature_net: nn.Module,
        layer_weights: Sequence[float] | Mapping[str | int, float] | None = None,
        criterion: str = "l1",
    ) -> None:
        super().__init__()
        if criterion not in _CRITERIA:
            raise ValueError(f"criterion must be one of {sorted(_CRITERIA)}, got {criterion!r}")
        self.feature_net = _freeze(feature_net)
        self.criterion = criterion
        if isinstance(layer_weights, Mapping):
            self._keys: list | None = list(layer_weights.keys())
            self._weights: list[float] | None = [float(w) for w in layer_weights.values()]
        else:
            self._keys = None
            self._weights = None if layer_weights is None else [float(w) for w in layer_weights]

    @classmethod
    def from_vgg(
        cls,
        arch: str = "vgg16",
        layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        layer_weights: Sequence[float] | None = None,
        criterion: str = "mse",
        weights: str | None = None,
    ) -> PerceptualLoss:
        """Perceptual loss on :class:`facezoo.nets.vgg.VGGFeatures` (defaults: GANnotation's VGG16 recipe).

        Args:
            arch: ``"vgg16"`` or ``"vgg19"``.
            layers: layer names, in output order.
            layer_weights: one weight per layer (all 1 when ``None``).
            criterion: ``"l1"`` or ``"mse"``.
            weights: weight spec passed to ``VGGFeatures`` (``None`` = random initialisation).

        Returns:
            a :class:`PerceptualLoss`.
        """
        from facezoo.nets.vgg import VGGFeatures

        net = VGGFeatures(arch=arch, layers=tuple(layers), weights=weights)
        return cls(net, layer_weights=layer_weights, criterion=criterion)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.feature_net.eval()
        return self

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Args: input, target ``(B, 3, H, W)`` in [-1, 1]. Returns: scalar tensor, >= 0."""
        _check_image(input, "input")
        _check_same_shape(input, target, "input and target")
        feats = _feature_list(self.feature_net(input), self._keys)
        with torch.no_grad():
            target_feats = _feature_list(self.feature_net(target), self._keys)
        weights = [1.0] * len(feats) if self._weights is None else self._weights
        if len(weights) != len(feats):
            raise ValueError(
                f"feature network returned {len(feats)} features but {len(weights)} weights were given"
            )
        crit = _CRITERIA[self.criterion]
        return sum(w * crit(f, t) for w, f, t in zip(weights, feats, target_feats))

    def extra_repr(self) -> str:
        return f"criterion={self.criterion!r}, keys={self._keys}, weights={self._weights}"


class LPIPSLoss(nn.Module):
    """LPIPS distance (Zhang et al. 2018) as a frozen loss (pSp's LPIPS term).

    The network comes from :func:`facezoo.nets.lpips_net.lpips_network`: the v0.1 linear heads ship inside the
    ``lpips`` wheel; the torchvision backbone is resolved through :mod:`facezoo.nets.weights`. A random
    backbone (``backbone_weights=None``) makes the distance meaningless for training: tests only.

    Args:
        net: backbone, ``"alex"`` (pSp's choice) | ``"vgg"`` | ``"squeeze"``.
        backbone_weights: ``"imagenet"`` (resolve the torchvision file), a path to it, or ``None``.

    Shape:
        input, target: ``(B, 3, H, W)`` in [-1, 1]; output: scalar (mean over the batch), >= 0.
    """

    def __init__(self, net: str = "alex", backbone_weights: str | os.PathLike | None = "imagenet") -> None:
        super().__init__()
        from facezoo.nets.lpips_net import lpips_network

        self.model = lpips_network(net, backbone_weights=backbone_weights)
        self.net_name = net

    def train(self, mode: bool = True) -> LPIPSLoss:
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Args: input, target ``(B, 3, H, W)`` in [-1, 1]. Returns: mean LPIPS distance, scalar >= 0."""
        _check_image(input, "input", channels=3)
        _check_same_shape(input, target, "input and target")
        return self.model(input, target, normalize=False).mean()

    def extra_repr(self) -> str:
        return f"net={self.net_name!r}"


def _crop_box(crop: Sequence[float], height: int, width: int, reference: int) -> tuple[int, int, int, int]:
    if len(crop) != 4:
        raise ValueError(f"crop must be (top, bottom, left, right), got {crop}")
    if all(isinstance(c, float) and 0.0 <= c <= 1.0 for c in crop):
        sy, sx = height, width  # fractions of the image
    else:
        sy, sx = height / reference, width / reference  # pixels of a reference x reference image
    top, bottom, left, right = (
        round(crop[0] * sy),
        round(crop[1] * sy),
        round(crop[2] * sx),
        round(crop[3] * sx),
    )
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise ValueError(f"crop {crop} gives an empty or out-of-bounds box on a {height}x{width} image")
    return top, bottom, left, right


class IdentityLoss(nn.Module):
    r"""Identity-preserving loss: distance between face-recognition features of the output and the target.

    The images are preprocessed (crop, resize, grayscale, value range), passed through the frozen
    ``feature_net``; the target's features are computed without gradient. If the network returns several
    tensors, the distances are summed.

    Recipes:

    - TP-GAN / GANnotation (Light-CNN): ``IdentityLoss(lightcnn, "l1", resize=128, grayscale=True,
      value_range=(0, 1))``, network returning (fc vector, last pooled map) (``outputs`` selects them).
    - pSp (ArcFace IR-SE50): ``IdentityLoss(irse50, "cosine", crop=(35, 223, 32, 220), resize=112)``:
      :math:`1 - \cos(f(\hat y), f(y))` on the inner-face crop of a 256 image, average-pooled to 112.

    Args:
        feature_net: frozen network mapping preprocessed images to a tensor, a list/tuple or a dict of
            tensors.
        distance: ``"l1"`` | ``"mse"`` (means over the features) | ``"cosine"`` (``1 - cos`` of the flattened
            per-sample features, averaged over the batch).
        crop: ``(top, bottom, left, right)``; four floats in [0, 1] are fractions of the image, otherwise
            pixel coordinates in a ``crop_reference`` x ``crop_reference`` image, scaled to the actual size
            (pSp: ``(35, 223, 32, 220)`` on 256).
        resize: output size (int or ``(h, w)``) after cropping: adaptive average pooling when shrinking (pSp's
            ``face_pool``), bilinear when enlarging; ``None`` keeps the size.
        grayscale: convert to one channel (``kornia.color.rgb_to_grayscale``), as Light-CNN expects.
        value_range: the range the network expects; images are mapped linearly from [-1, 1] to it.
        outputs: optional keys/indices selecting which network outputs are compared.
        crop_reference: the reference size for pixel crops.

    Shape:
        input, target: ``(B, 3, H, W)`` in [-1, 1]; output: scalar, >= 0 (cosine: in [0, 2]).
    """

    def __init__(
        self,
        feature_net: nn.Module,
        distance: str = "l1",
        crop: Sequence[float] | None = None,
        resize: int | tuple[int, int] | None = None,
        grayscale: bool = False,
        value_range: tuple[float, float] = (-1.0, 1.0),
        outputs: Sequence[int | str] | None = None,
        crop_reference: int = 256,
    ) -> None:
        super().__init__()
        if distance not in ("l1", "mse", "cosine"):
            raise ValueError(f"distance must be 'l1', 'mse' or 'cosine', got {distance!r}")
        if crop is not None and len(crop) != 4:
            raise ValueError(f"crop must be (top, bottom, left, right), got {crop}")
        self.feature_net = _freeze(feature_net)
        self.distance = distance
        self.crop = None if crop is None else tuple(crop)
        self.resize = (
            (resize, resize) if isinstance(resize, int) else (None if resize is None else tuple(resize))
        )
        self.grayscale = grayscale
        self.value_range = tuple(value_range)
        self.outputs = None if outputs is None else list(outputs)
        self.crop_reference = crop_reference

    @classmethod
    def from_lightcnn(cls, weights: str | os.PathLike | None = "lightcnn29_v2") -> IdentityLoss:
        """TP-GAN's and GANnotation's recipe: L1 on LightCNN-29 v2's (fc, last pooled map) of grey 128² faces.

        Args:
            weights: the registry name ``"lightcnn29_v2"`` (resolved through :mod:`facezoo.nets.weights`) or a
                path to ``LightCNN_29Layers_V2_checkpoint.pth.tar``.

        Raises:
            WeightsNotFoundError: the file cannot be found (one-line message naming it).
        """
        from facezoo.nets.lightcnn import LightCNN29v2, LightCNNFeatures

        net = LightCNN29v2.from_pretrained(None if weights in (None, "lightcnn29_v2") else weights)
        return cls(LightCNNFeatures(net), "l1", resize=128, grayscale=True, value_range=(0, 1))

    def train(self, mode: bool = True) -> IdentityLoss:
        super().train(mode)
        self.feature_net.eval()
        return self

    def preprocess(self, img: Tensor) -> Tensor:
        """Crop, resize, grayscale and rescale ``(B, 3, H, W)`` images in [-1, 1] for the feature network."""
        _check_image(img, "img", channels=3)
        if self.crop is not None:
            top, bottom, left, right = _crop_box(self.crop, img.shape[-2], img.shape[-1], self.crop_reference)
            img = img[..., top:bottom, left:right]
        if self.resize is not None and tuple(img.shape[-2:]) != self.resize:
            if img.shape[-2] >= self.resize[0] and img.shape[-1] >= self.resize[1]:
                img = F.adaptive_avg_pool2d(img, self.resize)
            else:
                img = F.interpolate(img, size=self.resize, mode="bilinear", align_corners=False)
        if self.grayscale:
            img = kornia.color.rgb_to_grayscale(img)
        lo, hi = self.value_range
        return (img + 1.0) * 0.5 * (hi - lo) + lo

    def _distance(self, f: Tensor, t: Tensor) -> Tensor:
        if self.distance == "l1":
            return F.l1_loss(f, t)
        if self.distance == "mse":
            return F.mse_loss(f, t)
        return (1.0 - F.cosine_similarity(f.flatten(1), t.flatten(1), dim=1)).mean()

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Args: input (generated), target ``(B, 3, H, W)`` in [-1, 1]. Returns: scalar tensor."""
        _check_same_shape(input, target, "input and target")
        feats = _feature_list(self.feature_net(self.preprocess(input)), self.outputs)
        with torch.no_grad():
            target_feats = _feature_list(self.feature_net(self.preprocess(target)), self.outputs)
        return sum(self._distance(f, t) for f, t in zip(feats, target_feats))

    def extra_repr(self) -> str:
        return (
            f"distance={self.distance!r}, crop={self.crop}, resize={self.resize}, "
            f"grayscale={self.grayscale}, value_range={self.value_range}"
        )


# --------------------------------------------------------------------------------------------------
# feature matching (pix2pixHD / MaskGAN) and KL (MaskVAE)
# --------------------------------------------------------------------------------------------------


def _nested_features(feats: Sequence, name: str, drop_last: bool) -> list[list[Tensor]]:
    if isinstance(feats, Tensor) or not isinstance(feats, (list, tuple)) or len(feats) == 0:
        raise ValueError(f"{name} must be a non-empty list (over scales) of lists of feature tensors")
    scales = [feats] if isinstance(feats[0], Tensor) else list(feats)
    out = []
    for s in scales:
        s = list(s)[:-1] if drop_last else list(s)
        if len(s) == 0 or not all(isinstance(f, Tensor) for f in s):
            raise ValueError(f"{name}: every scale needs at least one feature tensor")
        out.append(s)
    return out


def feature_matching_loss(fake_feats: Sequence, real_feats: Sequence, drop_last: bool = False) -> Tensor:
    r"""pix2pixHD discriminator feature-matching loss (MaskGAN's ``lambda_feat`` term, weight left to the
    caller).

    :math:`\frac{1}{D}\sum_{d=1}^{D} \frac{4}{L_d} \sum_{l=1}^{L_d} \mathrm{mean}|F^{d}_l(\hat y) -
    \mathrm{sg} [F^{d}_l(y)]|` where :math:`L_d` is the number of intermediate feature maps of scale ``d``
    (pix2pixHD's ``4 / (n_layers_D + 1)`` with ``n_layers_D + 1`` intermediate maps) and the real features are
    detached.

    Args:
        fake_feats: list over discriminator scales of lists of feature maps on the generated image,
            **without** the final logits (or with them and ``drop_last=True``); a flat list of tensors is one
            scale.
        real_feats: the same structure on the real image.
        drop_last: drop the last element (the logits) of every scale's list.

    Returns:
        scalar tensor, >= 0.
    """
    fake = _nested_features(fake_feats, "fake_feats", drop_last)
    real = _nested_features(real_feats, "real_feats", drop_last)
    if [len(s) for s in fake] != [len(s) for s in real]:
        fake_sizes, real_sizes = [len(s) for s in fake], [len(s) for s in real]
        raise ValueError(f"fake and real features differ in structure: {fake_sizes} vs {real_sizes}")
    total = fake[0][0].new_zeros(())
    for fs, rs in zip(fake, real):
        for f, r in zip(fs, rs):
            _check_same_shape(f, r, "fake and real features")
            total = total + 4.0 / len(fs) * (f - r.detach()).abs().mean()
    return total / len(fake)


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""KL divergence of a diagonal Gaussian from the standard normal (VAE / MaskVAE).

    :math:`-\frac{1}{2}\sum_k (1 + \log\sigma_k^2 - \mu_k^2 - \sigma_k^2)`, **summed over the latent
    dimensions** (all dims but the first) and **averaged over the batch**.

    Args:
        mu: means ``(B, D)`` (or ``(B, ...)``).
        logvar: log-variances :math:`\log\sigma^2`, same shape.

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> kl_divergence(torch.zeros(2, 8), torch.zeros(2, 8))
        tensor(0.)
    """
    _check_tensor(mu, "mu")
    if mu.ndim < 2:
        raise ValueError(f"mu must have shape (B, D), got {tuple(mu.shape)}")
    _check_same_shape(mu, logvar, "mu and logvar")
    kl = -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())
    return kl.flatten(1).sum(1).mean()
