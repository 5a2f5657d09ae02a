"""Tests of facezoo.losses, in the kornia style: hand-computed values, independent references, gradients
(gradcheck in float64 on tiny inputs), module == function, exceptions on bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck

from facezoo import losses as L

# --------------------------------------------------------------------------------------------------
# adversarial objectives
# --------------------------------------------------------------------------------------------------


def test_lsgan_hand_computed():
    real, fake = torch.full((2, 1, 3, 3), 0.5), torch.full((2, 1, 3, 3), 0.25)
    # (0.5 - 1)^2 + 0.25^2 = 0.25 + 0.0625
    assert L.lsgan_d_loss(real, fake).item() == pytest.approx(0.3125)
    assert L.lsgan_g_loss(fake).item() == pytest.approx(0.5625)


def test_hinge_hand_computed():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # relu(1 - real) = [0, 0.5] -> 0.25 ; relu(1 + fake) = [0, 1] -> 0.5
    assert L.hinge_d_loss(real, fake).item() == pytest.approx(0.75)
    assert L.hinge_g_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_ns_hand_computed_with_label_smoothing():
    zeros = torch.zeros(4)
    # sigmoid(0) = 0.5: BCE to 0.9 is -(0.9 + 0.1) log 0.5 = log 2; BCE to 0 is log 2
    assert L.ns_d_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2), rel=1e-6)
    real, fake = torch.tensor([1.3, -0.4]), torch.tensor([0.7, -2.0])
    s = torch.sigmoid
    expected = -(0.9 * s(real).log() + 0.1 * (1 - s(real)).log()).mean() - (1 - s(fake)).log().mean()
    assert L.ns_d_loss(real, fake, real_label=0.9).item() == pytest.approx(expected.item(), rel=1e-6)
    assert L.ns_g_loss(fake).item() == pytest.approx(-s(fake).log().mean().item(), rel=1e-6)
    with pytest.raises(ValueError):
        L.ns_d_loss(real, fake, real_label=0.0)


def test_wgan_hand_computed():
    assert L.wgan_d_loss(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])).item() == pytest.approx(-2.5)
    assert L.wgan_g_loss(torch.tensor([-1.0, 0.0])).item() == pytest.approx(0.5)


def test_multiscale_logits_are_averaged_and_last_of_nested_is_used():
    torch.manual_seed(0)
    r1, r2, f1, f2 = (torch.randn(2, 1, 4, 4) for _ in range(4))
    feat = torch.randn(2, 8, 4, 4)
    for d_fn, g_fn in L.ADVERSARIAL_LOSSES.values():
        assert torch.allclose(d_fn([r1, r2], [f1, f2]), (d_fn(r1, f1) + d_fn(r2, f2)) / 2)
        assert torch.allclose(g_fn([f1, f2]), (g_fn(f1) + g_fn(f2)) / 2)
        # pix2pixHD layout: list over scales of [features..., logits]
        assert torch.allclose(g_fn([[feat, f1], [feat, feat, f2]]), g_fn([f1, f2]))
    with pytest.raises(ValueError, match="same number of scales"):
        L.lsgan_d_loss([r1, r2], [f1])
    with pytest.raises(ValueError):
        L.lsgan_g_loss([])


@pytest.mark.parametrize("kind", ["lsgan", "ns", "hinge", "wgan"])
def test_adversarial_module_equals_functions(kind):
    torch.manual_seed(1)
    real, fake = torch.randn(3, 1, 5, 5), torch.randn(3, 1, 5, 5)
    d_fn, g_fn = L.adversarial_losses(kind)
    adv = L.AdversarialLoss(kind)
    assert torch.equal(adv.d(real, fake), d_fn(real, fake))
    assert torch.equal(adv.g(fake), g_fn(fake))
    assert torch.equal(adv(fake), adv.g(fake))
    assert torch.equal(adv(fake, real), adv.d(real, fake))
    summed = L.AdversarialLoss(kind, scale_reduction="sum")
    assert torch.allclose(summed.g([fake, real]), g_fn(fake) + g_fn(real))


def test_adversarial_module_passes_real_label_and_rejects_unknown():
    real, fake = torch.randn(6), torch.randn(6)
    assert torch.equal(
        L.AdversarialLoss("ns", real_label=1.0).d(real, fake), L.ns_d_loss(real, fake, real_label=1.0)
    )
    assert not torch.equal(L.AdversarialLoss("ns", real_label=1.0).d(real, fake), L.ns_d_loss(real, fake))
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        L.AdversarialLoss("wgan-gp")
    with pytest.raises(ValueError):
        L.AdversarialLoss("lsgan", scale_reduction="max")


class _LinearCritic(nn.Module):
    """D(x) = sum(w * x) per sample, so grad_x D = w everywhere."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, dtype=torch.float64))

    def forward(self, x):
        return (self.w * x).flatten(1).sum(1)


