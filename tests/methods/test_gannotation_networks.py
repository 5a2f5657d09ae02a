"""GANnotation's networks: the official heatmap encoding, the generator's mask blend, the critic, the checkpoint map."""

from __future__ import annotations

import math

import pytest
import torch

from facezoo.face.heatmaps import landmark_heatmaps
from facezoo.face.labels import landmarks_68_to_66
from facezoo.methods.gannotation.networks import (
    Discriminator,
    Generator,
    heatmaps_to_image,
    landmark_heatmaps_official,
)
from facezoo.methods.gannotation.official import (
    from_official_keys,
    load_official_generator,
    official_key_map,
    official_reposing,
    official_state_dict_from,
)
from facezoo.nets.weights import WeightsNotFoundError
from facezoo.utils import FacezooError

TINY = dict(width=0.125, repeat_num=2)


def gauss(dx: float, dy: float) -> float:
    """The official 7x7 kernel value at an offset from its centre: sigma = 0.25 * 7 = 1.75 px, amplitude 1."""
    return math.exp(-((dx / 1.75) ** 2 + (dy / 1.75) ** 2) / 2)


# --------------------------------------------------------------------------------------------------
# heatmaps
# --------------------------------------------------------------------------------------------------


def test_official_patch_by_hand():
    """A 7x7 patch whose peak sits at (floor(x) - 1, floor(y) - 1), values of a 1.75-px Gaussian."""
    h = landmark_heatmaps_official(torch.tensor([[[10.3, 20.7]]]), size=32)
    assert h.shape == (1, 1, 32, 32) and h.dtype == torch.float32
    h = h[0, 0]
    nz = h.nonzero()
    assert (nz[:, 0].min(), nz[:, 0].max(), nz[:, 1].min(), nz[:, 1].max()) == (16, 22, 6, 12)  # rows, cols
    assert h[19, 9] == 1.0
    assert h[19, 10] == pytest.approx(0.849366, abs=1e-6)  # exp(-(1/1.75)^2 / 2)
    assert h[16, 6] == pytest.approx(gauss(3, 3), abs=1e-7)
    assert gauss(3, 3) == pytest.approx(0.052931, abs=1e-6)  # exp(-(3/1.75)^2), the patch corner
    assert h[22, 11] == pytest.approx(gauss(2, 3), abs=1e-7)


def test_official_rounding_to_two_decimals_moves_the_patch():
    """draw_gaussian rounds the point to 2 decimals before flooring: 4.999 -> 5.0 -> peak at pixel 4."""
    h = landmark_heatmaps_official(torch.tensor([[[4.999, 8.994]]]), size=16)[0, 0]
    assert h[7, 4] == 1.0  # x: round(4.999) = 5.00 -> 4; y: round(8.994) = 8.99 -> 7


def test_official_patch_at_the_borders():
    """Partial patches: at the bottom/right they are cut; at the top/left the official offsets apply."""
    h = landmark_heatmaps_official(torch.tensor([[[31.5, 31.2], [3.5, 10.0], [-1.0, 10.0], [40.0, 10.0]]]),
                                   size=32)[0]
    # bottom-right: peak at (30, 30), rows/cols 27..31 kept
    assert h[0, 30, 30] == 1.0 and h[0, 27:, 27:].count_nonzero() == 25 and h[0].count_nonzero() == 25
    # x = 3.5: floor(x - 3) = 0, so the official code pastes patch columns 0..5 at pixels 0..5 (peak at 3,
    # one pixel right of the interior rule's floor(x) - 1 = 2)
    assert h[1, 9, 3] == 1.0 and h[1, 9, 2] == pytest.approx(gauss(1, 0), abs=1e-7)
    assert h[1, 9, 6] == 0.0 and h[1, 9, 0] == pytest.approx(gauss(3, 0), abs=1e-7)
    # x = -1: floor(x - 3) = -4, pixels 0..1 get patch columns 3..4
    assert h[2, 9, 0] == 1.0 and h[2, 9, 1] == pytest.approx(gauss(1, 0), abs=1e-7) and h[2, 9, 2] == 0
    assert h[3].count_nonzero() == 0  # fully outside: an empty map


