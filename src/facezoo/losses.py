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

Sections: adversarial objectives, discriminator feature matching, pixel losses, symmetry, total variation,
heatmap loss, the PSGAN makeup loss, the VAE's KL divergence, pSp's w-norm, perceptual, LPIPS, identity.
Operations that are not losses live elsewhere: landmark heatmaps in :mod:`facezoo.face.heatmaps`, histogram
matching in :mod:`facezoo.ops`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facezoo._checks import _as_mask, _check_image, _check_same_shape, _check_tensor, _to_unit
from facezoo.ops import histogram_match

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
    "kl_divergence",
    "lsgan_d_loss",
    "lsgan_g_loss",
    "makeup_loss",
    "multiscale_pixel_l1",
    "ns_d_loss",
    "ns_g_loss",
    "pixel_l1",
    "symmetry_loss",
    "total_variation",
    "w_norm",
    "wgan_d_loss",
    "wgan_g_loss",
]

Logits = Tensor | Sequence[Tensor] | Sequence[Sequence[Tensor]]
"""Discriminator output: a tensor, a list over scales, or pix2pixHD's list over scales of feature lists."""

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


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
    official code smooths the real label to 0.9 (``HRLTY/TP-GAN: TP_GAN-Mar6FS.py``).

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

    Run it outside autocast under ``16-mixed`` (the double backward of AMP-scaled losses; Lightning's
    manual-optimization guide).

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
# discriminator feature matching (pix2pixHD, MaskGAN)
# --------------------------------------------------------------------------------------------------


def feature_matching_loss(fake_features: Sequence[Sequence[Tensor]],
                          real_features: Sequence[Sequence[Tensor]]) -> Tensor:
    r"""pix2pixHD's discriminator feature-matching loss, with its layer and scale weights.

    :math:`\frac{1}{D} \sum_{d=1}^{D} \frac{4}{L} \sum_{l=1}^{L} \mathrm{mean}\,|F^d_l(\hat y) -
    \mathrm{sg}[F^d_l(y)]|` over the ``L`` intermediate feature maps of each of the ``D`` scales of a multi-scale
    discriminator that returns every layer's output (``getIntermFeat``): the last output of each scale (the
    patch logits) is not matched, so ``L = n_layers_D + 1`` and the weights are pix2pixHD's
    ``4 / (n_layers_D + 1)`` and ``1 / num_D`` (``NVIDIA/pix2pixHD: models/pix2pixHD_model.py``, also
    ``switchablenorms/CelebAMask-HQ: MaskGAN_demo/models/pix2pixHD_model.py forward``). The real features are
    detached; the caller's weight is ``lambda_feat`` (10).

    Args:
        fake_features: per scale, the discriminator's outputs on generated images (features, then logits).
        real_features: the same structure on real images.

    Returns:
        scalar tensor, >= 0.

    Raises:
        ValueError: the two structures differ, a scale has no intermediate features, or shapes differ.

    Example:
        >>> fake = [[torch.ones(1, 2, 4, 4), torch.zeros(1, 1, 2, 2)]]    # one scale: one feature map + logits
        >>> real = [[torch.zeros(1, 2, 4, 4), torch.ones(1, 1, 2, 2)]]
        >>> feature_matching_loss(fake, real)                              # 4/1 * |1 - 0|, logits ignored
        tensor(4.)
    """
    if not isinstance(fake_features, (list, tuple)) or not isinstance(real_features, (list, tuple)):
        raise ValueError("fake_features and real_features must be lists over discriminator scales")
    fake_sizes = [len(s) if isinstance(s, (list, tuple)) else None for s in fake_features]
    real_sizes = [len(s) if isinstance(s, (list, tuple)) else None for s in real_features]
    if not fake_sizes or None in fake_sizes or fake_sizes != real_sizes:
        raise ValueError(f"fake_features and real_features must be equal, non-empty lists of feature lists, "
                         f"got sizes {fake_sizes} and {real_sizes}")
    if min(fake_sizes) < 2:
        raise ValueError("every scale needs intermediate features before its logits (getIntermFeat)")
    total = None
    for fake_scale, real_scale in zip(fake_features, real_features):
        weight = 4.0 / (len(fake_scale) - 1) / len(fake_features)
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            _check_same_shape(_check_tensor(f, "fake feature"), _check_tensor(r, "real feature"),
                              "fake and real features")
            term = weight * (f - r.detach()).abs().mean()
            total = term if total is None else total + term
    return total


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
# heatmap loss (the landmark network)
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# PSGAN makeup loss (histogram matching: facezoo.ops)
# --------------------------------------------------------------------------------------------------


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
# VAE (MaskGAN's MaskVAE)
# --------------------------------------------------------------------------------------------------