def test_gradient_penalty_linear_critic_value_and_parameter_gradient():
    torch.manual_seed(2)
    critic = _LinearCritic((3, 4, 4))
    real = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    fake = torch.randn(5, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    gp = L.gradient_penalty(critic, real, fake, weight=10.0)
    norm = critic.w.norm()
    assert gp.item() == pytest.approx(10 * (norm.item() - 1) ** 2, rel=1e-10)
    gp.backward()  # needs create_graph=True to reach the critic's parameters
    expected = 20 * (norm - 1) * critic.w / norm
    assert torch.allclose(critic.w.grad, expected.detach())
    assert fake.grad is None  # the interpolates are built from detached images


def test_gradient_penalty_multiscale_output_sums_scales():
    torch.manual_seed(3)
    c1, c2 = _LinearCritic((1, 2, 2)), _LinearCritic((1, 2, 2))
    real, fake = torch.randn(2, 1, 2, 2, dtype=torch.float64), torch.randn(2, 1, 2, 2, dtype=torch.float64)
    gp = L.gradient_penalty(lambda x: [[x, c1(x)], [c2(x)]], real, fake, weight=1.0)
    assert gp.item() == pytest.approx(((c1.w + c2.w).norm().item() - 1) ** 2, rel=1e-10)


def test_gradient_penalty_gradcheck_wrt_critic_weights():
    torch.manual_seed(4)
    real, fake = torch.randn(2, 2, 5, 5, dtype=torch.float64), torch.randn(2, 2, 5, 5, dtype=torch.float64)
    alpha = torch.tensor([0.3, 0.8], dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64, requires_grad=True)

    def penalty(w):
        return L.gradient_penalty(lambda x: torch.tanh(F.conv2d(x, w)), real, fake, alpha=alpha)

    assert gradcheck(penalty, (weight,))


def test_gradient_penalty_exceptions():
    critic = _LinearCritic((1, 2, 2))
    x = torch.randn(2, 1, 2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="same shape"):
        L.gradient_penalty(critic, x, x[:1])
    with pytest.raises(ValueError, match="alpha"):
        L.gradient_penalty(critic, x, x, alpha=torch.rand(3))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        L.gradient_penalty(critic, x[0], x[0])


# --------------------------------------------------------------------------------------------------
# discriminator feature matching (pix2pixHD / MaskGAN)
# --------------------------------------------------------------------------------------------------


def _constant_features(values, logits_value):
    """One discriminator scale: constant feature maps of the given values, then constant patch logits."""
    return [torch.full((2, 3, 4, 4), float(v)) for v in values] + [torch.full((2, 1, 2, 2), float(logits_value))]


def test_feature_matching_hand_computed_pix2pixhd_weights():
    # two scales, n_layers_D = 2 -> 3 intermediate maps each: weight 4/3 per layer, 1/2 per scale
    fake = [_constant_features([1, 2, 3], 7.0), _constant_features([0.5, 0.5, 0.5], -5.0)]
    real = [_constant_features([0, 0, 0], 0.0), _constant_features([0, 0, 0], 0.0)]
    # scale 0: 4/3 * (1 + 2 + 3) / 2 = 4; scale 1: 4/3 * 1.5 / 2 = 1; the logits (7, -5) are not matched
    assert L.feature_matching_loss(fake, real).item() == pytest.approx(5.0)
    assert L.feature_matching_loss(real, real).item() == 0.0


def test_feature_matching_gradient_only_into_fake():
    torch.manual_seed(0)
    fake = [[torch.randn(1, 2, 3, 3, requires_grad=True), torch.randn(1, 1, 2, 2)]]
    real = [[torch.randn(1, 2, 3, 3, requires_grad=True), torch.randn(1, 1, 2, 2)]]
    L.feature_matching_loss(fake, real).backward()
    expected = 4.0 * torch.sign(fake[0][0] - real[0][0]) / fake[0][0].numel()
    assert torch.allclose(fake[0][0].grad, expected)
    assert real[0][0].grad is None


def test_feature_matching_exceptions():
    one = [_constant_features([1], 0.0)]
    with pytest.raises(ValueError, match="lists of feature lists"):
        L.feature_matching_loss(one, one + one)
    with pytest.raises(ValueError, match="lists over discriminator scales"):
        L.feature_matching_loss(torch.zeros(1), one)
    with pytest.raises(ValueError, match="intermediate features"):
        L.feature_matching_loss([[torch.zeros(1, 1, 2, 2)]], [[torch.zeros(1, 1, 2, 2)]])
    with pytest.raises(ValueError, match="same shape"):
        L.feature_matching_loss([[torch.zeros(1, 2, 4, 4), torch.zeros(1)]],
                                [[torch.zeros(1, 2, 2, 2), torch.zeros(1)]])


# --------------------------------------------------------------------------------------------------
# pixel losses
# --------------------------------------------------------------------------------------------------


def test_pixel_l1_with_and_without_weight_mask():
    x, y = torch.zeros(2, 3, 4, 4), torch.full((2, 3, 4, 4), 2.0)
    assert L.pixel_l1(x, y).item() == pytest.approx(2.0)
    mask = torch.zeros(2, 4, 4)
    mask[:, :, :2] = 1.0  # half of the pixels
    assert L.pixel_l1(x, y, mask).item() == pytest.approx(1.0)
    assert L.pixel_l1(x, y, mask[:, None]).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="same shape"):
        L.pixel_l1(x, y[:, :1])
    with pytest.raises(ValueError, match="spatially"):
        L.pixel_l1(x, y, torch.ones(2, 3, 3))


