"""PSGAN's LightningModule: the three-optimizer GAN step, loss terms and weights, regions, baselines, CLI."""

from __future__ import annotations

import json
import logging

import lightning as L
import numpy as np
import pytest
import torch
from conftest import run_module
from torch.utils.data import DataLoader, Dataset, default_collate

from facezoo import losses
from facezoo.data.synthetic import SyntheticMakeup
from facezoo.face import photo
from facezoo.face.labels import CELEBAMASK_HQ
from facezoo.methods.psgan.module import PSGAN, _downsample_faces, histogram_matching_baseline
from facezoo.metrics import region_histogram_distance
from facezoo.nets.vgg import VGGFeatures

SIZE = 32
TINY = dict(image_size=SIZE, width=0.125, perceptual_net={"weights": None})
G_TERMS = ("adversarial", "identity", "cycle", "makeup_lip", "makeup_skin", "makeup_eye")

#: PSGAN small enough for a CPU test (the TINY_TPGAN pattern of tests/conftest.py).
TINY_PSGAN = [
    "experiment=psgan_cpu", "data.size=32", "data.batch_size=2", "data.num_workers=0",
    "data.splits.train.length=8", "data.splits.train.num_identities=4", "data.splits.val.length=2",
    "data.splits.val.num_identities=2", "data.splits.test.length=4", "data.splits.test.num_identities=2",
    "model.width=0.125", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1", "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]


class Triples(Dataset):
    """A few synthetic makeup triples at 32 px (rendered once)."""

    def __init__(self, n: int = 4):
        view = SyntheticMakeup(size=SIZE, length=n, num_identities=4, seed=1)
        self.samples = [view[i] for i in range(n)]

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        return self.samples[i]


@pytest.fixture(scope="module")
def triples() -> Triples:
    return Triples()


@pytest.fixture(scope="module")
def batch(triples) -> dict:
    return default_collate([triples[i] for i in range(2)])


def fit(model, data, batches=2, **trainer_kwargs):
    kwargs = dict(max_epochs=1, limit_train_batches=batches, limit_val_batches=1, accelerator="cpu", logger=False,
                  enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                  num_sanity_val_steps=0)
    trainer = L.Trainer(**{**kwargs, **trainer_kwargs})
    loader = DataLoader(data, batch_size=2)
    trainer.fit(model, loader, loader)
    return trainer


# ---------------------------------------------------------------------------------------------- the step
@pytest.mark.parametrize(("g_every", "steps"), [(1, 2 * 3), (2, 2 * 2 + 1)])
def test_three_optimizers_and_the_g_step_ratio(triples, g_every, steps):
    """Per batch: D_A, D_B, then G (official G_STEP: G only on every g_every-th batch)."""
    model = PSGAN(**TINY, g_every=g_every)
    calls = []
    for name, net in (("A", model.discriminator_a), ("B", model.discriminator_b)):
        net.register_forward_hook(lambda *a, n=name: calls.append(n))
    trainer = fit(model, triples)
    assert trainer.global_step == steps
    # D_A main sees real and fake, then D_B main; G main judges its outputs by both
    assert calls[:4] == ["A", "A", "B", "B"]
    g_steps = steps - 2 * 2
    assert calls.count("A") == calls.count("B") == 2 * 2 + g_steps
    assert model.batches_seen == 2
    assert len(trainer.optimizers) == 3
    assert all(opt.defaults["lr"] == 2e-4 and opt.defaults["betas"] == (0.5, 0.999) for opt in trainer.optimizers)


def test_all_networks_learn_and_every_term_is_logged(triples):
    model = PSGAN(**TINY)
    before = {n: {k: v.clone() for k, v in getattr(model, n).state_dict().items()}
              for n in ("generator", "discriminator_a", "discriminator_b")}
    trainer = fit(model, triples)
    for name, state in before.items():
        now = getattr(model, name).state_dict()
        assert any(not torch.equal(v, now[k]) for k, v in state.items()), f"{name} did not change"
    logged = set(trainer.callback_metrics)
    assert {f"train/g_{t}" for t in (*G_TERMS, "total")} <= logged
    assert {"train/d_adversarial_a", "train/d_adversarial_b"} <= logged
    assert "train/g_perceptual" not in logged  # switched off without VGG weights
    assert {"val/l1", "val/psnr", "val/ssim", "val/hist_lip", "val/hist_skin", "val/hist_eye",
            "val/hist_ref_lip", "val/l1_input"} <= logged


