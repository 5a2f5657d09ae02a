"""MaskGAN's training modules: stage 1 (MaskVAE) and stage 2 (EBST) phases, terms, frozen parts and helpers.

Models come from the YAML (``facezoo.config.build_model``) at 32 px and 1/8 width; the stage-1 MaskVAE of stage 2 is
a small demo-format VAE file written in ``tmp_path`` (or a tiny facezoo stage-1 checkpoint in the fit test).
"""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from facezoo.config import build_model, compose
from facezoo.data.synthetic import SyntheticMaskEdit
from facezoo.face.labels import colorize_labels
from facezoo.methods.maskgan import networks
from facezoo.methods.maskgan.module import (
    MaskGAN,
    MaskVAE,
    ebst_masks,
    interpolate_masks,
    load_mask_vae,
    lsgan_loss,
    perturb_masks,
)
from facezoo.methods.maskgan.official import to_official_state_dict
from facezoo.nets.weights import WeightsNotFoundError
from facezoo.utils import FacezooError

SIZE = 32
TINY = [f"data.size={SIZE}", "model.width=0.125", "data.batch_size=2", "data.num_workers=0"]
VAE_ARCH = {"ngf": 4, "ndf": 4, "latent_dim": 16}


def demo_vae_file(tmp_path, size: int = SIZE):
    """A demo-format MaskVAE state dict (seeded random weights) of a small architecture."""
    torch.manual_seed(0)
    path = tmp_path / f"vae_{size}.pth"
    torch.save(to_official_state_dict(networks.MaskVAE(resolution=size, **VAE_ARCH)), path)
    return path


def maskgan(tmp_path, *overrides: str, vgg: bool = False) -> MaskGAN:
    """``model=maskgan`` at the tiny settings; VGG19 with random weights when ``vgg``, else its terms off."""
    vae = [f"model.frozen.mask_vae.build.path={demo_vae_file(tmp_path)}"]
    vae += [f"model.frozen.mask_vae.build.{k}={v}" for k, v in VAE_ARCH.items()]
    perceptual = "model.frozen.perceptual_loss.build.weights=null" if vgg else "model.frozen.perceptual_loss=null"
    return build_model("model=maskgan", *TINY, *vae, perceptual, *overrides)


def edit_batch(n: int = 2) -> dict:
    ds = SyntheticMaskEdit("train", size=SIZE, length=8, num_identities=4)
    return {k: torch.stack([ds[i][k] for i in range(n)]) for k in ("image", "mask", "target", "target_mask")}


# --------------------------------------------------------------------------------------------------
# stage 2: phases, terms, weights
# --------------------------------------------------------------------------------------------------


def test_phases_optimizers_and_frozen_parts(tmp_path):
    model = maskgan(tmp_path)
    assert [(p.name, p.optimizer, p.at) for p in model.phases] == [
        ("g", "generator", (0,)), ("gb", "generator_blender", (0,)), ("d", "discriminator", (0,))]
    assert model.loss_weights == {"g": {"adversarial": 1.0, "feature_matching": 10.0, "perceptual": 10.0, "l1": 0.0},
                                  "gb": {"adversarial": 1.0, "feature_matching": 10.0, "perceptual": 10.0, "l1": 0.0},
                                  "d": {"real": 0.5, "fake": 0.5, "blend": 0.5}}
    assert set(model.terms_off) == {"g.perceptual", "gb.perceptual"}          # perceptual_loss=null
    assert isinstance(model.mask_vae, networks.MaskVAE) and not model.mask_vae.training
    assert not any(k.startswith("mask_vae.") for k in model.state_dict())     # frozen: not in checkpoints
    params = model.optimizer_parameters()
    assert {id(p) for p in params["generator_blender"]} == {id(p) for p in model.generator.parameters()} | {
        id(p) for p in model.blender.parameters()}
    for name, factory in model.optimizer_factories.items():
        opt = factory(list(params[name]))
        assert opt.defaults["lr"] == 5e-5 and opt.defaults["betas"] == (0.5, 0.999), name
    cfg = compose("train", ["model=maskgan"])
    assert cfg.model.schedulers.generator.total_epochs == 200 and cfg.model.schedulers.generator.decay_epochs == 100
    assert cfg.data.size == 512 and cfg.model.ngf == 64 and cfg.model.num_d == 2