def test_multiscale_pixel_l1_matches_manual_pooling():
    torch.manual_seed(5)
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    preds = [torch.rand(2, 3, 16, 16), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 4, 4)]
    expected = (
        1.0 * (preds[0] - target).abs().mean()
        + 1.0 * (preds[1] - F.avg_pool2d(target, 2)).abs().mean()
        + 1.5 * (preds[2] - F.avg_pool2d(target, 4)).abs().mean()
    )
    assert torch.allclose(L.multiscale_pixel_l1(preds, target, [1.0, 1.0, 1.5]), expected)
    bilinear = L.multiscale_pixel_l1(preds[1:2], target, mode="bilinear")
    ref = (preds[1] - F.interpolate(target, size=(8, 8), mode="bilinear", antialias=True)).abs().mean()
    assert torch.allclose(bilinear, ref)
    with pytest.raises(ValueError, match="weights"):
        L.multiscale_pixel_l1(preds, target, [1.0])
    with pytest.raises(ValueError, match="channels"):
        L.multiscale_pixel_l1([preds[0][:, :1]], target)
    with pytest.raises(ValueError, match="mode"):
        L.multiscale_pixel_l1(preds, target, mode="nearest")


# --------------------------------------------------------------------------------------------------
# symmetry
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["pixel", "laplacian", "both"])
def test_symmetry_zero_on_mirror_symmetric_image(space):
    torch.manual_seed(6)
    half = torch.rand(2, 3, 6, 3)
    img = torch.cat([half, half.flip(-1)], dim=-1)
    assert L.symmetry_loss(img, space=space).item() == pytest.approx(0.0, abs=1e-6)
    odd = torch.cat([half, torch.rand(2, 3, 6, 1), half.flip(-1)], dim=-1)  # middle column is free
    assert L.symmetry_loss(odd, space="pixel").item() == pytest.approx(0.0, abs=1e-7)
    assert L.symmetry_loss(torch.rand(2, 3, 6, 6), space=space).item() > 0


def test_symmetry_hand_computed():
    img = torch.tensor([[[[0.0, 1.0, 3.0, 2.0]]]])  # left [0, 1] vs mirrored right [2, 3]
    assert L.symmetry_loss(img).item() == pytest.approx(2.0)


