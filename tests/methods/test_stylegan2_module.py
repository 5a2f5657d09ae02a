"""StyleGAN2's module: its four phases, the lazy-regularisation terms and Adam correction, the EMA generator,
ADA, export to rosinality's format, projection and the photo pipeline (tiny generators on CPU)."""

from __future__ import annotations

import math

import pytest
import torch

from facezoo.config import build_model
from facezoo.methods.stylegan2.augment import AdaptiveAugment, augment, sample_affine
from facezoo.methods.stylegan2.projection import noise_regularize, project

TINY = ["model=stylegan2", "data.size=32", "model.latent_dim=16", "model.n_mlp=2", "model.channel_multiplier=1",
        "model.width=0.0625"]


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model(*TINY)


def batch_of(n: int = 4, size: int = 32) -> dict:
    return {"image": torch.rand(n, 3, size, size) * 2 - 1}


def test_phases_intervals_and_weights(model):
    phases = {p.name: p for p in model.phases}
    assert [p.name for p in model.phases] == ["d", "d_reg", "g", "g_reg"]
    assert (phases["d_reg"].every, phases["g_reg"].every) == (16, 4)
    assert [i for i in range(32) if phases["d_reg"].runs_at(i)] == [0, 16]
    assert model.loss_weights == {"d": {"adversarial": 1.0}, "d_reg": {"r1": 10.0}, "g": {"adversarial": 1.0},
                                  "g_reg": {"path_length": 2.0}}


def test_adam_is_corrected_for_lazy_regularisation(model):
    opts = dict(zip(model.optimizer_factories, model.configure_optimizers()))
    g, d = opts["generator"].param_groups[0], opts["discriminator"].param_groups[0]
    assert g["lr"] == pytest.approx(0.002 * 4 / 5) and d["lr"] == pytest.approx(0.002 * 16 / 17)
    assert g["betas"] == pytest.approx((0.0, 0.99 ** (4 / 5))) and d["betas"] == pytest.approx((0.0, 0.99 ** (16 / 17)))


def test_d_loss_is_the_logistic_loss(model):
    torch.manual_seed(1)
    batch = batch_of()
    torch.manual_seed(2)
    value = model.d_terms(batch)["adversarial"]
    torch.manual_seed(2)
    with torch.no_grad():
        fake = model.generate(4)[0]
        expected = (torch.nn.functional.softplus(-model.discriminator(batch["image"])).mean()
                    + torch.nn.functional.softplus(model.discriminator(fake)).mean())
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)


def test_r1_is_half_interval_times_the_squared_gradient_norm(model):
    batch = batch_of()
    real = batch["image"].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model.discriminator(real).sum(), real)
    expected = 0.5 * 16 * grad.pow(2).flatten(1).sum(1).mean()
    term = model.d_reg_terms(batch)["r1"]
    assert term.item() == pytest.approx(expected.item(), rel=1e-5)
    term.backward()                                           # differentiable w.r.t. D (double backward)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.discriminator.parameters())


def test_path_length_term_and_running_mean(model):
    assert float(model.mean_path_length) == 0.0
    torch.manual_seed(3)
    term = model.g_reg_terms(batch_of())["path_length"]
    first = float(model.mean_path_length)
    assert first > 0 and term.item() >= 0
    model.g_reg_terms(batch_of())
    second = float(model.mean_path_length)
    assert second != first and abs(second - first) < first     # decay 0.01: the mean moves slowly


def test_style_mixing_probability(model):
    torch.manual_seed(4)
    counts = [len(model.noise(2)) for _ in range(200)]
    assert set(counts) == {1, 2} and 150 < counts.count(2) < 200    # mixing 0.9
    model.hparams.mixing = 0.0
    assert {len(model.noise(2)) for _ in range(20)} == {1}


def test_ema_half_life(model):
    with torch.no_grad():
        for p in model.generator.parameters():
            p.add_(1.0)
    before = [p.clone() for p in model.generator_ema.parameters()]
    beta = model.update_ema(images=32)
    assert beta == pytest.approx(0.5 ** (32 / 10_000))
    for old, new, g in zip(before, model.generator_ema.parameters(), model.generator.parameters()):
        assert torch.allclose(new, beta * old + (1 - beta) * g)
    for _ in range(int(10_000 / 32 * 10)):                   # ten half-lives: the EMA has nearly reached G
        model.update_ema(images=32)
    assert all(torch.allclose(e, g, atol=2e-3 * (1 + float(g.abs().max())))
               for e, g in zip(model.generator_ema.parameters(), model.generator.parameters()))


