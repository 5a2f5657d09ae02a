"""MaskGAN's two training stages as LightningModules: MaskVAE (stage 1) and Editing Behaviour Simulated Training.

The official repository (``switchablenorms/CelebAMask-HQ: MaskGAN_demo``) released an inference demo only; its
``models/pix2pixHD_model.py`` ``Pix2PixHDModel.forward`` computes the stage-2 losses, and nothing trains MaskVAE.

**Stage 1**, :class:`MaskVAE` (``model=maskvae``): the VAE of :class:`~facezoo.methods.maskgan.networks.MaskVAE` on
masks alone. One phase ``vae``:

* ``reconstruction``: cross-entropy of the 19-class logits against the mask (mean over pixels and batch);
* ``kl``: :func:`facezoo.losses.kl_divergence` divided by the number of mask pixels, so that weight 1 makes the
  sum the negative evidence lower bound per pixel (the paper gives no weight; ``model.loss.vae.kl``).

**Stage 2**, :class:`MaskGAN` (``model=maskgan``), as ``Pix2PixHDModel.forward``: the dense mapping network G renders
the real mask ``M`` with the style of the real image ``I`` (``fake = G(M; M, I)``) and two masks ``M₁``, ``M₂`` made on
the fly by the frozen stage-1 MaskVAE (:func:`ebst_masks`); the alpha blender B fuses ``G(M₁; M, I)`` and
``G(M₂; M, I)`` into ``blend``, which must look like ``I`` (dual-editing consistency). Phases, in the order of
pix2pixHD's ``train.py`` (generator steps first, then the discriminator on the fakes of the same batch):

* ``g`` (optimizer ``generator``): ``adversarial`` LSGAN ``D(fake | M) → 1`` summed over the D scales (pix2pixHD's
  ``GANLoss``), ``feature_matching`` (:func:`facezoo.losses.feature_matching_loss`: L1 of D's intermediate features
  against the real image's, ``4/(n_layers+1) · 1/num_D``, λ 10), ``perceptual`` (VGG19 relu1_1…relu5_1, L1, layer
  weights 1/32…1, λ 10; the frozen part ``perceptual_loss``);
* ``gb`` (optimizer ``generator_blender`` over G and B): the same three terms for ``blend``;
* ``d`` (optimizer ``discriminator``): ``real`` ``D(I | M) → 1``, ``fake`` ``D(fake | M) → 0``, ``blend``
  ``D(blend | M) → 0``, LSGAN summed over the scales.

The ablation ``model.blend=false`` removes the blender and the dual-editing term: no blender, no ``gb`` phase, no
``d.blend`` term and no MaskVAE (every ``model.loss.gb`` weight 0 skips the ``gb`` phase only; a phase none of whose
terms counts never runs).

**The interpolation recipe** (neither the paper nor the demo releases one; facezoo's choice, :func:`ebst_masks`): the
posterior means ``z = μ(M)`` and ``z_ref = μ(M_ref)`` of the real mask and of a reference mask; ``M₁`` and ``M₂`` are
the argmax of the decoded ``z ∓ s·(z_ref − z)`` (``s = model.inter_step``, 0.4): two edits on opposite sides of the real
mask, so that neither is the real mask and their blend should be the real image. The reference is another mask of the
batch (sample ``i`` takes sample ``i − 1``'s, ``inter_reference: batch``) or, with a batch of one (the demo's batch
size) or ``inter_reference: perturbed``, the mask itself under a small random affine warp (:func:`perturb_masks`).

**Training from scratch**: the style encoder has no normalisation and the demo's ``weights_init`` (N(0, 0.02)), so
at initialisation its AdaIN parameters hardly depend on the face (their spread over a batch is ~1e-8 of their size at
64 px) and their gradients vanish: in a short run the style path learns nothing and the mean-style baseline equals the
model. ``encoder_init: kaiming`` (the CPU preset's) draws the label and style encoders He-normal instead: the style
then varies across faces from the first step, and after 60 L1 steps of G alone on one batch a face rendered with
another face's style is clearly worse (L1 0.21) than with its own (0.14). ``model=maskgan`` keeps the demo's init.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from facezoo import losses
from facezoo.face.labels import colorize_labels, labels_from_colors
from facezoo.methods.base import GANModule, Phase
from facezoo.methods.maskgan import networks
from facezoo.utils import FacezooError

__all__ = ["MaskVAE", "MaskGAN", "lsgan_loss", "load_mask_vae", "interpolate_masks", "perturb_masks", "ebst_masks"]


def _scaled(channels: int, width: float) -> int:
    """``channels · width`` rounded, at least 1 (the ``width`` multiplier of the configs)."""
    return max(1, int(round(channels * width)))


def _check_masks(batch: Mapping, size: int, keys: Sequence[str] = ("mask",)) -> None:
    for key in keys:
        if key not in batch:
            raise ValueError(f"the batch has no {key!r} (keys: {sorted(batch)})")
        if tuple(batch[key].shape[-2:]) != (size, size):
            raise ValueError(f"the model was built for {size}x{size} masks (image_size) but batch[{key!r}] is "
                             f"{tuple(batch[key].shape[-2:])}")


# --------------------------------------------------------------------------------------------------
# losses and helpers
# --------------------------------------------------------------------------------------------------


def lsgan_loss(outputs: Sequence[Sequence[Tensor]], target: float) -> Tensor:
    """pix2pixHD's ``GANLoss(use_lsgan=True)`` on a multi-scale discriminator: ``Σ_scales mean((logits − target)²)``.

    ``NVIDIA/pix2pixHD: models/networks.py GANLoss`` (as in ``MaskGAN_demo/models/networks.py``) sums the loss of the
    last output of every scale.

    Args:
        outputs: the discriminator's output, per scale a list of features whose last element is the patch logits.
        target: 1 for "real", 0 for "fake".

    Returns:
        scalar tensor, >= 0.

    Example:
        >>> lsgan_loss([[torch.zeros(1, 1, 2, 2)], [torch.full((1, 1, 1, 1), 0.5)]], 1.0)
        tensor(1.2500)
    """
    if not isinstance(outputs, (list, tuple)) or not outputs or not all(isinstance(s, (list, tuple)) and s
                                                                         for s in outputs):
        raise ValueError("outputs must be a non-empty list over scales of non-empty lists of features")
    return sum((scale[-1] - target).square().mean() for scale in outputs)


def _chunk(outputs: Sequence[Sequence[Tensor]], n: int) -> list[list[list[Tensor]]]:
    """Split a discriminator output over a batch of ``n`` stacked groups into ``n`` outputs."""
    parts = [[f.chunk(n) for f in scale] for scale in outputs]
    return [[[f[i] for f in scale] for scale in parts] for i in range(n)]


@torch.no_grad()
def interpolate_masks(vae: networks.MaskVAE, mask_a: Tensor, mask_b: Tensor, alphas: Sequence[float]) -> Tensor:
    """Masks along the line between two masks in MaskVAE's latent space.

    For each ``α``: the argmax of ``vae.decode((1 − α)·μ_a + α·μ_b)``, ``μ`` the posterior means; ``α`` outside [0, 1]
    extrapolates. The VAE runs in eval mode (BatchNorm with its running statistics) and is left in its mode.

    Args:
        vae: a (trained) MaskVAE.
        mask_a, mask_b: CelebAMask-HQ label maps at the VAE's resolution.
        alphas: interpolation positions (0 = ``mask_a``'s code, 1 = ``mask_b``'s).

    Returns:
        int64 label maps, one batch per ``α``.

    Shape:
        - mask_a, mask_b: :math:`(B, H, W)` int64
        - output: :math:`(A, B, H, W)`, ``A = len(alphas)``

    Example:
        >>> vae = networks.MaskVAE(ngf=4, ndf=4, latent_dim=8, resolution=32)
        >>> masks = torch.randint(0, 19, (2, 32, 32))
        >>> interpolate_masks(vae, masks, masks.flip(0), [0.0, 0.5, 1.0]).shape
        torch.Size([3, 2, 32, 32])
    """
    if mask_a.shape != mask_b.shape:
        raise ValueError(f"mask_a and mask_b must have the same shape, got {tuple(mask_a.shape)} and "
                         f"{tuple(mask_b.shape)}")
    alphas = torch.as_tensor(list(alphas), dtype=torch.float32, device=mask_a.device)
    if alphas.ndim != 1 or not len(alphas):
        raise ValueError("alphas must be a non-empty sequence of numbers")
    was_training = vae.training
    vae.eval()
    try:
        mu_a, mu_b = vae.encode(torch.cat([mask_a, mask_b]))[0].chunk(2)
        z = mu_a + alphas[:, None, None] * (mu_b - mu_a)                       # (A, B, D)
        labels = vae.decode(z.flatten(0, 1)).argmax(1)
    finally:
        vae.train(was_training)
    return labels.view(len(alphas), *mask_a.shape)


def perturb_masks(mask: Tensor, max_shift: float = 0.05, max_scale: float = 0.05, max_rotation: float = 5.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """Each mask under its own small random affine warp (nearest labels, borders replicated): a simulated edit.

    Args:
        mask: CelebAMask-HQ label maps.
        max_shift: largest translation, as a fraction of the side (uniform in ``±max_shift`` per axis).
        max_scale: largest relative zoom (uniform in ``1 ± max_scale``).
        max_rotation: largest rotation in degrees (uniform in ``±max_rotation``).
        generator: random generator (default: torch's global one).

    Returns:
        int64 label maps, the same shape.

    Shape:
        - mask: :math:`(B, H, W)`

    Example:
        >>> mask = torch.zeros(1, 8, 8, dtype=torch.long)
        >>> torch.equal(perturb_masks(mask), mask)
        True
    """
    if mask.ndim != 3 or mask.dtype.is_floating_point:
        raise ValueError(f"mask must be an integer (B, H, W) label map, got {tuple(mask.shape)} {mask.dtype}")
    b = mask.shape[0]
    u = torch.rand(b, 4, generator=generator).to(mask.device) * 2 - 1          # CPU draws: same on every device
    angle = u[:, 0] * math.radians(max_rotation)
    scale = 1 + u[:, 1] * max_scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, 2 * max_shift * u[:, 2]], 1),
                         torch.stack([sin, cos, 2 * max_shift * u[:, 3]], 1)], 1)
    grid = F.affine_grid(theta, (b, 1, *mask.shape[-2:]), align_corners=False)
    warped = F.grid_sample(mask[:, None].float(), grid, mode="nearest", padding_mode="border", align_corners=False)
    return warped[:, 0].round().long()


def ebst_masks(vae: networks.MaskVAE, mask: Tensor, step: float, reference: str = "batch",
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The two simulated edits of Editing Behaviour Simulated Training (facezoo's recipe; see the module docstring).

    ``M₁, M₂ = argmax decode(z ∓ step·(z_ref − z))`` with ``z``, ``z_ref`` the posterior means of ``mask`` and of a
    reference mask: for ``reference="batch"`` the previous mask of the batch (``mask.roll(1, 0)``), for
    ``"perturbed"`` (and for a batch of one) :func:`perturb_masks` of the mask itself.

    Args:
        vae: the stage-1 MaskVAE.
        mask: the real masks.
        step: distance of each edit from the real mask's code, as a fraction of the distance to the reference's.
        reference: ``"batch"`` or ``"perturbed"``.
        generator: random generator of the perturbation.

    Returns:
        ``(M₁, M₂)``, int64 label maps.

    Shape:
        - mask: :math:`(B, H, W)`
        - outputs: :math:`(B, H, W)` each
    """
    if reference not in ("batch", "perturbed"):
        raise ValueError(f"reference must be 'batch' or 'perturbed', got {reference!r}")
    if reference == "batch" and mask.shape[0] > 1:
        ref = mask.roll(1, 0)
    else:
        ref = perturb_masks(mask, generator=generator)
    inter = interpolate_masks(vae, mask, ref, (-step, step))
    return inter[0], inter[1]


def load_mask_vae(path: str | os.PathLike, resolution: int, make: str | None = None, ngf: int = 32, ndf: int = 32,
                  latent_dim: int = 1024) -> networks.MaskVAE:
    """Stage 2's frozen MaskVAE: from a facezoo stage-1 checkpoint (``model=maskvae``) or the demo's VAE state dict.

    A facezoo checkpoint carries its architecture; a demo file is read with ``ngf``, ``ndf``, ``latent_dim`` (the
    demo's ``VAE(19, 32, 32, 1024)``) and ``resolution``
    (:func:`facezoo.methods.maskgan.official.load_official` part ``"VAE"``).

    Args:
        path: the file.
        resolution: stage 2's image size; the VAE must work at it.
        make: the command that makes the file, for the message when it is missing.
        ngf, ndf, latent_dim: architecture of a demo file.

    Returns:
        The MaskVAE network in eval mode.

    Raises:
        WeightsNotFoundError: no such file (one line naming ``make``).
        FacezooError: unreadable, a checkpoint of another model, or a VAE of another resolution (one line).
    """
    from facezoo.checkpoints import load
    from facezoo.methods.maskgan.official import load_official
    from facezoo.nets.weights import WeightsNotFoundError

    file = Path(path)
    if not file.is_file():
        hint = f"; make it with: {make}" if make else ""
        raise WeightsNotFoundError(f"{file}: no stage-1 MaskVAE checkpoint (model.frozen.mask_vae.build.path){hint}")
    try:
        is_facezoo = "facezoo_config" in torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:
        raise FacezooError(f"{file}: cannot read the stage-1 MaskVAE ({type(err).__name__}: "
                           f"{' '.join(str(err).split())[:200]})") from None
    if is_facezoo:
        model, _, _ = load(file)
        if not isinstance(model, MaskVAE):
            raise FacezooError(f"{file}: a {type(model).__name__} checkpoint, not a stage-1 MaskVAE (model=maskvae)")
        vae = model.vae
    else:
        vae = load_official(file, "VAE", ngf=ngf, ndf=ndf, latent_dim=latent_dim, resolution=resolution)
    if vae.resolution != resolution:
        raise FacezooError(f"{file}: a MaskVAE for {vae.resolution}x{vae.resolution} masks, stage 2 runs at "
                           f"{resolution}x{resolution} (train stage 1 with data.size={resolution})")
    return vae.eval()


# --------------------------------------------------------------------------------------------------
# stage 1: MaskVAE
# --------------------------------------------------------------------------------------------------


class MaskVAE(GANModule):
    """MaskGAN's stage 1: MaskVAE trained on masks alone (reconstruction cross-entropy + KL).

    One phase ``vae`` (optimizer ``vae``) with the terms ``reconstruction`` and ``kl`` (see the module docstring).
    Its output for a batch (:meth:`predict_batch`) is the reconstruction of ``batch["mask"]`` from the posterior mean,
    as a colour picture (:func:`facezoo.face.labels.colorize_labels`); evaluation compares it with the picture of the
    mask (``l1``) and reads its labels back for ``mask_accuracy`` / ``mask_miou``.

    Args:
        image_size: side of the (square) masks, a power of two (the demo's 512).
        width: channel multiplier of ``ngf`` and ``ndf``.
        ngf, ndf: decoder and encoder widths at ``width`` 1 (the demo's 32 and 32).
        latent_dim: size of the latent code (1024).
        loss, optimizers, schedulers, seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`; optimizer ``vae``.

    All defaults live in ``conf/model/maskvae.yaml``.
    """

    metrics = ("l1", "mask_accuracy", "mask_miou")

    def __init__(self, *, image_size: int, width: float, ngf: int, ndf: int, latent_dim: int, loss: Mapping,
                 optimizers: Mapping, schedulers: Mapping | None = None, seed: int = 0, grad_clip: float = 0.0):
        super().__init__(phases=[Phase("vae", "vae", ("reconstruction", "kl"))], loss=loss, optimizers=optimizers,
                         schedulers=schedulers, seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters(ignore=GANModule.CONFIG_ARGS)
        self.image_size = int(image_size)
        self.vae = networks.MaskVAE(ngf=_scaled(ngf, width), ndf=_scaled(ndf, width), latent_dim=latent_dim,
                                    resolution=self.image_size)

    def optimizer_parameters(self) -> dict:
        return {"vae": self.vae.parameters()}

    def forward(self, mask: Tensor) -> Tensor:
        """The reconstructed label map (argmax of the decoded posterior mean), ``(B, H, W)`` int64."""
        return self.vae.decode(self.vae.encode(mask)[0]).argmax(1)

    # ------------------------------------------------------------------------------------ phase
    def vae_terms(self, batch: Mapping) -> dict[str, Tensor]:
        """Cross-entropy of the logits decoded from a posterior sample, and the KL per mask pixel."""
        _check_masks(batch, self.image_size)
        mask = batch["mask"]
        logits, mu, logvar = self.vae(mask)
        return {"reconstruction": F.cross_entropy(logits, mask),
                "kl": losses.kl_divergence(mu, logvar) / mask[0].numel()}

    # ------------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def predict_batch(self, batch: Mapping) -> Tensor:
        """The reconstruction of ``batch["mask"]`` as a colour picture, ``(B, 3, H, W)`` in [-1, 1]."""
        _check_masks(batch, self.image_size)
        return colorize_labels(self(batch["mask"]))

    def sample_images(self, batch: Mapping) -> dict[str, Tensor]:
        return {"image": batch["image"], "mask": colorize_labels(batch["mask"]), "MaskVAE": self.predict_batch(batch)}

    def evaluation_nets(self) -> dict:
        """``mask_parser``: the palette inverse (:func:`~facezoo.face.labels.labels_from_colors`)."""
        return {"mask_parser": labels_from_colors}

    def evaluation_inputs(self, batch: Mapping) -> dict:
        return {"target_mask": batch["mask"]}

    def evaluation_metrics(self, output: Tensor, batch: Mapping, nets: Mapping | None = None,
                           names: Sequence[str] | None = None) -> dict[str, Tensor]:
        """The metrics against the picture of the input mask (the reconstruction target)."""
        return super().evaluation_metrics(output, {**batch, "target": colorize_labels(batch["mask"])}, nets, names)

    def evaluation_baselines(self, datamodule=None, mean_face_samples: int = 512, **_) -> dict[str, Callable]:
        """``mode_mask``: every pixel's most frequent label over ``mean_face_samples`` training masks."""
        train = datamodule.dataset("train")
        n = max(1, min(mean_face_samples, len(train)))
        counts = sum(F.one_hot(train[i]["mask"], networks.NUM_LABELS) for i in range(n))
        mode = colorize_labels(counts.argmax(-1)[None])

        def mode_mask(batch: Mapping) -> Tensor:
            return mode.to(batch["mask"].device).expand(batch["mask"].shape[0], -1, -1, -1)

        return {"mode_mask": mode_mask}


# --------------------------------------------------------------------------------------------------
# stage 2: Editing Behaviour Simulated Training
# --------------------------------------------------------------------------------------------------


class MaskGAN(GANModule):
    """MaskGAN (Lee et al., CVPR 2020), stage 2: the dense mapping network and the alpha blender trained with EBST.

    Phases per batch: ``g``, ``gb``, ``d`` (see the module docstring); the stage-1 MaskVAE is the frozen part
    ``mask_vae`` (``model.frozen.mask_vae``: required, :func:`load_mask_vae`), VGG19 the frozen part
    ``perceptual_loss`` (off with one warning when its weights are absent).

    Args:
        image_size: side of the square faces and masks (the demo's 512), divisible by ``2^n_downsample`` and
            ``2^blend_downsample``, at least ``2^style_downsample``.
        width: channel multiplier of every width below (1 = the demo's).
        ngf, n_downsample, n_blocks, style_downsample, label_ngf, style_ngf: the dense mapping network
            (:class:`~facezoo.methods.maskgan.networks.DenseMappingNetwork`; demo 64, 4, 4, 5, 16, 16).
        blend_ngf, blend_downsample, blend_blocks: the alpha blender (``define_B(6, 3, 32, 3, 3)``).
        ndf, d_layers, num_d: the multi-scale discriminator (``ndf 64``, ``n_layers_D 3``, ``num_D 2``).
        blend: the blender and the dual-editing term (``false``: the ablation without EBST).
        inter_step: ``s`` of the interpolation recipe (:func:`ebst_masks`).
        inter_reference: ``"batch"`` or ``"perturbed"`` (:func:`ebst_masks`).
        encoder_init: ``"demo"`` (the demo's ``weights_init``, N(0, 0.02), everywhere) or ``"kaiming"``: the label and
            style encoders' convolutions He-normal (leaky ReLU 0.2) instead, so that the style depends on the face
            from the first step (at N(0, 0.02) their output varies ~1e-8 across faces and the style path learns
            nothing in a short run; see the module docstring).
        loss, optimizers, schedulers, frozen, seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`;
            optimizers ``generator``, ``generator_blender``, ``discriminator``.

    All defaults live in ``conf/model/maskgan.yaml``.
    """

    G_TERMS = ("adversarial", "feature_matching", "perceptual", "l1")
    metrics = ("l1", "mse", "psnr", "ssim", "lpips", "l1_edited", "mask_accuracy", "mask_miou", "mask_accuracy_edited")

    def __init__(self, *, image_size: int, width: float, ngf: int, n_downsample: int, n_blocks: int,
                 style_downsample: int, label_ngf: int, style_ngf: int, blend_ngf: int, blend_downsample: int,
                 blend_blocks: int, ndf: int, d_layers: int, num_d: int, blend: bool, inter_step: float,
                 inter_reference: str, loss: Mapping, optimizers: Mapping, schedulers: Mapping | None = None,
                 frozen: Mapping | None = None, seed: int = 0, grad_clip: float = 0.0, encoder_init: str = "demo"):
        if encoder_init not in ("demo", "kaiming"):
            raise ValueError(f"encoder_init must be 'demo' or 'kaiming', got {encoder_init!r}")
        if image_size % 2 ** max(n_downsample, blend_downsample) or image_size < 2**style_downsample:
            raise ValueError(f"image_size {image_size} must be divisible by 2^n_downsample and 2^blend_downsample "
                             f"({2**n_downsample}, {2**blend_downsample}) and at least 2^style_downsample "
                             f"({2**style_downsample})")
        if inter_reference not in ("batch", "perturbed"):
            raise ValueError(f"inter_reference must be 'batch' or 'perturbed', got {inter_reference!r}")
        if not inter_step > 0:
            raise ValueError(f"inter_step must be > 0, got {inter_step}")
        effective = {k: dict(v or {}) for k, v in (loss or {}).items()}
        if not blend:   # the ablation: no dual-editing term, hence no gb phase and no MaskVAE
            for phase, terms in (("d", ("blend",)), ("gb", self.G_TERMS)):
                effective[phase] = {t: 0.0 if t in terms else w for t, w in effective.get(phase, {}).items()}
        super().__init__(
            phases=[Phase("g", "generator", self.G_TERMS),
                    Phase("gb", "generator_blender", self.G_TERMS),
                    Phase("d", "discriminator", ("real", "fake", "blend"))],
            loss=effective, optimizers=optimizers, schedulers=schedulers, frozen=frozen,
            frozen_terms={"mask_vae": ("d.blend", "gb.adversarial", "gb.feature_matching", "gb.perceptual", "gb.l1"),
                          "perceptual_loss": ("g.perceptual", "gb.perceptual")},
            seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters(ignore=GANModule.CONFIG_ARGS)
        # a phase none of whose terms counts never runs (an all-zero loss has nothing to step)
        self.phases = tuple(p if any(self.wants(p.name, t) for t in p.terms) else replace(p, at=())
                            for p in self.phases)
        self.image_size = int(image_size)
        # the blend terms are on only when the MaskVAE was built (a null mask_vae switches them off)
        self.blending = any(self.wants("gb", t) for t in self.G_TERMS) or self.wants("d", "blend")
        if self.mask_vae is not None and self.mask_vae.resolution != self.image_size:
            raise ValueError(f"the stage-1 MaskVAE works on {self.mask_vae.resolution}px masks, image_size is "
                             f"{self.image_size}")
        self.inter_step, self.inter_reference = float(inter_step), inter_reference
        self.generator = networks.DenseMappingNetwork(
            ngf=_scaled(ngf, width), n_downsample=n_downsample, n_blocks=n_blocks, style_downsample=style_downsample,
            label_ngf=_scaled(label_ngf, width), style_ngf=_scaled(style_ngf, width))
        if encoder_init == "kaiming":
            for encoder in (self.generator.label_encoder, self.generator.style_encoder):
                for conv in encoder.modules():
                    if isinstance(conv, torch.nn.Conv2d):
                        torch.nn.init.kaiming_normal_(conv.weight, a=0.2)
        self.blender = networks.BlendGenerator(ngf=_scaled(blend_ngf, width), n_downsample=blend_downsample,
                                               n_blocks=blend_blocks) if blend else None
        self.discriminator = networks.MultiscaleDiscriminator(ndf=_scaled(ndf, width), n_layers=d_layers,
                                                              num_scales=num_d)

    def optimizer_parameters(self) -> dict:
        blender = list(self.blender.parameters()) if self.blender is not None else []
        return {"generator": self.generator.parameters(), "discriminator": self.discriminator.parameters(),
                "generator_blender": list(self.generator.parameters()) + blender}

    def forward(self, mask_to_render: Tensor, mask_ref: Tensor, image_ref: Tensor) -> Tensor:
        """``G(mask_to_render; mask_ref, image_ref)``: the mask rendered in the style of the reference face."""
        return self.generator(mask_to_render, mask_ref, image_ref)

    # ----------------------------------------------------------------------------------- phases
    def prepare_batch(self, batch: Mapping) -> dict:
        """The real pair, the two simulated edits (the batch's ``inter_mask_1/2`` when it has them, else made by the
        frozen MaskVAE), and (without gradient) what D judges: ``fake`` and ``blend``."""
        _check_masks(batch, self.image_size, ("mask", "image"))
        mask, image = batch["mask"], batch["image"]
        step = {"mask": mask, "image": image, "blend": None}
        with torch.no_grad():
            style = self.generator.encode_style(mask, image)
            if not self.blending:
                step["fake"] = self.generator.render(mask, style)
                return step
            if "inter_mask_1" in batch and "inter_mask_2" in batch:     # precomputed (scripts/make_inter_masks.py)
                _check_masks(batch, self.image_size, ("inter_mask_1", "inter_mask_2"))
                step["inter"] = (batch["inter_mask_1"], batch["inter_mask_2"])
            else:
                step["inter"] = ebst_masks(self.mask_vae, mask, self.inter_step, self.inter_reference)
            rendered = self.generator.render(torch.cat([mask, *step["inter"]]), style.repeat(3, 1))
            step["fake"], inter_1, inter_2 = rendered.chunk(3)
            step["blend"] = self.blender(inter_1, inter_2)[0]
        return step

    def _rendering_terms(self, phase: str, output: Tensor, mask: Tensor, image: Tensor) -> dict[str, Tensor]:
        """GAN, feature-matching and perceptual terms of a rendering of ``mask`` that should look like ``image``."""
        real, fake = _chunk(self.discriminator(torch.cat([image, output]), mask.repeat(2, 1, 1)), 2)
        terms = {"adversarial": lsgan_loss(fake, 1.0)}
        if self.wants(phase, "feature_matching"):
            terms["feature_matching"] = losses.feature_matching_loss(fake, real)
        if self.perceptual_loss is not None and self.wants(phase, "perceptual"):
            terms["perceptual"] = self.perceptual_loss(output, image)
        if self.wants(phase, "l1"):        # facezoo's offline stand-in for the VGG term (0 in the demo's recipe)
            terms["l1"] = F.l1_loss(output, image)
        return terms

    def g_terms(self, step: Mapping) -> dict[str, Tensor]:
        """G: the real mask rendered with the real image's style, against the real image."""
        mask, image = step["mask"], step["image"]
        return self._rendering_terms("g", self.generator(mask, mask, image), mask, image)

    def gb_terms(self, step: Mapping) -> dict[str, Tensor]:
        """G + B: the blend of the two simulated edits' renderings against the real image (dual-editing consistency)."""
        mask, image = step["mask"], step["image"]
        style = self.generator.encode_style(mask, image)
        inter_1, inter_2 = self.generator.render(torch.cat(step["inter"]), style.repeat(2, 1)).chunk(2)
        return self._rendering_terms("gb", self.blender(inter_1, inter_2)[0], mask, image)

    def d_terms(self, step: Mapping) -> dict[str, Tensor]:
        """D: the real image → 1, the rendering and the blend of this batch (made before the G steps) → 0."""
        images = [step["image"], step["fake"]] + ([step["blend"]] if self.wants("d", "blend") else [])
        outputs = _chunk(self.discriminator(torch.cat(images), step["mask"].repeat(len(images), 1, 1)), len(images))
        terms = {"real": lsgan_loss(outputs[0], 1.0), "fake": lsgan_loss(outputs[1], 0.0)}
        if len(outputs) == 3:
            terms["blend"] = lsgan_loss(outputs[2], 0.0)
        return terms

    # ------------------------------------------------------------------------------- evaluation
    def evaluation_nets(self) -> dict:
        """``mask_parser``: facezoo's synthetic-face parser (:class:`facezoo.nets.parser.SyntheticFaceParser`,
        weights ``"synthetic_parser"``), which re-parses the outputs for the paper's segmentation accuracy."""
        from facezoo.nets.parser import SyntheticFaceParser

        net = self.packaged_evaluation_net("mask_parser", SyntheticFaceParser, "segmentation accuracy")
        return {} if net is None else {"mask_parser": net}

    def evaluation_inputs(self, batch: Mapping) -> dict:
        """``target_mask`` (the edited mask, or the mask itself on plain faces) and ``source_mask``: the parsed
        output is compared with the first, and the pixels where they differ are the edit."""
        return {"target_mask": batch.get("target_mask", batch["mask"]), "source_mask": batch["mask"]}

    @torch.no_grad()
    def predict_batch(self, batch: Mapping) -> Tensor:
        """The edited mask ``batch["target_mask"]`` rendered with the style of the source (``image``, ``mask``).

        A batch without ``target_mask`` (plain faces) renders its own ``mask``.

        Returns:
            ``(B, 3, H, W)`` in [-1, 1].
        """
        _check_masks(batch, self.image_size)
        return self.generator(batch.get("target_mask", batch["mask"]), batch["mask"], batch["image"])

    def sample_images(self, batch: Mapping) -> dict[str, Tensor]:
        rows = {"source": batch["image"], "source mask": colorize_labels(batch["mask"])}
        if "target_mask" in batch:
            rows["edited mask"] = colorize_labels(batch["target_mask"])
        rows["MaskGAN"] = self.predict_batch(batch)
        if "target" in batch:
            rows["truth"] = batch["target"]
        return rows

    @torch.no_grad()
    def mean_style(self, dataset, num_samples: int, batch_size: int = 16) -> Tensor:
        """The mean AdaIN parameters of the first ``num_samples`` faces of a dataset: ``(style_dim,)``."""
        n = max(1, min(num_samples, len(dataset)))
        total = None
        for start in range(0, n, batch_size):
            items = [dataset[i] for i in range(start, min(n, start + batch_size))]
            mask = torch.stack([s["mask"] for s in items]).to(self.device)
            image = torch.stack([s["image"] for s in items]).to(self.device)
            style = self.generator.encode_style(mask, image).sum(0)
            total = style if total is None else total + style
        return total / n

    def evaluation_baselines(self, datamodule=None, mean_face_samples: int = 512, **_) -> dict[str, Callable]:
        """``source``: the unedited source image; ``mean_style``: the edited mask rendered with the mean style of
        ``mean_face_samples`` training faces (the generator without the style encoder), pasted on the source near
        the edit as the model's output is (:func:`facezoo.methods.maskgan.inference.predict`);
        ``full_rendering``: the model's rendering without that paste-back (the whole face redrawn)."""
        from facezoo.methods.maskgan.inference import paste_on_source

        style = self.mean_style(datamodule.dataset("train"), mean_face_samples)

        def render_mean_style(batch: Mapping) -> Tensor:
            mask = batch.get("target_mask", batch["mask"])
            return paste_on_source(batch, self.generator.render(mask, style.to(mask.device)))

        return {"source": lambda batch: batch["image"], "mean_style": render_mean_style,
                "full_rendering": self.predict_batch}
