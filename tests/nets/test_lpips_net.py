"""facezoo.nets.lpips_net: the LPIPS heads shipped in the lpips wheel, the backbone through the weight resolver."""

from __future__ import annotations

import os

import pytest
import torch

from facezoo.nets.lpips_net import lpips_network


def test_lpips_heads_are_the_packaged_ones():
    lpips = pytest.importorskip("lpips")
    net = lpips_network("alex", backbone_weights=None)
    packaged = torch.load(os.path.join(os.path.dirname(lpips.__file__), "weights", "v0.1", "alex.pth"),
                          map_location="cpu")
    for k in range(5):
        assert torch.equal(net.lins[k].model[-1].weight, packaged[f"lin{k}.model.1.weight"])


def test_lpips_backbone_weights_round_trip_and_offline_error(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(16)
    alex = torchvision.models.alexnet(weights=None)
    path = tmp_path / "alexnet.pth"
    torch.save(alex.state_dict(), path)
    net = lpips_network("alex", backbone_weights=path)
    assert torch.equal(net.net.slice1[0].weight, alex.features[0].weight)
    assert torch.equal(getattr(net.net.slice5, "10").bias, alex.features[10].bias)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    assert float(net(x, x).abs().max()) < 1e-6 and float(net(x, x.flip(-1)).mean()) > 0
    with pytest.raises(FileNotFoundError, match="alexnet-owt-7be5be79.pth"):
        lpips_network("alex", backbone_weights="imagenet")  # offline, no cached backbone: one line naming the file
