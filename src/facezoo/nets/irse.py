"""ArcFace IR-SE backbones (Deng et al. ArcFace; the InsightFace_Pytorch port that pSp uses).

``IRSE50`` is pSp's ``Backbone(input_size=112, num_layers=50, mode='ir_se')``: a conv3 stem
(``input_layer``), a ``body`` of 3/4/14/3 bottleneck units at 64/128/256/512 channels with
squeeze-and-excitation, and an ``output_layer`` (BN2d, Dropout, Flatten, Linear 512*7*7 -> 512, BN1d),
followed by L2 normalisation. Parameter names equal the keys of ``model_ir_se50.pth``.

pSp's encoder reuses ``input_layer`` and ``body`` on 256x256 inputs and taps units 6, 20 and 23
(:meth:`Backbone.body_features`).

Example:
    >>> [len(stage) for stage in get_blocks(50)]
    [3, 4, 14, 3]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from facezoo.nets.weights import Freezable, load_state_dict_file, resolve_weights

__all__ = [
    "BottleneckSpec",
    "get_blocks",
    "scaled",
    "SEModule",
    "BottleneckIR",
    "BottleneckIRSE",
    "Backbone",
    "IRSE50",
    "PSP_TAPS",
]

#: Body units whose outputs pSp's GradualStyleEncoder taps (c1, c2, c3).
PSP_TAPS = (6, 20, 23)


class BottleneckSpec(NamedTuple):
    """One body unit: input channels, output channels (``depth``) and stride."""

    in_channel: int
    depth: int
    stride: int


def _stage(in_channel: int, depth: int, num_units: int, stride: int = 2) -> list[BottleneckSpec]:
    return [BottleneckSpec(in_channel, depth, stride)] + [BottleneckSpec(depth, depth, 1)] * (num_units - 1)


def get_blocks(num_layers: int, width: float = 1.0) -> list[list[BottleneckSpec]]:
    """Stages of the IR backbones: each stage starts with a stride-2 unit.

    Args:
        num_layers: 50, 100 or 152.
        width: channel scale (1 = ArcFace's 64/128/256/512; facezoo's small CPU encoders use less), at least
            16 channels a stage.

    Returns:
        Four stages of :class:`BottleneckSpec` at 64/128/256/512 channels (times ``width``).
    """
    units = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
    if num_layers not in units:
        raise ValueError(f"num_layers must be one of {sorted(units)}, got {num_layers}")
    c = lambda channels: scaled(channels, width)  # noqa: E731
    n1, n2, n3, n4 = units[num_layers]
    return [_stage(c(64), c(64), n1), _stage(c(64), c(128), n2), _stage(c(128), c(256), n3),
            _stage(c(256), c(512), n4)]


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 16 (one squeeze-and-excitation channel): the IR widths of ``width``."""
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width}")
    return max(16, round(channels * width))


