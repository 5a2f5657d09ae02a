"""TP-GAN networks: the two-pathway generator and the local patch discriminator.

TP-GAN (Huang et al., "Beyond Face Rotation", ICCV 2017) turns a profile face into a frontal one with two
pathways: a **global pathway** (an encoder-decoder on the whole, mirror-concatenated face that also yields a
256-d identity feature) and four **local pathways** (one small U-Net per landmark patch: the two eyes, the
nose, the mouth). The rotated patches are pasted onto a face canvas by the **local fuser** and concatenated
into the last stage of the global decoder.

The layer structure follows the official TensorFlow code (``HRLTY/TP-GAN: TP_GAN-Mar6FS.py`` —
``generator``, ``decoder``, ``partRotator``, ``partCombiner``, ``FeaturePredict``, ``discriminatorLocal``;
``ops.py`` — ``conv2d``, ``deconv2d``, ``resblock``, ``linear``), summarised in
``shared/reference/methods.md`` section 5.1:

* convolutions use TensorFlow ``SAME`` padding (:class:`Conv2dSame`) and transposed convolutions the matching
  ``conv2d_transpose`` geometry (:class:`ConvTranspose2dSame`), so every skip connection lines up for any
  patch size, including the non-multiple-of-8 sizes of smaller images;
* BatchNorm (eps 1e-5, TF decay 0.9 = PyTorch momentum 0.1) + LeakyReLU(0.2) everywhere, except that the
  decoder's "initial" maps and its up-sampling deconvolutions use ReLU, as in TF;
* initialisation as in TF: convolutions truncated-normal(0, 0.02), transposed convolutions and linear layers
  normal(0, 0.02), biases 0 except the three ``bias_start=0.1`` linear layers.

Known deviations from the TF graph (none affects the layer list or the parameter count):

* NCHW layout, so the encoder's flatten before the feature FC runs over (C, H, W) instead of (H, W, C);
* the bilinear resizes (input copies at s/2 and s/4, the up-sampled intermediate outputs) use PyTorch's
  half-pixel ``align_corners=False`` grid, while TF 0.12's ``resize_bilinear`` used the legacy corner grid;
* ``width`` scales every channel count (minimum 8), so ``width=1`` is the official network and a CPU preset
  can use ``width=0.25``.

No pretrained TP-GAN weights were ever released (``HRLTY/TP-GAN#1``): these modules train from scratch.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PART_NAMES",
    "part_geometry",
    "part_boxes",
    "scaled_channels",
    "same_padding",
    "Conv2dSame",
    "ConvTranspose2dSame",
    "Linear",
    "ConvLayer",
    "DeconvLayer",
    "ResidualBlock",
    "Maxout",
    "LocalPathway",
    "LocalFuser",
    "GlobalEncoder",
    "IdentityHead",
    "GlobalDecoder",
    "GlobalPathway",
    "TPGANGenerator",
    "Discriminator",
]

# ----------------------------------------------------------------------------------------------------------
# Part geometry
# ----------------------------------------------------------------------------------------------------------

#: The four facial parts of the local pathways. "left"/"right" are image sides: ``left_eye`` is the eye on
#: the image left (iBUG-68 points 36-41), as in TP-GAN's ``eyel``.
PART_NAMES: tuple[str, ...] = ("left_eye", "right_eye", "nose", "mouth")

_OFFICIAL_IMAGE_SIZE = 128
# ``partCombiner`` centres (x, y), rounded from the mean 5-point landmarks of the 128 crop
# (43.58, 41.0), (86.42, 41.0), (64.12, 64.75) and the mouth corners (47.59, 88.86) / (82.59, 89.11).
_OFFICIAL_CENTERS: dict[str, tuple[float, float]] = {
    "left_eye": (44.0, 41.0),
    "right_eye": (86.0, 41.0),
    "nose": (64.0, 65.0),
    "mouth": (65.0, 89.0),
}
# ``EYE_H, EYE_W = 40, 40``; ``NOSE_H, NOSE_W = 32, 40``; ``MOUTH_H, MOUTH_W = 32, 48`` (H, W).
_OFFICIAL_SIZES: dict[str, tuple[int, int]] = {
    "left_eye": (40, 40),
    "right_eye": (40, 40),
    "nose": (32, 40),
    "mouth": (32, 48),
}


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def part_geometry(image_size: int = 128) -> dict[str, tuple[tuple[float, float], tuple[int, int]]]:
    r"""Fixed centre and patch size of each facial part on the frontal canvas.

    At 128 px these are the official TF numbers (``partCombiner`` centres, ``EYE_H``... patch sizes). Other
    image sizes scale them linearly by ``image_size / 128``; patch sizes are rounded to even integers.

    The centres are in the official convention: the part box of a patch of size (h, w) centred at (cx, cy)
    starts at row ``cy - h / 2 - 1`` and column ``cx - w / 2 - 1`` (0-based), see :func:`part_boxes`.

    Args:
        image_size: side of the square face crop, in pixels (positive).

    Returns:
        ``{name: ((cx, cy), (h, w))}`` for every name of :data:`PART_NAMES`, in that order.

    Example:
        >>> part_geometry(128)["mouth"]
        ((65.0, 89.0), (32, 48))
        >>> part_geometry(64)["left_eye"]
        ((22.0, 20.5), (20, 20))
    """
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    scale = image_size / _OFFICIAL_IMAGE_SIZE
    geometry = {}
    for name in PART_NAMES:
        cx, cy = _OFFICIAL_CENTERS[name]
        h, w = _OFFICIAL_SIZES[name]
        size = (max(2, 2 * _round_half_up(h * scale / 2)), max(2, 2 * _round_half_up(w * scale / 2)))
        geometry[name] = ((cx * scale, cy * scale), size)
    return geometry


def part_boxes(image_size: int = 128) -> dict[str, tuple[int, int, int, int]]:
    r"""Integer boxes where the local fuser pastes each part, as in the official ``partCombiner``.

    The official code pads a patch of size (h, w) with ``cy - h/2 - 1`` rows above and ``cx - w/2 - 1``
    columns to the left; other sizes use the scaled :func:`part_geometry` and round those offsets half up.

    Args:
        image_size: side of the square face crop, in pixels.

    Returns:
        ``{name: (top, left, h, w)}``, 0-based pixel indices; the part covers rows ``top:top + h`` and columns
        ``left:left + w``.

    Raises:
        ValueError: if a box does not fit inside the ``image_size`` canvas (tiny images).

    Example:
        >>> part_boxes(128)["left_eye"]
        (20, 23, 40, 40)
    """
    boxes = {}
    for name, ((cx, cy), (h, w)) in part_geometry(image_size).items():
        top = _round_half_up(cy - h / 2 - 1)
        left = _round_half_up(cx - w / 2 - 1)
        if top < 0 or left < 0 or top + h > image_size or left + w > image_size:
            raise ValueError(f"part {name!r} box {(top, left, h, w)} does not fit a {image_size} px canvas")
        boxes[name] = (top, left, h, w)
    return boxes


def scaled_channels(channels: int, width: float) -> int:
    r"""Channel count of an official layer with ``channels`` channels in a network of relative ``width``.

    Args:
        channels: the official (``width=1``) channel count.
        width: width multiplier (positive).

    Returns:
        ``max(8, round(channels * width))``.

    Example:
        >>> scaled_channels(512, 0.25), scaled_channels(16, 0.25)
        (128, 8)
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return max(8, int(round(channels * width)))


