"""Loading facezoo checkpoints: one place for the entry points, the inference pipelines and notebooks.

    model, datamodule, cfg = facezoo.load("runs/x/checkpoints/last.ckpt")

A facezoo checkpoint is a Lightning checkpoint that also holds the composed config it was trained with
(``facezoo_config``), so the model and its data are rebuilt from it alone. It holds tensors and plain containers
only, so it is read with ``torch.load(weights_only=True)``: a file that needs to unpickle anything else (a pickle
can run code) is refused with one line unless the caller trusts it (``trust_checkpoint=true`` on the
command lines).

A ``.safetensors`` file written by :func:`export_weights` (``scripts/export_weights.py``) loads everywhere a
checkpoint does for inference and evaluation: the model's weights as tensors, its config and the method's plain
extras as JSON metadata. It holds no training state (optimizers, loops), so training does not resume from it.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from facezoo.utils import FacezooError, atomic_write

__all__ = ["read_checkpoint", "load", "method_of", "load_method", "export_weights", "UntrustedCheckpointError",
           "AtomicCheckpointIO", "SAFETENSORS_FORMAT"]

#: The ``format`` entry of the metadata of a facezoo ``.safetensors`` file.
SAFETENSORS_FORMAT = "facezoo-weights-1"

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer for facezoo runs: every checkpoint goes through :func:`facezoo.utils.atomic_write`
    (a temporary file in the same folder, fsync, rename).

    Lightning's own writer renames without fsync, so a machine that loses power (or a kill -9 between the rename and
    the page cache reaching the disk) can leave an empty or partial ``last.ckpt``; here a crash at any moment leaves
    the previous checkpoint or the whole new one, and a full disk ends the run with one line
    (:class:`~facezoo.utils.FacezooError`), the previous checkpoint intact. ``facezoo.train`` passes it to the
    Trainer as a plugin. The temporary files a killed write leaves behind (``.last.ckpt.*.tmp``) are removed at the
    next checkpoint written in the same folder (a run's writes are sequential, on rank 0).
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options")
        path = Path(path)
        atomic_write(path, lambda f: torch.save(checkpoint, f))
        for leftover in path.parent.glob(f".*{path.suffix}.*.tmp"):
            leftover.unlink(missing_ok=True)


class UntrustedCheckpointError(FacezooError):
    """A checkpoint that needs to unpickle Python objects, read without ``trust``."""


def read_checkpoint(path: str | Path, map_location="cpu", trust: bool = False) -> dict:
    """The checkpoint's dict, or a one-line :class:`FacezooError` naming the file and what is wrong with it.

    Args:
        path: a facezoo checkpoint.
        trust: read a file that needs more than tensors and plain containers (``torch.load(weights_only=False)``,
            which can run code stored in the file). Only for files you made or trust.

    Raises:
        UntrustedCheckpointError: the file holds Python objects and ``trust`` is off (the line names the object).
        FacezooError: missing, unreadable (truncated, not a torch file) or not a facezoo checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FacezooError(f"{path}: no such checkpoint file")
    if path.suffix == ".safetensors":
        return _read_safetensors(path, map_location)
    try:
        try:
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:
            from facezoo.nets.weights import pickled_global  # (facezoo.nets imports the feature networks)

            what = pickled_global(err)
            if what is None:           # not a pickled object: a damaged or foreign file (below)
                raise
            if not trust:
                raise UntrustedCheckpointError(
                    f"{path}: holds a pickled {what}, which facezoo does not unpickle from files (a pickle can run "
                    "code); pass trust_checkpoint=true if you made this file or trust its source") from None
            log.warning("%s: holds a pickled %s; unpickling it because trust_checkpoint=true", path, what)
            ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except FacezooError:
        raise
    except Exception as err:  # truncated or not a torch file: the first sentence of torch's message
        reason = " ".join(str(err).split()).split(". ")[0].rstrip(".")
        raise FacezooError(f"{path}: cannot read checkpoint, the file is truncated, damaged or not a torch file "
                           f"({type(err).__name__}: {reason})") from None
    if not isinstance(ckpt, dict) or "facezoo_config" not in ckpt or "state_dict" not in ckpt:
        raise FacezooError(f"{path}: not a facezoo checkpoint (no facezoo_config / state_dict)")
    return ckpt


