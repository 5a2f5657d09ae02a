"""TP-GAN's LightningModule: the two-pathway generator against a patch discriminator.

One training step (per batch), as the official TF code (``HRLTY/TP-GAN: TP_GAN-Mar6FS.py``):

* ``d_steps`` × phase **d**: ``L_D = adv_d(D(frontal), D(G(profile)))``
* ``g_steps`` × phase **g**: ``L_G = λ_pix·L_pixel + λ_local·L_local + λ1·L_sym + λ2·L_adv + λ3·L_ip + λ4·L_tv
  + λ_ce·L_ce``, and, with a ``local`` optimizer (``tpgan_official``: the TF ``rot_optim``), the local
  pathways are also stepped on ``λ_local·L_local`` by their own optimizer.

The batch is a frontalization sample dict (:mod:`facezoo.data`): ``image`` (profile), ``target``
(frontal ground truth), ``five_points`` or 68 ``landmarks`` (of the profile), ``identity``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from facezoo import losses
from facezoo.face.align import crop_patches
from facezoo.face.labels import landmarks_68_to_5
from facezoo.methods.base import GANModule, Phase
from facezoo.methods.tpgan.networks import PART_NAMES, Discriminator, TPGANGenerator, part_geometry

log = logging.getLogger(__name__)

__all__ = ["TPGAN", "part_centers", "five_points"]


def part_centers(five_points: torch.Tensor) -> dict[str, torch.Tensor]:
    """Centres of TP-GAN's four parts from the 5 alignment points, as the Multi-PIE crop defines them.

    Eyes: the eye points; nose: the nose tip; mouth: the middle of the mouth corners.

    Args:
        five_points: ``(B, 5, 2)`` (x, y) pixels: left eye, right eye, nose tip, left/right mouth corner.

    Returns:
        part name → ``(B, 2)`` centres.
    """
    return {"left_eye": five_points[:, 0], "right_eye": five_points[:, 1], "nose": five_points[:, 2],
            "mouth": five_points[:, 3:5].mean(1)}


def five_points(batch: Mapping) -> torch.Tensor:
    """``batch["five_points"]`` (Multi-PIE ``.5pt`` files) or the 5 points of ``batch["landmarks"]`` (iBUG-68)."""
    if "five_points" in batch:
        return batch["five_points"]
    return landmarks_68_to_5(batch["landmarks"])


class TPGAN(GANModule):
    """TP-GAN (Huang et al., ICCV 2017) for profile → frontal face synthesis.

    Phases (per batch, in order): ``d`` (the discriminator, ``d_steps`` times) then ``g`` (the generator,
    ``g_steps`` times; with a ``local`` optimizer configured, the local pathways are also stepped on
    ``λ_local·L_local`` of the same forward pass, the TF ``rot_optim``).

    Args:
        image_size: side of the aligned faces (128 in the paper; the CPU preset uses 64).
        num_classes: identity classes of the training split (the encoder's cross-entropy head).
        width, zdim, feature_dim, norm, use_local: generator/discriminator settings (networks.py).
        arch: the layer conventions (:class:`~.networks.TPGANArch` fields or a name of ``networks.ARCHS``):
            ``None`` the TF release's, ``conf/model/tpgan_iwtw.yaml`` the iwtw PyTorch port's.
        pixel_scales: weights of the full, 1/2 and 1/4 resolution outputs in the pixel term.
        reduction: ``"mean"`` over pixels, or ``"sum_hw"`` (sum over H, W as the TF code does).
        adversarial: ``"ns" | "lsgan" | "hinge" | "wgan"``; ``real_label``: smoothing of real labels (ns).
        symmetry_occluded: the half of the output that the symmetry loss pulls towards the mirrored
            other half (``"right"``: the synthetic profiles turn towards the image right).
        g_steps, d_steps: runs of the ``g`` and ``d`` phases per batch.
        loss, optimizers, schedulers, frozen, seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`;
            optimizers ``generator``, ``discriminator`` and optionally ``local``; frozen ``identity_loss``
            (LightCNN-29 v2 features, term ``g.identity``).

    All defaults live in ``conf/model/tpgan.yaml``.
    """

    G_TERMS = ("pixel", "local", "symmetry", "adversarial", "identity", "tv", "cross_entropy")

    def __init__(self, *, image_size: int, num_classes: int, width: float, zdim: int, feature_dim: int,
                 norm: str, use_local: bool, pixel_scales, reduction: str, adversarial: str, real_label: float,
                 symmetry_occluded: str, g_steps: int, d_steps: int, loss: Mapping, optimizers: Mapping,
                 arch: Mapping | str | None = None, schedulers: Mapping | None = None, frozen: Mapping | None = None,
                 seed: int = 0, grad_clip: float = 0.0):
        if reduction not in ("mean", "sum_hw"):
            raise ValueError(f"reduction must be 'mean' or 'sum_hw', got {reduction!r}")
        if len(pixel_scales) != 3:
            raise ValueError(f"pixel_scales needs 3 weights (full, 1/2, 1/4 resolution), got {list(pixel_scales)}")
        if "local" in (optimizers or {}) and not use_local:
            raise ValueError("model.optimizers.local steps the local pathways, but use_local is false")
        local = (("local", ("local",)),) if "local" in (optimizers or {}) else ()
        super().__init__(
            phases=[Phase("d", "discriminator", ("adversarial", "gradient_penalty"), repeat=d_steps),
                    Phase("g", "generator", self.G_TERMS, repeat=g_steps, also=local)],
            loss=loss, optimizers=optimizers, schedulers=schedulers, frozen=frozen,
            frozen_terms={"identity_loss": ("g.identity",)}, seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters(ignore=GANModule.CONFIG_ARGS)
        self.generator = TPGANGenerator(image_size=image_size, width=width, zdim=zdim, feature_dim=feature_dim,
                                        num_classes=num_classes, norm=norm, use_local=use_local, arch=arch)
        self.discriminator = Discriminator(image_size=image_size, width=width, norm=norm, arch=arch)
        self.parts = part_geometry(image_size, self.generator.arch.part_layout)
        self.boxes = self.generator.part_boxes
        self.adv = losses.AdversarialLoss(adversarial, real_label=real_label)

    def optimizer_parameters(self) -> dict:
        return {"generator": self.generator.parameters(), "discriminator": self.discriminator.parameters(),
                "local": self.generator.local_pathways.parameters() if self.hparams.use_local else []}

    # -------------------------------------------------------------------------------- forward
    def crop_parts(self, images: torch.Tensor, centers: Mapping[str, torch.Tensor] | None = None):
        """The four part patches of ``images``.

        With ``centers`` (from the profile's landmarks) the patches are cut around them; without, they are
        cut from the fuser's fixed boxes (:func:`part_boxes`), so a target patch covers exactly the pixels
        where the fuser pastes the predicted one.
        """
        out = {}
        for name in PART_NAMES:
            if centers is None:
                top, left, h, w = self.boxes[name]
                out[name] = images[:, :, top:top + h, left:left + w]
            else:
                out[name] = crop_patches(images, centers[name], self.parts[name][1])
        return out

    def noise(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z of the architecture (TF code: N(0, 0.02²); the iwtw port: U(−1, 1)), on the module's device."""
        return self.generator.sample_noise(batch_size, generator, self.device)

    def forward(self, image: torch.Tensor, points: torch.Tensor, z: torch.Tensor | None = None) -> dict:
        """Frontalize profiles.

        Args:
            image: ``(B, 3, S, S)`` aligned profiles in [-1, 1].
            points: ``(B, 5, 2)`` alignment points of ``image`` (they place the local pathways' crops).
            z: ``(B, zdim)`` noise; default: freshly sampled.

        Returns:
            The generator's dict: ``image`` (B, 3, S, S) frontal in [-1, 1], ``image_half``,
            ``image_quarter``, ``parts``, ``parts_fused``, ``identity_feature``, ``identity_logits``.
        """
        patches = self.crop_parts(image, part_centers(points))
        z = self.noise(image.shape[0]) if z is None else z
        return self.generator(image, patches, z=z)

    def _fixed_noise(self, batch_size: int) -> torch.Tensor:
        return self.noise(batch_size, torch.Generator().manual_seed(self.seed))

    @torch.no_grad()
    def predict_batch(self, batch: Mapping) -> torch.Tensor:
        return self(batch["image"], five_points(batch), z=self._fixed_noise(batch["image"].shape[0]))["image"]

    # -------------------------------------------------------------------------------- phases
    def _scale(self, x: torch.Tensor) -> float:
        return float(x.shape[-2] * x.shape[-1]) if self.hparams.reduction == "sum_hw" else 1.0

    def d_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """D main: ``adversarial`` on the frontal truth vs G(profile) (+ WGAN-GP's ``gradient_penalty``)."""
        target = batch["target"]
        with torch.no_grad():
            fake = self(batch["image"], five_points(batch))["image"]
        terms = {"adversarial": self.adv.d(self.discriminator(target), self.discriminator(fake))}
        if self.wants("d", "gradient_penalty"):
            terms["gradient_penalty"] = losses.gradient_penalty(self.discriminator, target, fake, weight=1.0)
        return terms

    def g_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """G main: the unweighted terms, named after the paper (see the module docstring)."""
        out = self(batch["image"], five_points(batch))
        target = batch["target"]
        preds = [out["image"], out["image_half"], out["image_quarter"]]
        terms = {"pixel": losses.multiscale_pixel_l1(
            preds, target, [ws * self._scale(p) for ws, p in zip(self.hparams.pixel_scales, preds)], mode="area")}
        if self.hparams.use_local:
            target_parts = self.crop_parts(target)
            terms["local"] = sum(losses.pixel_l1(out["parts"][n], target_parts[n]) * self._scale(target_parts[n])
                                 for n in PART_NAMES)
        occluded = self.hparams.symmetry_occluded
        terms["symmetry"] = (
            losses.symmetry_loss(F.avg_pool2d(out["image"], 2), space="pixel", occluded=occluded)
            * self._scale(out["image"]) / 4
            + sum(losses.symmetry_loss(p, space="both", occluded=occluded) * self._scale(p)
                  for p in preds[1:]))
        terms["adversarial"] = self.adv.g(self.discriminator(out["image"]))
        if self.identity_loss is not None and self.wants("g", "identity"):
            terms["identity"] = self.identity_loss(out["image"], target)
        terms["tv"] = losses.total_variation(out["image"]) * self._scale(out["image"])
        terms["cross_entropy"] = F.cross_entropy(out["identity_logits"], batch["identity"])
        return terms

    # ---------------------------------------------------------------------------- evaluation
    def sample_images(self, batch: Mapping) -> dict[str, torch.Tensor]:
        out = self(batch["image"], five_points(batch), z=self._fixed_noise(batch["image"].shape[0]))
        rows = {"profile": batch["image"], "frontal (TP-GAN)": out["image"], "frontal (truth)": batch["target"]}
        if out["parts_fused"] is not None:
            rows["local parts"] = out["parts_fused"]
        return rows

    def evaluation_baselines(self, datamodule, mean_face_samples: int = 512, **_) -> dict[str, Callable]:
        """Trivial frontalization baselines: the input itself, and the mean frontal face of the train split."""
        train = datamodule.dataset("train")
        n = min(mean_face_samples, len(train))
        mean_face = torch.stack([train[i]["target"] for i in range(n)]).mean(0)
        return {"input": lambda batch: batch["image"],
                "mean_frontal": lambda batch: mean_face.to(batch["target"].device).expand_as(batch["target"])}