def test_official_encoding_vs_the_smooth_gaussian():
    """Inside the patch, the official maps equal losses.landmark_heatmaps at (floor(p) - 1); outside they are 0."""
    g = torch.Generator().manual_seed(0)
    points = torch.rand(2, 5, 2, generator=g) * 40 + 8
    official = landmark_heatmaps_official(points, size=64)
    smooth = landmark_heatmaps(torch.floor(points) - 1, (64, 64), sigma=1.75)
    inside = official > 0
    assert inside.sum() == 2 * 5 * 49
    assert torch.allclose(official[inside], smooth[inside], atol=1e-6)
    # the difference: truncation to 7x7 and the sub-pixel position (the smooth map at p itself is shifted)
    assert smooth[~inside].max() > 0.05
    assert not torch.allclose(landmark_heatmaps(points, (64, 64), sigma=1.75), smooth, atol=1e-2)


def test_heatmap_argument_checks():
    with pytest.raises(ValueError, match=r"\(B, N, 2\)"):
        landmark_heatmaps_official(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="positive integer"):
        landmark_heatmaps_official(torch.zeros(1, 5, 2), sigma=1.5)


def test_68_to_66_drops_the_inner_mouth_corners():
    lm = torch.arange(68.0)[None, :, None].expand(1, 68, 2)
    out = landmarks_68_to_66(lm)
    assert out.shape == (1, 66, 2)
    kept = out[0, :, 0].tolist()
    assert 60.0 not in kept and 64.0 not in kept and kept == sorted(kept)


def test_heatmaps_to_image_is_a_grey_sum():
    h = torch.zeros(1, 2, 4, 4)
    h[0, 0, 1, 1], h[0, 1, 1, 1], h[0, 1, 2, 2] = 0.75, 0.75, 0.25
    img = heatmaps_to_image(h)
    assert img.shape == (1, 3, 4, 4)
    assert img[0, :, 1, 1].tolist() == [1.0, 1.0, 1.0] and img[0, 0, 2, 2] == -0.5 and img[0, 0, 0, 0] == -1.0


# --------------------------------------------------------------------------------------------------
# generator / discriminator
# --------------------------------------------------------------------------------------------------


def test_generator_output_is_the_mask_blend():
    torch.manual_seed(0)
    g = Generator(num_points=66, **TINY)
    image = torch.rand(2, 3, 32, 32) * 2 - 1
    heat = landmark_heatmaps_official(torch.rand(2, 66, 2) * 32, size=32)
    out = g(image, heat)
    assert out["image"].shape == out["color"].shape == (2, 3, 32, 32) and out["mask"].shape == (2, 1, 32, 32)
    assert 0 <= out["mask"].min() and out["mask"].max() <= 1
    assert -1 <= out["color"].min() and out["color"].max() <= 1
    m, c = out["mask"], out["color"]
    assert torch.equal(out["image"], m * image + (1 - m) * c)
    # the official form mask * (x - col) + col is the same blend
    assert torch.allclose(out["image"], m * (image - c) + c, atol=1e-6)
    # the output depends on the heatmaps (the conditioning reaches the heads)
    assert not torch.allclose(g(image, torch.zeros_like(heat))["image"], out["image"])


def test_generator_layers_follow_the_release():
    g = Generator()  # conv_dim 64, 66 points, 6 blocks
    assert g.stem.conv.weight.shape == (64, 69, 7, 7) and g.stem.conv.bias is None and g.stem.norm.affine
    assert g.down[1].conv.weight.shape == (256, 128, 4, 4)
    assert len(g.bottleneck) == 6 and g.bottleneck[0].conv1.bias is not None
    assert not g.bottleneck[0].norm1.affine  # model.py ResidualBlock: InstanceNorm2d without affine
    assert g.up[0].conv.weight.shape == (256, 128, 4, 4) and isinstance(g.up[0].conv, torch.nn.ConvTranspose2d)
    assert g.color_head.conv.weight.shape == (3, 64, 7, 7) and g.mask_head.conv.weight.shape == (1, 64, 7, 7)
    assert g.stem.conv.weight.std().item() == pytest.approx(0.02, rel=0.05)  # N(0, 0.02)
    assert Generator(num_points=68, **TINY).stem.conv.in_channels == 3 + 68


def test_generator_shape_errors():
    g = Generator(num_points=66, **TINY)
    with pytest.raises(ValueError, match=r"heatmaps must be \(B, 66, H, W\)"):
        g(torch.zeros(1, 3, 32, 32), torch.zeros(1, 68, 32, 32))
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.zeros(1, 3, 30, 30), torch.zeros(1, 66, 30, 30))


