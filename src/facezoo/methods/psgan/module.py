"""PSGAN's LightningModule: makeup transfer with two domain discriminators, as the official solver trains it.

One training step (per batch) follows ``wtjiang98/PSGAN:psgan/solver.py: train`` (reference/methods.md §1.2):

* **D_A main** (the makeup domain): ``L = λ_d · [LSGAN(D_A(y), real) + LSGAN(D_A(G(x, y)), fake)]``
* **D_B main** (the non-makeup domain): ``L = λ_d · [LSGAN(D_B(x), real) + LSGAN(D_B(G(y, x)), fake)]``
* **G main** (every ``g_every`` batches, the official ``G_STEP``), each term summed over both directions
  (x → makeup of y, and y → de-made-up by x):

  - ``adversarial``: ``LSGAN(D_A(G(x, y)), real) + LSGAN(D_B(G(y, x)), real)``
  - ``identity``: ``|G(x, x) − x|₁ + |G(y, y) − y|₁``
  - ``cycle``: ``|G(G(x, y), x) − x|₁ + |G(G(y, x), y) − y|₁``
  - ``perceptual``: ``MSE(VGG16(G(x, y)), VGG16(x)) + MSE(VGG16(G(y, x)), VGG16(y))`` (``features`` up to pool5,
    un-normalised input, as ``psgan/net.py: vgg16``)
  - ``makeup_<region>`` for lip, skin, eye: ``HM-loss(G(x, y); y) + HM-loss(G(y, x); x)``
    (:func:`facezoo.losses.makeup_loss`: L1 to the histogram-matched, detached target, on the 0-255 scale)

x is the non-makeup source (``batch["image"]``), y the makeup reference (``batch["reference"]``). The region
masks (lip, skin, eye) come from each face's CelebAMask-HQ mask and 68 landmarks through
:func:`~facezoo.methods.psgan.networks.region_masks_from_parsing` (the official construction).

The two directions of a term run as one generator call on a batch of ``2B`` (instance normalisation and the
attention are per sample, so this equals two calls).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np
import torch

from facezoo import losses, metrics
from facezoo.face import photo
from facezoo.methods.base import GANModule
from facezoo.methods.psgan.networks import (
    REGION_NAMES,
    Discriminator,
    PSGANGenerator,
    init_xavier,
    region_masks_from_parsing,
)

log = logging.getLogger(__name__)

__all__ = ["PSGAN", "Face", "histogram_matching_baseline"]


class Face(NamedTuple):
    """A batch of faces as the generator needs them.

    Attributes:
        image: ``(B, 3, H, W)`` in [-1, 1].
        landmarks: ``(B, 68, 2)`` (x, y) pixels.
        regions: ``(B, 3, H, W)`` float {0, 1} lip / skin / eye masks.
    """

    image: torch.Tensor
    landmarks: torch.Tensor
    regions: torch.Tensor

    def cat(self, other: Face) -> Face:
        """The two batches stacked along the batch dimension."""
        return Face(*(torch.cat([a, b]) for a, b in zip(self, other)))

    def with_image(self, image: torch.Tensor) -> Face:
        """The same geometry (landmarks, regions) with another image (e.g. a generated one)."""
        return Face(image, self.landmarks, self.regions)


def histogram_matching_baseline(source: Face, reference: Face) -> torch.Tensor:
    """Per-region histogram matching of the source to the reference: the "no network" makeup transfer.

    Each of the lip, skin and eye regions of the source gets the colour histogram of the same region of the
    reference (:func:`facezoo.losses.histogram_match`, per channel); pixels outside the three regions are
    left unchanged.

    Args:
        source: the faces to make up; ``regions`` ``(B, 3, H, W)``.
        reference: the makeup faces; ``regions`` ``(B, 3, H', W')``.

    Returns:
        ``(B, 3, H, W)`` in [-1, 1].
    """
    if source.regions.shape[1] != len(REGION_NAMES) or reference.regions.shape[1] != len(REGION_NAMES):
        raise ValueError(f"regions must have {len(REGION_NAMES)} channels {REGION_NAMES}, got "
                         f"{source.regions.shape[1]} and {reference.regions.shape[1]}")
    out = source.image.clone()
    for i in range(len(REGION_NAMES)):
        m_src, m_ref = source.regions[:, i], reference.regions[:, i]
        matched = losses.histogram_match(source.image, reference.image, m_src, m_ref)
        out = torch.where(m_src[:, None] > 0, matched, out)
    return out


class PSGAN(GANModule):
    """PSGAN (Jiang et al., CVPR 2020): pose- and expression-robust spatial-aware makeup transfer.

    Args:
        image_size: side of the square faces (the official 256; the CPU preset 64); batches are checked
            against it (the networks themselves are fully convolutional).
        width: channel multiplier of the generator and discriminators (1.0 = the official 64 base channels).
        spectral_norm: spectral normalisation in the discriminators (official ``NORM: SN``).
        eye_margin: margin of the eye boxes in pixels; ``None`` = 16 at 256² scaled to ``image_size``.
        loss: weights of the G terms ``adversarial, identity, cycle, perceptual, makeup_lip, makeup_skin,
            makeup_eye`` and of the discriminator loss ``d_adversarial`` (see ``conf/model/psgan.yaml``).
        perceptual_net: ``{"weights": "imagenet" | path | None, "required": bool}`` for the VGG16 of the
            perceptual term. When the file is missing and ``required`` is false, the term is switched off
            with one warning.
        optimizer: Adam ``lr`` and ``betas`` of G, D_A and D_B.
        g_every: the generator steps on every ``g_every``-th batch (official ``G_STEP``).
        lr_decay_epochs: linear decay of the learning rates to 0 over the last N epochs (official
            ``NUM_EPOCHS_DECAY``, 0 = constant).
        seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`.

    Example:
        >>> model = PSGAN(image_size=64, width=0.125, perceptual_net={"weights": None})   # doctest: +SKIP
    """

    # frozen loss networks stay out of checkpoints (GANModule.state_dict); they are rebuilt from their files
    frozen_prefixes = ("perceptual_loss.",)

    def __init__(self, image_size: int = 256, width: float = 1.0, spectral_norm: bool = True,
                 eye_margin: int | None = None, loss: Mapping | None = None,
                 perceptual_net: Mapping | None = None, optimizer: Mapping | None = None, g_every: int = 1,
                 lr_decay_epochs: int = 0, seed: int = 0, grad_clip: float = 0.0):
        super().__init__(seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters()
        if g_every < 1 or lr_decay_epochs < 0:
            raise ValueError(f"g_every must be >= 1 and lr_decay_epochs >= 0, got {g_every}, {lr_decay_epochs}")
        self.loss_weights = {"adversarial": 1.0, "identity": 2.5, "cycle": 5.0, "perceptual": 0.025,
                             "makeup_lip": 1.0, "makeup_skin": 0.1, "makeup_eye": 1.0, "d_adversarial": 0.5,
                             **(loss or {})}
        unknown = set(self.loss_weights) - {"adversarial", "identity", "cycle", "perceptual", "makeup_lip",
                                            "makeup_skin", "makeup_eye", "d_adversarial"}
        if unknown:
            raise ValueError(f"unknown PSGAN loss terms {sorted(unknown)}")
        self.eye_margin = eye_margin
        self.generator = PSGANGenerator(width=width)
        self.discriminator_a = Discriminator(width=width, spectral_norm=spectral_norm)  # makeup domain
        self.discriminator_b = Discriminator(width=width, spectral_norm=spectral_norm)  # non-makeup domain
        for net in (self.generator, self.discriminator_a, self.discriminator_b):
            init_xavier(net)
        self.adv = losses.AdversarialLoss("lsgan")
        self.perceptual_loss = self._build_perceptual_loss(perceptual_net or {})

    # --------------------------------------------------------------------------------- set-up
    def _build_perceptual_loss(self, cfg: Mapping):
        """MSE on VGG16 ``features`` (to pool5, un-normalised inputs), or None when the weights are missing."""
        from facezoo.nets.vgg import VGGFeatures

        def build():
            net = VGGFeatures("vgg16", layers=("pool5",), weights=cfg.get("weights", "imagenet"), normalize_input=False)
            return losses.PerceptualLoss(net, criterion="mse")

        return self.pretrained_loss_or_off("perceptual", cfg, build)

    def configure_optimizers(self):
        opt = self.hparams.optimizer or {}
        kwargs = {"lr": opt.get("lr", 2e-4), "betas": tuple(opt.get("betas", (0.5, 0.999)))}
        optimizers = [torch.optim.Adam(net.parameters(), **kwargs)
                      for net in (self.generator, self.discriminator_a, self.discriminator_b)]
        if not self.hparams.lr_decay_epochs:
            return optimizers
        schedulers = [torch.optim.lr_scheduler.LambdaLR(o, self._decay_factor) for o in optimizers]
        return optimizers, schedulers

    def _decay_factor(self, epochs_done: int) -> float:
        """Official linear decay (``solver.py``): after epoch e (1-based) > N − D the LR drops by lr0 / D."""
        total, decay = self.trainer.max_epochs, self.hparams.lr_decay_epochs
        if total is None or total < decay:
            raise ValueError(f"lr_decay_epochs={decay} needs trainer.max_epochs >= {decay}, got {total}")
        return max(0.0, 1.0 - max(0, epochs_done - (total - decay)) / decay)

    # -------------------------------------------------------------------------------- forward
    def regions(self, mask: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Lip / skin / eye masks ``(B, 3, H, W)`` of faces from their CelebAMask-HQ masks and landmarks."""
        return region_masks_from_parsing(mask, landmarks, eye_margin=self.eye_margin).to(torch.float32)

    def faces(self, batch: Mapping, any_size: bool = False) -> tuple[Face, Face]:
        """``(source x, reference y)`` of a makeup batch (keys ``image``, ``landmarks``, ``mask`` and the
        ``reference*`` ones); unless ``any_size``, the batch must be at the network's ``image_size``."""
        size = self.hparams.image_size
        if not any_size and tuple(batch["image"].shape[-2:]) != (size, size):
            raise ValueError(f"PSGAN was built for {size}x{size} faces (image_size) but the batch holds "
                             f"{tuple(batch['image'].shape[-2:])}")
        x = Face(batch["image"], batch["landmarks"], self.regions(batch["mask"], batch["landmarks"]))
        y = Face(batch["reference"], batch["reference_landmarks"],
                 self.regions(batch["reference_mask"], batch["reference_landmarks"]))
        return x, y

    def generate(self, source: Face, reference: Face) -> torch.Tensor:
        """``G(source, reference)``: the source wearing the reference's makeup, ``(B, 3, H, W)`` in [-1, 1]."""
        return self.generator(source.image, reference.image, source.landmarks, reference.landmarks,
                              source.regions, reference.regions)

    def forward(self, source: Face, reference: Face) -> torch.Tensor:
        """Same as :meth:`generate`."""
        return self.generate(source, reference)

    @torch.no_grad()
    def predict_batch(self, batch: Mapping) -> torch.Tensor:
        """The official two-pass inference: makeup matrices from the reference, then applied (α = 1, all regions).

        A batch at the network's ``image_size`` is transferred as it is. A batch at a higher resolution goes
        through what ``facezoo.infer`` does to a photo's face crop (official ``PreProcess`` / ``PostProcess``):
        each face is Lanczos-resized to ``image_size`` in 8 bit (landmarks scaled and rounded, masks nearest),
        transferred, and the result is upsampled with the source's high-frequency residual restored
        (:func:`facezoo.face.photo.restore_details`), rounded to 8 bit.

        Returns:
            ``(B, 3, H, W)`` in [-1, 1], at the batch's resolution.
        """
        size, res = self.hparams.image_size, batch["image"].shape[-1]
        if res < size:
            raise ValueError(f"PSGAN was built for {size}x{size} faces; a {res}x{res} batch is smaller")
        small = batch if res == size else _downsample_faces(batch, size)
        x, y = self.faces(small)
        g = self.generator
        gamma, beta = g.makeup_matrices(x.image, y.image, x.landmarks, y.landmarks, x.regions, y.regions)
        out = g.apply(x.image, gamma, beta)
        return out if res == size else _restore_details(out, batch["image"])

    # -------------------------------------------------------------------------------- losses
    def generator_terms(self, x: Face, y: Face) -> dict[str, torch.Tensor]:
        """The unweighted G terms, each summed over the two directions (see the module docstring)."""
        b = x.image.shape[0]
        src, ref = x.cat(y), y.cat(x)                        # direction 1: x → makeup of y; 2: y → by x
        fake = self.generate(src, ref)                       # [G(x, y); G(y, x)]
        terms = {"adversarial": self.adv.g(self.discriminator_a(fake[:b]))
                 + self.adv.g(self.discriminator_b(fake[b:]))}
        identity = self.generate(src, src)                   # [G(x, x); G(y, y)]
        terms["identity"] = 2 * losses.pixel_l1(identity, src.image)
        rec = self.generate(src.with_image(fake), src)       # [G(G(x, y), x); G(G(y, x), y)]
        terms["cycle"] = 2 * losses.pixel_l1(rec, src.image)
        if self.perceptual_loss is not None:
            terms["perceptual"] = 2 * self.perceptual_loss(fake, src.image)
        for i, name in enumerate(REGION_NAMES):
            # both directions in one call: the per-element mean over 2B images is half the sum of the two
            terms[f"makeup_{name}"] = 2 * losses.makeup_loss(fake, src.regions[:, i], ref.image, ref.regions[:, i])
        return terms

    def weighted_sum(self, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return sum(self.loss_weights[k] * v for k, v in terms.items() if self.loss_weights.get(k, 0))

    # -------------------------------------------------------------------------------- steps
    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        self.seed_step()
        opt_g, opt_da, opt_db = self.optimizers()
        x, y = self.faces(batch)
        b = x.image.shape[0]
        with torch.no_grad():
            fake = self.generate(x.cat(y), y.cat(x))         # [G(x, y); G(y, x)], detached
        d_terms = {}
        for name, opt, disc, real, fake_part in (("adversarial_a", opt_da, self.discriminator_a, y.image, fake[:b]),
                                                 ("adversarial_b", opt_db, self.discriminator_b, x.image, fake[b:])):
            with self.toggled_optimizer(opt):               # D_A main, then D_B main
                d_terms[name] = self.adv.d(disc(real), disc(fake_part))
                self.optimize(opt, self.loss_weights["d_adversarial"] * d_terms[name])

        if (batch_idx + 1) % self.hparams.g_every == 0:      # G main
            with self.toggled_optimizer(opt_g):
                g_terms = self.generator_terms(x, y)
                g_loss = self.weighted_sum(g_terms)
                self.optimize(opt_g, g_loss)
            self.log_terms("g", {**g_terms, "total": g_loss}, prog_bar=False)
        self.batches_seen += 1
        self.log_terms("d", d_terms, prog_bar=False)

    def on_train_epoch_end(self) -> None:
        if self.hparams.lr_decay_epochs:
            self.step_schedulers()

    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _eval_step(self, batch: Mapping, stage: str) -> None:
        values = self.evaluation_metrics(self.predict_batch(batch), batch)
        if "target" in batch:
            values["l1_input"] = metrics.l1(batch["image"], batch["target"])  # the "do nothing" reference
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, batch_size=batch["image"].shape[0],
                      sync_dist=True, prog_bar=stage == "val")

    def sample_rows(self, batch: Mapping) -> dict[str, torch.Tensor]:
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        was_training = self.training
        self.eval()
        out = self.predict_batch(batch)
        self.train(was_training)
        rows = {"source": batch["image"], "reference": batch["reference"], "PSGAN": out}
        if "target" in batch:
            rows["truth"] = batch["target"]
        return rows

    # ------------------------------------------------------------------------------ evaluation
    def evaluation_baselines(self, datamodule=None, **_) -> dict[str, Callable]:
        """Trivial makeup-transfer baselines: the source unchanged, and per-region histogram matching."""

        def histogram_matching(batch: Mapping) -> torch.Tensor:
            return histogram_matching_baseline(*self.faces(batch, any_size=True))

        return {"source": lambda batch: batch["image"], "histogram_matching": histogram_matching}

    def evaluation_metrics(self, output: torch.Tensor, batch: Mapping) -> dict[str, torch.Tensor]:
        """Metrics of a makeup output.

        With a ground truth (synthetic triples): l1, mse, psnr, ssim vs ``target`` and ``hist_<region>``, the
        per-region histogram distance to the target (:func:`facezoo.metrics.region_histogram_distance`, 64 bins,
        the source's regions, which the target shares). Always: ``hist_ref_<region>``, the distance of each
        output region to the same region of the reference (what real MT, without ground truth, can measure).
        """
        x, y = self.faces(batch, any_size=True)
        values: dict[str, torch.Tensor] = {}
        if "target" in batch:
            values.update(super().evaluation_metrics(output, batch))
            dist = metrics.region_histogram_distance(output, batch["target"], x.regions)
            values.update({f"hist_{name}": dist[i] for i, name in enumerate(REGION_NAMES)})
        dist = metrics.region_histogram_distance(output, y.image, x.regions, y.regions)
        values.update({f"hist_ref_{name}": dist[i] for i, name in enumerate(REGION_NAMES)})
        return values


# ------------------------------------------------------------------------- photo-resolution batches
_FACE_KEYS = (("image", "landmarks", "mask"), ("reference", "reference_landmarks", "reference_mask"))


def _downsample_faces(batch: Mapping, size: int) -> dict:
    """The source and reference faces of a batch at ``size``, as ``facezoo.infer`` prepares a photo's crop:
    8-bit Lanczos images, landmarks ``round(p · size / H)``, nearest-resized masks."""
    out = dict(batch)
    res = batch["image"].shape[-1]
    for image_key, landmarks_key, mask_key in _FACE_KEYS:
        out[image_key] = torch.cat([photo.image_to_tensor(photo.resize(photo.tensor_to_uint8(im), size, "lanczos"))
                                    for im in batch[image_key]]).to(batch[image_key])
        out[landmarks_key] = torch.round(batch[landmarks_key] * (size / res))
        masks = [photo.resize(m.cpu().numpy().astype(np.uint8), size, "nearest") for m in batch[mask_key]]
        out[mask_key] = torch.from_numpy(np.stack(masks)).to(batch[mask_key])
    return out


def _restore_details(result: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """PSGAN's post-processing on a batch: ``result`` (B, 3, h, w) upsampled to ``source`` (B, 3, H, W) plus
    the source's high-frequency residual (:func:`facezoo.face.photo.restore_details`), 8 bit, in [-1, 1]."""
    return torch.cat([photo.image_to_tensor(photo.restore_details(photo.tensor_to_image(r), photo.tensor_to_uint8(s)))
                      for r, s in zip(result, source)]).to(source)