@pytest.mark.parametrize("space", ["pixel", "laplacian"])
def test_symmetry_gradient_flows_only_into_occluded_half(space):
    torch.manual_seed(7)
    base = torch.rand(1, 3, 8, 8)
    values = []
    for occluded in ("left", "right", None):
        img = base.clone().requires_grad_(True)
        loss = L.symmetry_loss(img, space=space, occluded=occluded)
        loss.backward()
        values.append(loss.item())
        g_left, g_right = img.grad[..., :4].abs().sum(), img.grad[..., 4:].abs().sum()
        if space == "laplacian":  # the 3x3 Laplacian spreads gradient one column across the middle
            g_left, g_right = img.grad[..., :3].abs().sum(), img.grad[..., 5:].abs().sum()
        if occluded == "left":
            assert g_left > 0 and g_right == 0
        elif occluded == "right":
            assert g_right > 0 and g_left == 0
        else:
            assert g_left > 0 and g_right > 0
    assert values[0] == pytest.approx(values[1]) == pytest.approx(values[2])


def test_symmetry_gradcheck():
    torch.manual_seed(8)
    img = torch.rand(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda x: L.symmetry_loss(x, space="both"), (img,))
    # the stop-gradient keeps the occluded half's gradient exactly as without it (gradcheck cannot see sg[.])
    (full,) = torch.autograd.grad(L.symmetry_loss(img), img)
    (right,) = torch.autograd.grad(L.symmetry_loss(img, occluded="right"), img)
    assert torch.equal(right[..., 3:], full[..., 3:]) and (right[..., :2] == 0).all()


def test_symmetry_exceptions():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        L.symmetry_loss(torch.rand(3, 4, 4))
    with pytest.raises(ValueError, match="space"):
        L.symmetry_loss(torch.rand(1, 3, 4, 4), space="fourier")
    with pytest.raises(ValueError, match="occluded"):
        L.symmetry_loss(torch.rand(1, 3, 4, 4), occluded="both")
    with pytest.raises(ValueError, match="wide"):
        L.symmetry_loss(torch.rand(1, 3, 4, 1))


# --------------------------------------------------------------------------------------------------
# total variation
# --------------------------------------------------------------------------------------------------


def test_total_variation_hand_computed_ramp():
    ramp = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    assert L.total_variation(ramp).item() == pytest.approx(3.0)  # mean|dy| = 2, mean|dx| = 1
    assert L.total_variation(ramp, squared=True).item() == pytest.approx(5.0)  # 4 + 1
    assert L.total_variation(torch.ones(2, 3, 5, 5)).item() == 0.0


def test_total_variation_matches_manual_differences():
    torch.manual_seed(9)
    img = torch.randn(2, 3, 5, 7)
    dy, dx = img[..., 1:, :] - img[..., :-1, :], img[..., 1:] - img[..., :-1]
    assert torch.allclose(L.total_variation(img), dy.abs().mean() + dx.abs().mean())
    assert torch.allclose(L.total_variation(img, squared=True), dy.pow(2).mean() + dx.pow(2).mean())


def test_total_variation_gradcheck():
    img = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(L.total_variation, (img,))
    assert gradcheck(lambda x: L.total_variation(x, squared=True), (img,))


# --------------------------------------------------------------------------------------------------
# heatmap loss
# --------------------------------------------------------------------------------------------------


def test_heatmap_loss_hand_computed_and_exceptions():
    a, b = torch.zeros(1, 2, 3, 3), torch.full((1, 2, 3, 3), 0.5)
    assert L.heatmap_loss(a, b).item() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same shape"):
        L.heatmap_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))


# --------------------------------------------------------------------------------------------------
# makeup loss (PSGAN)
# --------------------------------------------------------------------------------------------------


def _levels_to_image(levels: torch.Tensor) -> torch.Tensor:
    """Integer levels in [0, 255] -> [-1, 1] values at the bin centres (robust to float rounding)."""
    return (levels.double() + 0.5) / 255 * 2 - 1


def test_makeup_loss_hand_computed_detached_target_and_gradient():
    fake = _levels_to_image(torch.full((1, 3, 4, 4), 10)).float().requires_grad_(True)
    reference = _levels_to_image(torch.full((1, 3, 4, 4), 200)).float().requires_grad_(True)
    src_mask = torch.zeros(1, 1, 4, 4)
    src_mask[..., :2, :] = 1  # half of the image
    loss = L.makeup_loss(fake, src_mask, reference, torch.ones(1, 4, 4))
    # |10.5 - 200| on half of the elements (fake sits at the bin centre 10.5, the target on level 200)
    assert loss.item() == pytest.approx(189.5 / 2, rel=1e-5)
    loss.backward()
    assert reference.grad is None  # the matched target is detached
    assert (fake.grad[..., :2, :] < 0).all() and (fake.grad[..., 2:, :] == 0).all()
    scaled = L.makeup_loss(fake, src_mask, reference, torch.ones(1, 4, 4), value_range=2.0)
    assert scaled.item() == pytest.approx(loss.item() * 2 / 255, rel=1e-5)


