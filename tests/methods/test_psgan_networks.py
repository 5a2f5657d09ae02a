"""Tests for facezoo.methods.psgan.networks and .official (PSGAN generator, AMM, discriminator, G.pth loader)."""
import doctest

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils import parametrize

from facezoo.face.labels import CELEBAMASK_HQ
from facezoo.methods.psgan import networks as N
from facezoo.methods.psgan import official as O
from facezoo.methods.psgan.networks import (
    AMM,
    REGION_NAMES,
    Discriminator,
    MANet,
    PSGANGenerator,
    apply_makeup,
    attentive_makeup_morphing,
    dense_reference_amm,
    init_xavier,
    region_masks_from_parsing,
    relative_position_features,
)
from facezoo.methods.psgan.official import load_official_generator, official_state_dict_from
from facezoo.nets.weights import WEIGHTS, WeightsNotFoundError
from facezoo.utils import FacezooError

# The official G.pth layout: psgan/net.py Generator().state_dict() at wtjiang98/PSGAN@45988b9 (names, shapes).
OFFICIAL_G_KEYS = {
    "pnet_in.0.weight": (64, 3, 7, 7), "pnet_in.1.weight": (64,), "pnet_in.1.bias": (64,),
    "pnet_down_1.0.weight": (128, 64, 4, 4), "pnet_down_1.1.weight": (128,), "pnet_down_1.1.bias": (128,),
    "pnet_down_2.0.weight": (256, 128, 4, 4), "pnet_down_2.1.weight": (256,), "pnet_down_2.1.bias": (256,),
    "atten_bottleneck_g.g.weight": (1, 1, 1, 1), "atten_bottleneck_g.g.bias": (1,),
    "atten_bottleneck_b.g.weight": (1, 1, 1, 1), "atten_bottleneck_b.g.bias": (1,),
    "simple_spade.get_gamma.weight": (1, 256, 1, 1), "simple_spade.get_beta.weight": (1, 256, 1, 1),
    "pnet_bottleneck_1.main.0.weight": (256, 256, 3, 3), "pnet_bottleneck_1.main.1.weight": (256,),
    "pnet_bottleneck_1.main.1.bias": (256,), "pnet_bottleneck_1.main.3.weight": (256, 256, 3, 3),
    "pnet_bottleneck_1.main.4.weight": (256,), "pnet_bottleneck_1.main.4.bias": (256,),
    "pnet_bottleneck_2.main.0.weight": (256, 256, 3, 3), "pnet_bottleneck_2.main.1.weight": (256,),
    "pnet_bottleneck_2.main.1.bias": (256,), "pnet_bottleneck_2.main.3.weight": (256, 256, 3, 3),
    "pnet_bottleneck_2.main.4.weight": (256,), "pnet_bottleneck_2.main.4.bias": (256,),
    "pnet_bottleneck_3.main.0.weight": (256, 256, 3, 3), "pnet_bottleneck_3.main.1.weight": (256,),
    "pnet_bottleneck_3.main.1.bias": (256,), "pnet_bottleneck_3.main.3.weight": (256, 256, 3, 3),
    "pnet_bottleneck_3.main.4.weight": (256,), "pnet_bottleneck_3.main.4.bias": (256,),
    "tnet_in_conv.weight": (64, 3, 7, 7), "tnet_down_conv_1.weight": (128, 64, 4, 4),
    "tnet_down_conv_2.weight": (256, 128, 4, 4), "tnet_bottleneck_1.main.0.weight": (256, 256, 3, 3),
    "tnet_bottleneck_1.main.3.weight": (256, 256, 3, 3), "tnet_bottleneck_2.main.0.weight": (256, 256, 3, 3),
    "tnet_bottleneck_2.main.3.weight": (256, 256, 3, 3), "tnet_bottleneck_3.main.0.weight": (256, 256, 3, 3),
    "tnet_bottleneck_3.main.3.weight": (256, 256, 3, 3), "tnet_bottleneck_4.main.0.weight": (256, 256, 3, 3),
    "tnet_bottleneck_4.main.3.weight": (256, 256, 3, 3), "tnet_bottleneck_5.main.0.weight": (256, 256, 3, 3),
    "tnet_bottleneck_5.main.3.weight": (256, 256, 3, 3), "tnet_bottleneck_6.main.0.weight": (256, 256, 3, 3),
    "tnet_bottleneck_6.main.3.weight": (256, 256, 3, 3), "tnet_up_conv_1.weight": (256, 128, 4, 4),
    "tnet_up_conv_2.weight": (128, 64, 4, 4), "tnet_out.0.weight": (3, 64, 7, 7),
}


