"""Shared test helpers: run the real command-line entry points in subprocesses, tiny settings."""

from __future__ import annotations

import atexit
import importlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("FACEZOO_OFFLINE", "1")  # never try to download weights in tests
# hermetic: tests never see weight files a developer has cached (they save their own into temp dirs)
os.environ["FACEZOO_CACHE"] = tempfile.mkdtemp(prefix="facezoo-test-cache-")
atexit.register(shutil.rmtree, os.environ["FACEZOO_CACHE"], ignore_errors=True)
os.environ.setdefault("WANDB_MODE", "offline")
torch.set_num_threads(min(2, torch.get_num_threads()))

#: TP-GAN small enough for a CPU test: 64-pixel faces, 1/8 width, a handful of samples.
TINY_TPGAN = [
    "experiment=tpgan_cpu",
    "data.size=64",
    "data.batch_size=4",
    "data.num_workers=0",
    "data.splits.train.length=16",
    "data.splits.train.num_identities=4",
    "data.splits.val.length=4",
    "data.splits.val.num_identities=2",
    "data.splits.test.length=8",
    "data.splits.test.num_identities=2",
    "model.width=0.125",
    "model.zdim=8",
    "model.feature_dim=32",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]


def one_line_error(fn, *needles: str, kind: type[Exception] | None = None) -> str:
    """Call ``fn``, expect ``kind`` (default :class:`facezoo.utils.FacezooError`) with a one-line message containing
    every needle; return the message."""
    from facezoo.utils import FacezooError

    with pytest.raises(kind or FacezooError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message, message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


#: Hydra leaves the process's logging alone in the in-process calls.
QUIET = ["hydra/job_logging=none", "hydra/hydra_logging=none"]


def call_main(entry: str, args, monkeypatch, capsys) -> tuple[int | None, str]:
    """``python -m <entry> <args>`` in-process (the Hydra ``main``): ``(exit status or None, stderr)``."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", [entry, *map(str, args), *QUIET])
    module = importlib.import_module(entry)
    capsys.readouterr()
    try:
        module.main()
        code = None
    except SystemExit as exit_:
        code = exit_.code
    finally:                     # leave no Hydra state behind for the next test
        GlobalHydra.instance().clear()
        HydraConfig.instance().cfg = None
    return code, capsys.readouterr().err


def error_line(stderr: str, entry: str) -> str:
    """The one error line of ``stderr`` (and that there is exactly one, and no traceback)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1 and lines[0].startswith(f"{entry}: error: "), stderr
    return lines[0]


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder``, relative path → bytes (to check that a failed run left them as they were)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def load_script(path: str):
    """A file of ``scripts/`` (``"train_face_parser.py"``, ``"fixtures/make_maskgan.py"``) imported as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / "scripts" / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def empty_weight_cache(tmp_path, monkeypatch) -> Path:
    """A weight cache (``$FACEZOO_CACHE`` = ``tmp_path``, offline) with nothing in it and no packaged networks."""
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    monkeypatch.setattr("facezoo.nets.weights.packaged_dir", lambda: tmp_path / "nothing")
    return tmp_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(**extra) -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", FACEZOO_OFFLINE="1",
               WANDB_MODE="offline", HYDRA_FULL_ERROR="0")
    env.update(extra)
    return env


def run_module(module: str, *args: str, cwd: Path | None = None, env: dict | None = None,
               timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m <module> <args>`` in a subprocess; on failure the assertion shows its output tail."""
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or ROOT, env=env or cli_env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_tpgan_run(tmp_path_factory) -> Path:
    """One real `python -m facezoo.train` run of tiny TP-GAN for 2 epochs; its run directory."""
    run_dir = tmp_path_factory.mktemp("tpgan_run")
    run_module("facezoo.train", *TINY_TPGAN, "trainer.max_epochs=2",
               "+callbacks.param_checksum._target_=facezoo.callbacks.ParamChecksum",
               f"+callbacks.param_checksum.dirpath={run_dir}", f"hydra.run.dir={run_dir}")
    return run_dir
