"""facezoo.nets.stylegan2: resampling ops, rosinality parity (fixture + live), checkpoints, stylegan2-ada conversion.

Parity fixtures were written by ``scripts/fixtures/make_stylegan2.py`` from the official code on the seeded weights
and inputs rebuilt here. With ``FACEZOO_OFFICIAL_STYLEGAN2=/path/to/rosinality/stylegan2-pytorch`` and
``FACEZOO_OFFICIAL_STYLEGAN2_ADA=/path/to/stylegan2-ada-pytorch`` the official code also runs live.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import pickle
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import load_script

from facezoo.nets import stylegan2 as S
from facezoo.nets.stylegan2 import (
    Discriminator,
    Generator,
    ModulatedConv2d,
    channel_dict,
    convert_stylegan2_ada_state_dict,
    estimate_latent_avg,
    fused_leaky_relu,
    load_rosinality,
    load_rosinality_discriminator,
    make_kernel,
    save_rosinality,
    stylegan2_ada_generator_shapes,
    upfirdn2d,
)
from facezoo.utils import FacezooError

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("make_stylegan2", ROOT / "scripts" / "fixtures" / "make_stylegan2.py")
MK = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(MK)

OFFICIAL = os.environ.get("FACEZOO_OFFICIAL_STYLEGAN2")
OFFICIAL_ADA = os.environ.get("FACEZOO_OFFICIAL_STYLEGAN2_ADA")
TOL = 1e-4  # the bound on |facezoo - rosinality| for images (CPU, float32)


def tiny_generator(size=16, **kw) -> Generator:
    kw = {"style_dim": 16, "n_mlp": 2, "narrow": 1 / 64, **kw}
    return Generator(size, **kw)


def set_fused(g: torch.nn.Module, fused) -> None:
    for m in g.modules():
        if isinstance(m, ModulatedConv2d):
            m.fused = fused


def assert_summary_close(ours: dict, expected: dict, atol: float, rtol_moments: float = 1e-4) -> None:
    """Compare :func:`MK.summary` dicts: strided pixels to ``atol``, float64 moments relatively."""
    for name, want in expected.items():
        got = ours[name]
        diff = (got["sub"].double() - want["sub"].double()).abs().max().item()
        assert diff < atol, f"{name}: max |facezoo - official| = {diff:.3g} >= {atol}"
        scale = want["moments"].abs().clamp_min(1.0)
        rel = ((got["moments"].double() - want["moments"].double()).abs() / scale).max().item()
        assert rel < rtol_moments, f"{name}: moments differ by {rel:.3g} (relative)"


# ============================================================================================ resampling ops
def reference_upfirdn2d(x, k, up, down, pad):
    """The definition, written out: zero insertion, pad/crop, true 2-D convolution per channel, decimation."""
    (ux, uy), (dx, dy), (px0, px1, py0, py1) = up, down, pad
    b, c, h, w = x.shape
    z = x.new_zeros(b, c, h * uy, w * ux)
    z[:, :, ::uy, ::ux] = x
    z = F.pad(z, [px0, px1, py0, py1])
    kh, kw = k.shape
    out = F.conv2d(z.reshape(b * c, 1, *z.shape[2:]), k.flip(0, 1)[None, None])
    return out.reshape(b, c, *out.shape[2:])[:, :, ::dy, ::dx]


UPFIRDN_CASES = [  # (up, down, pad): rosinality's uses, then asymmetric, negative, anisotropic ones
    ((1, 1), (1, 1), (1, 1, 1, 1)),
    ((2, 2), (1, 1), (2, 1, 2, 1)),
    ((1, 1), (2, 2), (1, 1, 1, 1)),
    ((1, 1), (2, 2), (2, 2, 2, 2)),
    ((2, 2), (2, 2), (1, 2, 0, 3)),
    ((3, 2), (1, 2), (-1, 2, 3, -2)),
    ((1, 3), (3, 1), (0, 0, 4, 1)),
]


@pytest.mark.parametrize("up,down,pad", UPFIRDN_CASES)
@pytest.mark.parametrize("kind", ["2d", "1d", "pair"])
def test_upfirdn2d_matches_definition(up, down, pad, kind):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 7, generator=gen)
    ky, kx = torch.randn(4, generator=gen), torch.randn(3, generator=gen)
    kernel = {"2d": torch.randn(3, 5, generator=gen), "1d": ky, "pair": (ky, kx)}[kind]
    dense = {"2d": kernel, "1d": torch.outer(ky, ky), "pair": torch.outer(ky, kx)}[kind]
    expected = reference_upfirdn2d(x, dense, up, down, pad)
    out = upfirdn2d(x, kernel, up=up, down=down, pad=pad)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    cl = upfirdn2d(x.contiguous(memory_format=torch.channels_last), kernel, up=up, down=down, pad=pad)
    torch.testing.assert_close(cl, expected, atol=1e-5, rtol=1e-5)


def test_upfirdn2d_shape_formula_and_two_entry_pad():
    x = torch.randn(1, 2, 10, 6)
    k = make_kernel([1, 3, 3, 1])
    out = upfirdn2d(x, k, up=2, down=1, pad=(2, 1))
    assert out.shape == (1, 2, 20, 12)
    out = upfirdn2d(x, k, down=2, pad=(1, 1))
    assert out.shape == (1, 2, (10 + 2 - 4) // 2 + 1, (6 + 2 - 4) // 2 + 1)
    torch.testing.assert_close(upfirdn2d(torch.ones(1, 1, 8, 8), k, pad=(2, 1))[..., 2:-2, 2:-2],
                               torch.ones(1, 1, 4, 4))


def test_upfirdn2d_gradcheck():
    x = torch.randn(1, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    k = make_kernel([1, 3, 3, 1]).double() * 4
    for up, down, pad in [(2, 1, (2, 1)), (1, 2, (1, 1)), (1, 1, (1, 2))]:
        def op(t, up=up, down=down, pad=pad):
            return upfirdn2d(t, k, up=up, down=down, pad=pad)

        assert torch.autograd.gradcheck(op, (x,))
        assert torch.autograd.gradgradcheck(op, (x,))


@pytest.mark.parametrize("bad,match", [
    (dict(input=torch.zeros(2, 3, 4)), "input must be"),
    (dict(kernel=torch.zeros(2, 2, 2)), "kernel must be"),
    (dict(pad=(1, 2, 3)), "pad must have"),
    (dict(up=(1, 2, 3)), "up must be"),
])
def test_upfirdn2d_errors(bad, match):
    args = {"input": torch.zeros(1, 1, 4, 4), "kernel": make_kernel([1, 1]), "pad": (0, 0), "up": 1, **bad}
    with pytest.raises(ValueError, match=match):
        upfirdn2d(args["input"], args["kernel"], up=args["up"], pad=args["pad"])


def test_fir_modules_equal_function_and_separable_path():
    x = torch.randn(2, 3, 8, 8)
    up, down, blur = S.Upsample([1, 3, 3, 1]), S.Downsample([1, 3, 3, 1]), S.Blur([1, 3, 3, 1], pad=(2, 1))
    assert up(x).shape == (2, 3, 16, 16) and down(x).shape == (2, 3, 4, 4) and blur(x).shape == (2, 3, 8, 8)
    torch.testing.assert_close(up(x), upfirdn2d(x, make_kernel([1, 3, 3, 1]) * 4, up=2, pad=(2, 1)))
    for module in (up, down, blur):
        dense = module(x)
        module.separable = True
        torch.testing.assert_close(module(x), dense, atol=1e-6, rtol=1e-5)


def test_fused_leaky_relu():
    x = torch.randn(3, 4, 5, 5)
    b = torch.randn(4)
    before = x.clone()
    expected = F.leaky_relu(x + b.view(1, 4, 1, 1), 0.2) * math.sqrt(2)
    torch.testing.assert_close(fused_leaky_relu(x, b), expected)
    torch.testing.assert_close(fused_leaky_relu(x), F.leaky_relu(x, 0.2) * math.sqrt(2))
    torch.testing.assert_close(fused_leaky_relu(x, b, 0.1, 3.0), F.leaky_relu(x + b.view(1, 4, 1, 1), 0.1) * 3.0)
    assert torch.equal(x, before), "the input must not be modified in place"
    module = S.FusedLeakyReLU(4)
    module.bias.data = b
    torch.testing.assert_close(module(x), expected)
    xd = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)
    bd = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fused_leaky_relu, (xd, bd))
    assert torch.autograd.gradgradcheck(fused_leaky_relu, (xd, bd))


# ========================================================================================== layers and nets
@pytest.mark.parametrize("mode", ["plain", "up", "down", "rgb"])
@pytest.mark.parametrize("batch", [1, 3])
def test_modulated_conv_fused_and_shared_weight_agree(mode, batch):
    torch.manual_seed(0)
    conv = ModulatedConv2d(6, 5, 1 if mode == "rgb" else 3, 8, demodulate=mode != "rgb",
                           upsample=mode == "up", downsample=mode == "down")
    x, style = torch.randn(batch, 6, 8, 8), torch.randn(batch, 8)
    outs = []
    for fused in (True, False, None):
        conv.fused = fused
        outs.append(conv(x, style))
    size = {"up": 16, "down": 4}.get(mode, 8)
    assert outs[0].shape == (batch, 5, size, size)
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], atol=1e-5, rtol=1e-5)


def test_conv_layer_fast_path_equals_sequential_application():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    for layer in (S.ConvLayer(4, 6, 1, downsample=True, activate=False, bias=False),
                  S.ConvLayer(4, 6, 3, downsample=True), S.ConvLayer(4, 6, 3)):
        for p in layer.parameters():
            p.data.normal_()
        sequential = x
        for sub in layer:
            sequential = sub(sequential)
        torch.testing.assert_close(layer(x), sequential, atol=1e-5, rtol=1e-5)


def test_channel_dict_and_sizes():
    assert channel_dict(2) == {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}
    assert channel_dict(1)[64] == 256 and channel_dict(1, narrow=0.25)[256] == 16
    for size in (8, 32, 64):
        g = tiny_generator(size)
        assert g.n_latent == 2 * int(math.log2(size)) - 2 and g.num_layers == g.n_latent - 1
        image, _ = g([torch.randn(2, 16)])
        assert image.shape == (2, 3, size, size)
        assert Discriminator(size, narrow=1 / 64)(image).shape == (2, 1)
    custom = Generator(16, 8, 1, channels={4: 3, 8: 5, 16: 7})
    assert [custom.channels[r] for r in (4, 8, 16)] == [3, 5, 7]
    for bad in (12, 2048, 4):
        with pytest.raises(ValueError, match="power of two"):
            Generator(bad)
    with pytest.raises(ValueError, match="missing"):
        Generator(16, channels={4: 3})


def test_default_buffers_are_rosinalitys_kernels():
    """Strict loading overwrites kernels, so facezoo's own defaults must equal rosinality's (the seeded values)."""
    g, d = Generator(16, 8, 1, narrow=1 / 64), Discriminator(16, narrow=1 / 64)
    for module in (g, d):
        for name, value in module.state_dict().items():
            if name.endswith("kernel"):
                torch.testing.assert_close(value, MK.seeded_value(name, value.shape, torch.Generator()))


def test_generator_api():
    torch.manual_seed(0)
    g = tiny_generator(16).eval()
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    w1, w2 = g.get_latent(z1), g.get_latent(z2)
    image, latent = g([z1, z2], inject_index=2, return_latents=True, randomize_noise=False)
    assert image.shape == (2, 3, 16, 16) and latent.shape == (2, g.n_latent, 16)
    torch.testing.assert_close(latent[:, :2], w1[:, None].expand(2, 2, 16))
    torch.testing.assert_close(latent[:, 2:], w2[:, None].expand(2, g.n_latent - 2, 16))
    assert g([z1])[1] is None
    # stored noise is deterministic, random noise is not, explicit noise (None entries allowed) overrides both
    a, b = g([z1], randomize_noise=False)[0], g([z1], randomize_noise=False)[0]
    assert torch.equal(a, b)
    for m in g.modules():
        if isinstance(m, S.NoiseInjection):
            m.weight.data.fill_(0.5)
    assert not torch.equal(g([z1])[0], g([z1])[0])
    noise = g.make_noise()
    assert [n.shape[-1] for n in noise] == [4, 8, 8, 16, 16]
    torch.testing.assert_close(g([z1], noise=noise)[0], g([z1], noise=noise, randomize_noise=True)[0])
    c = g([z1], noise=[None] * g.num_layers)[0]
    assert c.shape == a.shape
    # truncation: 0 gives the truncation latent's image; W and W+ inputs agree
    mean = g.mean_latent(256)
    assert mean.shape == (1, 16)
    t0 = g([z1], truncation=0.0, truncation_latent=mean, return_latents=True, randomize_noise=False)[1]
    torch.testing.assert_close(t0, mean.expand(2, g.n_latent, 16))
    wplus = w1[:, None].repeat(1, g.n_latent, 1)
    torch.testing.assert_close(g([w1], input_is_latent=True, randomize_noise=False)[0],
                               g([wplus], input_is_latent=True, randomize_noise=False)[0])
    torch.testing.assert_close(g(z1, randomize_noise=False)[0], g([z1], randomize_noise=False)[0])


@pytest.mark.parametrize("call,match", [
    (lambda g: g([torch.randn(2, 5)]), r"each style must be \(B, 16\)"),
    (lambda g: g([torch.randn(2, 6, 16)]), r"each style must be"),
    (lambda g: g([torch.randn(2, 3, 16)], input_is_latent=True), r"\(B, 6, 16\)"),
    (lambda g: g([torch.randn(2, 16)] * 3), "one or two latents"),
    (lambda g: g([torch.randn(2, 16)], noise=[None]), "noise must be a list of 5"),
    (lambda g: g([torch.randn(2, 16)], truncation=0.5), "truncation_latent"),
])
def test_generator_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny_generator(16))


def test_discriminator_errors_and_group():
    d = Discriminator(16, narrow=1 / 64)
    with pytest.raises(ValueError, match="not divisible"):
        d(torch.randn(6, 3, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        d(torch.randn(4, 3, 32, 32))
    assert d(torch.randn(3, 3, 16, 16)).shape == (3, 1)  # group = min(batch, 4)


def test_training_step_double_backward_matches_contiguous_layout():
    """R1 (D input gradient) and path-length (G latent gradient) need double backward through the in-place ops."""
    torch.manual_seed(0)
    g, d = tiny_generator(16).double(), Discriminator(16, narrow=1 / 64).double()
    results = []
    for channels_last in (True, False):
        g.channels_last = d.channels_last = channels_last
        g.zero_grad(), d.zero_grad()
        torch.manual_seed(1)
        wplus = torch.randn(4, g.n_latent, 16, dtype=torch.float64, requires_grad=True)
        image = g([wplus], input_is_latent=True, noise=[n.double() for n in g.make_noise()])[0]
        (grad_w,) = torch.autograd.grad((image * 0.1).sum(), wplus, create_graph=True)
        real = image.detach().requires_grad_(True)
        (grad_x,) = torch.autograd.grad(d(real).sum(), real, create_graph=True)
        (grad_w.square().sum() + grad_x.square().sum() + F.softplus(-d(image)).mean()).backward()
        results.append([p.grad.clone() for p in list(g.parameters()) + list(d.parameters()) if p.grad is not None])
    assert len(results[0]) == len(results[1]) > 0
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-7)


def test_bf16_autocast_cpu():
    torch.manual_seed(0)
    g, d = tiny_generator(16, narrow=1 / 32).eval(), Discriminator(16, narrow=1 / 32)
    z = torch.randn(2, 16)
    with torch.no_grad():
        full = g([z], randomize_noise=False)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = g([z], randomize_noise=False)[0]
            logits = d(half)
    assert torch.isfinite(half).all() and torch.isfinite(logits).all() and logits.shape == (2, 1)
    assert (half.float() - full).abs().max() < 0.1 * full.abs().max()


@pytest.mark.slow
def test_torch_compile_tiny():
    torch.manual_seed(0)
    g, d = tiny_generator(16).eval(), Discriminator(16, narrow=1 / 64).eval()
    z = torch.randn(2, 16)
    with torch.no_grad():
        eager_img, eager_logits = g([z], randomize_noise=False)[0], d(torch.randn(2, 3, 16, 16,
                                                                                  generator=torch.Generator()))
        cg, cd = torch.compile(g), torch.compile(d)
        compiled_img = cg([z], randomize_noise=False)[0]
        compiled_logits = cd(torch.randn(2, 3, 16, 16, generator=torch.Generator()))
    torch.testing.assert_close(compiled_img, eager_img, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(compiled_logits, eager_logits, atol=1e-4, rtol=1e-4)


# ================================================================================= rosinality parity (fixture)
@pytest.fixture(scope="module")
def rosinality_fixture():
    return torch.load(MK.ROSINALITY_FIXTURE, weights_only=True)


@pytest.fixture(scope="module")
def rosinality_files(tmp_path_factory):
    """The seeded state dicts saved in rosinality's file format."""
    g_sd, d_sd = MK.seeded_rosinality_state_dicts()
    path = tmp_path_factory.mktemp("rosinality") / "seeded.pt"
    torch.save({"g_ema": g_sd, "g": g_sd, "d": d_sd, "latent_avg": torch.zeros(512)}, path)
    return path


