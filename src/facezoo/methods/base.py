"""The skeleton every facezoo GAN shares: manual optimization, per-step seeding, clipping, logging."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import lightning as L
import torch

log = logging.getLogger(__name__)

__all__ = ["GANModule"]


class GANModule(L.LightningModule):
    """Base LightningModule of the methods (manual optimization; a method writes its own GAN step).

    It owns what is the same everywhere:

    * ``automatic_optimization = False``; a method's ``training_step`` runs its named phases
      (D main, G main, …) with :meth:`optimize` under ``toggled_optimizer``.
    * per-step seeding (:meth:`seed_step`): all randomness of a training step (noise, dropout) is a
      function of ``(seed, global_step, rank)``, so a run resumed from a checkpoint ends with the same
      weights as an uninterrupted one.
    * gradient clipping by norm in ``on_before_optimizer_step`` (where AMP gradients are unscaled).
    * the composed Hydra config is stored in every checkpoint (``facezoo_config``) so that
      ``facezoo.evaluate`` and :func:`facezoo.load` can rebuild the model and its data.
    * loss terms logged as ``train/g_<term>`` and ``train/d_<term>``.
    """

    #: submodules that hold frozen, separately loaded loss networks (VGG, LightCNN…): kept out of checkpoints
    frozen_prefixes: tuple[str, ...] = ()

    def __init__(self, seed: int = 0, grad_clip: float = 0.0):
        super().__init__()
        self.automatic_optimization = False
        self.seed = int(seed)
        self.grad_clip = float(grad_clip)
        self.facezoo_config: dict | None = None
        self.batches_seen = 0  # training batches (global_step counts optimizer steps)

    # ----------------------------------------------------------------------------------- stepping
    def seed_step(self) -> None:
        """Seed torch's global RNG from (seed, global_step, global_rank) at the start of a step."""
        torch.manual_seed((self.seed * 1_000_003 + self.global_step * 7_919 + self.global_rank) % 2**63)

    def optimize(self, optimizer, loss: torch.Tensor) -> None:
        """zero_grad → manual_backward → step for one (LightningOptimizer) optimizer."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.grad_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")

    def step_schedulers(self) -> None:
        """Step the LR schedulers by hand (manual optimization ignores their interval)."""
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()

    # --------------------------------------------------------------------------- loss networks
    def pretrained_loss_or_off(self, term: str, cfg: Mapping, build: Callable[[], torch.nn.Module]):
        """A loss that needs pretrained weights (VGG, LightCNN…): ``build()``, or None when it cannot be had.

        With ``self.loss_weights[term] == 0`` or ``cfg["weights"] is None`` the term is off. When the weight
        file is missing, the term is switched off with ONE warning naming the file, unless
        ``cfg["required"]`` is true, in which case the one-line ``WeightsNotFoundError`` propagates.
        """
        from facezoo.nets.weights import WeightsNotFoundError

        if not self.loss_weights.get(term):
            return None
        if "weights" in cfg and cfg["weights"] is None:
            self.loss_weights[term] = 0.0
            return None
        try:
            return build()
        except WeightsNotFoundError as err:
            if cfg.get("required", False):
                raise
            log.warning("%s loss off: %s", term, err)
            self.loss_weights[term] = 0.0
            return None

    # ------------------------------------------------------------------------------------ logging
    def log_terms(self, prefix: str, terms: Mapping[str, torch.Tensor], **kwargs) -> None:
        """Log ``{term: value}`` as ``train/<prefix>_<term>`` (e.g. ``train/g_symmetry``)."""
        kwargs.setdefault("on_step", True)
        kwargs.setdefault("on_epoch", True)
        kwargs.setdefault("batch_size", None)
        self.log_dict({f"train/{prefix}_{k}": v.detach() if torch.is_tensor(v) else v for k, v in terms.items()},
                      **kwargs)

    # -------------------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["batches_seen"] = self.batches_seen
        if self.facezoo_config is not None:
            checkpoint["facezoo_config"] = self.facezoo_config

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.batches_seen = int(checkpoint.get("batches_seen", 0))
        self.facezoo_config = checkpoint.get("facezoo_config", self.facezoo_config)

    def state_dict(self, *args, **kwargs):
        """The module's state without the frozen loss networks (they are rebuilt from their own files)."""
        state = super().state_dict(*args, **kwargs)
        frozen = tuple(kwargs.get("prefix", "") + p for p in self.frozen_prefixes)
        return state if not frozen else type(state)((k, v) for k, v in state.items() if not k.startswith(frozen))

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        """Strict loading of checkpoints that, by design, lack the frozen loss networks."""
        if strict and self.frozen_prefixes:
            own = super().state_dict()
            state_dict = {**{k: v for k, v in own.items() if k.startswith(self.frozen_prefixes)}, **state_dict}
        return super().load_state_dict(state_dict, strict=strict, **kwargs)

    # ------------------------------------------------------------------- what evaluation needs
    def sample_rows(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Rows of a sample grid for a batch: name → (B, 3, H, W) in [-1, 1]."""
        raise NotImplementedError

    def predict_batch(self, batch: Mapping) -> torch.Tensor:
        """The method's output image for a batch (deterministic): (B, 3, H, W) in [-1, 1]."""
        raise NotImplementedError

    def evaluation_baselines(self, datamodule, **options) -> dict[str, Callable[[Mapping], torch.Tensor]]:
        """The task's trivial baselines: name → function(batch) → output image, evaluated like the model."""
        return {}

    def evaluation_model_metrics(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Metrics only the model has (e.g. GANnotation's triple consistency); none by default."""
        return {}

    def evaluation_metrics(self, output: torch.Tensor, batch: Mapping) -> dict[str, torch.Tensor]:
        """Metrics of one output batch (the model's or a baseline's) against the batch's ground truth.

        The default compares with ``batch["target"]``: l1, mse, psnr, ssim (:mod:`facezoo.metrics`).
        Methods add their task's metrics (e.g. landmark NME for re-posing).
        """
        from facezoo import metrics

        target = batch["target"]
        return {name: getattr(metrics, name)(output, target) for name in ("l1", "mse", "psnr", "ssim")}