def test_lsgan_loss_hand_computed():
    outputs = [[torch.zeros(1, 4, 2, 2), torch.full((1, 1, 2, 2), 0.5)], [torch.full((2, 1, 3, 3), -1.0)]]
    # scales are summed (pix2pixHD GANLoss): (0.5 - 1)^2 + (-1 - 1)^2 ; to 0: 0.25 + 1
    assert lsgan_loss(outputs, 1.0).item() == pytest.approx(4.25)
    assert lsgan_loss(outputs, 0.0).item() == pytest.approx(1.25)
    with pytest.raises(ValueError, match="list over scales"):
        lsgan_loss(torch.zeros(1), 1.0)


def test_d_terms_are_lsgan_on_every_scale_of_separate_calls(tmp_path):
    torch.manual_seed(0)
    model = maskgan(tmp_path)
    step = model.prepare_batch(edit_batch())
    terms = model.d_terms(step)
    assert set(terms) == {"real", "fake", "blend"}
    d, mask = model.discriminator, step["mask"]
    with torch.no_grad():
        expected = {"real": sum((s[-1] - 1).square().mean() for s in d(step["image"], mask)),
                    "fake": sum(s[-1].square().mean() for s in d(step["fake"], mask)),
                    "blend": sum(s[-1].square().mean() for s in d(step["blend"], mask))}
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value.item(), rel=1e-4), name
    # the blend judged by D is the blender's fusion of the two simulated edits' renderings, in the real image's style
    g = model.generator
    with torch.no_grad():
        style = g.encode_style(mask, step["image"])
        inter = [g.render(m, style) for m in step["inter"]]
        assert torch.allclose(step["blend"], model.blender(*inter)[0], atol=1e-5)
        assert torch.allclose(step["fake"], g.render(mask, style), atol=1e-5)


def test_g_terms_feature_matching_weighted_as_pix2pixhd_and_vgg19_perceptual(tmp_path):
    torch.manual_seed(0)
    model = maskgan(tmp_path, vgg=True)
    assert not model.terms_off and model.hparams.d_layers == 3 and model.hparams.num_d == 2
    step = model.prepare_batch(edit_batch())
    terms = model.g_terms(step)
    assert set(terms) == {"adversarial", "feature_matching", "perceptual"}
    mask, image, d = step["mask"], step["image"], model.discriminator
    with torch.no_grad():
        fake = model.generator(mask, mask, image)
        out_fake, out_real = d(fake, mask), d(image, mask)
        # 4 / (n_layers_D + 1) per matched layer (5 outputs per scale, the last the logits), 1 / num_D per scale
        fm = sum(4 / 4 / 2 * (f - r).abs().mean()
                 for sf, sr in zip(out_fake, out_real) for f, r in zip(sf[:-1], sr[:-1]))
        adv = sum((s[-1] - 1).square().mean() for s in out_fake)
        net = model.perceptual_loss.feature_net
        weights = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1]
        vgg = sum(w * (a - b).abs().mean() for w, a, b in zip(weights, net(fake), net(image)))
    assert len(net(image)) == 5 and net.layers == ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert terms["feature_matching"].item() == pytest.approx(fm.item(), rel=1e-4)
    assert terms["adversarial"].item() == pytest.approx(adv.item(), rel=1e-4)
    assert terms["perceptual"].item() == pytest.approx(vgg.item(), rel=1e-4)
    gb = model.gb_terms(step)
    assert set(gb) == {"adversarial", "feature_matching", "perceptual"} and all(v > 0 for v in gb.values())
    # G + B: the gradient reaches the blender and the generator, not the discriminator (toggled by the base)
    model.weighted_sum("gb", gb).backward()
    assert all(p.grad is not None for p in model.blender.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.generator.parameters())


def test_encoder_init_kaiming_makes_the_style_depend_on_the_face(tmp_path):
    batch = edit_batch(4)
    spreads = {}
    for init in ("demo", "kaiming"):
        torch.manual_seed(0)
        model = maskgan(tmp_path, f"model.encoder_init={init}")
        with torch.no_grad():
            spreads[init] = model.generator.encode_style(batch["mask"], batch["image"]).std(0).mean().item()
    assert spreads["demo"] < 1e-5 < 1e-3 < spreads["kaiming"]      # the demo's N(0, 0.02): a constant style
    with pytest.raises(ValueError, match="encoder_init"):
        maskgan(tmp_path, "model.encoder_init=xavier")


