"""GANnotation's LightningModule: landmark-guided re-posing trained on A → B → C triplets.

Notation (``ESanchezLozano/GANnotation: training/GANnotation.py``): ``G(A, H_B)`` is face A re-posed to the
heatmaps of B's landmarks.
The batch is a re-posing sample dict (:class:`facezoo.data.synthetic.SyntheticReposing`, the 300VW loader):
``image`` (A), ``target`` (B), ``third`` (C) and their ``landmarks`` / ``target_landmarks`` /
``third_landmarks`` (68 iBUG points, pixels). Heatmaps are computed here, not by the dataset
(:func:`~.networks.landmark_heatmaps_official` on 66 or 68 points).

One training step handles one batch and steps **one** network, as the official loop does
(``training/train.py``): in every cycle of ``d_steps_per_g + 1`` batches the first ``d_steps_per_g`` update D
and the last updates G (WGAN-GP: 4 D : 1 G; hinge: 1 : 1). The loss terms (named after the paper):

* phase **d**: ``adversarial`` = ``adv_d(D(B), D(G(A, H_B)))`` (+ ``gradient_penalty``, WGAN-GP: 10)
* phase **g**: ``λ_adv·adversarial`` (−mean D(G(A,H_B))) ``+ λ_rec·reconstruction`` (L1 to B)
  ``+ λ_self·self_consistency`` (L1(G(G(A,H_B), H_A), A)) ``+ λ_triple·triple``
  (mean|G(A,H_C) − G(G(A,H_B),H_C)|) ``+ λ_percep·perceptual`` (VGG16 MSE summed over relu1_2/2_2/3_3/4_3)
  ``+ λ_tv·tv`` (squared TV) ``+ λ_id·identity`` (LightCNN features, the paper's identity-preserving term).

A term with weight 0 is not computed (``model.loss.triple=0`` is the "without the triple loss" ablation); the
validation metric ``val/triple_consistency`` is always logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from facezoo import losses
from facezoo.face.labels import landmarks_68_to_66
from facezoo.methods.base import GANModule, Phase
from facezoo.methods.gannotation.networks import (
    Discriminator,
    Generator,
    heatmaps_to_image,
    landmark_heatmaps_official,
)

__all__ = ["GANnotation", "triple_consistency"]

#: ``adversarial`` config value → facezoo.losses.AdversarialLoss kind (the official ``--gantype`` names).
ADVERSARIAL_KINDS = {"wgan-gp": "wgan", "hinge": "hinge"}

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

    Phases: in every cycle of ``d_steps_per_g + 1`` batches of an epoch, ``d`` on the first
    ``d_steps_per_g`` and ``g`` on the last (``training/train.py``: ``(i + 1) % (d_steps_per_g + 1) == 0``).

    Args:
        image_size: side of the faces and heatmaps (128 in the paper; the CPU preset uses 64).
        num_points: heatmap channels, 66 (the release: iBUG-68 without the inner mouth corners) or 68.
        conv_dim, repeat_num, width: generator settings (:class:`~.networks.Generator`).
        d_conv_dim, d_repeat_num: discriminator settings (its width is ``width`` too).
        heatmap_sigma: the official encoding's integer ``sigma`` (7×7 patches for 1).
        adversarial: ``"wgan-gp"`` (a critic; with ``loss.d.gradient_penalty``, 10 officially) or ``"hinge"``;
            G's term is −mean D for both.
        d_steps_per_g: D batches per G batch (official: 4 with WGAN-GP, 1 with hinge).
        loss, optimizers, schedulers, frozen, seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`;
            optimizers ``generator``, ``discriminator``; frozen ``perceptual_loss`` (VGG16 relu1_2/2_2/3_3/4_3,
            ``g.perceptual``) and ``identity_loss`` (LightCNN-29 v2, ``g.identity``).

    All defaults live in ``conf/model/gannotation.yaml``.
    """

    G_TERMS = ("adversarial", "reconstruction", "self_consistency", "triple", "perceptual", "tv", "identity")
    metrics = ("l1", "mse", "psnr", "ssim", "nme")

    def __init__(self, *, image_size: int, num_points: int, conv_dim: int, repeat_num: int, width: float,
                 d_conv_dim: int, d_repeat_num: int, heatmap_sigma: int, adversarial: str, d_steps_per_g: int,
                 loss: Mapping, optimizers: Mapping, schedulers: Mapping | None = None,
                 frozen: Mapping | None = None, seed: int = 0, grad_clip: float = 0.0):
        if num_points not in (66, 68):
            raise ValueError(f"num_points must be 66 or 68, got {num_points}")
        if adversarial not in ADVERSARIAL_KINDS:
            raise ValueError(f"adversarial must be one of {sorted(ADVERSARIAL_KINDS)}, got {adversarial!r}")
        if int(d_steps_per_g) < 0:
            raise ValueError(f"d_steps_per_g must be >= 0, got {d_steps_per_g}")
        cycle = int(d_steps_per_g) + 1
        super().__init__(
            phases=[Phase("d", "discriminator", ("adversarial", "gradient_penalty"), every=cycle,
                          at=tuple(range(cycle - 1))),
                    Phase("g", "generator", self.G_TERMS, every=cycle, at=(cycle - 1,))],
            loss=loss, optimizers=optimizers, schedulers=schedulers, frozen=frozen,
            frozen_terms={"perceptual_loss": ("g.perceptual",), "identity_loss": ("g.identity",)},
            seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters(ignore=GANModule.CONFIG_ARGS)
        self.generator = Generator(num_points=num_points, conv_dim=conv_dim, repeat_num=repeat_num, width=width)
        self.discriminator = Discriminator(image_size=image_size, conv_dim=d_conv_dim, repeat_num=d_repeat_num,
                                           width=width)
        self.adv = losses.AdversarialLoss(ADVERSARIAL_KINDS[adversarial])

    def optimizer_parameters(self) -> dict:
        return {"generator": self.generator.parameters(), "discriminator": self.discriminator.parameters()}

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

    # -------------------------------------------------------------------------------- phases
    def d_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """D main: ``adversarial`` = ``adv_d(D(B), D(G(A, H_B)))`` (+ WGAN-GP's ``gradient_penalty``)."""
        with torch.no_grad():
            fake = self.predict_batch(batch)
        real = batch["target"]
        terms = {"adversarial": self.adv.d(self.discriminator(real), self.discriminator(fake))}
        if self.wants("d", "gradient_penalty"):
            terms["gradient_penalty"] = losses.gradient_penalty(self.discriminator, real, fake, weight=1.0)
        return terms

    def g_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """G main: the terms with a non-zero weight (see the module docstring)."""
        a, b = batch["image"], batch["target"]
        size = a.shape[-1]
        ab = self(a, self.heatmaps(batch["target_landmarks"], size))["image"]
        terms = {}
        if self.wants("g", "adversarial"):
            terms["adversarial"] = self.adv.g(self.discriminator(ab))
        if self.wants("g", "reconstruction"):
            terms["reconstruction"] = losses.pixel_l1(ab, b)
        if self.wants("g", "self_consistency"):
            terms["self_consistency"] = losses.pixel_l1(self(ab, self.heatmaps(batch["landmarks"], size))["image"], a)
        if self.wants("g", "triple"):
            h_c = self.heatmaps(batch["third_landmarks"], size)
            terms["triple"] = triple_consistency(self(a, h_c)["image"], self(ab, h_c)["image"])
        if self.wants("g", "perceptual"):
            terms["perceptual"] = self.perceptual_loss(ab, b)
        if self.wants("g", "tv"):
            terms["tv"] = losses.total_variation(ab, squared=True)
        if self.wants("g", "identity"):
            terms["identity"] = self.identity_loss(ab, b)
        return terms

    # ---------------------------------------------------------------------------- evaluation
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

    def sample_images(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Rows: input A, target heatmaps H_B (grey), G(A, H_B), target B, and the attention mask M."""
        h_b = self.heatmaps(batch["target_landmarks"], batch["image"].shape[-1])
        out = self(batch["image"], h_b)
        return {"input A": batch["image"], "target landmarks H_B": heatmaps_to_image(h_b),
                "G(A, H_B)": out["image"], "target B": batch["target"],
                "mask M": (out["mask"] * 2 - 1).expand(-1, 3, -1, -1)}

    def evaluation_baselines(self, datamodule, **options) -> dict[str, Callable[[Mapping], torch.Tensor]]:
        """Re-posing baselines (:mod:`~.baselines`): ``unchanged`` (A itself), ``similarity`` (A moved by the
        least-squares similarity transform of its landmarks onto B's) and ``piecewise`` (a piecewise-affine
        warp of A taking its landmarks exactly onto B's)."""
        from facezoo.methods.gannotation.baselines import reposing_baselines

        return reposing_baselines()

    def evaluation_nets(self) -> dict:
        """``landmark_net``: the synthetic-face landmark network (:class:`facezoo.nets.landmarks.HeatmapLandmarkNet`,
        weights ``"synthetic_landmarks"`` from the facezoo cache) for ``nme``, or nothing (one warning) without
        its weights. Loaded once and kept outside the module's state (not in checkpoints)."""
        from facezoo.nets.landmarks import HeatmapLandmarkNet

        net = self.packaged_evaluation_net("landmark_net", HeatmapLandmarkNet, "landmark NME")
        return {} if net is None else {"landmark_net": net}

    def evaluation_inputs(self, batch: Mapping) -> dict:
        """The target points B's landmarks: ``nme`` measures the landmark network's points on the output
        against them (inter-ocular NME, :func:`facezoo.metrics.landmark_nme`)."""
        return {"target_landmarks": batch["target_landmarks"]} if "target_landmarks" in batch else {}
