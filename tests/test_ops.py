"""Tests of facezoo.ops.histogram_match against skimage, hand cases and exceptions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facezoo.ops import histogram_match


def _levels_to_image(levels: torch.Tensor) -> torch.Tensor:
    """Integer levels in [0, 255] -> [-1, 1] values at the bin centres (robust to float rounding)."""
    return (levels.double() + 0.5) / 255 * 2 - 1


def test_histogram_match_against_skimage():
    match_histograms = pytest.importorskip("skimage.exposure").match_histograms
    gen = torch.Generator().manual_seed(11)
    h = w = 24
    src_levels = (torch.randn(3, h, w, generator=gen) * 30 + 90).round().clamp(0, 255)
    ref_levels = torch.randint(40, 201, (3, h, w), generator=gen)
    ref_levels.view(3, -1)[:, :161] = torch.arange(40, 201)  # every level of [40, 200]: gaps of 1 level
    src_mask = torch.zeros(h, w)
    src_mask[3:20, 2:22] = 1
    ref_mask = torch.zeros(h, w)
    ref_mask[:, :] = 1
    ref_mask[10:14, 5:9] = 0
    for c in range(3):
        assert torch.equal(torch.unique(ref_levels[c][ref_mask > 0]), torch.arange(40, 201))

    matched = histogram_match(
        _levels_to_image(src_levels), _levels_to_image(ref_levels), src_mask, ref_mask
    )
    got = ((matched + 1) / 2 * 255)[:, src_mask > 0]
    for c in range(3):
        expected = match_histograms(
            src_levels[c][src_mask > 0].numpy().astype(np.uint8),
            ref_levels[c][ref_mask > 0].numpy().astype(np.uint8),
        )
        diff = (got[c] - torch.from_numpy(np.asarray(expected, dtype=np.float64))).abs()
        assert diff.max() <= 1.0 + 1e-6  # binned CDF lookup vs skimage's interpolation between unit levels
        assert diff.mean() < 0.75
    # outside the mask the source is untouched
    assert torch.allclose(
        matched[:, src_mask == 0], _levels_to_image(src_levels)[:, src_mask == 0].to(matched)
    )


def test_histogram_match_to_own_distribution_is_identity_and_constant_hand_case():
    gen = torch.Generator().manual_seed(12)
    levels = torch.randint(0, 256, (2, 3, 8, 8), generator=gen)
    img = _levels_to_image(levels).float()
    perm = torch.randperm(64, generator=gen)
    shuffled = img.flatten(2)[..., perm].view_as(img)  # same histogram, other positions
    out = histogram_match(img, shuffled, torch.ones(8, 8), torch.ones(2, 1, 8, 8))
    assert torch.allclose((out + 1) / 2 * 255, levels.float(), atol=1e-4)
    # constant source level 10 matched to constant reference level 200 -> 200 inside the mask
    src, ref = (
        _levels_to_image(torch.full((3, 4, 4), 10)).float(),
        _levels_to_image(torch.full((3, 4, 4), 200)).float(),
    )
    out = histogram_match(src, ref, torch.ones(4, 4), torch.ones(4, 4))
    assert out.shape == (3, 4, 4)
    assert torch.allclose((out + 1) / 2 * 255, torch.full((3, 4, 4), 200.0), atol=1e-4)


def test_histogram_exceptions():
    img = torch.rand(1, 3, 4, 4)
    with pytest.raises(ValueError, match="3 channels"):
        histogram_match(torch.rand(1, 1, 4, 4), img, torch.ones(4, 4), torch.ones(4, 4))
    with pytest.raises(ValueError, match="spatially"):
        histogram_match(img, img, torch.ones(5, 4), torch.ones(4, 4))
    with pytest.raises(ValueError, match="batch sizes"):
        histogram_match(img, torch.rand(2, 3, 4, 4), torch.ones(4, 4), torch.ones(4, 4))
