"""The FID Inception-v3 (the TF 2015-12-05 graph as ported by pytorch-fid).

torchvision's ``Inception3`` with 1008 logits and no auxiliary head, where the pooling branches differ
from torchvision's: average pools exclude the padding (``count_include_pad=False``) in Mixed_5b-5d,
Mixed_6b-6e and Mixed_7b, and Mixed_7c's pool branch is a 3x3 max pool. Parameter names equal the
keys of ``pt_inception-2015-12-05-6726825d.pth``. The output is the 2048-d pool3 feature FID uses.

Example:
    >>> net = FIDInceptionV3()
    >>> net.num_features
    2048
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torchvision.models import inception as tv_inception

from facezoo.nets.weights import Freezable, load_state_dict_file, resolve_weights

__all__ = ["FIDInceptionA", "FIDInceptionC", "FIDInceptionE", "FIDInceptionV3"]


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 average pool that divides by the number of valid (non-padding) pixels."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(tv_inception.InceptionA):
    """torchvision ``InceptionA`` whose pool branch excludes padding from the average.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`; Output: :math:`(B, 224 + pool\\_features, H, W)`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([branch1x1, branch5x5, branch3x3dbl, branch_pool], dim=1)


class FIDInceptionC(tv_inception.InceptionC):
    """torchvision ``InceptionC`` whose pool branch excludes padding from the average.

    Shape:
        - Input / Output: :math:`(B, 768, H, W)`.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = x
        for conv in (
            self.branch7x7dbl_1,
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            branch7x7dbl = conv(branch7x7dbl)
        branch_pool = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([branch1x1, branch7x7, branch7x7dbl, branch_pool], dim=1)


class FIDInceptionE(tv_inception.InceptionE):
    """torchvision ``InceptionE`` with the TF graph's pool branch.

    ``pool="avg"`` (Mixed_7b, pytorch-fid's ``FIDInceptionE_1``) averages without padding;
    ``pool="max"`` (Mixed_7c, ``FIDInceptionE_2``) uses a 3x3 stride-1 max pool.

    Args:
        in_channels: input channels (1280 or 2048).
        pool: ``"avg"`` or ``"max"``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`; Output: :math:`(B, 2048, H, W)`.
    """

    def __init__(self, in_channels: int, pool: str = "avg", **kwargs) -> None:
        super().__init__(in_channels, **kwargs)
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch1x1 = self.branch1x1(x)
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], dim=1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat(
            [self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], dim=1
        )
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_no_pad(x)
        branch_pool = self.branch_pool(pooled)
        return torch.cat([branch1x1, branch3x3, branch3x3dbl, branch_pool], dim=1)


class FIDInceptionV3(Freezable, tv_inception.Inception3):
    """FID feature extractor: images in [-1, 1] -> 2048-d pool3 features.

    Inputs of another size are resized to 299x299 with bilinear interpolation
    (``align_corners=False``, no antialiasing), as pytorch-fid does. It has ``num_features = 2048`` so
    it plugs into ``torchmetrics``' ``FrechetInceptionDistance(feature=...)``.

    Args:
        init_weights: torchvision's truncated-normal initialisation (only matters without weights).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [-1, 1].
        - Output: :math:`(B, 2048)`.
    """

    num_features = 2048
    INPUT_SIZE = 299

    def __init__(self, init_weights: bool = True) -> None:
        blocks = [
            tv_inception.BasicConv2d,
            FIDInceptionA,
            tv_inception.InceptionB,
            FIDInceptionC,
            tv_inception.InceptionD,
            FIDInceptionE,
            tv_inception.InceptionAux,
        ]
        super().__init__(
            num_classes=1008,
            aux_logits=False,
            transform_input=False,
            inception_blocks=blocks,
            init_weights=init_weights,
        )
        self.Mixed_7c.pool = "max"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool3 features.

        Args:
            x: :math:`(B, 3, H, W)` in [-1, 1].

        Returns:
            :math:`(B, 2048)`.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"FIDInceptionV3 expects (B, 3, H, W) images in [-1, 1], got {tuple(x.shape)}")
        if x.shape[-2:] != (self.INPUT_SIZE, self.INPUT_SIZE):
            x = F.interpolate(
                x, size=(self.INPUT_SIZE, self.INPUT_SIZE), mode="bilinear", align_corners=False
            )
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.maxpool1(x)
        x = self.maxpool2(self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x)))
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        return self.avgpool(x).flatten(1)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """The 1008-way classifier on pool3 features (kept so the checkpoint's ``fc`` loads).

        Args:
            features: :math:`(B, 2048)` from :meth:`forward`.

        Returns:
            :math:`(B, 1008)`.
        """
        return self.fc(features)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike | None = None, download: bool | None = None, frozen: bool = True
    ) -> FIDInceptionV3:
        """Build the network and load ``pt_inception-2015-12-05-6726825d.pth`` (strict).

        Args:
            path: explicit file; ``None`` resolves ``"fid_inception"`` (cache, then pytorch-fid's URL).
            download: passed to :func:`~facezoo.nets.weights.resolve_weights`.
            frozen: freeze (no gradients, always eval).

        Returns:
            The loaded network.
        """
        net = cls(init_weights=False)
        net.load_state_dict(
            load_state_dict_file(resolve_weights("fid_inception", path, download)), strict=True
        )
        return net.freeze() if frozen else net