def test_l1_term_is_off_in_the_recipe_and_the_rendering_error_when_on(tmp_path):
    torch.manual_seed(0)
    model = maskgan(tmp_path, "model.loss.g.l1=10.0", "model.loss.gb.l1=10.0")
    step = model.prepare_batch(edit_batch())
    terms = model.g_terms(step)
    mask, image = step["mask"], step["image"]
    with torch.no_grad():
        expected = (model.generator(mask, mask, image) - image).abs().mean()
    assert terms["l1"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert "l1" in model.gb_terms(step)
    assert "l1" not in maskgan(tmp_path).g_terms(step)                     # the demo's recipe: weight 0


# --------------------------------------------------------------------------------------------------
# stage 2: the frozen stage-1 MaskVAE
# --------------------------------------------------------------------------------------------------


def test_missing_stage_one_stops_with_one_line_naming_the_command(tmp_path, monkeypatch):
    from facezoo.train import train

    monkeypatch.chdir(tmp_path)
    cfg = compose("train", ["experiment=maskgan_cpu", f"paths.log_dir={tmp_path / 'runs'}",
                            "model.frozen.perceptual_loss=null", f"paths.output_dir={tmp_path / 'out'}"])
    with pytest.raises(FacezooError) as err:
        train(cfg)
    message = str(err.value)
    assert "\n" not in message and "no stage-1 MaskVAE checkpoint" in message
    assert message.endswith(f"make it with: python -m facezoo.train experiment=maskvae_cpu "
                            f"hydra.run.dir={tmp_path / 'runs'}/maskvae_cpu")
    assert str(tmp_path / "runs" / "maskvae_cpu" / "checkpoints" / "last.ckpt") in message
    with pytest.raises(WeightsNotFoundError, match="no stage-1"):     # the loader itself: a missing weight file
        load_mask_vae(tmp_path / "none.ckpt", SIZE)


def test_load_mask_vae_reads_demo_files_and_checks_them(tmp_path):
    path = demo_vae_file(tmp_path)
    vae = load_mask_vae(path, SIZE, **VAE_ARCH)
    torch.manual_seed(0)
    reference = networks.MaskVAE(resolution=SIZE, **VAE_ARCH)
    assert all(torch.equal(vae.state_dict()[k], v) for k, v in reference.state_dict().items())
    with pytest.raises(FacezooError, match="shape"):              # another architecture than the config says
        load_mask_vae(path, SIZE, ngf=8, ndf=4, latent_dim=16)
    with pytest.raises(FacezooError, match="cannot read"):
        (tmp_path / "junk.ckpt").write_bytes(b"not a torch file")
        load_mask_vae(tmp_path / "junk.ckpt", SIZE)
    with pytest.raises(Exception, match="works on 32px masks"):   # MaskGAN checks the VAE's resolution
        build_model("model=maskgan", *TINY[1:], "data.size=64", "model.frozen.perceptual_loss=null",
                    f"model.frozen.mask_vae.build.path={path}", "model.frozen.mask_vae.build.resolution=32",
                    *(f"model.frozen.mask_vae.build.{k}={v}" for k, v in VAE_ARCH.items()))


# --------------------------------------------------------------------------------------------------
# interpolation helpers
# --------------------------------------------------------------------------------------------------


def test_interpolate_masks_endpoints_and_mode():
    torch.manual_seed(0)
    vae = networks.MaskVAE(resolution=SIZE, **VAE_ARCH).train()
    a, b = edit_batch(2)["mask"], edit_batch(2)["target_mask"].flip(0)
    out = interpolate_masks(vae, a, b, [0.0, 0.5, 1.0])
    assert out.shape == (3, 2, SIZE, SIZE) and out.dtype == torch.int64 and vae.training   # mode restored
    with torch.no_grad():
        vae.eval()
        assert torch.equal(out[0], vae.decode(vae.encode(a)[0]).argmax(1))
        assert torch.equal(out[2], vae.decode(vae.encode(b)[0]).argmax(1))
        mid = vae.decode(0.5 * (vae.encode(a)[0] + vae.encode(b)[0])).argmax(1)
    assert torch.equal(out[1], mid)
    with pytest.raises(ValueError, match="same shape"):
        interpolate_masks(vae, a, b[:1], [0.5])


def test_ebst_masks_recipe_and_perturbation():
    torch.manual_seed(0)
    vae = networks.MaskVAE(resolution=SIZE, **VAE_ARCH).eval()
    mask = edit_batch(3)["mask"]
    m1, m2 = ebst_masks(vae, mask, 0.4)                          # reference: the previous mask of the batch
    expected = interpolate_masks(vae, mask, mask.roll(1, 0), (-0.4, 0.4))
    assert torch.equal(m1, expected[0]) and torch.equal(m2, expected[1])
    # a batch of one (the demo's batch size) falls back to a warped copy of the mask itself
    gen = torch.Generator().manual_seed(3)
    one = ebst_masks(vae, mask[:1], 0.4, generator=gen)
    ref = perturb_masks(mask[:1], generator=torch.Generator().manual_seed(3))
    assert torch.equal(one[0], interpolate_masks(vae, mask[:1], ref, (-0.4, 0.4))[0])
    # the perturbation: a small warp that keeps the labels, the identity at zero strength, reproducible
    warped = perturb_masks(mask, generator=torch.Generator().manual_seed(1))
    assert torch.equal(warped, perturb_masks(mask, generator=torch.Generator().manual_seed(1)))
    assert set(warped.unique().tolist()) <= set(mask.unique().tolist()) and not torch.equal(warped, mask)
    assert 0.7 < (warped == mask).float().mean() < 1.0
    assert torch.equal(perturb_masks(mask, 0.0, 0.0, 0.0), mask)
    with pytest.raises(ValueError, match="reference"):
        ebst_masks(vae, mask, 0.4, reference="other")


# --------------------------------------------------------------------------------------------------
# ablation switch
# --------------------------------------------------------------------------------------------------


def test_blend_false_removes_blender_dual_editing_term_and_vae(tmp_path):
    model = build_model("model=maskgan", *TINY, "model.blend=false", "model.frozen.perceptual_loss=null",
                        f"model.frozen.mask_vae.build.path={tmp_path / 'missing.ckpt'}")   # not even read
    assert model.blender is None and model.mask_vae is None and not model.blending
    assert {p.name: p.at for p in model.phases} == {"g": (0,), "gb": (), "d": (0,)}
    assert not model.wants("d", "blend") and not any(model.wants("gb", t) for t in MaskGAN.G_TERMS)
    step = model.prepare_batch(edit_batch())
    assert step["blend"] is None and "inter" not in step
    assert set(model.d_terms(step)) == {"real", "fake"}
    assert model.hparams.loss["d"]["blend"] == 0.5                # the config is kept; only the effect is off
    # zero weights for every gb term: no gb phase either (the stage-1 VAE still serves d.blend)
    zero = maskgan(tmp_path, *(f"model.loss.gb.{t}=0" for t in MaskGAN.G_TERMS))
    assert {p.name: p.at for p in zero.phases}["gb"] == () and zero.wants("d", "blend") and zero.mask_vae is not None


# --------------------------------------------------------------------------------------------------
# evaluation outputs
# --------------------------------------------------------------------------------------------------


def test_predict_renders_the_edited_mask_and_baselines(tmp_path):
    torch.manual_seed(0)
    model = maskgan(tmp_path).eval()
    batch = edit_batch()
    out = model.predict_batch(batch)
    with torch.no_grad():
        assert torch.allclose(out, model.generator(batch["target_mask"], batch["mask"], batch["image"]))
    datamodule = SimpleNamespace(dataset=lambda split: SyntheticMaskEdit(split, size=SIZE, length=3, num_identities=3))
    baselines = model.evaluation_baselines(datamodule, mean_face_samples=3)
    assert set(baselines) == {"source", "mean_style", "full_rendering"}
    assert torch.equal(baselines["source"](batch), batch["image"])
    assert torch.equal(baselines["full_rendering"](batch), out)
    train = datamodule.dataset("train")
    with torch.no_grad():
        styles = model.generator.encode_style(torch.stack([train[i]["mask"] for i in range(3)]),
                                              torch.stack([train[i]["image"] for i in range(3)]))
        expected = model.generator.render(batch["target_mask"], styles.mean(0))
    # the evaluated outputs are pasted on the source near the edit, as the photo pipeline does: the rendering within
    # dilate of a changed label, the source beyond dilate + feather (3 and 4 px of a 512 px face, scaled to SIZE)
    from scipy.ndimage import distance_transform_edt

    from facezoo.methods.maskgan.inference import paste_margins, predict

    dilate, feather = paste_margins(SIZE)
    assert (dilate, feather) == (3 * SIZE / 512, 4 * SIZE / 512)
    pasted, mean_style = predict(model, batch), baselines["mean_style"](batch)
    for i in range(len(batch["image"])):
        distance = torch.from_numpy(distance_transform_edt(batch["mask"][i] == batch["target_mask"][i]))
        near, far = distance <= dilate, distance >= dilate + feather
        assert near.any() and far.any()
        assert torch.allclose(pasted[i][:, near], out[i][:, near]) and torch.equal(pasted[i][:, far],
                                                                                     batch["image"][i][:, far])
        assert torch.allclose(mean_style[i][:, near], expected[i][:, near], atol=1e-5)
        assert torch.equal(mean_style[i][:, far], batch["image"][i][:, far])
    rows = model.sample_rows(batch)
    assert list(rows) == ["source", "source mask", "edited mask", "MaskGAN", "truth"]
    assert all(r.shape == (2, 3, SIZE, SIZE) for r in rows.values())
    with pytest.raises(ValueError, match="32x32"):
        model.predict_batch({k: v[..., :16, :16] for k, v in batch.items()})


def test_maskvae_terms_predictions_and_metrics():
    torch.manual_seed(0)
    model = build_model("model=maskvae", *TINY)
    assert isinstance(model, MaskVAE) and model.vae.resolution == SIZE and model.vae.latent_dim == 1024
    assert [(p.name, p.optimizer, p.terms) for p in model.phases] == [("vae", "vae", ("reconstruction", "kl"))]
    batch = edit_batch()
    torch.manual_seed(1)
    terms = model.vae_terms(batch)
    torch.manual_seed(1)
    logits, mu, logvar = model.vae(batch["mask"])
    assert terms["reconstruction"].item() == pytest.approx(
        torch.nn.functional.cross_entropy(logits, batch["mask"]).item(), rel=1e-5)
    kl = -0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1).mean() / SIZE**2     # per mask pixel
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    model.eval()
    out = model.predict_batch(batch)
    assert torch.equal(out, colorize_labels(model(batch["mask"])))
    perfect = model.evaluation_metrics(colorize_labels(batch["mask"]), batch)
    assert perfect["l1"] == 0 and perfect["mask_accuracy"] == 1 and perfect["mask_miou"] == 1
    values = model.evaluation_metrics(out, batch)
    assert set(values) == {"l1", "mask_accuracy", "mask_miou"} and 0 <= values["mask_accuracy"] < 1


