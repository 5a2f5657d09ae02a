"""The training entry point, run as users run it: `python -m facezoo.train ...` in subprocesses."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys

import pytest
import torch
import yaml
from conftest import ROOT, TINY_TPGAN, cli_env, free_port, run_module


def read_json(path):
    return json.loads(path.read_text())


def test_run_dir_layout(tiny_tpgan_run):
    """hydra.run.dir=DIR: checkpoints (last + best), a PNG sample grid, final metrics.json."""
    d = tiny_tpgan_run
    assert (d / "checkpoints" / "last.ckpt").is_file()
    assert (d / "checkpoints" / "best.ckpt").is_file()
    grids = sorted((d / "samples").glob("epoch_*.png"))
    assert [g.name for g in grids] == ["epoch_000.png", "epoch_001.png"]
    from PIL import Image

    grid = Image.open(grids[-1])
    assert grid.mode == "RGB" and grid.size[1] > 4 * 64  # 4 rows (profile, output, parts, truth) of 64 px
    summary = read_json(d / "metrics.json")
    assert summary["epochs"] == 2 and summary["batches"] == 4
    for key in ("val/l1", "val/psnr", "val/ssim", "val/l1_input"):
        assert key in summary["metrics"] and summary["metrics"][key] == summary["metrics"][key]  # not NaN
    ckpt = torch.load(d / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["facezoo_config"]["model"]["_target_"] == "facezoo.methods.tpgan.module.TPGAN"
    assert ckpt["global_step"] == 2 * 4  # one D and one G step per batch


def test_csv_logger_records_loss_terms(tiny_tpgan_run):
    rows = list(csv.DictReader(open(tiny_tpgan_run / "csv" / "metrics.csv")))
    columns = set(rows[0])
    for term in ("pixel", "local", "symmetry", "adversarial", "tv", "cross_entropy", "total"):
        assert f"train/g_{term}_step" in columns
    assert "train/d_adversarial_step" in columns


def test_a_run_killed_at_any_moment_resumes_to_the_same_weights(tiny_tpgan_run, tmp_path):
    """kill -9 twice in a run of 2 epochs of 2 batches that checkpoints after every batch, each time resumed from
    last.ckpt: (1) halfway through writing a checkpoint (epoch 0's end, so last.ckpt is the mid-epoch one after batch
    0), (2) between two checkpoints in epoch 1 (last.ckpt: after batch 0 of epoch 1, whose order the loader must
    rebuild). last.ckpt is whole and loadable after each kill, and the final weights and optimizer states equal the
    uninterrupted run's, tensor for tensor (the mid-epoch resumes train on the batches the uninterrupted run trains
    on)."""
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    args = [*TINY_TPGAN, "trainer.max_epochs=2", "trainer.val_check_interval=1",
            "+callbacks.model_checkpoint.save_on_train_epoch_end=false", f"hydra.run.dir={run}",
            "+callbacks.fail._target_=facezoo.callbacks.FailAt"]

    def loop_position(ckpt):
        epoch_loop = ckpt["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
        return ckpt["epoch"], epoch_loop["completed"]

    killed = run_module("facezoo.train", *args, "+callbacks.fail.epoch=0", "+callbacks.fail.batch=1",
                        "+callbacks.fail.how=kill_while_saving", check=False)
    assert killed.returncode == -signal.SIGKILL
    assert len(list(last.parent.glob(".*.ckpt.*.tmp"))) == 1  # the half-written file, never renamed
    assert loop_position(torch.load(last, map_location="cpu", weights_only=True)) == (0, 1)

    killed = run_module("facezoo.train", *args, "+callbacks.fail.epoch=1", "+callbacks.fail.batch=1",
                        "+callbacks.fail.how=kill", f"ckpt_path={last}", check=False)
    assert killed.returncode == -signal.SIGKILL
    assert "not resumable" not in killed.stderr  # Lightning's warning for a loader without state
    assert not list(last.parent.glob(".*.tmp"))  # the next checkpoint written removed the leftover
    assert loop_position(torch.load(last, map_location="cpu", weights_only=True)) == (1, 1)

    run_module("facezoo.train", *args[:-1], f"ckpt_path={last}")
    resumed = torch.load(last, map_location="cpu", weights_only=True)
    uninterrupted = torch.load(tiny_tpgan_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert resumed["global_step"] == uninterrupted["global_step"]
    assert resumed["state_dict"].keys() == uninterrupted["state_dict"].keys()
    for name, tensor in uninterrupted["state_dict"].items():
        assert torch.equal(resumed["state_dict"][name], tensor), name
    for mine, theirs in zip(resumed["optimizer_states"], uninterrupted["optimizer_states"], strict=True):
        for (index, state), (_, expected) in zip(mine["state"].items(), theirs["state"].items(), strict=True):
            for key, value in expected.items():
                assert torch.equal(state[key], value), (index, key)


def test_missing_resume_checkpoint_is_one_line(tmp_path):
    proc = run_module("facezoo.train", *TINY_TPGAN, f"hydra.run.dir={tmp_path}",
                      f"ckpt_path={tmp_path / 'nope.ckpt'}", check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert f"ckpt_path={tmp_path / 'nope.ckpt'}: no such checkpoint file" in proc.stderr


def test_gpus_alias_without_gpus_fails_in_one_line(tmp_path):
    """`trainer.gpus=4` is accepted as users write it; with no GPU here it says what was asked and found."""
    proc = run_module("facezoo.train", *TINY_TPGAN, "trainer.gpus=4", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode != 0
    err_lines = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert err_lines == [
        "facezoo.train: error: asked for 4 GPUs (trainer.gpus/devices) but found 0 on this machine; "
        "use trainer.gpus=0 or trainer=cpu"
    ]
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_psp_ddp_with_a_frozen_decoder(tmp_path):
    """trainer=ddp on CPU (gloo), with pSp (the official code has no multi-GPU training): two processes, only the
    encoder optimised, the decoder frozen (no unused-parameter error); both ranks end with identical weights (the
    GAN methods' DDP, with parameters unused in some phases, is ``test_two_simulated_nodes``).
    ``trainer.sync_batchnorm=true`` (CUDA-only in torch) is refused on CPU in one line."""
    from facezoo.nets.stylegan2 import Generator, save_rosinality

    torch.manual_seed(0)
    g = Generator(64, 16, 2, channel_multiplier=1, narrow=1 / 32)
    save_rosinality(tmp_path / "stylegan2.pt", g, g.mean_latent(64)[0])
    run_module("facezoo.train", "model=psp", f"model.decoder={tmp_path / 'stylegan2.pt'}", "model.irse50=false",
               "model.width=0.125", "data.size=64", "data.batch_size=2", "data.num_workers=0",
               "data.splits.train.length=8", "data.splits.train.num_identities=4", "data.splits.val.length=2",
               "data.splits.val.num_identities=2", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
               "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
               "callbacks.rich_progress_bar=null", "callbacks.sample_grid=null", "logger=csv",
               "+callbacks.param_checksum._target_=facezoo.callbacks.ParamChecksum",
               f"+callbacks.param_checksum.dirpath={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}",
               env=cli_env(MASTER_PORT=str(free_port())))
    ranks = [read_json(tmp_path / f"param_checksum_rank{r}.json") for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["sha256"] == ranks[1]["sha256"]
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 2            # 8 samples / (2 ranks x batch 2) = 2 encoder steps
    decoder = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("psp.decoder.")}
    assert decoder and all(torch.equal(v, g.state_dict()[k.removeprefix("psp.decoder.")]) for k, v in decoder.items())
    proc = run_module("facezoo.train", "model=psp", f"model.decoder={tmp_path / 'stylegan2.pt'}", "trainer=cpu",
                      "trainer.sync_batchnorm=true", f"hydra.run.dir={tmp_path / 'sync'}", check=False)
    assert proc.returncode == 2 and "trainer.sync_batchnorm=true needs GPUs" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "sync" / "checkpoints").exists()


def test_a_failing_rank_takes_the_ddp_job_down_by_name(tmp_path, rank=1):
    """Two CPU processes (gloo), rank 1 raising at its first batch (facezoo.callbacks.FailAt): the job ends within
    seconds, not at the process group's timeout, with the rank and its error in one line. (Rank 0 failing was
    checked by hand the same way, ``+callbacks.fail.rank=0``: 11 s.)"""
    proc = run_module("facezoo.train", *TINY_TPGAN, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
                      "+callbacks.fail._target_=facezoo.callbacks.FailAt", f"+callbacks.fail.rank={rank}",
                      f"hydra.run.dir={tmp_path}", env=cli_env(MASTER_PORT=str(free_port())), timeout=120,
                      check=False)
    assert proc.returncode != 0
    line = f"facezoo.train: error: rank {rank}: FailAt: the injected failure at batch 0"
    assert line in proc.stderr.splitlines(), proc.stderr[-3000:]
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


@pytest.mark.slow
def test_two_simulated_nodes(tmp_path):
    """trainer=ddp_multinode: two 'nodes' of one process each on 127.0.0.1 finish with identical weights."""
    port = str(free_port())
    procs = []
    for node in (0, 1):
        run_dir = tmp_path / f"node{node}"
        env = cli_env(MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NODE_RANK=str(node))
        args = [*TINY_TPGAN, "trainer=ddp_multinode", "trainer.accelerator=cpu", "trainer.devices=1",
                "trainer.num_nodes=2", "+callbacks.param_checksum._target_=facezoo.callbacks.ParamChecksum",
                f"+callbacks.param_checksum.dirpath={tmp_path}", f"hydra.run.dir={run_dir}"]
        procs.append(subprocess.Popen([sys.executable, "-m", "facezoo.train", *args], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    ranks = [read_json(tmp_path / f"param_checksum_rank{r}.json") for r in (0, 1)]
    assert ranks[0]["world_size"] == 2 and ranks[0]["sha256"] == ranks[1]["sha256"]


@pytest.mark.slow
def test_multirun_sweep_writes_a_summary(tmp_path):
    """-m over a loss weight: both jobs run with their value and the sweep dir gets one summary row each."""
    run_module("facezoo.train", "-m", *TINY_TPGAN, "model=tpgan", "model.loss.g.symmetry=0.1,0.3",
               "trainer=debug", f"hydra.sweep.dir={tmp_path}")
    rows = list(csv.DictReader(open(tmp_path / "multirun_summary.csv")))
    assert sorted(r["model.loss.g.symmetry"] for r in rows) == ["0.1", "0.3"]
    for r in rows:
        assert float(r["val/l1"]) > 0
        cfg = yaml.safe_load((tmp_path / r["job"] / ".hydra" / "config.yaml").read_text())
        assert cfg["model"]["loss"]["g"]["symmetry"] == float(r["model.loss.g.symmetry"])


def test_wandb_logger_runs_offline(tmp_path):
    run_module("facezoo.train", *TINY_TPGAN, "logger=wandb", "logger.wandb.offline=true",
               f"hydra.run.dir={tmp_path}")
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline wandb run written"


@pytest.mark.slow
def test_installed_package_runs_from_another_directory(tmp_path):
    """A non-editable install (`pip install .`) carries the configs: the entry point composes from elsewhere."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(ROOT)], check=True, capture_output=True, timeout=300)
    assert (target / "facezoo" / "conf" / "model" / "tpgan.yaml").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = cli_env(PYTHONPATH=str(target))
    proc = run_module("facezoo.train", "--cfg", "job", "model=tpgan_official", cwd=elsewhere, env=env)
    assert "_target_: facezoo.methods.tpgan.module.TPGAN" in proc.stdout
    assert "g_steps: 2" in proc.stdout
    where = subprocess.run([sys.executable, "-c", "import facezoo; print(facezoo.__file__)"], cwd=elsewhere,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(target))


