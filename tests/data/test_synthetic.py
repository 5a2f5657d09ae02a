"""Tests of the procedural face renderer and its task views (tiny sizes, a few samples each)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from facezoo.data.synthetic import (
    MASK_EDITS,
    SPLITS,
    Expression,
    FaceParams,
    Lighting,
    Makeup,
    Pose,
    SyntheticFaces,
    SyntheticFrontalization,
    SyntheticMakeup,
    SyntheticMaskEdit,
    SyntheticReposing,
    aligned_camera,
    identity_params,
    mirror,
    render,
    sample_rng,
)
from facezoo.face.align import align_multipie
from facezoo.face.labels import CELEBAMASK_HQ, IBUG68_HFLIP, landmarks_68_to_5

L = CELEBAMASK_HQ.index


def neutral_frontal(identity: int = 3, **kw) -> FaceParams:
    return FaceParams(identity_params(0, "train", identity), **kw)


def label_at(mask: np.ndarray, point) -> int:
    x, y = (int(round(float(v))) for v in point)
    return int(mask[y, x])


# ------------------------------------------------------------------------------------- renderer
def test_render_types_and_parts():
    out = render(neutral_frontal(), size=64)
    assert out.image.shape == (64, 64, 3) and out.image.dtype == np.uint8
    assert out.landmarks.shape == (68, 2) and out.landmarks.dtype == np.float32
    assert out.mask.shape == (64, 64) and out.mask.dtype == np.uint8
    present = set(np.unique(out.mask).tolist())
    assert present <= set(range(len(CELEBAMASK_HQ)))
    for part in ("background", "skin", "nose", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip",
                 "neck"):
        assert L(part) in present, part


def test_landmarks_lie_on_drawn_features():
    out = render(neutral_frontal(expression=Expression(mouth_open=0.8)), size=128)
    lm, m = out.landmarks, out.mask
    assert label_at(m, lm[30]) == L("nose")                              # nose tip
    assert label_at(m, lm[36:42].mean(0)) == L("l_eye")                  # image-left eye = l_eye
    assert label_at(m, lm[42:48].mean(0)) == L("r_eye")
    assert label_at(m, (lm[51] + lm[62]) / 2) == L("u_lip")
    assert label_at(m, (lm[57] + lm[66]) / 2) == L("l_lip")
    assert label_at(m, (lm[62] + lm[66]) / 2) == L("mouth")              # open mouth interior
    assert label_at(m, lm[19] + [0, 1.2]) == L("l_brow")
    assert label_at(m, lm[24] + [0, 1.2]) == L("r_brow")
    # the landmarks are the face's: left eye left of the right eye, chin below the mouth
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean() and lm[8, 1] > lm[57, 1]


def test_closed_mouth_has_no_mouth_label_and_open_mouth_shows_teeth():
    closed = render(neutral_frontal(), size=96)
    opened = render(neutral_frontal(expression=Expression(mouth_open=1.0)), size=96)
    assert (closed.mask == L("mouth")).sum() == 0
    inner = opened.mask == L("mouth")
    assert inner.sum() > 20
    bright = opened.image[inner].min(1) > 180                            # white teeth inside the mouth
    assert bright.any() and not bright.all()


def test_pose_dependent_shading():
    left = render(neutral_frontal(lighting=Lighting(azimuth=-60, elevation=0, ambient=0.4, diffuse=0.6)), 64)
    right = render(neutral_frontal(lighting=Lighting(azimuth=60, elevation=0, ambient=0.4, diffuse=0.6)), 64)
    skin = left.mask == L("skin")
    xs = np.arange(64)[None, :].repeat(64, 0)
    lum_l, lum_r = left.image.astype(float).mean(-1), right.image.astype(float).mean(-1)
    a, b = skin & (xs < 26), skin & (xs > 38)
    assert lum_l[a].mean() > lum_l[b].mean() + 10                      # lit from the image left
    assert lum_r[b].mean() > lum_r[a].mean() + 10
    # turning the head changes the shading of the same light
    turned = render(neutral_frontal(pose=Pose(40, 0, 0), lighting=Lighting(azimuth=-60, elevation=0)), 64)
    assert not np.array_equal(turned.image, left.image)


def test_far_side_is_occluded_at_large_yaw():
    front = render(neutral_frontal(), size=96)
    turned = render(neutral_frontal(pose=Pose(80, 0, 0)), size=96)
    count = lambda m, p: int((m == L(p)).sum())                           # noqa: E731
    assert count(front.mask, "r_eye") > 5 and count(front.mask, "l_eye") > 5
    assert count(turned.mask, "r_eye") < 0.25 * count(front.mask, "r_eye")    # far (image-right) eye hidden
    assert count(turned.mask, "l_eye") > 0.3 * count(front.mask, "l_eye")
    assert count(front.mask, "r_ear") > 0 and count(turned.mask, "r_ear") == 0     # far ear hidden
    # all 68 landmarks are still returned and the nose tip is the right-most face point
    assert np.isfinite(turned.landmarks).all() and turned.landmarks[30, 0] > turned.landmarks[36:48, 0].max()


def test_render_validates_arguments():
    with pytest.raises(ValueError, match="camera"):
        render(neutral_frontal(), 32, camera=np.eye(3))
    with pytest.raises(ValueError, match="supersample"):
        render(neutral_frontal(), 32, supersample=0)


def test_mirror_round_trip_and_index_convention():
    out = render(neutral_frontal(pose=Pose(-30, 5, 4)), size=64)
    flipped = mirror(out)
    again = mirror(flipped)
    assert np.array_equal(again.image, out.image) and np.array_equal(again.mask, out.mask)
    np.testing.assert_allclose(again.landmarks, out.landmarks, atol=1e-5)
    assert np.array_equal(flipped.image, out.image[:, ::-1])
    # the subject's right eye (image-left before the flip) is now on the image right and is "r_eye"
    np.testing.assert_allclose(flipped.landmarks[:, 0], 63 - out.landmarks[list(IBUG68_HFLIP), 0], atol=1e-5)
    assert flipped.landmarks[36:42, 0].mean() < flipped.landmarks[42:48, 0].mean()
    assert label_at(flipped.mask, flipped.landmarks[36:42].mean(0)) == L("l_eye")


# ----------------------------------------------------------------------------- seeding and splits
def test_samples_are_pure_functions_of_seed_split_index():
    a = SyntheticFaces("train", size=32, length=8, num_identities=4, seed=3)
    b = SyntheticFaces("train", size=32, length=8, num_identities=4, seed=3)
    sa, sb = a[5], b[5]
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key
    assert a.params(5) == b.params(5)
    assert not torch.equal(a[4]["image"], sa["image"])
    c = SyntheticFaces("train", size=32, length=8, num_identities=4, seed=4)
    assert not torch.equal(c[5]["image"], sa["image"])


def test_splits_have_disjoint_identities():
    train = [identity_params(0, "train", i) for i in range(30)]
    test = [identity_params(0, "test", i) for i in range(30)]
    assert {t.shape for t in train}.isdisjoint({t.shape for t in test})
    assert all(t.split == SPLITS["train"] for t in train) and all(t.split == SPLITS["test"] for t in test)
    assert [t.id for t in test] == list(range(30))                      # contiguous labels per split
    assert identity_params(0, "val", 7) == identity_params(0, 1, 7)     # split names map to fixed ids
    # sample streams of different splits, views and indices differ
    draws = {tuple(sample_rng(0, s, v, i).integers(0, 2**31, 4))
             for s in range(3) for v in range(6) for i in range(5)}
    assert len(draws) == 3 * 6 * 5
    with pytest.raises(ValueError):
        sample_rng(-1, 0, 0, 0)


# --------------------------------------------------------------------------------- frontalization
def test_frontalization_pairs():
    ds = SyntheticFrontalization("test", size=64, length=12, num_identities=6, yaw_range=(15, 75))
    k = 64 / 128
    seen_negative = False
    for i in range(6):
        s, p = ds[i], ds.params(i)
        seen_negative |= p["image"].pose.yaw < 0
        assert 15 - 1e-6 <= float(s["pose"][0]) <= 75 + 1e-6                # mirrored to positive yaw
        assert torch.equal(s["target_pose"], torch.zeros(3))
        assert p["image"].identity == p["target"].identity and p["image"].expression == p["target"].expression
        assert p["image"].lighting == p["target"].lighting and p["target"].pose == Pose()
        assert int(s["identity"]) == i % 6
        for key in ("landmarks", "target_landmarks"):
            five = landmarks_68_to_5(s[key].numpy().astype(np.float64))
            np.testing.assert_allclose(five[:2].mean(0), [64 * k, 40 * k], atol=1.0)
            np.testing.assert_allclose(five[3:].mean(0), [64 * k, 88 * k], atol=1.0)
        # the target is frontal: its landmarks are mirror-symmetric about the crop's centre line
        t = s["target_landmarks"].numpy()
        np.testing.assert_allclose(t[:, 0] + t[list(IBUG68_HFLIP), 0], 64.0, atol=0.35)
        np.testing.assert_allclose(t[:, 1], t[list(IBUG68_HFLIP), 1], atol=0.35)
        # image-left eye stays landmarks 36-41 / label l_eye after mirroring
        assert s["landmarks"][36:42, 0].mean() < s["landmarks"][42:48, 0].mean()
        assert label_at(s["target_mask"].numpy(), s["target_landmarks"][36:42].mean(0)) == L("l_eye")
    assert seen_negative


def test_frontalization_crop_is_align_multipie():
    ds = SyntheticFrontalization("train", size=64, length=4, num_identities=2)
    s = ds[1]
    image = ((s["image"].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    _, lm, _, matrix = align_multipie(image, s["landmarks"].numpy(), size=64)
    np.testing.assert_allclose(matrix, [[1, 0, 0], [0, 1, 0]], atol=1e-3)     # already in the crop
    np.testing.assert_allclose(lm, s["landmarks"].numpy(), atol=0.05)


def test_mirrored_sample_matches_a_mirrored_render():
    ds = SyntheticFrontalization("train", size=48, length=40, num_identities=4)
    i = next(i for i in range(40) if ds.params(i)["image"].pose.yaw < 0)
    p = ds.params(i)["image"]
    direct = mirror(render(p, 48, camera=aligned_camera(p, 48, mirror=True)))
    s = ds[i]
    assert torch.equal(s["mask"], torch.from_numpy(direct.mask.astype(np.int64)))
    assert float(s["pose"][0]) == pytest.approx(-p.pose.yaw)
    assert float(s["pose"][2]) == pytest.approx(-p.pose.roll)


# ----------------------------------------------------------------------------------- other views
VIEWS = {
    SyntheticFaces: {"image", "landmarks", "mask", "identity", "pose"},
    SyntheticFrontalization: {"image", "landmarks", "mask", "pose", "target", "target_landmarks",
                              "target_mask", "target_pose", "identity"},
    SyntheticReposing: {"image", "landmarks", "mask", "pose", "target", "target_landmarks", "target_mask",
                        "target_pose", "third", "third_landmarks", "third_mask", "third_pose", "identity"},
    SyntheticMakeup: {"image", "landmarks", "mask", "pose", "identity", "reference", "reference_landmarks",
                      "reference_mask", "reference_pose", "reference_identity", "target", "target_landmarks",
                      "target_mask", "makeup"},
    SyntheticMaskEdit: {"image", "mask", "landmarks", "pose", "identity", "target", "target_mask",
                        "target_landmarks", "edit"},
}


@pytest.mark.parametrize("view", list(VIEWS), ids=lambda v: v.__name__)
def test_view_keys_shapes_and_ranges(view):
    ds = view("val", size=32, length=5, num_identities=3, seed=1)
    assert len(ds) == 5
    s = ds[2]
    assert set(s) == VIEWS[view]
    for key, value in s.items():
        if key in ("image", "target", "reference", "third"):
            assert value.shape == (3, 32, 32) and value.dtype == torch.float32
            assert value.min() >= -1 and value.max() <= 1 and value.max() > value.min()
        elif key.endswith("landmarks"):
            assert value.shape == (68, 2) and value.dtype == torch.float32
        elif key.endswith("mask"):
            assert value.shape == (32, 32) and value.dtype == torch.int64
            assert 0 <= int(value.min()) and int(value.max()) < len(CELEBAMASK_HQ)
        elif key.endswith("pose"):
            assert value.shape == (3,) and value.dtype == torch.float32
        elif key == "makeup":
            assert value.shape == (16,) and 0 <= float(value.min()) and float(value.max()) <= 1
        else:
            assert value.shape == () and value.dtype == torch.int64
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError):
        view("holdout", size=32)


def test_reposing_triplets_share_identity_and_scene():
    ds = SyntheticReposing("train", size=32, length=4, num_identities=2)
    p = ds.params(3)
    assert p["image"].identity == p["target"].identity == p["third"].identity
    assert p["image"].lighting == p["third"].lighting and p["image"].background == p["target"].background
    assert len({p[k].pose for k in p}) == 3


def _dilate(region: torch.Tensor) -> torch.Tensor:
    """A (H, W) bool region grown by one pixel (3x3)."""
    return torch.nn.functional.max_pool2d(region[None, None].float(), 3, 1, 1)[0, 0] > 0


def test_makeup_truth_differs_from_source_only_in_makeup_regions():
    ds = SyntheticMakeup("train", size=64, length=6, num_identities=4)
    allowed = {L(n) for n in ("skin", "nose", "u_lip", "l_lip", "l_eye", "r_eye", "l_brow", "r_brow", "mouth")}
    for i in range(3):
        s, p = ds[i], ds.params(i)
        assert p["image"].makeup == Makeup.none() and p["target"].makeup == p["reference"].makeup
        assert p["reference"].identity != p["image"].identity
        assert torch.equal(s["mask"], s["target_mask"]) and torch.equal(s["landmarks"], s["target_landmarks"])
        changed = (s["target"] - s["image"]).abs().amax(0) > 2 / 255
        # anti-aliased edges (1 px) and the soft edge of the hair over the skin may change too
        inside = torch.isin(s["mask"], torch.tensor([*allowed, L("hair")]))
        assert changed.sum() > 20 and not (changed & ~_dilate(inside)).any()
        lips = (s["mask"] == L("u_lip")) | (s["mask"] == L("l_lip"))
        assert changed[lips].float().mean() > 0.8                        # the lipstick recolours the lips
        # the lips change in the direction of the lipstick (rendered colour = colour · shade · tint)
        natural = torch.tensor(p["image"].identity.lip_color, dtype=torch.float32)
        stick = torch.tensor(p["target"].makeup.lip_color, dtype=torch.float32)
        expected = (stick - natural) * p["target"].makeup.lip_strength
        observed = (s["target"][:, lips] - s["image"][:, lips]).mean(1)
        assert torch.nn.functional.cosine_similarity(expected, observed, dim=0) > 0.9


def test_foundation_tints_the_face_skin_and_nothing_else():
    ds = SyntheticMakeup("train", size=64, length=6, num_identities=4)
    bare = SyntheticMakeup("train", size=64, length=6, num_identities=4, foundation=False)
    for i in range(3):
        s, p, b = ds[i], ds.params(i), bare[i]
        m = p["target"].makeup
        assert 0.5 <= m.foundation_strength <= 0.9
        # the foundation is drawn last: without it, the same sample with the same other makeup
        assert dataclasses.replace(m, foundation_color=(0, 0, 0), foundation_strength=0.0) == \
            bare.params(i)["target"].makeup
        assert torch.equal(s["image"], b["image"]) and torch.equal(s["reference_mask"], b["reference_mask"])
        nose = s["mask"] == L("nose")
        assert torch.equal(b["target"][:, nose], b["image"][:, nose])      # bare makeup leaves the nose alone
        # with foundation the nose moves towards foundation − skin (colour · shade · tint, shade > 0)
        skin = torch.tensor(p["image"].identity.skin, dtype=torch.float32)
        expected = (torch.tensor(m.foundation_color, dtype=torch.float32) - skin) * m.foundation_strength
        observed = (s["target"][:, nose] - s["image"][:, nose]).mean(1)
        assert torch.nn.functional.cosine_similarity(expected, observed, dim=0) > 0.9
        # ears, neck, hair, clothes and background keep their pixels
        face = torch.isin(s["mask"], torch.tensor([L(n) for n in ("skin", "nose", "u_lip", "l_lip", "l_eye",
                                                                   "r_eye", "l_brow", "r_brow", "mouth",
                                                                   "hair")]))
        kept = ~_dilate(face)                  # (anti-aliased edges: 1 px; the hair's soft edge over the skin)
        assert kept.sum() > 500 and torch.equal(s["target"][:, kept], s["image"][:, kept])
    # the foundation makes makeup a visible change of the face: "the source unchanged" is no longer the truth
    l1 = sum(float((ds[i]["target"] - ds[i]["image"]).abs().mean()) for i in range(6)) / 6
    l1_bare = sum(float((bare[i]["target"] - bare[i]["image"]).abs().mean()) for i in range(6)) / 6
    assert l1 > 3 * l1_bare


def test_mask_edit_changes_the_mask_and_only_the_edited_attribute():
    ds = SyntheticMaskEdit("test", size=48, length=10, num_identities=5)
    seen = set()
    for i in range(6):
        s, p = ds[i], ds.params(i)
        edit = MASK_EDITS[int(s["edit"])]
        seen.add(edit)
        a, b = p["image"], p["target"]
        assert a.pose == b.pose and a.lighting == b.lighting and a.background == b.background
        if edit == "hair_style":
            assert a.identity.hair_style != b.identity.hair_style and a.expression == b.expression
        else:
            assert abs(getattr(a.expression, edit) - getattr(b.expression, edit)) >= 0.5 - 1e-9
        assert (s["mask"] != s["target_mask"]).any()
        assert not torch.equal(s["image"], s["target"])
    assert len(seen) >= 2


# --------------------------------------------------------------- optimised internals vs plain references
def test_identity_cache_is_not_mutated_by_expressions():
    """build_geometry caches per identity; other expressions of that identity must not change the cache."""
    from facezoo.data import _render

    ident = identity_params(0, "train", 5)
    style = _render.HAIR_STYLES[ident.hair_style]
    first = _render.build_geometry(ident.shape, 0.0, 0.0, 0.0, 0.0, style)
    _render.build_geometry(ident.shape, 1.0, 0.9, 0.8, 1.0, style)          # moves every expression point
    again = _render.build_geometry(np.asarray(ident.shape), 0.0, 0.0, 0.0, 0.0, style)
    assert np.array_equal(first.points, again.points) and np.array_equal(first.normals, again.normals)
    assert np.array_equal(first.part_normals, again.part_normals) and first.parts == again.parts
    assert identity_params(0, "train", 5) is identity_params(0, 0, 5)         # identities are cached too


def test_slice_surface_matches_vectorised_formula():
    """The scalar-loop _slice_surface equals the closed-form vectorised ray/ellipsoid intersection exactly."""
    from facezoo.data import _render

    skin = (_render.Ellipsoid((0.0, -0.83, -0.42), (1.04, 1.22, 1.32)), _render.Ellipsoid((0.0, 0.1, 0.05),
                                                                                            (0.8, 1.0, 0.78)))
    y = np.linspace(-0.5, 1.0, 17)
    phi = np.radians(86.0) * (np.arange(17) - 8) / 8
    z0, sx, sz = -0.3, np.sin(phi), np.cos(phi)
    best_t, normal = np.zeros(17), np.zeros((17, 3))
    for e in skin:                                                             # the same formula, numpy
        (cx, cy, cz), (a, b, c) = e.centre, e.axes
        k = np.clip(1.0 - ((y - cy) / b) ** 2, 1e-4, None)
        a2, c2 = a * a * k, c * c * k
        qa = sx * sx / a2 + sz * sz / c2
        qb = 2 * ((-cx) * sx / a2 + (z0 - cz) * sz / c2)
        qc = cx * cx / a2 + (z0 - cz) ** 2 / c2 - 1
        t = (-qb + np.sqrt(np.clip(qb * qb - 4 * qa * qc, 0, None))) / (2 * qa)
        better = t > best_t
        n = np.stack([(t * sx - cx) / a**2, (y - cy) / b**2, (z0 + t * sz - cz) / c**2], -1)
        normal, best_t = np.where(better[:, None], n, normal), np.where(better, t, best_t)
    pts, nrm = _render._slice_surface(y, phi, skin)
    assert np.array_equal(pts, np.stack([best_t * sx, y, z0 + best_t * sz], -1))
    assert np.array_equal(nrm, normal / np.linalg.norm(normal, axis=-1, keepdims=True))
    assert np.allclose(np.linalg.norm(nrm, axis=1), 1.0) and np.all(best_t > 0)


def test_clip_convex_against_numpy_reference():
    """Inside test and Sutherland–Hodgman clipping: a square clipped by a diamond, and a polygon inside it."""
    from facezoo.data import _render

    diamond = [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)]
    small = [(-0.2, -0.2), (0.2, -0.2), (0.2, 0.2), (-0.2, 0.2)]
    square = [(-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8)]
    assert _render._inside_convex(small, diamond) and _render._inside_convex(small, diamond[::-1])
    assert not _render._inside_convex(square, diamond)
    assert _render._clip_convex(small, diamond) is small
    out = np.array(_render._clip_convex(square, diamond))
    # the square cut by the diamond is an octagon with vertices (±0.8, ±0.2) and (±0.2, ±0.8)
    assert out.shape == (8, 2)
    assert np.allclose(np.sort(np.abs(out), axis=1), [[0.2, 0.8]] * 8)
    assert np.allclose(np.abs(out).sum(1), 1.0)                                # on the diamond's edges
