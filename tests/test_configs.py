"""The configs compose to what they claim: trainers, loggers, launchers, presets and the TP-GAN variants.

That every model / experiment config composes and instantiates (with its data) is tests/test_contract.py.
"""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from facezoo.config import compose, config_names
from facezoo.train import instantiate_group


def compose_train(*overrides: str):
    return compose("train", overrides)


@pytest.mark.parametrize("model", config_names("model"))
def test_model_config_sizes_its_networks_from_the_data(model):
    cfg = compose_train(f"model={model}", "data.size=96")
    assert cfg.model.image_size == cfg.data.size == 96


@pytest.mark.parametrize("trainer", config_names("trainer"))
def test_trainer_configs_compose(trainer):
    cfg = compose_train(f"trainer={trainer}")
    assert cfg.trainer._target_ == "lightning.pytorch.Trainer"
    assert "gpus" in cfg.trainer  # `trainer.gpus=N` is legal without '+'


def test_ddp_configs_use_the_gan_safe_strategy():
    for name in ("ddp", "ddp_multinode"):
        cfg = compose_train(f"trainer={name}")
        assert cfg.trainer.strategy == "ddp_find_unused_parameters_true"
    assert compose_train("trainer=ddp_multinode").trainer.num_nodes == 2


def test_paper_and_official_tpgan_differ_where_the_reference_says():
    paper = compose_train("model=tpgan").model
    official = compose_train("model=tpgan_official").model
    assert (paper.g_steps, paper.d_steps) == (1, 1) and (official.g_steps, official.d_steps) == (2, 1)
    assert paper.loss.g.symmetry == official.loss.g.symmetry == 0.3
    assert (paper.loss.g.pixel, paper.loss.g.local) == (official.loss.g.pixel, official.loss.g.local) == (1.0, 3.0)
    assert (paper.loss.g.adversarial, paper.loss.g.identity, paper.loss.g.tv) == (1e-3, 3e-3, 1e-4)
    assert (official.loss.g.adversarial, official.loss.g.identity, official.loss.g.tv) == (20.0, 40.0, 1e-3)
    assert (paper.loss.g.cross_entropy, official.loss.g.cross_entropy) == (1.0, 10.0)
    assert dict(paper.loss.d) == dict(official.loss.d) == {"adversarial": 1.0, "gradient_penalty": 0.0}
    assert (paper.real_label, paper.reduction) == (1.0, "mean")
    assert official.real_label == 0.9 and official.reduction == "sum_hw"
    # the TF rot_optim: a third optimizer for the local pathways, only in the official config
    assert set(paper.optimizers) == {"generator", "discriminator"}
    assert set(official.optimizers) == {"generator", "discriminator", "local"}
    assert official.optimizers.local._target_ == "torch.optim.Adam" and official.optimizers.local.lr == 1e-4
    assert list(paper.pixel_scales) == list(official.pixel_scales) == [1.0, 1.0, 1.5]


def test_command_line_data_wins_over_the_model_default():
    cfg = compose_train("model=tpgan", "data=synthetic_frontalization", "data.size=64")
    assert cfg.model.image_size == 64


#: the Lightning logger classes each logger config instantiates (conf/logger/*.yaml)
LOGGERS = {
    "csv": ["CSVLogger"],
    "tensorboard": ["TensorBoardLogger"],
    "many": ["CSVLogger", "TensorBoardLogger"],
    "wandb": ["WandbLogger"],
    "none": [],
}


def test_every_logger_config_is_listed():
    assert sorted(LOGGERS) == config_names("logger")


@pytest.mark.parametrize("logger", sorted(LOGGERS))
def test_logger_configs_instantiate_their_loggers(logger, tmp_path):
    """What `facezoo.train` builds for `logger=<name>`: the expected classes, writing under the run directory;
    `logger=none` builds no logger at all (the trainer then runs with logger=False)."""
    # wandb: no account here; its group names the model choice, a value only the Hydra app knows
    offline = ["logger.wandb.offline=true", "logger.wandb.group=tpgan"] if logger == "wandb" else []
    cfg = compose_train(f"logger={logger}", f"paths.output_dir={tmp_path}", *offline)
    loggers = instantiate_group(cfg.get("logger"))
    assert sorted(type(lg).__name__ for lg in loggers) == LOGGERS[logger]
    for lg in loggers:
        if hasattr(lg, "save_dir") and type(lg).__name__ != "WandbLogger":
            assert str(lg.save_dir) == str(tmp_path)


def test_experiment_cpu_preset_instantiates_small():
    cfg = compose_train("experiment=tpgan_cpu", "data.num_workers=0")
    assert cfg.data.size == 64 and cfg.model.width == 0.125 and cfg.trainer.accelerator == "cpu"
    assert cfg.model.optimizers.generator.lr == cfg.model.optimizers.discriminator.lr == 5e-4
    assert list(cfg.model.optimizers.generator.betas) == [0.5, 0.999]
    dm = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, _convert_="all")
    assert model.generator.image_size == 64
    sample = dm.dataset("val")[0]
    assert sample["image"].shape == (3, 64, 64)
    n_params = sum(p.numel() for p in model.generator.parameters())
    assert n_params < 12e6  # vs 157.5M at full width and 128 px (tests/methods/test_tpgan_networks.py)


def test_slurm_launcher_follows_the_trainer():
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from facezoo.config import CONF_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=["hydra/launcher=slurm", "trainer=ddp_multinode", "trainer.num_nodes=3",
                                                "trainer.devices=4", "paths.output_dir=."], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.nodes, launcher.tasks_per_node, launcher.gpus_per_node) == (3, 4, 4)
    assert launcher.additional_parameters.signal == "SIGUSR1@90"