def _generator(seed=0):
    return torch.Generator().manual_seed(seed)


def _random_regions(batch, size, gen, empty=()):
    """Disjoint {0, 1} masks (B, 3, size, size): each pixel in at most one region
    ``empty`` = (b, r) to clear."""
    label = torch.randint(0, 4, (batch, size, size), generator=gen)
    regions = torch.stack([(label == r + 1).float() for r in range(3)], 1)
    for b, r in empty:
        regions[b, r] = 0
    return regions


def _random_landmarks(batch, image_size, gen):
    return torch.rand(batch, 68, 2, generator=gen) * (image_size - 1)


def _amm_inputs(batch=3, channels=8, feature=16, image=64, seed=0, empty_x=(), empty_y=()):
    gen = _generator(seed)
    fea_x = torch.randn(batch, channels, feature, feature, generator=gen) * 10
    fea_y = torch.randn(batch, channels, feature, feature, generator=gen) * 10
    pos_x = relative_position_features(_random_landmarks(batch, image, gen), feature, image)
    pos_y = relative_position_features(_random_landmarks(batch, image, gen), feature, image)
    masks_x = _random_regions(batch, image, gen, empty_x)
    masks_y = _random_regions(batch, image, gen, empty_y)
    gamma = torch.randn(batch, 1, feature, feature, generator=gen)
    beta = torch.randn(batch, 1, feature, feature, generator=gen)
    return fea_x, fea_y, pos_x, pos_y, masks_x, masks_y, gamma, beta


def _makeup_inputs(batch=2, size=64, seed=0):
    gen = _generator(seed)
    source = torch.rand(batch, 3, size, size, generator=gen) * 2 - 1
    reference = torch.rand(batch, 3, size, size, generator=gen) * 2 - 1
    return (source, reference, _random_landmarks(batch, size, gen), _random_landmarks(batch, size, gen),
            _random_regions(batch, size, gen), _random_regions(batch, size, gen))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return init_xavier(PSGANGenerator(width=0.125)).eval()


# ------------------------------------------------------------------ geometry


def test_relative_position_features_hand_example():
    landmarks = torch.zeros(1, 68, 2)
    landmarks[0, 0] = torch.tensor([3.0, 1.0])      # landmark 0 at x=3, y=1
    landmarks[0, 67] = torch.tensor([7.0, 6.5])     # landmark 67 at x=7, y=6.5
    p = relative_position_features(landmarks, feature_size=4, image_size=8)
    assert p.shape == (1, 136, 4, 4)
    # feature pixel (i, j) keeps grid pixel (2i, 2j); channel k: y - y_k, channel 68 + k: x - x_k
    assert p[0, 0, 2, 1] == 4 - 1 and p[0, 68, 2, 1] == 2 - 3
    assert p[0, 67, 3, 0] == 6 - 6.5 and p[0, 135, 0, 3] == 6 - 7
    assert p[0, 1, 1, 1] == 2 and p[0, 69, 1, 3] == 6          # landmarks at the origin


def test_relative_position_features_match_official_full_grid_then_nearest():
    gen = _generator(1)
    landmarks = _random_landmarks(2, 256, gen)
    # official: fix = [ys] * 68 + [xs] * 68 on the 256 grid, minus (y..., x...), then F.interpolate to 64
    ys, xs = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    lms_yx = landmarks.flip(-1).transpose(1, 2).reshape(2, 136, 1, 1)
    full = torch.cat([ys.expand(68, -1, -1), xs.expand(68, -1, -1)])[None] - lms_yx
    expected = F.interpolate(full, size=(64, 64))
    assert torch.allclose(relative_position_features(landmarks, 64, 256), expected)
    with pytest.raises(ValueError, match=r"\(B, 68, 2\)"):
        relative_position_features(torch.zeros(1, 5, 2))


