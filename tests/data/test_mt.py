"""The MT makeup dataset loader, on trees written by `scripts/make_synthetic.py --format mt` and by hand."""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error
from PIL import Image

from facezoo.data.mt import MT, format_mt_landmarks, read_mt_landmarks, read_mt_seg
from facezoo.data.synthetic import SyntheticMakeup
from facezoo.face.labels import convert_labels
from facezoo.utils import FacezooError

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_synthetic.py"
SIZE = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """An MT tree written by the real command line: 6 identities (2 per split), 2 pairs each, 32 px."""
    out = tmp_path_factory.mktemp("exported") / "MT"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--format", "mt", "--out", str(out), "--identities", "6",
                           "--fractions", "0.34", "0.33", "0.33", "--samples-per-identity", "2",
                           "--size", str(SIZE), "--seed", "0"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "makeup.txt: 4 images" in proc.stdout and "non-makeup_test.txt: 4 images" in proc.stdout
    return out


@pytest.fixture()
def tree(exported, tmp_path) -> Path:
    """A private copy of the exported tree that a test may damage."""
    return Path(shutil.copytree(exported, tmp_path / "MT"))


def test_exported_layout_and_lists(exported):
    for kind in ("images", "segs", "landmarks"):
        for domain in ("makeup", "non-makeup"):
            assert sorted(p.name for p in (exported / kind / domain).iterdir()) == sorted(
                [f"{s}_{i:05d}.png" for s in ("train", "val", "test") for i in range(4)])
    assert (exported / "makeup.txt").read_text().split() == [f"makeup/train_{i:05d}.png" for i in range(4)]
    assert (exported / "non-makeup_test.txt").read_text().split() == [
        f"non-makeup/test_{i:05d}.png" for i in range(4)]
    assert not list(exported.rglob("*.tmp"))  # atomic writes left nothing behind


def test_exported_files_are_the_synthetic_faces_in_mt_conventions(exported):
    """Landmark pickles hold (y, x); segs hold MT ids; images are the renderer's pixels."""
    view = SyntheticMakeup(split="train", size=SIZE, length=4, num_identities=2, seed=0)
    sample = view[1]
    with open(exported / "landmarks" / "makeup" / "train_00001.png", "rb") as f:
        raw = pickle.load(f)
    assert raw.shape == (68, 2)
    np.testing.assert_allclose(raw[:, 0], sample["reference_landmarks"][:, 1].numpy(), atol=1e-5)  # y first
    np.testing.assert_allclose(raw[:, 1], sample["reference_landmarks"][:, 0].numpy(), atol=1e-5)
    seg = np.asarray(Image.open(exported / "segs" / "non-makeup" / "train_00001.png"))
    assert seg.dtype == np.uint8 and seg.max() <= 13
    np.testing.assert_array_equal(seg, convert_labels(sample["mask"].numpy(), "celebamask_hq", "mt"))
    img = np.asarray(Image.open(exported / "images" / "non-makeup" / "train_00001.png"), np.float32)
    np.testing.assert_allclose(img / 127.5 - 1, sample["image"].permute(1, 2, 0).numpy(), atol=1 / 127.5 + 1e-6)


def test_loader_converts_landmarks_labels_and_images(exported):
    """(y, x) pickles → (x, y); MT labels → CelebAMask-HQ (face → skin, lips, ...); images in [-1, 1]."""
    ds = MT(exported, size=SIZE)
    source, reference = ds.pair(0)
    s = ds[0]
    view = SyntheticMakeup(split="train", size=SIZE, length=4, num_identities=2, seed=0)
    truth_src = view[int(source[6:11])]
    truth_ref = view[int(reference[6:11])]
    torch.testing.assert_close(s["landmarks"], truth_src["landmarks"], atol=1e-5, rtol=0)
    torch.testing.assert_close(s["reference_landmarks"], truth_ref["reference_landmarks"], atol=1e-5, rtol=0)
    round_trip = convert_labels(convert_labels(truth_src["mask"], "celebamask_hq", "mt"), "mt", "celebamask_hq")
    assert torch.equal(s["mask"], round_trip)
    assert {1, 11, 12} <= set(s["mask"].unique().tolist())  # skin and both lips survive the round trip
    assert (s["image"] - truth_src["image"]).abs().max() <= 1 / 127.5 + 1e-6
    assert s["image"].shape == s["reference"].shape == (3, SIZE, SIZE) and s["mask"].dtype == torch.int64
    assert "target" not in s  # real MT has no ground truth
    assert (s["name"], s["reference_name"]) == (source, reference)


