"""Training entry point: compose the config → instantiate data, model, callbacks, loggers, trainer → fit.

    python -m facezoo.train                                   # TP-GAN on synthetic faces
    python -m facezoo.train model=tpgan trainer.gpus=4        # 4 GPUs, DDP
    python -m facezoo.train -m model.loss.symmetry=0.1,0.3 trainer=debug
    python -m facezoo.train ckpt_path=DIR/checkpoints/last.ckpt hydra.run.dir=DIR   # resume

Outputs (``hydra.run.dir=DIR``): ``DIR/checkpoints/{last,best}.ckpt``, ``DIR/samples/epoch_NNN.png``,
``DIR/metrics.json`` (final validation metrics) and, in a sweep, one row per job in
``<sweep dir>/multirun_summary.csv``.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from facezoo.checkpoints import AtomicCheckpointIO, read_checkpoint
from facezoo.config import check_command_line, instantiate_data, instantiate_model
from facezoo.nets.weights import state_dict_mismatch
from facezoo.utils import FacezooError, append_csv_row, apply_gpus_alias, atomic_write_json, check_devices, user_errors

log = logging.getLogger("facezoo.train")


def instantiate_group(cfg: DictConfig | None) -> list:
    """Instantiate every node with a ``_target_`` in a callbacks/logger group (a dict of named nodes)."""
    if not cfg:
        return []
    return [instantiate(node) for node in cfg.values() if isinstance(node, DictConfig) and "_target_" in node]


def compile_networks(model: L.LightningModule) -> list[str]:
    """``compile=true``: ``torch.compile`` every network the model trains (its children with trainable parameters),
    in place (``nn.Module.compile``: checkpoints keep their keys). A part dynamo cannot compile (a graph break, such
    as PSGAN's AMM with its data-dependent region sizes) runs eagerly, and an error while compiling falls back to
    eager execution with torch's warning instead of ending the run (``torch._dynamo.config.suppress_errors``).
    Compilation happens at the first call of each network, so the first steps are slow. Experimental: measured at
    1.04-1.28x on the CPU presets' training steps, and it once failed in TP-GAN's backward with aot_autograd's
    "does not currently support double backward", which two reruns did not reproduce (docs/benchmarks.md); a
    failure at run time, unlike one while compiling, ends the run.

    Returns:
        the names of the compiled networks (also logged, on one line).
    """
    import torch._dynamo

    torch._dynamo.config.suppress_errors = True
    names = [name for name, child in model.named_children() if any(p.requires_grad for p in child.parameters())]
    for name in names:
        getattr(model, name).compile()
    log.info("compile=true: torch.compile of %s (parts that fail to compile run eagerly)", ", ".join(names))
    return names


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit the configured model; returns the final validation metrics (also written to metrics.json)."""
    apply_gpus_alias(cfg.trainer)
    check_devices(cfg.trainer)
    resumed = None
    if cfg.get("ckpt_path"):  # a missing, truncated or foreign file: one line before any work
        try:
            resumed = read_checkpoint(cfg.ckpt_path, trust=bool(cfg.get("trust_checkpoint")))
            if resumed.get("weights_only_file"):
                raise FacezooError(f"{cfg.ckpt_path}: a weights file has no optimizer or loop state to resume "
                                   "from; resume from the run's .ckpt (to start from these weights, load them "
                                   "with facezoo.load in your own script)")
        except FacezooError as err:
            raise FacezooError(f"ckpt_path={err}") from None
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate_data(cfg.data)
    model = instantiate_model(cfg.model)
    model.facezoo_config = OmegaConf.to_container(cfg, resolve=True)
    if resumed is not None:   # another model config than the run's: one line, not Lightning's list of keys
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        mismatch = state_dict_mismatch(resumed["state_dict"], expected)
        del resumed
        if mismatch:
            raise FacezooError(f"ckpt_path={cfg.ckpt_path}: its weights do not fit the configured model ({mismatch}); "
                               "resume with the run's own model options")
    if cfg.get("compile"):
        compile_networks(model)

    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if type(c).__name__ != "LearningRateMonitor"]
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False,
                                     plugins=[AtomicCheckpointIO()])

    start = time.time()
    try:
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"),
                    weights_only=not cfg.get("trust_checkpoint"))
    except BaseException as err:
        raise _stop_every_rank(trainer, err) from None
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    if cfg.get("test"):
        trainer.test(model=model, datamodule=datamodule, verbose=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")})

    if trainer.is_global_zero:
        output_dir = Path(cfg.paths.output_dir)
        summary = {"metrics": metrics, "epochs": trainer.current_epoch, "global_step": trainer.global_step,
                   "batches": int(getattr(model, "batches_seen", 0)), "seconds": round(time.time() - start, 1),
                   "checkpoint": str(output_dir / "checkpoints" / "last.ckpt")}
        atomic_write_json(output_dir / "metrics.json", summary)
        _add_multirun_row(cfg, metrics)
        log.info("final validation metrics: %s", {k: round(v, 5) for k, v in sorted(metrics.items())})
    return metrics


def _stop_every_rank(trainer: L.Trainer, err: BaseException) -> BaseException:
    """What a rank raises when training fails: in a job of several processes, the error names the rank, and rank 0
    first kills the ranks it launched (they would otherwise wait in their next collective until the process group's
    timeout; Lightning's own observer already ends rank 0 when one of them fails)."""
    if trainer.world_size <= 1:
        return err
    from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

    launcher = getattr(trainer.strategy, "launcher", None)
    if trainer.global_rank == 0 and isinstance(launcher, _SubprocessScriptLauncher) and launcher.procs:
        log.error("rank 0 failed: stopping the %d other process(es) of this node", len(launcher.procs))
        launcher.kill(signal.SIGKILL)
    return FacezooError(f"rank {trainer.global_rank}: {err}") if isinstance(err, FacezooError) else err


def _add_multirun_row(cfg: DictConfig, metrics: dict[str, float]) -> None:
    """In a sweep, append this job's overrides and metrics to ``<sweep dir>/multirun_summary.csv``."""
    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return
    row = {"job": hc.job.num, "output_dir": cfg.paths.output_dir, "overrides": " ".join(hc.overrides.task)}
    for override in hc.overrides.task:
        key, _, value = override.lstrip("+~").partition("=")
        row[key] = value
    row.update(metrics)
    append_csv_row(Path(hc.sweep.dir) / "multirun_summary.csv", row)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@user_errors("facezoo.train")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    with open_dict(cfg):
        name = cfg.get("optimized_metric")
    return metrics.get(name) if name else None


if __name__ == "__main__":
    with user_errors("facezoo.train"):          # unknown options and keys: one line, before Hydra's report
        check_command_line("train", sys.argv[1:])
    main()
