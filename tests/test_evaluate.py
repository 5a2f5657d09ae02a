"""`python -m facezoo.evaluate`: metrics of a checkpoint next to the task's trivial baselines."""

from __future__ import annotations

import json

import torch
from conftest import run_module


def test_evaluate_writes_model_and_baseline_metrics(tiny_tpgan_run, tmp_path):
    out = tmp_path / "eval.json"
    run_module("facezoo.evaluate", f"ckpt_path={tiny_tpgan_run / 'checkpoints' / 'last.ckpt'}", f"out={out}",
               "mean_face_samples=8", f"hydra.run.dir={tmp_path / 'hydra'}")
    result = json.loads(out.read_text())
    assert result["split"] == "test" and result["num_samples"] == 8
    m = result["metrics"]
    for prefix in ("", "baseline_input/", "baseline_mean_frontal/"):
        for metric in ("l1", "mse", "psnr", "ssim"):
            assert f"{prefix}{metric}" in m
    # the metrics are measured, not copied: baselines differ from each other and from the model
    assert len({m["l1"], m["baseline_input/l1"], m["baseline_mean_frontal/l1"]}) == 3
    assert result["skipped"] == {}  # TP-GAN lists no metric that needs a network


def test_metrics_whose_networks_are_missing_are_reported_skipped(tiny_tpgan_run, tmp_path, monkeypatch):
    """A listed metric whose weights are absent (LPIPS' AlexNet, ArcFace) is skipped with the reason, for the
    model and every baseline alike; the others are computed, the shipped synthetic identity network's too."""
    from facezoo.config import compose
    from facezoo.evaluate import evaluate
    from facezoo.methods.tpgan.module import TPGAN

    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))       # nor torchvision's cache
    monkeypatch.setattr(TPGAN, "metrics", ("l1", "lpips", "id_sim", "id_sim_synthetic"))
    ckpt = tiny_tpgan_run / "checkpoints" / "last.ckpt"
    result = evaluate(compose("evaluate", [f"ckpt_path={ckpt}", "limit_samples=4", "batch_size=4",
                                           "mean_face_samples=4"]))
    assert set(result["skipped"]) == {"lpips", "id_sim"}
    assert "alexnet-owt-7be5be79.pth" in result["skipped"]["lpips"]
    assert "model_ir_se50.pth" in result["skipped"]["id_sim"]
    timing = {"seconds_per_image", "baseline_input/seconds_per_image", "baseline_mean_frontal/seconds_per_image"}
    ids = {"id_sim_synthetic", "baseline_input/id_sim_synthetic", "baseline_mean_frontal/id_sim_synthetic"}
    assert set(result["metrics"]) == {"l1", "baseline_input/l1", "baseline_mean_frontal/l1"} | timing | ids
    assert all(-1 <= result["metrics"][k] <= 1 for k in ids) and len({result["metrics"][k] for k in ids}) == 3
    assert all(result["metrics"][k] >= 0 for k in timing)
    off = evaluate(compose("evaluate", [f"ckpt_path={ckpt}", "limit_samples=4", "batch_size=4",
                                        "mean_face_samples=4", "lpips_backbone=null", "identity_weights=null",
                                        f"synthetic_identity_weights={tmp_path / 'none.pt'}"]))
    assert off["skipped"] == {"lpips": "skipped (off in the config)", "id_sim": "skipped (off in the config)",
                              "id_sim_synthetic": off["skipped"]["id_sim_synthetic"]}
    assert "none.pt" in off["skipped"]["id_sim_synthetic"]
    assert {k: v for k, v in off["metrics"].items() if k not in timing} == \
        {k: v for k, v in result["metrics"].items() if k not in timing | ids}


def test_evaluate_baselines_are_what_they_claim(tiny_tpgan_run):
    """baseline_input returns the profile; baseline_mean_frontal the train split's mean frontal face."""
    import facezoo

    model, dm, _ = facezoo.load(tiny_tpgan_run / "checkpoints" / "last.ckpt")
    baselines = model.evaluation_baselines(dm, mean_face_samples=4)
    batch = torch.utils.data.default_collate([dm.dataset("test")[i] for i in range(2)])
    assert torch.equal(baselines["input"](batch), batch["image"])
    mean_face = torch.stack([dm.dataset("train")[i]["target"] for i in range(4)]).mean(0)
    assert torch.allclose(baselines["mean_frontal"](batch)[1], mean_face)


def test_load_restores_the_trained_weights(tiny_tpgan_run):
    import facezoo

    model, _, cfg = facezoo.load(tiny_tpgan_run / "checkpoints" / "last.ckpt")
    ckpt = torch.load(tiny_tpgan_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    for k, v in ckpt["state_dict"].items():
        assert torch.equal(model.state_dict()[k], v), k
    assert cfg.model.width == 0.125


def test_evaluate_bad_checkpoint_is_one_line(tmp_path):
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    proc = run_module("facezoo.evaluate", f"ckpt_path={bad}", f"hydra.run.dir={tmp_path / 'h'}", check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"facezoo.evaluate: error: {bad}: cannot read checkpoint" in proc.stderr
