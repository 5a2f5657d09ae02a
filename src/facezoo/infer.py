"""Inference entry point: photos in, photos out.

    python -m facezoo.infer model=psgan ckpt_path=CKPT source=A.jpg reference=B.jpg out=C.png
    python -m facezoo.infer model=psgan weights=G.pth source=A.jpg reference=B.jpg out=C.png alpha=0.5 regions=lip

``model=<name>`` composes ``conf/infer/model/<name>.yaml`` (the method's options, ``method: <name>``) and runs
``facezoo.methods.<name>.inference.run(cfg)``.
Bad inputs end with one line, ``facezoo.infer: error: <what to fix>``, exit status 2 and no output file.
"""

from __future__ import annotations

import importlib
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from facezoo.config import check_command_line
from facezoo.utils import EXIT_USAGE, FacezooError, user_errors

log = logging.getLogger("facezoo.infer")

__all__ = ["EXIT_USAGE", "available_methods", "load_pipeline", "infer", "main"]


def available_methods() -> list[str]:
    """Method names that have an ``inference.py`` (``facezoo.methods.<name>.inference``)."""
    root = Path(__file__).resolve().parent / "methods"
    return sorted(p.parent.name for p in root.glob("*/inference.py"))


def load_pipeline(model: str):
    """Import ``facezoo.methods.<model>.inference``.

    Raises:
        FacezooError: no such method or it has no inference pipeline.
    """
    name = f"facezoo.methods.{model}.inference"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is None or not name.startswith(err.name):      # a missing dependency inside it: re-raise
            raise
        raise FacezooError(f"model={model} has no inference pipeline; available: "
                           f"{', '.join(available_methods()) or 'none'}") from None


def infer(cfg: DictConfig):
    """Run the configured method's photo pipeline (``run(cfg)``); returns what it returns."""
    return load_pipeline(str(cfg.method)).run(cfg)


@hydra.main(version_base="1.3", config_path="conf/infer", config_name="infer")
@user_errors("facezoo.infer")
def main(cfg: DictConfig) -> None:
    infer(cfg)


if __name__ == "__main__":
    with user_errors("facezoo.infer"):          # unknown options and keys: one line, before Hydra's report
        check_command_line("infer", sys.argv[1:])
    main()