def test_resizing_moves_landmarks_with_the_pixel_centres(exported):
    small, big = MT(exported, size=SIZE)[0], MT(exported, size=2 * SIZE)[0]
    torch.testing.assert_close(big["landmarks"], (small["landmarks"] + 0.5) * 2 - 0.5)
    assert big["mask"].shape == (2 * SIZE, 2 * SIZE)
    assert torch.equal(big["mask"][::2, ::2], small["mask"])  # nearest keeps the ids, no blending


def test_unpaired_sampling_is_random_deterministic_and_sized_as_official(exported):
    ds = MT(exported, size=SIZE, seed=3)
    assert len(ds) == 4  # max(#makeup, #non-makeup)
    pairs = [MT(exported, size=SIZE, seed=3, length=64).pair(i) for i in range(64)]
    assert pairs[:4] == [ds.pair(i) for i in range(4)]  # a pure function of (seed, split, index) ...
    assert pairs == [MT(exported, size=SIZE, seed=3, length=64).pair(i) for i in range(64)]
    assert pairs != [MT(exported, size=SIZE, seed=4, length=64).pair(i) for i in range(64)]  # ... of the seed
    assert pairs != [MT(exported, split="val", size=SIZE, seed=3, length=64).pair(i) for i in range(64)]
    sources, references = {p[0] for p in pairs}, {p[1] for p in pairs}
    assert len(sources) == len(references) == 4  # both sides are drawn at random, not index-aligned
    assert any(pairs[i][0] != f"train_{i % 4:05d}.png" for i in range(64))


def test_length_is_the_larger_domain(tree):
    (tree / "non-makeup.txt").write_text("non-makeup/train_00000.png\nnon-makeup/train_00001.png\n")
    ds = MT(tree, size=SIZE)
    assert len(ds) == 4 and {ds.pair(i)[0] for i in range(4)} <= {"train_00000.png", "train_00001.png"}
    with pytest.raises(IndexError):
        ds.pair(4)


def test_split_lists_and_the_datamodule(exported):
    from functools import partial

    from facezoo.data.datamodule import FaceDataModule

    dm = FaceDataModule(partial(MT, root=exported, size=SIZE), batch_size=2, splits={
        "train": {}, "test": {"makeup_list": "makeup_test.txt", "non_makeup_list": "non-makeup_test.txt"}})
    test = dm.dataset("test")
    assert all(n.startswith("test_") for i in range(len(test)) for n in test.pair(i))
    batch = next(iter(dm.test_dataloader()))
    assert batch["image"].shape == (2, 3, SIZE, SIZE) and batch["reference_landmarks"].shape == (2, 68, 2)


def test_landmark_file_round_trip(tmp_path):
    pts = np.random.default_rng(0).uniform(0, 255, (68, 2)).astype(np.float32)
    path = tmp_path / "x.png"
    path.write_bytes(format_mt_landmarks(pts))
    np.testing.assert_allclose(read_mt_landmarks(path), pts, rtol=1e-6)
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        format_mt_landmarks(pts[:5])


def test_missing_root_list_and_files(tree, tmp_path):
    one_line_error(lambda: MT(tmp_path / "nowhere"), "nowhere", "MT root directory not found")
    (tree / "makeup.txt").unlink()
    one_line_error(lambda: MT(tree), "makeup.txt", "list file of the makeup images not found")
    one_line_error(lambda: MT(tree, makeup_list="makeup_val.txt", non_makeup_list="nope.txt"), "nope.txt")
    (tree / "landmarks" / "non-makeup" / "val_00002.png").unlink()
    one_line_error(lambda: MT(tree, makeup_list="makeup_val.txt", non_makeup_list="non-makeup_val.txt"),
                    str(tree / "landmarks" / "non-makeup" / "val_00002.png"), "not found")


