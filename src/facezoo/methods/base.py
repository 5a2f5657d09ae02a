"""The method contract: a GAN declares its training phases, the base runs them.

A facezoo method is a :class:`GANModule` that

* declares its **phases** (:class:`Phase`: name, optimizer, the loss terms it returns, on which batches it
  runs), as stylegan2-ada-pytorch does (``NVlabs/stylegan2-ada-pytorch: training/training_loop.py`` phases
  ``Gmain``, ``Greg``, ``Dmain``, ``Dreg`` with an interval; ``training/loss.py: accumulate_gradients``);
* writes one method per phase, ``<phase>_terms(batch) -> {term: unweighted scalar}``;
* names the parameters of each optimizer (:meth:`GANModule.optimizer_parameters`);
* implements ``predict_batch`` (its output for a batch) and ``sample_images`` (the rows of a sample grid).

The base owns everything else: manual optimization, per-step seeding, running the phases in order under
``toggled_optimizer``, weighting (``model.loss.<phase>.<term>``) and logging (``train/<phase>_<term>``) the
terms, gradient clipping, building the optimizers and schedulers from their config nodes (``_partial_``
factories), frozen networks loaded from files (kept out of checkpoints; a term whose network cannot be had is
recorded as off), and the validation / test steps and evaluation hooks.

See ``docs/architecture.md`` for the contract in one page.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import lightning as L
import torch
from torch import nn

from facezoo.utils import NonFiniteLossError

log = logging.getLogger(__name__)

__all__ = ["GANModule", "Phase"]


@dataclass(frozen=True)
class Phase:
    """One training phase: a loss function whose weighted terms step one optimizer, on some batches.

    Args:
        name: ``"d"``, ``"g"``, ``"d_reg"``…; the method ``<name>_terms(batch)`` computes its terms, their
            weights are ``model.loss.<name>.<term>`` and they are logged as ``train/<name>_<term>``.
        optimizer: the name of the optimizer it steps (a key of ``model.optimizers``).
        terms: the loss terms ``<name>_terms`` may return (each needs a weight in the config).
        every, at: the phase runs on batch ``i`` of an epoch when ``i % every in at`` (stylegan2-ada's interval
            is ``every=16, at=(0,)``; GANnotation's 4 D : 1 G is D ``every=5, at=(0, 1, 2, 3)``, G ``at=(4,)``;
            ``at=()``: never).
        repeat: consecutive runs on each of its batches (the TF TP-GAN's two G steps per batch).
        also: ``((optimizer, terms), ...)``: further optimizers stepped on the weighted sum of some of the same
            forward pass's terms (the TF TP-GAN's ``rot_optim`` on the part loss).

    Example:
        >>> Phase("d_reg", "discriminator", ("r1",), every=16).runs_at(32)
        True
    """

    name: str
    optimizer: str
    terms: tuple[str, ...]
    every: int = 1
    at: tuple[int, ...] = (0,)
    repeat: int = 1
    also: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def __post_init__(self) -> None:
        if self.every < 1 or self.repeat < 1 or any(not 0 <= a < self.every for a in self.at):
            raise ValueError(f"phase {self.name!r}: needs every >= 1, repeat >= 1 and 0 <= at < every, got "
                             f"every={self.every}, at={self.at}, repeat={self.repeat}")
        unknown = {t for _, terms in self.also for t in terms} - set(self.terms)
        if unknown:
            raise ValueError(f"phase {self.name!r}: `also` names terms it does not have: {sorted(unknown)}")

    def runs_at(self, batch_idx: int) -> bool:
        """Whether the phase runs on batch ``batch_idx`` of the epoch."""
        return batch_idx % self.every in self.at


class GANModule(L.LightningModule):
    """Base LightningModule of the methods (see the module docstring for the contract).

    A method calls ``super().__init__(phases=..., **config args)`` first, then
    ``self.save_hyperparameters(ignore=GANModule.CONFIG_ARGS)`` and builds its networks.

    Args:
        phases: the method's phases, in the order they run on a batch.
        loss: ``{phase: {term: weight}}`` (``model.loss``); every term of every phase needs a weight, and an
            unknown phase or term is an error (a typo in a sweep must not do nothing silently). A term with
            weight 0 is neither computed (where the method checks :meth:`wants`) nor logged.
        optimizers: ``{name: factory(params) -> torch.optim.Optimizer}`` (``model.optimizers``: Hydra nodes with
            ``_partial_: true``); exactly the optimizers the phases use.
        schedulers: ``{optimizer name: factory(optimizer) -> LRScheduler}``; stepped at every epoch end
            (``scheduler_interval="epoch"``) or after every batch (``"step"``).
        frozen: ``{attribute: {"build": factory() -> nn.Module, "required": bool} | None}`` (``model.frozen``):
            networks loaded from files (VGG, LightCNN, a decoder…), frozen, kept out of checkpoints and
            rebuilt from their files. When the file is missing and ``required`` is false, the terms that need
            the network are recorded as off (one warning, :attr:`terms_off`, stored in the checkpoint);
            ``null`` switches them off on purpose.
        frozen_terms: ``{attribute: ("phase.term", ...)}``, declared by the method: the frozen parts it
            knows and the loss terms each one serves (none for a part that is not a loss, e.g. a decoder).
            A part whose terms all have weight 0 is not built.
        seed: per-step seeding (:meth:`seed_step`).
        grad_clip: max gradient norm of every optimizer step (0 = off).
    """

    #: constructor arguments the base consumes; methods leave them out of ``hparams`` (factories, not data)
    CONFIG_ARGS = ("optimizers", "schedulers", "frozen")

    def __init__(self, phases: Sequence[Phase], loss: Mapping[str, Mapping[str, float]],
                 optimizers: Mapping[str, Callable], schedulers: Mapping[str, Callable] | None = None,
                 scheduler_interval: str = "epoch", frozen: Mapping[str, Mapping | None] | None = None,
                 frozen_terms: Mapping[str, Sequence[str]] | None = None, seed: int = 0, grad_clip: float = 0.0):
        super().__init__()
        self.automatic_optimization = False
        self.phases = tuple(phases)
        self.seed = int(seed)
        self.grad_clip = float(grad_clip)
        if self.grad_clip < 0:
            raise ValueError(f"grad_clip must be >= 0, got {grad_clip}")
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(f"scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
        self.scheduler_interval = scheduler_interval
        self.loss_weights = self._check_loss(loss)
        self.optimizer_factories = self._check_optimizers(optimizers, schedulers or {})
        self.scheduler_factories = dict(schedulers or {})
        self.terms_off: dict[str, str] = {}     # "phase.term" -> why it is off
        self.frozen_prefixes: tuple[str, ...] = ()
        frozen, frozen_terms = dict(frozen or {}), dict(frozen_terms or {})
        unknown = sorted(set(frozen) - set(frozen_terms))
        if unknown:
            raise ValueError(f"model.frozen: unknown part {unknown[0]!r}; parts: {sorted(frozen_terms)}")
        for name, terms in frozen_terms.items():
            self._build_frozen(name, frozen.get(name), terms)
        self.facezoo_config: dict | None = None
        self.batches_seen = 0  # training batches (global_step counts optimizer steps)

    # ------------------------------------------------------------------------------ construction
    def _check_loss(self, loss: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
        names = {p.name: p for p in self.phases}
        if len(names) != len(self.phases):
            raise ValueError(f"phase names must be unique, got {[p.name for p in self.phases]}")
        loss = {k: dict(v or {}) for k, v in (loss or {}).items()}
        unknown = sorted(set(loss) - set(names))
        if unknown:
            raise ValueError(f"model.loss: unknown phase {unknown[0]!r}; phases: {sorted(names)}")
        for name, phase in names.items():
            given = loss.get(name, {})
            extra = sorted(set(given) - set(phase.terms))
            if extra:
                raise ValueError(f"model.loss.{name}: unknown term {extra[0]!r}; terms: {list(phase.terms)}")
            missing = [t for t in phase.terms if t not in given]
            if missing:
                raise ValueError(f"model.loss.{name}: no weight for {missing}; every term needs one")
            for term, w in given.items():
                if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 or w != w:
                    raise ValueError(f"model.loss.{name}.{term} must be a number >= 0, got {w!r}")
        return {name: {t: float(loss.get(name, {})[t]) for t in names[name].terms} for name in names}

    def _check_optimizers(self, optimizers: Mapping[str, Callable], schedulers: Mapping) -> dict[str, Callable]:
        used = {p.optimizer for p in self.phases} | {o for p in self.phases for o, _ in p.also}
        given = dict(optimizers or {})
        if set(given) != used:
            raise ValueError(f"model.optimizers must name exactly the optimizers of the phases {sorted(used)}, "
                             f"got {sorted(given)}")
        for name, factory in given.items():
            if not callable(factory):
                raise ValueError(f"model.optimizers.{name} must be an optimizer node with _partial_: true")
            self._check_optimizer_values(name, getattr(factory, "keywords", None) or {})
        unknown = sorted(set(schedulers) - used)
        if unknown:
            raise ValueError(f"model.schedulers: no optimizer named {unknown[0]!r}; optimizers: {sorted(used)}")
        return given

    #: optimizer keywords that must be finite numbers >= 0 (torch raises only when the optimizer is built, in fit)
    NON_NEGATIVE_OPTIMIZER_VALUES = ("lr", "weight_decay", "eps", "momentum")

    @classmethod
    def _check_optimizer_values(cls, name: str, keywords: Mapping) -> None:
        """Refuse, at construction, the optimizer values torch would refuse deep inside ``fit``: a negative or
        non-finite ``lr`` / ``weight_decay`` / ``eps`` / ``momentum``, ``betas`` outside [0, 1)."""
        for key in cls.NON_NEGATIVE_OPTIMIZER_VALUES:
            value = keywords.get(key)
            if value is None:
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"model.optimizers.{name}.{key} must be a finite number >= 0, got {value!r}")
        betas = keywords.get("betas")
        if betas is not None:
            if not all(isinstance(b, (int, float)) and not isinstance(b, bool) and 0 <= b < 1 for b in betas):
                raise ValueError(f"model.optimizers.{name}.betas must be numbers in [0, 1), got {list(betas)}")

    def _build_frozen(self, name: str, spec: Mapping | None, terms: Sequence[str]) -> None:
        """Build one frozen part as attribute ``name`` (``None`` when it is off; see ``frozen``)."""
        from facezoo.nets.weights import WeightsNotFoundError

        for key in terms:
            phase, _, term = key.partition(".")
            if term not in self.loss_weights.get(phase, {}):
                raise ValueError(f"frozen part {name!r} serves an unknown term {key!r} (phase.term)")
        setattr(self, name, None)
        if terms and not any(self.loss_weights[k.split(".")[0]][k.split(".")[1]] for k in terms):
            return  # every term that needs it has weight 0: not built
        spec = dict(spec or {})
        if spec.get("build") is None:
            if spec.get("required", False):
                raise ValueError(f"model.frozen.{name} is required but has no `build` node")
            self._switch_off(terms, f"model.frozen.{name} is null")
            return
        try:
            with torch.random.fork_rng(devices=[]):   # a loaded network must not shift the methods' random init
                net = spec["build"]()
        except WeightsNotFoundError as err:
            if spec.get("required", False):
                raise
            self._switch_off(terms, str(err))
            return
        net.requires_grad_(False).eval()
        setattr(self, name, net)
        self.frozen_prefixes += (f"{name}.",)

    def _switch_off(self, terms: Iterable[str], why: str) -> None:
        for key in terms:
            if key not in self.terms_off:
                log.warning("loss term %s off: %s", key, why)
                self.terms_off[key] = why

    def wants(self, phase: str, term: str) -> bool:
        """Whether ``phase``'s ``term`` counts: a non-zero weight and not switched off."""
        return bool(self.loss_weights[phase][term]) and f"{phase}.{term}" not in self.terms_off

    def train(self, mode: bool = True):
        """Frozen parts stay in eval mode (their BatchNorm / dropout never train)."""
        super().train(mode)
        for prefix in self.frozen_prefixes:
            getattr(self, prefix[:-1]).eval()
        return self

    # ------------------------------------------------------------------------------- optimizers
    def optimizer_parameters(self) -> Mapping[str, Iterable[nn.Parameter]]:
        """``{optimizer name: parameters}`` for every name a phase uses. Methods implement it."""
        raise NotImplementedError

    def build_optimizer(self, name: str, factory: Callable, params: Iterable[nn.Parameter]):
        """``factory(params)``; a method may adjust a config (e.g. StyleGAN2's lazy-regularisation correction)."""
        return factory(params)

    def configure_optimizers(self):
        params = self.optimizer_parameters()
        names = list(self.optimizer_factories)
        missing = [n for n in names if n not in params]
        if missing:
            raise ValueError(f"{type(self).__name__}.optimizer_parameters() lacks {missing}")
        optimizers = [self.build_optimizer(n, self.optimizer_factories[n], params[n]) for n in names]
        self._optimizer_names = names
        schedulers = [self.scheduler_factories[n](opt) for n, opt in zip(names, optimizers)
                      if n in self.scheduler_factories]
        return (optimizers, schedulers) if schedulers else optimizers

    def named_optimizers(self) -> dict:
        """``{name: LightningOptimizer}`` in the order of ``model.optimizers``."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        return dict(zip(self._optimizer_names, optimizers))

    def step_schedulers(self) -> None:
        """Step the LR schedulers by hand (manual optimization ignores their interval)."""
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()

    def on_train_epoch_end(self) -> None:
        if self.scheduler_interval == "epoch":
            self.step_schedulers()

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.grad_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")

    # ------------------------------------------------------------------------------------ steps
    def seed_step(self) -> None:
        """Seed torch's global RNG from (seed, global_step, global_rank) at the start of a step, so all
        randomness of a training step (noise, dropout) is a function of them and a resumed run ends with the
        same weights as an uninterrupted one."""
        torch.manual_seed((self.seed * 1_000_003 + self.global_step * 7_919 + self.global_rank) % 2**63)

    def prepare_batch(self, batch: Mapping) -> Mapping:
        """What every phase of a training step receives (default: the batch). Runs once per step."""
        return batch

    def weighted_sum(self, phase: str, terms: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``Σ weight · term`` over the terms of ``phase`` that count (:meth:`wants`)."""
        return sum(self.loss_weights[phase][k] * v for k, v in terms.items() if self.wants(phase, k))

    def training_step(self, batch: Mapping, batch_idx: int) -> None:
        self.seed_step()
        batch = self.prepare_batch(batch)
        optimizers = self.named_optimizers()
        for phase in self.phases:
            if phase.runs_at(batch_idx):
                for _ in range(phase.repeat):
                    self.run_phase(phase, batch, optimizers)
        self.batches_seen += 1
        if self.scheduler_interval == "step":
            self.step_schedulers()

    def run_phase(self, phase: Phase, batch: Mapping, optimizers: Mapping) -> None:
        """``<phase>_terms`` → weighted sum → finiteness check (:meth:`check_finite`) → backward → step, under
        ``toggled_optimizer``; logs the terms."""
        optimizer = optimizers[phase.optimizer]
        with self.toggled_optimizer(optimizer):
            terms = getattr(self, f"{phase.name}_terms")(batch)
            unknown = set(terms) - set(phase.terms)
            if unknown:
                raise RuntimeError(f"{type(self).__name__}.{phase.name}_terms returned undeclared terms "
                                   f"{sorted(unknown)}")
            loss = self.weighted_sum(phase.name, terms)
            self.check_finite(phase.name, terms, loss)
            extra = []
            for name, subset in phase.also:      # gradients of a subset of terms for another optimizer
                params = [p for group in optimizers[name].param_groups for p in group["params"]]
                part = sum(self.loss_weights[phase.name][t] * terms[t] for t in subset if self.wants(phase.name, t))
                extra.append((optimizers[name], params, torch.autograd.grad(part, params, retain_graph=True)))
            self.optimize(optimizer, loss)
            for opt, params, grads in extra:
                opt.zero_grad(set_to_none=True)
                for p, grad in zip(params, grads):
                    p.grad = self.trainer.strategy.reduce(grad, reduce_op="mean")
                opt.step()
        counted = {k: v for k, v in terms.items() if self.wants(phase.name, k)}
        self.log_terms(phase.name, {**counted, "total": loss})

    def check_finite(self, phase: str, terms: Mapping[str, torch.Tensor], total: torch.Tensor) -> None:
        """Stop the run, before any backward pass or optimizer step, when a counted term of ``phase`` (or their
        weighted sum) is NaN or inf: one host sync per phase.

        Raises:
            NonFiniteLossError: one line naming the phase, the term and the step (``trainer.global_step``); Lightning
                then stops without saving (``ModelCheckpoint`` saves on an exception only with
                ``save_on_exception=True``), so the last checkpoint on disk is the last good one.
        """
        counted = {k: v for k, v in terms.items() if self.wants(phase, k)}
        counted["total"] = total
        values = {k: torch.as_tensor(v).detach().reshape(-1).float().to(self.device) for k, v in counted.items()}
        if not values or bool(torch.isfinite(torch.cat(list(values.values()))).all()):
            return
        name, bad = next((k, v) for k, v in values.items() if not bool(torch.isfinite(v).all()))
        kind = "nan" if bool(bad.isnan().any()) else "inf"
        raise NonFiniteLossError(
            f"loss term {phase}.{name} is {kind} at step {self.global_step} (phase {phase}, "
            f"epoch {self.current_epoch}, batch {self.batches_seen}); nothing was saved after it: lower the learning "
            f"rate (model.optimizers.*.lr) or the term's weight (model.loss.{phase}.{name}), or resume from the last "
            f"checkpoint")

    def optimize(self, optimizer, loss: torch.Tensor) -> None:
        """zero_grad → manual_backward → step for one (Lightning) optimizer."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def log_terms(self, prefix: str, terms: Mapping[str, torch.Tensor], **kwargs) -> None:
        """Log ``{term: value}`` as ``train/<prefix>_<term>`` (e.g. ``train/g_symmetry``)."""
        kwargs.setdefault("on_step", True)
        kwargs.setdefault("on_epoch", True)
        kwargs.setdefault("batch_size", None)
        self.log_dict({f"train/{prefix}_{k}": v.detach() if torch.is_tensor(v) else v for k, v in terms.items()},
                      **kwargs)

    # ------------------------------------------------------------------------- validation / test
    def validation_step(self, batch: Mapping, batch_idx: int) -> None:
        self.evaluation_step(batch, "val")

    def test_step(self, batch: Mapping, batch_idx: int) -> None:
        self.evaluation_step(batch, "test")

    def evaluation_step(self, batch: Mapping, stage: str) -> None:
        """Log ``<stage>/<metric>`` of :meth:`predict_batch` (and ``l1_input``, the "do nothing" reference);
        feed the split's distribution metrics (:attr:`validation_distributions`)."""
        from facezoo import metrics

        output = self.predict_batch(batch)
        values = self.evaluation_metrics(output, batch)
        if "target" in batch and batch["image"].shape == batch["target"].shape:   # not for sketches, label maps
            values["l1_input"] = metrics.l1(batch["image"], batch["target"])
        values.update(self.evaluation_model_metrics(batch))
        for fid in self._distributions().values():
            fid.update(batch.get("target", batch["image"]), real=True)
            fid.update(output.clamp(-1, 1), real=False)
        if values:
            self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, batch_size=batch["image"].shape[0],
                          sync_dist=True, prog_bar=stage == "val")

    #: distribution metrics (:data:`facezoo.metrics.DISTRIBUTION_METRICS`) computed over the validation and test
    #: splits and logged as ``<stage>/<name>`` (StyleGAN2: ``fld``, its model-selection metric)
    validation_distributions: tuple[str, ...] = ()

    def _distributions(self) -> dict:
        """``{name: FID accumulator}`` of :attr:`validation_distributions`, built once (outside the state dict)."""
        cache = self.__dict__.setdefault("_distribution_metrics", None)
        if cache is None:
            from facezoo.metrics import FID, distribution_extractor

            cache = {name: FID(extractor=distribution_extractor(name), reset_real_features=True).to(self.device)
                     for name in self.validation_distributions}
            self.__dict__["_distribution_metrics"] = cache
        return cache

    def _log_distributions(self, stage: str) -> None:
        for name, fid in self._distributions().items():
            if fid.real_features_num_samples > 1 and fid.fake_features_num_samples > 1:
                self.log(f"{stage}/{name}", fid.compute(), prog_bar=stage == "val")
            fid.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_distributions("val")

    def on_test_epoch_end(self) -> None:
        self._log_distributions("test")

    def sample_rows(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Rows of a sample grid (``facezoo.callbacks.SampleGrid``): :meth:`sample_images` in eval mode, no grad,
        on the module's device."""
        batch = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in batch.items()}
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return self.sample_images(batch)
        finally:
            self.train(was_training)

    def sample_images(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Rows of a sample grid for a batch: name → (B, 3, H, W) in [-1, 1]. Methods implement it."""
        raise NotImplementedError

    def predict_batch(self, batch: Mapping) -> torch.Tensor:
        """The method's output image for a batch (deterministic): (B, 3, H, W) in [-1, 1]."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------- evaluation
    #: metrics of :data:`facezoo.metrics.METRICS` that evaluation computes on each output (model and baselines)
    metrics: tuple[str, ...] = ("l1", "mse", "psnr", "ssim")

    def evaluation_baselines(self, datamodule, **options) -> dict[str, Callable[[Mapping], torch.Tensor]]:
        """The task's trivial baselines: name → function(batch) → output image, evaluated like the model."""
        return {}

    def evaluation_model_metrics(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Metrics only the model has (e.g. GANnotation's triple consistency); none by default."""
        return {}

    def evaluation_nets(self) -> dict[str, nn.Module]:
        """Networks the metrics need (``landmark_net``…), from :mod:`facezoo.metrics`' keywords; none by default."""
        return {}

    def packaged_evaluation_net(self, key: str, cls, measures: str) -> nn.Module | None:
        """One of facezoo's synthetic-face evaluation networks (a :class:`facezoo.nets.weights.PackagedNet` class),
        loaded once from its default weights and kept outside the module's state (not in checkpoints), on the
        module's device; ``None`` with one warning ("<measures> skipped: <why>") when its weights are absent."""
        from facezoo.nets.weights import WeightsNotFoundError

        cache = self.__dict__.setdefault("_evaluation_nets", {})
        if key not in cache:
            try:
                cache[key] = cls.from_pretrained()
            except WeightsNotFoundError as err:
                log.warning("%s skipped: %s", measures, err)
                cache[key] = None
        return None if cache[key] is None else cache[key].to(self.device)

    def evaluation_inputs(self, batch: Mapping) -> dict[str, torch.Tensor]:
        """Per-batch inputs the metrics need besides the images (e.g. ``target_landmarks``, ``regions``)."""
        return {}

    def evaluation_metrics(self, output: torch.Tensor, batch: Mapping, nets: Mapping | None = None,
                           names: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """The registered metrics (:attr:`metrics`, or ``names``) of one output batch against ``batch["target"]``.

        Metrics whose networks are absent are skipped (:func:`facezoo.metrics.compute_metrics` with
        ``skip_missing``); without a ``target`` only the metrics that need none are computed.
        """
        from facezoo.metrics import compute_metrics

        nets = {**self.evaluation_nets(), **(nets or {})}
        return compute_metrics(names or self.metrics, output, batch.get("target"), skip_missing=True,
                               **self.evaluation_inputs(batch), **nets)

    # ------------------------------------------------------------------------------ checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["batches_seen"] = self.batches_seen
        checkpoint["terms_off"] = dict(self.terms_off)
        if self.facezoo_config is not None:
            checkpoint["facezoo_config"] = self.facezoo_config

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.batches_seen = int(checkpoint.get("batches_seen", 0))
        self.facezoo_config = checkpoint.get("facezoo_config", self.facezoo_config)
        for key, why in checkpoint.get("terms_off", {}).items():   # a resumed run keeps its terms off
            self.terms_off.setdefault(key, f"off in the checkpoint ({why})")

    def state_dict(self, *args, **kwargs):
        """The module's state without the frozen parts (they are rebuilt from their own files)."""
        state = super().state_dict(*args, **kwargs)
        frozen = tuple(kwargs.get("prefix", "") + p for p in self.frozen_prefixes)
        return state if not frozen else type(state)((k, v) for k, v in state.items() if not k.startswith(frozen))

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        """Strict loading of checkpoints that, by design, lack the frozen parts."""
        if strict and self.frozen_prefixes:
            own = super().state_dict()
            state_dict = {**{k: v for k, v in own.items() if k.startswith(self.frozen_prefixes)}, **state_dict}
        return super().load_state_dict(state_dict, strict=strict, **kwargs)
