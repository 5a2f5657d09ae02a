"""pSp's LightningModule: the style encoder trained against a fixed StyleGAN2 decoder, as the official coach.

One phase per batch (``eladrich/pixel2style2pixel: training/coach.py: train, calc_loss``), no discriminator:

* **encoder**: ``ŷ = face_pool(G(E(x)))`` and, with the weights of ``model.loss.encoder``,
  ``λ_l2·MSE(ŷ, y) + λ_lpips·LPIPS(ŷ, y) + λ_id·(1 − cos f(ŷ)·f(y)) + λ_w_norm·‖w − w̄‖ + λ_l2_crop·MSE_crop
  + λ_lpips_crop·LPIPS_crop + λ_moco·(1 − cos m(ŷ)·m(y))``; the crops are the inner face ``[35:223, 32:220]``
  of a 256 px image (scaled to the training size), f is ArcFace IR-SE50 (``criteria/id_loss.py``), m MoCo v2
  (``criteria/moco_loss.py``, for non-face domains; exclusive with the ID loss, as there).

Only the encoder is optimised (Ranger: RAdam + Lookahead, ``training/ranger.py``) unless ``train_decoder``.
The decoder is a rosinality-format StyleGAN2 file (``decoder``: the released ``stylegan2-ffhq-config-f.pt`` or one
exported from ``model=stylegan2`` by ``scripts/export_stylegan2.py``); its weights, architecture and ``latent_avg``
travel in the facezoo checkpoint, so a checkpoint loads without the file (the official release files are as
self-contained).

The batch: ``image`` the encoder's input (B, C_in, H, W) (RGB, a 1-channel sketch or a 19-channel one-hot
segmentation, :mod:`facezoo.data.psp`), ``target`` the face to produce (B, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from facezoo import losses
from facezoo.face.labels import colorize_labels
from facezoo.methods.base import GANModule, Phase
from facezoo.methods.psp.networks import PSP
from facezoo.nets.stylegan2 import Generator, generator_config_from_state_dict, load_rosinality
from facezoo.nets.weights import WeightsNotFoundError

log = logging.getLogger(__name__)

__all__ = ["Pixel2Style2Pixel", "load_decoder", "source_to_rgb"]

#: pSp's inner-face crop (top, bottom, left, right) of a 256 px image (``training/coach.py``, ``criteria/id_loss.py``)
INNER_FACE = (35, 223, 32, 220)


def load_decoder(path: str | os.PathLike, make: str | None = None) -> tuple[Generator, torch.Tensor | None]:
    """The StyleGAN2 decoder file: ``(g_ema, latent_avg or None)``; a missing file is one line naming ``make``.

    Raises:
        WeightsNotFoundError: no such file.
        FacezooError: a file that is not a rosinality-format generator (one line).
    """
    file = Path(path)
    if not file.is_file():
        hint = f"; make one with: {make}" if make else ""
        raise WeightsNotFoundError(f"{file}: no StyleGAN2 decoder file (model.decoder){hint}")
    return load_rosinality(file)


def source_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """An encoder input as a picture (B, 3, H, W) in [-1, 1]: RGB as is, a sketch in grey, a one-hot map coloured."""
    if x.shape[1] == 3:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    return colorize_labels(x.argmax(1))


class Pixel2Style2Pixel(GANModule):
    """pSp (Richardson et al., CVPR 2021): image → W+ of a frozen StyleGAN2 → image.

    Args:
        task: ``encode``, ``frontalize``, ``sketch2face``, ``seg2face`` or ``superres`` (:mod:`facezoo.data.psp`
            makes its data; it names the evaluation baselines).
        decoder: the rosinality-format StyleGAN2 file (``{"g_ema", "latent_avg"}``); it must exist unless
            ``decoder_arch`` is given (a facezoo checkpoint being loaded).
        decoder_make: the command that makes the decoder file, for the one-line error when it is missing.
        decoder_arch: the decoder's architecture (:class:`~facezoo.nets.stylegan2.Generator` arguments); set in
            checkpoints (:meth:`on_save_checkpoint`), so that a checkpoint rebuilds its decoder without the file.
        encoder_type: ``GradualStyleEncoder`` (pSp), ``BackboneEncoderUsingLastLayerIntoW`` or
            ``...IntoWPlus`` (the paper's ablations).
        input_nc: encoder input channels (3 RGB, 1 sketch, 19 segmentation).
        image_size: training side of inputs and targets; the decoder's output is pooled to it (``face_pool``).
        width: the encoder's channel scale (1 = pSp's IR-SE50 widths; less for small CPU encoders).
        start_from_latent_avg: the encoder predicts a residual around w̄.
        train_decoder: optimise the decoder too (official ``--train_decoder``).
        irse50: initialise the encoder body from ArcFace IR-SE50 (``True``: the cache, one warning when absent;
            a path; ``False``).
        n_mean_latent: mapped samples for w̄ when the decoder file has no ``latent_avg``.
        crop: the inner-face box (top, bottom, left, right) in 256 px coordinates for the crop terms.
        loss, optimizers, schedulers, frozen, seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`; the
            optimizer is ``encoder``; frozen ``lpips_loss`` (terms lpips, lpips_crop), ``identity_loss`` (id),
            ``moco_loss`` (moco).

    All defaults live in ``conf/model/psp.yaml``.
    """

    metrics = ("mse", "lpips", "ssim", "ms_ssim", "id_sim", "id_sim_synthetic")
    TERMS = ("l2", "lpips", "id", "w_norm", "l2_crop", "lpips_crop", "moco")

    def __init__(self, *, task: str, decoder: str, encoder_type: str, input_nc: int, image_size: int, width: float,
                 start_from_latent_avg: bool, train_decoder: bool, irse50: bool | str, n_mean_latent: int,
                 crop: Sequence[int], loss: Mapping, optimizers: Mapping, decoder_make: str | None = None,
                 decoder_arch: Mapping | None = None, schedulers: Mapping | None = None,
                 frozen: Mapping | None = None, seed: int = 0, grad_clip: float = 0.0):
        from facezoo.data.psp import TASK_CHANNELS

        if task not in TASK_CHANNELS or TASK_CHANNELS[task] != input_nc:
            raise ValueError(f"task {task!r} with input_nc {input_nc}: tasks and their input channels are "
                             f"{TASK_CHANNELS}")
        weights = (loss or {}).get("encoder", {})
        if weights.get("id", 0) and weights.get("moco", 0):
            raise ValueError("model.loss.encoder.id and .moco are mutually exclusive (pSp's coach): set one to 0")
        super().__init__(
            phases=[Phase("encoder", "encoder", self.TERMS)], loss=loss, optimizers=optimizers,
            schedulers=schedulers, frozen=frozen, seed=seed, grad_clip=grad_clip,
            frozen_terms={"lpips_loss": ("encoder.lpips", "encoder.lpips_crop"), "identity_loss": ("encoder.id",),
                          "moco_loss": ("encoder.moco",)})
        self.save_hyperparameters(ignore=GANModule.CONFIG_ARGS)
        latent_avg = None
        with torch.random.fork_rng(devices=[]):     # the decoder's init must not shift the encoder's
            if decoder_arch is not None:
                generator = Generator(**decoder_arch)
            else:
                generator, latent_avg = load_decoder(decoder, decoder_make)
        self.decoder_arch = dict(decoder_arch or generator_config_from_state_dict(generator.state_dict(), decoder))
        with torch.random.fork_rng(devices=[]):     # w̄ estimated from the decoder's own seeded samples
            self.psp = PSP(generator.train(), encoder_type=encoder_type, input_nc=input_nc,
                           start_from_latent_avg=start_from_latent_avg, train_decoder=train_decoder,
                           latent_avg=latent_avg, pool_size=image_size, input_size=image_size,
                           irse50=irse50 if decoder_arch is None else False, n_mean_latent=n_mean_latent,
                           width=width)
        self.crop = tuple(int(c) for c in crop)
        losses._crop_box(self.crop, image_size, image_size, 256)   # an empty box is a config error now

    def optimizer_parameters(self) -> dict:
        return {"encoder": self.psp.trainable_parameters()}

    def train(self, mode: bool = True):
        super().train(mode)
        if not self.hparams.train_decoder:     # a frozen decoder keeps its eval behaviour
            self.psp.decoder.eval()
        return self

    # -------------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, randomize_noise: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ŷ, w)``: the decoded images pooled to ``image_size`` (B, 3, S, S) and the W+ codes (B, n_styles, D)."""
        codes = self.psp.encode(x)
        return self.psp.decode(codes, randomize_noise=randomize_noise, resize=True), codes

    def inner_face(self, images: torch.Tensor) -> torch.Tensor:
        """The inner-face crop ``[35:223, 32:220]`` of 256 px images, scaled to the images' size."""
        top, bottom, left, right = losses._crop_box(self.crop, images.shape[-2], images.shape[-1], 256)
        return images[..., top:bottom, left:right]

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor, y_hat: torch.Tensor,
                   codes: torch.Tensor) -> dict[str, torch.Tensor]:
        """The unweighted terms (those that count, :meth:`wants`) of ``calc_loss`` for one batch."""
        wants = lambda term: self.wants("encoder", term)  # noqa: E731
        terms = {}
        if wants("l2"):
            terms["l2"] = F.mse_loss(y_hat, y)
        if wants("lpips"):
            terms["lpips"] = self.lpips_loss(y_hat, y)
        if wants("id"):
            terms["id"] = self.identity_loss(y_hat, y)
        if wants("w_norm"):
            terms["w_norm"] = losses.w_norm(codes, self.psp.latent_avg if self.psp.start_from_latent_avg else None)
        if wants("l2_crop"):
            terms["l2_crop"] = F.mse_loss(self.inner_face(y_hat), self.inner_face(y))
        if wants("lpips_crop"):
            terms["lpips_crop"] = self.lpips_loss(self.inner_face(y_hat), self.inner_face(y))
        if wants("moco"):
            terms["moco"] = self.moco_loss(y_hat, y)
        return terms

    def encoder_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        x, y = batch["image"], batch["target"]
        y_hat, codes = self(x)
        terms = self.loss_terms(x, y, y_hat, codes)
        similarity = self.identity_loss if "id" in terms else self.moco_loss if "moco" in terms else None
        if similarity is not None and x.shape[1] == 3:    # the identity improvement over the input, as logged there
            improvement = (similarity.similarity(y_hat, y) - similarity.similarity(y, x)).mean()
            self.log("train/id_improvement", improvement, on_step=True, on_epoch=True, batch_size=x.shape[0])
        return terms

    @torch.no_grad()
    def predict_batch(self, batch: Mapping) -> torch.Tensor:
        """``face_pool(G(E(x)))`` with the decoder's fixed noise (official ``inference.py``): (B, 3, S, S)."""
        return self.psp(batch["image"], resize=True, randomize_noise=False)

    def evaluation_model_metrics(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """``loss``: the weighted training objective on the batch (the official coach keeps the best checkpoint by
        its validation mean)."""
        y_hat, codes = self.psp(batch["image"], resize=True, randomize_noise=False, return_latents=True)
        terms = self.loss_terms(batch["image"], batch["target"], y_hat, codes)
        return {"loss": self.weighted_sum("encoder", terms)}

    # ---------------------------------------------------------------------------- evaluation
    @torch.no_grad()
    def mean_latent_image(self, n: int) -> torch.Tensor:
        """``n`` copies of G(w̄) at ``image_size``, the image every inversion starts from (B, 3, S, S)."""
        w = self.psp.latent_avg.unsqueeze(0).expand(n, -1, -1)
        return self.psp.decode(w, randomize_noise=False, resize=True)

    def sample_images(self, batch: Mapping) -> dict[str, torch.Tensor]:
        rows = {"input": source_to_rgb(batch["image"]), "target": batch["target"],
                "pSp": self.predict_batch(batch)}
        if self.hparams.input_nc != 3:         # multi-modal synthesis: random fine styles (official style mixing)
            g = torch.Generator().manual_seed(self.seed)
            fine = range(min(8, self.psp.n_styles - 1), self.psp.n_styles)
            rows["pSp, random fine styles"] = self.psp.style_mix(batch["image"], fine, 1, generator=g,
                                                                  randomize_noise=False)[:, 0]
        return rows

    def evaluation_baselines(self, datamodule, projection_steps: Sequence[int] = (), **_) -> dict[str, Callable]:
        """What a user has without this encoder: G(w̄) (an encoder that learned nothing); the input itself where it
        is an image (``profile`` for frontalization, ``bicubic`` upsampling for super-resolution); for inversion,
        W+ projection (:func:`facezoo.methods.stylegan2.project`) at each of ``projection_steps``."""
        baselines = {"mean_latent": lambda batch: self.mean_latent_image(batch["image"].shape[0])}
        named_input = {"frontalize": "profile", "superres": "bicubic"}.get(self.hparams.task)
        if named_input:
            baselines[named_input] = lambda batch: batch["image"]
        if self.hparams.task == "encode":
            for steps in projection_steps:
                baselines[f"projection_{steps}"] = self._projection(int(steps))
        return baselines

    def _projection(self, steps: int) -> Callable:
        from facezoo.methods.stylegan2.projection import project

        def run(batch: Mapping) -> torch.Tensor:
            size = self.psp.output_size
            target = batch["target"]
            if target.shape[-1] != size:
                target = F.interpolate(target, size=(size, size), mode="bilinear", align_corners=False)
            with torch.enable_grad():
                images = project(self.psp.decoder, target, steps=steps, space="w+", seed=self.seed).images
            return self.psp.face_pool(images)

        return run

    # ------------------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        config = checkpoint.get("facezoo_config")
        if config is not None:                  # the decoder's architecture travels with its weights
            checkpoint["facezoo_config"] = {**config, "model": {**config["model"], "decoder_arch": self.decoder_arch}}
