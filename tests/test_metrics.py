"""Tests of facezoo.metrics against hand-computed values and independent references (offline)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchmetrics.functional.image import peak_signal_noise_ratio

from facezoo import metrics
from facezoo.metrics import (
    FID,
    METRICS,
    compute_metrics,
    identity_similarity,
    l1,
    landmark_nme,
    lpips,
    mse,
    psnr,
    ssim,
)
from facezoo.nets.inception import FIDInceptionV3
from facezoo.nets.lpips_net import lpips_network
from facezoo.nets.weights import WeightsNotFoundError


def _const(value: float, shape=(1, 3, 16, 16)) -> torch.Tensor:
    return torch.full(shape, value)


# ------------------------------------------------------------------------------------ pixel metrics


def test_l1_and_mse_hand_computed():
    fake = torch.stack([_const(0.0)[0], _const(0.5)[0]])
    real = torch.stack([_const(1.0)[0], _const(-0.5)[0]])
    assert torch.allclose(l1(fake, real, reduction="none"), torch.tensor([1.0, 1.0]))
    assert torch.allclose(mse(fake, real, reduction="none"), torch.tensor([1.0, 1.0]))
    fake[1, 0] = -0.5  # one of three channels now equal: error 1 on 2/3 of the pixels
    assert torch.allclose(l1(fake, real, reduction="none"), torch.tensor([1.0, 2 / 3]))
    assert math.isclose(float(mse(fake, real)), (1.0 + 2 / 3) / 2, rel_tol=1e-6)


def test_psnr_of_known_mse():
    fake = torch.zeros(2, 3, 8, 8)
    real = torch.stack([_const(0.2, (3, 8, 8)), _const(0.02, (3, 8, 8))])  # MSE 0.04 and 0.0004
    values = psnr(fake, real, reduction="none")
    assert torch.allclose(values, torch.tensor([20.0, 40.0]), atol=1e-4)  # 10 log10(4 / MSE)
    assert math.isclose(float(psnr(fake, real)), 30.0, abs_tol=1e-4)
    assert math.isinf(float(psnr(real, real)))


def test_psnr_equals_torchmetrics_on_unit_range():
    torch.manual_seed(0)
    fake, real = torch.rand(3, 3, 8, 8) * 2 - 1, torch.rand(3, 3, 8, 8) * 2 - 1
    reference = peak_signal_noise_ratio(
        (fake + 1) / 2, (real + 1) / 2, data_range=1.0, reduction="none", dim=(1, 2, 3)
    )
    assert torch.allclose(psnr(fake, real, reduction="none"), reference, atol=1e-4)


def test_ssim_identical_is_one_and_constant_images_hand_computed():
    torch.manual_seed(1)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.allclose(ssim(x, x, reduction="none"), torch.ones(2), atol=1e-6)
    # uniform images have no variance: SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1), C1 = 0.01^2,
    # with the means taken on [0, 1]: -1 -> 0, 0 -> 0.5, 1 -> 1
    c1 = 0.01**2
    assert math.isclose(
        float(ssim(_const(0.0), _const(1.0))), (2 * 0.5 * 1 + c1) / (0.25 + 1 + c1), rel_tol=1e-5
    )
    assert math.isclose(float(ssim(_const(-1.0), _const(0.0))), c1 / (0.25 + c1), rel_tol=1e-4)
    y = (x + 0.3 * torch.randn_like(x)).clamp(-1, 1)
    assert float(ssim(x, y)) < 0.99
    assert math.isclose(float(ssim(x, y)), float(ssim(y, x)), rel_tol=1e-6)
    with pytest.raises(ValueError, match="11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_shape_checks():
    with pytest.raises(ValueError, match="same shape"):
        l1(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        mse(torch.zeros(3, 8, 8), torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="reduction"):
        l1(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), reduction="sum")


# -------------------------------------------------------------------------------- network metrics


@pytest.fixture(scope="module")
def random_lpips():
    torch.manual_seed(2)
    return lpips_network("alex", backbone_weights=None)


def test_lpips_metric(random_lpips):
    torch.manual_seed(3)
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    assert float(lpips(x, x, net=random_lpips)) == 0.0
    per_image = lpips(x, y, net=random_lpips, reduction="none")
    with torch.no_grad():
        reference = random_lpips(x, y).flatten()
    assert per_image.shape == (2,) and torch.allclose(per_image, reference) and (per_image > 0).all()
    with pytest.raises(ValueError, match="RGB"):
        lpips(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8), net=random_lpips)


def test_identity_similarity_cosine():
    flat = nn.Flatten()  # embeddings = the pixels themselves
    x = torch.randn(3, 3, 4, 4)
    assert torch.allclose(identity_similarity(x, x, flat, reduction="none"), torch.ones(3), atol=1e-6)
    assert torch.allclose(identity_similarity(-x, x, flat, reduction="none"), -torch.ones(3), atol=1e-6)
    a, b = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    a[0, 0, 0, 0], b[0, 1, 0, 0] = 1.0, 2.0
    assert float(identity_similarity(a, b, flat)) == 0.0
    mixed = torch.zeros(1, 3, 4, 4)
    mixed[0, 0, 0, 0], mixed[0, 1, 0, 0] = 1.0, 1.0
    assert math.isclose(float(identity_similarity(mixed, a, flat)), 1 / math.sqrt(2), rel_tol=1e-6)


def test_identity_similarity_prefers_embed_and_checks_output():
    class TwoDimEmbed(nn.Module):
        def embed(self, images):  # only the mean of the first two channels
            return images[:, :2].mean(dim=(2, 3))

        def forward(self, images):
            raise AssertionError("forward must not be used when embed exists")

    x = torch.zeros(1, 3, 4, 4)
    x[:, 0], x[:, 2] = 1.0, 5.0
    y = torch.zeros(1, 3, 4, 4)
    y[:, 1] = 1.0
    assert float(identity_similarity(x, y, TwoDimEmbed())) == 0.0  # (1, 0) vs (0, 1)
    with pytest.raises(ValueError, match=r"\(B, D\)"):
        identity_similarity(x, y, nn.Identity())


# -------------------------------------------------------------------------------------- landmarks


def _face68() -> torch.Tensor:
    torch.manual_seed(4)
    target = torch.rand(2, 68, 2) * 100
    target[:, 36] = torch.tensor([30.0, 40.0])  # outer eye corners 40 px apart
    target[:, 45] = torch.tensor([70.0, 40.0])
    return target


def test_landmark_nme_constructed_example():
    target = _face68()
    shifted = target + torch.tensor([3.0, 4.0])  # every point 5 px off
    assert torch.allclose(landmark_nme(shifted, target, reduction="none"), torch.full((2,), 5 / 40))
    one_off = target.clone()
    one_off[0, 10] += torch.tensor([0.0, 68.0])  # one point 68 px off in face 0: mean error 1 px
    assert torch.allclose(landmark_nme(one_off, target, reduction="none"), torch.tensor([1 / 40, 0.0]))
    # normalisation uses the target's eyes, not the prediction's
    assert math.isclose(float(landmark_nme(target, shifted)), 5 / 40, rel_tol=1e-6)


def test_landmark_nme_66_5_and_custom_points():
    target66 = _face68()[:, :66]
    assert math.isclose(float(landmark_nme(target66 + 2.0, target66)), math.sqrt(8) / 40, rel_tol=1e-6)
    target5 = torch.tensor([[[10.0, 10.0], [30.0, 10.0], [20.0, 20.0], [12.0, 30.0], [28.0, 30.0]]])
    assert math.isclose(
        float(landmark_nme(target5 + torch.tensor([0.0, 1.0]), target5)), 1 / 20, rel_tol=1e-6
    )
    assert math.isclose(
        float(landmark_nme(target5 + torch.tensor([0.0, 1.0]), target5, eye_indices=(3, 4))),
        1 / 16,
        rel_tol=1e-6,
    )
    with pytest.raises(ValueError, match="eye_indices"):
        landmark_nme(torch.zeros(1, 7, 2), torch.ones(1, 7, 2))
    with pytest.raises(ValueError, match=r"\(B, N, 2\)"):
        landmark_nme(torch.zeros(1, 68, 3), torch.zeros(1, 68, 3))
    with pytest.raises(ValueError, match="inter-ocular"):
        landmark_nme(torch.zeros(1, 68, 2), torch.zeros(1, 68, 2))


def test_landmark_nme_gradcheck():
    target = _face68()[:1].double()
    pred = (target + torch.randn_like(target)).requires_grad_()
    assert torch.autograd.gradcheck(lambda p: landmark_nme(p, target), (pred,))


# -------------------------------------------------------------------------------------------- FID


def _tiny_extractor() -> nn.Module:
    torch.manual_seed(5)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 4))


def test_fid_of_identical_sets_is_zero_and_of_shifted_sets_is_mean_distance():
    extractor = _tiny_extractor()
    fid = FID(extractor=extractor, input_img_size=(3, 2, 2))
    torch.manual_seed(6)
    real = torch.rand(64, 3, 2, 2) * 2 - 1
    fid.update(real[:32], real=True)
    fid.update(real[32:], real=True)
    fid.update(real, real=False)
    assert abs(float(fid.compute())) < 1e-3
    # a linear extractor maps a constant image shift to a feature shift with the same covariance:
    # FID = ||mu_fake - mu_real||^2 exactly
    fid.reset()
    delta = torch.full((1, 3, 2, 2), 0.1)
    fid.update(real, real=True)
    fid.update(real + delta, real=False)
    with torch.no_grad():
        expected = (extractor(real + delta).mean(0) - extractor(real).mean(0)).square().sum()
    assert math.isclose(float(fid.compute()), float(expected), rel_tol=1e-3, abs_tol=1e-5)


def test_fid_keeps_real_statistics_when_asked():
    fid = FID(extractor=_tiny_extractor(), input_img_size=(3, 2, 2), reset_real_features=False)
    real = torch.rand(8, 3, 2, 2)
    fid.update(real, real=True)
    fid.reset()
    assert int(fid.real_features_num_samples) == 8 and int(fid.fake_features_num_samples) == 0
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        fid.update(torch.rand(8, 2, 2), real=False)


def test_fid_default_inception_from_explicit_weights_and_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "empty_cache"))
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="pt_inception-2015-12-05-6726825d.pth"):
        FID()
    path = tmp_path / "pt_inception.pth"
    torch.save(FIDInceptionV3(init_weights=False).state_dict(), path)
    fid = FID(weights=path)
    assert isinstance(fid.inception, FIDInceptionV3) and fid.real_features_sum.shape == (2048,)
    assert not any(p.requires_grad for p in fid.inception.parameters())
    with pytest.raises(ValueError, match="not both"):
        FID(extractor=_tiny_extractor(), weights=path)
    path.unlink()  # 96 MB


# ------------------------------------------------------------------------------------------ registry


def test_compute_metrics_matches_the_functions(random_lpips):
    torch.manual_seed(7)
    fake, real = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    result = compute_metrics(
        ["l1", "psnr", "ssim", "lpips", "id_sim"], fake, real, lpips_net=random_lpips, id_net=nn.Flatten()
    )
    assert list(result) == ["l1", "psnr", "ssim", "lpips", "id_sim"]
    # scalar tensors (Lightning logs them; evaluate averages them), computed without a graph
    assert all(torch.is_tensor(v) and v.ndim == 0 and not v.requires_grad for v in result.values())
    assert math.isclose(result["l1"], float(l1(fake, real)), rel_tol=1e-6)
    assert math.isclose(result["psnr"], float(psnr(fake, real)), rel_tol=1e-6)
    assert math.isclose(result["ssim"], float(ssim(fake, real)), rel_tol=1e-6)
    assert math.isclose(result["lpips"], float(lpips(fake, real, net=random_lpips)), rel_tol=1e-5)
    assert math.isclose(result["id_sim"], float(identity_similarity(fake, real, nn.Flatten())), rel_tol=1e-5)
    assert METRICS["psnr"].higher_is_better and not METRICS["lpips"].higher_is_better


def test_compute_metrics_without_a_target_and_skip_missing():
    """real=None (data without a ground truth, e.g. MT): only the metrics that need no target are computable;
    skip_missing leaves out the ones whose target, networks or inputs are absent instead of raising."""
    torch.manual_seed(8)
    fake, reference = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    regions = torch.zeros(2, 2, 16, 16)
    regions[:, 0, :8], regions[:, 1, 8:] = 1, 1
    inputs = dict(regions=regions, region_names=("top", "bottom"), reference=reference, reference_regions=regions)
    names = ["l1", "psnr", "lpips", "fid", "region_hist", "region_hist_ref"]
    values = compute_metrics(names, fake, None, skip_missing=True, **inputs)
    assert list(values) == ["hist_ref_top", "hist_ref_bottom"]      # the rest need a target, a network or a split
    by_hand = metrics.region_histogram_distance(fake, reference, regions, regions)
    assert torch.allclose(torch.stack(list(values.values())), by_hand)
    with_target = compute_metrics(names, fake, reference, skip_missing=True, **inputs)
    assert list(with_target) == ["l1", "psnr", "hist_top", "hist_bottom", "hist_ref_top", "hist_ref_bottom"]
    assert torch.allclose(with_target["hist_top"], values["hist_ref_top"])    # the target is the reference here
    with pytest.raises(ValueError, match="metric 'l1' needs a ground-truth target"):
        compute_metrics(["l1"], fake, None)
    with pytest.raises(ValueError, match="metric 'region_hist_ref' needs regions, region_names, reference"):
        compute_metrics(["region_hist_ref"], fake, None)
    with pytest.raises(ValueError, match="metric 'lpips' needs lpips_net"):
        compute_metrics(["lpips"], fake, reference)
    with pytest.raises(KeyError, match="fid50k"):
        compute_metrics(["fid50k"], fake, None, skip_missing=True)     # a typo is never skipped


def test_compute_metrics_nme_and_errors():
    target = _face68()
    detector = lambda images: target + images.mean(dim=(1, 2, 3)).view(-1, 1, 1) * 40  # noqa: E731
    fake, real = _const(0.1, (2, 3, 8, 8)), _const(0.0, (2, 3, 8, 8))
    # detected on fake: target + 4 px in x and y; on real: target
    expected = math.sqrt(32) / 40
    assert math.isclose(
        compute_metrics(["nme"], fake, real, landmark_net=detector)["nme"], expected, rel_tol=1e-5
    )
    res = compute_metrics(["nme"], fake, real, landmark_net=detector, target_landmarks=target + 4.0)
    assert res["nme"] < 1e-6
    # without a ground-truth image nme needs the target landmarks (the re-posing task has them)
    res = compute_metrics(["nme"], fake, None, landmark_net=detector, target_landmarks=target + 4.0)
    assert res["nme"] < 1e-6
    with pytest.raises(ValueError, match="nme needs target_landmarks or a real image"):
        compute_metrics(["nme"], fake, None, landmark_net=detector)
    with pytest.raises(ValueError, match="id_net"):
        compute_metrics(["id_sim"], fake, real)
    with pytest.raises(KeyError, match="fid50k"):
        compute_metrics(["fid50k"], fake, real)


def test_default_lpips_resolves_backbone(monkeypatch, tmp_path):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    metrics._default_lpips.cache_clear()
    with pytest.raises(WeightsNotFoundError, match="alexnet-owt-7be5be79.pth"):
        lpips(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))


# ------------------------------------------------------------------------------------ label-map metrics


def test_pixel_accuracy_and_mean_iou_against_a_loop():
    torch.manual_seed(3)
    pred, target = torch.randint(0, 5, (3, 6, 7)), torch.randint(0, 5, (3, 6, 7))
    target[2] = pred[2]                                                        # one perfect image
    acc = metrics.pixel_accuracy(pred, target, reduction="none")
    assert torch.allclose(acc, (pred == target).float().mean((1, 2))) and acc[2] == 1
    expected = []
    for p, t in zip(pred, target):
        ious = [((p == c) & (t == c)).sum() / ((p == c) | (t == c)).sum()
                for c in range(19) if ((p == c) | (t == c)).any()]
        expected.append(torch.stack(ious).float().mean())
    assert torch.allclose(metrics.mean_iou(pred, target, reduction="none"), torch.stack(expected))
    assert metrics.mean_iou(pred, target).item() == pytest.approx(torch.stack(expected).mean().item())
    with pytest.raises(ValueError, match="label ids"):
        metrics.mean_iou(pred + 19, target)
    with pytest.raises(ValueError, match="integer"):
        metrics.pixel_accuracy(pred.float(), target)


def test_mask_metrics_in_the_registry_read_labels_with_the_parser():
    from facezoo.face.labels import colorize_labels, labels_from_colors

    target = torch.zeros(2, 4, 4, dtype=torch.long)
    target[:, :2] = 13                                                         # hair on the top half
    output = colorize_labels(torch.where(torch.arange(4)[None, :, None] < 1, 13, 0).expand(2, 4, 4))  # top quarter
    values = compute_metrics(["mask_accuracy", "mask_miou", "l1"], output, None, skip_missing=True,
                             mask_parser=labels_from_colors, target_mask=target)
    assert list(values) == ["mask_accuracy", "mask_miou"]                      # l1 needs a target: skipped
    assert values["mask_accuracy"].item() == pytest.approx(0.75)
    assert values["mask_miou"].item() == pytest.approx((0.5 + 8 / 12) / 2)     # hair 4/8, background 8/12
    assert METRICS["mask_accuracy"].higher_is_better and not METRICS["mask_miou"].needs_target


def test_edit_metrics_count_only_the_pixels_the_edit_changed():
    from facezoo.face.labels import colorize_labels, labels_from_colors

    source = torch.zeros(2, 4, 4, dtype=torch.long)
    target = source.clone()
    target[0, 0, :2] = 13                                      # image 0: two pixels edited to hair; image 1: none
    drawn = target.clone()
    drawn[0, 0, 1] = 0                                         # one of the two drawn, and a wrong pixel elsewhere
    drawn[1, 3, 3] = 13
    fake, real = colorize_labels(drawn), colorize_labels(target)
    values = compute_metrics(["mask_accuracy_edited", "l1_edited", "mask_accuracy"], fake, real,
                             mask_parser=labels_from_colors, target_mask=target, source_mask=source)
    assert values["mask_accuracy_edited"].item() == pytest.approx(0.5)        # the wrong pixel outside: not counted
    assert values["mask_accuracy"].item() == pytest.approx(30 / 32)
    assert values["l1_edited"].item() == pytest.approx((fake - real).abs()[0, :, 0, :2].mean().item())
    unedited = compute_metrics(["mask_accuracy_edited", "l1_edited"], fake, real, mask_parser=labels_from_colors,
                               target_mask=source, source_mask=source)
    assert unedited["mask_accuracy_edited"] == 1 and unedited["l1_edited"] == 0
    assert METRICS["mask_accuracy_edited"].higher_is_better and not METRICS["l1_edited"].higher_is_better


def test_results_table_learning_curve(tmp_path):
    """scripts/results_table.py on a run's metrics.csv: one row per validation, training rows skipped, batches
    counted from the logger's 0-based step."""
    from conftest import load_script

    path = tmp_path / "metrics.csv"
    path.write_text("epoch,step,train/g_total_step,val/l1,val/hist_lip\n"
                    "0,9,0.5,,\n0,249,,0.27841,1.41\n0,259,0.4,,\n0,499,,0.25,\n")
    assert load_script("results_table.py").curve(path, ["val/l1", "val/hist_lip"]).splitlines() == [
        "| batches | val/l1 | val/hist_lip |", "|---|---|---|",
        "| 250 | 0.2784 | 1.4100 |", "| 500 | 0.2500 | – |"]


def test_region_l1_splits_the_error_inside_each_region_and_outside():
    fake, real = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    regions = torch.zeros(2, 3, 4, 4)
    regions[:, 0, 0] = 1                                  # lip: row 0
    regions[:, 1, 1:3] = 1                                # skin: rows 1-2; eye: none
    fake[:, :, 0] = 0.5                                   # the lips moved by 0.5 ...
    fake[0, 0, 3] = 0.3                                   # ... and one channel of row 3 of image 0 (outside)
    got = compute_metrics(["region_l1"], fake, real, regions=regions, region_names=("lip", "skin", "eye"))
    assert set(got) == {"l1_lip", "l1_skin", "l1_eye", "l1_outside"}
    assert got["l1_lip"].item() == pytest.approx(0.5) and got["l1_skin"].item() == 0 and got["l1_eye"].item() == 0
    assert got["l1_outside"].item() == pytest.approx(0.3 / 3 / 2)       # one of 3 channels, one of 2 images
