"""Mask edits without drawing (facezoo.methods.maskgan.edit) on a synthetic face's CelebAMask-HQ parsing."""

from __future__ import annotations

import pytest
import torch

from facezoo.data.synthetic import SyntheticFaces
from facezoo.face.labels import CELEBAMASK_HQ
from facezoo.methods.maskgan import edit
from facezoo.methods.maskgan.networks import MaskVAE

SKIN, U_LIP, L_LIP, HAIR = (CELEBAMASK_HQ.index(p) for p in ("skin", "u_lip", "l_lip", "hair"))


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    data = SyntheticFaces("test", size=64, length=2, num_identities=2)
    return torch.stack([data[i]["mask"] for i in range(2)])


def area(mask, label) -> int:
    return int((mask == label).sum())


def test_part_names_groups_and_ids():
    assert edit.part_ids("lips") == [U_LIP, L_LIP] and edit.part_ids(["hair", 13, "lips"]) == [HAIR, U_LIP, L_LIP]
    with pytest.raises(KeyError, match="unknown mask part 'lipz'.*groups lips"):
        edit.part_ids("lipz")
    with pytest.raises(ValueError, match="outside 0-18"):
        edit.part_ids(19)


def test_grow_takes_only_from_into_and_shrink_gives_to_fill(faces):
    mask = faces[0]
    bigger = edit.grow(mask, "lips", 2, into="skin")
    assert area(bigger, U_LIP) + area(bigger, L_LIP) > area(mask, U_LIP) + area(mask, L_LIP)
    changed = bigger != mask
    assert changed.any() and (mask[changed] == SKIN).all()                      # only skin pixels were taken
    assert torch.isin(bigger[changed], torch.tensor([U_LIP, L_LIP])).all()
    assert torch.equal(mask, faces[0])                                          # the input is left alone
    thinner = edit.shrink(mask, "hair", 1, fill="background")
    freed = thinner != mask
    assert freed.any() and (mask[freed] == HAIR).all() and (thinner[freed] == 0).all()
    assert area(edit.shrink(mask, "lips", 30), U_LIP) == 0                     # thinner than 61 px: gone
    # batches: each mask edited on its own, the same as one by one
    assert torch.equal(edit.grow(faces, "eyes", 1), torch.stack([edit.grow(m, "eyes", 1) for m in faces]))
    assert torch.equal(edit.grow(mask, "lips", 0), mask)


def test_transplant_puts_the_donors_part_in_place_of_ours(faces):
    mask, donor = faces[0], faces[1]
    out = edit.transplant(mask, donor, "hair")
    assert torch.equal(out == HAIR, donor == HAIR)                              # exactly the donor's hair
    old_hair_only = (mask == HAIR) & (donor != HAIR)
    assert (out[old_hair_only] == SKIN).all()                                   # our hair became skin
    elsewhere = (mask != HAIR) & (donor != HAIR)
    assert torch.equal(out[elsewhere], mask[elsewhere])
    assert torch.equal(edit.transplant(faces, donor, "hair")[0], out)          # one donor for a batch
    with pytest.raises(ValueError, match="does not match"):
        edit.transplant(mask, donor[:32], "hair")


def test_interpolate_goes_from_one_mask_to_the_other(faces):
    torch.manual_seed(0)
    vae = MaskVAE(ngf=4, ndf=4, latent_dim=8, resolution=64)
    ends = edit.interpolate(vae, faces[0], faces[1], [0.0, 1.0])
    assert ends.shape == (2, 64, 64) and ends.dtype == torch.int64
    mu_a = vae.eval().encode(faces[:1])[0]
    assert torch.equal(ends[0], vae.decode(mu_a).argmax(1)[0])                 # α 0: mask_a's own code
    assert edit.interpolate(vae, faces, faces.flip(0), 0.5).shape == (2, 64, 64)
