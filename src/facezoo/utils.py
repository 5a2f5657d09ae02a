"""Small helpers shared by the entry points: errors users can act on, atomic writes, the `gpus` alias."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import io
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from omegaconf import DictConfig, ListConfig, open_dict

log = logging.getLogger("facezoo")

#: DDP strategy for GAN steps: D's step leaves G's parameters unused and vice versa (Lightning #20328).
GAN_DDP_STRATEGY = "ddp_find_unused_parameters_true"


class FacezooError(RuntimeError):
    """A problem with the user's input or environment, reported as one line without a traceback."""


class ConfigError(FacezooError, ValueError):
    """A bad configuration value (an unknown loss term, a negative weight…): a one-line :class:`FacezooError` that is
    also the ``ValueError`` the constructor raised."""


class NonFiniteLossError(FacezooError, FloatingPointError):
    """A loss term became NaN or inf during training: the run stops at that step, before the backward pass, and
    no checkpoint is written after it (see ``GANModule.run_phase``)."""


# ------------------------------------------------------------------------------------ user errors
#: Exit status of every entry point when the user's input or environment is at fault (argparse's usage status).
EXIT_USAGE = 2


def one_line(err: BaseException) -> str:
    """An exception's message on one line (whitespace runs collapsed); its type name when it has none.

    An error raised in a DataLoader worker (a damaged file of a dataset, read with ``data.num_workers > 0``) comes
    back re-raised by torch with the worker's whole traceback as its message; only the original message is kept.

    Example:
        >>> one_line(FacezooError("a.png: cannot read image\\n  (truncated)"))
        'a.png: cannot read image (truncated)'
    """
    return " ".join(_worker_message(str(err)).split()) or type(err).__name__


def _worker_message(text: str) -> str:
    """The original message of torch's ``Caught <Error> in DataLoader worker process N.\\nOriginal Traceback ...``
    (its last unindented ``module.Error: message`` line and what follows it), or ``text`` as it is."""
    if not (text.startswith("Caught ") and "\nOriginal Traceback" in text):
        return text
    lines = text.splitlines()
    for i in range(len(lines) - 1, 0, -1):
        name, sep, message = lines[i].partition(": ")
        if sep and name and not name[0].isspace() and name.replace(".", "").replace("_", "").isalnum():
            return "\n".join([message, *lines[i + 1:]])
    return text


def _user_error_types() -> tuple[type[BaseException], ...]:
    from omegaconf.errors import MissingMandatoryValue

    # FileNotFoundError covers facezoo.nets.weights.WeightsNotFoundError (a weight file that is not there)
    return FacezooError, FileNotFoundError, MissingMandatoryValue


class user_errors(contextlib.ContextDecorator):  # noqa: N801 - used like a function: ``with user_errors(...)``
    """Turn the errors a user can fix into one line, ``<entry>: error: <what to fix>`` on stderr, and exit
    status :data:`EXIT_USAGE` (2), without a traceback; anything else (a bug) propagates with its traceback.

    The one place where the entry points (``facezoo.train``, ``facezoo.evaluate``, ``facezoo.infer``) handle
    user errors: a context manager, or a decorator under ``@hydra.main`` (a plain object, so that
    Hydra's joblib launcher can pickle the decorated task).

    Caught: :class:`FacezooError` (and its :class:`ConfigError`, :class:`NonFiniteLossError`),
    ``FileNotFoundError`` (with ``WeightsNotFoundError``), and omegaconf's ``MissingMandatoryValue`` (a ``???``
    option not given), which prints ``<key>= is required: <usage>``.

    Args:
        entry: the program name the line starts with, e.g. ``"facezoo.train"``.
        usage: the command line to show when a required option is missing.

    Example:
        >>> with user_errors("facezoo.evaluate"):      # doctest: +SKIP
        ...     raise FacezooError("x.ckpt: no such checkpoint file")
        facezoo.evaluate: error: x.ckpt: no such checkpoint file     (on stderr; SystemExit(2))
    """

    def __init__(self, entry: str, usage: str | None = None) -> None:
        self.entry, self.usage = entry, usage

    def __enter__(self) -> user_errors:
        return self

    def __exit__(self, kind, err, tb) -> bool:
        from omegaconf.errors import MissingMandatoryValue

        if err is None or not isinstance(err, _user_error_types()):
            return False
        if isinstance(err, MissingMandatoryValue):
            key = err.full_key or err.key or "a required option"
            message = f"{key}= is required" + (f": {self.usage}" if self.usage else f" (give {key}=VALUE)")
        else:
            message = one_line(err)
        print(f"{self.entry}: error: {message}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USAGE)


# ------------------------------------------------------------------------------------------ devices
def apply_gpus_alias(trainer_cfg: DictConfig) -> None:
    """Translate ``trainer.gpus=N`` (removed in Lightning 2.0) into ``accelerator``/``devices``/``strategy``.

    ``gpus=0`` means CPU; ``gpus=N`` (or a list of ids, or -1 for all) means ``accelerator=gpu,
    devices=N`` and, with more than one device or node, the DDP strategy that works with two optimizers.
    Edits the config in place and removes the ``gpus`` key.
    """
    with open_dict(trainer_cfg):
        gpus = trainer_cfg.pop("gpus", None)
        if gpus is None:
            return
        if gpus == 0 or (isinstance(gpus, (list, ListConfig)) and len(gpus) == 0):
            trainer_cfg.accelerator, trainer_cfg.devices = "cpu", 1
            return
        trainer_cfg.accelerator = "gpu"
        trainer_cfg.devices = gpus
        n = len(gpus) if isinstance(gpus, (list, ListConfig)) else int(gpus)
        multi = n == -1 or n > 1 or int(trainer_cfg.get("num_nodes", 1)) > 1
        if multi and trainer_cfg.get("strategy", "auto") in ("auto", "ddp"):
            trainer_cfg.strategy = GAN_DDP_STRATEGY


def check_devices(trainer_cfg: DictConfig, available_gpus: int | None = None) -> None:
    """Fail early, in one line, when the config asks for more GPUs than this machine has, or for synchronised
    BatchNorm off the GPU (torch's ``SyncBatchNorm`` runs on CUDA only)."""
    if str(trainer_cfg.get("accelerator", "auto")) not in ("gpu", "cuda"):
        if trainer_cfg.get("sync_batchnorm") and str(trainer_cfg.get("accelerator", "auto")) == "cpu":
            raise FacezooError("trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm runs on CUDA only); "
                               "drop it on CPU")
        return
    if available_gpus is None:
        import torch

        available_gpus = torch.cuda.device_count()
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, (list, ListConfig)):
        wanted = len(devices)
    elif devices in ("auto", -1, "-1"):
        wanted = max(available_gpus, 1)
    else:
        wanted = int(devices)
    if wanted > available_gpus:
        raise FacezooError(
            f"asked for {wanted} GPU{'s' if wanted != 1 else ''} (trainer.gpus/devices) but found "
            f"{available_gpus} on this machine; use trainer.gpus={available_gpus} or trainer=cpu"
        )


