from __future__ import annotations

import numpy as np
import pytest
import torch

from facezoo.face.labels import (
    CELEBAMASK_HQ,
    CELEBAMASK_HQ_COLORS,
    FACE_PARSING_PYTORCH,
    IBUG68_HFLIP,
    IBUG68_PARTS,
    MT,
    colorize_labels,
    convert_labels,
    label_lut,
    labels_from_colors,
    landmarks_68_to_5,
    landmarks_68_to_66,
)


def test_celebamask_hq_official_ids():
    # face_parsing/README.md of switchablenorms/CelebAMask-HQ
    assert [CELEBAMASK_HQ.index(n) for n in ("skin", "nose", "l_eye", "u_lip", "hair", "neck", "cloth")] == [
        1, 2, 4, 11, 13, 17, 18]
    assert len(CELEBAMASK_HQ) == 19


def test_face_parsing_pytorch_to_mt_matches_psgans_mapper():
    """PSGAN's FaceParser.mapper (face-parsing.PyTorch → MT) is reproduced by the registry."""
    psgan_mapper = [0, 1, 2, 3, 4, 5, 0, 11, 12, 0, 6, 8, 7, 9, 13, 0, 0, 10, 0]
    assert label_lut(FACE_PARSING_PYTORCH, MT).tolist() == psgan_mapper


def test_convert_round_trip_tensor_and_array():
    ids = torch.arange(19)
    there = convert_labels(ids, "celebamask_hq", "face_parsing_pytorch")
    back = convert_labels(there, "face_parsing_pytorch", "celebamask_hq")
    assert torch.equal(back, ids)
    assert FACE_PARSING_PYTORCH.names[int(there[13])] == "hair"
    arr = convert_labels(np.array([[17, 1]]), "face_parsing_pytorch", "celebamask_hq")
    assert isinstance(arr, np.ndarray) and arr.tolist() == [[13, 1]]
    with pytest.raises(ValueError, match="out of range"):
        convert_labels(torch.tensor([19]), "celebamask_hq", "mt")


def test_mt_face_is_celebamask_skin():
    assert label_lut(MT, CELEBAMASK_HQ)[MT.index("face")] == CELEBAMASK_HQ.index("skin")
    assert MT.index("skin") == 1


def test_hflip_permutation_swaps_sides():
    perm = np.array(IBUG68_HFLIP)
    assert sorted(perm.tolist()) == list(range(68)) and (perm[perm] == np.arange(68)).all()
    left, right = IBUG68_PARTS["left_eye"], IBUG68_PARTS["right_eye"]
    assert set(perm[list(left)]) == set(right)
    assert perm[30] == 30 and perm[8] == 8 and perm[48] == 54 and perm[60] == 64


def test_hflip_of_a_symmetric_face_is_the_identity():
    rng = np.random.default_rng(0)
    half = {i: rng.uniform(0, 50, 2) for i in range(68)}
    pts = np.zeros((68, 2))
    for i in range(68):
        j = IBUG68_HFLIP[i]
        if i == j:
            pts[i] = [50.0, half[i][1]]
        elif i < j:
            pts[i] = half[i]
            pts[j] = [100.0 - half[i][0], half[i][1]]
    mirrored = pts.copy()
    mirrored[:, 0] = 100.0 - mirrored[:, 0]
    assert np.allclose(mirrored[list(IBUG68_HFLIP)], pts)


def test_landmark_scheme_converters():
    lm = torch.arange(68 * 2, dtype=torch.float32).reshape(68, 2)
    assert landmarks_68_to_66(lm).shape == (66, 2)
    assert 60 * 2 not in landmarks_68_to_66(lm)[:, 0].tolist()
    five = landmarks_68_to_5(lm[None])
    assert five.shape == (1, 5, 2)
    assert torch.allclose(five[0, 0], lm[36:42].mean(0)) and torch.equal(five[0, 3], lm[48])
    with pytest.raises(ValueError, match="expected 68"):
        landmarks_68_to_5(lm[:66])


def test_label_colours_distinct_and_round_trip():
    assert len(CELEBAMASK_HQ_COLORS) == len(CELEBAMASK_HQ) and len(set(CELEBAMASK_HQ_COLORS)) == len(CELEBAMASK_HQ)
    mask = torch.arange(19).repeat(2, 3, 1)                                   # (2, 3, 19): every id
    picture = colorize_labels(mask)
    assert picture.shape == (2, 3, 3, 19) and picture.min() >= -1 and picture.max() <= 1
    assert torch.allclose(picture[0, :, 0, 13], torch.tensor([90, 50, 160]) / 127.5 - 1)       # hair
    assert torch.equal(labels_from_colors(picture), mask)
    assert torch.equal(labels_from_colors(picture + 0.02 * torch.randn_like(picture)), mask)  # nearest colour


def test_label_colours_reject_bad_input():
    with pytest.raises(ValueError, match="ids must lie"):
        colorize_labels(torch.tensor([[[19]]]))
    with pytest.raises(ValueError, match="integer"):
        colorize_labels(torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="shape"):
        labels_from_colors(torch.zeros(1, 1, 2, 2))