def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
    r"""KL divergence of a diagonal Gaussian posterior from the standard normal prior.

    :math:`\mathrm{KL}(\mathcal N(\mu, \sigma^2) \,\|\, \mathcal N(0, I)) = -\frac{1}{2} \sum_k (1 + \log\sigma_k^2 -
    \mu_k^2 - \sigma_k^2)`, **summed** over the latent dimensions and **averaged** over the batch (the VAE
    term of Kingma & Welling).

    Args:
        mu: posterior means.
        logvar: posterior log-variances :math:`\log\sigma^2`, same shape.

    Returns:
        scalar tensor, >= 0 (0 when ``mu = 0`` and ``logvar = 0``).

    Shape:
        - mu, logvar: :math:`(B, D)` (or :math:`(B, *)`: all dimensions but the first are latent dimensions)

    Example:
        >>> kl_divergence(torch.zeros(2, 8), torch.zeros(2, 8))
        tensor(0.)
    """
    _check_tensor(mu, "mu")
    _check_tensor(logvar, "logvar")
    if mu.ndim < 2:
        raise ValueError(f"mu must have shape (B, D), got {tuple(mu.shape)}")
    _check_same_shape(mu, logvar, "mu and logvar")
    kl = -0.5 * (1.0 + logvar - mu.square() - logvar.exp())
    return kl.flatten(1).sum(1).mean()


def w_norm(latents: Tensor, latent_avg: Tensor | None = None) -> Tensor:
    r"""pSp's w-norm regulariser: the Frobenius norm of each sample's W+ code (minus the average latent),
    averaged over the batch (``eladrich/pixel2style2pixel: criteria/w_norm.py``: ``latent.norm(2, dim=(1, 2))``).

    Args:
        latents: :math:`(B, N, D)` W+ codes (or :math:`(B, D)`).
        latent_avg: :math:`(N, D)` or :math:`(D,)`, subtracted first (pSp's ``start_from_latent_avg``); ``None``
            measures the codes themselves.

    Returns:
        Scalar >= 0.
    """
    _check_tensor(latents, "latents")
    if latent_avg is not None:
        latents = latents - latent_avg
    return latents.flatten(1).norm(2, dim=1).mean()