def _hand_parsing():
    """32x32 face: skin everywhere, a nose block, lips, eyes and hair labels
    eyes at (8, 10) and (22, 10)."""
    idx = CELEBAMASK_HQ.index
    mask = torch.full((1, 32, 32), idx("skin"))
    mask[0, 14:18, 14:18] = idx("nose")
    mask[0, 24:26, 10:20] = idx("u_lip")
    mask[0, 26:28, 10:20] = idx("l_lip")
    mask[0, 10, 8] = idx("l_eye")                     # the eyeball itself is neither skin nor eye shadow
    mask[0, 0:2, :] = idx("hair")
    landmarks = torch.full((1, 68, 2), 16.0)
    landmarks[0, 36:42] = torch.tensor([[7.0, 10.0], [9.2, 9.6], [8.0, 11.0], [8.4, 9.0], [7.6, 10.4], [9.0, 10.0]])
    landmarks[0, 42:48] = torch.tensor([22.0, 10.0])
    return mask, landmarks


def test_region_masks_from_parsing_official_construction():
    mask, landmarks = _hand_parsing()
    regions = region_masks_from_parsing(mask, landmarks)          # margin round(16 * 32 / 256) = 2
    lip, skin, eye = regions[0]
    assert regions.shape == (1, 3, 32, 32) and set(regions.unique().tolist()) <= {0.0, 1.0}
    assert lip.sum() == 40 and lip[24:28, 10:20].all()
    # left eye box: x in [7 - 2, 9 + 2], y in [9 - 2, 11 + 2] (rounded landmarks) -> 7 x 7, minus the eyeball
    left = torch.zeros(32, 32, dtype=torch.bool)
    left[7:14, 5:12] = True
    right = torch.zeros(32, 32, dtype=torch.bool)
    right[8:13, 20:25] = True
    assert eye.bool().equal((left | right) & (mask[0] != CELEBAMASK_HQ.index("l_eye")))
    assert eye.sum() == 49 - 1 + 25
    # skin = skin + nose, minus eye boxes, hair and lips excluded
    expected_skin = (32 * 32) - 64 - 40 - 49 - 25
    assert skin.sum() == expected_skin and skin[15, 15] == 1 and skin[0, 5] == 0
    assert (lip * skin).sum() == 0 and (eye * skin).sum() == 0
    # explicit margin
    wide = region_masks_from_parsing(mask, landmarks, eye_margin=0)[0, 2]
    assert wide.sum() == 3 * 3 - 1 + 1


def test_region_masks_overlapping_boxes_and_border_follow_official_copy_area():
    idx = CELEBAMASK_HQ.index
    mask = torch.full((1, 32, 32), idx("skin"))
    landmarks = torch.full((1, 68, 2), 16.0)
    landmarks[0, 36:42] = torch.tensor([10.0, 10.0])
    landmarks[0, 42:48] = torch.tensor([12.0, 10.0])              # boxes (margin 2) overlap on x in [10, 12]
    eye = region_masks_from_parsing(mask, landmarks)[0, 2]
    assert eye[8:13, 8:10].all() and eye[8:13, 13:15].all()
    assert eye[:, 10:13].sum() == 0                               # the 2nd copy read the already-cleared skin
    landmarks[0, 36:42] = torch.tensor([0.0, 0.0])                # box at the corner: clamped, not wrapped
    eye = region_masks_from_parsing(mask, landmarks)[0, 2]
    assert eye[0:3, 0:3].all() and eye[:, 29:].sum() == 0
    with pytest.raises(ValueError, match="label map"):
        region_masks_from_parsing(mask.float(), landmarks)


# ------------------------------------------------------------------ AMM


