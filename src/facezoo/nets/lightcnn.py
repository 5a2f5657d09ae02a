"""LightCNN-29 v2 (Wu, He, Sun, Tan, "A Light CNN for Deep Face Representation with Noisy Labels").

The network of the LightCNN release (``network_29layers_v2`` with residual groups ``[1, 2, 3, 4]``):
max-feature-map (MFM) convolutions, "max + avg" 2x pooling, a plain 8*8*128 -> 256 fully connected
face feature and an 80013-way classifier without bias. Parameter names equal the release's state-dict
keys after removing ``module.``, so ``LightCNN_29Layers_V2_checkpoint.pth.tar`` loads with
``strict=True``.

Input: 128x128 grayscale in [0, 1] (the release feeds ``PIL.Image.convert('L')`` through ``ToTensor``).

Example:
    >>> net = LightCNN29v2(num_classes=10).eval()
    >>> logits, feature = net(torch.rand(1, 1, 128, 128))
    >>> logits.shape, feature.shape
    (torch.Size([1, 10]), torch.Size([1, 256]))
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from facezoo.nets.weights import Freezable, load_state_dict_file, resolve_weights

__all__ = ["MaxFeatureMap", "MFMGroup", "MFMResBlock", "LightCNN29v2", "max_avg_pool", "rgb_to_lightcnn"]


class MaxFeatureMap(nn.Module):
    """Max-feature-map (MFM 2/1): a conv or linear layer with ``2 * out`` outputs, halves max-ed.

    Args:
        in_channels: input channels (or features for ``linear=True``).
        out_channels: output channels after the max.
        kernel_size, stride, padding: of the convolution.
        linear: use ``nn.Linear`` instead of ``nn.Conv2d``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)` or :math:`(B, C_{in})` when ``linear``.
        - Output: :math:`(B, C_{out}, H', W')` or :math:`(B, C_{out})`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        linear: bool = False,
    ) -> None:
        super().__init__()
        self.out_channels = out_channels
        if linear:
            self.filter: nn.Module = nn.Linear(in_channels, 2 * out_channels)
        else:
            self.filter = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, second = torch.split(self.filter(x), self.out_channels, dim=1)
        return torch.max(first, second)


class MFMGroup(nn.Module):
    """The release's ``group``: a 1x1 MFM (``conv_a``) followed by a k x k MFM (``conv``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size, stride, padding: of the second convolution.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, padding: int = 1
    ):
        super().__init__()
        self.conv_a = MaxFeatureMap(in_channels, in_channels, 1, 1, 0)
        self.conv = MaxFeatureMap(in_channels, out_channels, kernel_size, stride, padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.conv_a(x))


class MFMResBlock(nn.Module):
    """The release's ``resblock``: two 3x3 MFM convolutions plus the identity shortcut.

    Args:
        channels: input and output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = MaxFeatureMap(channels, channels)
        self.conv2 = MaxFeatureMap(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x)) + x


def max_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """LightCNN-29 v2's 2x downsampling: ``max_pool2d(x, 2) + avg_pool2d(x, 2)``.

    Args:
        x: :math:`(B, C, H, W)`.

    Returns:
        :math:`(B, C, H // 2, W // 2)`.
    """
    return F.max_pool2d(x, 2) + F.avg_pool2d(x, 2)


def rgb_to_lightcnn(images: torch.Tensor, size: int = 128) -> torch.Tensor:
    """Turn facezoo images into LightCNN input: grayscale (ITU-R 601, as PIL's ``'L'``), [0, 1], size x size.

    Args:
        images: :math:`(B, 3, H, W)` RGB or :math:`(B, 1, H, W)` gray, in [-1, 1].
        size: output side (bilinear resize when different).

    Returns:
        :math:`(B, 1, size, size)` in [0, 1].
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (B, 3, H, W) or (B, 1, H, W) images, got {tuple(images.shape)}")
    x = (images + 1) / 2
    if x.shape[1] == 3:
        weights = x.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        x = (x * weights).sum(dim=1, keepdim=True)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1)


class LightCNN29v2(Freezable, nn.Module):
    """LightCNN-29 v2 face recognition network.

    Args:
        num_classes: classifier outputs (80013 for the released checkpoint).

    Shape:
        - Input: :math:`(B, 1, 128, 128)` grayscale in [0, 1].
        - Output of ``forward``: ``(logits (B, num_classes), fc (B, 256))`` like the release.
    """

    FEATURE_DIM = 256

    def __init__(self, num_classes: int = 80013) -> None:
        super().__init__()
        self.conv1 = MaxFeatureMap(1, 48, 5, 1, 2)
        self.block1 = nn.Sequential(*[MFMResBlock(48) for _ in range(1)])
        self.group1 = MFMGroup(48, 96)
        self.block2 = nn.Sequential(*[MFMResBlock(96) for _ in range(2)])
        self.group2 = MFMGroup(96, 192)
        self.block3 = nn.Sequential(*[MFMResBlock(192) for _ in range(3)])
        self.group3 = MFMGroup(192, 128)
        self.block4 = nn.Sequential(*[MFMResBlock(128) for _ in range(4)])
        self.group4 = MFMGroup(128, 128)
        self.fc = nn.Linear(8 * 8 * 128, self.FEATURE_DIM)
        self.fc2 = nn.Linear(self.FEATURE_DIM, num_classes, bias=False)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Face feature and last pooled map (TP-GAN's identity-preserving loss uses both).

        Args:
            x: :math:`(B, 1, 128, 128)` in [0, 1].

        Returns:
            ``(fc, pool4)``: :math:`(B, 256)` and :math:`(B, 128, 8, 8)`.
        """
        if x.ndim != 4 or x.shape[1:] != (1, 128, 128):
            raise ValueError(
                f"LightCNN29v2 expects (B, 1, 128, 128) gray images in [0, 1], got {tuple(x.shape)}"
            )
        x = max_avg_pool(self.conv1(x))
        x = max_avg_pool(self.group1(self.block1(x)))
        x = max_avg_pool(self.group2(self.block2(x)))
        x = self.group4(self.block4(self.group3(self.block3(x))))
        pool4 = max_avg_pool(x)
        return self.fc(pool4.flatten(1)), pool4

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Classify faces like the release.

        Args:
            x: :math:`(B, 1, 128, 128)` in [0, 1].

        Returns:
            ``(logits, fc)``: :math:`(B, num\\_classes)` and :math:`(B, 256)`; dropout is applied to
            ``fc`` before the classifier in train mode only.
        """
        fc, _ = self.features(x)
        return self.fc2(F.dropout(fc, training=self.training)), fc

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Identity embedding of facezoo images (the protocol of :func:`facezoo.metrics.identity_similarity`).

        Args:
            images: :math:`(B, 3, H, W)` RGB (or :math:`(B, 1, H, W)`) in [-1, 1], aligned faces.

        Returns:
            The 256-d ``fc`` feature :math:`(B, 256)` (not normalised).
        """
        return self.features(rgb_to_lightcnn(images))[0]

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike | None = None,
        download: bool | None = None,
        frozen: bool = True,
        num_classes: int = 80013,
    ) -> LightCNN29v2:
        """Build the network and load ``LightCNN_29Layers_V2_checkpoint.pth.tar`` (strict).

        Args:
            path: explicit checkpoint; ``None`` resolves ``"lightcnn29_v2"`` from the cache.
            download: passed to :func:`~facezoo.nets.weights.resolve_weights` (there is no direct URL).
            frozen: freeze (no gradients, always eval).
            num_classes: classifier size of the checkpoint.

        Returns:
            The loaded network.
        """
        net = cls(num_classes=num_classes)
        net.load_state_dict(
            load_state_dict_file(resolve_weights("lightcnn29_v2", path, download)), strict=True
        )
        return net.freeze() if frozen else net


class LightCNNFeatures(nn.Module):
    """LightCNN's ``(fc vector, last pooled map)`` of grey 128² faces in [0, 1]: the two features the
    identity-preserving losses of TP-GAN and GANnotation compare (see ``losses.IdentityLoss.from_lightcnn``).

    Shape:
        - Input: :math:`(B, 1, 128, 128)` in [0, 1].
        - Output: ``((B, 256), (B, 128, 8, 8))``.
    """

    def __init__(self, net: LightCNN29v2) -> None:
        super().__init__()
        self.net = net

    def forward(self, gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net.features(gray)
