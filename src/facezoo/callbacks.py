"""Training callbacks: the sample-grid image logger, and for checking DDP a parameter checksum and a fault injector."""

from __future__ import annotations

import hashlib
import io
import os
import signal
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_only
from PIL import Image

from facezoo.utils import FacezooError, atomic_write, atomic_write_json

__all__ = ["make_grid", "save_image_grid", "SampleGrid", "ParamChecksum", "FailAt", "param_checksum"]


def make_grid(rows: dict[str, torch.Tensor], num_samples: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile image rows into one uint8 picture: one row per entry, one column per sample.

    Args:
        rows: name → ``(B, 3, H, W)`` images in [-1, 1]; rows of another size are resized to the first's.
        num_samples: columns (default: all of B).
        pad: white pixels between tiles.

    Returns:
        ``(rows·(H+pad)+pad, cols·(W+pad)+pad, 3)`` uint8 array.
    """
    tensors = list(rows.values())
    if not tensors:
        raise ValueError("make_grid needs at least one row")
    h, w = tensors[0].shape[-2:]
    n = min(t.shape[0] for t in tensors) if num_samples is None else min(num_samples, *(t.shape[0] for t in tensors))
    grid = np.full((len(tensors) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8)
    for r, t in enumerate(tensors):
        t = t[:n].detach().float().cpu()
        if t.shape[-2:] != (h, w):
            t = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False)
        if t.shape[1] == 1:
            t = t.expand(-1, 3, -1, -1)
        tiles = ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        for c in range(n):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            grid[y:y + h, x:x + w] = tiles[c]
    return grid


def save_image_grid(path: str | Path, rows: dict[str, torch.Tensor], num_samples: int | None = None) -> Path:
    """Write :func:`make_grid` as a PNG, atomically (temporary file, then rename)."""
    grid = Image.fromarray(make_grid(rows, num_samples))
    return atomic_write(path, lambda f: grid.save(f, format="PNG"))


class SampleGrid(L.Callback):
    """After each validation epoch, save a grid of the first validation batch at ``dirpath/epoch_NNN.png``.

    The rows come from the module's ``sample_rows(batch) -> dict[name, (B, 3, H, W)]`` (e.g. input,
    output, target). The grid is also sent to TensorBoard (``add_image``) and W&B (``log_image``) when
    those loggers are attached.
    """

    def __init__(self, dirpath: str, num_samples: int = 8, every_n_epochs: int = 1):
        self.dirpath = Path(dirpath)
        self.num_samples = num_samples
        self.every_n_epochs = max(1, every_n_epochs)
        self._batch = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0 and dataloader_idx == 0 and not trainer.sanity_checking:
            self._batch = batch

    @rank_zero_only
    def on_validation_epoch_end(self, trainer, pl_module):
        if self._batch is None or trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs:
            return
        with torch.no_grad():
            rows = pl_module.sample_rows(self._batch)
        self._batch = None
        path = save_image_grid(self.dirpath / f"epoch_{trainer.current_epoch:03d}.png", rows, self.num_samples)
        image = np.asarray(Image.open(path).convert("RGB"))
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(logger, "log_image"):
                logger.log_image(key="samples", images=[image], caption=[" / ".join(rows)], step=trainer.global_step)
            elif hasattr(experiment, "add_image"):
                experiment.add_image("samples", image, trainer.global_step, dataformats="HWC")


def param_checksum(module: torch.nn.Module) -> dict[str, object]:
    """A SHA-256 digest and a float64 sum over all parameters (names in order): equal iff weights equal."""
    digest = hashlib.sha256()
    total = 0.0
    for name, p in module.named_parameters():
        data = p.detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(data.numpy().tobytes())
        total += float(data.double().sum())
    return {"sha256": digest.hexdigest(), "sum": total}


class FailAt(L.Callback):
    """Fault injection at the start of one training batch on one rank (``+callbacks.fail._target_=
    facezoo.callbacks.FailAt +callbacks.fail.batch=2``), to check what a failure leaves behind.

    Args:
        rank, epoch, batch: where (``epoch=None``: the first epoch that reaches ``batch``).
        how: ``raise`` a :class:`~facezoo.utils.FacezooError` (a failing DDP rank must take the job down instead of
            leaving the others waiting in a collective); ``kill``: SIGKILL, no cleanup at all (a crash, the OOM
            killer, a pre-empted node); ``kill_while_saving``: SIGKILL halfway through the bytes of the next
            checkpoint write, into the temporary file of :func:`atomic_write` (as
            :class:`~facezoo.checkpoints.AtomicCheckpointIO` writes).
    """

    HOW = ("raise", "kill", "kill_while_saving")

    def __init__(self, rank: int = 0, batch: int = 0, epoch: int | None = None, how: str = "raise"):
        if how not in self.HOW:
            raise FacezooError(f"FailAt: how={how!r}; choose one of {', '.join(self.HOW)}")
        self.rank, self.batch, self.epoch, self.how = int(rank), int(batch), epoch, how

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        at = (trainer.global_rank, batch_idx) == (self.rank, self.batch)
        if not at or self.epoch not in (None, trainer.current_epoch):
            return
        if self.how == "raise":
            raise FacezooError(f"FailAt: the injected failure at batch {batch_idx}")
        if self.how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)

        def write_half_then_die(checkpoint, path, storage_options=None):
            def write(f):
                buffer = io.BytesIO()
                torch.save(checkpoint, buffer)
                f.write(buffer.getvalue()[: buffer.tell() // 2])
                f.flush()
                os.kill(os.getpid(), signal.SIGKILL)

            atomic_write(path, write)

        trainer.strategy.checkpoint_io.save_checkpoint = write_half_then_die


class ParamChecksum(L.Callback):
    """At the end of fit, every rank writes ``dirpath/param_checksum_rank<R>.json`` (DDP consistency)."""

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_fit_end(self, trainer, pl_module):
        info = param_checksum(pl_module)
        info.update(global_rank=trainer.global_rank, world_size=trainer.world_size,
                    global_step=trainer.global_step)
        atomic_write_json(self.dirpath / f"param_checksum_rank{trainer.global_rank}.json", info)
