"""Projection: the latent that makes a StyleGAN2 generator reproduce an image, by optimisation.

What users pick when they have no encoder, and the baseline pSp's inversion is measured against. It follows
rosinality's ``projector.py`` (``rosinality/stylegan2-pytorch``), itself the StyleGAN2 paper's projector: Adam on
the latent (one w, or one per layer in W+) and on the per-layer noise maps, starting at the mean w; the
learning rate ramps up over the first 5 % and down (cosine) over the last 25 % of the steps; Gaussian noise of
``noise · σ_w`` added to the latent decays quadratically over the first 75 %; the noise maps are regularised
towards white noise (their autocorrelation at every scale down to 8 px, weight 1e5) and renormalised after each
step. The image distance is LPIPS (VGG) when its weights are present; offline it is MSE plus the distance of
facezoo's synthetic-face landmark network features (:class:`facezoo.nets.landmarks.LandmarkFeatures`).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

log = logging.getLogger(__name__)

__all__ = ["Projection", "project", "image_distance", "noise_regularize"]


@dataclass
class Projection:
    """The result of :func:`project`.

    Attributes:
        latents: ``(B, 512)`` (space ``"w"``) or ``(B, n_latent, 512)`` (``"w+"``).
        images: ``(B, 3, S, S)`` in [-1, 1], the generator's reconstructions.
        noises: the optimised noise maps, one ``(B, 1, h, w)`` per layer.
        losses: the image distance at each step (the last one is the result's).
    """

    latents: Tensor
    images: Tensor
    noises: list[Tensor]
    losses: list[float]


def noise_regularize(noises: list[Tensor]) -> Tensor:
    """Squared autocorrelation of each noise map with its one-pixel shifts, at every scale down to 8 px."""
    loss = noises[0].new_zeros(())
    for noise in noises:
        size = noise.shape[2]
        while True:
            loss = loss + (noise * torch.roll(noise, 1, dims=3)).mean().pow(2) \
                + (noise * torch.roll(noise, 1, dims=2)).mean().pow(2)
            if size <= 8:
                break
            noise = noise.reshape(-1, 1, size // 2, 2, size // 2, 2).mean((3, 5))
            size //= 2
    return loss


def image_distance(device=None) -> tuple[Callable[[Tensor, Tensor], Tensor], str]:
    """``(distance(fake, real) → (B,), name)``: LPIPS-VGG when its weights can be had, else MSE + the synthetic
    landmark network's feature distance (weights shipped with facezoo). Built once per device and process (the
    evaluation projects batch after batch: one weight lookup and one log line, not one per batch)."""
    return _image_distance(str(torch.device(device or "cpu")))


@functools.lru_cache(maxsize=4)
def _image_distance(device: str) -> tuple[Callable[[Tensor, Tensor], Tensor], str]:
    from facezoo.nets.weights import WeightsNotFoundError

    try:
        from facezoo.nets.lpips_net import lpips_network

        net = lpips_network("vgg", backbone_weights="imagenet").to(device).eval().requires_grad_(False)
        return (lambda fake, real: net(fake, real).flatten()), "lpips_vgg"
    except (WeightsNotFoundError, FileNotFoundError) as err:
        log.info("projection: LPIPS unavailable (%s); using MSE + landmark-network features", err)
    from facezoo.nets.landmarks import HeatmapLandmarkNet, LandmarkFeatures

    features = LandmarkFeatures(HeatmapLandmarkNet.from_pretrained()).to(device)

    def distance(fake: Tensor, real: Tensor) -> Tensor:
        mse = (fake - real).pow(2).flatten(1).mean(1)
        return mse + (features(fake) - features(real)).pow(2).mean(1)

    return distance, "mse+landmark_features"


def _lr(t: float, lr: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    ramp = min(1.0, (1 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return lr * ramp * min(1.0, t / rampup)


def _at_most_256(images: Tensor) -> Tensor:
    """Images above 256 px are average-pooled to 256 for the distance (``projector.py``)."""
    return F.adaptive_avg_pool2d(images, 256) if images.shape[-1] > 256 else images


def project(generator: nn.Module, images: Tensor, steps: int = 1000, space: str = "w+", lr: float = 0.1,
            noise: float = 0.05, noise_ramp: float = 0.75, noise_weight: float = 1e5, mse: float = 0.0,
            distance: Callable[[Tensor, Tensor], Tensor] | None = None, n_mean_latent: int = 10_000,
            seed: int = 0) -> Projection:
    """Project ``images`` into the latent space of a StyleGAN2 generator (:mod:`facezoo.nets.stylegan2`).

    Args:
        generator: the generator (its ``g_ema``); kept frozen.
        images: ``(B, 3, S, S)`` in [-1, 1] at the generator's resolution.
        steps: optimisation steps (rosinality: 1000).
        space: ``"w+"`` (one latent per layer) or ``"w"`` (one latent).
        lr, noise, noise_ramp, noise_weight, mse: rosinality's ``--lr``, ``--noise``, ``--noise_ramp``,
            ``--noise_regularize`` and ``--mse``.
        distance: ``distance(fake, real) → (B,)``; ``None`` picks :func:`image_distance`.
        n_mean_latent: samples for the mean and spread of w.
        seed: seed of the random starting noise maps and latent noise.

    Returns:
        :class:`Projection`.

    Example:
        >>> from facezoo.nets.stylegan2 import Generator
        >>> g = Generator(32, 16, 2, channel_multiplier=1, narrow=0.0625)
        >>> out = project(g, torch.zeros(1, 3, 32, 32), steps=2, distance=lambda a, b: (a - b).pow(2).mean((1, 2, 3)))
        >>> out.latents.shape, out.images.shape
        (torch.Size([1, 8, 16]), torch.Size([1, 3, 32, 32]))
    """
    if space not in ("w", "w+"):
        raise ValueError(f"space must be 'w' or 'w+', got {space!r}")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[-1] != generator.size:
        raise ValueError(f"images must be (B, 3, {generator.size}, {generator.size}), got {tuple(images.shape)}")
    device = images.device
    generator = generator.eval().requires_grad_(False)
    distance = image_distance(device)[0] if distance is None else distance
    rng = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        w = generator.style(torch.randn(n_mean_latent, generator.style_dim, generator=rng).to(device))
        w_mean = w.mean(0)
        w_std = ((w - w_mean).pow(2).sum() / n_mean_latent).sqrt().item()
    b = images.shape[0]
    noises = [torch.randn(b, *n.shape[1:], generator=rng).to(device).requires_grad_(True)
              for n in generator.make_noise()]
    latent = w_mean.detach().clone().repeat(b, 1)
    if space == "w+":
        latent = latent[:, None].repeat(1, generator.n_latent, 1)
    latent.requires_grad_(True)
    optimizer = torch.optim.Adam([latent, *noises], lr=lr)
    losses: list[float] = []
    for i in range(steps):
        t = i / steps
        optimizer.param_groups[0]["lr"] = _lr(t, lr)
        strength = w_std * noise * max(0.0, 1 - t / noise_ramp) ** 2
        noisy = latent + torch.randn(latent.shape, generator=rng).to(device) * strength
        fake = generator([noisy], input_is_latent=True, noise=noises)[0]
        dist = distance(_at_most_256(fake), _at_most_256(images))
        loss = dist.mean() + noise_weight * noise_regularize(noises) + mse * F.mse_loss(fake, images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for n in noises:
                n.sub_(n.mean()).div_(n.std())
        losses.append(dist.detach().mean().item())
    with torch.no_grad():
        result = generator([latent], input_is_latent=True, noise=noises)[0]
    return Projection(latent.detach(), result, [n.detach() for n in noises], losses)