@pytest.mark.parametrize("scale", [200.0, 1.0])
def test_amm_equals_dense_official_formulation_float64(scale):
    # image 0: lip empty in the source; image 1: eye empty in the reference; image 2: skin empty in both
    inputs = _amm_inputs(empty_x=[(0, 0), (2, 1)], empty_y=[(1, 2), (2, 1)])
    inputs64 = [t.double() for t in inputs]
    ref_gamma, ref_beta = dense_reference_amm(*inputs64, scale=scale)
    assert ref_gamma.dtype == torch.float64 and ref_gamma.shape == (3, 1, 16, 16)
    for chunk in (None, 37):
        gamma, beta = attentive_makeup_morphing(*inputs64, chunk=chunk, scale=scale)
        assert (gamma - ref_gamma).abs().max() < 1e-10 and (beta - ref_beta).abs().max() < 1e-10
    # the reference is not trivially zero, and empty regions give exactly 0 there
    m_x = F.interpolate(inputs[4], size=(16, 16))
    assert ref_gamma.abs().max() > 0.01
    parts = attentive_makeup_morphing(*inputs64, scale=scale, per_region=True)[0]
    assert parts.shape == (3, 3, 1, 16, 16) and torch.allclose(parts.sum(1), ref_gamma, atol=1e-12)
    assert parts[0, 0].abs().max() == 0 and parts[1, 2].abs().max() == 0 and parts[2, 1].abs().max() == 0
    assert (parts * (m_x.unsqueeze(2) == 0)).abs().max() == 0     # nothing leaks outside a source region


def test_amm_float32_is_as_accurate_as_the_dense_float32_formulation():
    # In float32 the x200 scale amplifies score rounding to ~1e-5..1e-4 on gamma' (the official code has the same
    # error); the memory-efficient kernels must not be worse than the dense float32 formulation.
    inputs = _amm_inputs(seed=3, empty_x=[(1, 1)], empty_y=[(0, 0)])
    ref_gamma, ref_beta = dense_reference_amm(*inputs)
    dense32 = dense_reference_amm(*inputs, dtype=None)
    assert dense32[0].dtype == torch.float32
    dense_error = max((d.double() - r).abs().max().item() for d, r in zip(dense32, (ref_gamma, ref_beta)))
    for chunk in (None, 64):
        gamma, beta = attentive_makeup_morphing(*inputs, chunk=chunk)
        assert gamma.dtype == torch.float32
        error = max((o.double() - r).abs().max().item() for o, r in zip((gamma, beta), (ref_gamma, ref_beta)))
        assert error < 1e-3 and error <= 3 * dense_error + 1e-6


def test_amm_softmax_counts_out_of_region_pixels_like_the_official():
    # One source and one reference pixel per region: the official softmax over all HW columns gives the single
    # in-region column exp(200 s) / (exp(200 s) + (HW - 1)); with s = 0 (orthogonal features) that is 1 / HW.
    fea = torch.zeros(1, 4, 2, 2)
    pos_x = torch.zeros(1, 136, 2, 2)
    pos_x[0, 0, 0, 0] = 1.0
    pos_y = torch.zeros(1, 136, 2, 2)
    pos_y[0, 1, 1, 1] = 1.0          # orthogonal to pos_x: similarity 0
    masks_x = torch.zeros(1, 3, 2, 2)
    masks_x[0, 1, 0, 0] = 1
    masks_y = torch.zeros(1, 3, 2, 2)
    masks_y[0, 1, 1, 1] = 1
    gamma = torch.full((1, 1, 2, 2), 8.0)
    out, _ = attentive_makeup_morphing(fea, fea, pos_x, pos_y, masks_x, masks_y, gamma, gamma)
    assert torch.allclose(out, torch.tensor([[[[8.0 / 4, 0.0], [0.0, 0.0]]]]))
    pos_y[0, 0, 1, 1] = 1.0
    pos_y[0, 1, 1, 1] = 0.0                    # now parallel: similarity 1, weight ~1
    out, _ = attentive_makeup_morphing(fea, fea, pos_x, pos_y, masks_x, masks_y, gamma, gamma)
    assert torch.allclose(out[0, 0, 0, 0], torch.tensor(8.0))


