from __future__ import annotations

import numpy as np
import pytest
import torch

from facezoo.face.align import (
    align_multipie,
    crop_patches,
    invert_affine,
    multipie_alignment,
    transform_points,
    umeyama,
    warp_affine,
)


def test_umeyama_recovers_a_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (10, 2))
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = umeyama(src, dst)
    assert np.allclose(m[:, :2], scale * rot) and np.allclose(m[:, 2], shift)
    assert np.allclose(transform_points(src, invert_affine(m) @ np.vstack([m, [0, 0, 1]])), src)


def test_multipie_alignment_puts_eyes_and_mouth_at_the_official_places():
    # a tilted face: eyes at (30,60)/(70,40), mouth corners below
    five = np.array([[30.0, 60.0], [70.0, 40.0], [60.0, 70.0], [50.0, 100.0], [80.0, 85.0]])
    m = multipie_alignment(five, size=128)
    out = transform_points(five, m)
    assert np.allclose(out[:2].mean(0), [64, 40]) and np.allclose(out[3:].mean(0), [64, 88])
    m64 = multipie_alignment(five, size=64)
    assert np.allclose(transform_points(five, m64)[:2].mean(0), [32, 20])


def test_warp_affine_moves_pixels_like_transform_points():
    img = np.zeros((32, 32), np.uint8)
    img[10, 7] = 255
    m = np.array([[0.0, -1.0, 31.0], [1.0, 0.0, 0.0]])  # rotate 90 degrees
    out = warp_affine(img, m, 32, nearest=True)
    (y, x), = np.argwhere(out == 255)
    assert np.allclose(transform_points(np.array([[7.0, 10.0]]), m), [[x, y]])


def test_align_multipie_image_landmarks_and_mask_agree():
    img = np.zeros((200, 200, 3), np.uint8)
    mask = np.zeros((200, 200), np.uint8)
    lm = np.random.default_rng(1).uniform(60, 140, (68, 2))
    lm[36:42], lm[42:48] = (80.0, 80.0), (120.0, 84.0)  # a face: eyes, nose tip, mouth corners
    lm[30], lm[48], lm[54] = (101.0, 107.0), (86.0, 131.0), (114.0, 133.0)
    x, y = np.round(lm[30]).astype(int)
    img[y - 1:y + 2, x - 1:x + 2] = 255
    mask[y - 1:y + 2, x - 1:x + 2] = 2
    out, out_lm, out_mask, m = align_multipie(img, lm, size=128, mask=mask)
    assert out.shape == (128, 128, 3) and out_mask.shape == (128, 128) and set(np.unique(out_mask)) <= {0, 2}
    nx, ny = np.round(out_lm[30]).astype(int)
    assert out_mask[ny, nx] == 2 and out[ny, nx].max() > 100


def test_crop_patches_exact_pixels_and_padding():
    img = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    p = crop_patches(img, torch.tensor([[4.0, 4.0], [1.0, 1.0]]), (2, 4))
    assert p.shape == (2, 1, 2, 4)
    assert torch.equal(p[0, 0], img[0, 0, 3:5, 2:6])
    assert torch.equal(p[1, 0, :, :1], torch.zeros(2, 1))  # left of the image: zero padding
    assert torch.equal(p[1, 0, :, 1:], img[1, 0, 0:2, 0:3])
    img.requires_grad_(True)
    crop_patches(img, torch.tensor([4.0, 4.0]), (2, 2)).sum().backward()
    assert img.grad.sum() == 2 * 4
    with pytest.raises(ValueError):
        crop_patches(img[0], torch.tensor([4.0, 4.0]), (2, 2))
