"""MaskGAN's networks: parity with the official demo's code, loading its files strictly, and behaviour.

Parity runs against ``tests/fixtures/maskgan_official*.{pt,json}``, written by
``scripts/fixtures/make_maskgan.py --official CHECKOUT`` from the demo's own networks on seeded weights and inputs.
With ``FACEZOO_OFFICIAL_MASKGAN=CHECKOUT`` (a checkout of switchablenorms/CelebAMask-HQ) the demo's code also runs
live and full outputs are compared.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from facezoo.methods.maskgan import (
    BlendGenerator,
    DenseMappingNetwork,
    MaskVAE,
    MultiscaleDiscriminator,
    adaptive_instance_norm,
    load_official,
    one_hot,
)
from facezoo.methods.maskgan.official import (
    build,
    from_official_state_dict,
    official_key_map,
    official_shapes,
    seeded_official_state_dict,
    to_official_state_dict,
)
from facezoo.utils import FacezooError

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
TOL = 1e-4
PARTS = ("G", "B", "D", "VAE")


def _script():
    spec = importlib.util.spec_from_file_location("make_maskgan", ROOT / "scripts" / "fixtures" / "make_maskgan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()


def seeded_file(tmp_path: Path, part: str) -> Path:
    """The demo-format file of a parity case, with the seeded weights (built from facezoo's key map)."""
    net = build(part, **SCRIPT.CASES[part]["arch"])
    path = tmp_path / f"latest_net_{part}.pth"
    torch.save(seeded_official_state_dict(official_shapes(net), SCRIPT.SEED), path)
    return path


@torch.no_grad()
def run_facezoo(part: str, net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """facezoo's outputs of one parity case, named as ``make_maskgan.run_demo`` names the demo's."""
    x = SCRIPT.inputs(part)
    if part == "G":
        return {"image": net(x["mask"], x["mask_ref"], x["image_ref"])}
    if part == "B":
        blend, alpha = net(x["a"], x["b"])
        return {"blend": blend, "alpha": alpha}
    if part == "D":
        out = net(x["image"], x["mask"])
        return {f"scale{i}_layer{j}": f for i, scale in enumerate(out) for j, f in enumerate(scale)}
    mu, logvar = net.encode(x["mask"])
    logits, mu_f, logvar_f = net(x["mask"], noise=x["noise"])
    assert torch.equal(mu, mu_f) and torch.equal(logvar, logvar_f)
    decoded = net.decode(mu)
    net.train()
    mu_train, _ = net.encode(x["mask"])
    return {"mu": mu, "logvar": logvar, "decoded_mu": decoded, "logits": logits, "mu_train": mu_train}


# --------------------------------------------------------------------------------------------------
# parity with the demo
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("part", PARTS)
def test_parity_with_demo_fixture(tmp_path, part):
    """Seeded weights in the demo's format load strictly and reproduce the demo's outputs (digests, < 1e-4)."""
    fixture = torch.load(FIXTURES / "maskgan_official.pt", weights_only=True)[part]
    expected = SCRIPT.split_digests(fixture)
    net = load_official(seeded_file(tmp_path, part), part, **SCRIPT.CASES[part]["arch"])
    ours = run_facezoo(part, net)
    assert list(ours) == fixture["names"]
    for (name, tensor), shape in zip(ours.items(), fixture["shapes"]):
        assert list(tensor.shape) == shape, name
        diff = (SCRIPT.digest(tensor) - expected[name]).abs().max().item()
        assert diff < TOL, f"{part} {name}: max abs difference {diff:.2e}"


OFFICIAL = os.environ.get("FACEZOO_OFFICIAL_MASKGAN")


@pytest.mark.skipif(not OFFICIAL, reason="set FACEZOO_OFFICIAL_MASKGAN to a switchablenorms/CelebAMask-HQ checkout")
@pytest.mark.parametrize("part", PARTS)
def test_parity_with_demo_live(tmp_path, part):
    """The demo's own network saves a file facezoo loads strictly; full outputs agree to < 1e-4."""
    networks = SCRIPT.import_demo_networks(OFFICIAL)
    demo = SCRIPT.seeded_demo_network(networks, part)
    path = tmp_path / f"latest_net_{part}.pth"
    torch.save(demo.cpu().state_dict(), path)  # as models/base_model.py save_network
    theirs = SCRIPT.run_demo(networks, part, demo)
    ours = run_facezoo(part, load_official(path, part, **SCRIPT.CASES[part]["arch"]))
    assert list(ours) == list(theirs)
    for name in ours:
        diff = (ours[name] - theirs[name]).abs().max().item()
        assert diff < TOL, f"{part} {name}: max abs difference {diff:.2e}"


@pytest.mark.parametrize("part", PARTS)
def test_default_architecture_has_the_demo_key_shapes(part):
    """At the demo's defaults (512 px) the demo's files have exactly facezoo's mapped keys and shapes."""
    demo = json.loads((FIXTURES / "maskgan_official_shapes.json").read_text())[part]
    with torch.device("meta"):
        net = build(part)
    ours = {k: list(v) for k, v in official_shapes(net).items()}
    assert set(ours) == set(demo)
    assert ours == demo


def test_default_sizes():
    with torch.device("meta"):
        g, vae = DenseMappingNetwork(), MaskVAE()
    assert g.style_dim == 16384 and len(vae.encoder) == 7 and vae.fc_mu.out_features == 1024
    assert vae.fc_mu.in_features == 2048 * 16 and g.backbone.blocks[0].conv1.in_channels == 1024


# --------------------------------------------------------------------------------------------------
# loading files
# --------------------------------------------------------------------------------------------------

TINY = {
    "G": {"ngf": 4, "n_downsample": 2, "n_blocks": 1, "label_ngf": 4, "style_ngf": 4},
    "B": {"ngf": 4, "n_downsample": 2, "n_blocks": 1},
    "D": {"ndf": 4, "n_layers": 2},
    "VAE": {"ngf": 2, "ndf": 2, "latent_dim": 4, "resolution": 32},
}


@pytest.mark.parametrize("part", PARTS)
def test_round_trip_through_the_demo_format(tmp_path, part):
    torch.manual_seed(0)
    net = build(part, **TINY[part]).eval()
    path = tmp_path / "net.pth"
    torch.save(to_official_state_dict(net), path)
    loaded = load_official(path, part, **TINY[part])
    assert not loaded.training
    for (k, a), b in zip(net.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


def _tiny_file(tmp_path: Path, part: str = "G", edit=None) -> Path:
    state = to_official_state_dict(build(part, **TINY[part]))
    if edit:
        edit(state)
    path = tmp_path / "net.pth"
    torch.save(state, path)
    return path


def _one_line(err) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_refuses_a_missing_key(tmp_path):
    path = _tiny_file(tmp_path, edit=lambda s: s.pop("enc_style.sft2.SFT_shift_conv1.weight"))
    with pytest.raises(FacezooError) as err:
        load_official(path, "G", **TINY["G"])
    assert "missing enc_style.sft2.SFT_shift_conv1.weight" in _one_line(err)


def test_refuses_an_unexpected_key(tmp_path):
    path = _tiny_file(tmp_path, edit=lambda s: s.__setitem__("model.99.weight", torch.zeros(1)))
    with pytest.raises(FacezooError) as err:
        load_official(path, "G", **TINY["G"])
    assert "unexpected model.99.weight" in _one_line(err)


def test_refuses_the_dummy_adain_buffers_missing(tmp_path):
    """The demo's G files always hold the AdaIN dummy buffers; a file without them is not one."""
    path = _tiny_file(tmp_path, edit=lambda s: s.pop("model.10.conv_block.1.norm.running_var"))
    with pytest.raises(FacezooError, match="missing model.10.conv_block.1.norm.running_var"):
        load_official(path, "G", **TINY["G"])


def test_refuses_a_wrong_shape(tmp_path):
    path = _tiny_file(tmp_path, "B")
    with pytest.raises(FacezooError) as err:
        load_official(path, "B", **{**TINY["B"], "ngf": 8})
    assert "model.1.weight has shape (4, 6, 7, 7)" in _one_line(err) and "(8, 6, 7, 7)" in str(err.value)


def test_refuses_files_that_are_not_state_dicts(tmp_path):
    path = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(FacezooError, match="not a readable state dict"):
        load_official(path, "D", **TINY["D"])
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(FacezooError, match="not a readable state dict"):
        load_official(path, "D", **TINY["D"])
    with pytest.raises(FacezooError, match="no such file"):
        load_official(tmp_path / "absent.pth", "D")
    with pytest.raises(ValueError, match="part must be one of"):
        load_official(path, "E")


def test_refuses_pickled_objects(tmp_path):
    """Files are read with weights_only=True: arbitrary pickled objects are refused, not executed."""
    torch.save({"opt": argparse.Namespace(ngf=64)}, tmp_path / "obj.pth")
    with pytest.raises(FacezooError, match="not a readable state dict"):
        load_official(tmp_path / "obj.pth", "G")


def test_legacy_serialization_loads(tmp_path):
    """PyTorch 0.4 wrote the pre-zip format, as the released latest_net_G.pth."""
    state = to_official_state_dict(build("G", **TINY["G"]))
    torch.save(state, tmp_path / "g.pth", _use_new_zipfile_serialization=False)
    assert not load_official(tmp_path / "g.pth", "G", **TINY["G"]).training


def test_vae_file_without_num_batches_tracked_loads(tmp_path):
    """PyTorch 0.4.0 wrote BatchNorm state without num_batches_tracked."""
    def drop(state):
        for key in [k for k in state if k.endswith("num_batches_tracked")]:
            del state[key]
    load_official(_tiny_file(tmp_path, "VAE", drop), "VAE", **TINY["VAE"])


def test_module_prefix_is_stripped(tmp_path):
    state = {f"module.{k}": v for k, v in to_official_state_dict(build("D", **TINY["D"])).items()}
    torch.save(state, tmp_path / "d.pth")
    load_official(tmp_path / "d.pth", "D", **TINY["D"])


def test_key_map_examples():
    with torch.device("meta"):
        g, d, v = DenseMappingNetwork(), MultiscaleDiscriminator(num_scales=3), MaskVAE()
    g, d, v = official_key_map(g), official_key_map(d), official_key_map(v)
    assert g["backbone.stem.conv.weight"] == "model.1.weight"
    assert g["backbone.blocks.3.conv2.bias"] == "model.19.conv_block.1.conv.bias"
    assert g["backbone.up.0.conv.weight"] == "model.20.weight"
    assert g["backbone.head.conv.weight"] == "model.33.weight"
    assert g["label_encoder.down2.0.conv.weight"] == "enc_label.model_last.1.conv.weight"
    assert g["style_encoder.to_style.weight"] == "enc_style.model_last.1.weight"
    assert d["scales.0.layers.0.conv.weight"] == "scale2_layer0.0.weight"  # full resolution = highest index
    assert v["decoder.0.norm.running_var"] == "bn8.running_var" and v["to_logits.conv.weight"] == "d8.weight"


# --------------------------------------------------------------------------------------------------
# behaviour
# --------------------------------------------------------------------------------------------------


def test_one_hot():
    labels = torch.tensor([[[0, 18], [5, 5]]])
    out = one_hot(labels)
    assert out.shape == (1, 19, 2, 2) and out.dtype == torch.float32
    assert torch.equal(out.argmax(1), labels) and torch.equal(out.sum(1), torch.ones(1, 2, 2))
    with pytest.raises(ValueError, match=r"\[0, 18\], got values in \[0, 19\]"):
        one_hot(torch.tensor([[[0, 19]]]))
    with pytest.raises(ValueError, match="integer"):
        one_hot(torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        one_hot(torch.zeros(2, 2, dtype=torch.long))


def test_adaptive_instance_norm_matches_its_definition_and_gradcheck():
    x, mean, std = torch.randn(2, 3, 5, 4, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64), \
        torch.randn(2, 3, dtype=torch.float64)
    mu, var = x.mean((2, 3), keepdim=True), x.var((2, 3), unbiased=False, keepdim=True)
    expected = (x - mu) / torch.sqrt(var + 1e-5) * std[..., None, None] + mean[..., None, None]
    assert torch.allclose(adaptive_instance_norm(x, mean, std), expected)
    assert torch.autograd.gradcheck(adaptive_instance_norm, (x.requires_grad_(), mean.requires_grad_(),
                                                             std.requires_grad_()))


def _g():
    """A tiny generator with weights large enough for the style to matter (the demo's N(0, 0.02) init hides it)."""
    g = DenseMappingNetwork(**TINY["G"])
    g.load_state_dict(from_official_state_dict(seeded_official_state_dict(official_shapes(g), 0), g))
    return g


@pytest.mark.parametrize("size", [64, 128])
def test_generator_small_preset_trains_at_cpu_sizes(size):
    """Small widths at 64 / 128 px: output in [-1, 1]; gradients reach both encoders through the AdaIN path."""
    g = _g()
    mask = torch.randint(0, 19, (2, size, size))
    out = g(mask, mask, torch.rand(2, 3, size, size) * 2 - 1)
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1
    out.mean().backward()
    for name in ("style_encoder.down1.0.conv.weight", "label_encoder.down1.0.conv.weight",
                 "style_encoder.sft1.scale_conv1.weight", "backbone.stem.conv.weight"):
        grad = g.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_generator_fast_path_runs_bf16_weights_close_to_fp32():
    g = _g().eval()
    torch.manual_seed(1)
    mask, image = torch.randint(0, 19, (2, 32, 32)), torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        exact, style = g(mask, mask, image), g.encode_style(mask, image)
        assert g.fast_path() is g and not g.training
        assert {p.dtype for p in g.parameters()} == {torch.bfloat16}
        fast, fast_style = g(mask, mask, image), g.encode_style(mask, image)
    assert fast.dtype == fast_style.dtype == torch.float32 and not torch.equal(fast, exact)      # bf16 did run
    assert 10 * torch.log10(4 / (fast - exact).pow(2).mean()) > 30
    torch.testing.assert_close(fast_style, style, atol=0.05, rtol=0.05)


def test_generator_style_paths_agree():
    g = _g().eval()
    torch.manual_seed(1)
    mask, ref, image = torch.randint(0, 19, (3, 32, 32)), torch.randint(0, 19, (3, 32, 32)), torch.rand(3, 3, 32, 32)
    out = g(mask, ref, image)
    style = g.encode_style(ref, image)
    assert style.shape == (3, g.style_dim)
    assert torch.allclose(g(mask, style=style), out)
    assert torch.allclose(g(one_hot(mask), one_hot(ref), image), out)            # one-hot in = label map in
    assert torch.allclose(g(mask, style=style[1]), g(mask, style=style[1:2].expand(3, -1)))
    # samples do not mix: the first sample alone gives the same image
    assert torch.allclose(g(mask[:1], ref[:1], image[:1]), out[:1], atol=1e-6)
    # the reference changes the output; so does the mask to render
    assert not torch.allclose(g(mask, ref, image.flip(0)), out, atol=1e-3)
    assert not torch.allclose(g(mask.flip(0), ref, image), out, atol=1e-3)


def test_generator_rejects_bad_inputs():
    g = _g()
    mask, image = torch.randint(0, 19, (1, 32, 32)), torch.rand(1, 3, 32, 32)
    with pytest.raises(ValueError, match="mask_ref and image_ref, or a style"):
        g(mask)
    with pytest.raises(ValueError, match="not both"):
        g(mask, mask, image, style=torch.zeros(g.style_dim))
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.randint(0, 19, (1, 30, 30)), mask, image)
    with pytest.raises(ValueError, match="at least 32x32"):
        g(mask, mask[:, :16, :16], image[..., :16, :16])
    with pytest.raises(ValueError, match=r"got values in \[20, 20\]"):
        g(torch.full((1, 32, 32), 20), mask, image)
    with pytest.raises(ValueError, match=r"style must have shape \(B, 64\)"):
        g(mask, style=torch.zeros(1, 63))


def test_blender_is_an_alpha_blend():
    torch.manual_seed(0)
    b = BlendGenerator(**TINY["B"])
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    blend, alpha = b(x, y)
    assert alpha.shape == x.shape and alpha.min() >= 0 and alpha.max() <= 1
    assert torch.allclose(blend, alpha * x + (1 - alpha) * y)
    assert torch.allclose(b(x, x)[0], x, atol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        b(x, y[:1])


def test_discriminator_scales_and_features():
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(ndf=4, n_layers=3, num_scales=3)
    mask, image = torch.randint(0, 19, (2, 64, 64)), torch.rand(2, 3, 64, 64)
    out = d(image, mask)
    assert len(out) == 3 and all(len(features) == 5 for features in out)
    assert [f[0].shape[-1] for f in out] == [33, 17, 9]  # full resolution first
    assert [f.shape[1] for f in out[0]] == [4, 8, 16, 32, 1]
    concatenated = d(torch.cat([one_hot(mask), image], 1))
    assert all(torch.equal(a, b) for sa, sb in zip(out, concatenated) for a, b in zip(sa, sb))
    with pytest.raises(ValueError, match=r"\(B, 22, H, W\)"):
        d(image)


@pytest.mark.parametrize("resolution, layers", [(64, 4), (128, 5), (512, 7)])
def test_vae_depth_follows_the_resolution(resolution, layers):
    with torch.device("meta"):
        vae = MaskVAE(resolution=resolution)
    assert len(vae.encoder) == layers and len(vae.decoder) == layers - 1
    assert vae.fc_mu.in_features == 32 * 2 ** (layers - 1) * 16


@pytest.mark.parametrize("resolution", [64, 128])
def test_vae_small_preset(resolution):
    torch.manual_seed(0)
    vae = MaskVAE(ngf=4, ndf=4, latent_dim=8, resolution=resolution)
    mask = torch.randint(0, 19, (2, resolution, resolution))
    logits, mu, logvar = vae(mask)
    assert logits.shape == (2, 19, resolution, resolution) and mu.shape == logvar.shape == (2, 8)
    assert torch.equal(vae.reparameterize(mu, logvar, torch.zeros_like(mu)), mu)
    logits.logsumexp(1).mean().backward()
    assert vae.encoder[0].conv.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=f"{resolution}x{resolution}"):
        vae.encode(torch.zeros(1, 32, 32, dtype=torch.long))
    with pytest.raises(ValueError, match=r"z must have shape \(B, 8\)"):
        vae.decode(torch.zeros(1, 9))
    with pytest.raises(ValueError, match="power of two"):
        MaskVAE(resolution=96)


@pytest.mark.slow
def test_default_generator_at_512_px():
    """The demo's architecture runs at 512 px (about 100 M parameters; slow on 2 CPU cores)."""
    g = DenseMappingNetwork().eval()
    mask = torch.randint(0, 19, (1, 512, 512))
    with torch.no_grad():
        assert g(mask, mask, torch.rand(1, 3, 512, 512)).shape == (1, 3, 512, 512)