def test_amm_gradcheck_and_module():
    fea_x, fea_y, pos_x, pos_y, masks_x, masks_y, gamma, beta = (
        t.double() for t in _amm_inputs(batch=1, channels=4, feature=4, image=16, seed=5))
    fea_x.requires_grad_()
    gamma.requires_grad_()
    for chunk in (None, 5):
        assert torch.autograd.gradcheck(
            lambda f, g, chunk=chunk: attentive_makeup_morphing(f, fea_y, pos_x, pos_y, masks_x, masks_y, g, beta,
                                                                chunk=chunk, scale=2.0)[0], (fea_x, gamma))
    inputs = _amm_inputs(seed=6)
    for mode in AMM.modes:
        out = AMM(mode, chunk=50)(*[t.double() for t in inputs])[0]
        assert (out - dense_reference_amm(*inputs)[0]).abs().max() < 1e-10
    with pytest.raises(ValueError, match="mode"):
        AMM("sparse")
    with pytest.raises(ValueError, match="pos_x"):
        attentive_makeup_morphing(*inputs[:2], inputs[2][:, :10], *inputs[3:])


# ------------------------------------------------------------------ generator


def test_manet_applies_makeup_before_the_fourth_bottleneck_block():
    torch.manual_seed(0)
    net = MANet(width=0.125).eval()
    source = torch.rand(1, 3, 32, 32) * 2 - 1
    gamma, beta = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8)
    x = net.down2(net.down1(net.stem(source)))
    for i, block in enumerate(net.blocks):
        if i == 3:
            x = x * (1 + gamma) + beta
        x = block(x)
    expected = torch.tanh(net.to_rgb.conv(net.up2(net.up1(x))))
    assert torch.allclose(net(source, gamma, beta), expected, atol=1e-6)
    assert not torch.allclose(net(source, gamma, beta), net(source, 0 * gamma, 0 * beta))
    assert torch.equal(apply_makeup(torch.ones(1, 2, 1, 1), torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1)),
                       torch.full((1, 2, 1, 1), 3.0))


def test_two_pass_inference_equals_single_pass(tiny):
    inputs = _makeup_inputs()
    with torch.no_grad():
        out = tiny(*inputs)
        gamma, beta = tiny.makeup_matrices(*inputs)
        assert gamma.shape == beta.shape == (2, 1, 16, 16)
        assert torch.allclose(tiny.apply(inputs[0], gamma, beta), out, atol=1e-6)
    assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1


