"""GANnotation evaluation and inference: baselines, landmark NME wiring, evaluate JSON, infer CLI and chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_env, run_module
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from facezoo import metrics
from facezoo.config import compose
from facezoo.data.video300w import format_pts
from facezoo.methods.gannotation import inference
from facezoo.methods.gannotation.baselines import (
    piecewise_affine_map,
    piecewise_affine_warp,
    reposing_baselines,
    similarity_matrices,
    similarity_warp,
    unchanged,
)
from facezoo.nets import weights
from facezoo.nets.landmarks import HeatmapLandmarkNet
from facezoo.nets.weights import WEIGHTS
from facezoo.utils import FacezooError

TINY = ["model=gannotation", "data.size=32", "data.batch_size=2", "data.num_workers=0",
        "data.splits.train.length=4", "data.splits.train.num_identities=2",
        "data.splits.test.length=4", "data.splits.test.num_identities=2",
        "model.width=0.125", "model.repeat_num=1", "model.d_repeat_num=4",
        "model.frozen.identity_loss=null", "model.frozen.perceptual_loss=null"]


def _ramps(height: int, width: int) -> torch.Tensor:
    """A (1, 3, H, W) image whose channels are x/W, y/H and 0: bilinear sampling reads coordinates back."""
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xs / width, ys / height, torch.zeros_like(xs)])[None]


# ------------------------------------------------------------------------------------- baselines
def test_similarity_is_the_least_squares_fit():
    rng = np.random.default_rng(0)
    a = rng.uniform(10, 50, (1, 20, 2))
    angle, scale, shift = 0.3, 1.2, np.array([3.0, -2.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    b = a @ rot.T + shift + rng.normal(0, 0.5, a.shape)
    m = similarity_matrices(torch.from_numpy(a), torch.from_numpy(b))[0].numpy()
    # independent least squares: x' = p x − q y + tx, y' = q x + p y + ty
    rows = []
    for (x, y) in a[0]:
        rows += [[x, -y, 1, 0], [y, x, 0, 1]]
    p, q, tx, ty = np.linalg.lstsq(np.array(rows), b[0].reshape(-1), rcond=None)[0]
    np.testing.assert_allclose(m, [[p, -q, tx], [q, p, ty]], atol=1e-8)
    # the warp samples A at M⁻¹·p: a coordinate ramp reads back M⁻¹·p at interior pixels
    image = _ramps(64, 64)
    out = similarity_warp(image, torch.from_numpy(a), torch.from_numpy(b))
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    for px, py in [(30, 30), (25, 40), (40, 28)]:
        sx, sy = inv @ np.array([px, py, 1.0])
        assert out[0, 0, py, px].item() == pytest.approx(sx / 64, abs=1e-6)
        assert out[0, 1, py, px].item() == pytest.approx(sy / 64, abs=1e-6)


def test_piecewise_lands_landmarks_exactly_and_matches_skimage():
    from skimage.transform import PiecewiseAffineTransform

    rng = np.random.default_rng(1)
    b = np.stack([rng.choice(np.arange(8, 56), 12, replace=False), rng.choice(np.arange(8, 56), 12, replace=False)],
                 1).astype(np.float64)                                  # B's landmarks on integer pixels
    a = b + rng.uniform(-3, 3, b.shape)
    out = piecewise_affine_warp(_ramps(64, 64), torch.from_numpy(a)[None], torch.from_numpy(b)[None])
    for (ax, ay), (bx, by) in zip(a, b):                                # A's point i is drawn at B's point i
        assert out[0, 0, int(by), int(bx)].item() == pytest.approx(ax / 64, abs=1e-5)
        assert out[0, 1, int(by), int(bx)].item() == pytest.approx(ay / 64, abs=1e-5)
    query = rng.uniform(9, 54, (50, 2))
    if hasattr(PiecewiseAffineTransform, "from_estimate"):               # the independent reference
        tform = PiecewiseAffineTransform.from_estimate(b, a)
    else:
        tform = PiecewiseAffineTransform()
        tform.estimate(b, a)
    inside = (tform(query) != -1).all(1)
    np.testing.assert_allclose(piecewise_affine_map(b, a, query)[inside], tform(query)[inside], atol=1e-8)


def test_baseline_registry_and_checks():
    batch = {"image": torch.rand(2, 3, 16, 16), "landmarks": torch.rand(2, 68, 2) * 15,
             "target_landmarks": torch.rand(2, 68, 2) * 15}
    outs = {k: fn(batch) for k, fn in reposing_baselines().items()}
    assert set(outs) == {"unchanged", "similarity", "piecewise"}
    assert outs["unchanged"] is batch["image"]
    assert all(o.shape == (2, 3, 16, 16) for o in outs.values())
    with pytest.raises(ValueError, match="target_landmarks"):
        unchanged(batch["image"], batch["landmarks"], batch["target_landmarks"][:1])
    with pytest.raises(ValueError, match="unknown baselines"):
        reposing_baselines(["mean_face"])


# -------------------------------------------------------------------------- module + evaluate
def _config(tmp_path: Path, *extra: str):
    return compose("train", [*TINY, f"paths.output_dir={tmp_path}", *extra])


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    """A randomly initialised tiny GANnotation saved as facezoo.train saves checkpoints."""
    tmp = tmp_path_factory.mktemp("gan_ckpt")
    cfg = _config(tmp)
    torch.manual_seed(0)
    model = instantiate(cfg.model, _convert_="all")
    path = tmp / "tiny.ckpt"
    config = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in ("model", "data")}
    torch.save({"state_dict": model.state_dict(), "facezoo_config": {**config, "seed": cfg.seed}}, path)
    return path


@pytest.fixture
def landmark_cache(tmp_path, monkeypatch) -> HeatmapLandmarkNet:
    """A random tiny landmark net in a fresh facezoo cache."""
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    torch.manual_seed(1)
    net = HeatmapLandmarkNet(size=32, width=4).eval()
    net.save_checkpoint(tmp_path / "cache" / WEIGHTS["synthetic_landmarks"].filename)
    return net


def test_module_metrics_add_nme_only_with_the_landmark_net(tmp_path, tiny_ckpt, monkeypatch, caplog):
    import facezoo

    model, dm, _ = facezoo.load(tiny_ckpt)
    batch = torch.utils.data.default_collate([dm.dataset("test")[i] for i in range(2)])
    assert set(model.evaluation_baselines(dm)) == {"unchanged", "similarity", "piecewise"}
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(weights, "packaged_dir", lambda: tmp_path / "empty")    # nor the shipped network
    out = model.predict_batch(batch)
    values = model.evaluation_metrics(out, batch)
    assert set(values) == {"l1", "mse", "psnr", "ssim"}
    assert all(torch.is_tensor(v) and v.ndim == 0 for v in values.values())
    assert "landmark NME skipped" in caplog.text

    model, _, _ = facezoo.load(tiny_ckpt)                   # a fresh model looks for the net again
    torch.manual_seed(1)
    net = HeatmapLandmarkNet(size=32, width=4).eval()
    net.save_checkpoint(tmp_path / "cache" / WEIGHTS["synthetic_landmarks"].filename)
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "cache"))
    values = model.evaluation_metrics(out, batch)
    assert list(values) == ["l1", "mse", "psnr", "ssim", "nme"]           # model.metrics, in order
    with torch.no_grad():
        expected = metrics.landmark_nme(net(out), batch["target_landmarks"])
    assert float(values["nme"]) == pytest.approx(float(expected), rel=1e-5)
    assert not any(k.startswith("_evaluation") or "landmark" in k for k in model.state_dict())


def test_evaluate_reports_model_and_three_baselines(tmp_path, tiny_ckpt, landmark_cache):
    out = tmp_path / "eval.json"
    run_module("facezoo.evaluate", f"ckpt_path={tiny_ckpt}", f"out={out}", "limit_samples=4", "batch_size=4",
               "lpips_backbone=null", f"hydra.run.dir={tmp_path / 'run'}",
               env=cli_env(FACEZOO_CACHE=str(tmp_path / "cache")))
    result = json.loads(out.read_text())["metrics"]
    for prefix in ("", "baseline_unchanged/", "baseline_similarity/", "baseline_piecewise/"):
        assert {f"{prefix}{m}" for m in ("l1", "psnr", "ssim", "nme")} <= set(result)
    # the triple-consistency error belongs to the model only
    assert result["triple_consistency"] >= 0 and not any(k.endswith("/triple_consistency") for k in result)
    import facezoo

    _, dm, _ = facezoo.load(tiny_ckpt)
    batch = torch.utils.data.default_collate([dm.dataset("test")[i] for i in range(4)])
    assert result["baseline_unchanged/l1"] == pytest.approx(float(metrics.l1(batch["image"], batch["target"])),
                                                            abs=1e-5)


# ------------------------------------------------------------------------------------ inference
def test_read_points_formats_agree(tmp_path):
    pts = np.random.default_rng(0).uniform(0, 90, (68, 2)).round(3)
    (tmp_path / "p.pts").write_text(format_pts(pts))
    (tmp_path / "p.txt").write_text("".join(f"{x} {y}\n" for x, y in pts))
    np.save(tmp_path / "p.npy", pts)
    torch.save(torch.from_numpy(pts), tmp_path / "p.pt")
    for suffix in (".pts", ".txt", ".npy", ".pt"):
        np.testing.assert_allclose(inference.read_points(tmp_path / f"p{suffix}"), pts, atol=1e-6)
    np.save(tmp_path / "bad.npy", pts[:10])
    with pytest.raises(FacezooError, match=r"bad.npy: expected \(68, 2\) or \(66, 2\)"):
        inference.read_points(tmp_path / "bad.npy")


def test_target_points_are_placed_by_their_own_box():
    pts = np.array([[1000.0, 2000.0], [1100.0, 2100.0], [1050.0, 2050.0]])      # δ = 100: margin 16
    in_crop = inference.points_in_crop(pts, 64)
    np.testing.assert_allclose(in_crop[:2], (np.array([[16.0, 16.0], [116.0, 116.0]]) + 0.5) * 64 / 132 - 0.5)
    np.testing.assert_allclose(inference.points_in_crop(pts - 900, 64), in_crop)   # position does not matter


class _FakeDetector:
    """Returns fixed landmarks for every photo (the dlib backend is exercised by the CLI test)."""

    name = "fake"

    def __init__(self, landmarks):
        self.landmarks = landmarks

    def detect(self, image):
        from facezoo.face.detect import Face

        return [Face((0, 0, image.shape[1], image.shape[0]), self.landmarks, 1.0)]


def test_chain_writes_every_step(tmp_path, tiny_ckpt, monkeypatch):
    import facezoo.face.detect as detect

    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (80, 90, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "a.png")
    src_points = np.stack([rng.uniform(20, 70, 68), rng.uniform(15, 65, 68)], 1).astype(np.float32)
    monkeypatch.setattr(detect, "get_detector", lambda *a, **k: _FakeDetector(src_points))
    targets = []
    for k in range(3):
        p = tmp_path / f"t{k}.npy"
        np.save(p, src_points + rng.normal(0, 3, src_points.shape))
        targets.append(str(p))
    cfg = OmegaConf.create({"method": "gannotation", "ckpt_path": str(tiny_ckpt), "source": str(tmp_path / "a.png"),
                            "chain": targets, "out": str(tmp_path / "res.png"), "detector": "fake", "device": "cpu"})
    written = inference.run(cfg)
    names = [p.name for p in written]
    assert names == ["res_0.png", "res_1.png", "res_2.png", "res_3.png", "res_direct.png", "res_nme.json"]
    # landmark error of every step: the backend's points on the output (here the fake's, found on a x4 copy)
    # against the target points the step was asked for
    report = json.loads((tmp_path / "res_nme.json").read_text())
    assert [step["step"] for step in report["steps"]] == [1, 2, 3]
    found = torch.tensor((src_points.astype(np.float64) + 0.5) / 4 - 0.5, dtype=torch.float32)[None]
    for step, target in zip(report["steps"], targets):
        wanted = torch.tensor(inference.points_in_crop(np.load(target), 32), dtype=torch.float32)[None]
        assert step["nme"] == pytest.approx(float(metrics.landmark_nme(found, wanted)), rel=1e-5)
    assert report["mean_nme"] == pytest.approx(np.mean([step["nme"] for step in report["steps"]]))
    crop, _ = inference.crop_face(photo, src_points, 32)
    step0 = np.asarray(Image.open(tmp_path / "res_0.png")).astype(np.float64)
    np.testing.assert_allclose(step0, (crop[0].permute(1, 2, 0).numpy() + 1) * 127.5, atol=0.51)
    # step 1 is G(crop, H(target 1)) computed independently
    reposer = inference.load_reposer(cfg)
    first = reposer(crop, torch.from_numpy(inference.points_in_crop(np.load(targets[0]), 32)).float()[None])
    assert first.is_inference()                                      # the photo pipeline runs in inference_mode
    step1 = np.asarray(Image.open(tmp_path / "res_1.png")).astype(np.float64)
    np.testing.assert_allclose(step1, (first[0].permute(1, 2, 0).numpy() + 1) * 127.5, atol=0.51)
    # fast=true: the generator in bf16, the output fp32 and close
    fast = inference.load_reposer(OmegaConf.merge(cfg, {"fast": True}))(
        crop, torch.from_numpy(inference.points_in_crop(np.load(targets[0]), 32)).float()[None])
    psnr = 10 * torch.log10(4 / ((fast - first) ** 2).mean())
    assert fast.dtype == torch.float32 and 30 < psnr < float("inf"), psnr
    with pytest.raises(FacezooError, match="not both"):
        inference.run(OmegaConf.merge(cfg, {"target_landmarks": targets[0]}))


def test_infer_cli_with_a_points_file(tmp_path, tiny_ckpt):
    import skimage.data

    Image.fromarray(skimage.data.astronaut()).save(tmp_path / "astronaut.png")
    pts = np.random.default_rng(0).uniform(100, 200, (68, 2))
    (tmp_path / "target.pts").write_text(format_pts(pts))
    out = tmp_path / "out.png"
    run_module("facezoo.infer", "model=gannotation", f"ckpt_path={tiny_ckpt}", f"source={tmp_path / 'astronaut.png'}",
               f"target_landmarks={tmp_path / 'target.pts'}", f"out={out}", "detector=dlib")
    assert Image.open(out).size == (32, 32)
    report = json.loads((tmp_path / "out_nme.json").read_text())  # dlib may find no face on a 32 px random output
    assert len(report["steps"]) == 1 and (report["steps"][0]["nme"] is None or report["steps"][0]["nme"] >= 0)
    bad = run_module("facezoo.infer", "model=gannotation", f"ckpt_path={tiny_ckpt}",
                     f"source={tmp_path / 'astronaut.png'}", f"target_landmarks={tmp_path / 'nope.pts'}",
                     f"out={tmp_path / 'x.png'}", "detector=dlib", check=False)
    assert bad.returncode == 2 and "nope.pts: no such points file" in bad.stderr
    assert not (tmp_path / "x.png").exists()