def _read_safetensors(path: Path, map_location) -> dict:
    """A facezoo ``.safetensors`` file as a checkpoint dict (``state_dict``, ``facezoo_config``, the extras)."""
    from safetensors import SafetensorError, safe_open

    device = str(map_location) if isinstance(map_location, (str, torch.device)) else "cpu"
    try:
        with safe_open(str(path), framework="pt", device=device) as f:
            meta = f.metadata() or {}
            state = {key: f.get_tensor(key) for key in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise FacezooError(f"{path}: cannot read safetensors file, it is truncated or damaged "
                           f"({' '.join(str(err).split())[:160]})") from None
    if meta.get("format") != SAFETENSORS_FORMAT or "facezoo_config" not in meta:
        raise FacezooError(f"{path}: not a facezoo weights file (no facezoo_config in its metadata; a plain state dict "
                           "loads through the method's official loader or load_state_dict)")
    return {"state_dict": state, "facezoo_config": json.loads(meta["facezoo_config"]),
            **json.loads(meta.get("extras", "{}")), "weights_only_file": True}


#: Checkpoint entries that are training state, not part of a weights file.
_TRAINING_STATE = ("optimizer_states", "lr_schedulers", "loops", "callbacks", "epoch", "global_step",
                   "pytorch-lightning_version", "hparams_name", "hyper_parameters", "MixedPrecision",
                   "state_dict", "facezoo_config", "weights_only_file")


def export_weights(ckpt_path: str | Path, out: str | Path, trust: bool = False) -> dict[str, str]:
    """Write a facezoo checkpoint's weights as ``.safetensors`` (atomically); returns the metadata written.

    Tensors: the model's ``state_dict`` (every network, EMA copies and buffers included). Metadata (strings):
    ``format`` (:data:`SAFETENSORS_FORMAT`), ``facezoo_config`` (JSON) and ``extras`` (JSON: what the method adds to
    its checkpoints that is plain data, e.g. ``batches_seen``, ``terms_off``). Optimizer and loop states are not
    written: the file is for inference, evaluation and sharing, not for resuming.

    Raises:
        FacezooError: unreadable checkpoint or ``out`` not ending in ``.safetensors``.
    """
    from safetensors.torch import save

    from facezoo.utils import atomic_write_bytes

    out = Path(out)
    if out.suffix != ".safetensors":
        raise FacezooError(f"{out}: the weights file must end in .safetensors")
    ckpt = read_checkpoint(ckpt_path, trust=trust)
    extras = {}
    for key, value in ckpt.items():
        if key in _TRAINING_STATE:
            continue
        try:
            extras[key] = json.loads(json.dumps(value))
        except TypeError:
            log.warning("%s: checkpoint entry %r is not plain data; left out of %s", ckpt_path, key, out.name)
    meta = {"format": SAFETENSORS_FORMAT, "facezoo_config": json.dumps(ckpt["facezoo_config"]),
            "extras": json.dumps(extras)}
    state = {key: value.detach().cpu().contiguous() for key, value in ckpt["state_dict"].items()}
    atomic_write_bytes(out, save(_unshared(state), metadata=meta))
    return meta


def _unshared(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share storage (tied weights): give each its own copy."""
    seen: set[int] = set()
    out = {}
    for key, value in state.items():
        ptr = value.untyped_storage().data_ptr() if value.numel() else None
        out[key] = value.clone() if ptr is not None and ptr in seen else value
        if ptr is not None:
            seen.add(ptr)
    return out


def method_of(target: str) -> str:
    """The method name of a model ``_target_``: ``facezoo.methods.psgan.module.PSGAN`` → ``psgan``."""
    parts = target.split(".")
    return parts[2] if len(parts) > 3 and parts[:2] == ["facezoo", "methods"] else target


def load(ckpt_path: str | Path, data_overrides: Mapping | None = None, map_location="cpu", trust: bool = False):
    """Rebuild ``(model, datamodule, config)`` from a facezoo checkpoint; the model is in eval mode.

    ``model.predict_batch(batch)`` gives its outputs and ``datamodule.dataset("test")`` the samples it was meant
    for; ``data_overrides`` change the data config (e.g. ``{"dataset": {"size": 128}}``); ``trust``: see
    :func:`read_checkpoint`.

    Raises:
        FacezooError: the file is missing, unreadable or not a facezoo checkpoint, its model is not in this facezoo
            or its weights do not fit the model (one-line message).
    """
    from hydra.utils import instantiate

    from facezoo.config import instantiate_model
    from facezoo.nets.weights import state_dict_mismatch

    ckpt = read_checkpoint(ckpt_path, map_location, trust)
    cfg = OmegaConf.create(ckpt["facezoo_config"])
    if data_overrides:
        cfg.data = OmegaConf.merge(cfg.data, OmegaConf.create(dict(data_overrides)))
    target = str(cfg.model.get("_target_", "?"))
    module, _, name = target.rpartition(".")
    try:
        getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        raise FacezooError(f"{ckpt_path}: its model {target} is not in this facezoo (a checkpoint of another "
                           "version or fork?)") from None
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate_model(cfg.model)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError:
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        raise FacezooError(f"{ckpt_path}: its weights do not fit the model its config builds ("
                           f"{state_dict_mismatch(ckpt['state_dict'], expected)})") from None
    model.on_load_checkpoint(ckpt)
    model.eval()
    return model, datamodule, cfg


def load_method(cfg: DictConfig | Mapping, method: str, official: Callable[[str], torch.nn.Module],
                official_name: str):
    """What an inference pipeline runs: ``(model, None)`` from ``ckpt_path`` or ``(None, network)`` from ``weights``.

    Exactly one of ``cfg.ckpt_path`` (a facezoo checkpoint of ``method``) and ``cfg.weights`` (the method's
    official release, read by ``official(path)``) must be given.

    Args:
        cfg: the inference config (``ckpt_path``, ``weights``, ``device``).
        method: ``"psgan"``, ``"gannotation"``…: a checkpoint of another method is refused.
        official: the official-weight loader.
        official_name: how the usage line names the official file (e.g. ``"G.pth (the official PSGAN generator)"``).

    Raises:
        FacezooError: neither or both given, an unreadable checkpoint, or one of another method.
    """
    ckpt_path, weights = cfg.get("ckpt_path"), cfg.get("weights")
    device = torch.device(cfg.get("device", "cpu"))
    if bool(ckpt_path) == bool(weights):
        raise FacezooError(f"give exactly one of ckpt_path=CKPT (a facezoo {method} checkpoint) or "
                           f"weights={official_name}")
    trust = bool(cfg.get("trust_checkpoint", False))
    if weights:
        from facezoo.nets.weights import UntrustedFileError, trusting_pickles

        try:
            with trusting_pickles(trust):
                return None, official(weights).to(device).eval()
        except UntrustedFileError as err:
            raise FacezooError(str(err)) from None
    ckpt = read_checkpoint(ckpt_path, trust=trust)
    found = method_of(str(ckpt["facezoo_config"].get("model", {}).get("_target_", "?")))
    if found != method:
        from facezoo.config import CONF_DIR

        hint = (f"model={found} runs it" if (CONF_DIR / "infer" / "model" / f"{found}.yaml").is_file() else
                f"facezoo.infer has no {found} pipeline; python -m facezoo.evaluate ckpt_path={ckpt_path} evaluates it")
        raise FacezooError(f"{ckpt_path}: a {found} checkpoint, not {method} ({hint})")
    model, _, _ = load(ckpt_path, map_location="cpu", trust=trust)
    return model.to(device).eval(), None
