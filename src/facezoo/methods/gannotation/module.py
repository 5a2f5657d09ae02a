"""GANnotation's LightningModule: landmark-guided re-posing trained on A → B → C triplets.

Notation (``reference/methods.md`` §2.2): ``G(A, H_B)`` is face A re-posed to the heatmaps of B's landmarks.
The batch is a re-posing sample dict (:class:`facezoo.data.synthetic.SyntheticReposing`, the 300VW loader):
``image`` (A), ``target`` (B), ``third`` (C) and their ``landmarks`` / ``target_landmarks`` /
``third_landmarks`` (68 iBUG points, pixels). Heatmaps are computed here, not by the dataset
(:func:`~.networks.landmark_heatmaps_official` on 66 or 68 points).

One training step handles one batch and steps **one** network, as the official loop does
(``training/train.py``): in every cycle of ``d_steps_per_g + 1`` batches the first ``d_steps_per_g`` update D
and the last updates G (WGAN-GP: 4 D : 1 G; hinge: 1 : 1). The loss terms (named after the paper):

* **D main**: ``adversarial`` = ``adv_d(D(B), D(G(A, H_B)))`` (+ ``gradient_penalty``, weight 10, for WGAN-GP)
* **G main**: ``λ_adv·adversarial`` (−mean D(G(A,H_B))) ``+ λ_rec·reconstruction`` (L1 to B)
  ``+ λ_self·self_consistency`` (L1(G(G(A,H_B), H_A), A)) ``+ λ_triple·triple``
  (mean|G(A,H_C) − G(G(A,H_B),H_C)|) ``+ λ_percep·perceptual`` (VGG16 MSE summed over relu1_2/2_2/3_3/4_3)
  ``+ λ_tv·tv`` (squared TV) ``+ λ_id·identity`` (LightCNN features, the paper's identity-preserving term).

A term with weight 0 is not computed (``model.loss.triple=0`` is the "without the triple loss" ablation); the
validation metric ``val/triple_consistency`` is always logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import torch

from facezoo import losses
from facezoo.face.labels import landmarks_68_to_66
from facezoo.methods.base import GANModule
from facezoo.methods.gannotation.networks import (
    Discriminator,
    Generator,
    heatmaps_to_image,
    landmark_heatmaps_official,
)

log = logging.getLogger(__name__)

__all__ = ["GANnotation", "triple_consistency"]

#: ``adversarial`` config value → facezoo.losses.AdversarialLoss kind (the official ``--gantype`` names).
ADVERSARIAL_KINDS = {"wgan-gp": "wgan", "hinge": "hinge"}

#: The paper config's loss weights (the training class's defaults, ``reference/methods.md`` §2.2).
PAPER_LOSS_WEIGHTS = {"adversarial": 1.0, "reconstruction": 100.0, "self_consistency": 100.0, "triple": 100.0,
                      "perceptual": 0.0, "tv": 1e-5, "identity": 1.0}


def triple_consistency(g_ac: torch.Tensor, g_abc: torch.Tensor) -> torch.Tensor:
    """The triple consistency loss: ``mean|G(A, H_C) − G(G(A, H_B), H_C)|``.

    Args:
        g_ac: ``(B, 3, H, W)`` A re-posed directly to C's landmarks.
        g_abc: ``(B, 3, H, W)`` A re-posed to B's landmarks, then to C's.

    Returns:
        scalar, >= 0.

    Example:
        >>> triple_consistency(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2))
        tensor(1.)
    """
    if g_ac.shape != g_abc.shape:
        raise ValueError(f"triple consistency needs equal shapes, got {tuple(g_ac.shape)} and {tuple(g_abc.shape)}")
    return (g_ac - g_abc).abs().mean()


class GANnotation(GANModule):
    """GANnotation (Sanchez & Valstar, FG 2020) for landmark-guided face re-posing.

    Args:
        image_size: side of the faces and heatmaps (128 in the paper; the CPU preset uses 64).
        num_points: heatmap channels, 66 (the release: iBUG-68 without the inner mouth corners) or 68.
        conv_dim, repeat_num, width: generator settings (:class:`~.networks.Generator`).
        d_conv_dim, d_repeat_num: discriminator settings (its width is ``width`` too).
        heatmap_sigma: the official encoding's integer ``sigma`` (7×7 patches for 1).
        loss: weights ``adversarial, reconstruction, self_consistency, triple, perceptual, tv, identity``.
        adversarial: ``"wgan-gp"`` (critic + gradient penalty) or ``"hinge"``; G's term is −mean D for both.
        gp_weight: the gradient penalty's weight (10).
        d_steps_per_g: D batches per G batch (official: 4 with WGAN-GP, 1 with hinge).
        perceptual_net: ``{"weights": "imagenet" | path | None, "normalize_input": bool, "required": bool}``
            for the VGG16 of the perceptual loss. The official code feeds [-1, 1] images to VGG unnormalised.
        identity_net: ``{"weights": "lightcnn29_v2" | path | None, "required": bool}`` for LightCNN-29 v2.
            Missing weights switch the term off with one warning unless ``required``.
        optimizer: Adam ``lr_g``, ``lr_d``, ``betas``, ``weight_decay``.
        lr_decay: ``{"step_size": epochs, "gamma": factor}`` StepLR for G and D, stepped at each epoch end;
            ``None`` keeps the learning rate constant.
        seed, grad_clip: see :class:`~facezoo.methods.base.GANModule` (grad-norm clipping, official: 1).
    """

    # frozen loss networks stay out of checkpoints (GANModule.state_dict); they are rebuilt from their files
    frozen_prefixes = ("perceptual.", "identity_loss.")

    def __init__(self, image_size: int = 128, num_points: int = 66, conv_dim: int = 64, repeat_num: int = 6,
                 width: float = 1.0, d_conv_dim: int = 64, d_repeat_num: int = 6, heatmap_sigma: int = 1,
                 loss: Mapping | None = None, adversarial: str = "hinge", gp_weight: float = 10.0,
                 d_steps_per_g: int = 1, perceptual_net: Mapping | None = None,
                 identity_net: Mapping | None = None, optimizer: Mapping | None = None,
                 lr_decay: Mapping | None = None, seed: int = 0, grad_clip: float = 1.0):
        super().__init__(seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters()
        if num_points not in (66, 68):
            raise ValueError(f"num_points must be 66 or 68, got {num_points}")
        if adversarial not in ADVERSARIAL_KINDS:
            raise ValueError(f"adversarial must be one of {sorted(ADVERSARIAL_KINDS)}, got {adversarial!r}")
        if int(d_steps_per_g) < 0:
            raise ValueError(f"d_steps_per_g must be >= 0, got {d_steps_per_g}")
        unknown = set(loss or {}) - set(PAPER_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"unknown loss terms {sorted(unknown)}; known: {sorted(PAPER_LOSS_WEIGHTS)}")
        self.loss_weights = {**PAPER_LOSS_WEIGHTS, **(loss or {})}
        self.generator = Generator(num_points=num_points, conv_dim=conv_dim, repeat_num=repeat_num, width=width)
        self.discriminator = Discriminator(image_size=image_size, conv_dim=d_conv_dim, repeat_num=d_repeat_num,
                                           width=width)
        self.adv = losses.AdversarialLoss(ADVERSARIAL_KINDS[adversarial])
        self.perceptual = self._build_perceptual_loss(perceptual_net or {})
        self.identity_loss = self._build_identity_loss(identity_net or {})

    # --------------------------------------------------------------------------------- set-up
    def _build_perceptual_loss(self, cfg: Mapping):
        """VGG16 relu1_2/2_2/3_3/4_3, MSE summed over the layers (``training/utils.py: LossNetwork``)."""
        from facezoo.nets.vgg import VGGFeatures

        def build():
            net = VGGFeatures("vgg16", layers=("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
                              weights=cfg.get("weights", "imagenet"),
                              normalize_input=cfg.get("normalize_input", False))
            return losses.PerceptualLoss(net, criterion="mse")

        return self.pretrained_loss_or_off("perceptual", cfg, build)

    def _build_identity_loss(self, cfg: Mapping):
        """LightCNN-29 v2 (fc + last pooled map), L1 on 128² grey faces (``losses.IdentityLoss.from_lightcnn``)."""
        weights = cfg.get("weights", "lightcnn29_v2")
        return self.pretrained_loss_or_off("identity", cfg, lambda: losses.IdentityLoss.from_lightcnn(weights))

    def configure_optimizers(self):
        opt = self.hparams.optimizer or {}
        kwargs = {"betas": tuple(opt.get("betas", (0.5, 0.9))), "weight_decay": opt.get("weight_decay", 0.0)}
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=opt.get("lr_g", 1e-4), **kwargs)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=opt.get("lr_d", 1e-4), **kwargs)
        decay = self.hparams.lr_decay
        if not decay:
            return [opt_g, opt_d]
        schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=int(decay.get("step_size", 1)),
                                                      gamma=float(decay.get("gamma", 0.1))) for o in (opt_g, opt_d)]
        return [opt_g, opt_d], schedulers

    # -------------------------------------------------------------------------------- forward
    def heatmaps(self, landmarks: torch.Tensor, size: int | None = None) -> torch.Tensor:
        """Heatmaps of 68 iBUG landmarks (or of ``num_points`` points) with the official encoding.

        Args:
            landmarks: ``(B, 68, 2)`` or ``(B, num_points, 2)`` (x, y) pixels.
            size: map side (default ``image_size``).

        Returns:
            ``(B, num_points, size, size)`` in [0, 1], on the module's device.
        """
        n = self.hparams.num_points
        if landmarks.ndim == 3 and landmarks.shape[1] == 68 and n == 66:
            landmarks = landmarks_68_to_66(landmarks)
        if landmarks.ndim != 3 or landmarks.shape[1] != n:
            raise ValueError(f"landmarks must be (B, 68 or {n}, 2), got {tuple(landmarks.shape)}")
        size = self.hparams.image_size if size is None else size
        return landmark_heatmaps_official(landmarks, size=size, sigma=self.hparams.heatmap_sigma).to(self.device)

    def forward(self, image: torch.Tensor, heatmaps: torch.Tensor) -> dict[str, torch.Tensor]:
        """``G(image, heatmaps)``: the generator's dict ``image`` (B, 3, H, W) in [-1, 1], ``color``, ``mask``."""
        return self.generator(image, heatmaps)

    @torch.no_grad()
    def predict_batch(self, batch: Mapping) -> torch.Tensor:
        """``G(A, H_B)``: ``batch["image"]`` re-posed to ``batch["target_landmarks"]``, (B, 3, H, W) in [-1, 1]."""
        return self(batch["image"], self.heatmaps(batch["target_landmarks"], batch["image"].shape[-1]))["image"]

    # -------------------------------------------------------------------------------- losses
    def generator_terms(self, batch: Mapping) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """G's loss terms (unweighted) for terms with a non-zero weight, and ``G(A, H_B)``."""
        w = self.loss_weights
        a, b = batch["image"], batch["target"]
        size = a.shape[-1]
        ab = self(a, self.heatmaps(batch["target_landmarks"], size))["image"]
        terms = {}
        if w["adversarial"]:
            terms["adversarial"] = self.adv.g(self.discriminator(ab))
        if w["reconstruction"]:
            terms["reconstruction"] = losses.pixel_l1(ab, b)
        if w["self_consistency"]:
            terms["self_consistency"] = losses.pixel_l1(self(ab, self.heatmaps(batch["landmarks"], size))["image"], a)
        if w["triple"]:
            h_c = self.heatmaps(batch["third_landmarks"], size)
            terms["triple"] = triple_consistency(self(a, h_c)["image"], self(ab, h_c)["image"])
        if w["perceptual"] and self.perceptual is not None:
            terms["perceptual"] = self.perceptual(ab, b)
        if w["tv"]:
            terms["tv"] = losses.total_variation(ab, squared=True)
        if w["identity"] and self.identity_loss is not None:
            terms["identity"] = self.identity_loss(ab, b)
        return terms, ab

    def discriminator_terms(self, real: torch.Tensor, fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """D's loss terms: ``adversarial`` (+ ``gradient_penalty`` for WGAN-GP)."""
        terms = {"adversarial": self.adv.d(self.discriminator(real), self.discriminator(fake))}
        if self.hparams.adversarial == "wgan-gp":
            terms["gradient_penalty"] = losses.gradient_penalty(self.discriminator, real, fake,
                                                                weight=self.hparams.gp_weight)
        return terms

    def weighted_sum(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.loss_weights[k] * v for k, v in terms.items())

    # -------------------------------------------------------------------------------- steps
    def is_generator_batch(self, batch_idx: int) -> bool:
        """Whether batch ``batch_idx`` of the epoch updates G (the last of each ``d_steps_per_g + 1`` batches).

        As ``training/train.py``: ``(i + 1) % (d_steps_per_g + 1) == 0``; the count restarts every epoch.
        """
        return (batch_idx + 1) % (self.hparams.d_steps_per_g + 1) == 0

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        self.seed_step()
        opt_g, opt_d = self.optimizers()
        if not self.is_generator_batch(batch_idx):  # D main
            with self.toggled_optimizer(opt_d):
                with torch.no_grad():
                    image = batch["image"]
                    fake = self(image, self.heatmaps(batch["target_landmarks"], image.shape[-1]))["image"]
                d_terms = self.discriminator_terms(batch["target"], fake)
                d_loss = sum(d_terms.values())
                self.optimize(opt_d, d_loss)
            self.log_terms("d", {**d_terms, "total": d_loss})
        else:  # G main
            with self.toggled_optimizer(opt_g):
                g_terms, _ = self.generator_terms(batch)
                g_loss = self.weighted_sum(g_terms)
                self.optimize(opt_g, g_loss)
            self.log_terms("g", {**g_terms, "total": g_loss})
        self.batches_seen += 1

    def on_train_epoch_end(self) -> None:
        self.step_schedulers()  # StepLR per epoch (official: ×0.1 every epoch)

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    @torch.no_grad()
    def triple_consistency_error(self, batch: Mapping) -> torch.Tensor:
        """``mean|G(A, H_C) − G(G(A, H_B), H_C)|`` of a batch with ``third_landmarks`` (any loss weights)."""
        a = batch["image"]
        h_c = self.heatmaps(batch["third_landmarks"], a.shape[-1])
        ab = self.predict_batch(batch)
        return triple_consistency(self(a, h_c)["image"], self(ab, h_c)["image"])

    def evaluation_model_metrics(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """``triple_consistency`` on batches with a third face (reported with and without the triple loss)."""
        return {"triple_consistency": self.triple_consistency_error(batch)} if "third_landmarks" in batch else {}

    def _eval_step(self, batch: Mapping, stage: str) -> None:
        from facezoo import metrics

        values = self.evaluation_metrics(self.predict_batch(batch), batch)
        values["l1_input"] = metrics.l1(batch["image"], batch["target"])  # the "do nothing" reference
        values.update(self.evaluation_model_metrics(batch))
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, batch_size=batch["image"].shape[0],
                      sync_dist=True, prog_bar=stage == "val")

    def sample_rows(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Rows: input A, target heatmaps H_B (grey), G(A, H_B), target B, and the attention mask M."""
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        h_b = self.heatmaps(batch["target_landmarks"], batch["image"].shape[-1])
        with torch.no_grad():
            out = self(batch["image"], h_b)
        return {"input A": batch["image"], "target landmarks H_B": heatmaps_to_image(h_b),
                "G(A, H_B)": out["image"], "target B": batch["target"],
                "mask M": (out["mask"] * 2 - 1).expand(-1, 3, -1, -1)}

    # ------------------------------------------------------------------------------ evaluation
    def evaluation_baselines(self, datamodule, **options) -> dict[str, Callable[[Mapping], torch.Tensor]]:
        """Re-posing baselines (:mod:`~.baselines`): ``unchanged`` (A itself), ``similarity`` (A moved by the
        least-squares similarity transform of its landmarks onto B's) and ``piecewise`` (a piecewise-affine
        warp of A taking its landmarks exactly onto B's)."""
        from facezoo.methods.gannotation.baselines import reposing_baselines

        return reposing_baselines()

    def landmark_net(self):
        """The synthetic-face landmark network (:class:`facezoo.nets.landmarks.HeatmapLandmarkNet`, weights
        ``"synthetic_landmarks"`` from the facezoo cache) used for NME, or ``None`` (one warning) without weights.

        Loaded once and kept outside the module's state (not in checkpoints)."""
        cache = self.__dict__.setdefault("_evaluation_nets", {})
        if "landmarks" not in cache:
            from facezoo.nets.landmarks import HeatmapLandmarkNet
            from facezoo.nets.weights import WeightsNotFoundError

            try:
                cache["landmarks"] = HeatmapLandmarkNet.from_pretrained()
            except WeightsNotFoundError as err:
                log.warning("landmark NME skipped: %s", err)
                cache["landmarks"] = None
        return cache["landmarks"]

    def evaluation_metrics(self, output: torch.Tensor, batch: Mapping) -> dict[str, torch.Tensor]:
        """l1 / mse / psnr / ssim of ``output`` against ``batch["target"]`` (see ``GANModule``), and ``nme``: the
        landmark network's points on ``output`` against ``batch["target_landmarks"]`` (inter-ocular NME,
        :func:`facezoo.metrics.landmark_nme`) when its weights are available (:meth:`landmark_net`)."""
        from facezoo.metrics import landmark_nme

        values = super().evaluation_metrics(output, batch)
        net = self.landmark_net()
        if net is not None and "target_landmarks" in batch:
            net = net.to(output.device)
            with torch.no_grad():
                values["nme"] = landmark_nme(net(output.clamp(-1, 1)), batch["target_landmarks"])
        return values
