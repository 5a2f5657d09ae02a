"""The synthetic-face identity network (facezoo.nets.identity): embedding, CosFace, AUC, shipped weights, script."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
from conftest import load_script

from facezoo.data.synthetic import SyntheticFaces
from facezoo.metrics import compute_metrics
from facezoo.nets.identity import SyntheticIdentityNet, cosface_loss, roc_auc, verification_scores
from facezoo.nets.weights import WEIGHTS, WeightsNotFoundError

ROOT = Path(__file__).resolve().parents[2]


def test_embeddings_are_unit_vectors_of_any_input_size():
    net = SyntheticIdentityNet(size=32, width=4, depth=2, dim=8).eval()
    emb = net.embed(torch.rand(3, 3, 48, 40) * 2 - 1)
    assert emb.shape == (3, 8)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(3))
    with pytest.raises(ValueError, match="divisible"):
        SyntheticIdentityNet(size=36, depth=2)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net.embed(torch.zeros(2, 1, 32, 32))


def test_cosface_subtracts_the_margin_from_the_true_class_only():
    emb = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.6, 0.8]]), dim=1)
    weights = torch.tensor([[2.0, 0.0], [0.0, 3.0]])                # normalised inside
    labels = torch.tensor([0, 1])
    cos = emb @ torch.nn.functional.normalize(weights, dim=1).t()
    logits = 30.0 * (cos - 0.35 * torch.eye(2))
    expected = torch.nn.functional.cross_entropy(logits, labels)
    torch.testing.assert_close(cosface_loss(emb, weights, labels), expected)
    assert cosface_loss(emb, weights, labels, margin=0.0) < expected


def test_roc_auc_counts_ordered_pairs_with_ties_as_half():
    torch.manual_seed(0)
    pos, neg = torch.randint(0, 5, (7,)).float(), torch.randint(0, 5, (9,)).float()   # many ties
    brute = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos.tolist(), neg.tolist())) / 63
    assert roc_auc(pos, neg) == pytest.approx(brute)
    assert roc_auc(torch.tensor([2.0, 3.0]), torch.tensor([0.0, 1.0])) == 1.0
    with pytest.raises(ValueError):
        roc_auc(torch.tensor([]), neg)


def test_verification_scores_split_pairs_by_identity():
    images = torch.stack([torch.full((3, 4, 4), v) for v in (0.1, 0.1, 0.9, -0.5)])
    same, different = verification_scores(torch.nn.Flatten(), images, torch.tensor([0, 0, 1, 1]))
    assert len(same) == 2 and len(different) == 4          # C(4, 2) = 6 pairs
    assert same.max() == pytest.approx(1.0) and different.min() == pytest.approx(-1.0)


def test_the_shipped_network_tells_held_out_identities_apart(monkeypatch, tmp_path):
    """The file in facezoo/nets/data: its recorded held-out AUC, and a fresh check on other test faces."""
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    monkeypatch.setenv("FACEZOO_OFFLINE", "1")
    net = SyntheticIdentityNet.from_pretrained()
    assert net.frozen and not net.training and net.size == 64
    assert net.meta["test_auc"] > 0.95 and net.meta["test_same_similarity"] > net.meta["test_different_similarity"]
    test = SyntheticFaces("test", size=64, length=24, num_identities=6, seed=7)      # another seed: unseen faces
    samples = [test[i] for i in range(len(test))]
    images = torch.stack([s["image"] for s in samples])
    same, different = verification_scores(net, images, torch.stack([s["identity"] for s in samples]))
    assert roc_auc(same, different) > 0.9
    # through the metric registry, as facezoo.evaluate calls it: a face is closer to another view of itself
    # than to another person
    pairs = compute_metrics(["id_sim_synthetic"], images[:6], images[6:12], synthetic_id_net=net)
    shuffled = compute_metrics(["id_sim_synthetic"], images[:6], images[7:13], synthetic_id_net=net)
    assert pairs["id_sim_synthetic"] > shuffled["id_sim_synthetic"] + 0.2


def test_checkpoint_resolution_and_training_script(empty_weight_cache, capsys):
    tmp_path = empty_weight_cache
    with pytest.raises(WeightsNotFoundError, match="train_identity_net.py"):
        SyntheticIdentityNet.from_pretrained()
    script = load_script("train_identity_net.py")
    out = tmp_path / WEIGHTS["synthetic_identity"].filename
    assert script.main(["--out", str(out), "--steps", "3", "--batch-size", "4", "--size", "32", "--width", "4",
                        "--dim", "8", "--identities", "4", "--test-identities", "3", "--test-views", "2",
                        "--num-workers", "0"]) == 0
    net = SyntheticIdentityNet.from_pretrained()                 # now found in the cache
    assert net.size == 32 and net.meta["steps"] == 3 and net.meta["test_identities"] == 3
    assert 0.0 <= net.meta["test_auc"] <= 1.0 and math.isfinite(net.meta["test_same_similarity"])
    assert "held-out verification AUC" in capsys.readouterr().out
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a facezoo identity-net checkpoint"):
        SyntheticIdentityNet.from_checkpoint(tmp_path / "other.pt")
