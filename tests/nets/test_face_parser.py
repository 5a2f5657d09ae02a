"""The synthetic-face parser (facezoo.nets.parser): shapes, shipped weights, resolution, training script."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import load_script

from facezoo.data.synthetic import SyntheticFaces
from facezoo.metrics import compute_metrics
from facezoo.nets.parser import SyntheticFaceParser
from facezoo.nets.weights import WEIGHTS, WeightsNotFoundError

ROOT = Path(__file__).resolve().parents[2]


def test_labels_come_back_at_the_input_size():
    net = SyntheticFaceParser(size=32, width=4, depth=2).eval()
    x = torch.rand(3, 3, 48, 40) * 2 - 1
    assert net.logits(x).shape == (3, 19, 48, 40)
    labels = net(x)
    assert labels.shape == (3, 48, 40) and labels.dtype == torch.int64
    assert torch.equal(labels, net.logits(x).argmax(1)) and 0 <= labels.min() and labels.max() <= 18
    with pytest.raises(ValueError, match="divisible"):
        SyntheticFaceParser(size=36, depth=2)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.zeros(2, 1, 32, 32))


def test_the_shipped_parser_reads_held_out_faces(monkeypatch, tmp_path):
    """The file in facezoo/nets/data: its recorded held-out scores, and a fresh check on other test faces."""
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    net = SyntheticFaceParser.from_pretrained()
    assert net.frozen and not net.training and net.size == 64
    assert net.meta["test_pixel_accuracy"] > 0.9 and net.meta["test_pixel_accuracy_blurred"] > 0.85
    test = SyntheticFaces("test", size=64, length=8, num_identities=8, seed=7)       # another seed: unseen faces
    samples = [test[i] for i in range(len(test))]
    images, masks = torch.stack([s["image"] for s in samples]), torch.stack([s["mask"] for s in samples])
    right = compute_metrics(["mask_accuracy", "mask_miou"], images, None, mask_parser=net, target_mask=masks)
    assert right["mask_accuracy"] > 0.88 and right["mask_miou"] > 0.5
    wrong = compute_metrics(["mask_accuracy"], images, None, mask_parser=net, target_mask=masks.roll(1, 0))
    assert wrong["mask_accuracy"] < right["mask_accuracy"] - 0.05            # another face's mask fits worse


def test_checkpoint_resolution_and_training_script(empty_weight_cache, capsys):
    tmp_path = empty_weight_cache
    with pytest.raises(WeightsNotFoundError, match="train_face_parser.py"):
        SyntheticFaceParser.from_pretrained()
    script = load_script("train_face_parser.py")
    out = tmp_path / WEIGHTS["synthetic_parser"].filename
    assert script.main(["--out", str(out), "--steps", "3", "--batch-size", "4", "--size", "32", "--width", "4",
                        "--identities", "4", "--test-samples", "4", "--num-workers", "0"]) == 0
    net = SyntheticFaceParser.from_pretrained()                  # now found in the cache
    assert net.size == 32 and net.meta["steps"] == 3 and net.meta["test_faces"] == 4
    assert 0.0 <= net.meta["test_pixel_accuracy"] <= 1.0 and 0.0 <= net.meta["test_miou_blurred"] <= 1.0
    assert "held-out pixel accuracy" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--out", str(out), "--steps", "0"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().endswith("--steps and --batch-size must be positive")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a facezoo face-parser checkpoint"):
        SyntheticFaceParser.from_checkpoint(tmp_path / "other.pt")