def test_shade_control_alpha(tiny):
    source, reference, lm_x, lm_y, reg_x, reg_y = inputs = _makeup_inputs(seed=1)
    with torch.no_grad():
        own_image = tiny(source, source, lm_x, lm_x, reg_x, reg_x)
        assert torch.allclose(tiny(*inputs, alpha=0.0), own_image, atol=1e-6)      # alpha 0: own makeup
        full = tiny(*inputs)
        assert torch.allclose(tiny(*inputs, alpha=torch.tensor(1.0)), full, atol=1e-6)
        assert not torch.allclose(full, own_image, atol=1e-3)
        ref = tiny.makeup_matrices(*inputs)
        own = tiny.makeup_matrices(source, source, lm_x, lm_x, reg_x, reg_x)
        half = tiny.makeup_matrices(*inputs, alpha=0.3)
        for h, r, o in zip(half, ref, own):
            assert torch.allclose(h, 0.3 * r + 0.7 * o, atol=1e-6)
        per_sample = tiny.makeup_matrices(*inputs, alpha=torch.tensor([0.0, 1.0]))
        assert torch.allclose(per_sample[0][0], own[0][0], atol=1e-6)
        assert torch.allclose(per_sample[0][1], ref[0][1], atol=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tiny(*inputs, alpha=1.5)


def test_partial_transfer_regions(tiny):
    source, reference, lm_x, lm_y, reg_x, reg_y = inputs = _makeup_inputs(seed=2)
    with torch.no_grad():
        ref = tiny.makeup_matrices(*inputs)
        own = tiny.makeup_matrices(source, source, lm_x, lm_x, reg_x, reg_x)
        lip_only = tiny.makeup_matrices(*inputs, regions=("lip",))
        lip = F.interpolate(reg_x, size=(16, 16))[:, :1] > 0
        for part, r, o in zip(lip_only, ref, own):
            assert torch.allclose(part[~lip], o[~lip], atol=1e-6)              # outside the lips: own makeup
            assert torch.allclose(part[lip], r[lip], atol=1e-6)                # inside: the reference's
            assert not torch.allclose(r[~lip], o[~lip], atol=1e-4)
        assert torch.allclose(tiny.makeup_matrices(*inputs, regions="lip")[0], lip_only[0])
        all_regions = tiny.makeup_matrices(*inputs, regions=REGION_NAMES, alpha=0.999999)[0]
        assert torch.allclose(all_regions, ref[0], atol=1e-4)
    with pytest.raises(ValueError, match="unknown regions"):
        tiny(*inputs, regions=("nose",))


def test_generator_validates_inputs(tiny):
    source, reference, lm_x, lm_y, reg_x, reg_y = _makeup_inputs(batch=1)
    with pytest.raises(ValueError, match="reference_landmarks"):
        tiny(source, reference, lm_x, lm_y[:, :5], reg_x, reg_y)
    with pytest.raises(ValueError, match="source_regions"):
        tiny(source, reference, lm_x, lm_y, reg_x[:, :2], reg_y)
    with pytest.raises(ValueError, match="multiple of 4"):
        tiny(source[..., :30, :30], reference[..., :30, :30], lm_x, lm_y, reg_x, reg_y)


def test_full_size_generator_at_256():
    torch.manual_seed(0)
    g = init_xavier(PSGANGenerator()).eval()
    # official Generator: 12,615,620 parameters, of which 4 are the unused NONLocalBlock2D.g convs
    assert sum(p.numel() for p in g.parameters()) == sum(
        torch.Size(s).numel() for k, s in OFFICIAL_G_KEYS.items() if k not in O.UNUSED_OFFICIAL_KEYS)
    assert sum(torch.Size(s).numel() for s in OFFICIAL_G_KEYS.values()) == 12_615_620
    source, reference, lm_x, lm_y, reg_x, reg_y = _makeup_inputs(batch=1, size=256, seed=4)
    with torch.no_grad():
        out = g(source, reference, lm_x, lm_y, reg_x, reg_y)
    assert out.shape == (1, 3, 256, 256) and torch.isfinite(out).all()
    assert out.min() >= -1 and out.max() <= 1 and out.std() > 0.01


# ------------------------------------------------------------------ discriminator, init


def test_discriminator_shape_and_spectral_norm():
    torch.manual_seed(0)
    d = Discriminator(width=0.125).train()
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 1]
    assert [c.stride for c in convs] == [(2, 2)] * 3 + [(1, 1)] * 2 and convs[-1].bias is None
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    image = torch.rand(2, 3, 64, 64) * 2 - 1
    for _ in range(30):                      # power iterations converge in train mode
        out = d(image)
    assert out.shape == (2, 1, 6, 6)
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert abs(sigma.item() - 1) < 1e-2
    assert Discriminator(width=0.125)(torch.zeros(1, 3, 256, 256)).shape == (1, 1, 30, 30)
    plain = Discriminator(width=0.125, spectral_norm=False, repeat_num=2)
    assert not any(parametrize.is_parametrized(m) for m in plain.modules())
    assert plain(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 14, 14)
    assert [m.out_channels for m in Discriminator().modules() if isinstance(m, torch.nn.Conv2d)] == [
        64, 128, 256, 512, 1]


