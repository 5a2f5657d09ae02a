"""PSGAN's LightningModule: the three-optimizer GAN step, loss terms and weights, regions, baselines, CLI."""

from __future__ import annotations

import json
import logging

import lightning as L
import numpy as np
import pytest
import torch
from conftest import ROOT, run_module
from hydra.errors import InstantiationException
from torch.utils.data import DataLoader, Dataset, default_collate

from facezoo import losses
from facezoo.config import build_model, compose
from facezoo.data.synthetic import SyntheticMakeup
from facezoo.face import photo
from facezoo.face.labels import CELEBAMASK_HQ
from facezoo.methods.psgan.inference import _downsample_faces, predict
from facezoo.methods.psgan.module import histogram_matching_baseline
from facezoo.metrics import region_histogram_distance
from facezoo.nets.vgg import VGGFeatures
from facezoo.utils import FacezooError

SIZE = 32
#: 32-pixel faces, 1/8 width; the perceptual term off unless a test gives VGG weights.
TINY = [f"data.size={SIZE}", "model.width=0.125"]
NO_VGG = "model.frozen.perceptual_loss=null"
G_TERMS = ("adversarial", "identity", "cycle", "makeup_lip", "makeup_skin", "makeup_eye")
OPTIMIZERS = ("generator", "discriminator_a", "discriminator_b")


def tiny(*overrides: str):
    return build_model("model=psgan", *TINY, *overrides)


def construction_error(*overrides: str) -> BaseException:
    """The error the constructor raises: a config error wrapped by Hydra (its cause), or a missing file as one
    FacezooError line (facezoo.config.instantiate_model)."""
    with pytest.raises((InstantiationException, FacezooError)) as info:
        tiny(*overrides)
    return info.value.__cause__ if isinstance(info.value, InstantiationException) else info.value

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
@pytest.mark.parametrize(("g_every", "phases", "steps"), [
    (1, ["d_a", "d_b", "g"] * 2, 2 * 3),
    (2, ["d_a", "d_b", "d_a", "d_b", "g"], 2 * 2 + 1),
])
def test_three_optimizers_and_the_g_step_ratio(triples, g_every, phases, steps):
    """Per batch: D_A, D_B, then G (official G_STEP: G only on every g_every-th batch, the last of each group)."""
    model = tiny(NO_VGG, f"model.g_every={g_every}")
    assert [p.name for p in model.phases] == ["d_a", "d_b", "g"]
    ran = []
    for name in ("d_a", "d_b", "g"):
        original = getattr(model, f"{name}_terms")
        setattr(model, f"{name}_terms", lambda step, original=original, name=name: ran.append(name) or original(step))
    calls = []
    for name, net in (("A", model.discriminator_a), ("B", model.discriminator_b)):
        net.register_forward_hook(lambda *a, n=name: calls.append(n))
    trainer = fit(model, triples)
    assert ran == phases
    assert trainer.global_step == steps
    # D_A main sees real and fake, then D_B main; G main judges its outputs by both
    assert calls[:4] == ["A", "A", "B", "B"]
    g_steps = steps - 2 * 2
    assert calls.count("A") == calls.count("B") == 2 * 2 + g_steps
    assert model.batches_seen == 2
    assert len(trainer.optimizers) == 3
    assert all(opt.defaults["lr"] == 2e-4 and opt.defaults["betas"] == (0.5, 0.999) for opt in trainer.optimizers)


def test_all_networks_learn_and_every_term_is_logged(triples):
    model = tiny(NO_VGG)
    assert model.terms_off == {"g.perceptual": "model.frozen.perceptual_loss is null"}
    before = {n: {k: v.clone() for k, v in getattr(model, n).state_dict().items()}
              for n in ("generator", "discriminator_a", "discriminator_b")}
    trainer = fit(model, triples)
    for name, state in before.items():
        now = getattr(model, name).state_dict()
        assert any(not torch.equal(v, now[k]) for k, v in state.items()), f"{name} did not change"
    logged = set(trainer.callback_metrics)
    assert {f"train/g_{t}" for t in (*G_TERMS, "total")} <= logged
    assert {"train/d_a_adversarial", "train/d_b_adversarial", "train/d_a_total", "train/d_b_total"} <= logged
    assert "train/g_perceptual" not in logged  # switched off without VGG weights
    assert {"val/l1", "val/psnr", "val/ssim", "val/hist_lip", "val/hist_skin", "val/hist_eye",
            "val/hist_ref_lip", "val/l1_input"} <= logged


def linear_decay(decay_epochs: int, total_epochs: int) -> list[str]:
    """The official NUM_EPOCHS_DECAY for G, D_A and D_B, as ``model.schedulers`` overrides."""
    return [f"+model.schedulers.{name}={{_target_: facezoo.optim.LinearDecay, _partial_: true, "
            f"total_epochs: {total_epochs}, decay_epochs: {decay_epochs}}}" for name in OPTIMIZERS]


