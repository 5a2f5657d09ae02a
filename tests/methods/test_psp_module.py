"""pSp's LightningModule: the coach's losses, what is optimised, the decoder file, self-contained checkpoints."""

from __future__ import annotations

import pytest
import torch

import facezoo
from facezoo import losses
from facezoo.config import build_model, compose
from facezoo.nets.stylegan2 import Generator, save_rosinality
from facezoo.train import train
from facezoo.utils import ConfigError, FacezooError

TINY = ["data.size=32", "model.width=0.0625", "model.irse50=false", "model.n_mean_latent=64"]


@pytest.fixture(scope="module")
def decoder_file(tmp_path_factory):
    """A tiny random StyleGAN2 (32 px, 16-d styles) in rosinality's format, with its latent_avg."""
    torch.manual_seed(0)
    g = Generator(32, 16, 2, channel_multiplier=1, narrow=1 / 32)
    path = tmp_path_factory.mktemp("decoder") / "g.pt"
    save_rosinality(path, g, g.mean_latent(64)[0])
    return path


def model_of(decoder_file, *overrides):
    return build_model("model=psp", *TINY, f"model.decoder={decoder_file}", *overrides)


def tiny_batch(model, n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    channels = model.hparams.input_nc
    return {"image": torch.rand(n, channels, 32, 32, generator=g) * 2 - 1,
            "target": torch.rand(n, 3, 32, 32, generator=g) * 2 - 1}


def test_official_recipes_are_the_task_configs():
    """The README's per-task lambdas, Ranger's official hyper-parameters, input channels."""
    def loss(name):
        return dict(compose("train", [f"model={name}"]).model.loss.encoder)

    assert loss("psp") == {"l2": 1.0, "lpips": 0.8, "id": 0.1, "w_norm": 0.0, "l2_crop": 0.0, "lpips_crop": 0.0,
                           "moco": 0.0}
    assert loss("psp_frontalize") == {"l2": 0.001, "lpips": 0.08, "id": 1.0, "w_norm": 0.005, "l2_crop": 0.01,
                                      "lpips_crop": 0.8, "moco": 0.0}
    for task in ("psp_sketch2face", "psp_seg2face"):
        assert loss(task) == {**loss("psp"), "id": 0.0, "w_norm": 0.005}
    assert loss("psp_superres") == {**loss("psp"), "w_norm": 0.005}
    channels = {m: compose("train", [f"model={m}"]).model.input_nc
                for m in ("psp", "psp_frontalize", "psp_sketch2face", "psp_seg2face", "psp_superres")}
    assert channels == {"psp": 3, "psp_frontalize": 3, "psp_sketch2face": 1, "psp_seg2face": 19, "psp_superres": 3}
    assert compose("train", ["model=psp_toonify"]).model.decoder != compose("train", ["model=psp"]).model.decoder
    opt = compose("train", ["model=psp"]).model.optimizers.encoder
    assert (opt._target_, opt.lr, list(opt.betas), opt.alpha, opt.k) == ("pytorch_optimizer.Ranger", 1e-4,
                                                                          [0.95, 0.999], 0.5, 6)


def test_only_the_encoder_is_optimised(decoder_file):
    model = model_of(decoder_file)
    (optimizer,) = model.configure_optimizers()
    optimised = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert optimised == {id(p) for p in model.psp.encoder.parameters()}
    assert type(optimizer).__name__ == "Ranger"
    assert not any(p.requires_grad for p in model.psp.decoder.parameters())

    model = model_of(decoder_file, "model.train_decoder=true")
    optimised = {id(p) for group in model.configure_optimizers()[0].param_groups for p in group["params"]}
    assert {id(p) for p in model.psp.decoder.parameters()} <= optimised


def test_terms_are_the_coach_formulas(decoder_file):
    model = model_of(decoder_file, "model.loss.encoder.w_norm=0.005", "model.loss.encoder.l2_crop=0.01",
                     "model.frozen.lpips_loss=null", "model.frozen.identity_loss=null")
    assert set(model.terms_off) == {"encoder.lpips", "encoder.lpips_crop", "encoder.id"}
    batch = tiny_batch(model)
    torch.manual_seed(1)
    terms = model.encoder_terms(batch)
    assert set(terms) == {"l2", "w_norm", "l2_crop"}
    torch.manual_seed(1)
    y_hat, codes = model(batch["image"])
    torch.testing.assert_close(terms["l2"], ((y_hat - batch["target"]) ** 2).mean())
    # criteria/w_norm.py: sum over the batch of ||w - w_avg|| over all styles and features, / batch
    expected = (codes - model.psp.latent_avg).flatten(1).norm(dim=1).sum() / codes.shape[0]
    torch.testing.assert_close(terms["w_norm"], expected)
    # the inner-face crop [35:223, 32:220] of 256 px is [4:28, 4:28] at 32 px
    crop = ((y_hat[..., 4:28, 4:28] - batch["target"][..., 4:28, 4:28]) ** 2).mean()
    torch.testing.assert_close(terms["l2_crop"], crop)


def test_w_norm_without_latent_avg():
    w = torch.ones(2, 3, 4)
    assert torch.allclose(losses.w_norm(w), torch.tensor(12.0).sqrt())


def test_identity_loss_and_moco_are_exclusive(decoder_file):
    with pytest.raises(ConfigError, match="mutually exclusive"):
        model_of(decoder_file, "model.loss.encoder.moco=0.5")


def test_task_must_match_input_channels(decoder_file):
    with pytest.raises(ConfigError, match="input_nc"):
        model_of(decoder_file, "model.task=seg2face")


def test_missing_decoder_is_one_line_with_the_command(tmp_path):
    with pytest.raises(FacezooError) as err:
        model_of(tmp_path / "nothing.pt")
    message = str(err.value)
    assert "nothing.pt" in message and "export_stylegan2.py" in message and "\n" not in message


def test_checkpoint_is_self_contained(decoder_file, tmp_path, monkeypatch):
    """Train two tiny batches, delete the decoder file, reload: same decoder, same outputs."""
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "decoder.pt"
    local.write_bytes(decoder_file.read_bytes())
    cfg = compose("train", ["model=psp", *TINY, f"model.decoder={local}", "data.batch_size=2",
                            "data.num_workers=0", "data.splits.train.length=4", "data.splits.val.length=2",
                            "data.splits.val.num_identities=2", "data.splits.train.num_identities=2",
                            "trainer=cpu", "trainer.max_epochs=1", "trainer.limit_val_batches=1",
                            "trainer.val_check_interval=null", "trainer.num_sanity_val_steps=0",
                            "callbacks.rich_progress_bar=null", "logger=csv", f"paths.output_dir={tmp_path}",
                            "paths.work_dir=.", "model.frozen.lpips_loss=null", "model.frozen.identity_loss=null"])
    metrics = train(cfg)
    assert "val/loss" in metrics and "val/mse" in metrics
    reference = model_of(decoder_file)
    local.unlink()
    model, datamodule, _ = facezoo.load(tmp_path / "checkpoints" / "last.ckpt")
    decoder = {k: v for k, v in model.state_dict().items() if k.startswith("psp.decoder.")}
    assert decoder and all(torch.equal(v, reference.state_dict()[k]) for k, v in decoder.items())
    encoder_changed = any(not torch.equal(v, reference.state_dict()[k]) for k, v in model.state_dict().items()
                          if k.startswith("psp.encoder."))
    assert encoder_changed
    batch = {k: v[None] for k, v in datamodule.dataset("val")[0].items() if torch.is_tensor(v)}
    assert model.predict_batch(batch).shape == (1, 3, 32, 32)


def test_baselines_per_task(decoder_file):
    model = model_of(decoder_file)
    assert set(model.evaluation_baselines(None)) == {"mean_latent"}
    assert set(model.evaluation_baselines(None, projection_steps=[2])) == {"mean_latent", "projection_2"}
    batch = tiny_batch(model)
    out = model.evaluation_baselines(None, projection_steps=[2])["projection_2"](batch)
    assert out.shape == batch["target"].shape
    mean = model.evaluation_baselines(None)["mean_latent"](batch)
    assert torch.allclose(mean[0], mean[1])      # w̄ does not depend on the input
    superres = model_of(decoder_file, "model.task=superres")
    assert set(superres.evaluation_baselines(None)) == {"mean_latent", "bicubic"}
    seg = model_of(decoder_file, "model.task=seg2face", "model.input_nc=19")
    rows = seg.sample_rows(tiny_batch(seg))
    assert set(rows) == {"input", "target", "pSp", "pSp, random fine styles"}
    assert rows["input"].shape == (2, 3, 32, 32)