def test_predict_batch_is_deterministic_and_uses_the_ema_generator(model):
    out = model.predict_batch(batch_of(3))
    assert out.shape == (3, 3, 32, 32) and torch.equal(out, model.predict_batch(batch_of(3)))
    with torch.no_grad():
        for p in model.generator_ema.parameters():
            p.mul_(0.5)
    assert not torch.equal(out, model.predict_batch(batch_of(3)))


# ------------------------------------------------------------------------------------------------ ADA
def test_augment_p0_is_identity_and_keeps_shape_range_and_gradient():
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    assert augment(x, 0.0) is x
    torch.manual_seed(5)
    y = augment(x, 1.0)
    assert y.shape == x.shape and torch.isfinite(y).all() and not torch.allclose(y, x)
    y.sum().backward()
    assert x.grad.abs().sum() > 0


def test_affine_transforms_follow_p():
    torch.manual_seed(6)
    assert torch.allclose(sample_affine(0.0, 64, 16, 16), torch.eye(3).expand(64, 3, 3))
    g = sample_affine(1.0, 256, 16, 16)
    det = torch.linalg.det(g[:, :2, :2])
    assert 0.35 < float((det < 0).float().mean()) < 0.65          # x-flip with probability 1/2
    assert torch.allclose(g[:, 2], torch.tensor([0.0, 0.0, 1.0]).expand(256, 3))


def test_adaptive_augment_moves_p_towards_the_target():
    ada = AdaptiveAugment(target=0.6, length=800, update_every=2)
    overfit = torch.ones(100, 1)                                   # r_t = 1 > 0.6: more augmentation
    for _ in range(4):
        ada.tune(overfit)
    assert ada.p == pytest.approx(2 * 200 / 800) and ada.r_t == 1.0
    for _ in range(20):
        ada.tune(-overfit)                                          # r_t = -1: less, down to 0
    assert ada.p == 0.0
    state = ada.state_dict()
    other = AdaptiveAugment(target=0.6, length=800, update_every=2)
    other.load_state_dict(state)
    assert other.state_dict() == state


# ---------------------------------------------------------------------------- projection, export, photos
def test_noise_regularize_is_small_for_white_noise_and_large_for_constant():
    torch.manual_seed(7)
    white = [torch.randn(1, 1, 32, 32)]
    assert noise_regularize(white) < 1e-2 < noise_regularize([torch.ones(1, 1, 32, 32)])


def test_projection_gets_closer_to_a_generated_target(model):
    g = model.generator_ema
    torch.manual_seed(8)
    with torch.no_grad():
        target = g([torch.randn(2, 16)], randomize_noise=False)[0]

    def mse(fake, real):
        return (fake - real).pow(2).flatten(1).mean(1)

    result = project(g, target, steps=40, lr=0.05, distance=mse, noise_weight=0.0)
    assert result.latents.shape == (2, g.n_latent, 16) and result.images.shape == target.shape
    assert result.losses[-1] < 0.5 * result.losses[0]
    w = project(g, target, steps=2, space="w", distance=mse)
    assert w.latents.shape == (2, 16)
    with pytest.raises(ValueError, match="space"):
        project(g, target, steps=1, space="z", distance=mse)


def test_export_round_trip_through_rosinality_format(tmp_path, model):
    import sys
    from pathlib import Path

    from facezoo.nets.stylegan2 import load_rosinality

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    import lightning as L
    from export_stylegan2 import export

    trainer = L.Trainer(max_epochs=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    from omegaconf import OmegaConf

    from facezoo.config import compose

    model.facezoo_config = OmegaConf.to_container(compose("train", TINY), resolve=False)
    trainer.strategy.connect(model)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    data = export(ckpt, tmp_path / "g.pt", n_mean_latent=1000)
    assert set(data) == {"g_ema", "g", "d", "latent_avg", "args"} and data["latent_avg"].shape == (16,)
    generator, latent_avg = load_rosinality(tmp_path / "g.pt")
    z = torch.randn(2, 16)
    assert torch.equal(generator([z], randomize_noise=False)[0], model.generator_ema([z], randomize_noise=False)[0])
    assert torch.equal(latent_avg, data["latent_avg"])
    assert math.isfinite(float(latent_avg.norm()))