def test_official_linear_lr_decay(triples):
    """NUM_EPOCHS_DECAY = D of N epochs: lr0 until epoch N − D, then lr0 · (1 − k / D) after k decay epochs."""
    seen = []

    class Record(L.Callback):
        def on_train_epoch_start(self, trainer, module):
            seen.append([group["lr"] for opt in trainer.optimizers for group in opt.param_groups])

    model = tiny(NO_VGG, *linear_decay(2, 3))
    assert set(model.scheduler_factories) == set(OPTIMIZERS)
    trainer = fit(model, triples, batches=1, max_epochs=3, callbacks=[Record()], limit_val_batches=0)
    assert [row[0] for row in seen] == pytest.approx([2e-4, 2e-4, 1e-4])
    assert all(len(set(row)) == 1 for row in seen)  # G, D_A and D_B decay together
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.0
    with pytest.raises(ValueError, match="LinearDecay needs 0 <= decay_epochs <= total_epochs"):
        fit(tiny(NO_VGG, *linear_decay(2, 1)), triples, batches=1, max_epochs=1)


def test_terms_by_hand_and_the_weighted_sum(batch):
    """Each G term is the sum over the two directions of the official per-direction loss; each D phase is
    LSGAN on its domain's real faces against the generated ones."""
    model = tiny(NO_VGG).eval()
    step = model.prepare_batch(batch)
    x, y = step["x"], step["y"]
    torch.manual_seed(0)
    terms = model.g_terms(step)
    assert set(terms) == set(G_TERMS)
    g = model.generate
    fake_a, fake_b = g(x, y), g(y, x)
    torch.testing.assert_close(step["fake"], torch.cat([fake_a, fake_b]), rtol=1e-5, atol=1e-5)
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
    expected = sum(w["g"][k] * terms[k] for k in G_TERMS)
    torch.testing.assert_close(model.weighted_sum("g", terms), expected)
    for phase, d, real, fake in (("d_a", model.discriminator_a, y.image, fake_a),
                                 ("d_b", model.discriminator_b, x.image, fake_b)):
        d_terms = getattr(model, f"{phase}_terms")(step)
        by_hand = ((d(real) - 1) ** 2).mean() + (d(fake) ** 2).mean()
        torch.testing.assert_close(d_terms["adversarial"], by_hand, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model.weighted_sum(phase, d_terms), 0.5 * by_hand, rtol=1e-5, atol=1e-6)


def test_makeup_loss_has_detached_targets(batch):
    """The makeup term's gradient reaches G's output as an L1 to a constant (histogram-matched) target."""
    model = tiny(NO_VGG)
    x, y = model.faces(batch)
    outputs = []

    def keep(module, args, out):
        out.retain_grad()
        outputs.append(out)

    model.generator.register_forward_hook(keep)
    terms = model.g_terms({"x": x, "y": y})
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
    model = tiny(NO_VGG, "model.loss.g.cycle=7.0", "model.loss.g.makeup_skin=0.3", "model.loss.d_a.adversarial=2")
    assert model.loss_weights["g"]["cycle"] == 7.0 and model.loss_weights["g"]["makeup_skin"] == 0.3
    assert model.loss_weights["g"]["identity"] == 2.5 and model.loss_weights["d_b"]["adversarial"] == 0.5
    assert model.loss_weights["d_a"]["adversarial"] == 2.0
    for override, message in (("+model.loss.g.cycel=1.0", "model.loss.g: unknown term 'cycel'"),
                              ("+model.loss.d.adversarial=1.0", "model.loss: unknown phase 'd'"),
                              ("model.loss.g.identity=-1", "model.loss.g.identity must be a number >= 0")):
        error = construction_error(NO_VGG, override)
        assert isinstance(error, ValueError) and str(error).startswith(message), error
    error = construction_error(NO_VGG, "+model.optimizers.discriminator={_target_: torch.optim.Adam, _partial_: true}")
    assert isinstance(error, ValueError) and "model.optimizers must name exactly" in str(error)


def test_config_weights_are_the_official_products():
    loss = compose("train", ["model=psgan"]).model.loss
    assert loss.g.identity == 0.5 * 10 * 0.5 and loss.g.cycle == 10 * 0.5
    assert loss.g.perceptual == pytest.approx(5e-3 * 10 * 0.5)
    assert (loss.g.makeup_lip, loss.g.makeup_skin, loss.g.makeup_eye, loss.g.adversarial) == (1.0, 0.1, 1.0, 1.0)
    assert loss.d_a.adversarial == loss.d_b.adversarial == 0.5


def _documented_official_schedule(path) -> list[str]:
    line = next(line for line in path.read_text().splitlines() if "python -m facezoo.train model=psgan data." in line)
    return line.split("python -m facezoo.train", 1)[1].split("#")[0].split()


