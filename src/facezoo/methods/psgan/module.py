"""PSGAN's LightningModule: makeup transfer with two domain discriminators, as the official solver trains it.

One training step (per batch) follows ``wtjiang98/PSGAN: psgan/solver.py train``:

* phase **d_a** (D_A, the makeup domain): ``L = λ · [LSGAN(D_A(y), real) + LSGAN(D_A(G(x, y)), fake)]``
* phase **d_b** (D_B, the non-makeup domain): ``L = λ · [LSGAN(D_B(x), real) + LSGAN(D_B(G(y, x)), fake)]``
* phase **g** (every ``g_every`` batches, the official ``G_STEP``), each term summed over both directions
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

import torch

from facezoo import losses
from facezoo.methods.base import GANModule, Phase
from facezoo.methods.psgan.networks import (
    REGION_NAMES,
    Discriminator,
    PSGANGenerator,
    init_xavier,
    region_masks_from_parsing,
)
from facezoo.ops import histogram_match

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
    reference (:func:`facezoo.ops.histogram_match`, per channel); pixels outside the three regions are
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
        matched = histogram_match(source.image, reference.image, m_src, m_ref)
        out = torch.where(m_src[:, None] > 0, matched, out)
    return out


class PSGAN(GANModule):
    """PSGAN (Jiang et al., CVPR 2020): pose- and expression-robust spatial-aware makeup transfer.

    Phases (per batch): ``d_a`` (D_A, the makeup domain), ``d_b`` (D_B, the non-makeup domain), then ``g``
    on every ``g_every``-th batch (the official ``G_STEP``).

    Args:
        image_size: side of the square faces (the official 256; the CPU preset 64); batches are checked
            against it (the networks themselves are fully convolutional).
        width: channel multiplier of the generator and discriminators (1.0 = the official 64 base channels).
        spectral_norm: spectral normalisation in the discriminators (official ``NORM: SN``).
        eye_margin: margin of the eye boxes in pixels; ``None`` = 16 at 256² scaled to ``image_size``.
        g_every: the generator steps on every ``g_every``-th batch.
        loss, optimizers, schedulers, frozen, seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`;
            optimizers ``generator``, ``discriminator_a``, ``discriminator_b``; frozen ``perceptual_loss``
            (VGG16 ``features`` to pool5, term ``g.perceptual``).

    All defaults live in ``conf/model/psgan.yaml``.
    """

    G_TERMS = ("adversarial", "identity", "cycle", "perceptual", "makeup_lip", "makeup_skin", "makeup_eye")
    metrics = ("l1", "mse", "psnr", "ssim", "region_l1", "region_hist", "region_hist_ref")

    def __init__(self, *, image_size: int, width: float, spectral_norm: bool, eye_margin: int | None,
                 g_every: int, loss: Mapping, optimizers: Mapping, schedulers: Mapping | None = None,
                 frozen: Mapping | None = None, seed: int = 0, grad_clip: float = 0.0):
        if g_every < 1:
            raise ValueError(f"g_every must be >= 1, got {g_every}")
        if image_size < 24 or image_size % 4:    # G halves twice and doubles back; each critic needs >= 24
            raise ValueError(f"image_size must be a multiple of 4 and at least 24 (PSGAN's generator downsamples "
                             f"twice), got {image_size}")
        super().__init__(
            phases=[Phase("d_a", "discriminator_a", ("adversarial",)),
                    Phase("d_b", "discriminator_b", ("adversarial",)),
                    Phase("g", "generator", self.G_TERMS, every=g_every, at=(g_every - 1,))],
            loss=loss, optimizers=optimizers, schedulers=schedulers, frozen=frozen,
            frozen_terms={"perceptual_loss": ("g.perceptual",)}, seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters(ignore=GANModule.CONFIG_ARGS)
        self.eye_margin = eye_margin
        self.generator = PSGANGenerator(width=width)
        self.discriminator_a = Discriminator(width=width, spectral_norm=spectral_norm)  # makeup domain
        self.discriminator_b = Discriminator(width=width, spectral_norm=spectral_norm)  # non-makeup domain
        for net in (self.generator, self.discriminator_a, self.discriminator_b):
            init_xavier(net)
        self.adv = losses.AdversarialLoss("lsgan")

    def optimizer_parameters(self) -> dict:
        return {"generator": self.generator.parameters(), "discriminator_a": self.discriminator_a.parameters(),
                "discriminator_b": self.discriminator_b.parameters()}

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
                             f"{tuple(batch['image'].shape[-2:])}; photos go through "
                             "facezoo.methods.psgan.inference")
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

        The batch must be at the network's ``image_size``; photos and larger batches go through
        :func:`facezoo.methods.psgan.inference.predict` (the official pre- and post-processing).

        Returns:
            ``(B, 3, H, W)`` in [-1, 1].
        """
        x, y = self.faces(batch)
        g = self.generator
        gamma, beta = g.makeup_matrices(x.image, y.image, x.landmarks, y.landmarks, x.regions, y.regions)
        return g.apply(x.image, gamma, beta)

    # -------------------------------------------------------------------------------- phases
    def prepare_batch(self, batch: Mapping) -> dict:
        """The two faces and ``[G(x, y); G(y, x)]`` without gradient (what both discriminators judge)."""
        x, y = self.faces(batch)
        with torch.no_grad():
            fake = self.generate(x.cat(y), y.cat(x))
        return {"x": x, "y": y, "fake": fake}

    def d_a_terms(self, step: Mapping) -> dict[str, torch.Tensor]:
        """D_A main: real makeup faces y against G(x, y)."""
        b = step["x"].image.shape[0]
        return {"adversarial": self.adv.d(self.discriminator_a(step["y"].image),
                                          self.discriminator_a(step["fake"][:b]))}

    def d_b_terms(self, step: Mapping) -> dict[str, torch.Tensor]:
        """D_B main: real non-makeup faces x against G(y, x)."""
        b = step["x"].image.shape[0]
        return {"adversarial": self.adv.d(self.discriminator_b(step["x"].image),
                                          self.discriminator_b(step["fake"][b:]))}

    def g_terms(self, step: Mapping) -> dict[str, torch.Tensor]:
        """G main: the unweighted terms, each summed over the two directions (see the module docstring)."""
        x, y = step["x"], step["y"]
        b = x.image.shape[0]
        src, ref = x.cat(y), y.cat(x)                        # direction 1: x → makeup of y; 2: y → by x
        fake = self.generate(src, ref)                       # [G(x, y); G(y, x)]
        terms = {"adversarial": self.adv.g(self.discriminator_a(fake[:b]))
                 + self.adv.g(self.discriminator_b(fake[b:]))}
        identity = self.generate(src, src)                   # [G(x, x); G(y, y)]
        terms["identity"] = 2 * losses.pixel_l1(identity, src.image)
        rec = self.generate(src.with_image(fake), src)       # [G(G(x, y), x); G(G(y, x), y)]
        terms["cycle"] = 2 * losses.pixel_l1(rec, src.image)
        if self.perceptual_loss is not None and self.wants("g", "perceptual"):
            terms["perceptual"] = 2 * self.perceptual_loss(fake, src.image)
        for i, name in enumerate(REGION_NAMES):
            # both directions in one call: the per-element mean over 2B images is half the sum of the two
            terms[f"makeup_{name}"] = 2 * losses.makeup_loss(fake, src.regions[:, i], ref.image, ref.regions[:, i])
        return terms

    # ---------------------------------------------------------------------------- evaluation
    def sample_images(self, batch: Mapping) -> dict[str, torch.Tensor]:
        rows = {"source": batch["image"], "reference": batch["reference"], "PSGAN": self.predict_batch(batch)}
        if "target" in batch:
            rows["truth"] = batch["target"]
        return rows

    def evaluation_baselines(self, datamodule=None, **_) -> dict[str, Callable]:
        """Trivial makeup-transfer baselines: the source unchanged, and per-region histogram matching."""

        def histogram_matching(batch: Mapping) -> torch.Tensor:
            return histogram_matching_baseline(*self.faces(batch, any_size=True))

        return {"source": lambda batch: batch["image"], "histogram_matching": histogram_matching}

    def evaluation_inputs(self, batch: Mapping) -> dict:
        """The source's lip / skin / eye regions and the reference with its regions, for the metrics
        ``region_l1`` (the error inside each region and outside them all), ``region_hist`` (per-region histogram
        distance to the ground truth, 64 bins; the target shares the source's regions) and ``region_hist_ref`` (to
        the same region of the reference: what real MT, without a ground truth, can measure)."""
        x, y = self.faces(batch, any_size=True)
        return {"regions": x.regions, "region_names": REGION_NAMES, "reference": y.image,
                "reference_regions": y.regions}