def test_makeup_loss_gradcheck_wrt_fake():
    gen = torch.Generator().manual_seed(13)
    fake = (torch.rand(2, 3, 5, 5, generator=gen, dtype=torch.float64) * 1.6 - 0.8).requires_grad_(True)
    reference = torch.rand(2, 3, 5, 5, generator=gen, dtype=torch.float64) * 2 - 1
    src_mask = (torch.rand(2, 5, 5, generator=gen) > 0.4).double()
    ref_mask = (torch.rand(2, 5, 5, generator=gen) > 0.3).double()
    assert gradcheck(lambda f: L.makeup_loss(f, src_mask, reference, ref_mask), (fake,))


def test_makeup_loss_empty_masks_give_zero():
    fake = (torch.rand(2, 3, 6, 6) * 2 - 1).requires_grad_(True)
    ref = torch.rand(2, 3, 6, 6) * 2 - 1
    empty, full = torch.zeros(2, 6, 6), torch.ones(2, 6, 6)
    assert L.makeup_loss(fake, empty, ref, full).item() == 0.0
    assert L.makeup_loss(fake, full, ref, empty).item() == 0.0  # nothing to match to: target = fake
    loss = L.makeup_loss(fake, empty, ref, empty)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(fake.grad).all()


# --------------------------------------------------------------------------------------------------
# KL divergence (MaskVAE)
# --------------------------------------------------------------------------------------------------


def test_kl_divergence_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(3, 5), torch.randn(3, 5)
    posterior = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    prior = torch.distributions.Normal(torch.zeros(3, 5), torch.ones(3, 5))
    expected = torch.distributions.kl_divergence(posterior, prior).sum(1).mean()
    assert L.kl_divergence(mu, logvar).item() == pytest.approx(expected.item(), rel=1e-5)
    # hand value: mu = 1, logvar = 0 in 4 dims -> 0.5 * 4 * 1 = 2 (summed over dims, mean over batch)
    assert L.kl_divergence(torch.ones(2, 4), torch.zeros(2, 4)).item() == pytest.approx(2.0)
    assert L.kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4)).item() == 0.0