def test_state_dict_names_and_shapes_are_rosinalitys(rosinality_fixture):
    with torch.device("meta"):
        g, d = Generator(**MK.G_CONFIG), Discriminator(**MK.D_CONFIG)
    assert [(k, tuple(v.shape)) for k, v in g.state_dict().items()] == \
        [(k, tuple(s)) for k, s in rosinality_fixture["g_shapes"]]
    assert [(k, tuple(v.shape)) for k, v in d.state_dict().items()] == \
        [(k, tuple(s)) for k, s in rosinality_fixture["d_shapes"]]


@pytest.mark.parametrize("fused", [None, True], ids=["default", "grouped"])
def test_generator_matches_rosinality(rosinality_fixture, rosinality_files, fused):
    g, latent_avg = load_rosinality(rosinality_files)
    assert latent_avg.shape == (512,) and not g.training
    set_fused(g, fused)
    expected = dict(rosinality_fixture["generator"])
    expected_grad_f32, expected_grad_f64 = expected.pop("wplus_grad"), expected.pop("wplus_grad_float64")
    ours = MK.run_generator_cases(g, MK.rosinality_inputs())
    grad = ours.pop("wplus_grad")
    assert_summary_close(ours, expected, TOL)
    # rosinality's grouped backward loses ~3 digits of this (scale-invariant) gradient in float32: facezoo's
    # default shared-weight path matches the float64 gradient, its grouped path matches rosinality's float32
    reference = expected_grad_f64 if fused is None else expected_grad_f32
    assert_summary_close({"wplus_grad": grad}, {"wplus_grad": reference}, 5 * TOL, rtol_moments=1e-3)