def test_the_official_schedule_is_model_psgan_with_the_documented_settings():
    """No psgan_official: the YAML and the doc give the official schedule as overrides of model=psgan
    (wtjiang98/PSGAN psgan/config.py: 256², batch 1, 50 epochs, G_STEP 1, Adam 2e-4 (0.5, 0.999), no decay)."""
    assert "psgan_official" not in (p.stem for p in (ROOT / "conf" / "model").glob("*.yaml"))
    yaml_cmd = _documented_official_schedule(ROOT / "conf" / "model" / "psgan.yaml")
    assert yaml_cmd == _documented_official_schedule(ROOT / "docs" / "methods" / "psgan.md")
    cfg = compose("train", yaml_cmd)
    assert cfg.model._target_ == "facezoo.methods.psgan.module.PSGAN" and cfg.model.g_every == 1
    assert cfg.data.dataset._target_ == "facezoo.data.synthetic.SyntheticMakeup"
    assert (cfg.data.size, cfg.data.batch_size, cfg.trainer.max_epochs) == (256, 1, 50)
    assert cfg.model.width == 1.0 and not cfg.model.schedulers
    for name in OPTIMIZERS:
        opt = cfg.model.optimizers[name]
        assert opt._target_ == "torch.optim.Adam" and opt.lr == 2e-4 and list(opt.betas) == [0.5, 0.999]


def test_regions_come_from_the_masks_and_landmarks(batch):
    model = tiny(NO_VGG)
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
    model = tiny(NO_VGG).eval()
    x, y = model.faces(batch)
    out = model.predict_batch(batch)
    torch.testing.assert_close(out, model.generate(x, y), rtol=1e-5, atol=1e-5)
    assert out.shape == (2, 3, SIZE, SIZE) and out.abs().max() <= 1
    torch.testing.assert_close(predict(model, batch), out)      # at image_size the photo pipeline is predict_batch


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
    model = tiny(NO_VGG).eval()
    with pytest.raises(ValueError, match=f"built for {SIZE}x{SIZE} faces"):
        model.predict_batch(big)                    # the module runs no photo pipeline
    out = predict(model, big)
    assert out.shape == big["image"].shape and out.abs().max() <= 1
    assert torch.allclose((out + 1) * 127.5, ((out + 1) * 127.5).round(), atol=1e-3)   # an 8-bit photo
    # a generator that returns its input gives back the source: up(down(x)) + (x − up(down(x)))
    monkeypatch.setattr(model.generator, "apply", lambda image, gamma, beta: image)
    same = predict(model, big)
    assert (same - big["image"]).abs().mean() < 0.02
    with pytest.raises(ValueError, match="smaller"):
        predict(build_model("model=psgan", f"data.size={4 * SIZE}", "model.width=0.125", NO_VGG), big)


def test_image_size_is_checked(batch):
    with pytest.raises(ValueError, match="built for 64x64 faces"):
        build_model("model=psgan", "data.size=64", "model.width=0.125", NO_VGG).faces(batch)


# ---------------------------------------------------------------------------------------------- VGG
def test_perceptual_loss_with_vgg_weights_in_the_torchvision_format(tmp_path, batch):
    from torchvision.models import vgg16

    path = tmp_path / "vgg16-397923af.pth"
    torch.save(vgg16().state_dict(), path)
    model = tiny(f"model.frozen.perceptual_loss.build.weights={path}", "model.frozen.perceptual_loss.required=true")
    assert model.loss_weights["g"]["perceptual"] == 0.025 and model.wants("g", "perceptual") and not model.terms_off
    x, y = model.faces(batch)
    terms = model.g_terms({"x": x, "y": y})
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


def test_perceptual_loss_missing_weights(caplog, batch):
    with caplog.at_level(logging.WARNING):
        model = tiny()      # required: false, imagenet VGG16 not in the (empty) test cache
    assert model.perceptual_loss is None and not model.wants("g", "perceptual")
    assert model.loss_weights["g"]["perceptual"] == 0.025      # the configured weight stays; the term is off
    assert "vgg16-397923af.pth" in model.terms_off["g.perceptual"]
    assert "loss term g.perceptual off" in caplog.text and "vgg16-397923af.pth" in caplog.text
    x, y = model.faces(batch)
    assert "perceptual" not in model.g_terms({"x": x, "y": y})
    error = construction_error("model.frozen.perceptual_loss.required=true")
    assert isinstance(error, FacezooError) and "vgg16-397923af.pth" in str(error) and "\n" not in str(error)


# ------------------------------------------------------------------------------------- evaluation
def test_baselines_do_what_they_claim(batch):
    model = tiny(NO_VGG)
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
    model = tiny(NO_VGG)
    values = model.evaluation_metrics(batch["target"], batch)
    assert values["l1"] == 0 and values["ssim"] > 0.999
    assert all(values[f"hist_{r}"] == 0 for r in ("lip", "skin", "eye"))
    no_target = {k: v for k, v in batch.items() if not k.startswith("target")}
    values = model.evaluation_metrics(batch["image"], no_target)  # real MT: no ground truth
    assert set(values) == {"hist_ref_lip", "hist_ref_skin", "hist_ref_eye"}
    assert all(torch.is_tensor(v) and v.ndim == 0 and 0 < v <= 2 for v in values.values())


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
    import facezoo

    ckpt = tiny_psgan_run / "checkpoints" / "last.ckpt"
    model, datamodule, _ = facezoo.load(ckpt, {"dataset": {"size": 2 * SIZE}})
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