def test_kl_divergence_gradcheck_and_exceptions():
    mu = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(L.kl_divergence, (mu, logvar))
    with pytest.raises(ValueError, match="mu must have shape"):
        L.kl_divergence(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="same shape"):
        L.kl_divergence(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(TypeError):
        L.kl_divergence([0.0], torch.zeros(1, 1))


# --------------------------------------------------------------------------------------------------
# perceptual loss
# --------------------------------------------------------------------------------------------------


class _TinyFeatures(nn.Module):
    """Stand-in feature network: two conv layers, returns both activations (list or dict)."""

    def __init__(self, as_dict: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.as_dict = as_dict

    def forward(self, x):
        a = torch.relu(self.conv1(x))
        b = torch.relu(self.conv2(a))
        return {"relu1": a, "relu2": b} if self.as_dict else [a, b]


def test_perceptual_loss_matches_manual_weighted_sum():
    torch.manual_seed(14)
    net = _TinyFeatures()
    x, y = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    loss = L.PerceptualLoss(net, [0.5, 2.0], criterion="mse")
    fx, fy = net(x), net(y)
    expected = 0.5 * F.mse_loss(fx[0], fy[0]) + 2.0 * F.mse_loss(fx[1], fy[1])
    assert torch.allclose(loss(x, y), expected)
    l1_all = L.PerceptualLoss(net)(x, y)
    assert torch.allclose(l1_all, F.l1_loss(fx[0], fy[0]) + F.l1_loss(fx[1], fy[1]))
    dict_loss = L.PerceptualLoss(_TinyFeatures(as_dict=True), {"relu2": 3.0})
    dict_loss.feature_net.load_state_dict(net.state_dict())
    assert torch.allclose(dict_loss(x, y), 3.0 * F.l1_loss(fx[1], fy[1]))


def test_perceptual_loss_frozen_and_target_detached():
    net = _TinyFeatures()
    loss_fn = L.PerceptualLoss(net).train()
    assert not net.training and all(not p.requires_grad for p in net.parameters())
    x = (torch.rand(1, 3, 8, 8) * 2 - 1).requires_grad_(True)
    y = (torch.rand(1, 3, 8, 8) * 2 - 1).requires_grad_(True)
    loss_fn(x, y).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert y.grad is None
    assert all(p.grad is None for p in net.parameters())


def test_perceptual_loss_exceptions():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="2 features but 3 weights"):
        L.PerceptualLoss(_TinyFeatures(), [1.0, 1.0, 1.0])(x, x)
    with pytest.raises(KeyError):
        L.PerceptualLoss(_TinyFeatures(as_dict=True), {"relu9": 1.0})(x, x)
    with pytest.raises(ValueError, match="criterion"):
        L.PerceptualLoss(_TinyFeatures(), criterion="huber")


def test_perceptual_loss_from_vgg_random_weights():
    pytest.importorskip("facezoo.nets.vgg")
    loss = L.PerceptualLoss.from_vgg("vgg16", layers=("relu1_2", "relu2_2"), weights=None)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert loss(x, x).item() == 0.0
    assert loss(x, -x).item() > 0.0


# --------------------------------------------------------------------------------------------------
# identity loss
# --------------------------------------------------------------------------------------------------


class _TinyFaceNet(nn.Module):
    """Stand-in recogniser returning (fc vector, pooled map), like Light-CNN's two TP-GAN features."""

    def __init__(self, in_ch: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        pooled = F.adaptive_avg_pool2d(torch.relu(self.conv(x)), 4)
        return self.fc(pooled.flatten(1)), pooled


def test_identity_loss_l1_sums_outputs_and_detaches_target():
    torch.manual_seed(17)
    net = _TinyFaceNet()
    loss_fn = L.IdentityLoss(net, "l1")
    x = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    y = (torch.rand(2, 3, 16, 16) * 2 - 1).requires_grad_(True)
    loss = loss_fn(x, y)
    (fx, px), (fy, py) = net(x), net(y)
    assert torch.allclose(loss, F.l1_loss(fx, fy) + F.l1_loss(px, py))
    only_fc = L.IdentityLoss(net, "mse", outputs=[0])(x, y)
    assert torch.allclose(only_fc, F.mse_loss(fx, fy))
    loss.backward()
    assert x.grad.abs().sum() > 0 and y.grad is None
    assert all(not p.requires_grad for p in net.parameters())


def test_identity_loss_cosine_hand_computed():
    loss_fn = L.IdentityLoss(nn.Flatten(), "cosine")
    x = torch.rand(3, 3, 4, 4) + 0.1
    assert loss_fn(x, x).item() == pytest.approx(0.0, abs=1e-6)
    assert loss_fn(x, -x).item() == pytest.approx(2.0, abs=1e-6)
    assert loss_fn(x, 5 * x).item() == pytest.approx(0.0, abs=1e-6)


def test_identity_preprocess_psp_crop_and_lightcnn_grayscale():
    torch.manual_seed(18)
    img = torch.rand(1, 3, 256, 256) * 2 - 1
    psp = L.IdentityLoss(nn.Flatten(), "cosine", crop=(35, 223, 32, 220), resize=112)
    expected = F.adaptive_avg_pool2d(img[..., 35:223, 32:220], (112, 112))
    assert torch.allclose(psp.preprocess(img), expected, atol=1e-6)
    small = F.avg_pool2d(img, 2)  # the same crop on a 128 image: (17.5->18, 111.5->112, 16, 110)
    assert psp.preprocess(small).shape == (1, 3, 112, 112)
    frac = L.IdentityLoss(nn.Flatten(), crop=(0.25, 0.75, 0.0, 0.5))
    assert torch.allclose(frac.preprocess(img), img[..., 64:192, 0:128], atol=1e-6)
    lcnn = L.IdentityLoss(nn.Flatten(), resize=128, grayscale=True, value_range=(0.0, 1.0))
    out = lcnn.preprocess(torch.full((2, 3, 64, 64), -1.0))
    assert out.shape == (2, 1, 128, 128) and torch.allclose(out, torch.zeros_like(out))
    with pytest.raises(ValueError, match="out-of-bounds"):
        L.IdentityLoss(nn.Flatten(), crop=(35, 300, 32, 220)).preprocess(img)
    with pytest.raises(ValueError, match="distance"):
        L.IdentityLoss(nn.Flatten(), "l3")