def test_discriminator_matches_rosinality(rosinality_fixture, rosinality_files):
    d = load_rosinality_discriminator(rosinality_files)
    ours = MK.run_discriminator_cases(d, MK.rosinality_inputs())
    assert_summary_close(ours, rosinality_fixture["discriminator"], TOL)


@pytest.mark.skipif(not OFFICIAL, reason="FACEZOO_OFFICIAL_STYLEGAN2 not set")
def test_live_rosinality(rosinality_files):
    official = MK.official_rosinality_outputs(OFFICIAL)
    g, _ = load_rosinality(rosinality_files)
    x = MK.rosinality_inputs()
    ours = MK.run_generator_cases(g, x)
    expected = dict(official["generator"])
    expected.pop("wplus_grad")
    expected["wplus_grad"] = expected.pop("wplus_grad_float64")
    assert_summary_close(ours, expected, TOL)
    assert_summary_close(MK.run_discriminator_cases(load_rosinality_discriminator(rosinality_files), x),
                         official["discriminator"], TOL)
    from op.fused_act import fused_leaky_relu as official_flrelu  # the stub package the import registered
    from op.upfirdn2d import upfirdn2d_native

    gen = torch.Generator().manual_seed(0)
    for up, down, pad in UPFIRDN_CASES:
        x = torch.randn(2, 3, 9, 7, generator=gen)
        k = torch.randn(4, 3, generator=gen)
        ref = upfirdn2d_native(x, k, *up, *down, *pad)
        torch.testing.assert_close(upfirdn2d(x, k, up=up, down=down, pad=pad), ref, atol=1e-5, rtol=1e-5)
    x, b = torch.randn(3, 4, 5, 5, generator=gen), torch.randn(4, generator=gen)
    torch.testing.assert_close(fused_leaky_relu(x, b), official_flrelu(x, b))