# ------------------------------------------------------------------------------------ atomic files
def check_writable(path: str | Path, option: str = "out") -> Path:
    """Check, before any work, that :func:`atomic_write` can create ``path``: it is not a folder, and its nearest
    existing parent is a folder this process may write in (missing folders below it are created on writing).

    Args:
        path: the file to write.
        option: how the message calls it (the command-line option).

    Returns:
        ``path``.

    The parent is probed by creating (and at once removing) a temporary file in it, as :func:`atomic_write` will:
    permission bits alone miss read-only file systems and, for root, folders the kernel refuses (``/sys``).

    Raises:
        FacezooError: one line naming ``option`` and what is in the way.
    """
    path = Path(path)
    if path.is_dir():
        raise FacezooError(f"{option}={path}: is a folder; give a file name")
    _check_can_create_in(path.parent, f"{option}={path}")
    return path


def check_writable_folder(folder: str | Path, option: str) -> Path:
    """Check, before any work, that files can be created in ``folder`` (made, with its missing parents, on
    writing): as :func:`check_writable`, for an output folder such as a run's ``hydra.run.dir``.

    Raises:
        FacezooError: one line naming ``option`` and what is in the way.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise FacezooError(f"{option}={folder}: is a file, not a folder")
    _check_can_create_in(folder, f"{option}={folder}")
    return folder


def _check_can_create_in(folder: Path, what: str) -> None:
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise FacezooError(f"{what}: cannot write there, {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FacezooError(f"{what}: cannot write there, no permission to write in {parent}")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".facezoo-write-check.", suffix=".tmp")
    except OSError as err:
        raise FacezooError(f"{what}: cannot write there, {parent}: {err.strerror or one_line(err)}") from None
    os.close(fd)
    os.unlink(probe)


def atomic_write(path: str | Path, write: Callable[[IO], None], binary: bool = True) -> Path:
    """Write ``path`` through ``write(file)`` on a temporary file in the same folder, fsync, then a rename:
    readers (and a crash at any moment) see the old file or the whole new one, never half of one. The file gets
    the permissions a plain ``open`` would give it (``0o666`` less the umask; ``mkstemp``'s own are ``0o600``).
    A full disk (or quota) is a :class:`FacezooError` naming the file, the previous file left as it was.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            kept = "the previous file is unchanged" if path.exists() else "nothing was written"
            raise FacezooError(f"{path}: {err.strerror or 'no space left on device'} while writing it; {kept} "
                               "(free some space and run again)") from None
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(text), binary=False)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | Path, obj) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically (:func:`atomic_write`)."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_csv_row(path: str | Path, row: Mapping[str, object]) -> None:
    """Add one row to a CSV shared by several processes (a sweep's jobs), widening the header as needed.

    The file is rewritten atomically under an exclusive lock, so parallel jobs neither interleave nor
    lose rows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = []
        if path.exists():
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
        rows.append({k: "" if v is None else v for k, v in row.items()})
        columns: list[str] = []
        for r in rows:
            columns += [k for k in r if k not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buf.getvalue())
