"""Evaluation metrics and their registry.

All image metrics take two batches ``fake`` and ``real`` of shape (B, C, H, W) in **[-1, 1]** (the
facezoo convention) and return a scalar tensor (``reduction="mean"``) or one value per image
(``reduction="none"``). Per-batch metrics are registered in :data:`METRICS` and computed together by
:func:`compute_metrics`, in the spirit of StyleGAN2-ADA's metric registry; :class:`FID` accumulates
over a whole dataset instead.

Conventions:

- ``psnr`` uses ``data_range=2`` on [-1, 1] images, which equals PSNR on images mapped to [0, 1] with
  ``data_range=1`` (PSNR only depends on ``MSE / data_range**2``).
- ``ssim`` maps both images to [0, 1] and uses ``data_range=1`` (SSIM's luminance term is not
  shift-invariant, so the mapping matters; this matches published [0, 1] / [0, 255] numbers).
- ``lpips`` uses the ``lpips`` package (AlexNet by default, as pSp), inputs in [-1, 1].

Example:
    >>> fake = torch.zeros(2, 3, 8, 8); real = torch.full((2, 3, 8, 8), 0.5)
    >>> {k: round(float(v), 3) for k, v in compute_metrics(["l1", "mse", "psnr"], fake, real).items()}
    {'l1': 0.5, 'mse': 0.25, 'psnr': 12.041}
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import (
    multiscale_structural_similarity_index_measure,
    structural_similarity_index_measure,
)
from torchmetrics.image.fid import FrechetInceptionDistance

__all__ = [
    "l1",
    "mse",
    "psnr",
    "ssim",
    "ms_ssim",
    "lpips",
    "identity_similarity",
    "landmark_nme",
    "region_histogram_distance",
    "pixel_accuracy",
    "mean_iou",
    "edited_pixels",
    "EYE_CORNERS",
    "FID",
    "MetricSpec",
    "METRICS",
    "DISTRIBUTION_METRICS",
    "distribution_extractor",
    "compute_metrics",
]

#: Landmark count -> indices of the two points whose distance normalises NME: the outer eye corners
#: 36 and 45 of iBUG-68 (the same indices in the 66-point scheme, which drops mouth points 60 and 64),
#: and the two eye centres 0 and 1 of the 5-point scheme (eyes, nose, mouth corners).
EYE_CORNERS: dict[int, tuple[int, int]] = {68: (36, 45), 66: (36, 45), 5: (0, 1)}


def _check_images(fake: torch.Tensor, real: torch.Tensor) -> None:
    if not isinstance(fake, torch.Tensor) or not isinstance(real, torch.Tensor):
        raise TypeError(f"fake and real must be tensors, got {type(fake).__name__} and {type(real).__name__}")
    if fake.ndim != 4 or fake.shape != real.shape:
        raise ValueError(
            f"fake and real must be (B, C, H, W) batches of the same shape, got {tuple(fake.shape)} and "
            f"{tuple(real.shape)}"
        )


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def l1(fake: torch.Tensor, real: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean absolute error.

    Args:
        fake: :math:`(B, C, H, W)` in [-1, 1].
        real: same shape.
        reduction: ``"mean"`` (scalar) or ``"none"`` (per image, :math:`(B,)`).

    Returns:
        L1 on the [-1, 1] scale (half of the [0, 1] value).

    Example:
        >>> float(l1(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))
        1.0
    """
    _check_images(fake, real)
    return _reduce((fake - real).abs().flatten(1).mean(1), reduction)