# --------------------------------------------------------------------------------------------------
# the two stages, fitted
# --------------------------------------------------------------------------------------------------


def _fit(model, overrides, tmp_path, name):
    cfg = compose("train", [*overrides, "paths.work_dir=.", f"paths.output_dir={tmp_path}"])   # resolvable
    datamodule = instantiate(cfg.data, _convert_="all")
    datamodule.splits.update({"train": {"length": 4, "num_identities": 2}, "val": {"length": 2, "num_identities": 2}})
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=1, log_every_n_steps=1, default_root_dir=tmp_path)
    model.facezoo_config = OmegaConf.to_container(cfg, resolve=True)
    trainer.fit(model, datamodule=datamodule)
    path = tmp_path / f"{name}.ckpt"
    trainer.save_checkpoint(path)
    return trainer, path


def test_tiny_fit_of_both_stages(tmp_path):
    torch.manual_seed(0)
    stage1 = ["model=maskvae", *TINY]
    vae_model = build_model(*stage1)
    trainer, ckpt = _fit(vae_model, stage1, tmp_path, "stage1")
    logged = {k for k in trainer.callback_metrics if k.startswith("train/") and not k.endswith(("_step", "_epoch"))}
    assert logged == {"train/vae_reconstruction", "train/vae_kl", "train/vae_total"}
    assert {"val/l1", "val/mask_accuracy", "val/mask_miou"} <= set(trainer.callback_metrics)

    # stage 2 reads the stage-1 checkpoint as its frozen MaskVAE
    stage2 = ["model=maskgan", *TINY, f"model.frozen.mask_vae.build.path={ckpt}", "model.frozen.perceptual_loss=null"]
    model = build_model(*stage2)
    assert all(torch.equal(model.mask_vae.state_dict()[k], v) for k, v in vae_model.vae.state_dict().items())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer, _ = _fit(model, stage2, tmp_path, "stage2")
    logged = {k for k in trainer.callback_metrics if k.startswith("train/") and not k.endswith(("_step", "_epoch"))}
    assert logged == {"train/g_adversarial", "train/g_feature_matching", "train/g_total", "train/gb_adversarial",
                      "train/gb_feature_matching", "train/gb_total", "train/d_real", "train/d_fake", "train/d_blend",
                      "train/d_total"}
    assert all(torch.isfinite(v) for v in trainer.callback_metrics.values())
    for prefix in ("generator.", "blender.", "discriminator."):
        assert any(not torch.equal(v, before[k]) for k, v in model.state_dict().items() if k.startswith(prefix))
    assert {"val/l1", "val/ssim"} <= set(trainer.callback_metrics)
    with pytest.raises(FacezooError, match="not a stage-1 MaskVAE"):        # a stage-2 checkpoint is not a stage 1
        load_mask_vae(tmp_path / "stage2.ckpt", SIZE)
