"""Every config composes, and the data/model it names instantiate (the template's cheap smoke test)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_train(*overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=False)


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("model", options("model"))
def test_model_config_picks_its_data(model):
    cfg = compose_train(f"model={model}", "paths.output_dir=/tmp/x")
    assert cfg.model._target_.startswith("facezoo.methods.")
    assert cfg.data._target_ == "facezoo.data.datamodule.FaceDataModule"
    assert cfg.model.image_size == cfg.data.size


@pytest.mark.parametrize("trainer", options("trainer"))
def test_trainer_configs_compose(trainer):
    cfg = compose_train(f"trainer={trainer}", "paths.output_dir=/tmp/x")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    assert "gpus" in cfg.trainer  # `trainer.gpus=N` is legal without '+'


def test_ddp_configs_use_the_gan_safe_strategy():
    for name in ("ddp", "ddp_multinode"):
        cfg = compose_train(f"trainer={name}", "paths.output_dir=/tmp/x")
        assert cfg.trainer.strategy == "ddp_find_unused_parameters_true"
    assert compose_train("trainer=ddp_multinode", "paths.output_dir=/tmp/x").trainer.num_nodes == 2


def test_paper_and_official_tpgan_differ_where_the_reference_says():
    paper = compose_train("model=tpgan", "paths.output_dir=/tmp/x").model
    official = compose_train("model=tpgan_official", "paths.output_dir=/tmp/x").model
    assert (paper.g_steps, paper.d_steps) == (1, 1) and (official.g_steps, official.d_steps) == (2, 1)
    assert paper.loss.symmetry == official.loss.symmetry == 0.3
    assert (paper.loss.adversarial, paper.loss.identity, paper.loss.tv) == (1e-3, 3e-3, 1e-4)
    assert (official.loss.adversarial, official.loss.identity, official.loss.tv) == (20.0, 40.0, 1e-3)
    assert official.real_label == 0.9 and official.reduction == "sum_hw" and official.separate_local_optimizer


def test_command_line_data_wins_over_the_model_default():
    cfg = compose_train("model=tpgan", "data=synthetic_frontalization", "data.size=64", "paths.output_dir=/tmp/x")
    assert cfg.model.image_size == 64


@pytest.mark.parametrize("logger", options("logger"))
def test_logger_configs_compose(logger):
    cfg = compose_train(f"logger={logger}", "paths.output_dir=/tmp/x")
    nodes = OmegaConf.to_container(cfg.logger) if cfg.get("logger") else {}
    assert all("_target_" in n for n in nodes.values())


def test_experiment_cpu_preset_instantiates_small():
    cfg = compose_train("experiment=tpgan_cpu", "paths.output_dir=/tmp/x", "data.num_workers=0")
    assert cfg.data.size == 64 and cfg.model.width == 0.125 and cfg.trainer.accelerator == "cpu"
    dm = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, _convert_="all")
    assert model.generator.image_size == 64
    sample = dm.dataset("val")[0]
    assert sample["image"].shape == (3, 64, 64)
    n_params = sum(p.numel() for p in model.generator.parameters())
    assert n_params < 12e6  # vs 157.5M at full width and 128 px (tests/methods/test_tpgan_networks.py)


def test_slurm_launcher_follows_the_trainer():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp_multinode", "trainer.num_nodes=3",
                                          "trainer.devices=4"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (3, 4, 4)
    assert launcher.additional_parameters.signal == "SIGUSR1@90"
