"""Multi-PIE loader (facezoo.data.multipie) on hand-written trees and on trees written by the exporter."""

from __future__ import annotations

import logging
import subprocess
import sys
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import one_line_error
from PIL import Image

from facezoo.data.datamodule import FaceDataModule
from facezoo.data.multipie import (
    CAMERA_YAW,
    MultiPIE,
    MultiPIEName,
    format_five_points,
    mirror_five_points,
    parse_name,
    read_five_points,
    resize_five_points,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_synthetic.py"

#: TP-GAN's cameraPositions, written out by hand from reference/methods.md §5.4 (camera label → yaw).
TF_CAMERA_POSITIONS = {"24_0": 90, "01_0": 75, "20_0": 60, "19_0": 45, "04_1": 30, "05_0": 15, "05_1": 0,
                       "14_0": -15, "13_0": -30, "08_0": -45, "09_0": -60, "12_0": -75, "11_0": -90}


# --------------------------------------------------------------------------------- a hand-made tree
def _points(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([[5.0, 6.0], [14.0, 6.5], [9.5, 10.0], [6.0, 14.0], [13.0, 14.5]])
    return (base + rng.uniform(-1, 1, base.shape)).astype(np.float32)


def _write_view(root: Path, stem: str, side: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Write images/<stem>_cropped.png (random pixels) and its .5pt; return (pixels, points)."""
    name = parse_name(stem)
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "5pt").mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(root / "images" / name.image_name)
    points = _points(seed) * side / 20.0
    (root / "5pt" / name.five_point_name).write_text(format_five_points(points))
    return pixels, points


HAND_STEMS = ["009_01_01_051_03", "009_01_01_130_03", "009_01_01_041_03",    # subject 009: frontal, -30, +30
              "005_02_01_051_07", "005_02_01_080_07", "005_02_01_050_07"]    # subject 005: frontal, -45, +15


@pytest.fixture
def hand_tree(tmp_path) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    root = tmp_path / "mp"
    views = {stem: _write_view(root, stem, seed=i) for i, stem in enumerate(HAND_STEMS)}
    (root / "train.csv").write_text("".join(parse_name(s).image_name + "\n" for s in HAND_STEMS))
    return root, views


def _by_name(ds: MultiPIE) -> dict[str, dict]:
    return {s["name"]: s for s in (ds[i] for i in range(len(ds)))}


def _as_pixels(image: torch.Tensor) -> np.ndarray:
    return ((image.permute(1, 2, 0).numpy() + 1.0) * 127.5).round().astype(np.uint8)


# -------------------------------------------------------------------------------- names and points
def test_camera_map_is_tensorflows_camera_positions():
    assert CAMERA_YAW == {k.replace("_", ""): v for k, v in TF_CAMERA_POSITIONS.items()}
    for label, yaw in TF_CAMERA_POSITIONS.items():
        name = parse_name(f"123_04_02_{label.replace('_', '')}_19_cropped.png")
        assert name.yaw == yaw and MultiPIEName.make(123, 4, 2, yaw, 19) == name


def test_name_fields_and_the_frontal_of_a_view():
    n = parse_name("/some/dir/201_01_01_010_08_cropped.png")
    assert (n.subject, n.session, n.recording, n.camera, n.illumination) == ("201", "01", "01", "010", "08")
    assert n.image_name == "201_01_01_010_08_cropped.png" and n.five_point_name == "201_01_01_010_trans.5pt"
    assert n.frontal().stem == "201_01_01_051_08" and n.frontal().yaw == 0
    assert parse_name("201_01_01_010_08") == parse_name("201_01_01_010_08.png") == n


def test_mirror_five_points_by_hand_and_as_an_involution():
    pts = np.array([[40.0, 40.0], [88.0, 41.0], [64.0, 60.0], [44.0, 88.0], [84.0, 89.0]])
    expected = np.array([[39.0, 41.0], [87.0, 40.0], [63.0, 60.0], [43.0, 89.0], [83.0, 88.0]])
    assert np.allclose(mirror_five_points(pts, 128), expected)
    assert np.allclose(mirror_five_points(mirror_five_points(pts, 128), 128), pts)
    t = torch.tensor(pts[None], dtype=torch.float32)
    assert torch.allclose(mirror_five_points(t, 128)[0], torch.tensor(expected, dtype=torch.float32))
    with pytest.raises(ValueError, match="5, 2"):
        mirror_five_points(np.zeros((4, 2)), 128)


def test_resize_five_points_follows_pixel_centres():
    pts = np.array([[0.0, 0.0], [127.0, 63.5]])
    out = resize_five_points(pts, (128, 128), (64, 32))
    assert np.allclose(out, [[-0.25, -0.375], [63.25, 15.5]])  # (x+0.5)*s-0.5 by hand
    assert np.allclose(resize_five_points(out, (64, 32), (128, 128)), pts)


def test_five_point_file_round_trip(tmp_path):
    pts = _points(3)
    (tmp_path / "a.5pt").write_text(format_five_points(pts) + "\n")
    assert np.allclose(read_five_points(tmp_path / "a.5pt"), pts, atol=1e-4)


# ----------------------------------------------------------------------------- loading a hand tree
def test_samples_pairs_poses_and_identities(hand_tree):
    root, views = hand_tree
    ds = MultiPIE(root, split="train", size=20)
    samples = _by_name(ds)
    assert sorted(samples) == ["005_02_01_050_07", "005_02_01_080_07", "009_01_01_041_03", "009_01_01_130_03"]
    assert ds.num_identities == 2 and ds.subjects == ["005", "009"]
    for name, s in samples.items():
        assert s["identity"].dtype == torch.int64 and int(s["identity"]) == {"005": 0, "009": 1}[name[:3]]
        assert s["image"].shape == s["target"].shape == (3, 20, 20) and s["image"].dtype == torch.float32
        assert -1.0 <= float(s["image"].min()) and float(s["image"].max()) <= 1.0
        assert s["pose"].dtype == torch.float32 and s["pose"].tolist() == [abs(CAMERA_YAW[name[10:13]]), 0, 0]
        # the target is the frontal of the same subject, session, recording, illumination
        frontal = parse_name(name).frontal().stem
        assert np.array_equal(_as_pixels(s["target"]), views[frontal][0])
        assert np.allclose(s["target_five_points"].numpy(), views[frontal][1], atol=1e-4)


def test_negative_yaws_are_mirrored_to_the_positive_side(hand_tree):
    root, views = hand_tree
    samples = _by_name(MultiPIE(root, size=20))
    neg = samples["009_01_01_130_03"]                      # camera 13_0, yaw -30
    pixels, points = views["009_01_01_130_03"]
    assert np.array_equal(_as_pixels(neg["image"]), pixels[:, ::-1])
    five = neg["five_points"].numpy()
    assert np.allclose(five[0], [19 - points[1, 0], points[1, 1]], atol=1e-4)  # the eyes swap
    assert np.allclose(five[3], [19 - points[4, 0], points[4, 1]], atol=1e-4)  # the mouth corners too
    assert neg["pose"][0] == 30
    pos = samples["009_01_01_041_03"]                      # camera 04_1, yaw +30: untouched
    assert np.array_equal(_as_pixels(pos["image"]), views["009_01_01_041_03"][0])
    assert np.allclose(pos["five_points"].numpy(), views["009_01_01_041_03"][1], atol=1e-4)

    plain = _by_name(MultiPIE(root, size=20, mirror_negative=False))["009_01_01_130_03"]
    assert np.array_equal(_as_pixels(plain["image"]), pixels) and plain["pose"][0] == -30


def test_resizing_moves_the_points_with_the_pixels(hand_tree):
    root, views = hand_tree
    s = _by_name(MultiPIE(root, size=40))["005_02_01_050_07"]
    assert s["image"].shape == (3, 40, 40)
    assert np.allclose(s["five_points"].numpy(), (views["005_02_01_050_07"][1] + 0.5) * 2 - 0.5, atol=1e-4)
    # a checkerboard-free check of the pixels: a 2x upsample keeps the mean colour
    assert abs(float(s["image"].mean()) - (views["005_02_01_050_07"][0].mean() / 127.5 - 1)) < 0.02


def test_pose_filter_and_frontal_inputs(hand_tree):
    root, _ = hand_tree
    assert sorted(_by_name(MultiPIE(root, size=20, poses=[-30, 15]))) == ["005_02_01_050_07",
                                                                          "009_01_01_130_03"]
    assert sorted(_by_name(MultiPIE(root, size=20, poses=range(0, 91, 15)))) == ["005_02_01_050_07",
                                                                                  "009_01_01_041_03"]
    with_frontal = _by_name(MultiPIE(root, size=20, include_frontal_inputs=True))
    assert len(with_frontal) == 6
    f = with_frontal["005_02_01_051_07"]
    assert torch.equal(f["image"], f["target"]) and f["pose"][0] == 0
    with pytest.raises(ValueError, match="20 is not a Multi-PIE camera yaw"):
        MultiPIE(root, poses=[15, 20])


def test_inputs_without_a_frontal_are_skipped_with_a_warning(hand_tree, caplog):
    root, _ = hand_tree
    _write_view(root, "011_01_01_140_01", seed=9)       # no 011_01_01_051_01 on disk
    (root / "train.csv").write_text((root / "train.csv").read_text() + "011_01_01_140_01_cropped.png\n")
    with caplog.at_level(logging.WARNING, logger="facezoo.data.multipie"):
        ds = MultiPIE(root, size=20)
    assert len(ds) == 4 and ds.skipped_without_frontal == 1 and ds.num_identities == 2
    assert any("skipped 1 input" in r.getMessage() for r in caplog.records)


def test_list_file_may_hold_paths_comments_and_other_columns(hand_tree):
    root, _ = hand_tree
    rows = ["# a comment", "", "/home/u/data/009_01_01_130_03_cropped.png,1",
            "009_01_01_051_03_cropped.png,0", "009_01_01_130_03_cropped.png,1"]
    (root / "mine.csv").write_text("\n".join(rows) + "\n")
    ds = MultiPIE(root, split="val", size=20, list_file="mine.csv")
    assert [s["name"] for s in (ds[i] for i in range(len(ds)))] == ["009_01_01_130_03"]
    assert MultiPIE(root, split="val", size=20, list_file=root / "mine.csv").samples == ds.samples


def test_datamodule_builds_the_splits_and_batches(hand_tree):
    root, _ = hand_tree
    dm = FaceDataModule(dataset=partial(MultiPIE, root=root, size=20),
                        splits={"train": {"list_file": "train.csv"}}, batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["image"].shape == (2, 3, 20, 20) and batch["five_points"].shape == (2, 5, 2)
    assert batch["identity"].dtype == torch.int64 and batch["pose"].shape == (2, 3)
    assert len(batch["name"]) == 2 and all(isinstance(n, str) for n in batch["name"])


def test_the_hydra_config_takes_data_root(hand_tree):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    root, _ = hand_tree
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["model=tpgan", "data=multipie", f"data.root={root}", "data.size=20",
                                          "paths.output_dir=/tmp/x"])
    GlobalHydra.instance().clear()
    assert cfg.data.dataset.root == str(root) and cfg.model.num_classes == 200
    dm = instantiate(cfg.data, _convert_="all")
    ds = dm.dataset("train")
    assert isinstance(ds, MultiPIE) and ds.root == root and len(ds) == 4
    assert ds[0]["image"].shape == (3, 20, 20)


# ---------------------------------------------------------------------------------------- errors
def test_missing_root_and_list_file(tmp_path, hand_tree):
    root, _ = hand_tree
    one_line_error(lambda: MultiPIE(tmp_path / "nowhere"), "nowhere", "root directory not found")
    one_line_error(lambda: MultiPIE(root, split="test"), "test.csv", "not found")
    one_line_error(lambda: MultiPIE(root, list_file="other.csv"), "other.csv", "not found")


def test_listed_image_that_does_not_exist(hand_tree):
    root, _ = hand_tree
    (root / "images" / "005_02_01_080_07_cropped.png").unlink()
    one_line_error(lambda: MultiPIE(root), "005_02_01_080_07_cropped.png", "train.csv line 5",
                    "does not exist")


@pytest.mark.parametrize("entry, needle", [("005_2_01_080_07_cropped.png", "malformed"),
                                           ("profile.jpg", "malformed"),
                                           ("005_02_01_999_07_cropped.png", "unknown camera '999'")])
def test_malformed_list_entries(hand_tree, entry, needle):
    root, _ = hand_tree
    (root / "train.csv").write_text("005_02_01_051_07_cropped.png\n" + entry + "\n")
    one_line_error(lambda: MultiPIE(root), "train.csv line 2", entry, needle)


def test_missing_five_point_file(hand_tree):
    root, _ = hand_tree
    (root / "5pt" / "009_01_01_051_trans.5pt").unlink()
    one_line_error(lambda: MultiPIE(root), "009_01_01_051_trans.5pt", "not found")


@pytest.mark.parametrize("text, needle", [("1 2\n3 4\n5 6\n7 8\n", "expected 5 lines"),
                                          ("1 2\n3 4\n5 6\n7 8\n9 10 11\n", "expected 5 lines"),
                                          ("1 2\n3 4\n5 six\n7 8\n9 10\n", "non-numeric"),
                                          ("1 2\n3 4\n5 nan\n7 8\n9 10\n", "non-finite")])
def test_bad_five_point_files(hand_tree, text, needle):
    root, _ = hand_tree
    (root / "5pt" / "005_02_01_080_trans.5pt").write_text(text)
    ds = MultiPIE(root, size=20)
    index = [n.stem for n, _ in ds.samples].index("005_02_01_080_07")
    one_line_error(lambda: ds[index], "005_02_01_080_trans.5pt", needle)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_unreadable_images(hand_tree, damage):
    root, _ = hand_tree
    path = root / "images" / "009_01_01_051_03_cropped.png"   # a target: breaks both samples of subject 009
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a png at all")
    ds = MultiPIE(root, size=20)
    index = [n.stem for n, _ in ds.samples].index("009_01_01_041_03")
    one_line_error(lambda: ds[index], "009_01_01_051_03_cropped.png", "unreadable or truncated image")


# ------------------------------------------------------------------------- trees from the exporter
def _load_script():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_synthetic", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_synthetic():
    return _load_script()


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A tree written by the real command line: 3 subjects (one per list), 32-pixel crops, 1 illumination."""
    out = tmp_path_factory.mktemp("exported") / "multipie"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--format", "multipie", "--out", str(out),
                           "--split", "all", "--identities", "3", "--size", "32", "--illuminations", "1",
                           "--seed", "0"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train: 13 images" in proc.stdout
    return out


def test_exported_tree_has_the_layout_and_disjoint_subject_lists(exported):
    lists = {s: (exported / f"{s}.csv").read_text().split() for s in ("train", "val", "test")}
    subjects = {s: {parse_name(n).subject for n in names} for s, names in lists.items()}
    assert subjects == {"train": {"001"}, "val": {"002"}, "test": {"003"}}
    for names in lists.values():
        assert sorted(parse_name(n).yaw for n in names) == sorted(CAMERA_YAW.values())   # 13 cameras each
        assert {parse_name(n).illumination for n in names} == {"07"}
    images = sorted(p.name for p in (exported / "images").iterdir())
    assert images == sorted(sum(lists.values(), [])) and len(images) == 39
    assert len(list((exported / "5pt").iterdir())) == 39
    assert not [p for p in exported.rglob(".*")]                      # no temporary files left behind
    with Image.open(exported / "images" / images[0]) as img:
        assert img.size == (32, 32) and img.mode == "RGB"


def test_exported_points_are_in_the_multipie_crop(exported):
    # eye centre at (size/2, 40/128·size), mouth centre 48/128·size below it, for every pose
    for path in (exported / "5pt").iterdir():
        p = read_five_points(path)
        assert np.allclose(p[:2].mean(0), [16.0, 10.0], atol=1e-3), path.name
        assert np.allclose(p[3:].mean(0), [16.0, 22.0], atol=1e-3), path.name
    front = read_five_points(exported / "5pt" / "001_01_01_051_trans.5pt")
    assert front[0, 0] < 16 < front[1, 0] and front[3, 0] < front[4, 0]    # index 0 = image-left eye


def test_loader_reads_the_exported_tree(exported):
    for split, subject in (("train", "001"), ("val", "002"), ("test", "003")):
        ds = MultiPIE(exported, split=split, size=32)
        assert len(ds) == 12 and ds.num_identities == 1 and ds.subjects == [subject]
    ds = MultiPIE(exported, split="train", size=32)
    samples = _by_name(ds)
    for name, s in samples.items():
        n = parse_name(name)
        assert s["pose"].tolist() == [abs(n.yaw), 0.0, 0.0] and int(s["identity"]) == 0
        frontal = np.asarray(Image.open(exported / "images" / n.frontal().image_name))
        assert np.array_equal(_as_pixels(s["target"]), frontal)
        stored = read_five_points(exported / "5pt" / n.five_point_name)
        if n.yaw < 0:   # mirrored: flipped pixels, x → 31 - x, left/right swapped
            original = np.asarray(Image.open(exported / "images" / n.image_name))
            assert np.array_equal(_as_pixels(s["image"]), original[:, ::-1])
            unswapped = s["five_points"].numpy()[[1, 0, 2, 4, 3]]
            assert np.allclose(unswapped, np.c_[31 - stored[:, 0], stored[:, 1]], atol=1e-4)
            if n.yaw > -90:  # at 90 degrees both eye centres project onto the same column
                assert s["five_points"][0, 0] < s["five_points"][1, 0]   # still the image-left eye first
        else:
            assert np.allclose(s["five_points"].numpy(), stored, atol=1e-4)


def test_loader_upsamples_the_exported_tree(exported):
    s = _by_name(MultiPIE(exported, split="test", size=64, poses=[-45]))["003_01_01_080_07"]
    assert s["image"].shape == s["target"].shape == (3, 64, 64)
    up = lambda v: (v + 0.5) * 2 - 0.5  # noqa: E731  (pixel centres: 32 → 64 pixels)
    assert np.allclose(s["target_five_points"][:2].mean(0).numpy(), [up(16.0), up(10.0)], atol=1e-3)
    assert np.allclose(s["five_points"][3:].mean(0).numpy(), [up(31 - 16.0), up(22.0)], atol=1e-3)  # mirrored


def test_exporter_is_deterministic_and_seeded(tmp_path, make_synthetic):
    kwargs = dict(identities=1, size=16, split="train", illuminations=1)
    a = make_synthetic.export_multipie(tmp_path / "a", seed=3, **kwargs)
    b = make_synthetic.export_multipie(tmp_path / "b", seed=3, **kwargs)
    c = make_synthetic.export_multipie(tmp_path / "c", seed=4, **kwargs)
    assert a == b == c and list(a) == ["train"] and len(a["train"]) == 13
    name = "001_01_01_190_07_cropped.png"
    read = lambda d: (tmp_path / d / "images" / name).read_bytes()  # noqa: E731
    assert read("a") == read("b") and read("a") != read("c")


def test_single_split_exports_refuse_overlapping_subjects(tmp_path, make_synthetic):
    out = tmp_path / "mp"
    make_synthetic.export_multipie(out, identities=1, size=16, split="train", illuminations=1)
    test_split = partial(make_synthetic.export_multipie, out, identities=1, size=16, split="test",
                         illuminations=1)
    one_line_error(test_split, "train.csv", "--first-subject 2")
    lists = test_split(first_subject=2)
    assert {parse_name(n).subject for n in lists["test"]} == {"002"}
    assert MultiPIE(out, split="test", size=16).subjects == ["002"]
    assert MultiPIE(out, split="train", size=16).subjects == ["001"]


def test_exporter_sessions_recordings_and_illuminations(tmp_path, make_synthetic):
    lists = make_synthetic.export_multipie(tmp_path, identities=1, size=16, split="val", sessions=2,
                                           recordings=2, illuminations=2)
    names = [parse_name(n) for n in lists["val"]]
    assert len(names) == 13 * 2 * 2 * 2
    assert {(n.session, n.recording, n.illumination) for n in names} == {
        (s, r, i) for s in ("01", "02") for r in ("01", "02") for i in ("00", "19")}
    ds = MultiPIE(tmp_path, split="val", size=16)
    assert len(ds) == 12 * 8 and all(t == n.frontal() for n, t in ds.samples)


def test_split_counts_and_illumination_codes(make_synthetic):
    assert make_synthetic.split_counts(20, (0.7, 0.15, 0.15)) == {"train": 14, "val": 3, "test": 3}
    assert make_synthetic.split_counts(3, (0.7, 0.15, 0.15)) == {"train": 1, "val": 1, "test": 1}
    assert make_synthetic.illumination_codes(1) == [7] and make_synthetic.illumination_codes(3) == [0, 10, 19]
    one_line_error(lambda: make_synthetic.split_counts(2, (0.7, 0.15, 0.15)), "at least 3 identities")
    one_line_error(lambda: make_synthetic.split_counts(10, (0.5, 0.5, 0.5)), "summing to 1")


def test_command_line_errors_are_one_line(tmp_path, make_synthetic, capsys):
    assert make_synthetic.main(["--format", "multipie", "--out", str(tmp_path), "--identities", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("make_synthetic: error:") and "\n" not in err and "at least 3 identities" in err
    with pytest.raises(SystemExit):
        make_synthetic.main(["--format", "bogus", "--out", str(tmp_path)])   # argparse refuses unknown formats
    assert set(make_synthetic.EXPORTERS) == {"multipie", "mt", "300vw", "celebamask-hq"}
