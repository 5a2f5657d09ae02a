"""TP-GAN's LightningModule: the two-pathway generator against a patch discriminator.

One training step (per batch), as the official TF code (reference/methods.md §5.3):

* ``d_steps`` × **D main**: ``L_D = adv_d(D(frontal), D(G(profile)))``
* ``g_steps`` × **G main**: ``L_G = λ_pix·L_pixel + λ_local·L_local + λ1·L_sym + λ2·L_adv + λ3·L_ip + λ4·L_tv
  + λ_ce·L_ce``, and, with ``separate_local_optimizer`` (the TF ``rot_optim``), the local pathways are
  also stepped on ``λ_local·L_local`` by their own optimizer.

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
from facezoo.methods.base import GANModule
from facezoo.methods.tpgan.networks import (
    PART_NAMES,
    Discriminator,
    TPGANGenerator,
    part_boxes,
    part_geometry,
)

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

    Args:
        image_size: side of the aligned faces (128 in the paper; the CPU preset uses 64).
        num_classes: identity classes of the training split (the encoder's cross-entropy head).
        width, zdim, feature_dim, norm, use_local: generator/discriminator settings (networks.py).
        loss: weights ``pixel, pixel_scales, local, symmetry, adversarial, identity, tv, cross_entropy``.
        reduction: ``"mean"`` over pixels, or ``"sum_hw"`` (sum over H, W as the TF code does).
        adversarial: ``"ns" | "lsgan" | "hinge" | "wgan"``; ``real_label``: smoothing of real labels (ns).
        symmetry_occluded: the half of the output that the symmetry loss pulls towards the mirrored
            other half (``"right"``: the synthetic profiles turn towards the image right).
        identity_net: ``{"weights": name-or-path-or-None, "required": bool}`` for LightCNN-29 v2.
        optimizer: Adam ``lr`` and ``betas`` (G, D and the local optimizer).
        g_steps, d_steps: steps per batch; separate_local_optimizer: see the module docstring.
        seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`.
    """

    # frozen loss networks stay out of checkpoints (GANModule.state_dict); they are rebuilt from their files
    frozen_prefixes = ("identity_loss.",)

    def __init__(self, image_size: int = 128, num_classes: int = 200, width: float = 1.0, zdim: int = 100,
                 feature_dim: int = 256, norm: str = "batch", use_local: bool = True,
                 loss: Mapping | None = None, reduction: str = "mean", adversarial: str = "ns",
                 real_label: float = 1.0, symmetry_occluded: str = "right",
                 identity_net: Mapping | None = None, optimizer: Mapping | None = None,
                 g_steps: int = 1, d_steps: int = 1, separate_local_optimizer: bool = False,
                 seed: int = 0, grad_clip: float = 0.0):
        super().__init__(seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters()
        if reduction not in ("mean", "sum_hw"):
            raise ValueError(f"reduction must be 'mean' or 'sum_hw', got {reduction!r}")
        self.loss_weights = {"pixel": 1.0, "pixel_scales": [1.0, 1.0, 1.5], "local": 3.0, "symmetry": 0.3,
                             "adversarial": 1e-3, "identity": 3e-3, "tv": 1e-4, "cross_entropy": 1.0,
                             **(loss or {})}
        self.generator = TPGANGenerator(image_size=image_size, width=width, zdim=zdim, feature_dim=feature_dim,
                                        num_classes=num_classes, norm=norm, use_local=use_local)
        self.discriminator = Discriminator(image_size=image_size, width=width, norm=norm)
        self.parts = part_geometry(image_size)
        self.boxes = part_boxes(image_size)
        self.adv = losses.AdversarialLoss(adversarial, real_label=real_label)
        self.identity_loss = self._build_identity_loss(identity_net or {})

    # --------------------------------------------------------------------------------- set-up
    def _build_identity_loss(self, cfg: Mapping):
        """LightCNN-29 v2 features (fc + last pooled map, L1), or None (one warning) when the weights are missing."""
        weights = cfg.get("weights", "lightcnn29_v2")
        return self.pretrained_loss_or_off("identity", cfg, lambda: losses.IdentityLoss.from_lightcnn(weights))

    def configure_optimizers(self):
        opt = self.hparams.optimizer or {}
        kwargs = {"lr": opt.get("lr", 1e-4), "betas": tuple(opt.get("betas", (0.9, 0.999)))}
        optimizers = [torch.optim.Adam(self.generator.parameters(), **kwargs),
                      torch.optim.Adam(self.discriminator.parameters(), **kwargs)]
        if self.hparams.separate_local_optimizer and self.hparams.use_local:
            optimizers.append(torch.optim.Adam(self.generator.local_pathways.parameters(), **kwargs))
        return optimizers

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
        """z ~ N(0, 0.02²) (TF code), on the module's device."""
        z = torch.randn(batch_size, self.hparams.zdim, generator=generator)
        return (0.02 * z).to(self.device)

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

    @torch.no_grad()
    def predict_batch(self, batch: Mapping) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        return self(batch["image"], five_points(batch), z=self.noise(batch["image"].shape[0], g))["image"]

    # -------------------------------------------------------------------------------- losses
    def _scale(self, x: torch.Tensor) -> float:
        return float(x.shape[-2] * x.shape[-1]) if self.hparams.reduction == "sum_hw" else 1.0

    def generator_terms(self, batch: Mapping, out: Mapping) -> dict[str, torch.Tensor]:
        """The weighted-to-be loss terms of G (unweighted values), named after the paper."""
        target = batch["target"]
        preds = [out["image"], out["image_half"], out["image_quarter"]]
        w = self.loss_weights
        terms = {"pixel": sum(ws * losses.pixel_l1(p, F.interpolate(target, size=p.shape[-2:], mode="area"))
                              * self._scale(p) for ws, p in zip(w["pixel_scales"], preds))}
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
        if self.identity_loss is not None:
            terms["identity"] = self.identity_loss(out["image"], target)
        terms["tv"] = losses.total_variation(out["image"]) * self._scale(out["image"])
        terms["cross_entropy"] = F.cross_entropy(out["identity_logits"], batch["identity"])
        return terms

    def weighted_sum(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.loss_weights[k] * v for k, v in terms.items() if self.loss_weights.get(k, 0))

    # -------------------------------------------------------------------------------- steps
    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        self.seed_step()
        optimizers = self.optimizers()
        opt_g, opt_d = optimizers[0], optimizers[1]
        opt_local = optimizers[2] if len(optimizers) > 2 else None
        image, target, points = batch["image"], batch["target"], five_points(batch)

        for _ in range(self.hparams.d_steps):  # D main
            with self.toggled_optimizer(opt_d):
                with torch.no_grad():
                    fake = self(image, points)["image"]
                d_terms = {"adversarial": self.adv.d(self.discriminator(target), self.discriminator(fake))}
                if self.hparams.adversarial == "wgan":
                    d_terms["gradient_penalty"] = losses.gradient_penalty(self.discriminator, target, fake)
                self.optimize(opt_d, sum(d_terms.values()))

        for _ in range(self.hparams.g_steps):  # G main (+ the local pathways' own step)
            with self.toggled_optimizer(opt_g):
                out = self(image, points)
                g_terms = self.generator_terms(batch, out)
                g_loss = self.weighted_sum(g_terms)
                if opt_local is None:
                    self.optimize(opt_g, g_loss)
                else:  # TF: g_dec_optim and rot_optim run on gradients of the same forward pass
                    local_params = list(self.generator.local_pathways.parameters())
                    local_grads = torch.autograd.grad(self.loss_weights["local"] * g_terms["local"],
                                                      local_params, retain_graph=True)
                    self.optimize(opt_g, g_loss)
                    opt_local.zero_grad(set_to_none=True)
                    for p, grad in zip(local_params, local_grads):
                        p.grad = self.trainer.strategy.reduce(grad, reduce_op="mean")
                    opt_local.step()

        self.batches_seen += 1
        self.log_terms("d", d_terms, prog_bar=False)
        self.log_terms("g", {**g_terms, "total": g_loss}, prog_bar=False)

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _eval_step(self, batch: Mapping, stage: str) -> None:
        from facezoo import metrics

        values = self.evaluation_metrics(self.predict_batch(batch), batch)
        values["l1_input"] = metrics.l1(batch["image"], batch["target"])  # the "do nothing" reference
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, batch_size=batch["image"].shape[0],
                      sync_dist=True, prog_bar=stage == "val")

    def sample_rows(self, batch: Mapping) -> dict[str, torch.Tensor]:
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        was_training = self.training
        self.eval()
        out = self(batch["image"], five_points(batch),
                   z=self.noise(batch["image"].shape[0], torch.Generator().manual_seed(self.seed)))
        self.train(was_training)
        rows = {"profile": batch["image"], "frontal (TP-GAN)": out["image"], "frontal (truth)": batch["target"]}
        if out["parts_fused"] is not None:
            rows["local parts"] = out["parts_fused"]
        return rows

    # ------------------------------------------------------------------------------ evaluation
    def evaluation_baselines(self, datamodule, mean_face_samples: int = 512, **_) -> dict[str, Callable]:
        """Trivial frontalization baselines: the input itself, and the mean frontal face of the train split."""
        train = datamodule.dataset("train")
        n = min(mean_face_samples, len(train))
        mean_face = torch.stack([train[i]["target"] for i in range(n)]).mean(0)
        return {"input": lambda batch: batch["image"],
                "mean_frontal": lambda batch: mean_face.to(batch["target"].device).expand_as(batch["target"])}
