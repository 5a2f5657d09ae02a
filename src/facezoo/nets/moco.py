"""MoCo v2 ResNet-50 features (He et al. 2020), the network of pSp's MoCo similarity loss for non-face domains.

pSp (``eladrich/pixel2style2pixel: criteria/moco_loss.py``, taken from e4e) loads the query encoder of
``moco_v2_800ep_pretrain.pt`` (keys ``module.encoder_q.*``) into a torchvision ResNet-50, drops the ``fc`` head and
compares the L2-normalised 2048-d pooled features of images in [-1, 1] (no ImageNet normalisation) at 224 px.

Example:
    >>> net = MoCoFeatures()            # random weights (tests)
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 2048])
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from facezoo.nets.weights import Freezable, load_state_dict_file, resolve_weights

__all__ = ["MoCoFeatures"]


class MoCoFeatures(Freezable, nn.Module):
    """ResNet-50 without its ``fc``: images (B, 3, H, W) in [-1, 1] → unit-norm (B, 2048) features."""

    PREFIX = "encoder_q."  # after load_state_dict_file strips DataParallel's "module."

    def __init__(self) -> None:
        super().__init__()
        from torchvision.models import resnet50

        self.body = nn.Sequential(*list(resnet50(weights=None).children())[:-1])

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike | None = None, download: bool | None = None) -> MoCoFeatures:
        """Load the query encoder of ``moco_v2_800ep_pretrain.pt`` (resolved as ``"moco_v2"``), strictly.

        Raises:
            WeightsNotFoundError: the file cannot be found (one line naming it).
            ValueError: the file lacks keys of the ResNet-50 body.
        """
        file = resolve_weights("moco_v2", path, download, path_arg="moco")
        state = load_state_dict_file(file)
        net = cls()
        names = {f"{i}.": f"{name}." for i, name in enumerate(
            ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"])}
        mapped = {}
        for key in net.body.state_dict():
            index, _, rest = key.partition(".")
            source = cls.PREFIX + names[index + "."] + rest
            if source not in state:
                raise ValueError(f"{file}: not a MoCo v2 ResNet-50 checkpoint (missing {source})")
            mapped[key] = state[source]
        net.body.load_state_dict(mapped, strict=True)
        return net.freeze()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.body(x).flatten(1), dim=1)