def test_discriminator_patch_logits():
    d = Discriminator(image_size=128, width=0.125)
    assert d(torch.zeros(2, 3, 128, 128)).shape == (2, 1, 2, 2)
    assert Discriminator(image_size=64, repeat_num=5, width=0.125)(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 2, 2)
    full = Discriminator()
    assert [m.out_channels for m in full.blocks if isinstance(m, torch.nn.Conv2d)] == [64, 128, 256, 512, 1024, 2048]
    assert full.head.bias is None and full.head.kernel_size == (3, 3)
    assert not any(isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.BatchNorm2d)) for m in full.modules())
    with pytest.raises(ValueError, match=r"\(B, 3, 128, 128\)"):
        d(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ValueError, match="divisible"):
        Discriminator(image_size=100)


# --------------------------------------------------------------------------------------------------
# the released checkpoint
# --------------------------------------------------------------------------------------------------


def official_keys(repeat_num: int) -> set[str]:
    """The release's key names, written from model.py's module structure (Sequential indices)."""
    keys = {"down_conv.0.weight", "colour_layer.0.weight", "mask_layer.0.weight"}
    for i in (1, 4, 7):
        keys |= {f"down_conv.{i}.weight", f"down_conv.{i}.bias"}
    keys |= {"down_conv.3.weight", "down_conv.6.weight", "feature_layer.0.weight", "feature_layer.3.weight"}
    for i in (1, 4):
        keys |= {f"feature_layer.{i}.weight", f"feature_layer.{i}.bias"}
    for b in range(repeat_num):
        keys |= {f"bottleneck.{b}.conv{j}.{p}" for j in (1, 2) for p in ("weight", "bias")}
    return keys


def test_release_format_round_trip_is_strict(tmp_path):
    torch.manual_seed(1)
    g = Generator(num_points=66, **TINY)
    ckpt = official_state_dict_from(g)
    assert set(ckpt) == {"state_dict"}
    keys = set(ckpt["state_dict"])
    assert all(k.startswith("module.") for k in keys)
    assert {k[len("module."):] for k in keys} == official_keys(2)
    path = tmp_path / "myGEN.pth"
    torch.save(ckpt, path)
    loaded = load_official_generator(path, **TINY)
    assert not loaded.training
    for k, v in g.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    image, heat = torch.rand(1, 3, 32, 32), torch.rand(1, 66, 32, 32)
    assert torch.equal(g(image, heat)["image"], loaded(image, heat)["image"])


def test_full_size_release_keys_and_shapes_load(tmp_path):
    """The full-size release (64 channels, 6 blocks): 12 mapped modules + 12 residual convs, strict."""
    assert len(official_key_map(6)) == 24
    state = official_state_dict_from(Generator())["state_dict"]
    assert state["module.down_conv.0.weight"].shape == (64, 69, 7, 7)
    assert state["module.bottleneck.5.conv2.bias"].shape == (256,)
    path = tmp_path / "myGEN.pth"
    torch.save({"state_dict": state}, path)
    load_official_generator(path)  # strict: raises on any missing/unexpected key


def test_release_loader_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsNotFoundError, match="myGEN.pth"):
        load_official_generator()
    state = official_state_dict_from(Generator(**TINY))["state_dict"]
    bad = tmp_path / "bad.pth"
    torch.save({"state_dict": {**state, "module.extra_layer.0.weight": torch.zeros(1)}}, bad)
    with pytest.raises(FacezooError, match=r"bad\.pth is not a GANnotation .*\(unexpected extra_layer\.0\.weight\)$"):
        load_official_generator(bad, **TINY)
    short = tmp_path / "short.pth"
    torch.save({"state_dict": {k: v for k, v in state.items() if "mask_layer" not in k}}, short)
    with pytest.raises(FacezooError, match=r"\(missing mask_layer\.0\.weight"):
        load_official_generator(short, **TINY)
    with pytest.raises(KeyError):
        from_official_keys({"nope.weight": torch.zeros(1)})


def test_official_reposing_feeds_zero_one_images():
    """The release ran on [0, 1] images: official_reposing maps facezoo's [-1, 1] input before the call."""
    torch.manual_seed(2)
    g = Generator(num_points=66, **TINY).eval()
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    lm = torch.rand(1, 68, 2) * 24 + 4
    out = official_reposing(g, image, lm)
    heat = landmark_heatmaps_official(landmarks_68_to_66(lm), size=32)
    assert torch.equal(out, g((image + 1) / 2, heat)["image"].clamp(-1, 1))
