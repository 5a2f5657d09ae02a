"""Tests for facezoo.methods.tpgan.networks (TP-GAN generator, local pathways, fuser, discriminator)."""
import doctest

import pytest
import torch
import torch.nn.functional as F

from facezoo.methods.tpgan import networks as N
from facezoo.methods.tpgan.networks import (
    PART_NAMES,
    Conv2dSame,
    ConvTranspose2dSame,
    Discriminator,
    LocalFuser,
    LocalPathway,
    Maxout,
    ResidualBlock,
    TPGANGenerator,
    part_boxes,
    part_geometry,
    same_padding,
)

TINY = dict(image_size=64, width=0.125, num_classes=7)


def _inputs(image_size, batch=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, image_size, image_size, generator=gen) * 2 - 1
    geometry = part_geometry(image_size)
    patches = {n: torch.rand(batch, 3, *size, generator=gen) * 2 - 1 for n, (_, size) in geometry.items()}
    return image, patches


@pytest.fixture(scope="module")
def full_generator():
    torch.manual_seed(0)
    return TPGANGenerator(image_size=128, width=1.0, num_classes=340).eval()


# ------------------------------------------------------------------ geometry


def test_part_geometry_official_numbers_at_128():
    assert part_geometry(128) == {
        "left_eye": ((44.0, 41.0), (40, 40)),
        "right_eye": ((86.0, 41.0), (40, 40)),
        "nose": ((64.0, 65.0), (32, 40)),
        "mouth": ((65.0, 89.0), (32, 48)),
    }
    assert tuple(part_geometry(128)) == PART_NAMES


def test_part_geometry_scales_linearly():
    assert part_geometry(64) == {
        "left_eye": ((22.0, 20.5), (20, 20)),
        "right_eye": ((43.0, 20.5), (20, 20)),
        "nose": ((32.0, 32.5), (16, 20)),
        "mouth": ((32.5, 44.5), (16, 24)),
    }
    assert part_geometry(256)["mouth"] == ((130.0, 178.0), (64, 96))
    # 112 px: 40 * 0.875 = 35 is rounded to an even size
    for _, (h, w) in part_geometry(112).values():
        assert h % 2 == 0 and w % 2 == 0
    assert part_geometry(112)["left_eye"][1] == (36, 36)
    with pytest.raises(ValueError):
        part_geometry(0)


def test_part_boxes_reproduce_official_partcombiner_pads():
    # TF pads top = int(cy - H/2 - 1), left = int(cx - W/2 - 1)
    assert part_boxes(128) == {
        "left_eye": (20, 23, 40, 40),
        "right_eye": (20, 65, 40, 40),
        "nose": (48, 43, 32, 40),
        "mouth": (72, 40, 32, 48),
    }
    for top, left, h, w in part_boxes(64).values():
        assert 0 <= top and top + h <= 64 and 0 <= left and left + w <= 64


# ------------------------------------------------------------------ TF-geometry layers


def test_same_padding_matches_tensorflow_rule():
    assert same_padding(128, 3, 2) == (0, 1)
    assert same_padding(128, 5, 2) == (1, 2)
    assert same_padding(128, 7, 1) == (3, 3)
    assert same_padding(8, 2, 1) == (0, 1)
    assert same_padding(5, 3, 2) == (1, 1)
    assert same_padding(32, 1, 1) == (0, 0)