def test_missing_dataset_root_is_one_line(tmp_path):
    missing = tmp_path / "no_multipie_here"
    proc = run_module("facezoo.train", "model=tpgan", "data=multipie", f"data.root={missing}", "data.size=64",
                      "model.width=0.125", "trainer=debug", "data.num_workers=0", f"hydra.run.dir={tmp_path / 'run'}",
                      check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("facezoo.train: error:")]
    assert len(errors) == 1 and str(missing) in errors[0]


def test_tensorboard_and_csv_loggers_get_the_sample_grid(tmp_path):
    run_module("facezoo.train", *TINY_TPGAN, "logger=many", f"hydra.run.dir={tmp_path}")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "samples" in events.Tags()["images"]
    assert "train/g_pixel_step" in events.Tags()["scalars"]
    assert (tmp_path / "csv" / "metrics.csv").is_file()


@pytest.mark.slow
def test_optuna_search_runs_trials_and_reports_the_best(tmp_path):
    """hparams_search=tpgan_optuna: a real Optuna sweep (2 trials) over the loss weights."""
    run_module("facezoo.train", *TINY_TPGAN, "hparams_search=tpgan_optuna", "hydra.sweeper.n_trials=2",
               "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={tmp_path}")
    result = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    assert set(result["best_params"]) == {"model.loss.g.symmetry", "model.loss.g.local", "model.loss.g.adversarial",
                                          "model.loss.g.tv"}
    assert result["best_value"] > 0
    rows = list(csv.DictReader(open(tmp_path / "multirun_summary.csv")))
    assert len(rows) == 2 and min(float(r["val/l1"]) for r in rows) == result["best_value"]


@pytest.mark.slow
def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    run_module("facezoo.train", "-m", *TINY_TPGAN, "hydra/launcher=local_parallel", "model.loss.g.tv=0.0,0.001",
               f"hydra.sweep.dir={tmp_path}")
    rows = list(csv.DictReader(open(tmp_path / "multirun_summary.csv")))
    assert sorted(r["model.loss.g.tv"] for r in rows) == ["0.0", "0.001"]


def test_compile_wraps_the_trained_networks_in_place(monkeypatch):
    """compile=true: every network with trainable parameters is compiled in place (the checkpoint keeps its keys),
    frozen loss networks are not, and compile errors fall back to eager execution."""
    import torch._dynamo

    from facezoo.config import build_model
    from facezoo.train import compile_networks

    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", False)
    model = build_model("model=gannotation", "data.size=64", "model.width=0.125")
    keys = list(model.state_dict())
    assert compile_networks(model) == ["generator", "discriminator"]
    assert model.generator._compiled_call_impl is not None and model.discriminator._compiled_call_impl is not None
    assert list(model.state_dict()) == keys and torch._dynamo.config.suppress_errors