@pytest.mark.parametrize(("entry", "needle"), [("train_00000.png", "expected 'makeup/<name>.png'"),
                                               ("non-makeup/train_00000.png", "line 2"),
                                               ("makeup/a/b.png", "expected")])
def test_malformed_list_entries(tree, entry, needle):
    (tree / "makeup.txt").write_text(f"makeup/train_00000.png\n{entry}\n")
    one_line_error(lambda: MT(tree), str(tree / "makeup.txt"), needle)


def test_garbled_landmarks_and_segs_name_the_file(tree):
    lm = tree / "landmarks" / "makeup" / "train_00000.png"
    seg = tree / "segs" / "non-makeup" / "train_00000.png"
    lm.write_bytes(b"\x89PNG not a pickle")
    one_line_error(lambda: read_mt_landmarks(lm), str(lm), "not a pickled landmark array")
    lm.write_bytes(pickle.dumps(np.zeros((5, 2))))
    one_line_error(lambda: read_mt_landmarks(lm), str(lm), "got shape (5, 2)")
    lm.write_bytes(pickle.dumps(np.full((68, 2), np.nan)))
    one_line_error(lambda: read_mt_landmarks(lm), "non-finite")
    Image.fromarray(np.full((SIZE, SIZE), 14, np.uint8)).save(seg)
    one_line_error(lambda: read_mt_seg(seg), str(seg), "not an MT label id")
    seg.write_bytes(b"truncated")
    one_line_error(lambda: read_mt_seg(seg), str(seg), "unreadable or truncated label map")
    ds = MT(tree, size=SIZE, length=64)  # construction only checks existence; reading names the bad file
    index = next(i for i in range(64) if ds.pair(i)[1] == "train_00000.png")
    one_line_error(lambda: ds[index], "train_00000.png")


def test_the_hydra_config_reads_the_tree(exported):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["model=psgan", "data=mt", f"data.root={exported}", f"data.size={SIZE}",
                                          "paths.output_dir=/tmp/x"])
    assert cfg.model.image_size == SIZE
    dm = instantiate(cfg.data, _convert_="all")
    assert len(dm.dataset("train")) == 4 and dm.dataset("val").length == 64


def test_exporter_refuses_too_few_identities(tmp_path):
    spec = importlib.util.spec_from_file_location("make_synthetic", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert "mt" in module.EXPORTERS and "multipie" in module.EXPORTERS
    with pytest.raises(FacezooError, match="needs >= 2 identities"):
        module.export_mt(tmp_path / "x", identities=6, size=16)  # 0.7/0.15/0.15 leaves 1 for val and test
    assert not (tmp_path / "x").exists()


def test_evaluate_on_mt_reports_what_can_be_measured_without_a_ground_truth(exported, tmp_path):
    """Real MT pairs have no target: evaluation gives the per-region distances to the reference, no KeyError."""
    import lightning as L
    from omegaconf import OmegaConf

    from facezoo.config import build_model, compose
    from facezoo.evaluate import evaluate

    overrides = ["model=psgan", "data=mt", f"data.root={exported}", f"data.size={SIZE}", "model.width=0.125",
                 "model.frozen.perceptual_loss=null", f"paths.output_dir={tmp_path}"]
    model = build_model(*overrides)
    model.facezoo_config = OmegaConf.to_container(compose("train", overrides), resolve=True)
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "psgan_mt.ckpt")
    result = evaluate(compose("evaluate", [f"ckpt_path={tmp_path / 'psgan_mt.ckpt'}", "limit_samples=4",
                                           "batch_size=2", "lpips_backbone=null", "identity_weights=null"]))
    values = result["metrics"]
    assert {"hist_ref_lip", "hist_ref_skin", "hist_ref_eye"} <= set(values) and "l1" not in values
    assert "baseline_histogram_matching/hist_ref_lip" in values and "baseline_source/hist_ref_lip" in values