# ========================================================================================== checkpoint files
def test_save_and_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    g, g_train = Generator(32, 16, 2, channel_multiplier=1, narrow=1 / 32), Generator(32, 16, 2, narrow=1 / 32)
    d = Discriminator(32, channel_multiplier=1, narrow=1 / 32)
    path = tmp_path / "ckpt.pt"
    save_rosinality(path, g, torch.ones(1, 16), g=g_train, d=d)
    loaded, avg = load_rosinality(path)
    assert (loaded.size, loaded.style_dim, loaded.n_mlp, loaded.channels[4]) == (32, 16, 2, 16)
    torch.testing.assert_close(avg, torch.ones(16))
    z = torch.randn(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded([z], randomize_noise=False)[0], g.eval()([z], randomize_noise=False)[0])
    assert load_rosinality(path, key="g")[0].config()["channels"] == g_train.config()["channels"]
    assert load_rosinality_discriminator(path).config()["channels"] == d.config()["channels"]
    # architectures outside the channel formula are loaded through an explicit channel dict
    odd = Generator(16, 8, 1, channels={4: 6, 8: 5, 16: 3})
    save_rosinality(tmp_path / "odd.pt", odd, None)
    loaded, avg = load_rosinality(tmp_path / "odd.pt")
    assert avg is None and [loaded.channels[r] for r in (4, 8, 16)] == [6, 5, 3]


