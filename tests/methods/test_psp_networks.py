"""pSp networks: the encoders, the pSp model's forward semantics, and strict loading of official releases with
parity against the official code (committed fixtures from ``scripts/fixtures/make_psp_official.py``; live when
``FACEZOO_OFFICIAL_PSP`` points to a checkout of eladrich/pixel2style2pixel)."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from facezoo.methods.psp import (
    PSP,
    BackboneEncoderUsingLastLayerIntoW,
    BackboneEncoderUsingLastLayerIntoWPlus,
    GradualStyleEncoder,
    load_official,
    n_styles_for,
    official_checkpoint_from,
    style_groups,
)
from facezoo.methods.psp import networks as psp_networks
from facezoo.nets.irse import IRSE50, PSP_TAPS
from facezoo.nets.stylegan2 import Generator, estimate_latent_avg, save_rosinality
from facezoo.nets.weights import WeightsNotFoundError, cache_dir
from facezoo.utils import FacezooError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "fixtures" / "make_psp_official.py"
FIXTURES = ROOT / "tests" / "fixtures"
OFFICIAL = os.environ.get("FACEZOO_OFFICIAL_PSP")
TOL = 1e-4


def _script():
    spec = importlib.util.spec_from_file_location("make_psp_official", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mk = _script()


def tiny_generator(size: int = 16, style_dim: int = 8) -> Generator:
    torch.manual_seed(0)
    return Generator(size, style_dim, 1, narrow=1 / 64)


@pytest.fixture(scope="module")
def tiny_psp() -> PSP:
    """IntoW+ encoder (the cheapest) on a 16 px, 8-d generator: 6 styles."""
    torch.manual_seed(0)
    model = PSP(tiny_generator(), "BackboneEncoderUsingLastLayerIntoWPlus", start_from_latent_avg=True,
                latent_avg=torch.randn(8), irse50=False, pool_size=8)
    return model.eval()


# ------------------------------------------------------------------------------------------------ encoders
def test_n_styles_and_groups():
    assert [n_styles_for(s) for s in (64, 256, 512, 1024)] == [10, 14, 16, 18]
    with pytest.raises(ValueError, match="power of two"):
        n_styles_for(300)
    assert [len(g) for g in style_groups(18)] == [3, 4, 11]
    assert [len(g) for g in style_groups(10)] == [3, 4, 3]       # facezoo's 64 px generator
    assert [len(g) for g in style_groups(6)] == [3, 3, 0]


def test_gradual_encoder_structure_and_taps():
    torch.manual_seed(0)
    enc = GradualStyleEncoder(10, input_nc=3, input_size=64, style_dim=16).eval()
    assert enc.taps == PSP_TAPS == (6, 20, 23)
    # one stride-2 conv per halving down to 1x1: 64 px input -> c3 4x4, p2 8x8, p1 16x16 (256 px: 4, 5, 6 convs)
    n_convs = [sum(isinstance(m, torch.nn.Conv2d) for m in block.convs) for block in enc.styles]
    assert n_convs == [2] * 3 + [3] * 4 + [4] * 3
    x = torch.rand(2, 3, 48, 48) * 2 - 1                 # smaller inputs work too (1x1 maps stay 1x1)
    # the body is facezoo.nets.irse's: same weights in an IRSE50 give the same taps
    arcface = IRSE50().eval()
    arcface.load_state_dict({**arcface.state_dict(), **{k: v for k, v in enc.state_dict().items()
                                                        if k.startswith(("input_layer.", "body."))}})
    with torch.no_grad():
        for ours, ref in zip(enc.features(x), arcface.body_features(x), strict=True):
            torch.testing.assert_close(ours, ref)
        out = enc(x)
    assert out.shape == (2, 10, 16)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        enc(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="input_size"):
        enc(torch.zeros(1, 3, 128, 128))


def test_gradual_encoder_style_assignment():
    """Coarse styles read c3 only, medium ones p2 (c3 + c2), fine ones p1 (+ c1)."""
    torch.manual_seed(0)
    enc = GradualStyleEncoder(10, input_size=32, style_dim=8).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        base = enc(x)
        enc.latlayer2.bias += 1.0                      # the c1 lateral: only p1
        fine_changed = (enc(x) - base).abs().amax(-1)[0]
        enc.latlayer1.bias += 1.0                      # the c2 lateral: p2 and p1
        mid_changed = (enc(x) - base).abs().amax(-1)[0]
    coarse, medium, fine = style_groups(10)
    assert (fine_changed[list(coarse) + list(medium)] == 0).all() and (fine_changed[list(fine)] > 0).all()
    assert (mid_changed[list(coarse)] == 0).all() and (mid_changed[list(medium)] > 0).all()


@pytest.mark.parametrize("input_nc", [1, 19])
def test_encoders_input_channels(input_nc):
    torch.manual_seed(0)
    x = torch.rand(2, input_nc, 32, 32)
    w = BackboneEncoderUsingLastLayerIntoW(input_nc, style_dim=8).eval()
    wplus = BackboneEncoderUsingLastLayerIntoWPlus(5, input_nc, style_dim=8).eval()
    with torch.no_grad():
        assert w(x).shape == (2, 8)
        assert wplus(x).shape == (2, 5, 8)
    assert w.input_layer[0].weight.shape == (64, input_nc, 3, 3)


def _save_irse50(path: Path) -> dict:
    torch.manual_seed(1)
    state = IRSE50().state_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


def test_irse50_initialisation(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(psp_networks, "_warned_no_irse50", False)
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    with caplog.at_level(logging.WARNING):
        enc = BackboneEncoderUsingLastLayerIntoW(3, style_dim=8)
        assert enc.load_irse50() is False
        assert enc.load_irse50() is False
    assert sum("IR-SE50" in r.getMessage() for r in caplog.records) == 1       # one warning, not one per call
    with pytest.raises(WeightsNotFoundError):
        enc.load_irse50(tmp_path / "nowhere.pth")                              # an explicit path must exist

    state = _save_irse50(cache_dir() / "model_ir_se50.pth")
    rgb = PSP(tiny_generator(), "BackboneEncoderUsingLastLayerIntoW", input_nc=3).encoder
    gray = PSP(tiny_generator(), "BackboneEncoderUsingLastLayerIntoW", input_nc=1).encoder
    for key in ("body.0.res_layer.1.weight", "body.23.res_layer.5.fc2.weight", "body.3.shortcut_layer.1.running_var"):
        assert torch.equal(rgb.state_dict()[key], state[key]) and torch.equal(gray.state_dict()[key], state[key])
    assert torch.equal(rgb.input_layer[0].weight, state["input_layer.0.weight"])   # RGB stem loaded
    assert gray.input_layer[0].weight.shape == (64, 1, 3, 3)                       # other stems stay random


# --------------------------------------------------------------------------------------------- the model
def test_psp_forward_semantics(tiny_psp):
    model = tiny_psp
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        codes = model.encode(x)
        assert codes.shape == (2, model.n_styles, 8) == (2, 6, 8)
        torch.testing.assert_close(codes, model.encoder(x) + model.latent_avg)
        images, latents = model(x, randomize_noise=False, resize=False, return_latents=True)
        torch.testing.assert_close(latents, codes)
        torch.testing.assert_close(images, model.decode(codes, randomize_noise=False))
        assert images.shape == (2, 3, 16, 16)
        pooled = model(x, randomize_noise=False)                                  # resize=True: face_pool
        torch.testing.assert_close(pooled, F.adaptive_avg_pool2d(images, 8))

        _, zeroed = model(x, latent_mask=[1, 4], randomize_noise=False, return_latents=True)
        assert (zeroed[:, [1, 4]] == 0).all() and torch.equal(zeroed[:, [0, 2, 3, 5]], codes[:, [0, 2, 3, 5]])

        z = torch.randn(2, 8)
        z_copy = z.clone()
        _, w = model(z, input_code=True, return_latents=True, randomize_noise=False)
        assert torch.equal(z, z_copy)
        torch.testing.assert_close(w, model.decoder.style(z)[:, None].expand(-1, 6, -1))
        inject = w.clone()
        _, mixed = model(x, latent_mask=[0, 5], inject_latent=inject, alpha=0.25, randomize_noise=False,
                         return_latents=True)
        torch.testing.assert_close(mixed[:, [0, 5]], 0.25 * w[:, [0, 5]] + 0.75 * codes[:, [0, 5]])
        torch.testing.assert_close(mixed[:, 1:5], codes[:, 1:5])
        assert torch.equal(inject, w)                                             # caller's tensor untouched
        _, replaced = model(x, latent_mask=[3], inject_latent=w, randomize_noise=False, return_latents=True)
        torch.testing.assert_close(replaced[:, 3], w[:, 3])

        gen = torch.Generator().manual_seed(5)
        rand = model.random_latents(3, gen)
        torch.testing.assert_close(rand, model.decoder.style(torch.randn(3, 8, generator=torch.Generator()
                                                                         .manual_seed(5)))[:, None].expand(-1, 6, -1))
        multi = model.style_mix(x, latent_mask=[4, 5], n_outputs=3, generator=gen, randomize_noise=False)
        assert multi.shape == (2, 3, 3, 8, 8)
        assert (multi[:, 0] - multi[:, 1]).abs().max() > 0
        same = model.style_mix(x, latent_mask=[], n_outputs=2, generator=gen, randomize_noise=False)
        torch.testing.assert_close(same[:, 0], same[:, 1])
    with pytest.raises(ValueError, match="latent_mask indices"):
        model(x, latent_mask=[6])
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.zeros(1, 19, 32, 32))


def test_fast_path_runs_bf16_weights_and_stays_close_to_fp32(tiny_psp):
    model = copy.deepcopy(tiny_psp).eval()
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        codes, images = model.encode(x), model(x, randomize_noise=False)
        assert model.fast_path() is model and not model.training
        conv = model.encoder.input_layer[0].weight
        assert conv.dtype == torch.bfloat16 and conv.is_contiguous(memory_format=torch.channels_last)
        assert {p.dtype for p in model.decoder.parameters()} == {torch.bfloat16}
        assert model.latent_avg.dtype == torch.float32
        fast_codes = model.encode(x)
        assert fast_codes.dtype == torch.float32 and not torch.equal(fast_codes, codes)     # bf16 did run
        torch.testing.assert_close(fast_codes, codes, atol=0.05, rtol=0.05)
        fast, latents = model(x, randomize_noise=False, return_latents=True)
        assert fast.dtype == latents.dtype == torch.float32
        psnr = 10 * torch.log10(4 / (fast - images).pow(2).mean())
        assert psnr > 25, psnr
        mixed = model.style_mix(x, latent_mask=[4, 5], n_outputs=2, generator=torch.Generator().manual_seed(0))
        assert mixed.dtype == torch.float32 and mixed.shape[:2] == (2, 2) and torch.isfinite(mixed).all()


def test_psp_w_encoder_and_latent_avg():
    torch.manual_seed(0)
    avg = torch.randn(8)
    model = PSP(tiny_generator(), "BackboneEncoderUsingLastLayerIntoW", start_from_latent_avg=True,
                latent_avg=avg[None], irse50=False).eval()
    assert model.learn_in_w and model.latent_avg.shape == (6, 8)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        codes = model.encode(x)
        torch.testing.assert_close(codes, (model.encoder(x) + avg)[:, None].expand(-1, 6, -1))
        # the decoder gets the same image from the (B, D) w it would repeat itself
        torch.testing.assert_close(model.decode(codes, randomize_noise=False),
                                   model.decoder([model.encoder(x) + avg], input_is_latent=True,
                                                 randomize_noise=False)[0])
    with pytest.raises(ValueError, match="one w"):
        model.set_latent_avg(torch.randn(6, 8))
    with pytest.raises(ValueError, match="latent_avg must be"):
        model.set_latent_avg(torch.randn(5, 8))


def test_psp_decoder_frozen_unless_train_decoder():
    torch.manual_seed(0)
    frozen = PSP(tiny_generator(), "BackboneEncoderUsingLastLayerIntoWPlus", irse50=False)
    assert not any(p.requires_grad for p in frozen.decoder.parameters())
    assert {id(p) for p in frozen.trainable_parameters()} == {id(p) for p in frozen.encoder.parameters()}
    frozen(torch.rand(2, 3, 32, 32)).square().mean().backward()
    assert frozen.encoder.linear.weight.grad is not None and frozen.encoder.linear.weight.grad.abs().sum() > 0
    trained = PSP(tiny_generator(), "BackboneEncoderUsingLastLayerIntoWPlus", train_decoder=True, irse50=False)
    assert all(p.requires_grad for p in trained.decoder.parameters())
    assert len(trained.trainable_parameters()) == len(list(trained.parameters()))


def test_from_decoder_file(tmp_path):
    g = tiny_generator()
    avg = torch.randn(8)
    save_rosinality(tmp_path / "g.pt", g, avg)
    model = PSP.from_decoder_file(tmp_path / "g.pt", encoder_type="BackboneEncoderUsingLastLayerIntoWPlus",
                                  start_from_latent_avg=True, irse50=False)
    assert model.n_styles == 6 and torch.equal(model.latent_avg, avg.expand(6, -1))
    assert all(torch.equal(a, b) for a, b in zip(model.decoder.state_dict().values(), g.state_dict().values()))
    save_rosinality(tmp_path / "no_avg.pt", g, None)                              # latent_avg estimated (coach.py)
    model = PSP.from_decoder_file(tmp_path / "no_avg.pt", encoder_type="BackboneEncoderUsingLastLayerIntoWPlus",
                                  start_from_latent_avg=True, irse50=False, n_mean_latent=1000)
    torch.testing.assert_close(model.latent_avg[0], estimate_latent_avg(model.decoder, 1000))


# ----------------------------------------------------------------------------------------- official files
def test_official_round_trip_and_options(tiny_psp, tmp_path):
    path = tmp_path / "psp.pt"
    ckpt = official_checkpoint_from(tiny_psp, {"dataset_type": "ffhq_encode"})
    del ckpt["opts"]["output_size"]                      # 2020 releases: inferred from the decoder
    torch.save(ckpt, path)
    model = load_official(path, pool_size=8)
    assert not model.training and model.official_opts["dataset_type"] == "ffhq_encode"
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        for a, b in zip(model(x, randomize_noise=False, return_latents=True),
                        tiny_psp(x, randomize_noise=False, return_latents=True)):
            torch.testing.assert_close(a, b)

    # these are refused before the encoder is read: a decoder-only state dict is enough
    decoder_only = {k: v for k, v in ckpt["state_dict"].items() if k.startswith("decoder.")}
    torch.save(dict(ckpt, state_dict=decoder_only, opts=dict(ckpt["opts"], output_size=32)), tmp_path / "size.pt")
    with pytest.raises(FacezooError, match="output_size=32 but the decoder is 16 px"):
        load_official(tmp_path / "size.pt")
    torch.save({"state_dict": decoder_only, "opts": ckpt["opts"]}, tmp_path / "noavg.pt")
    with pytest.raises(FacezooError, match="no latent_avg"):
        load_official(tmp_path / "noavg.pt")
    with pytest.raises(FacezooError, match=r"encoder does not match its options \(missing input_layer.0.weight"):
        load_official(tmp_path / "noavg.pt", start_from_latent_avg=False)
    extra = dict(ckpt, state_dict={**ckpt["state_dict"], "encoder.extra.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pt")
    with pytest.raises(FacezooError, match=r"encoder does not match its options \(unexpected extra.weight\)"):
        load_official(tmp_path / "extra.pt")
    with pytest.raises(FacezooError, match="encoder does not match"):
        load_official(path, encoder_type="BackboneEncoderUsingLastLayerIntoW")
    with pytest.raises(ValueError, match="unknown options"):
        load_official(path, colour="blue")
    torch.save({"g_ema": {}}, tmp_path / "other.pt")
    with pytest.raises(FacezooError, match="not a pSp release"):
        load_official(tmp_path / "other.pt")
    with pytest.raises(FacezooError, match="no such file"):
        load_official(tmp_path / "missing.pt")


def test_official_namespace_opts_need_trust(tiny_psp, tmp_path):
    ckpt = official_checkpoint_from(tiny_psp)
    ckpt["opts"] = argparse.Namespace(**ckpt["opts"])
    torch.save(ckpt, tmp_path / "ns.pt")
    with pytest.raises(FacezooError, match=r"pickled .*trust=True") as err:
        load_official(tmp_path / "ns.pt")
    assert "\n" not in str(err.value)
    assert load_official(tmp_path / "ns.pt", trust=True, pool_size=8).n_styles == 6


# --------------------------------------------------------------------------------- parity with the official
def _official_outputs(name: str, tmp_path: Path) -> list[dict]:
    """The committed fixture for ``name`` and, with FACEZOO_OFFICIAL_PSP, a fresh one from the official code."""
    case = mk.CASES[name]
    refs = [torch.load(FIXTURES / f"psp_official_{case['file']}.pt", weights_only=True)[name]]
    if OFFICIAL:
        subprocess.run([sys.executable, str(SCRIPT), "--official", OFFICIAL, "--cases", name, "--out-dir",
                        str(tmp_path / "live")], check=True, capture_output=True)
        refs.append(torch.load(tmp_path / "live" / f"psp_official_{case['file']}.pt", weights_only=True)[name])
    return refs


def _check_parity(name: str, tmp_path: Path) -> dict[str, float]:
    case = mk.CASES[name]
    ckpt = mk.seeded_checkpoint(case)
    signature = mk.state_signature(ckpt["state_dict"])
    torch.save(ckpt, tmp_path / "release.pt")
    del ckpt
    model = load_official(tmp_path / "release.pt")
    assert not model.training
    inputs = mk.seeded_inputs(case)
    with torch.no_grad():
        images, latents = model(inputs["x"], randomize_noise=False, resize=False, return_latents=True)
        ours = {"latents": latents[:, :1] if case.get("learn_in_w") else latents}
        if case.get("learn_in_w"):
            assert torch.equal(latents, latents[:, :1].expand_as(latents))
        ours.update({f"image_{k}": v for k, v in mk.image_summary(images).items()})
        if case.get("mixing"):
            inject = model.decoder.style(inputs["z"])[:, None].expand(-1, model.n_styles, -1)
            ours["inject_w"] = inject[:, 0]
            ours["mixed_latents"] = model.mix(latents, mk.MIX_MASK, inject, mk.MIX_ALPHA)[:, list(mk.MIX_MASK)]
    errors = {}
    for ref in _official_outputs(name, tmp_path):
        assert ref["signature"] == signature, "official names/shapes differ from facezoo's"
        assert set(ref) - {"signature"} == set(ours)
        for key, value in ours.items():
            assert value.shape == ref[key].shape, key
            errors[key] = max(errors.get(key, 0.0), (value - ref[key]).abs().max().item())
    assert max(errors.values()) < TOL, errors
    return errors


def test_official_parity_256(tmp_path):
    """facezoo == official pSp.forward(x, randomize_noise=False, resize=False, return_latents=True) at 256 px
    (GradualStyleEncoder, start_from_latent_avg, batch 2), and the style mixing of the official forward."""
    _check_parity("encode_256", tmp_path)


@pytest.mark.parametrize("name", ["w_64", "wplus_sketch_64"])
def test_official_parity_other_encoders(name, tmp_path):
    """The W encoder (learn_in_w + latent average) and the W+ encoder on 1-channel (sketch) input, 64 px decoder."""
    _check_parity(name, tmp_path)


@pytest.mark.slow
def test_official_parity_1024(tmp_path):
    """The released configuration: 1024 px decoder, 18 styles, 256 px input, opts without output_size."""
    _check_parity("encode_1024", tmp_path)