def mse(fake: torch.Tensor, real: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error (pSp's "L2" metric).

    Args:
        fake: :math:`(B, C, H, W)` in [-1, 1].
        real: same shape.
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        MSE on the [-1, 1] scale (four times the [0, 1] value).

    Example:
        >>> float(mse(torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)))
        1.0
    """
    _check_images(fake, real)
    return _reduce((fake - real).square().flatten(1).mean(1), reduction)


def psnr(
    fake: torch.Tensor, real: torch.Tensor, data_range: float = 2.0, reduction: str = "mean"
) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, per image then averaged.

    :math:`10 \\log_{10}(\\text{data\\_range}^2 / \\text{MSE})`; identical images give ``inf``.

    Args:
        fake: :math:`(B, C, H, W)` in [-1, 1].
        real: same shape.
        data_range: value range of the images (2 for [-1, 1], equivalent to 1 on [0, 1]).
        reduction: ``"mean"`` (mean of per-image PSNRs) or ``"none"``.

    Returns:
        PSNR in dB, higher is better.

    Example:
        >>> round(float(psnr(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.2))), 4)  # MSE 0.04
        20.0
    """
    _check_images(fake, real)
    err = (fake - real).square().flatten(1).mean(1)
    return _reduce(10 * torch.log10(data_range**2 / err), reduction)


def ssim(fake: torch.Tensor, real: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Structural similarity (Gaussian window 11, sigma 1.5) of images mapped to [0, 1].

    Args:
        fake: :math:`(B, C, H, W)` in [-1, 1], H and W at least 11.
        real: same shape.
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        SSIM in [-1, 1], 1 for identical images.
    """
    _check_images(fake, real)
    if min(fake.shape[-2:]) < 11:
        raise ValueError(f"ssim needs images of at least 11x11 pixels, got {tuple(fake.shape[-2:])}")
    values = structural_similarity_index_measure(
        (fake.float() + 1) / 2, (real.float() + 1) / 2, data_range=1.0, reduction="none"
    )
    return _reduce(values, reduction)


#: MS-SSIM's five scale weights (Wang et al. 2003)
MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(fake: torch.Tensor, real: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Multi-scale SSIM (Gaussian window 11, sigma 1.5) of images mapped to [0, 1], as the pSp / HyperStyle tables.

    The five standard scales need sides of at least 161 px; smaller images use as many scales as fit (the first
    weights of :data:`MS_SSIM_BETAS`, renormalised: 3 scales at 64 px), so values at small sizes are comparable
    with each other, not with published 256 px numbers.

    Args:
        fake: :math:`(B, C, H, W)` in [-1, 1], H and W at least 11.
        real: same shape.
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        MS-SSIM in [0, 1], 1 for identical images.
    """
    _check_images(fake, real)
    side = min(fake.shape[-2:])
    if side < 11:
        raise ValueError(f"ms_ssim needs images of at least 11x11 pixels, got {tuple(fake.shape[-2:])}")
    scales = max(n for n in range(1, 6) if n == 1 or side > 10 * 2 ** (n - 1))
    betas = torch.tensor(MS_SSIM_BETAS[:scales])
    values = multiscale_structural_similarity_index_measure(
        (fake.float() + 1) / 2, (real.float() + 1) / 2, data_range=1.0, reduction="none",
        betas=tuple((betas / betas.sum()).tolist()), normalize="relu")
    return _reduce(values, reduction)


@functools.lru_cache(maxsize=4)
def _default_lpips(net: str) -> nn.Module:
    from facezoo.nets.lpips_net import lpips_network

    return lpips_network(net, backbone_weights="imagenet")


def lpips(
    fake: torch.Tensor, real: torch.Tensor, net: nn.Module | None = None, reduction: str = "mean"
) -> torch.Tensor:
    """Learned perceptual image patch similarity (Zhang et al. 2018).

    Args:
        fake: :math:`(B, 3, H, W)` in [-1, 1]; H, W >= 32 for the AlexNet backbone.
        real: same shape.
        net: an ``lpips.LPIPS`` module (see :func:`facezoo.nets.lpips_net.lpips_network`); ``None``
            builds (once) the AlexNet LPIPS with ImageNet backbone weights from the resolver.
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        LPIPS distance, lower is better (0 for identical images).
    """
    _check_images(fake, real)
    if fake.shape[1] != 3:
        raise ValueError(f"lpips expects RGB images (B, 3, H, W), got {tuple(fake.shape)}")
    net = _default_lpips("alex") if net is None else net
    return _reduce(net(fake, real).flatten(), reduction)


def identity_similarity(
    fake: torch.Tensor,
    real: torch.Tensor,
    net: Callable[[torch.Tensor], torch.Tensor],
    reduction: str = "mean",
) -> torch.Tensor:
    """Cosine similarity of face-recognition embeddings (pSp's ID similarity, TP-GAN's identity check).

    Args:
        fake: :math:`(B, 3, H, W)` in [-1, 1], aligned faces.
        real: same shape.
        net: an identity network; its ``embed(images)`` method is used when present
            (:class:`~facezoo.nets.IRSE50`, :class:`~facezoo.nets.LightCNN29v2`), otherwise ``net(images)``
            must return :math:`(B, D)` embeddings.
        reduction: ``"mean"`` or ``"none"`` (per pair).

    Returns:
        Cosine similarity in [-1, 1], higher is better.
    """
    _check_images(fake, real)
    embed = getattr(net, "embed", net)
    fake_emb, real_emb = embed(fake), embed(real)
    if fake_emb.ndim != 2 or fake_emb.shape != real_emb.shape or fake_emb.shape[0] != fake.shape[0]:
        raise ValueError(f"identity network must return (B, D) embeddings, got {tuple(fake_emb.shape)}")
    return _reduce(F.cosine_similarity(fake_emb, real_emb, dim=1), reduction)


def landmark_nme(
    pred: torch.Tensor,
    target: torch.Tensor,
    eye_indices: tuple[int, int] | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Normalised mean error of landmarks, normalised by the inter-ocular distance of ``target``.

    :math:`\\text{NME} = \\frac{1}{N} \\sum_i \\lVert p_i - t_i \\rVert_2 / \\lVert t_a - t_b \\rVert_2`
    with :math:`(a, b)` the outer eye corners (36, 45) of iBUG-68 (also for 66 points) or the eye
    centres (0, 1) of 5 points.

    Args:
        pred: :math:`(B, N, 2)` (x, y) pixel coordinates.
        target: :math:`(B, N, 2)` ground truth in the same pixel frame.
        eye_indices: the two normalising points; ``None`` picks them from :data:`EYE_CORNERS` by ``N``.
        reduction: ``"mean"`` or ``"none"`` (per face).

    Returns:
        NME as a fraction (multiply by 100 for %), lower is better.

    Example:
        >>> t = torch.zeros(1, 5, 2); t[0, 1, 0] = 10.0          # eyes 10 px apart
        >>> float(landmark_nme(t + torch.tensor([0.0, 1.0]), t))  # every point 1 px off
        0.10000000149011612
    """
    if pred.ndim != 3 or pred.shape[-1] != 2 or pred.shape != target.shape:
        raise ValueError(
            "pred and target must be (B, N, 2) of the same shape, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    num_points = pred.shape[1]
    if eye_indices is None:
        if num_points not in EYE_CORNERS:
            raise ValueError(f"no default eye indices for {num_points} landmarks; pass eye_indices=(a, b)")
        eye_indices = EYE_CORNERS[num_points]
    a, b = eye_indices
    if not (0 <= a < num_points and 0 <= b < num_points):
        raise ValueError(f"eye_indices {eye_indices} outside 0..{num_points - 1}")
    inter_ocular = (target[:, a] - target[:, b]).norm(dim=-1)
    if bool((inter_ocular <= 0).any()):
        raise ValueError("target has a zero inter-ocular distance")
    errors = (pred - target).norm(dim=-1).mean(dim=1) / inter_ocular
    return _reduce(errors, reduction)


class FID(FrechetInceptionDistance):
    """Fréchet Inception distance over a dataset (torchmetrics' implementation, facezoo's extractor).

    ``update(images, real=...)`` takes batches in [-1, 1]; ``compute()`` returns the FID. By default the
    extractor is :class:`~facezoo.nets.FIDInceptionV3` loaded from ``weights`` (an explicit path, or
    the resolver: cache, then pytorch-fid's URL), so nothing depends on torch-fidelity. Any module
    mapping [-1, 1] images to :math:`(B, D)` features works (tests use a tiny random one).

    Args:
        extractor: a feature module; ``None`` builds the FID Inception.
        weights: path to ``pt_inception-2015-12-05-6726825d.pth`` when ``extractor`` is ``None``
            (``None`` resolves it).
        reset_real_features: whether ``reset()`` also clears the real-image statistics (``False``
            keeps them across validation epochs).
        **kwargs: forwarded to ``FrechetInceptionDistance`` / ``torchmetrics.Metric``, e.g.
            ``input_img_size=(3, H, W)``, the probe size used to infer the feature size of an extractor
            without a ``num_features`` attribute.

    Example:
        >>> fid = FID(extractor=nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), input_img_size=(3, 2, 2))
        >>> x = torch.rand(8, 3, 2, 2) * 2 - 1
        >>> fid.update(x, real=True); fid.update(x, real=False)
        >>> abs(float(fid.compute())) < 1e-3
        True
    """

    def __init__(
        self,
        extractor: nn.Module | None = None,
        weights: str | os.PathLike | None = None,
        reset_real_features: bool = True,
        **kwargs,
    ) -> None:
        if extractor is None:
            from facezoo.nets.inception import FIDInceptionV3

            extractor = FIDInceptionV3.from_pretrained(weights)
        elif weights is not None:
            raise ValueError("pass either an extractor or weights for the default Inception, not both")
        extractor.requires_grad_(False).eval()
        # normalize=True: torchmetrics feeds float images unchanged to a custom extractor (and probes
        # the feature size with a float image when the extractor has no `num_features`).
        super().__init__(feature=extractor, reset_real_features=reset_real_features, normalize=True, **kwargs)

    def update(self, imgs: torch.Tensor, real: bool) -> None:  # noqa: D102 - documented on the class
        if imgs.ndim != 4 or imgs.shape[1] != 3:
            raise ValueError(f"FID.update expects (B, 3, H, W) images in [-1, 1], got {tuple(imgs.shape)}")
        super().update(imgs, real=real)


def region_histogram_distance(
    output: torch.Tensor,
    target: torch.Tensor,
    regions: torch.Tensor,
    target_regions: torch.Tensor | None = None,
    bins: int = 64,
    reduction: str = "mean",
) -> torch.Tensor:
    r"""Per-region colour-histogram distance (how well makeup colours match; PSGAN evaluation).

    For each image, region and channel, the values inside the region are binned into ``bins`` equal bins over
    [-1, 1] and normalised to sum to 1; the distance is the L1 distance between the output's and the target's
    histograms, averaged over the 3 channels: :math:`\frac{1}{3}\sum_c \sum_k |h^{out}_{c,k} - h^{tgt}_{c,k}|`,
    in [0, 2] (0: identical colour distributions, 2: disjoint).

    Args:
        output: :math:`(B, 3, H, W)` in [-1, 1].
        target: :math:`(B, 3, H', W')` in [-1, 1] (e.g. the ground truth, or the makeup reference).
        regions: :math:`(B, R, H, W)` region masks of ``output`` (binarised by ``> 0``), e.g. PSGAN's
            lip / skin / eye masks.
        target_regions: :math:`(B, R, H', W')` masks of ``target``; default ``regions`` (same geometry).
        bins: histogram bins over [-1, 1].
        reduction: ``"mean"``: :math:`(R,)`, the mean over the images whose region is non-empty in both
            (0 where there is none); ``"none"``: :math:`(B, R)`, NaN where a region is empty.

    Returns:
        distances, see ``reduction``.

    Example:
        >>> out = torch.full((1, 3, 4, 4), -1.0); tgt = torch.ones(1, 3, 4, 4)
        >>> region_histogram_distance(out, tgt, torch.ones(1, 1, 4, 4))
        tensor([2.])
    """
    if target_regions is None:
        target_regions = regions
    for name, img, masks in (("output", output, regions), ("target", target, target_regions)):
        if not isinstance(img, torch.Tensor) or img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"{name} must be (B, 3, H, W), got {tuple(getattr(img, 'shape', ()))}")
        if not isinstance(masks, torch.Tensor) or masks.ndim != 4 or masks.shape[0] != img.shape[0] \
                or masks.shape[-2:] != img.shape[-2:]:
            raise ValueError(f"the regions of {name} must be (B, R, H, W) matching {tuple(img.shape)}, got "
                             f"{tuple(getattr(masks, 'shape', ()))}")
    if regions.shape[:2] != target_regions.shape[:2]:
        raise ValueError(f"regions and target_regions differ in (B, R): {tuple(regions.shape[:2])} vs "
                         f"{tuple(target_regions.shape[:2])}")
    if bins < 1:
        raise ValueError(f"bins must be positive, got {bins}")

    def histograms(img: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, r = masks.shape[:2]
        idx = ((img.detach().float().clamp(-1, 1) + 1) * (bins / 2)).long().clamp_(max=bins - 1).flatten(2)
        w = (masks > 0).float().flatten(2)                                     # (B, R, HW)
        hist = torch.zeros(b, r, 3, bins, device=img.device)
        hist.scatter_add_(-1, idx[:, None].expand(b, r, 3, -1), w[:, :, None].expand(b, r, 3, -1))
        count = w.sum(-1)                                                       # (B, R)
        return hist / count.clamp(min=1)[..., None, None], count

    h_out, n_out = histograms(output, regions)
    h_tgt, n_tgt = histograms(target, target_regions)
    dist = (h_out - h_tgt).abs().sum(-1).mean(-1)                               # (B, R)
    valid = (n_out > 0) & (n_tgt > 0)
    if reduction == "none":
        return torch.where(valid, dist, torch.full_like(dist, float("nan")))
    if reduction == "mean":
        return (dist * valid).sum(0) / valid.sum(0).clamp(min=1)
    raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")


def _check_label_maps(pred: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError(f"pred and target must be tensors, got {type(pred).__name__} and {type(target).__name__}")
    if pred.ndim != 3 or pred.shape != target.shape or pred.dtype.is_floating_point or target.dtype.is_floating_point:
        raise ValueError(f"pred and target must be integer (B, H, W) label maps of the same shape, got "
                         f"{tuple(pred.shape)} {pred.dtype} and {tuple(target.shape)} {target.dtype}")


def pixel_accuracy(pred: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Fraction of pixels whose label is right (segmentation accuracy of a mask).

    Args:
        pred: predicted label ids.
        target: ground-truth label ids.
        reduction: ``"mean"`` (scalar) or ``"none"`` (per image, :math:`(B,)`).

    Returns:
        values in [0, 1].

    Shape:
        - pred, target: :math:`(B, H, W)` integer

    Example:
        >>> float(pixel_accuracy(torch.tensor([[[0, 1], [1, 1]]]), torch.tensor([[[0, 1], [2, 2]]])))
        0.5
    """
    _check_label_maps(pred, target)
    return _reduce((pred == target).flatten(1).float().mean(1), reduction)


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int = 19, reduction: str = "mean") -> torch.Tensor:
    r"""Mean intersection over union of label maps, per image over the classes present in it.

    For image ``b``: :math:`\frac{1}{|C_b|} \sum_{c \in C_b} |P_c \cap T_c| / |P_c \cup T_c|`, where :math:`C_b` are
    the classes that appear in the prediction or the target (a class absent from both does not count).
    Averaging per image (not over a dataset's pooled confusion matrix) makes it a per-batch metric.

    Args:
        pred: predicted label ids in ``[0, num_classes - 1]``.
        target: ground-truth label ids, same range.
        num_classes: number of label ids (19 CelebAMask-HQ labels).
        reduction: ``"mean"`` or ``"none"`` (per image).

    Returns:
        values in [0, 1].

    Shape:
        - pred, target: :math:`(B, H, W)` integer

    Example:
        >>> round(float(mean_iou(torch.tensor([[[0, 1], [1, 1]]]), torch.tensor([[[0, 1], [0, 1]]]), 2)), 4)
        0.5833
    """
    _check_label_maps(pred, target)
    b = pred.shape[0]
    pred, target = pred.reshape(b, -1).long(), target.reshape(b, -1).long()
    if pred.numel() and (min(int(pred.min()), int(target.min())) < 0
                         or max(int(pred.max()), int(target.max())) >= num_classes):
        raise ValueError(f"label ids must lie in [0, {num_classes - 1}]")
    offset = torch.arange(b, device=pred.device)[:, None] * num_classes
    count = functools.partial(torch.bincount, minlength=b * num_classes)
    pred_n = count((pred + offset).flatten()).view(b, num_classes)
    target_n = count((target + offset).flatten()).view(b, num_classes)
    inter = count((pred + offset)[pred == target].flatten()).view(b, num_classes)
    union = pred_n + target_n - inter
    present = union > 0
    iou = inter.float() / union.clamp(min=1).float()
    return _reduce((iou * present).sum(1) / present.sum(1).clamp(min=1), reduction)


def _parsed_accuracy(fake: torch.Tensor, real: torch.Tensor | None, parser: Callable[[torch.Tensor], torch.Tensor],
                     target_mask: torch.Tensor) -> torch.Tensor:
    """:func:`pixel_accuracy` of the labels ``parser`` reads from the output against ``target_mask``."""
    return pixel_accuracy(parser(fake), target_mask)


def _parsed_miou(fake: torch.Tensor, real: torch.Tensor | None, parser: Callable[[torch.Tensor], torch.Tensor],
                 target_mask: torch.Tensor) -> torch.Tensor:
    """:func:`mean_iou` of the labels ``parser`` reads from the output against ``target_mask``."""
    return mean_iou(parser(fake), target_mask)


def edited_pixels(source_mask: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` bool: where an edited label map differs from the source's (the pixels an edit must change).

    Example:
        >>> edited_pixels(torch.tensor([[[0, 1], [1, 1]]]), torch.tensor([[[0, 2], [1, 1]]])).sum().item()
        1
    """
    _check_label_maps(source_mask, target_mask)
    return source_mask != target_mask


def _parsed_accuracy_edited(fake: torch.Tensor, real: torch.Tensor | None,
                            parser: Callable[[torch.Tensor], torch.Tensor], target_mask: torch.Tensor,
                            source_mask: torch.Tensor) -> torch.Tensor:
    """:func:`pixel_accuracy` of the parsed output against ``target_mask`` on the edited pixels only (pooled over
    the batch; 1 when nothing was edited): does the face show the edit?"""
    edited = edited_pixels(source_mask, target_mask)
    right = (parser(fake) == target_mask) & edited
    return right.sum().float() / edited.sum() if edited.any() else fake.new_ones(())


def _l1_edited(fake: torch.Tensor, real: torch.Tensor, target_mask: torch.Tensor,
               source_mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error to the ground truth on the edited pixels only (pooled over the batch and the colour
    channels; 0 when nothing was edited)."""
    _check_images(fake, real)
    edited = edited_pixels(source_mask, target_mask)[:, None].expand_as(fake)
    return (fake - real).abs()[edited].mean() if edited.any() else fake.new_zeros(())


@dataclass(frozen=True)
class MetricSpec:
    """A per-batch metric in :data:`METRICS`.

    Args:
        fn: ``fn(fake, real, **kwargs)`` → a scalar tensor, or ``{name: scalar}`` for a metric with several
            values (per-region histogram distances).
        needs: ``{compute_metrics keyword: fn keyword}`` for the networks / extra inputs it requires.
        higher_is_better: direction, for model selection and sweeps.
        optional: keywords passed on when given but not required.
        needs_target: whether it compares with a ground truth ``real`` (data without one, e.g. real MT
            makeup pairs, can still report the metrics that do not).
    """

    fn: Callable[..., torch.Tensor | Mapping[str, torch.Tensor]]
    needs: Mapping[str, str]
    higher_is_better: bool
    optional: Mapping[str, str] = field(default_factory=dict)
    needs_target: bool = True


def _nme_of_images(
    fake: torch.Tensor,
    real: torch.Tensor | None,
    landmark_net: Callable[[torch.Tensor], torch.Tensor],
    target_landmarks: torch.Tensor | None = None,
) -> torch.Tensor:
    """NME of landmarks detected on ``fake`` (clamped to [-1, 1]) against ``target_landmarks`` (default: the
    landmarks detected on ``real``)."""
    if target_landmarks is None:
        if real is None:
            raise ValueError("nme needs target_landmarks or a real image to detect them on")
        _check_images(fake, real)
        target_landmarks = landmark_net(real.clamp(-1, 1))
    return landmark_nme(landmark_net(fake.clamp(-1, 1)), target_landmarks)


def _region_histograms(fake: torch.Tensor, real: torch.Tensor, regions: torch.Tensor,
                       region_names: Sequence[str]) -> dict[str, torch.Tensor]:
    """``hist_<region>``: :func:`region_histogram_distance` of ``fake`` to the ground truth (same regions)."""
    dist = region_histogram_distance(fake, real, regions)
    return {f"hist_{name}": dist[i] for i, name in enumerate(region_names)}


def _region_l1(fake: torch.Tensor, real: torch.Tensor, regions: torch.Tensor,
               region_names: Sequence[str]) -> dict[str, torch.Tensor]:
    """``l1_<region>`` and ``l1_outside``: the mean absolute error to the ground truth inside each region and on
    the pixels of none (pooled over the batch and the colour channels; 0 for a region no image has): what a
    makeup transfer moved where it should, and what it kept of the rest of the face."""
    _check_images(fake, real)
    error = (fake - real).abs().mean(1)                                           # (B, H, W)
    inside = regions.to(torch.bool)
    out = {}
    for i, name in enumerate(region_names):
        out[f"l1_{name}"] = error[inside[:, i]].mean() if inside[:, i].any() else error.new_zeros(())
    outside = ~inside.any(1)
    out["l1_outside"] = error[outside].mean() if outside.any() else error.new_zeros(())
    return out


def _region_histograms_to_reference(fake: torch.Tensor, real: torch.Tensor | None, regions: torch.Tensor,
                                    region_names: Sequence[str], reference: torch.Tensor,
                                    reference_regions: torch.Tensor) -> dict[str, torch.Tensor]:
    """``hist_ref_<region>``: the distance of each output region to the same region of a reference image
    (makeup transfer without a ground truth)."""
    dist = region_histogram_distance(fake, reference, regions, reference_regions)
    return {f"hist_ref_{name}": dist[i] for i, name in enumerate(region_names)}


#: Metrics over a whole split, computed by ``facezoo.evaluate`` (Fréchet distances of feature distributions):
#: ``fid`` (the FID Inception) and ``fld`` (facezoo's synthetic-face landmark network). Per-batch evaluation
#: (:func:`compute_metrics`, validation steps) leaves them out.
DISTRIBUTION_METRICS = ("fid", "fld")

def distribution_extractor(name: str, weights: str | os.PathLike | None = None) -> nn.Module:
    """The feature network of a distribution metric, for :class:`FID`: ``fid`` the FID Inception, ``fld``
    facezoo's synthetic-face landmark network (:class:`facezoo.nets.landmarks.LandmarkFeatures`, shipped with the
    package). ``weights``: an explicit file (``None`` resolves the default one).

    Raises:
        facezoo.nets.weights.WeightsNotFoundError: the weights cannot be found (one line naming the file).
    """
    if name == "fid":
        from facezoo.nets.inception import FIDInceptionV3

        return FIDInceptionV3.from_pretrained(weights)
    if name == "fld":
        from facezoo.nets.landmarks import HeatmapLandmarkNet, LandmarkFeatures

        return LandmarkFeatures(HeatmapLandmarkNet.from_pretrained(weights))
    raise KeyError(f"unknown distribution metric {name!r}; known: {list(DISTRIBUTION_METRICS)}")


#: Per-batch metric registry: name -> :class:`MetricSpec`.
METRICS: dict[str, MetricSpec] = {
    "l1": MetricSpec(l1, {}, False),
    "mse": MetricSpec(mse, {}, False),
    "psnr": MetricSpec(psnr, {}, True),
    "ssim": MetricSpec(ssim, {}, True),
    "ms_ssim": MetricSpec(ms_ssim, {}, True),
    "lpips": MetricSpec(lpips, {"lpips_net": "net"}, False),
    "id_sim": MetricSpec(identity_similarity, {"id_net": "net"}, True),
    # the same cosine similarity in the embedding of facezoo's synthetic-face identity network (offline)
    "id_sim_synthetic": MetricSpec(identity_similarity, {"synthetic_id_net": "net"}, True),
    "nme": MetricSpec(
        _nme_of_images,
        {"landmark_net": "landmark_net"},
        False,
        optional={"target_landmarks": "target_landmarks"},
        needs_target=False,
    ),
    # the output's labels as `mask_parser` (images -> (B, H, W) ids) reads them, against `target_mask`: MaskVAE's
    # reconstructions (the palette inverse), MaskGAN's renderings (a face parser), the paper's "segmentation accuracy"
    "mask_accuracy": MetricSpec(_parsed_accuracy, {"mask_parser": "parser", "target_mask": "target_mask"}, True,
                                needs_target=False),
    "mask_miou": MetricSpec(_parsed_miou, {"mask_parser": "parser", "target_mask": "target_mask"}, True,
                            needs_target=False),
    # the same on the pixels an edit changed (`source_mask` != `target_mask`), and the L1 there: MaskGAN's editing view
    "mask_accuracy_edited": MetricSpec(
        _parsed_accuracy_edited,
        {"mask_parser": "parser", "target_mask": "target_mask", "source_mask": "source_mask"},
        True,
        needs_target=False,
    ),
    "l1_edited": MetricSpec(_l1_edited, {"target_mask": "target_mask", "source_mask": "source_mask"}, False),
    "region_hist": MetricSpec(_region_histograms, {"regions": "regions", "region_names": "region_names"}, False),
    "region_l1": MetricSpec(_region_l1, {"regions": "regions", "region_names": "region_names"}, False),
    "region_hist_ref": MetricSpec(
        _region_histograms_to_reference,
        {"regions": "regions", "region_names": "region_names", "reference": "reference",
         "reference_regions": "reference_regions"},
        False,
        needs_target=False,
    ),
}


def _missing_inputs(spec: MetricSpec, real: torch.Tensor | None, inputs: Mapping) -> list[str]:
    missing = [key for key in spec.needs if inputs.get(key) is None]
    return missing + ["a ground-truth target"] if spec.needs_target and real is None else missing


@torch.no_grad()
def compute_metrics(names: Sequence[str], fake: torch.Tensor, real: torch.Tensor | None,
                    skip_missing: bool = False, **inputs) -> dict[str, torch.Tensor]:
    """Compute several registered metrics on one batch.

    Args:
        names: keys of :data:`METRICS`, e.g. ``["l1", "psnr", "ssim", "lpips", "id_sim"]``.
        fake: :math:`(B, C, H, W)` in [-1, 1].
        real: same shape, the ground truth; ``None`` when the data has none.
        skip_missing: leave out the metrics whose networks or inputs are not given (instead of raising).
        **inputs: the networks / inputs the metrics need: ``lpips_net`` (an ``lpips.LPIPS``), ``id_net``
            (identity network), ``synthetic_id_net`` (:class:`~facezoo.nets.identity.SyntheticIdentityNet`),
            ``landmark_net`` (images -> (B, N, 2)), ``target_landmarks`` ((B, N, 2) ground
            truth for ``nme``), ``regions`` / ``region_names`` / ``reference`` / ``reference_regions`` for the
            per-region histogram distances, ``mask_parser`` (images -> label ids) and ``target_mask`` for
            ``mask_accuracy`` / ``mask_miou``.

    Returns:
        ``{name: scalar tensor}`` in the order of ``names`` (a metric with several values adds each by name).

    Raises:
        KeyError: unknown metric name.
        ValueError: a required network or input is missing (unless ``skip_missing``).
    """
    results: dict[str, torch.Tensor] = {}
    for name in names:
        if name in DISTRIBUTION_METRICS and skip_missing:
            continue
        if name not in METRICS:
            raise KeyError(f"unknown metric {name!r}; known: {sorted(METRICS)}")
        spec = METRICS[name]
        missing = _missing_inputs(spec, real, inputs)
        if missing:
            if skip_missing:
                continue
            raise ValueError(f"metric {name!r} needs {', '.join(missing)} passed to compute_metrics")
        kwargs = {param: inputs[key] for key, param in spec.needs.items()}
        kwargs.update({param: inputs[key] for key, param in spec.optional.items() if inputs.get(key) is not None})
        value = spec.fn(fake, real, **kwargs)
        results.update(value if isinstance(value, Mapping) else {name: value})
    return results
