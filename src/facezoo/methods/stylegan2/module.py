"""StyleGAN2's LightningModule, as rosinality's ``train.py`` trains it (``rosinality/stylegan2-pytorch``).

Phases (``NVlabs/stylegan2-ada-pytorch: training/training_loop.py`` names them Dmain, Dreg, Gmain, Greg):

* **d** every batch: the non-saturating logistic loss ``softplus(D(G(z))) + softplus(−D(x))``
  (``train.py: d_logistic_loss``); with ADA both go through the same augmentation.
* **d_reg** every ``r1_every`` batches (lazy R1): ``r1 = ½ · r1_every · E‖∇ₓD(x)‖²`` (``d_r1_loss``), weighted by
  γ (``model.loss.d_reg.r1``, 10).
* **g** every batch: ``adversarial = softplus(−D(G(z)))`` (``g_nonsaturating_loss``), z with style mixing
  (probability ``mixing``, 0.9).
* **g_reg** every ``path_every`` batches (lazy path-length regularisation): ``path_length = path_every ·
  E(‖J_wᵀy‖ − a)²`` on ``batch // path_batch_shrink`` samples, ``a`` the running mean with decay
  ``path_decay`` (``g_path_regularize``), weighted by ``model.loss.g_reg.path_length`` (2).

The Adam rates and betas of each network are corrected for its lazy regularisation (``c = every / (every + 1)``:
``lr·c``, ``β^c``; ``train.py``); the EMA generator ``generator_ema`` (``g_ema``) follows G after every batch
with a half-life of ``ema_kimg`` thousand images (10k at batch 32, as rosinality's ``accumulate``), and makes
the validation samples, the evaluation outputs and the exported file (``scripts/export_stylegan2.py``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F

from facezoo.methods.base import GANModule, Phase
from facezoo.methods.stylegan2.augment import AdaptiveAugment, augment
from facezoo.nets.stylegan2 import Discriminator, Generator

__all__ = ["StyleGAN2"]




class StyleGAN2(GANModule):
    """StyleGAN2 (Karras et al., CVPR 2020), unconditional, any resolution from 32 px.

    Args:
        image_size: output side (a power of 2, 32 … 1024).
        latent_dim: z and w size (512); n_mlp: mapping layers (8); lr_mlp: the mapping's lr multiplier (0.01).
        channel_multiplier: rosinality's (2 for config-f); width: a further channel scale for small generators.
        mixing: style-mixing probability (0.9).
        r1_every, path_every: intervals of the lazy regularisations (16, 4).
        path_batch_shrink, path_decay: path-length batch divisor (2) and running-mean decay (0.01).
        ema_kimg: half-life of the EMA generator in thousands of images (10).
        augment: ``{"p": fixed probability or 0 for adaptive, "target": 0.6, "length": 500000,
            "update_every": 8}`` or ``None`` (no augmentation).
        loss, optimizers, schedulers, frozen, seed, grad_clip: see :class:`~facezoo.methods.base.GANModule`;
            optimizers ``generator`` and ``discriminator`` (before the lazy-regularisation correction).

    All defaults live in ``conf/model/stylegan2.yaml``.
    """

    metrics = ("fid", "fld")
    validation_distributions = ("fld",)

    def __init__(self, *, image_size: int, latent_dim: int, n_mlp: int, lr_mlp: float, channel_multiplier: int,
                 width: float, mixing: float, r1_every: int, path_every: int, path_batch_shrink: int,
                 path_decay: float, ema_kimg: float, augment: Mapping | None, loss: Mapping, optimizers: Mapping,
                 schedulers: Mapping | None = None, frozen: Mapping | None = None, seed: int = 0,
                 grad_clip: float = 0.0):
        if r1_every < 1 or path_every < 1 or path_batch_shrink < 1 or ema_kimg <= 0 or not 0 <= mixing <= 1:
            raise ValueError("StyleGAN2 needs r1_every, path_every, path_batch_shrink >= 1, ema_kimg > 0 and "
                             f"0 <= mixing <= 1, got {r1_every}, {path_every}, {path_batch_shrink}, {ema_kimg}, "
                             f"{mixing}")
        super().__init__(
            phases=[Phase("d", "discriminator", ("adversarial",)),
                    Phase("d_reg", "discriminator", ("r1",), every=r1_every),
                    Phase("g", "generator", ("adversarial",)),
                    Phase("g_reg", "generator", ("path_length",), every=path_every)],
            loss=loss, optimizers=optimizers, schedulers=schedulers, frozen=frozen, seed=seed, grad_clip=grad_clip)
        self.save_hyperparameters(ignore=GANModule.CONFIG_ARGS)
        self.generator = Generator(image_size, latent_dim, n_mlp, channel_multiplier=channel_multiplier,
                                   lr_mlp=lr_mlp, narrow=width)
        self.discriminator = Discriminator(image_size, channel_multiplier=channel_multiplier, narrow=width)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        self.register_buffer("mean_path_length", torch.zeros(()))
        self.ada = None if augment is None else AdaptiveAugment(
            target=augment.get("target", 0.6), length=augment.get("length", 500_000),
            update_every=augment.get("update_every", 8), p=augment.get("p", 0.0))
        self.adaptive = augment is not None and not augment.get("p", 0.0)

    def optimizer_parameters(self) -> dict:
        return {"generator": self.generator.parameters(), "discriminator": self.discriminator.parameters()}

    def build_optimizer(self, name: str, factory: Callable, params):
        """Adam corrected for lazy regularisation: ``lr · c`` and ``β^c`` with ``c = every / (every + 1)``."""
        every = self.hparams.path_every if name == "generator" else self.hparams.r1_every
        c = every / (every + 1)
        kwargs = getattr(factory, "keywords", {})
        overrides = {}
        if "lr" in kwargs:
            overrides["lr"] = kwargs["lr"] * c
        if "betas" in kwargs:
            overrides["betas"] = tuple(b ** c for b in kwargs["betas"])
        return factory(params, **overrides)

    # -------------------------------------------------------------------------------- sampling
    def noise(self, batch: int) -> list[torch.Tensor]:
        """z for a training step: two latents with probability ``mixing`` (style mixing), else one.

        Drawn from torch's RNG only (seeded per step by the base), so a resumed run repeats them.
        """
        draw = torch.rand(()).item()
        n = 2 if self.hparams.mixing > 0 and draw < self.hparams.mixing else 1
        return list(torch.randn(n, batch, self.hparams.latent_dim, device=self.device).unbind(0))

    def generate(self, batch: int, return_latents: bool = False):
        """``G(z)`` for ``batch`` fresh mixing z; the crossover layer of two latents is drawn from torch's RNG
        (rosinality draws it with Python's ``random``, which facezoo's per-step seeding does not cover)."""
        z = self.noise(batch)
        inject = int(torch.randint(1, self.generator.n_latent, ())) if len(z) == 2 else None
        return self.generator(z, return_latents=return_latents, inject_index=inject)

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.ada is None else augment(images, self.ada.p)

    def fixed_latents(self, n: int) -> torch.Tensor:
        """``n`` z vectors fixed by the module's seed (validation samples and evaluation)."""
        g = torch.Generator().manual_seed(self.seed)
        return torch.randn(n, self.hparams.latent_dim, generator=g).to(self.device)

    @torch.no_grad()
    def predict_batch(self, batch: Mapping) -> torch.Tensor:
        """``batch``-sized samples of the EMA generator from fixed z (noise fixed), (B, 3, S, S) in [-1, 1]."""
        z = self.fixed_latents(batch["image"].shape[0])
        return self.generator_ema([z], randomize_noise=False)[0]

    # -------------------------------------------------------------------------------- phases
    def d_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        real = batch["image"]
        with torch.no_grad():
            fake = self.generate(real.shape[0])[0]
        real_pred = self.discriminator(self.augment(real))
        fake_pred = self.discriminator(self.augment(fake))
        if self.adaptive:
            self.ada.tune(real_pred)
        return {"adversarial": F.softplus(-real_pred).mean() + F.softplus(fake_pred).mean()}

    def d_reg_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        real = batch["image"].detach().requires_grad_(True)
        real_pred = self.discriminator(self.augment(real))
        (grad,) = torch.autograd.grad(real_pred.sum(), real, create_graph=True)
        penalty = grad.pow(2).flatten(1).sum(1).mean()
        return {"r1": 0.5 * penalty * self.hparams.r1_every + 0 * real_pred[0, 0]}

    def g_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        fake = self.generate(batch["image"].shape[0])[0]
        return {"adversarial": F.softplus(-self.discriminator(self.augment(fake))).mean()}

    def g_reg_terms(self, batch: Mapping) -> dict[str, torch.Tensor]:
        n = max(1, batch["image"].shape[0] // self.hparams.path_batch_shrink)
        fake, latents = self.generate(n, return_latents=True)
        noise = torch.randn_like(fake) / math.sqrt(fake.shape[2] * fake.shape[3])
        (grad,) = torch.autograd.grad((fake * noise).sum(), latents, create_graph=True)
        lengths = grad.pow(2).sum(2).mean(1).sqrt()
        mean = self.mean_path_length + self.hparams.path_decay * (lengths.mean() - self.mean_path_length)
        self.mean_path_length.copy_(mean.detach())
        penalty = (lengths - mean).pow(2).mean()
        return {"path_length": self.hparams.path_every * penalty + 0 * fake[0, 0, 0, 0]}

    @torch.no_grad()
    def update_ema(self, images: int) -> float:
        """``ema ← β·ema + (1 − β)·G`` after a step of ``images`` images (all processes); returns β.

        β = 0.5^(images / (ema_kimg · 1000)): a half-life of ``ema_kimg`` thousand images (rosinality's
        ``accumulate(g_ema, g, 0.5 ** (32 / (10 * 1000)))`` at batch 32).
        """
        beta = 0.5 ** (images / (self.hparams.ema_kimg * 1000))
        for p_ema, p in zip(self.generator_ema.parameters(), self.generator.parameters()):
            p_ema.lerp_(p, 1 - beta)
        return beta

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self.update_ema(batch["image"].shape[0] * self.trainer.world_size)
        if self.ada is not None:
            self.log("ada/p", self.ada.p, on_step=True, on_epoch=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.generator_ema.eval()
        return self

    # ---------------------------------------------------------------------------- evaluation
    def sample_images(self, batch: Mapping) -> dict[str, torch.Tensor]:
        n = batch["image"].shape[0]
        z = self.fixed_latents(n)
        rows = {"training images": batch["image"],
                "G_ema(z)": self.generator_ema([z], randomize_noise=False)[0]}
        latent_mean = self.generator_ema.mean_latent(1024)
        rows["G_ema(z), truncation 0.7"] = self.generator_ema([z], truncation=0.7, truncation_latent=latent_mean,
                                                               randomize_noise=False)[0]
        return rows

    def evaluation_baselines(self, datamodule, mean_face_samples: int = 512, **_) -> dict[str, Callable]:
        """The untrained generator (this architecture, the run's seed) and the mean training image."""
        train = datamodule.dataset("train")
        n = min(mean_face_samples, len(train))
        mean_image = torch.stack([train[i]["image"] for i in range(n)]).mean(0)
        with torch.random.fork_rng(devices=[]):      # the run's seed, without touching the caller's RNG
            torch.manual_seed(self.seed)
            untrained = Generator(self.hparams.image_size, self.hparams.latent_dim, self.hparams.n_mlp,
                                  channel_multiplier=self.hparams.channel_multiplier, lr_mlp=self.hparams.lr_mlp,
                                  narrow=self.hparams.width).eval().to(self.device)

        @torch.no_grad()
        def untrained_generator(batch):
            return untrained([self.fixed_latents(batch["image"].shape[0])], randomize_noise=False)[0]

        return {"untrained_generator": untrained_generator,
                "mean_image": lambda batch: mean_image.to(batch["image"].device).expand_as(batch["image"])}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.ada is not None:
            checkpoint["ada"] = self.ada.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        if self.ada is not None and "ada" in checkpoint:
            self.ada.load_state_dict(checkpoint["ada"])
