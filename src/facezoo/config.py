"""facezoo's Hydra configs from Python (notebooks, scripts, tests): the same composition as the entry points.

    cfg = facezoo.config.compose("train", ["model=psgan", "model.width=0.25"])
    model = facezoo.config.build_model("model=tpgan", "data.size=64", "model.width=0.125")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from facezoo.utils import FacezooError, check_writable_folder

__all__ = ["CONF_DIR", "compose", "check_command_line", "build_model", "instantiate_model", "instantiate_data",
           "config_names"]

#: The config tree shipped inside the package (``conf/`` at the repository root).
CONF_DIR = Path(__file__).resolve().parent / "conf"


def compose(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` (``train``, ``evaluate``; ``infer`` is ``conf/infer/infer.yaml``) with
    command-line style ``overrides``.

    ``paths.output_dir`` and ``paths.work_dir`` (Hydra run-time values on the command line) default to the
    current directory.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = list(overrides)
    if config_name == "train":
        overrides += [f"paths.{key}=." for key in ("output_dir", "work_dir")
                      if not any(o.startswith(f"paths.{key}=") for o in overrides)]
    GlobalHydra.instance().clear()
    config_dir = CONF_DIR / "infer" if config_name == "infer" else CONF_DIR
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return hydra_compose(config_name, overrides=overrides)


def check_command_line(config_name: str, argv: Sequence[str]) -> None:
    """Compose the command line's overrides once before Hydra does, so that an unknown option, a misspelt key or a
    malformed value is one :class:`~facezoo.utils.FacezooError` line (Hydra prints a report of several lines and
    exits with status 1). The entry points call it under ``if __name__ == "__main__"``.

    Left to Hydra: command lines with flags (``-m`` / ``--multirun`` sweeps, ``--cfg``, ``--help`` …) and its own
    ``hydra.*`` overrides.

    Raises:
        FacezooError: ``<override>: <what is wrong>``, with the choices of an unknown config group option.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, MissingConfigException, OverrideParseException

    if any(arg.startswith("-") for arg in argv):
        return
    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except OverrideParseException as err:
            raise FacezooError(f"{override}: cannot parse it ({str(err).splitlines()[0]}; values with brackets, "
                               "commas or '=' need quotes)") from None
    try:
        cfg = compose(config_name, overrides)
    except MissingConfigException as err:
        lines = str(err).splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("Available options")), len(lines))
        choices = []
        for line in lines[start + 1:]:
            if not line.startswith("\t"):
                break
            choices.append(line.strip())
        message = lines[0].split(": ", 1)[-1] + (f"; choose one of {', '.join(choices)}" if choices else "")
        raise FacezooError(message) from None
    except HydraException as err:
        raise FacezooError(" ".join(line.strip() for line in str(err).splitlines())) from None
    if config_name == "train":              # the run folder Hydra makes before facezoo's handler runs
        run_dir = next((a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")), None)
        if run_dir is not None:
            check_writable_folder(run_dir, "hydra.run.dir")
        else:
            check_writable_folder(cfg.paths.log_dir, "paths.log_dir")


def instantiate_model(model_cfg: DictConfig):
    """``instantiate(model_cfg)``; a user-facing error inside the constructor (a bad value such as an unknown loss
    term or a negative learning rate, a missing or wrong file the model loads, e.g. MaskGAN's stage-1 MaskVAE)
    stays one :class:`~facezoo.utils.FacezooError` line instead of Hydra's wrapped traceback."""
    return _instantiate_checked(model_cfg)


def instantiate_data(data_cfg: DictConfig):
    """``instantiate(data_cfg)`` (the data module), with the bad values it refuses (``data.batch_size=0``, a
    missing dataset root…) as one :class:`~facezoo.utils.FacezooError` line, as :func:`instantiate_model`."""
    return _instantiate_checked(data_cfg)


def _instantiate_checked(node: DictConfig):
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from facezoo.nets.weights import WeightsNotFoundError
    from facezoo.utils import ConfigError, FacezooError

    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, (FacezooError, WeightsNotFoundError)):
            raise FacezooError(str(cause)) from None
        if isinstance(cause, ValueError):
            raise ConfigError(str(cause)) from None
        raise


def build_model(*overrides: str):
    """The LightningModule of ``compose("train", overrides).model``: ``build_model("model=psgan", ...)``."""
    return instantiate_model(compose("train", overrides).model)


def config_names(group: str) -> list[str]:
    """The options of a config group, e.g. ``config_names("model")`` → ``["gannotation", …]``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