# --------------------------------------------------------------------------------------------------
# feature-network losses (perceptual, identity)
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
        normalize_input: bool = True,
    ) -> PerceptualLoss:
        """Perceptual loss on :class:`facezoo.nets.vgg.VGGFeatures` (defaults: GANnotation's VGG16 recipe).

        Args:
            arch: ``"vgg16"`` or ``"vgg19"``.
            layers: layer names, in output order.
            layer_weights: one weight per layer (all 1 when ``None``).
            criterion: ``"l1"`` or ``"mse"``.
            weights: weight spec passed to ``VGGFeatures`` (``None`` = random initialisation).
            normalize_input: ImageNet-normalise the [-1, 1] inputs (PSGAN's and GANnotation's official code
                feed them unnormalised: ``False``).

        Returns:
            a :class:`PerceptualLoss`.
        """
        from facezoo.nets.vgg import VGGFeatures

        net = VGGFeatures(arch=arch, layers=tuple(layers), weights=weights, normalize_input=normalize_input)
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
    """LPIPS distance (Zhang et al. 2018) as a frozen loss (pSp's LPIPS and inner-face LPIPS terms).

    pSp's ``criteria/lpips/lpips.py`` is the v0.1 AlexNet LPIPS on inputs in [-1, 1]; here the network comes
    from :func:`facezoo.nets.lpips_net.lpips_network` (the linear heads ship inside the ``lpips`` wheel, the
    torchvision backbone is resolved through :mod:`facezoo.nets.weights`).

    Args:
        net: an ``lpips.LPIPS`` network, e.g. from :meth:`build`.

    Shape:
        input, target: ``(B, 3, H, W)`` in [-1, 1]; output: scalar (mean over the batch), >= 0.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.model = _freeze(net)

    @classmethod
    def build(cls, net: str = "alex", backbone_weights: str | os.PathLike | None = "imagenet") -> LPIPSLoss:
        """LPIPS on the ``net`` backbone (``"alex"``: pSp's; ``"vgg"``, ``"squeeze"``).

        Args:
            net: backbone name.
            backbone_weights: ``"imagenet"`` resolves the torchvision file, or a path to it; ``None`` keeps a
                random backbone (tests only: the distance is then meaningless for training).

        Raises:
            WeightsNotFoundError: the backbone file cannot be found (one line naming it).
        """
        from facezoo.nets.lpips_net import lpips_network

        return cls(lpips_network(net, backbone_weights=backbone_weights))

    def train(self, mode: bool = True) -> LPIPSLoss:
        super().train(mode)
        self.model.eval()
        return self

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        """Args: input, target ``(B, 3, H, W)`` in [-1, 1]. Returns: mean LPIPS distance, scalar >= 0."""
        _check_image(input, "input", channels=3)
        _check_same_shape(input, target, "input and target")
        return self.model(input, target, normalize=False).mean()


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

    @classmethod
    def from_arcface(cls, weights: str | os.PathLike | None = "ir_se50") -> IdentityLoss:
        """pSp's ID loss (``criteria/id_loss.py``): ``1 - cos`` of ArcFace IR-SE50 embeddings of the
        ``[35:223, 32:220]`` crop of a 256 px face (scaled to the image size), pooled to 112.

        Args:
            weights: ``"ir_se50"`` (resolved through :mod:`facezoo.nets.weights`) or a path to ``model_ir_se50.pth``.

        Raises:
            WeightsNotFoundError: the file cannot be found (one line naming it).
        """
        from facezoo.nets.irse import IRSE50

        net = IRSE50.from_pretrained(None if weights in (None, "ir_se50") else weights)
        return cls(net, "cosine", crop=(35, 223, 32, 220), resize=112)

    @classmethod
    def from_moco(cls, weights: str | os.PathLike | None = "moco_v2") -> IdentityLoss:
        """pSp's MoCo similarity loss for non-face domains (``criteria/moco_loss.py``): ``1 - cos`` of MoCo v2
        ResNet-50 features of the whole image at 224 px (pSp resizes with nearest interpolation; here an average
        pool when shrinking, bilinear when enlarging).

        Raises:
            WeightsNotFoundError: ``moco_v2_800ep_pretrain.pt`` cannot be found (one line naming it).
        """
        from facezoo.nets.moco import MoCoFeatures

        return cls(MoCoFeatures.from_pretrained(None if weights in (None, "moco_v2") else weights), "cosine",
                   resize=224)

    @torch.no_grad()
    def similarity(self, a: Tensor, b: Tensor) -> Tensor:
        """Per-sample cosine similarity of the (first) features of two image batches, without gradient.

        pSp logs ``mean(sim(ŷ, y) − sim(y, x))`` as the identity improvement over the input.

        Args:
            a, b: ``(B, 3, H, W)`` in [-1, 1].

        Returns:
            ``(B,)`` in [-1, 1].
        """
        fa = _feature_list(self.feature_net(self.preprocess(a)), self.outputs)[0]
        fb = _feature_list(self.feature_net(self.preprocess(b)), self.outputs)[0]
        return F.cosine_similarity(fa.flatten(1), fb.flatten(1), dim=1)

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