def test_init_xavier_normal():
    torch.manual_seed(0)
    d = init_xavier(Discriminator(width=0.5))
    original = d.main[2].parametrizations.weight.original             # 32 -> 64, 4x4
    expected_std = (2 / (32 * 16 + 64 * 16)) ** 0.5
    assert abs(original.std().item() - expected_std) / expected_std < 0.05
    g = init_xavier(PSGANGenerator(width=0.25))
    w = g.manet.blocks[0].conv1.weight                                # 64 -> 64, 3x3
    assert abs(w.std().item() - (2 / (2 * 64 * 9)) ** 0.5) / (2 / (2 * 64 * 9)) ** 0.5 < 0.05
    assert torch.equal(g.mdnet.stem.norm.weight, torch.ones(16))     # InstanceNorm keeps its defaults


# ------------------------------------------------------------------ official checkpoint


def test_official_key_layout_and_round_trip(tmp_path):
    torch.manual_seed(0)
    full = official_state_dict_from(PSGANGenerator())
    assert {k: tuple(v.shape) for k, v in full.items()} == OFFICIAL_G_KEYS
    assert list(full) == list(OFFICIAL_G_KEYS)                        # same order as the official state_dict
    assert WEIGHTS["psgan_g"].filename == "G.pth" and WEIGHTS["psgan_g"].url is None

    generator = init_xavier(PSGANGenerator(width=0.25))
    path = tmp_path / "G.pth"
    torch.save(official_state_dict_from(generator), path)
    loaded = load_official_generator(path, width=0.25)
    assert not loaded.training
    mine, theirs = generator.state_dict(), loaded.state_dict()
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    # DataParallel checkpoints ("module." prefix) load too
    torch.save({f"module.{k}": v for k, v in official_state_dict_from(generator).items()}, tmp_path / "dp.pth")
    assert torch.equal(load_official_generator(tmp_path / "dp.pth", width=0.25).manet.to_rgb.conv.weight,
                       generator.manet.to_rgb.conv.weight)


def test_official_loader_errors(tmp_path, monkeypatch):
    generator = PSGANGenerator(width=0.125)
    garbled = tmp_path / "garbled.pth"
    garbled.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(FacezooError, match="not a readable PSGAN G.pth") as err:
        load_official_generator(garbled, width=0.125)
    assert "\n" not in str(err.value) and str(garbled) in str(err.value)
    state = official_state_dict_from(generator)
    del state["tnet_out.0.weight"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(FacezooError, match=r"missing tnet_out.0.weight; unexpected extra.weight"):
        load_official_generator(tmp_path / "partial.pth", width=0.125)
    torch.save(official_state_dict_from(generator), tmp_path / "G.pth")
    with pytest.raises(FacezooError, match=r"width 0.25 \(wrong shapes pnet_bottleneck_1\.main\.0\.weight \(32, 32,"):
        load_official_generator(tmp_path / "G.pth", width=0.25)
    with pytest.raises(WeightsNotFoundError, match="weights='psgan_g'|weights 'psgan_g'"):
        load_official_generator(tmp_path / "absent.pth")
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))                # path=None: found in the facezoo cache
    assert load_official_generator(None, width=0.125).manet.out_channels == 32


def test_doctests():
    for module in (N, O):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 3 and result.failed == 0


def test_fast_path_runs_bf16_convolutions_and_an_fp32_amm():
    """``fast_path``: MDNet / MANet in bf16, output fp32 and close; the AMM computes in fp32 whatever its input
    dtype (bf16 in, the fp32 result of the same values out, rounded to bf16), also under bf16 autocast."""
    torch.manual_seed(0)
    g = PSGANGenerator(width=0.25).eval()
    inputs = _makeup_inputs(batch=2, size=64)
    with torch.no_grad():
        exact = g(*inputs)
        fast = g.fast_path()(*inputs)
    assert fast.dtype == torch.float32 and not torch.equal(fast, exact)               # bf16 did run
    assert 10 * torch.log10(4 / ((fast - exact) ** 2).mean()) > 35                  # and stayed close

    amm_inputs = [t.to(torch.bfloat16) for t in _amm_inputs()]
    expected = attentive_makeup_morphing(*[t.float() for t in amm_inputs])[0]
    with torch.autocast("cpu", torch.bfloat16):
        got = AMM()(*amm_inputs)[0]
    assert got.dtype == torch.bfloat16 and torch.equal(got, expected.to(torch.bfloat16))