class SEModule(nn.Module):
    """Squeeze-and-excitation: channel gates from global average pooling and two bias-free 1x1 convs.

    Args:
        channels: feature channels.
        reduction: bottleneck reduction (16 in IR-SE).

    Shape:
        - Input / Output: :math:`(B, C, H, W)`.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * gate


class BottleneckIR(nn.Module):
    """Improved residual unit (pre-BN, conv3, PReLU, strided conv3, BN) with a shortcut.

    The shortcut is a strided 1x1 max-pool (identity subsampling) when channels match, else a strided
    1x1 conv + BN.

    Args:
        in_channel: input channels.
        depth: output channels.
        stride: 1 or 2 (applied by the second conv and the shortcut).

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`; Output: :math:`(B, depth, H / s, W / s)`.
    """

    use_se = False

    def __init__(self, in_channel: int, depth: int, stride: int) -> None:
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channel, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        layers: list[nn.Module] = [
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
        ]
        if self.use_se:
            layers.append(SEModule(depth, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class BottleneckIRSE(BottleneckIR):
    """:class:`BottleneckIR` with an :class:`SEModule` at the end of the residual branch (``res_layer.5``)."""

    use_se = True


class Backbone(Freezable, nn.Module):
    """ArcFace IR / IR-SE backbone returning L2-normalised 512-d embeddings.

    Args:
        input_size: 112 or 224 (sets the linear layer to 512*7*7 or 512*14*14).
        num_layers: 50, 100 or 152.
        mode: ``"ir"`` or ``"ir_se"``.
        drop_ratio: dropout before the linear layer.
        affine: affine final BatchNorm1d.

    Shape:
        - Input: :math:`(B, 3, S, S)` RGB in [-1, 1] with ``S = input_size``.
        - Output: :math:`(B, 512)`, unit L2 norm.
    """

    EMBEDDING_DIM = 512

    def __init__(
        self,
        input_size: int = 112,
        num_layers: int = 50,
        mode: str = "ir_se",
        drop_ratio: float = 0.4,
        affine: bool = True,
    ) -> None:
        super().__init__()
        if input_size not in (112, 224):
            raise ValueError(f"input_size must be 112 or 224, got {input_size}")
        if mode not in ("ir", "ir_se"):
            raise ValueError(f"mode must be 'ir' or 'ir_se', got {mode!r}")
        unit = BottleneckIRSE if mode == "ir_se" else BottleneckIR
        self.input_size = input_size
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)
        )
        self.body = nn.Sequential(*[unit(*spec) for stage in get_blocks(num_layers) for spec in stage])
        side = input_size // 16
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(512),
            nn.Dropout(drop_ratio),
            nn.Flatten(),
            nn.Linear(512 * side * side, self.EMBEDDING_DIM),
            nn.BatchNorm1d(self.EMBEDDING_DIM, affine=affine),
        )

    def body_features(self, x: torch.Tensor, units: Sequence[int] = PSP_TAPS) -> list[torch.Tensor]:
        """Outputs of selected body units (after the stem), for pSp's feature pyramid.

        Args:
            x: :math:`(B, 3, H, W)` in [-1, 1]; any size divisible by 16.
            units: body unit indices, e.g. ``(6, 20, 23)``: 128 ch at H/4, 256 ch at H/8, 512 ch at H/16.

        Returns:
            One tensor per index, in the order of ``units``.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(x.shape)}")
        bad = [u for u in units if not 0 <= u < len(self.body)]
        if bad:
            raise ValueError(f"unit indices {bad} outside the body's 0..{len(self.body) - 1}")
        taps: dict[int, torch.Tensor] = {}
        x = self.input_layer(x)
        for index, unit in enumerate(self.body[: max(units) + 1]):
            x = unit(x)
            taps[index] = x
        return [taps[u] for u in units]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed aligned faces.

        Args:
            x: :math:`(B, 3, S, S)` in [-1, 1], ``S = input_size``.

        Returns:
            :math:`(B, 512)` unit-norm embeddings.
        """
        if x.ndim != 4 or x.shape[1:] != (3, self.input_size, self.input_size):
            raise ValueError(
                f"expected (B, 3, {self.input_size}, {self.input_size}) images, got {tuple(x.shape)}"
            )
        x = self.output_layer(self.body(self.input_layer(x)))
        return F.normalize(x, p=2, dim=1, eps=0.0)

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Identity embedding of facezoo images of any size (pSp pools them to the input size).

        Args:
            images: :math:`(B, 3, H, W)` in [-1, 1], aligned face crops (pSp crops ``[35:223, 32:220]``
                of 256x256 FFHQ-aligned images first).

        Returns:
            :math:`(B, 512)` unit-norm embeddings.
        """
        if images.ndim != 4:
            raise ValueError(f"expected (B, 3, H, W) images, got {tuple(images.shape)}")
        size = (self.input_size, self.input_size)
        if images.shape[-2:] != size:
            if min(images.shape[-2:]) >= self.input_size:
                images = F.adaptive_avg_pool2d(images, size)
            else:
                images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        return self(images)


class IRSE50(Backbone):
    """ArcFace IR-SE50 at 112x112, as pSp's ID loss uses it (``model_ir_se50.pth``).

    Args:
        drop_ratio: dropout before the linear layer (inactive in eval mode).

    Shape:
        - Input: :math:`(B, 3, 112, 112)` in [-1, 1]; Output: :math:`(B, 512)` unit norm.
    """

    def __init__(self, drop_ratio: float = 0.4) -> None:
        super().__init__(input_size=112, num_layers=50, mode="ir_se", drop_ratio=drop_ratio, affine=True)

    @classmethod
    def from_pretrained(
        cls, path: str | os.PathLike | None = None, download: bool | None = None, frozen: bool = True
    ) -> IRSE50:
        """Build IR-SE50 and load ``model_ir_se50.pth`` (strict).

        Args:
            path: explicit file; ``None`` resolves ``"ir_se50"`` from the cache.
            download: passed to :func:`~facezoo.nets.weights.resolve_weights` (there is no direct URL).
            frozen: freeze (no gradients, always eval).

        Returns:
            The loaded network.
        """
        net = cls()
        net.load_state_dict(load_state_dict_file(resolve_weights("ir_se50", path, download)), strict=True)
        return net.freeze() if frozen else net
