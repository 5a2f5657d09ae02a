"""Tests of facezoo.face.heatmaps: hand-computed values, round trips, gradcheck, exceptions."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from facezoo.face.heatmaps import landmark_heatmaps, landmarks_from_heatmaps


def test_landmark_heatmaps_values_shape_and_range():
    lm = torch.tensor([[[3.0, 2.0], [0.0, 4.0]]])
    h = landmark_heatmaps(lm, (6, 7), sigma=1.5)
    assert h.shape == (1, 2, 6, 7)
    assert h[0, 0, 2, 3].item() == pytest.approx(1.0)  # row y=2, column x=3
    assert h[0, 0, 2, 4].item() == pytest.approx(math.exp(-1 / (2 * 1.5**2)))
    assert h[0, 0, 3, 4].item() == pytest.approx(math.exp(-2 / (2 * 1.5**2)))
    assert h[0, 1].flatten().argmax().item() == 4 * 7 + 0
    g = landmark_heatmaps(lm, (6, 7), sigma=1.5, to_range=(-1, 1))
    assert torch.allclose(g, 2 * (h - 0.5))
    assert g.max().item() == pytest.approx(1.0) and g.min().item() > -1.0


def test_landmarks_recovered_from_heatmaps():
    torch.manual_seed(10)
    lm = torch.rand(2, 5, 2) * torch.tensor([20.0, 14.0]) + 6.0  # sub-pixel, away from the border
    h = landmark_heatmaps(lm, (26, 32), to_range=(-1, 1))
    soft = landmarks_from_heatmaps(h, value_range=(-1, 1))
    assert (soft - lm).abs().max() < 1e-2
    hard = landmarks_from_heatmaps(h, soft=False)
    assert torch.equal(hard, lm.round())
    tempered = landmarks_from_heatmaps(h, temperature=0.05, value_range=(-1, 1))
    assert (tempered - lm).abs().max() < 0.25


def test_heatmap_functions_gradcheck():
    lm = torch.tensor([[[1.3, 2.2], [2.6, 0.7]]], dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda p: landmark_heatmaps(p, (4, 5), sigma=1.0), (lm,))
    h = landmark_heatmaps(lm.detach(), (4, 5), sigma=1.0).requires_grad_(True)
    assert gradcheck(lambda x: landmarks_from_heatmaps(x), (h,))
    assert gradcheck(lambda x: landmarks_from_heatmaps(x, temperature=0.3), (h,))


def test_heatmap_exceptions():
    with pytest.raises(ValueError, match=r"\(B, N, 2\)"):
        landmark_heatmaps(torch.zeros(3, 2), (4, 4))
    with pytest.raises(ValueError, match="sigma"):
        landmark_heatmaps(torch.zeros(1, 3, 2), (4, 4), sigma=0.0)
    with pytest.raises(ValueError, match="temperature"):
        landmarks_from_heatmaps(torch.rand(1, 1, 3, 3), temperature=0.0)
