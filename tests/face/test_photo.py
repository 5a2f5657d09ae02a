"""facezoo.face.photo: reading/validating photos, the official crop, detail restoration, paste-back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from facezoo.face.photo import (
    check_output_path,
    crop,
    high_frequency_residual,
    image_to_tensor,
    official_crop_box,
    paste_back,
    read_photo,
    resize_bilinear,
    restore_details,
    tensor_to_image,
    write_photo,
)
from facezoo.utils import FacezooError

cv2 = pytest.importorskip("cv2")


def _rgb(h=80, w=96, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3)).astype(np.uint8)


# ------------------------------------------------------------------------------------------ reading
def test_rgb_png_round_trips_exactly(tmp_path):
    img = _rgb()
    write_photo(tmp_path / "a.png", img)
    assert np.array_equal(read_photo(tmp_path / "a.png"), img)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    gray = _rgb()[..., 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = read_photo(tmp_path / "g.png")
    assert out.shape == (80, 96, 3) and out.dtype == np.uint8
    assert all(np.array_equal(out[..., c], gray) for c in range(3))


def test_rgba_is_composited_on_white(tmp_path, caplog):
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., :3] = (200, 100, 0)
    rgba[:, :32, 3] = 255          # opaque half
    rgba[:, 32:48, 3] = 0          # transparent
    rgba[:, 48:, 3] = 128          # half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with caplog.at_level("INFO"):
        out = read_photo(tmp_path / "a.png")
    assert "alpha" in caplog.text and "white" in caplog.text
    assert (out[:, :32] == (200, 100, 0)).all()
    assert (out[:, 32:48] == 255).all()
    a = 128 / 255                  # c·a + 255·(1 − a), rounded
    expected = np.round(np.array([200, 100, 0]) * a + 255 * (1 - a)).astype(np.uint8)
    assert (out[:, 48:] == expected).all()


def test_16_bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 1000, 32768, 65535]] * 64, np.uint16)
    values = np.tile(values, (1, 13))[:, :64]
    Image.fromarray(values).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    out = read_photo(tmp_path / "d.png")
    assert out.dtype == np.uint8
    assert out[0, :5, 0].tolist() == [0, 1, 4, 128, 255]       # round(v / 257); clipping would give 255s
    assert np.array_equal(out[..., 0], out[..., 2])


def test_palette_image_is_converted(tmp_path):
    img = Image.fromarray(_rgb(64, 64)).convert("P", palette=Image.ADAPTIVE, colors=8)
    img.save(tmp_path / "p.png")
    assert np.array_equal(read_photo(tmp_path / "p.png"), np.asarray(img.convert("RGB")))


def test_exif_orientation_is_applied(tmp_path):
    img = _rgb(64, 100)
    exif = Image.Exif()
    exif[0x0112] = 6                                             # "rotate 90° clockwise to view"
    Image.fromarray(img).save(tmp_path / "e.jpg", exif=exif, quality=100)
    out = read_photo(tmp_path / "e.jpg")
    assert out.shape == (100, 64, 3)                            # rotated: width and height swap
    plain = np.asarray(Image.open(tmp_path / "e.jpg").convert("RGB"))
    assert np.array_equal(out, np.rot90(plain, k=-1))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b"this is not an image"), "not an image"),
        (lambda p: p.write_bytes(_png_bytes()[:-200]), "truncated"),
        (lambda p: Image.fromarray(_rgb(40, 300)).save(p), "40 pixels"),
    ],
    ids=["missing", "garbage", "truncated", "tiny"],
)
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, make, message):
    path = tmp_path / "x.png"
    make(path)
    with pytest.raises(FacezooError) as info:
        read_photo(path)
    text = str(info.value)
    assert str(path) in text and message in text and "\n" not in text


def _png_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(_rgb(128, 128)).save(buf, format="PNG")
    return buf.getvalue()


def test_write_photo_is_atomic_and_checks_the_format(tmp_path):
    with pytest.raises(FacezooError, match="unknown image format"):
        write_photo(tmp_path / "o.xyz", _rgb())
    with pytest.raises(ValueError):
        write_photo(tmp_path / "o.png", _rgb().astype(np.float32))
    assert list(tmp_path.iterdir()) == []                       # nothing, not even a temporary file
    assert check_output_path("a/b.JPEG") == "JPEG"
    write_photo(tmp_path / "o.jpg", _rgb(), quality=95)
    assert [p.name for p in tmp_path.iterdir()] == ["o.jpg"]
    assert Image.open(tmp_path / "o.jpg").format == "JPEG"


# --------------------------------------------------------------------------------------------- crop
def test_official_crop_box_by_hand():
    # face (170,120)-(290,240) in a 480x640 (H x W) photo; face height 120.
    # grown box: left  = int(170 - 0.2/0.85·640) = int(19.41)  = 19
    #            top   = int(120 - 0.6/0.85·120) = int(35.29)  = 35
    #            right = int(290 + 150.59)       = int(440.59) = 440
    #            bottom= int(240 + 0.2/0.85·120) = int(268.24) = 268
    # 421 wide > 233 high → a 233 square centred at x = 229.5: int(229.5 - 116.5) = 113
    assert official_crop_box((170, 120, 290, 240), (480, 640)) == (113, 35, 346, 268)
    # clipped at the image border: face at the top-left corner of a tall photo
    # left = 0, top = 0, right = int(min(100, 90 + 23.53)) = 100, bottom = int(90 + 18.82) = 108
    # 108 high > 100 wide → a 100 square centred at y = 54: int(54 - 50) = 4
    assert official_crop_box((10, 10, 90, 90), (300, 100)) == (0, 4, 100, 104)


@pytest.mark.parametrize("seed", range(5))
def test_official_crop_box_is_a_square_inside_the_image(seed):
    rng = np.random.default_rng(seed)
    H, W = rng.integers(64, 900, 2)
    x0, y0 = rng.uniform(0, W - 20), rng.uniform(0, H - 20)
    s = rng.uniform(10, min(W - x0, H - y0))
    bx0, by0, bx1, by1 = official_crop_box((x0, y0, x0 + s, y0 + s), (H, W))
    assert bx1 - bx0 == by1 - by0 > 0
    assert 0 <= bx0 and 0 <= by0 and bx1 <= W and by1 <= H


def test_crop_and_paste_back_touch_only_the_box():
    img = _rgb()
    box = (10, 20, 40, 50)
    assert np.array_equal(crop(img, box), img[20:50, 10:40])
    patch = np.zeros((30, 30, 3), np.uint8)
    out = paste_back(img, patch, box)
    assert (out[20:50, 10:40] == 0).all()
    outside = np.ones(img.shape[:2], bool)
    outside[20:50, 10:40] = False
    assert np.array_equal(out[outside], img[outside])
    with pytest.raises(ValueError, match="does not fit"):
        paste_back(img, patch[:5], box)
    with pytest.raises(ValueError, match="outside"):
        crop(img, (90, 0, 120, 30))


# ----------------------------------------------------------------------------------- detail restore
def test_resize_bilinear_matches_opencv_inter_linear():
    img = _rgb(50, 70).astype(np.float64)
    for size in ((20, 30), (120, 90)):
        ours = resize_bilinear(img, size)
        ref = cv2.resize(img, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        assert np.allclose(ours, ref, atol=1e-6)


def test_detail_restoration_adds_exactly_the_high_frequency_residual():
    src = _rgb(90, 90, seed=3)
    # an independent residual: the official PostProcess arithmetic with OpenCV
    small = cv2.resize(src, (32, 32), interpolation=cv2.INTER_LINEAR)
    residual_cv = src.astype(np.float64) - cv2.resize(small.astype(np.float64), (90, 90),
                                                      interpolation=cv2.INTER_LINEAR)
    residual = high_frequency_residual(src, 32)
    # OpenCV rounds the 32² image to uint8 in between; ours stays float: they differ by < 1 level
    assert np.abs(residual - residual_cv).max() < 1.0
    result = np.full((32, 32, 3), 100.0)                        # a flat network output
    out = restore_details(result, src)
    assert np.array_equal(out, np.clip(np.round(100.0 + residual), 0, 255).astype(np.uint8))
    # when the network returns the downsampled source, the source comes back exactly
    assert np.array_equal(restore_details(resize_bilinear(src, (32, 32)), src), src)
    # without the residual (a blurry upsample) it would not
    assert not np.array_equal(np.round(resize_bilinear(resize_bilinear(src, (32, 32)), (90, 90))), src)


def test_tensor_conversions_round_trip():
    img = _rgb(8, 6)
    t = image_to_tensor(img)
    assert t.shape == (1, 3, 8, 6) and t.min() >= -1 and t.max() <= 1
    assert np.array_equal(np.round(tensor_to_image(t)).astype(np.uint8), img)
    assert tensor_to_image(torch.full((3, 2, 2), 5.0)).max() == 255.0   # clipped to [-1, 1] first
