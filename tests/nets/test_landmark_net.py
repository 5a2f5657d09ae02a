"""The synthetic-face landmark network (facezoo.nets.landmarks): read-out, training, checkpoints, script."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import load_script

from facezoo.data.synthetic import SyntheticReposing
from facezoo.face.heatmaps import landmark_heatmaps
from facezoo.metrics import landmark_nme
from facezoo.nets.landmarks import (
    HeatmapLandmarkNet,
    dataset_nme,
    landmark_net_loss,
    stack_faces,
    to_heatmap_pixels,
    to_image_pixels,
    training_step,
)
from facezoo.nets.weights import WEIGHTS, WeightsNotFoundError

ROOT = Path(__file__).resolve().parents[2]


def test_shapes_and_input_checks():
    net = HeatmapLandmarkNet(num_points=5, size=32, width=4, depth=2)
    assert net.heatmaps(torch.zeros(2, 3, 32, 32)).shape == (2, 5, 16, 16)
    assert net(torch.zeros(2, 3, 40, 24)).shape == (2, 5, 2)
    with pytest.raises(ValueError, match="divisible"):
        HeatmapLandmarkNet(size=36, depth=2)
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        net.heatmaps(torch.zeros(2, 3, 16, 16))


def test_soft_argmax_reads_back_gaussian_targets():
    net = HeatmapLandmarkNet(num_points=3, size=64, width=4)
    points = torch.tensor([[[10.3, 20.7], [40.0, 33.2], [31.5, 50.9]]])
    torch.testing.assert_close(to_image_pixels(to_heatmap_pixels(points, 2), 2), points)
    # a blob wider than the softmax sharpening is read back to sub-pixel accuracy ...
    wide = landmark_heatmaps(to_heatmap_pixels(points, 2), (32, 32), sigma=3.0)
    torch.testing.assert_close(net.landmarks_from(wide), points, atol=0.05, rtol=0)
    # ... the σ = 1 training targets to within one heatmap pixel (two image pixels): the coordinate loss
    # trains the maps through this read-out
    sharp = landmark_heatmaps(to_heatmap_pixels(points, 2), (32, 32), sigma=net.sigma)
    assert (net.landmarks_from(sharp) - points).abs().max() < 1.0


def test_resized_input_maps_points_to_input_pixels():
    torch.manual_seed(0)
    net = HeatmapLandmarkNet(num_points=4, size=32, width=4).eval()
    small = torch.rand(1, 3, 32, 32) * 2 - 1
    big = torch.nn.functional.interpolate(small, scale_factor=2, mode="nearest")   # resizes back exactly
    net.resize_input = lambda x: torch.nn.functional.avg_pool2d(x, 2) if x.shape[-1] == 64 else x
    torch.testing.assert_close(net(big), (net(small) + 0.5) * 2 - 0.5)


def test_training_lowers_the_nme():
    torch.manual_seed(0)
    data = SyntheticReposing("train", size=32, length=2, num_identities=2, supersample=1)
    batch = torch.utils.data.default_collate([data[i] for i in range(2)])
    images, points = stack_faces(batch)
    assert images.shape == (6, 3, 32, 32) and points.shape == (6, 68, 2)
    net = HeatmapLandmarkNet(size=32, width=8, depth=2)
    before = dataset_nme(net, data)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    first = training_step(net, opt, images, points)
    for _ in range(60):
        last = training_step(net, opt, images, points)
    after = dataset_nme(net, data)
    assert last["coordinate"] < 0.6 * first["coordinate"]
    assert after < 0.8 * before
    net.eval()
    assert after == pytest.approx(float(landmark_nme(net(images), points)), rel=1e-5)   # dataset_nme = metric


def test_loss_terms_are_named_and_differentiable():
    net = HeatmapLandmarkNet(num_points=68, size=32, width=4)
    terms = landmark_net_loss(net, torch.rand(2, 3, 32, 32) * 2 - 1, torch.full((2, 68, 2), 16.0))
    assert set(terms) == {"heatmap", "coordinate", "total"}
    terms["total"].backward()
    assert net.head.weight.grad.abs().sum() > 0


def test_checkpoint_round_trip_and_weight_resolution(tmp_path, monkeypatch):
    torch.manual_seed(0)
    net = HeatmapLandmarkNet(num_points=68, size=32, width=4).eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    shipped = HeatmapLandmarkNet.from_pretrained()             # the network facezoo ships (nets/data/)
    assert shipped.size == 64 and shipped.meta["test_nme"] < 0.05
    monkeypatch.setattr("facezoo.nets.weights.packaged_dir", lambda: tmp_path / "nothing")
    with pytest.raises(WeightsNotFoundError, match="train_landmark_net.py"):
        HeatmapLandmarkNet.from_pretrained()
    net.save_checkpoint(tmp_path / WEIGHTS["synthetic_landmarks"].filename, test_nme=0.05)
    loaded = HeatmapLandmarkNet.from_pretrained()
    assert loaded.meta == {"test_nme": 0.05} and loaded.frozen and not loaded.training
    torch.testing.assert_close(loaded(x), net(x))
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a facezoo landmark-net checkpoint"):
        HeatmapLandmarkNet.from_checkpoint(tmp_path / "other.pt")


def test_training_script_writes_a_checkpoint_with_its_heldout_nme(tmp_path, capsys):
    script = load_script("train_landmark_net.py")
    out = tmp_path / "lm.pt"
    assert script.main(["--out", str(out), "--steps", "2", "--batch-size", "2", "--size", "32", "--width", "4",
                        "--eval-samples", "2", "--num-workers", "0"]) == 0
    net = HeatmapLandmarkNet.from_checkpoint(out)
    assert net.size == 32 and net.meta["steps"] == 2 and net.meta["test_faces"] == 6
    test = SyntheticReposing("test", size=32, length=2, num_identities=50)
    assert net.meta["test_nme"] == pytest.approx(dataset_nme(net, test), abs=1e-5)
    assert "held-out NME" in capsys.readouterr().out
