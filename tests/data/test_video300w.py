"""300VW-style loader (facezoo.data.video300w): .pts files, the triplet gap rule, crops, flip, rotation, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from PIL import Image

from facezoo.data.video300w import (
    CATEGORY_C,
    Video300W,
    crop_box,
    face_transform,
    format_pts,
    read_pts,
    sample_triplet,
    triplet_candidates,
)
from facezoo.face.labels import IBUG68_HFLIP, landmarks_68_to_66
from facezoo.utils import FacezooError

ROOT = Path(__file__).resolve().parents[2]


def _exporter():
    module = load_script("make_synthetic.py")
    return module


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """3 synthetic videos (train/val/test) of 24 frames at 48 px, with pts.pt and annot/*.pts."""
    out = tmp_path_factory.mktemp("vw")
    lists = _exporter().export_300vw(out, identities=3, size=48, frames=24, pts_files=True, supersample=1)
    assert lists == {"train": ["001"], "val": ["002"], "test": ["003"]}
    return out


# ------------------------------------------------------------------------------------------- .pts
def test_pts_round_trip_and_format(tmp_path):
    pts = np.random.default_rng(0).uniform(0, 100, (68, 2))
    path = tmp_path / "a.pts"
    path.write_text(format_pts(pts))
    lines = path.read_text().splitlines()
    assert lines[:3] == ["version: 1", "n_points: 68", "{"] and lines[-1] == "}" and len(lines) == 72
    np.testing.assert_allclose(read_pts(path), pts, atol=5e-4)


@pytest.mark.parametrize("text, message", [
    ("version: 1\n{\n1 2\n}\n", "n_points"),
    ("version: 1\nn_points: 2\n{\n1 2\n}\n", "expected 2 lines"),
    ("version: 1\nn_points: 1\n{\n1 x\n}\n", "non-numeric"),
    ("version: 1\nn_points: 1\n{\n1 2\n", "enclosed"),
])
def test_pts_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.pts"
    path.write_text(text)
    with pytest.raises(FacezooError, match=message) as err:
        read_pts(path)
    assert str(path) in str(err.value)
    with pytest.raises(FacezooError, match="cannot read"):
        read_pts(tmp_path / "missing.pts")


# -------------------------------------------------------------------------------------- sampling
def test_gap_rule_on_a_long_video_without_rendering():
    numbers = np.arange(1, 1001)
    rng = np.random.default_rng(0)
    for b in [0, 1, 50, 51, 300, 999]:
        cand = triplet_candidates(numbers, b)
        brute = [p for p in range(1000) if 50 < abs(p - b) <= 200]
        assert cand.tolist() == brute
    for b in rng.integers(0, 1000, 200):
        a, bb, c = sample_triplet(numbers, int(b), rng)
        assert bb == b
        for p in (a, c):
            assert 50 < abs(numbers[p] - numbers[b]) <= 200


def test_gap_rule_uses_frame_numbers():
    numbers = [1, 2, 3, 60, 61, 300]           # a gap in the numbering
    assert triplet_candidates(numbers, 0).tolist() == [3, 4]   # 60, 61: > 50 apart; 300: > 200 away


def test_crop_box_is_the_official_margin():
    pts = np.array([[20.0, 30.0], [120.0, 130.0]])                       # δ = 100 → margin 16
    assert crop_box(pts, 1000, 1000) == (4, 14, 136, 146)
    assert crop_box(pts / 10, 1000, 1000)[0] == 0                          # δ < 20 → 8 px, clipped at 0
    m = face_transform(pts, 1000, 1000, size=64)
    mapped = pts @ m[:, :2].T + m[:, 2]
    expected = (np.array([[16.0, 16.0], [116.0, 116.0]]) + 0.5) * 64 / 132 - 0.5
    np.testing.assert_allclose(mapped, expected, atol=1e-9)


# ------------------------------------------------------------------------------ exported tree
def test_loader_on_exported_tree(exported):
    ds = Video300W(exported, "train", size=32, min_gap=3, max_gap=10)
    assert ds.augment and len(ds) == 24 and ds.videos == ["001"]
    s = ds[5]
    for key in ("image", "target", "third"):
        assert s[key].shape == (3, 32, 32) and s[key].min() >= -1 and s[key].max() <= 1
    a, b, c = s["frame_numbers"].tolist()
    assert b == 6 and 3 < abs(a - b) <= 10 and 3 < abs(c - b) <= 10
    again = Video300W(exported, "train", size=32, min_gap=3, max_gap=10)[5]   # a fresh instance: resume-exact
    for key, value in s.items():
        assert torch.equal(value, again[key]), key


def test_unaugmented_crop_follows_the_points_file(exported):
    ds = Video300W(exported, "test", size=32, min_gap=3, max_gap=10)
    assert not ds.augment
    s = ds[0]
    pts = torch.load(exported / "003" / "pts.pt")[0].numpy()
    m = face_transform(pts, 48, 48, 32)
    torch.testing.assert_close(s["target_landmarks"], torch.from_numpy((pts @ m[:, :2].T + m[:, 2]).astype(np.float32)))
    # the .pts files give the same points when pts.pt is absent
    from_annot = Video300W(exported, "test", size=32, min_gap=3, max_gap=10)
    (exported / "003" / "pts.pt").rename(exported / "003" / "pts.bak")
    try:
        from_annot = Video300W(exported, "test", size=32, min_gap=3, max_gap=10)
        torch.testing.assert_close(from_annot[0]["target_landmarks"], s["target_landmarks"], atol=2e-3, rtol=0)
    finally:
        (exported / "003" / "pts.bak").rename(exported / "003" / "pts.pt")
    s66 = Video300W(exported, "test", size=32, num_points=66, min_gap=3, max_gap=10)[0]
    assert torch.equal(s66["landmarks"], landmarks_68_to_66(s["landmarks"]))


# ------------------------------------------------------------------------------- hand-made tree
def _face_points(center=(48.0, 48.0), scale=20.0) -> np.ndarray:
    """68 distinct points shaped roughly like a face: index 36 on the image left, 45 on the right."""
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts = np.stack([np.cos(t), np.sin(t) * 1.2], 1) * scale + center
    pts[36] = (center[0] - 0.6 * scale, center[1] - 0.3 * scale)
    pts[45] = (center[0] + 0.6 * scale, center[1] - 0.3 * scale)
    return pts


def _write_video(root: Path, name: str, frames: int, blob_index: int | None = None, side: int = 96):
    (root / name / "frames").mkdir(parents=True)
    pts = []
    yy, xx = np.mgrid[0:side, 0:side]
    for t in range(frames):
        p = _face_points((48.0 + 0.2 * t, 48.0))
        img = np.zeros((side, side, 3), np.float64)
        img[..., 1] = xx / side * 100                                     # an asymmetric ramp
        if blob_index is not None:                                        # a bright dot on one landmark
            x, y = p[blob_index]
            img[..., 0] = 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5**2))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / name / "frames" / f"{t + 1:06d}.png")
        pts.append(torch.from_numpy(p.astype(np.float32)))
    torch.save(pts, root / name / "pts.pt")


def test_shared_flip_mirrors_pixels_and_permutes_indices(tmp_path):
    _write_video(tmp_path, "001", 12)
    plain = Video300W(tmp_path, "train", size=32, min_gap=2, max_gap=8, augment=False)
    aug = Video300W(tmp_path, "train", size=32, min_gap=2, max_gap=8, augment=True, rotation_sigma=(0, 0, 0),
                    tight_jitter=0)
    flipped = 0
    for i in range(len(plain)):
        p, q = plain[i], aug[i]
        if torch.equal(p["image"], q["image"]):
            continue
        flipped += 1
        for key, lm in (("image", "landmarks"), ("target", "target_landmarks"), ("third", "third_landmarks")):
            torch.testing.assert_close(q[key], p[key].flip(-1))               # all three flipped together
            expected = p[lm][list(IBUG68_HFLIP)].clone()
            expected[:, 0] = 31 - expected[:, 0]
            torch.testing.assert_close(q[lm], expected)
            assert q[lm][36, 0] < q[lm][45, 0]                                # 36 is still the image-left eye
    assert 0 < flipped < len(plain)


def test_rotation_moves_landmarks_with_the_pixels(tmp_path):
    _write_video(tmp_path, "001", 12, blob_index=36)
    ds = Video300W(tmp_path, "train", size=48, min_gap=2, max_gap=8, augment=True, rotation_sigma=(30, 30, 30))
    for i in range(6):
        s = ds[i]
        for key, lm in (("image", "landmarks"), ("target", "target_landmarks"), ("third", "third_landmarks")):
            red = s[key][0]
            y, x = divmod(int(red.argmax()), red.shape[1])
            mirrored = s[lm][36, 0] > s[lm][45, 0]                 # never: 36 stays image-left
            assert not mirrored
            # the dot drawn on physical point 36 is point 36, or 45 after a flip
            near = min(float(torch.dist(s[lm][k], torch.tensor([x, y], dtype=torch.float32))) for k in (36, 45))
            assert near < 1.5, (i, key, near)


def test_errors_are_one_line_and_name_the_file(tmp_path):
    with pytest.raises(FacezooError, match="root directory not found"):
        Video300W(tmp_path / "nope")
    _write_video(tmp_path, "001", 8)
    with pytest.raises(FacezooError, match="test.txt"):
        Video300W(tmp_path, "test")
    (tmp_path / "002" / "frames").mkdir(parents=True)
    (tmp_path / "train.txt").write_text("002\n")
    with pytest.raises(FacezooError, match="no frames"):
        Video300W(tmp_path, "train", min_gap=1, max_gap=3)
    (tmp_path / "train.txt").write_text("001\n")
    (tmp_path / "001" / "pts.pt").write_bytes(b"garbage")
    with pytest.raises(FacezooError, match=r"001/pts.pt: cannot read"):
        Video300W(tmp_path, "train", min_gap=1, max_gap=3)
    torch.save([torch.zeros(68, 2)] * 3, tmp_path / "001" / "pts.pt")
    with pytest.raises(FacezooError, match="3 point sets for 8 frames"):
        Video300W(tmp_path, "train", min_gap=1, max_gap=3)
    torch.save([torch.from_numpy(_face_points()).float()] * 8, tmp_path / "001" / "pts.pt")
    (tmp_path / "001" / "frames" / "000003.png").write_bytes(b"not a png")
    ds = Video300W(tmp_path, "train", min_gap=1, max_gap=3, augment=False)
    with pytest.raises(FacezooError, match=r"000003.png: unreadable"):
        for i in range(len(ds)):
            ds[i]


def test_train_split_without_list_skips_category_c(tmp_path):
    _write_video(tmp_path, "001", 6)
    _write_video(tmp_path, CATEGORY_C[0], 6)
    assert Video300W(tmp_path, "train", min_gap=1, max_gap=3).videos == ["001"]