# ----------------------------------------------------------------------------------------------------------
# TensorFlow-geometry layers
# ----------------------------------------------------------------------------------------------------------


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    r"""Padding (before, after) of TensorFlow's ``SAME`` convolution along one axis.

    The output has ``ceil(size / stride)`` samples; the total padding
    ``max((out - 1) * stride + kernel - size, 0)`` is split with the smaller half before (top/left).

    Args:
        size: input length along the axis.
        kernel: kernel length.
        stride: stride.

    Returns:
        ``(before, after)`` padding, non-negative ints.

    Example:
        >>> same_padding(128, 3, 2), same_padding(8, 2, 1), same_padding(5, 3, 2)
        ((0, 1), (0, 1), (1, 1))
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class Conv2dSame(nn.Conv2d):
    r"""2-D convolution with TensorFlow ``SAME`` padding (``ops.py: conv2d``), initialised as in TF.

    Weights are truncated-normal(0, 0.02) cut at two standard deviations, biases 0.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side.
        stride: stride.
        bias: whether to add a learned bias (TF always has one).

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, \lceil H / s \rceil, \lceil W / s \rceil)`

    Example:
        >>> Conv2dSame(3, 8, 3, stride=2)(torch.zeros(1, 3, 5, 6)).shape
        torch.Size([1, 8, 3, 3])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.weight, mean=0.0, std=0.02, a=-0.04, b=0.04)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 4 or input.shape[1] != self.in_channels:
            raise ValueError(f"expected a (B, {self.in_channels}, H, W) tensor, got {tuple(input.shape)}")
        top, bottom = same_padding(input.shape[-2], self.kernel_size[0], self.stride[0])
        left, right = same_padding(input.shape[-1], self.kernel_size[1], self.stride[1])
        if top == bottom and left == right:
            return F.conv2d(input, self.weight, self.bias, self.stride, (top, left))
        return F.conv2d(F.pad(input, (left, right, top, bottom)), self.weight, self.bias, self.stride)


class ConvTranspose2dSame(nn.ConvTranspose2d):
    r"""Transposed convolution with TensorFlow's ``conv2d_transpose(..., padding="SAME")`` geometry.

    The output size is given at call time (as in TF's ``output_shape``); it must satisfy
    ``ceil(out / stride) == in`` on both axes. The layer is the exact adjoint of :class:`Conv2dSame` with
    the same weight (without bias): the full transposed output is cropped by the ``SAME`` padding of the
    matching forward convolution, positions the forward convolution never reads are zero, then the bias is
    added. This lets a U-Net decoder land exactly on the encoder's skip sizes (e.g. 3 -> 5 -> 10 -> 20).
    Weights are normal(0, 0.02) (``ops.py: deconv2d``), biases 0.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side.
        stride: stride (the up-sampling factor).
        bias: whether to add a learned bias.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, H_{out}, W_{out})` with ``(H_out, W_out) = output_size``.

    Example:
        >>> ConvTranspose2dSame(8, 4, 3, stride=2)(torch.zeros(1, 8, 3, 3), (5, 6)).shape
        torch.Size([1, 4, 5, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, mean=0.0, std=0.02)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, input: Tensor, output_size: Sequence[int]) -> Tensor:  # type: ignore[override]
        if input.dim() != 4 or input.shape[1] != self.in_channels:
            raise ValueError(f"expected a (B, {self.in_channels}, H, W) tensor, got {tuple(input.shape)}")
        out_h, out_w = (int(s) for s in output_size[-2:])
        pads = []
        for axis, out, kernel, stride in ((-1, out_w, self.kernel_size[1], self.stride[1]),
                                          (-2, out_h, self.kernel_size[0], self.stride[0])):
            size = input.shape[axis]
            if -(-out // stride) != size:
                raise ValueError(
                    f"output size {out} is not reachable from {size} with stride {stride} "
                    f"(need ceil(out / stride) == in)"
                )
            before, _ = same_padding(out, kernel, stride)
            full = (size - 1) * stride + kernel
            pads += [-before, out - (full - before)]  # negative pads crop, positive pads add zeros
        full_output = F.conv_transpose2d(input, self.weight, None, self.stride)
        output = F.pad(full_output, pads)
        if self.bias is not None:
            output = output + self.bias.view(1, -1, 1, 1)
        return output


class Linear(nn.Linear):
    r"""Fully connected layer initialised as TF's ``ops.py: linear``: weights normal(0, 0.02), bias constant.

    Args:
        in_features: input size.
        out_features: output size.
        bias_start: initial bias value (TF's ``bias_start``; 0.1 in TP-GAN's three linear layers).

    Shape:
        - Input: :math:`(B, in)`
        - Output: :math:`(B, out)`
    """

    def __init__(self, in_features: int, out_features: int, bias_start: float = 0.0):
        super().__init__(in_features, out_features)
        self.bias_start = bias_start
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, mean=0.0, std=0.02)
        nn.init.constant_(self.bias, getattr(self, "bias_start", 0.0))