def test_conv2d_same_equals_valid_convolution_on_the_tf_windows():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    # stride 2, kernel 3 on even sizes: TF windows start at 2i (no top/left pad)
    conv = Conv2dSame(3, 4, 3, stride=2).double()
    out = conv(x)
    assert out.shape == (2, 4, 5, 6)
    valid = F.conv2d(x, conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(out[..., : valid.shape[-2], : valid.shape[-1]], valid)
    # kernel 2, stride 1: one pad row/column at the bottom/right only
    conv2 = Conv2dSame(3, 4, 2).double()
    out2 = conv2(x)
    assert out2.shape == (2, 4, 10, 12)
    torch.testing.assert_close(out2[..., :-1, :-1], F.conv2d(x, conv2.weight, conv2.bias))
    # odd kernel, stride 1: same as symmetric zero padding
    conv3 = Conv2dSame(3, 4, 5).double()
    torch.testing.assert_close(conv3(x), F.conv2d(x, conv3.weight, conv3.bias, padding=2))


@pytest.mark.parametrize("in_size,out_size,kernel,stride", [
    ((5, 5), (10, 10), 3, 2),   # 40x40 patch stage
    ((4, 6), (8, 12), 3, 2),    # mouth at 128
    ((3, 3), (5, 5), 3, 2),     # 20x20 eye at 64: odd skip size
    ((2, 3), (4, 5), 3, 2),
    ((8, 8), (32, 32), 3, 4),   # "initial" s/16 -> s/4
])
def test_conv_transpose_same_is_the_adjoint_of_conv2d_same(in_size, out_size, kernel, stride):
    torch.manual_seed(0)
    conv = Conv2dSame(3, 5, kernel, stride, bias=False).double()
    deconv = ConvTranspose2dSame(5, 3, kernel, stride, bias=False).double()
    deconv.weight.data.copy_(conv.weight.data)
    x = torch.randn(2, 3, *out_size, dtype=torch.float64)
    y = torch.randn(2, 5, *in_size, dtype=torch.float64)
    assert conv(x).shape == y.shape
    lhs = (conv(x) * y).sum()
    rhs = (deconv(y, out_size) * x).sum()
    torch.testing.assert_close(lhs, rhs)


def test_conv_transpose_same_bias_and_errors():
    deconv = ConvTranspose2dSame(2, 3, 3, 4)
    deconv.bias.data = torch.tensor([1.0, 2.0, 3.0])
    out = deconv(torch.zeros(1, 2, 2, 2), (8, 8))
    torch.testing.assert_close(out, torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="not reachable"):
        deconv(torch.zeros(1, 2, 2, 2), (9, 8))
    with pytest.raises(ValueError):
        deconv(torch.zeros(1, 5, 2, 2), (8, 8))


def test_residual_block_is_lrelu_of_identity_when_branch_is_zero():
    block = ResidualBlock(4, 3, norm="none")
    x = torch.randn(2, 4, 5, 7)
    torch.testing.assert_close(block(x), F.leaky_relu(block.conv2(block.conv1(x)) + x, 0.2))
    block.conv2[0].weight.data.zero_()
    torch.testing.assert_close(block(x), torch.where(x > 0, x, 0.2 * x))
    # even kernel keeps the size
    assert ResidualBlock(4, 2)(x).shape == x.shape


def test_maxout_takes_max_of_the_two_halves():
    x = torch.tensor([[1.0, 5.0, -2.0, 3.0, 2.0, 0.0]])
    torch.testing.assert_close(Maxout()(x), torch.tensor([[3.0, 5.0, 0.0]]))
    with pytest.raises(ValueError):
        Maxout()(torch.zeros(1, 3))


def test_tf_initialisation():
    torch.manual_seed(0)
    g = TPGANGenerator(**TINY)
    convs = [m for m in g.modules() if type(m) is Conv2dSame]
    weights = torch.cat([m.weight.flatten() for m in convs])
    assert weights.abs().max() <= 0.04 + 1e-7  # truncated at 2 std
    assert 0.015 < weights.std() < 0.02  # std of N(0, 0.02) truncated at 2 sigma is 0.0176
    assert all((m.bias == 0).all() for m in convs)
    enc = g.global_pathway.encoder
    assert (enc.fc.bias == 0.1).all() and (g.global_pathway.decoder.initial.bias == 0.1).all()
    assert (g.global_pathway.identity_head.fc.bias == 0.1).all()
    assert abs(enc.fc.weight.std().item() - 0.02) < 0.002


# ------------------------------------------------------------------ local pathway and fuser


@pytest.mark.parametrize("size", [(40, 40), (32, 40), (32, 48), (20, 20), (16, 20), (20, 24), (15, 21)])
def test_local_pathway_keeps_any_patch_size(size):
    net = LocalPathway(width=0.125)
    feature, patch = net(torch.rand(2, 3, *size) * 2 - 1)
    assert feature.shape == (2, 8, *size)
    assert patch.shape == (2, 3, *size)
    assert patch.abs().max() <= 1


def test_local_pathway_rejects_wrong_channels():
    with pytest.raises(ValueError, match="patch"):
        LocalPathway(in_channels=6, width=0.125)(torch.zeros(1, 3, 20, 20))


def test_local_fuser_places_each_part_in_its_box_and_takes_the_max():
    fuser = LocalFuser(128)
    boxes = part_boxes(128)
    values = {"left_eye": 1.0, "right_eye": 2.0, "nose": 3.0, "mouth": 4.0}
    parts = {n: torch.full((2, 5, h, w), values[n]) for n, (_, _, h, w) in boxes.items()}
    fused = fuser(parts)
    assert fused.shape == (2, 5, 128, 128)
    expected = torch.zeros(128, 128)
    for name in PART_NAMES:  # an independent max-compositing of the boxes
        top, left, h, w = boxes[name]
        region = expected[top:top + h, left:left + w]
        expected[top:top + h, left:left + w] = region.clamp(min=values[name])
    torch.testing.assert_close(fused, expected.expand(2, 5, 128, 128))
    # the left-eye box alone (no overlap) holds exactly its value; the eye/nose overlap holds the nose value
    assert (fused[:, :, 20:48, 23:43] == 1).all()
    assert (fused[:, :, 48:60, 43:63] == 3).all()
    assert fused[:, :, :20].abs().sum() == 0 and fused[:, :, 104:].abs().sum() == 0


def test_local_fuser_clips_negative_values_to_zero_like_tf():
    fuser = LocalFuser(64)
    parts = {n: -torch.ones(1, 3, *size) for n, (_, size) in part_geometry(64).items()}
    parts["mouth"] = torch.full_like(parts["mouth"], 0.5)
    fused = fuser(parts)
    top, left, h, w = part_boxes(64)["mouth"]
    assert (fused[..., top:top + h, left:left + w] == 0.5).all()
    assert fused.min() == 0


def test_local_fuser_validates_inputs():
    fuser = LocalFuser(64)
    parts = {n: torch.zeros(1, 3, *size) for n, (_, size) in part_geometry(64).items()}
    with pytest.raises(ValueError, match="missing"):
        fuser({k: v for k, v in parts.items() if k != "nose"})
    parts["nose"] = torch.zeros(1, 3, 20, 20)
    with pytest.raises(ValueError, match="nose"):
        fuser(parts)


# ------------------------------------------------------------------ generator


def _shapes(out):
    return {
        k: (tuple(v.shape) if torch.is_tensor(v) else {n: tuple(p.shape) for n, p in v.items()})
        for k, v in out.items()
    }


def test_generator_output_shapes_tiny():
    g = TPGANGenerator(**TINY).train()
    image, patches = _inputs(64)
    out = g(image, patches)
    assert _shapes(out) == {
        "image": (2, 3, 64, 64),
        "image_half": (2, 3, 32, 32),
        "image_quarter": (2, 3, 16, 16),
        "identity_feature": (2, 256),
        "identity_logits": (2, 7),
        "parts": {"left_eye": (2, 3, 20, 20), "right_eye": (2, 3, 20, 20), "nose": (2, 3, 16, 20),
                  "mouth": (2, 3, 16, 24)},
        "parts_fused": (2, 3, 64, 64),
    }
    for key in ("image", "image_half", "image_quarter", "parts_fused"):
        assert out[key].abs().max() <= 1
    # the fused RGB is the fuser applied to the predicted parts
    torch.testing.assert_close(out["parts_fused"], g.fuser(out["parts"]))


def test_generator_without_local_pathways():
    g = TPGANGenerator(**TINY, use_local=False).eval()
    assert not hasattr(g, "local_pathways")
    image, _ = _inputs(64)
    out = g(image, None, z=torch.zeros(2, 100))
    assert out["image"].shape == (2, 3, 64, 64) and out["parts"] == {} and out["parts_fused"] is None
    # the last decoder stage drops exactly the fused local features (8 ch at width 0.125) and fused RGB
    with_local = TPGANGenerator(**TINY).global_pathway.decoder.decode_s.conv1[0].in_channels
    assert g.global_pathway.decoder.decode_s.conv1[0].in_channels == with_local - 8 - 3


def test_generator_full_width_128_shapes_and_parameter_count(full_generator):
    g = full_generator
    n_params = sum(p.numel() for p in g.parameters())
    print(f"TP-GAN generator parameters (width 1, 128 px): {n_params:,}")
    # 157,503,770: 88.7 M global (16.8 M in the feature FC) + 4 x 17.2 M local
    assert 150e6 < n_params < 165e6
    assert g.global_pathway.encoder.fc.weight.shape == (512, 8 * 8 * 512)
    assert g.local_pathways["right_eye"].in_channels == 6
    image, patches = _inputs(128, batch=1)
    with torch.no_grad():
        out = g(image, patches)
    assert _shapes(out) == {
        "image": (1, 3, 128, 128),
        "image_half": (1, 3, 64, 64),
        "image_quarter": (1, 3, 32, 32),
        "identity_feature": (1, 256),
        "identity_logits": (1, 340),
        "parts": {"left_eye": (1, 3, 40, 40), "right_eye": (1, 3, 40, 40), "nose": (1, 3, 32, 40),
                  "mouth": (1, 3, 32, 48)},
        "parts_fused": (1, 3, 128, 128),
    }


def test_local_and_global_parameters_partition_the_generator():
    g = TPGANGenerator(**TINY)
    local, global_ = list(g.local_parameters()), list(g.global_parameters())
    assert {id(p) for p in local} == {id(p) for p in g.local_pathways.parameters()}
    assert {id(p) for p in local}.isdisjoint(id(p) for p in global_)
    assert len(local) + len(global_) == len(list(g.parameters()))
    assert list(TPGANGenerator(**TINY, use_local=False).local_parameters()) == []


def test_generator_mirror_concatenates_its_input():
    g = TPGANGenerator(**TINY).eval()
    seen = {}
    g.global_pathway.encoder.conv0.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    image, patches = _inputs(64)
    g(image, patches)
    torch.testing.assert_close(seen["x"], torch.cat([image, torch.flip(image, dims=[3])], 1))


def test_right_eye_pathway_sees_the_left_eye_patch():
    g = TPGANGenerator(**TINY).eval()
    image, patches = _inputs(64)
    z = torch.zeros(2, 100)
    out = g(image, patches, z)
    changed = dict(patches, left_eye=-patches["left_eye"])
    out2 = g(image, changed, z)
    assert not torch.allclose(out["parts"]["right_eye"], out2["parts"]["right_eye"])
    torch.testing.assert_close(out["parts"]["nose"], out2["parts"]["nose"])


def test_generator_is_deterministic_given_z_and_default_noise_is_tf_normal():
    torch.manual_seed(0)
    g = TPGANGenerator(**TINY).eval()
    image, patches = _inputs(64)
    z = torch.randn(2, 100)
    a, b = g(image, patches, z), g(image, patches, z)
    torch.testing.assert_close(a["image"], b["image"], rtol=0, atol=0)
    c = g(image, patches, 100 * z)
    assert not torch.allclose(a["image"], c["image"])
    # z=None draws 0.02 * N(0, 1) from the given generator; the decoder's FC sees [feature, z]
    seen = {}
    g.global_pathway.decoder.initial.register_forward_pre_hook(lambda m, inp: seen.update(x=inp[0]))
    noise = 0.02 * torch.randn(2, 100, generator=torch.Generator().manual_seed(3))
    d = g(image, patches, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(seen["x"][:, 256:], noise)
    torch.testing.assert_close(seen["x"][:, :256], d["identity_feature"])
    torch.testing.assert_close(d["image"], g(image, patches, noise)["image"])


def test_identity_logits_are_the_head_on_the_feature_in_eval():
    g = TPGANGenerator(**TINY).eval()
    image, patches = _inputs(64)
    out = g(image, patches, torch.zeros(2, 100))
    head = g.global_pathway.identity_head
    assert head.dropout.p == pytest.approx(0.7)
    torch.testing.assert_close(out["identity_logits"], head.fc(out["identity_feature"]))


def test_gradients_reach_every_sub_network():
    torch.manual_seed(0)
    g = TPGANGenerator(**TINY, norm="none").train()
    image, patches = _inputs(64)
    out = g(image, patches)
    weights = torch.randn_like(out["image"])
    (out["image"] * weights).sum().backward()
    named = dict(g.named_parameters())
    # every parameter except the identity head's shapes the image
    for name, p in named.items():
        if name.startswith("global_pathway.identity_head"):
            assert p.grad is None
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    for pathway in g.local_pathways.values():
        assert all(p.grad.abs().sum() > 0 for p in pathway.parameters())
    # the identity head (and the encoder) learn from the identity logits
    g.zero_grad(set_to_none=True)
    out = g(image, patches)
    F.cross_entropy(out["identity_logits"], torch.tensor([1, 4])).backward()
    head = g.global_pathway.identity_head
    assert head.fc.weight.grad.abs().sum() > 0 and head.fc.bias.grad.abs().sum() > 0
    assert g.global_pathway.encoder.conv0[0].weight.grad.abs().sum() > 0
    assert g.global_pathway.decoder.initial.weight.grad is None


def test_gradients_with_batchnorm_reach_every_weight():
    torch.manual_seed(0)
    g = TPGANGenerator(**TINY).train()
    image, patches = _inputs(64)
    out = g(image, patches)
    (out["image"] * torch.randn_like(out["image"])).sum().backward()
    for name, p in g.named_parameters():
        if name.endswith("weight") and "identity_head" not in name:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_generator_validates_inputs():
    g = TPGANGenerator(**TINY)
    image, patches = _inputs(64)
    with pytest.raises(ValueError, match="image"):
        g(image[:, :, :32], patches)
    with pytest.raises(ValueError, match="mouth"):
        g(image, {k: v for k, v in patches.items() if k != "mouth"})
    with pytest.raises(ValueError, match="nose"):
        g(image, dict(patches, nose=torch.zeros(2, 3, 20, 20)))
    with pytest.raises(ValueError, match="z"):
        g(image, patches, z=torch.zeros(2, 64))
    with pytest.raises(ValueError, match="patches are required"):
        g(image)
    with pytest.raises(ValueError, match="multiple of 16"):
        TPGANGenerator(image_size=72)
    with pytest.raises(ValueError, match="norm"):
        TPGANGenerator(**TINY, norm="instance")


# ------------------------------------------------------------------ discriminator


def test_discriminator_patch_logits_full_width_128():
    torch.manual_seed(0)
    d = Discriminator(128)
    assert d(torch.rand(1, 3, 128, 128) * 2 - 1).shape == (1, 1, 4, 4)
    n_params = sum(p.numel() for p in d.parameters())
    assert 13e6 < n_params < 14e6  # 13,357,441


def test_discriminator_tiny_shapes_and_gradient():
    d = Discriminator(64, width=0.125, norm="none")
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    logits = d(x)
    assert logits.shape == (2, 1, 2, 2)
    logits.sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad.abs().sum() > 0 for n, p in d.named_parameters() if n.endswith("weight"))
    with pytest.raises(ValueError):
        d(torch.zeros(2, 3, 32, 32))


def test_docstring_examples_run():
    result = doctest.testmod(N, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5 and result.failed == 0