def test_load_rosinality_train_checkpoint_with_args(tmp_path):
    """rosinality train.py saves {g, d, g_ema, g_optim, d_optim, args (Namespace), ada_aug_p}: weights_only loads it."""
    g = tiny_generator(16)
    d = Discriminator(16, narrow=1 / 64)
    optim = torch.optim.Adam(g.parameters())
    g([torch.randn(1, 16)])[0].sum().backward()
    optim.step()
    path = tmp_path / "050000.pt"
    torch.save({"g": g.state_dict(), "d": d.state_dict(), "g_ema": g.state_dict(), "g_optim": optim.state_dict(),
                "args": argparse.Namespace(size=16, channel_multiplier=2), "ada_aug_p": 0.1}, path)
    loaded, avg = load_rosinality(path)
    assert avg is None and loaded.size == 16


class _NotAllowed:
    pass


@pytest.mark.parametrize("make,match", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"not a checkpoint"), "not a torch checkpoint"),
    (lambda p: torch.save([1, 2], p), "holds a list"),
    (lambda p: torch.save({"g": {}}, p), "no 'g_ema' entry"),
    (lambda p: torch.save({"g_ema": {"a": 1}}, p), "not a state dict of tensors"),
    (lambda p: torch.save({"g_ema": {"input.input": torch.zeros(1)}}, p), "no 'style.1.weight'"),
    (lambda p: torch.save({"g_ema": {k: v for k, v in tiny_generator(16).state_dict().items()
                                     if k != "conv1.noise.weight"}}, p), "missing conv1.noise.weight"),
    (lambda p: torch.save({"g_ema": {**tiny_generator(16).state_dict(), "conv1.activate.bias": torch.zeros(3)}}, p),
     r"wrong shapes: conv1.activate.bias \(3,\)"),
    (lambda p: torch.save({"g_ema": {**tiny_generator(16).state_dict(), "extra": torch.zeros(1)}}, p),
     "unexpected extra"),
    (lambda p: torch.save({"g_ema": tiny_generator(16).state_dict(), "latent_avg": torch.zeros(3)}, p),
     "latent_avg must be"),
    (lambda p: torch.save({"g_ema": tiny_generator(16).state_dict(), "x": _NotAllowed()}, p),
     r"holds a .*_NotAllowed object, which torch.load\(weights_only=True\) refuses"),
])
def test_load_rosinality_refuses_bad_files_in_one_line(tmp_path, make, match):
    path = tmp_path / "bad.pt"
    make(path)
    with pytest.raises(FacezooError, match=match) as info:
        load_rosinality(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_1024_config_f_loads_strictly_and_runs(tmp_path):
    """stylegan2-ffhq-config-f.pt layout (1024 px, channel multiplier 2) with random weights, batch 1."""
    start = time.perf_counter()
    torch.manual_seed(0)
    g = Generator(1024, channels_last=True)
    path = tmp_path / "stylegan2-ffhq-config-f.pt"
    torch.save({"g_ema": g.state_dict(), "latent_avg": torch.randn(512)}, path)
    del g
    loaded, avg = load_rosinality(path)
    assert (loaded.size, loaded.channel_multiplier, loaded.n_latent, avg.shape) == (1024, 2, 18, (512,))
    assert loaded.channels[1024] == 32
    with torch.no_grad():
        image, _ = loaded([avg[None]], input_is_latent=True, randomize_noise=False)
    assert image.shape == (1, 3, 1024, 1024) and torch.isfinite(image).all()
    print(f"1024 px load + forward: {time.perf_counter() - start:.1f} s")


# =========================================================================================== stylegan2-ada
@pytest.fixture(scope="module")
def ada_fixture():
    return torch.load(MK.ADA_FIXTURE, weights_only=True)


def test_ada_shapes_are_stylegan2_adas(ada_fixture):
    channels = {2**i: MK.ADA_CHANNELS for i in range(2, 6)}
    ours = stylegan2_ada_generator_shapes(MK.ADA_SIZE, channels, MK.ADA_W_DIM, MK.ADA_W_DIM, MK.ADA_MLP)
    assert ours == {k: tuple(s) for k, s in ada_fixture["shapes"]}


def test_ada_conversion_matches_stylegan2_ada(ada_fixture, tmp_path):
    converted, latent_avg, config = convert_stylegan2_ada_state_dict(MK.seeded_ada_state_dict())
    assert config["size"] == 32 and config["style_dim"] == MK.ADA_W_DIM
    path = tmp_path / "converted.pt"
    g = Generator(**config)
    g.load_state_dict(converted, strict=True)
    save_rosinality(path, g, latent_avg)
    g, latent_avg = load_rosinality(path)
    torch.testing.assert_close(latent_avg, MK.seeded_ada_state_dict()["mapping.w_avg"])
    assert_summary_close(MK.run_ada_facezoo(g, latent_avg, MK.ada_inputs()), ada_fixture["outputs"], TOL)


def test_ada_conversion_without_w_avg_uses_mapped_mean():
    sd = MK.seeded_ada_state_dict(with_w_avg=False)
    converted, latent_avg, config = convert_stylegan2_ada_state_dict(sd, n_mean_latent=3000, seed=5)
    g = Generator(**config)
    g.load_state_dict(converted)
    torch.testing.assert_close(latent_avg, estimate_latent_avg(g, 3000, seed=5, chunk=700))
    z = torch.randn(3000, MK.ADA_W_DIM, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(latent_avg, g.style(z).mean(0), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("edit,match", [
    (lambda sd: sd.update({"mapping.embed.weight": torch.zeros(1)}), "conditional"),
    (lambda sd: sd.pop("synthesis.b4.const"), "not a stylegan2-ada-pytorch generator"),
    (lambda sd: sd.pop("synthesis.b16.torgb.bias"), "missing synthesis.b16.torgb.bias"),
    (lambda sd: sd.update({"synthesis.b8.skip.weight": torch.zeros(1)}), "unexpected synthesis.b8.skip.weight"),
    (lambda sd: sd.update({"synthesis.b8.conv0.bias": torch.zeros(3)}), "wrong shapes"),
    (lambda sd: sd.update({"mapping.fc0.weight": torch.zeros(MK.ADA_W_DIM, 7)}), "z_dim 7 != w_dim"),
])
def test_ada_conversion_refuses(edit, match):
    sd = MK.seeded_ada_state_dict()
    edit(sd)
    with pytest.raises(FacezooError, match=match):
        convert_stylegan2_ada_state_dict(sd, n_mean_latent=10)


def test_convert_script(tmp_path, capsys):
    script = load_script("convert_stylegan2.py")
    src = tmp_path / "g_ema.pt"
    torch.save({"G_ema": MK.seeded_ada_state_dict(with_w_avg=False)}, src)
    out = tmp_path / "out" / "rosinality.pt"
    script.main([str(src), str(out), "--n-mean-latent", "500"])
    assert "latent_avg = mean of 500 mapped samples" in capsys.readouterr().out
    g, latent_avg = load_rosinality(out)
    torch.testing.assert_close(latent_avg, estimate_latent_avg(g, 500, seed=0))
    torch.save({"G_ema": {"x": torch.zeros(1)}}, src)
    with pytest.raises(SystemExit, match="not a stylegan2-ada-pytorch generator"):
        script.main([str(src), str(out)])


@pytest.mark.skipif(not OFFICIAL_ADA, reason="FACEZOO_OFFICIAL_STYLEGAN2_ADA not set")
def test_live_stylegan2_ada(tmp_path):
    official = MK.official_ada_outputs(OFFICIAL_ADA)
    converted, latent_avg, config = convert_stylegan2_ada_state_dict(MK.seeded_ada_state_dict())
    g = Generator(**config).eval()
    g.load_state_dict(converted, strict=True)
    assert_summary_close(MK.run_ada_facezoo(g, latent_avg, MK.ada_inputs()), official["outputs"], TOL)
    # and a real network pickle through the converter script, --verify against stylegan2-ada's own module
    networks = MK.import_ada(OFFICIAL_ADA)
    G = networks.Generator(z_dim=MK.ADA_W_DIM, c_dim=0, w_dim=MK.ADA_W_DIM, img_resolution=MK.ADA_SIZE,
                           img_channels=3, mapping_kwargs={"num_layers": MK.ADA_MLP},
                           synthesis_kwargs={"channel_max": MK.ADA_CHANNELS})
    G.load_state_dict(MK.seeded_ada_state_dict())
    D = networks.Discriminator(c_dim=0, img_resolution=MK.ADA_SIZE, img_channels=3, channel_max=MK.ADA_CHANNELS)
    pkl = tmp_path / "network-snapshot.pkl"
    with open(pkl, "wb") as f:
        pickle.dump({"G": G, "D": D, "G_ema": G}, f)
    script = load_script("convert_stylegan2.py")
    state_dict, module = script.read_source(pkl, "G_ema", Path(OFFICIAL_ADA))
    loaded, _ = load_rosinality(_convert_to(tmp_path / "from_pkl.pt", state_dict))
    assert script.verify(module, loaded, None) < TOL


def _convert_to(path: Path, state_dict) -> Path:
    converted, latent_avg, config = convert_stylegan2_ada_state_dict(state_dict)
    g = Generator(**config)
    g.load_state_dict(converted, strict=True)
    save_rosinality(path, g, latent_avg)
    return path