def test_official_linear_lr_decay(triples):
    """NUM_EPOCHS_DECAY = D of N epochs: lr0 until epoch N − D, then lr0 · (1 − k / D) after k decay epochs."""
    seen = []

    class Record(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.append([group["lr"] for opt in trainer.optimizers for group in opt.param_groups])

    model = PSGAN(**TINY, lr_decay_epochs=2)
    trainer = fit(model, triples, batches=1, max_epochs=3, callbacks=[Record()], limit_val_batches=0)
    assert [row[0] for row in seen] == pytest.approx([2e-4, 2e-4, 1e-4])
    assert all(len(set(row)) == 1 for row in seen)  # G, D_A and D_B decay together
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.0
    with pytest.raises(ValueError, match="lr_decay_epochs=2 needs trainer.max_epochs >= 2"):
        fit(PSGAN(**TINY, lr_decay_epochs=2), triples, batches=1, max_epochs=1)


def test_terms_by_hand_and_the_weighted_sum(batch):
    """Each G term is the sum over the two directions of the official per-direction loss."""
    model = PSGAN(**TINY).eval()
    x, y = model.faces(batch)
    torch.manual_seed(0)
    terms = model.generator_terms(x, y)
    g = model.generate
    fake_a, fake_b = g(x, y), g(y, x)
    torch.testing.assert_close(terms["identity"], (g(x, x) - x.image).abs().mean() + (g(y, y) - y.image).abs().mean())
    cyc = (g(x.with_image(fake_a), x) - x.image).abs().mean() + (g(y.with_image(fake_b), y) - y.image).abs().mean()
    torch.testing.assert_close(terms["cycle"], cyc)
    adv = ((model.discriminator_a(fake_a) - 1) ** 2).mean() + ((model.discriminator_b(fake_b) - 1) ** 2).mean()
    torch.testing.assert_close(terms["adversarial"], adv)
    for i, region in enumerate(("lip", "skin", "eye")):
        by_hand = (losses.makeup_loss(fake_a, x.regions[:, i], y.image, y.regions[:, i])
                   + losses.makeup_loss(fake_b, y.regions[:, i], x.image, x.regions[:, i]))
        torch.testing.assert_close(terms[f"makeup_{region}"], by_hand, rtol=1e-4, atol=1e-4)
    w = model.loss_weights
    expected = sum(w[k] * terms[k] for k in G_TERMS)
    torch.testing.assert_close(model.weighted_sum(terms), expected)


def test_makeup_loss_has_detached_targets(batch):
    """The makeup term's gradient reaches G's output as an L1 to a constant (histogram-matched) target."""
    model = PSGAN(**TINY)
    x, y = model.faces(batch)
    outputs = []

    def keep(module, args, out):
        out.retain_grad()
        outputs.append(out)

    model.generator.register_forward_hook(keep)
    terms = model.generator_terms(x, y)
    fake = outputs[0]                                     # [G(x, y); G(y, x)], the first generator call
    terms["makeup_lip"].backward()
    inside = torch.cat([x.regions[:, :1], y.regions[:, :1]]).expand_as(fake) > 0
    assert torch.all(fake.grad[~inside] == 0)
    # 2 · mean over the 2B·3·H·W elements of |(f + 1)/2 · 255 − t|: ±255 / N on every region pixel, nothing
    # from the target's side (a target depending on f would change these values)
    scale = 255 / fake.numel()
    assert torch.allclose(fake.grad[inside].abs(), torch.full_like(fake.grad[inside], scale), rtol=1e-4)
    assert all(o.grad is None or not o.grad.any() for o in outputs[1:])  # identity / cycle passes: no makeup


def test_weights_come_from_the_config():
    model = PSGAN(**TINY, loss={"cycle": 7.0, "makeup_skin": 0.3})
    assert model.loss_weights["cycle"] == 7.0 and model.loss_weights["makeup_skin"] == 0.3
    assert model.loss_weights["identity"] == 2.5 and model.loss_weights["d_adversarial"] == 0.5
    with pytest.raises(ValueError, match="unknown PSGAN loss terms"):
        PSGAN(**TINY, loss={"cycel": 1.0})


def test_config_weights_are_the_official_products():
    from conftest import ROOT
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for name in ("psgan", "psgan_official"):
            cfg = compose("train", overrides=[f"model={name}", "paths.output_dir=/tmp/x"])
            loss = cfg.model.loss
            assert loss.identity == 0.5 * 10 * 0.5 and loss.cycle == 10 * 0.5
            assert loss.perceptual == pytest.approx(5e-3 * 10 * 0.5)
            assert (loss.makeup_lip, loss.makeup_skin, loss.makeup_eye) == (1.0, 0.1, 1.0)
            assert loss.d_adversarial == 0.5 and cfg.model.g_every == 1 and cfg.model.lr_decay_epochs == 0
            assert cfg.data.dataset._target_ == "facezoo.data.synthetic.SyntheticMakeup" and cfg.data.size == 256


def test_regions_come_from_the_masks_and_landmarks(batch):
    model = PSGAN(**TINY)
    x, y = model.faces(batch)
    assert x.regions.shape == (2, 3, SIZE, SIZE) and x.regions.dtype == torch.float32
    lip = torch.isin(batch["mask"], torch.tensor([CELEBAMASK_HQ.index("u_lip"), CELEBAMASK_HQ.index("l_lip")]))
    assert torch.equal(x.regions[:, 0] > 0, lip)
    skin_or_nose = torch.isin(batch["mask"], torch.tensor([CELEBAMASK_HQ.index("skin"), CELEBAMASK_HQ.index("nose")]))
    assert torch.equal((x.regions[:, 1] + x.regions[:, 2]) > 0, skin_or_nose)  # eye boxes are cut out of skin
    eye_rows = (x.regions[0, 2] > 0).any(1).nonzero().flatten()
    eye_y = batch["landmarks"][0, 36:48, 1]
    margin = round(16 * SIZE / 256)
    assert eye_rows.min() >= eye_y.min().round() - margin and eye_rows.max() <= eye_y.max().round() + margin
    assert torch.equal(y.regions[:, 0] > 0, torch.isin(batch["reference_mask"], torch.tensor([11, 12])))


def test_predict_is_the_two_pass_inference_and_equals_one_pass(batch):
    model = PSGAN(**TINY).eval()
    x, y = model.faces(batch)
    out = model.predict_batch(batch)
    torch.testing.assert_close(out, model.generate(x, y), rtol=1e-5, atol=1e-5)
    assert out.shape == (2, 3, SIZE, SIZE) and out.abs().max() <= 1


def test_photo_resolution_batches_go_through_the_photo_pipeline(monkeypatch):
    view = SyntheticMakeup(size=2 * SIZE, length=2, num_identities=4, seed=1)
    big = default_collate([view[i] for i in range(2)])
    small = _downsample_faces(big, SIZE)       # what facezoo.infer does to a face crop: 8-bit Lanczos, rounded points
    for key in ("image", "reference"):
        first = photo.resize(np.round(photo.tensor_to_image(big[key][0])).astype(np.uint8), SIZE, "lanczos")
        torch.testing.assert_close(small[key][0], photo.image_to_tensor(first)[0])
    for key in ("landmarks", "reference_landmarks"):
        assert torch.equal(small[key], torch.round(big[key] / 2))
    for key in ("mask", "reference_mask"):
        assert torch.equal(small[key], big[key][:, 1::2, 1::2])         # Pillow's nearest at a factor 2
    model = PSGAN(**TINY).eval()
    out = model.predict_batch(big)
    assert out.shape == big["image"].shape and out.abs().max() <= 1
    assert torch.allclose((out + 1) * 127.5, ((out + 1) * 127.5).round(), atol=1e-3)   # an 8-bit photo
    # a generator that returns its input gives back the source: up(down(x)) + (x − up(down(x)))
    monkeypatch.setattr(model.generator, "apply", lambda image, gamma, beta: image)
    same = model.predict_batch(big)
    assert (same - big["image"]).abs().mean() < 0.02
    with pytest.raises(ValueError, match="smaller"):
        PSGAN(**{**TINY, "image_size": 4 * SIZE}).predict_batch(big)


def test_image_size_is_checked(batch):
    with pytest.raises(ValueError, match="built for 64x64 faces"):
        PSGAN(**{**TINY, "image_size": 64}).faces(batch)


# ---------------------------------------------------------------------------------------------- VGG
def test_perceptual_loss_with_vgg_weights_in_the_torchvision_format(tmp_path, batch):
    from torchvision.models import vgg16

    path = tmp_path / "vgg16-397923af.pth"
    torch.save(vgg16().state_dict(), path)
    model = PSGAN(**{**TINY, "perceptual_net": {"weights": str(path), "required": True}})
    assert model.loss_weights["perceptual"] == 0.025
    x, y = model.faces(batch)
    terms = model.generator_terms(x, y)
    vgg = VGGFeatures("vgg16", layers=("pool5",), weights=str(path), normalize_input=False)
    mse = torch.nn.functional.mse_loss
    # source → makeup keeps the source's content, reference → de-makeup the reference's (official vgg_s, vgg_r)
    by_hand = mse(vgg(model.generate(x, y))[0], vgg(x.image)[0]) + mse(vgg(model.generate(y, x))[0], vgg(y.image)[0])
    torch.testing.assert_close(terms["perceptual"], by_hand, rtol=1e-4, atol=1e-6)
    assert by_hand > 0
    terms["perceptual"].backward()
    assert all(p.grad is None for p in model.perceptual_loss.parameters())  # frozen
    assert next(model.generator.parameters()).grad is not None
    assert not any(k.startswith("perceptual_loss.") for k in model.state_dict())  # not in checkpoints


def test_perceptual_loss_missing_weights(caplog):
    with caplog.at_level(logging.WARNING):
        model = PSGAN(**{**TINY, "perceptual_net": {"weights": "imagenet", "required": False}})
    assert model.perceptual_loss is None and model.loss_weights["perceptual"] == 0.0
    assert "perceptual loss off" in caplog.text and "vgg16-397923af.pth" in caplog.text
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth"):
        PSGAN(**{**TINY, "perceptual_net": {"weights": "imagenet", "required": True}})


# ------------------------------------------------------------------------------------- evaluation
def test_baselines_do_what_they_claim(batch):
    model = PSGAN(**TINY)
    baselines = model.evaluation_baselines(None)
    assert torch.equal(baselines["source"](batch), batch["image"])
    hm = baselines["histogram_matching"](batch)
    x, y = model.faces(batch)
    inside = (x.regions.sum(1, keepdim=True) > 0).expand_as(hm)
    assert torch.equal(hm[~inside], batch["image"][~inside])  # only region pixels change ...
    assert (hm[inside] != batch["image"][inside]).float().mean() > 0.5  # ... and most of them do
    for i in range(3):  # each region gets the reference region's histogram, independently of the others
        alone = losses.histogram_match(x.image, y.image, x.regions[:, i], y.regions[:, i])
        m = (x.regions[:, i:i + 1] > 0).expand_as(hm)
        assert torch.equal(hm[m], alone[m])
    assert torch.equal(histogram_matching_baseline(x, y), hm)
    dist_before = region_histogram_distance(batch["image"], y.image, x.regions, y.regions)
    dist_after = region_histogram_distance(hm, y.image, x.regions, y.regions)
    assert torch.all(dist_after < dist_before)


def test_evaluation_metrics_with_and_without_ground_truth(batch):
    model = PSGAN(**TINY)
    values = model.evaluation_metrics(batch["target"], batch)
    assert values["l1"] == 0 and values["ssim"] > 0.999
    assert all(values[f"hist_{r}"] == 0 for r in ("lip", "skin", "eye"))
    no_target = {k: v for k, v in batch.items() if not k.startswith("target")}
    values = model.evaluation_metrics(batch["image"], no_target)  # real MT: no ground truth
    assert set(values) == {"hist_ref_lip", "hist_ref_skin", "hist_ref_eye"}
    assert all(0 < v <= 2 for v in values.values())


def test_region_histogram_distance_by_hand():
    out = torch.zeros(1, 3, 2, 2)
    out[0, :, 0, 0] = -1.0                      # 1 of 4 pixels in bin 0, the rest in bin 32
    tgt = torch.zeros(1, 3, 2, 2)
    regions = torch.ones(1, 2, 2, 2)
    regions[0, 1] = 0
    regions[0, 1, 1, 1] = 1                     # region 2 = the single pixel (1, 1), identical in both
    d = region_histogram_distance(out, tgt, regions, reduction="none")
    torch.testing.assert_close(d, torch.tensor([[0.5, 0.0]]))  # |1/4 - 0| + |3/4 - 1| = 0.5 per channel
    empty = torch.zeros(1, 2, 2, 2)
    empty[0, 0] = 1
    assert torch.isnan(region_histogram_distance(out, tgt, empty, reduction="none")[0, 1])
    torch.testing.assert_close(region_histogram_distance(out, tgt, empty), torch.tensor([0.5, 0.0]))
    with pytest.raises(ValueError, match=r"\(B, R, H, W\)"):
        region_histogram_distance(out, tgt, torch.ones(1, 2, 3, 3))


# ------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def tiny_psgan_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("psgan_run")
    run_module("facezoo.train", *TINY_PSGAN, f"hydra.run.dir={run_dir}")
    return run_dir


def test_cli_training_run(tiny_psgan_run):
    summary = json.loads((tiny_psgan_run / "metrics.json").read_text())
    assert summary["batches"] == 2 and summary["global_step"] == 2 * 3  # D_A, D_B and G per batch
    for key in ("val/l1", "val/hist_lip", "val/hist_ref_eye"):
        assert summary["metrics"][key] == summary["metrics"][key]  # present, not NaN
    ckpt = torch.load(tiny_psgan_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["facezoo_config"]["model"]["_target_"] == "facezoo.methods.psgan.module.PSGAN"
    assert (tiny_psgan_run / "samples" / "epoch_000.png").is_file()


def test_cli_evaluate_reports_the_baselines(tiny_psgan_run, tmp_path):
    out = tmp_path / "eval.json"
    run_module("facezoo.evaluate", f"ckpt_path={tiny_psgan_run / 'checkpoints' / 'last.ckpt'}", f"out={out}",
               f"hydra.run.dir={tmp_path / 'hydra'}")
    result = json.loads(out.read_text())
    assert result["num_samples"] == 4 and result["model"] == "facezoo.methods.psgan.module.PSGAN"
    m = result["metrics"]
    for prefix in ("", "baseline_source/", "baseline_histogram_matching/"):
        for metric in ("l1", "psnr", "ssim", "hist_lip", "hist_skin", "hist_eye", "hist_ref_lip"):
            assert f"{prefix}{metric}" in m
    assert m["baseline_source/l1"] > 0 and m["baseline_source/l1"] != m["baseline_histogram_matching/l1"]
    assert m["baseline_histogram_matching/hist_ref_lip"] < m["baseline_source/hist_ref_lip"]


def test_evaluate_at_photo_resolution(tiny_psgan_run, tmp_path):
    from facezoo.evaluate import load_checkpoint

    ckpt = tiny_psgan_run / "checkpoints" / "last.ckpt"
    model, datamodule, _ = load_checkpoint(ckpt, {"dataset": {"size": 2 * SIZE}})
    assert model.hparams.image_size == SIZE                      # the checkpoint's config is stored resolved
    assert datamodule.dataset("test")[0]["image"].shape == (3, 2 * SIZE, 2 * SIZE)
    out = tmp_path / "eval.json"
    run_module("facezoo.evaluate", f"ckpt_path={ckpt}", f"out={out}", f"+data_overrides.dataset.size={2 * SIZE}",
               f"hydra.run.dir={tmp_path / 'hydra'}")
    m = json.loads(out.read_text())["metrics"]
    assert m["l1"] > 0 and m["baseline_source/l1"] > 0 and "baseline_histogram_matching/hist_skin" in m


def test_reconstruction_probe_script_learns_the_identity_map():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "psgan_reconstruction_probe.py"
    spec = importlib.util.spec_from_file_location("psgan_reconstruction_probe", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    result = script.main(["--steps", "40", "--every", "20", "--size", "32", "--width", "0.125", "--batch", "2",
                          "--test-samples", "2", "--lr", "2e-3"])
    steps = [step for step, _, _ in result["history"]]
    untrained, trained = result["history"][0][2], result["final_identity_l1"]
    assert steps == [0, 20, 40] and 0 < trained < untrained - 0.05     # the held-out identity L1 goes down