def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")


def _activation(activation: str | None) -> nn.Module:
    if activation == "lrelu":
        return nn.LeakyReLU(0.2)
    if activation == "relu":
        return nn.ReLU()
    if activation is None:
        return nn.Identity()
    raise ValueError(f"activation must be 'lrelu', 'relu' or None, got {activation!r}")


class ConvLayer(nn.Sequential):
    r"""``act(norm(conv(x)))`` with a TF-``SAME`` convolution: TF's ``lrelu(batch_norm(conv2d(...)))``.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side.
        stride: stride.
        norm: ``"batch"`` or ``"none"`` (use ``"none"`` for the layers TF leaves without BN).
        activation: ``"lrelu"`` (slope 0.2), ``"relu"`` or ``None``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, \lceil H / s \rceil, \lceil W / s \rceil)`
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 norm: str = "batch", activation: str | None = "lrelu"):
        super().__init__(
            Conv2dSame(in_channels, out_channels, kernel_size, stride),
            _norm(norm, out_channels),
            _activation(activation),
        )


class DeconvLayer(nn.Module):
    r"""``act(norm(deconv(x, output_size)))`` with a :class:`ConvTranspose2dSame`.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side (3 in TP-GAN).
        stride: up-sampling factor.
        norm: ``"batch"`` or ``"none"``.
        activation: ``"lrelu"``, ``"relu"`` or ``None``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, H_{out}, W_{out})`, ``output_size = (H_out, W_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2,
                 norm: str = "batch", activation: str | None = "lrelu"):
        super().__init__()
        self.deconv = ConvTranspose2dSame(in_channels, out_channels, kernel_size, stride)
        self.norm = _norm(norm, out_channels)
        self.act = _activation(activation)

    def forward(self, input: Tensor, output_size: Sequence[int]) -> Tensor:
        return self.act(self.norm(self.deconv(input, output_size)))


class ResidualBlock(nn.Module):
    r"""TP-GAN residual block (``ops.py: resblock``): ``lrelu(x + bn(conv(lrelu(bn(conv(x))))))``.

    Both convolutions keep the channel count and use stride 1 with TF ``SAME`` padding (so even kernels,
    e.g. the decoder's 2x2 blocks at s/16, pad one pixel at the bottom/right).

    Args:
        channels: input = output channels.
        kernel_size: square kernel side (2, 3, 5 or 7 in TP-GAN).
        norm: ``"batch"`` or ``"none"``.

    Shape:
        - Input: :math:`(B, C, H, W)`
        - Output: :math:`(B, C, H, W)`

    Example:
        >>> ResidualBlock(8, 3)(torch.zeros(2, 8, 5, 7)).shape
        torch.Size([2, 8, 5, 7])
    """

    def __init__(self, channels: int, kernel_size: int = 3, norm: str = "batch"):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size, 1, norm, "lrelu")
        self.conv2 = ConvLayer(channels, channels, kernel_size, 1, norm, None)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, input: Tensor) -> Tensor:
        return self.act(input + self.conv2(self.conv1(input)))


class Maxout(nn.Module):
    r"""Maxout over two halves of the feature vector, as TP-GAN's encoder does it.

    TF: ``tf.maximum(c7_l[:, 0:256], c7_l[:, 256:])``, i.e. unit ``i`` is the max of units ``i`` and
    ``i + D/2`` (not of adjacent units).

    Shape:
        - Input: :math:`(B, 2D)`
        - Output: :math:`(B, D)`

    Example:
        >>> Maxout()(torch.tensor([[1.0, 5.0, 3.0, 2.0]]))
        tensor([[3., 5.]])
    """

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 2 or input.shape[1] % 2:
            raise ValueError(f"expected a (B, 2D) tensor, got {tuple(input.shape)}")
        first, second = input.chunk(2, dim=1)
        return torch.maximum(first, second)


def _resize(input: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(input.shape[-2:]) == tuple(size):
        return input
    return F.interpolate(input, size=size, mode="bilinear", align_corners=False)


def _check_image(name: str, tensor: Tensor, channels: int, size: tuple[int, int] | None = None) -> None:
    if not isinstance(tensor, Tensor) or tensor.dim() != 4 or tensor.shape[1] != channels:
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise ValueError(f"{name} must be a (B, {channels}, H, W) tensor, got {shape}")
    if size is not None and tuple(tensor.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} must be {size[0]}x{size[1]}, got {tuple(tensor.shape[-2:])}")


# ----------------------------------------------------------------------------------------------------------
# Local pathway
# ----------------------------------------------------------------------------------------------------------


class LocalPathway(nn.Module):
    r"""One part rotator (TF ``partRotator``): a small U-Net that frontalises a landmark patch.

    Encoder: conv3 -> 64 + res; three stride-2 conv3 (-> 128 -> 256 -> 512), each followed by a res block
    (two at the bottleneck). Decoder: three deconvolutions (-> 256 -> 128 -> 64), each concatenated with the
    encoder feature of the same size, fused by a conv3 and refined by a res block. The last 64-channel map is
    the part feature; a conv3 + tanh gives the rotated RGB patch. Any patch size works (the deconvolutions
    land on the skip sizes), e.g. 40x40, 32x48 at 128 px or 20x20, 16x24 at 64 px.

    Args:
        in_channels: input channels (3, or 6 for TF's right-eye net fed with [right, left] eye patches).
        width: channel multiplier (1 = official).
        norm: ``"batch"`` (official) or ``"none"``.

    Returns:
        ``(feature, patch)`` from :meth:`forward`.

    Shape:
        - Input: :math:`(B, C_{in}, h, w)` in [-1, 1]
        - Output: feature :math:`(B, 64 \cdot width, h, w)`, patch :math:`(B, 3, h, w)` in [-1, 1]

    Example:
        >>> feature, patch = LocalPathway(width=0.125)(torch.zeros(2, 3, 16, 24))
        >>> feature.shape, patch.shape
        (torch.Size([2, 8, 16, 24]), torch.Size([2, 3, 16, 24]))
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, norm: str = "batch"):
        super().__init__()
        c64, c128, c256, c512 = (scaled_channels(c, width) for c in (64, 128, 256, 512))
        self.in_channels = in_channels
        self.out_channels = c64
        self.conv0 = ConvLayer(in_channels, c64, 3, 1, "none")
        self.res0 = ResidualBlock(c64, 3, norm)
        self.down1 = ConvLayer(c64, c128, 3, 2, norm)
        self.res1 = ResidualBlock(c128, 3, norm)
        self.down2 = ConvLayer(c128, c256, 3, 2, norm)
        self.res2 = ResidualBlock(c256, 3, norm)
        self.down3 = ConvLayer(c256, c512, 3, 2, norm)
        self.res3 = nn.Sequential(ResidualBlock(c512, 3, norm), ResidualBlock(c512, 3, norm))
        self.up1 = DeconvLayer(c512, c256, 3, 2, norm)
        self.fuse1 = ConvLayer(2 * c256, c256, 3, 1, norm)
        self.res_up1 = ResidualBlock(c256, 3, norm)
        self.up2 = DeconvLayer(c256, c128, 3, 2, norm)
        self.fuse2 = ConvLayer(2 * c128, c128, 3, 1, norm)
        self.res_up2 = ResidualBlock(c128, 3, norm)
        self.up3 = DeconvLayer(c128, c64, 3, 2, norm)
        self.fuse3 = ConvLayer(2 * c64, c64, 3, 1, norm)
        self.res_up3 = ResidualBlock(c64, 3, norm)
        self.to_rgb = ConvLayer(c64, 3, 3, 1, "none", None)

    def forward(self, patch: Tensor) -> tuple[Tensor, Tensor]:
        _check_image("patch", patch, self.in_channels)
        skip0 = self.res0(self.conv0(patch))
        skip1 = self.res1(self.down1(skip0))
        skip2 = self.res2(self.down2(skip1))
        bottleneck = self.res3(self.down3(skip2))
        up = self.up1(bottleneck, skip2.shape[-2:])
        up = self.res_up1(self.fuse1(torch.cat([up, skip2], 1)))
        up = self.up2(up, skip1.shape[-2:])
        up = self.res_up2(self.fuse2(torch.cat([up, skip1], 1)))
        up = self.up3(up, skip0.shape[-2:])
        feature = self.res_up3(self.fuse3(torch.cat([up, skip0], 1)))
        return feature, torch.tanh(self.to_rgb(feature))


class LocalFuser(nn.Module):
    r"""Pastes the four part maps onto a face canvas and fuses them by element-wise max (``partCombiner``).

    Each map is zero-padded to ``image_size`` at its fixed box (:func:`part_boxes`) and the four canvases are
    combined with ``max``. As in TF, the zero padding takes part in the max: outside every box the result is
    0, and a pixel covered by some of the boxes gets the max of those parts' values and 0 (so negative values,
    e.g. dark tanh RGB, are clipped to 0). Works for any channel count (64-ch features, 3-ch RGB patches).

    Args:
        image_size: side of the square canvas.

    Shape:
        - Input: ``{name: (B, C, h_name, w_name)}`` for every name of :data:`PART_NAMES`, sizes as in
          :func:`part_geometry`.
        - Output: :math:`(B, C, S, S)`.

    Example:
        >>> fuser = LocalFuser(64)
        >>> parts = {n: torch.ones(1, 5, *s) for n, (_, s) in part_geometry(64).items()}
        >>> fuser(parts).shape
        torch.Size([1, 5, 64, 64])
    """

    def __init__(self, image_size: int = 128):
        super().__init__()
        self.image_size = image_size
        self.boxes = part_boxes(image_size)

    def forward(self, parts: Mapping[str, Tensor]) -> Tensor:
        missing = [name for name in PART_NAMES if name not in parts]
        if missing:
            raise ValueError(f"parts is missing {missing}; expected keys {PART_NAMES}")
        reference = parts[PART_NAMES[0]]
        canvases = []
        for name in PART_NAMES:
            top, left, h, w = self.boxes[name]
            part = parts[name]
            _check_image(f"parts[{name!r}]", part, reference.shape[1], (h, w))
            if part.shape[0] != reference.shape[0]:
                raise ValueError(f"parts have different batch sizes: {part.shape[0]} vs {reference.shape[0]}")
            size = self.image_size
            canvases.append(F.pad(part, (left, size - left - w, top, size - top - h)))
        return torch.stack(canvases, 0).amax(0)


# ----------------------------------------------------------------------------------------------------------
# Global pathway
# ----------------------------------------------------------------------------------------------------------


class GlobalEncoder(nn.Module):
    r"""Global-pathway encoder (TF ``generator``): skip features at five scales and the identity feature.

    conv7 -> 64 + res7 at s; conv5 s2 -> 64 + res5 at s/2; conv3 s2 -> 128 + res at s/4;
    conv3 s2 -> 256 + res at s/8; conv3 s2 -> 512 + 4 res at s/16;
    FC (s/16)^2 * 512 -> 2 * feature_dim (bias 0.1); maxout -> feature.

    Args:
        in_channels: input channels (6: the image and its mirror).
        width: channel multiplier.
        feature_dim: identity feature size (256).
        image_size: input side ``s`` (a multiple of 16).
        norm: ``"batch"`` or ``"none"``.

    Returns:
        ``(skips, feature)`` from :meth:`forward`, ``skips`` ordered s, s/2, s/4, s/8, s/16.

    Shape:
        - Input: :math:`(B, C_{in}, s, s)`
        - Output: skips with (64, 64, 128, 256, 512) * width channels, feature :math:`(B, feature\_dim)`
    """

    def __init__(self, in_channels: int = 6, width: float = 1.0, feature_dim: int = 256,
                 image_size: int = 128, norm: str = "batch"):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {image_size}")
        c64, c128, c256, c512 = (scaled_channels(c, width) for c in (64, 128, 256, 512))
        self.in_channels = in_channels
        self.image_size = image_size
        self.channels = (c64, c64, c128, c256, c512)
        self.conv0 = ConvLayer(in_channels, c64, 7, 1, "none")
        self.res0 = ResidualBlock(c64, 7, norm)
        self.conv1 = ConvLayer(c64, c64, 5, 2, norm)
        self.res1 = ResidualBlock(c64, 5, norm)
        self.conv2 = ConvLayer(c64, c128, 3, 2, norm)
        self.res2 = ResidualBlock(c128, 3, norm)
        self.conv3 = ConvLayer(c128, c256, 3, 2, norm)
        self.res3 = ResidualBlock(c256, 3, norm)
        self.conv4 = ConvLayer(c256, c512, 3, 2, norm)
        self.res4 = nn.Sequential(*(ResidualBlock(c512, 3, norm) for _ in range(4)))
        self.fc = Linear((image_size // 16) ** 2 * c512, 2 * feature_dim, bias_start=0.1)
        self.maxout = Maxout()

    def forward(self, input: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        _check_image("input", input, self.in_channels, (self.image_size, self.image_size))
        feat_s = self.res0(self.conv0(input))
        feat_s2 = self.res1(self.conv1(feat_s))
        feat_s4 = self.res2(self.conv2(feat_s2))
        feat_s8 = self.res3(self.conv3(feat_s4))
        feat_s16 = self.res4(self.conv4(feat_s8))
        feature = self.maxout(self.fc(feat_s16.flatten(1)))
        return (feat_s, feat_s2, feat_s4, feat_s8, feat_s16), feature


class IdentityHead(nn.Module):
    r"""Identity classifier on the encoder feature (TF ``FeaturePredict``): dropout, then a linear layer.

    TF uses ``keep_prob=0.3`` (dropout p = 0.7) and a bias start of 0.1; the logits feed TP-GAN's identity
    cross-entropy.

    Args:
        feature_dim: identity feature size.
        num_classes: number of training identities (340 in the TF code).
        dropout: drop probability (0.7).

    Shape:
        - Input: :math:`(B, feature\_dim)`
        - Output: :math:`(B, num\_classes)` logits
    """

    def __init__(self, feature_dim: int = 256, num_classes: int = 340, dropout: float = 0.7):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = Linear(feature_dim, num_classes, bias_start=0.1)

    def forward(self, feature: Tensor) -> Tensor:
        if feature.dim() != 2 or feature.shape[1] != self.fc.in_features:
            raise ValueError(f"feature must be (B, {self.fc.in_features}), got {tuple(feature.shape)}")
        return self.fc(self.dropout(feature))


class GlobalDecoder(nn.Module):
    r"""Decoder of the global pathway (TF ``decoder``), producing the frontal face at s/4, s/2 and s.

    * "initial" maps: FC([feature, z]) -> (s/16)^2 * 64 (bias 0.1, ReLU), deconvolved (ReLU, no BN) to
      s/4 x 32, s/2 x 16 and s x 8 channels;
    * s/16: res2([initial, enc]) then res2, res2 (2x2 kernels);
    * s/8: deconv -> 512 (BN, ReLU) ⊕ res(enc) -> res, res;
    * s/4: deconv -> 256 ⊕ res([enc, input_s/4, initial_s/4]) -> res, res -> conv3 + tanh = ``image_quarter``;
    * s/2: deconv -> 128 ⊕ res5([enc, input_s/2, initial_s/2]) ⊕ up(image_quarter) -> res, res -> conv3 + tanh
      = ``image_half``;
    * s: deconv -> 64 ⊕ res7([enc, initial_s, input]) ⊕ fused local features ⊕ fused local RGB ⊕
      up(image_half) -> res5 -> conv5 -> 64 -> res -> conv3 -> 32 -> conv3 + tanh = ``image``.

    Args:
        in_channels: channels of the (mirror-concatenated) input copies concatenated at s/4, s/2, s (6).
        width: channel multiplier.
        zdim: noise size (100 in TF).
        feature_dim: identity feature size (256).
        image_size: output side ``s`` (a multiple of 16).
        local_channels: channels of the fused local features (``scaled_channels(64, width)``), or 0 when the
            local pathway is disabled (then neither local features nor local RGB are concatenated).
        norm: ``"batch"`` or ``"none"``.

    Shape:
        - Input: encoder skips (as :class:`GlobalEncoder` returns), feature :math:`(B, feature\_dim)`,
          z :math:`(B, zdim)`, input :math:`(B, C_{in}, s, s)`, local feature :math:`(B, C_{loc}, s, s)` and
          local RGB :math:`(B, 3, s, s)`
        - Output: images :math:`(B, 3, s, s)`, :math:`(B, 3, s/2, s/2)`, :math:`(B, 3, s/4, s/4)` in [-1, 1]
    """

    def __init__(self, in_channels: int = 6, width: float = 1.0, zdim: int = 100, feature_dim: int = 256,
                 image_size: int = 128, local_channels: int = 64, norm: str = "batch"):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {image_size}")
        ch = {c: scaled_channels(c, width) for c in (8, 16, 32, 64, 128, 256, 512)}
        self.in_channels, self.zdim, self.feature_dim = in_channels, zdim, feature_dim
        self.image_size, self.local_channels = image_size, local_channels
        self.initial_channels = ch[64]
        # "initial" maps from the identity feature and the noise
        self.initial = Linear(feature_dim + zdim, (image_size // 16) ** 2 * ch[64], bias_start=0.1)
        self.initial_s4 = DeconvLayer(ch[64], ch[32], 3, 4, "none", "relu")
        self.initial_s2 = DeconvLayer(ch[32], ch[16], 3, 2, "none", "relu")
        self.initial_s = DeconvLayer(ch[16], ch[8], 3, 2, "none", "relu")
        # s/16
        c = ch[64] + ch[512]
        self.select_s16 = ResidualBlock(c, 2, norm)
        self.decode_s16 = nn.Sequential(ResidualBlock(c, 2, norm), ResidualBlock(c, 2, norm))
        # s/8
        self.up_s8 = DeconvLayer(c, ch[512], 3, 2, norm, "relu")
        self.select_s8 = ResidualBlock(ch[256], 3, norm)
        c = ch[512] + ch[256]
        self.decode_s8 = nn.Sequential(ResidualBlock(c, 3, norm), ResidualBlock(c, 3, norm))
        # s/4
        self.up_s4 = DeconvLayer(c, ch[256], 3, 2, norm, "relu")
        c_select = ch[128] + in_channels + ch[32]
        self.select_s4 = ResidualBlock(c_select, 3, norm)
        c = ch[256] + c_select
        self.decode_s4 = nn.Sequential(ResidualBlock(c, 3, norm), ResidualBlock(c, 3, norm))
        self.to_rgb_s4 = ConvLayer(c, 3, 3, 1, "none", None)
        # s/2
        self.up_s2 = DeconvLayer(c, ch[128], 3, 2, norm, "relu")
        c_select = ch[64] + in_channels + ch[16]
        self.select_s2 = ResidualBlock(c_select, 5, norm)
        c = ch[128] + c_select + 3
        self.decode_s2 = nn.Sequential(ResidualBlock(c, 3, norm), ResidualBlock(c, 3, norm))
        self.to_rgb_s2 = ConvLayer(c, 3, 3, 1, "none", None)
        # s
        self.up_s = DeconvLayer(c, ch[64], 3, 2, norm, "relu")
        c_select = ch[64] + ch[8] + in_channels
        self.select_s = ResidualBlock(c_select, 7, norm)
        c = ch[64] + c_select + (local_channels + 3 if local_channels else 0) + 3
        self.decode_s = ResidualBlock(c, 5, norm)
        self.conv_s1 = ConvLayer(c, ch[64], 5, 1, norm)
        self.res_s = ResidualBlock(ch[64], 3, norm)
        self.conv_s2 = ConvLayer(ch[64], ch[32], 3, 1, norm)
        self.to_rgb_s = ConvLayer(ch[32], 3, 3, 1, "none", None)

    def forward(self, skips: Sequence[Tensor], feature: Tensor, z: Tensor, input: Tensor,
                local_feature: Tensor | None = None, local_rgb: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        s = self.image_size
        feat_s, feat_s2, feat_s4, feat_s8, feat_s16 = skips
        _check_image("input", input, self.in_channels, (s, s))
        if feature.dim() != 2 or feature.shape[1] != self.feature_dim:
            raise ValueError(f"feature must be (B, {self.feature_dim}), got {tuple(feature.shape)}")
        if z.dim() != 2 or z.shape != (feature.shape[0], self.zdim):
            raise ValueError(f"z must be ({feature.shape[0]}, {self.zdim}), got {tuple(z.shape)}")
        if self.local_channels:
            if local_feature is None or local_rgb is None:
                raise ValueError("this decoder has local_channels > 0: pass local_feature and local_rgb")
            _check_image("local_feature", local_feature, self.local_channels, (s, s))
            _check_image("local_rgb", local_rgb, 3, (s, s))
        input_s2, input_s4 = _resize(input, (s // 2, s // 2)), _resize(input, (s // 4, s // 4))

        initial = self.initial(torch.cat([feature, z], 1))
        initial = F.relu(initial.view(-1, self.initial_channels, s // 16, s // 16))
        initial_s4 = self.initial_s4(initial, (s // 4, s // 4))
        initial_s2 = self.initial_s2(initial_s4, (s // 2, s // 2))
        initial_s = self.initial_s(initial_s2, (s, s))

        x = self.decode_s16(self.select_s16(torch.cat([initial, feat_s16], 1)))

        x = self.up_s8(x, feat_s8.shape[-2:])
        x = self.decode_s8(torch.cat([x, self.select_s8(feat_s8)], 1))

        x = self.up_s4(x, feat_s4.shape[-2:])
        x = self.decode_s4(torch.cat([x, self.select_s4(torch.cat([feat_s4, input_s4, initial_s4], 1))], 1))
        image_quarter = torch.tanh(self.to_rgb_s4(x))

        x = self.up_s2(x, feat_s2.shape[-2:])
        selected = self.select_s2(torch.cat([feat_s2, input_s2, initial_s2], 1))
        x = self.decode_s2(torch.cat([x, selected, _resize(image_quarter, (s // 2, s // 2))], 1))
        image_half = torch.tanh(self.to_rgb_s2(x))

        x = self.up_s(x, feat_s.shape[-2:])
        selected = self.select_s(torch.cat([feat_s, initial_s, input], 1))
        local = [local_feature, local_rgb] if self.local_channels else []
        x = self.decode_s(torch.cat([x, selected, *local, _resize(image_half, (s, s))], 1))
        x = self.conv_s2(self.res_s(self.conv_s1(x)))
        image = torch.tanh(self.to_rgb_s(x))
        return image, image_half, image_quarter


class GlobalPathway(nn.Module):
    r"""TP-GAN's global pathway: :class:`GlobalEncoder`, :class:`IdentityHead` and :class:`GlobalDecoder`.

    Args:
        in_channels: input channels (6: the image concatenated with its horizontal mirror).
        width: channel multiplier (1 = official).
        zdim: noise size (100).
        feature_dim: identity feature size (256).
        num_classes: identities of the identity head (340 in TF).
        image_size: side ``s`` (a multiple of 16; 128 official).
        local_channels: fused local feature channels concatenated at scale s, 0 for none.
        norm: ``"batch"`` or ``"none"``.

    Returns:
        dict from :meth:`forward` with ``image`` (B, 3, s, s), ``image_half`` (B, 3, s/2, s/2),
        ``image_quarter`` (B, 3, s/4, s/4) in [-1, 1], ``identity_feature`` (B, feature_dim) and
        ``identity_logits`` (B, num_classes).
    """

    def __init__(self, in_channels: int = 6, width: float = 1.0, zdim: int = 100, feature_dim: int = 256,
                 num_classes: int = 340, image_size: int = 128, local_channels: int = 64,
                 norm: str = "batch"):
        super().__init__()
        self.encoder = GlobalEncoder(in_channels, width, feature_dim, image_size, norm)
        self.identity_head = IdentityHead(feature_dim, num_classes)
        self.decoder = GlobalDecoder(in_channels, width, zdim, feature_dim, image_size, local_channels, norm)

    def forward(self, input: Tensor, z: Tensor, local_feature: Tensor | None = None,
                local_rgb: Tensor | None = None) -> dict[str, Tensor]:
        skips, feature = self.encoder(input)
        image, image_half, image_quarter = self.decoder(skips, feature, z, input, local_feature, local_rgb)
        return {
            "image": image,
            "image_half": image_half,
            "image_quarter": image_quarter,
            "identity_feature": feature,
            "identity_logits": self.identity_head(feature),
        }


# ----------------------------------------------------------------------------------------------------------
# Generator and discriminator
# ----------------------------------------------------------------------------------------------------------


class TPGANGenerator(nn.Module):
    r"""The TP-GAN generator: four local pathways, the local fuser and the global pathway.

    The right-eye pathway sees the right and the left eye patches (6 channels), as in the TF code
    (``partRotator(concat([eyer, eyel]))``); the others see their own 3-channel patch. The global pathway's
    input is the image concatenated with its horizontal mirror (TF ``mc``), done inside :meth:`forward`.

    Args:
        image_size: side ``s`` of the square face crop (a multiple of 16 and at least 32; 128 official).
        width: channel multiplier (1 = official, e.g. 0.25 for a CPU preset).
        zdim: noise size (100).
        feature_dim: identity feature size (256).
        num_classes: identities of the identity head (340 in the TF code).
        norm: ``"batch"`` (official) or ``"none"``.
        use_local: build the local pathways (the ablation without them concatenates no local maps).

    Shape:
        - image: :math:`(B, 3, s, s)` in [-1, 1]
        - patches: ``{name: (B, 3, h, w)}`` in [-1, 1] for each name of :data:`PART_NAMES`, sizes from
          :func:`part_geometry` (ignored when ``use_local=False``)
        - z: :math:`(B, zdim)` or ``None`` for N(0, 0.02^2) noise (TF ``tf.random_normal(stddev=0.02)``)
        - Output: dict with ``image`` (B, 3, s, s), ``image_half`` (B, 3, s/2, s/2), ``image_quarter``
          (B, 3, s/4, s/4), ``parts`` ({name: (B, 3, h, w)}), ``parts_fused`` (B, 3, s, s) — all in [-1, 1] —
          ``identity_feature`` (B, feature_dim) and ``identity_logits`` (B, num_classes). Without the local
          pathways ``parts`` is ``{}`` and ``parts_fused`` is ``None``.

    Example:
        >>> g = TPGANGenerator(image_size=64, width=0.125, num_classes=10).eval()
        >>> patches = {n: torch.zeros(1, 3, *size) for n, (_, size) in part_geometry(64).items()}
        >>> out = g(torch.zeros(1, 3, 64, 64), patches, z=torch.zeros(1, 100))
        >>> out["image"].shape, out["image_quarter"].shape, out["identity_logits"].shape
        (torch.Size([1, 3, 64, 64]), torch.Size([1, 3, 16, 16]), torch.Size([1, 10]))
    """

    def __init__(self, image_size: int = 128, width: float = 1.0, zdim: int = 100, feature_dim: int = 256,
                 num_classes: int = 340, norm: str = "batch", use_local: bool = True):
        super().__init__()
        if image_size % 16 or image_size < 32:
            raise ValueError(f"image_size must be a multiple of 16 and at least 32, got {image_size}")
        self.image_size, self.zdim, self.use_local = image_size, zdim, use_local
        self.part_sizes = {name: size for name, (_, size) in part_geometry(image_size).items()}
        local_channels = 0
        if use_local:
            self.local_pathways = nn.ModuleDict(
                {name: LocalPathway(6 if name == "right_eye" else 3, width, norm) for name in PART_NAMES}
            )
            self.fuser = LocalFuser(image_size)
            local_channels = self.local_pathways["left_eye"].out_channels
        self.global_pathway = GlobalPathway(
            6, width, zdim, feature_dim, num_classes, image_size, local_channels, norm
        )

    def local_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the four local pathways (TF ``rot_optim`` trains only these); empty without them."""
        if self.use_local:
            yield from self.local_pathways.parameters()

    def global_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the global pathway (encoder, identity head, decoder)."""
        yield from self.global_pathway.parameters()

    def forward(self, image: Tensor, patches: Mapping[str, Tensor] | None = None, z: Tensor | None = None,
                generator: torch.Generator | None = None) -> dict[str, object]:
        """Frontalise ``image``; see the class docstring. ``generator`` seeds the default noise."""
        s = self.image_size
        _check_image("image", image, 3, (s, s))
        batch = image.shape[0]
        if z is None:
            z = 0.02 * torch.randn(
                batch, self.zdim, generator=generator, device=image.device, dtype=image.dtype
            )
        parts: dict[str, Tensor] = {}
        local_feature = parts_fused = None
        if self.use_local:
            if patches is None:
                raise ValueError(f"patches are required when use_local=True: a dict with keys {PART_NAMES}")
            for name in PART_NAMES:
                if name not in patches:
                    raise ValueError(f"patches is missing {name!r}; expected keys {PART_NAMES}")
                _check_image(f"patches[{name!r}]", patches[name], 3, self.part_sizes[name])
                if patches[name].shape[0] != batch:
                    raise ValueError(
                        f"patches[{name!r}] has batch {patches[name].shape[0]}, image has {batch}"
                    )
            features = {}
            for name in PART_NAMES:
                patch = patches[name]
                if name == "right_eye":
                    patch = torch.cat([patches["right_eye"], patches["left_eye"]], 1)
                features[name], parts[name] = self.local_pathways[name](patch)
            local_feature = self.fuser(features)
            parts_fused = self.fuser(parts)
        mirrored = torch.cat([image, image.flip(-1)], 1)
        output: dict[str, object] = dict(self.global_pathway(mirrored, z, local_feature, parts_fused))
        output["parts"] = parts
        output["parts_fused"] = parts_fused
        return output


class Discriminator(nn.Module):
    r"""TP-GAN's patch discriminator (TF ``discriminatorLocal``).

    conv3 s2 -> 64 (no BN), -> 128, -> 256, -> 512 (BN, LeakyReLU 0.2); res; conv3 s2 -> 512; res;
    conv1x1 -> 1 logit per patch: a 4x4 logit map on a 128 px image (s/32 in general).

    Args:
        image_size: input side ``s`` (a multiple of 32 for exact s/32 maps).
        width: channel multiplier.
        norm: ``"batch"`` (official) or ``"none"`` (e.g. for a gradient penalty).

    Shape:
        - Input: :math:`(B, 3, s, s)` in [-1, 1]
        - Output: :math:`(B, 1, s/32, s/32)` logits (real = frontal ground truth)

    Example:
        >>> Discriminator(64, width=0.125)(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1, 2, 2])
    """

    def __init__(self, image_size: int = 128, width: float = 1.0, norm: str = "batch"):
        super().__init__()
        if image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        c64, c128, c256, c512 = (scaled_channels(c, width) for c in (64, 128, 256, 512))
        self.image_size = image_size
        self.conv0 = ConvLayer(3, c64, 3, 2, "none")
        self.conv1 = ConvLayer(c64, c128, 3, 2, norm)
        self.conv2 = ConvLayer(c128, c256, 3, 2, norm)
        self.conv3 = ConvLayer(c256, c512, 3, 2, norm)
        self.res3 = ResidualBlock(c512, 3, norm)
        self.conv4 = ConvLayer(c512, c512, 3, 2, norm)
        self.res4 = ResidualBlock(c512, 3, norm)
        self.to_logit = ConvLayer(c512, 1, 1, 1, "none", None)

    def forward(self, image: Tensor) -> Tensor:
        _check_image("image", image, 3, (self.image_size, self.image_size))
        x = self.conv2(self.conv1(self.conv0(image)))
        x = self.res4(self.conv4(self.res3(self.conv3(x))))
        return self.to_logit(x)
