"""TP-GAN networks: the two-pathway generator and the local patch discriminator.

TP-GAN (Huang et al., "Beyond Face Rotation", ICCV 2017) turns a profile face into a frontal one with two
pathways: a **global pathway** (an encoder-decoder on the whole, mirror-concatenated face that also yields a
256-d identity feature) and four **local pathways** (one small U-Net per landmark patch: the two eyes, the
nose, the mouth). The rotated patches are pasted onto a face canvas by the **local fuser** and concatenated
into the last stage of the global decoder.

The layer structure follows the official TensorFlow code (``HRLTY/TP-GAN: TP_GAN-Mar6FS.py`` —
``generator``, ``decoder``, ``partRotator``, ``partCombiner``, ``FeaturePredict``, ``discriminatorLocal``;
``ops.py`` — ``conv2d``, ``deconv2d``, ``resblock``, ``linear``):

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

:class:`TPGANArch` switches the layer details that the PyTorch port ``iwtw/pytorch-TP-GAN`` (``network.py``,
``layers.py``) changes: PyTorch padding, LeakyReLU 0.01, BatchNorm after the activation and outside the residual
blocks, no tanh, no mirror input, adjacent-pair maxout, its own concatenation orders and fuser centres.
``ARCHS["iwtw"]`` is that port's network (``conf/model/tpgan_iwtw.yaml``; its files load with
:mod:`facezoo.methods.tpgan.official`).

No pretrained TP-GAN weights were ever released (``HRLTY/TP-GAN#1``): these modules train from scratch.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "PART_NAMES",
    "TPGANArch",
    "ARCHS",
    "resolve_arch",
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
# ``iwtw/pytorch-TP-GAN: network.py LocalFuser``: its own centres, from its own mean 5-point landmarks.
_IWTW_CENTERS: dict[str, tuple[float, float]] = {
    "left_eye": (39.0, 40.0),
    "right_eye": (86.0, 39.0),
    "nose": (64.0, 64.0),
    "mouth": (65.0, 89.0),
}
_CENTERS = {"tf": _OFFICIAL_CENTERS, "iwtw": _IWTW_CENTERS}
# ``EYE_H, EYE_W = 40, 40``; ``NOSE_H, NOSE_W = 32, 40``; ``MOUTH_H, MOUTH_W = 32, 48`` (H, W).
_OFFICIAL_SIZES: dict[str, tuple[int, int]] = {
    "left_eye": (40, 40),
    "right_eye": (40, 40),
    "nose": (32, 40),
    "mouth": (32, 48),
}


def _round_half_up(value: float) -> int:
    return int(math.floor(value + 0.5))


def part_geometry(image_size: int = 128, layout: str = "tf"
                  ) -> dict[str, tuple[tuple[float, float], tuple[int, int]]]:
    r"""Fixed centre and patch size of each facial part on the frontal canvas.

    At 128 px these are the official TF numbers (``partCombiner`` centres, ``EYE_H``... patch sizes), or with
    ``layout="iwtw"`` the centres of the PyTorch port's ``LocalFuser`` (same patch sizes). Other image sizes
    scale them linearly by ``image_size / 128``; patch sizes are rounded to even integers.

    The centres are in the official convention: the part box of a patch of size (h, w) centred at (cx, cy)
    starts at row ``cy - h / 2 - 1`` and column ``cx - w / 2 - 1`` (0-based), see :func:`part_boxes`.

    Args:
        image_size: side of the square face crop, in pixels (positive).
        layout: ``"tf"`` (``HRLTY/TP-GAN``) or ``"iwtw"`` (``iwtw/pytorch-TP-GAN``) centres.

    Returns:
        ``{name: ((cx, cy), (h, w))}`` for every name of :data:`PART_NAMES`, in that order.

    Example:
        >>> part_geometry(128)["mouth"]
        ((65.0, 89.0), (32, 48))
        >>> part_geometry(64)["left_eye"]
        ((22.0, 20.5), (20, 20))
        >>> part_geometry(128, "iwtw")["left_eye"]
        ((39.0, 40.0), (40, 40))
    """
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if layout not in _CENTERS:
        raise ValueError(f"layout must be one of {sorted(_CENTERS)}, got {layout!r}")
    scale = image_size / _OFFICIAL_IMAGE_SIZE
    geometry = {}
    for name in PART_NAMES:
        cx, cy = _CENTERS[layout][name]
        h, w = _OFFICIAL_SIZES[name]
        size = (max(2, 2 * _round_half_up(h * scale / 2)), max(2, 2 * _round_half_up(w * scale / 2)))
        geometry[name] = ((cx * scale, cy * scale), size)
    return geometry


def part_boxes(image_size: int = 128, layout: str = "tf") -> dict[str, tuple[int, int, int, int]]:
    r"""Integer boxes where the local fuser pastes each part, as in the official ``partCombiner``.

    The official code pads a patch of size (h, w) with ``cy - h/2 - 1`` rows above and ``cx - w/2 - 1``
    columns to the left (the port's ``LocalFuser`` pads the same way around its own centres); other sizes use
    the scaled :func:`part_geometry` and round those offsets half up.

    Args:
        image_size: side of the square face crop, in pixels.
        layout: ``"tf"`` or ``"iwtw"`` centres (:func:`part_geometry`).

    Returns:
        ``{name: (top, left, h, w)}``, 0-based pixel indices; the part covers rows ``top:top + h`` and columns
        ``left:left + w``.

    Raises:
        ValueError: if a box does not fit inside the ``image_size`` canvas (tiny images).

    Example:
        >>> part_boxes(128)["left_eye"], part_boxes(128, "iwtw")["left_eye"]
        ((20, 23, 40, 40), (19, 18, 40, 40))
    """
    boxes = {}
    for name, ((cx, cy), (h, w)) in part_geometry(image_size, layout).items():
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
# Architecture variants
# ----------------------------------------------------------------------------------------------------------

_CHOICES: dict[str, tuple] = {
    "padding": ("same", "torch"),
    "norm_placement": ("tf", "iwtw"),
    "local_up_activation": ("lrelu", "relu"),
    "local_feature": ("refined", "deconv"),
    "maxout": ("halves", "pairs"),
    "initial": ("linear", "deconv"),
    "concat_order": ("tf", "iwtw"),
    "part_layout": ("tf", "iwtw"),
    "noise": ("normal", "uniform"),
    "init": ("tf", "kaiming"),
}


@dataclass(frozen=True)
class TPGANArch:
    r"""Layer details in which TP-GAN implementations differ; the defaults are the TF code (``HRLTY/TP-GAN``).

    ``ARCHS["iwtw"]`` sets every field to what ``iwtw/pytorch-TP-GAN`` (``network.py``, ``layers.py``) does; the
    parameter names and shapes are the same either way except where a field says otherwise. Channel widths,
    ``zdim`` and ``norm`` (batch / none) are constructor arguments of the networks, not fields here.

    Args:
        padding: ``"same"``: TF ``SAME`` geometry (strided convolutions pad bottom/right, even kernels pad one
            zero bottom/right, transposed convolutions crop at the end). ``"torch"``: PyTorch's symmetric
            ``padding=(k - 1) // 2``, transposed convolutions with ``padding=(k - s + 1) // 2`` and the needed
            ``output_padding`` (they crop at the start), and even kernels (the 2x2 residual blocks at s/16)
            after ``ReflectionPad2d((k - 1, 0, k - 1, 0))`` (``layers.py: conv`` with a 4-element padding).
        slope: negative slope of every LeakyReLU (TF 0.2; the port 0.01).
        norm_placement: where ``norm="batch"`` puts BatchNorm. ``"tf"``: ``act(bn(conv))`` in every layer but
            the first convolutions and the "initial" decoder maps, inside the residual blocks too. ``"iwtw"``:
            ``bn(act(conv))`` on every plain (de)convolution with an activation, first ones and "initial" maps
            included, never inside residual blocks (``layers.py: conv, deconv, ResidualBlock``).
        mirror_input: the global pathway sees ``[image, mirrored image]`` (6 channels, TF ``mc``); the port
            feeds the image alone (3 channels: the first encoder convolution's shape differs).
        right_eye_pair: the right-eye pathway sees ``[right eye, left eye]`` (6 channels, TF); the port feeds
            each part alone (the right-eye pathway's first convolution's shape differs).
        output_tanh: tanh on the RGB outputs (three scales and the local patches); the port has none.
        local_rgb_kernel: kernel of the local pathway's RGB convolution (TF 3; the port 1: the shape differs).
        local_up_activation: activation of the local pathway's three deconvolutions (TF lrelu; the port ReLU).
        local_feature: the local map handed to the fuser: ``"refined"`` (after the last skip fusion and residual
            block, TF) or ``"deconv"`` (the last deconvolution's output, the port's ``return local_img, deconv2``).
        local_bottleneck_blocks: residual blocks after the local pathway's last down-sampling (TF 2, the port 1).
        maxout: ``"halves"`` (unit i = max(i, i + D), TF) or ``"pairs"`` (max(2i, 2i + 1): ``MaxPool1d(2, 2)``).
        initial: how [feature, z] becomes the s/16 "initial" map: ``"linear"`` (FC with one bias per output
            position, TF) or ``"deconv"`` (a transposed convolution with kernel s/16 on the 1x1 input, one bias
            per channel, the port's ``initial_8``: the shapes differ).
        concat_order: channel order of the decoder's concatenations (``"tf"`` or ``"iwtw"``, see
            :class:`GlobalDecoder`).
        align_corners: grid of the bilinear resizes (input copies, up-sampled intermediate outputs). The port ran
            on PyTorch 0.3, whose ``F.upsample(mode="bilinear")`` was ``align_corners=True``.
        detach_quarter: stop gradients through the up-sampled s/4 output fed to the s/2 stage (the port's
            ``decoded_img32.data``); forward values are unchanged.
        identity_dropout: drop probability before the identity classifier (TF ``keep_prob=0.3``: 0.7; the
            port ``Dropout(p=0.3)``).
        logit_kernel: kernel of the discriminator's last convolution (TF 1; the port 3: the shape differs).
        part_layout: fuser centres (:func:`part_geometry`).
        noise: default z: ``"normal"`` N(0, 0.02^2) (TF) or ``"uniform"`` U(-1, 1) (the port's ``train.py``).
        init: ``"tf"`` (truncated normal / normal 0.02, TF ``ops.py``) or ``"kaiming"`` (``layers.py:
            weight_initialization``: kaiming-normal with the layer's activation slope on (de)convolutions
            followed by an activation, PyTorch's defaults elsewhere).

    Example:
        >>> ARCHS["iwtw"].slope, TPGANArch().slope
        (0.01, 0.2)
        >>> resolve_arch({"slope": 0.1}).padding
        'same'
    """

    padding: str = "same"
    slope: float = 0.2
    norm_placement: str = "tf"
    mirror_input: bool = True
    right_eye_pair: bool = True
    output_tanh: bool = True
    local_rgb_kernel: int = 3
    local_up_activation: str = "lrelu"
    local_feature: str = "refined"
    local_bottleneck_blocks: int = 2
    maxout: str = "halves"
    initial: str = "linear"
    concat_order: str = "tf"
    align_corners: bool = False
    detach_quarter: bool = False
    identity_dropout: float = 0.7
    logit_kernel: int = 1
    part_layout: str = "tf"
    noise: str = "normal"
    init: str = "tf"

    def __post_init__(self):
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise ValueError(f"arch.{name} must be one of {choices}, got {getattr(self, name)!r}")
        if not 0 <= self.slope < 1:
            raise ValueError(f"arch.slope must be in [0, 1), got {self.slope}")
        if not 0 <= self.identity_dropout < 1:
            raise ValueError(f"arch.identity_dropout must be in [0, 1), got {self.identity_dropout}")
        for name in ("local_rgb_kernel", "logit_kernel", "local_bottleneck_blocks"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"arch.{name} must be a positive integer, got {getattr(self, name)}")


#: Named architectures: ``"tf"`` (``HRLTY/TP-GAN: TP_GAN-Mar6FS.py``) and ``"iwtw"`` (``iwtw/pytorch-TP-GAN``).
ARCHS: dict[str, TPGANArch] = {
    "tf": TPGANArch(),
    "iwtw": TPGANArch(
        padding="torch", slope=0.01, norm_placement="iwtw", mirror_input=False, right_eye_pair=False,
        output_tanh=False, local_rgb_kernel=1, local_up_activation="relu", local_feature="deconv",
        local_bottleneck_blocks=1, maxout="pairs", initial="deconv", concat_order="iwtw", align_corners=True,
        detach_quarter=True, identity_dropout=0.3, logit_kernel=3, part_layout="iwtw", noise="uniform",
        init="kaiming",
    ),
}


def resolve_arch(arch: TPGANArch | Mapping | str | None = None) -> TPGANArch:
    r"""A :class:`TPGANArch` from a name of :data:`ARCHS`, a mapping of fields (others: TF), or ``None`` (TF).

    Raises:
        ValueError: unknown name, unknown field or a bad value (one line).
    """
    if arch is None:
        return ARCHS["tf"]
    if isinstance(arch, TPGANArch):
        return arch
    if isinstance(arch, str):
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {sorted(ARCHS)} or a mapping of TPGANArch fields, got {arch!r}")
        return ARCHS[arch]
    if isinstance(arch, Mapping):
        fields = {f.name for f in dataclasses.fields(TPGANArch)}
        unknown = sorted(set(arch) - fields)
        if unknown:
            raise ValueError(f"unknown arch field(s) {unknown}; TPGANArch has {sorted(fields)}")
        return TPGANArch(**dict(arch))
    raise ValueError(f"arch must be a name, a mapping or a TPGANArch, got {type(arch).__name__}")


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

    Weights are truncated-normal(0, 0.02) cut at two standard deviations, biases 0. With ``geometry="torch"``
    the padding is PyTorch's symmetric ``(k - 1) // 2`` instead (for odd kernels), and even kernels are
    reflection-padded by ``k - 1`` at the top and left (``iwtw/pytorch-TP-GAN: layers.py conv`` with
    ``padding=[1, 0, 1, 0]``); the output size is the same as with ``"same"`` for odd kernels and stride 1 or
    even inputs, the sampling grid is not (strided TF ``SAME`` pads the bottom/right, PyTorch both sides).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side.
        stride: stride.
        bias: whether to add a learned bias (TF always has one).
        geometry: ``"same"`` (TF) or ``"torch"`` (PyTorch padding, :class:`TPGANArch` ``padding``).

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, \lceil H / s \rceil, \lceil W / s \rceil)`

    Example:
        >>> Conv2dSame(3, 8, 3, stride=2)(torch.zeros(1, 3, 5, 6)).shape
        torch.Size([1, 8, 3, 3])
        >>> Conv2dSame(3, 8, 2, geometry="torch")(torch.zeros(1, 3, 5, 6)).shape
        torch.Size([1, 8, 5, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 bias: bool = True, geometry: str = "same"):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        if geometry not in ("same", "torch"):
            raise ValueError(f"geometry must be 'same' or 'torch', got {geometry!r}")
        self.geometry = geometry

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.weight, mean=0.0, std=0.02, a=-0.04, b=0.04)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 4 or input.shape[1] != self.in_channels:
            raise ValueError(f"expected a (B, {self.in_channels}, H, W) tensor, got {tuple(input.shape)}")
        kh, kw = self.kernel_size
        if self.geometry == "torch":
            if kh % 2 and kw % 2:
                return F.conv2d(input, self.weight, self.bias, self.stride, ((kh - 1) // 2, (kw - 1) // 2))
            padded = F.pad(input, (kw - 1, 0, kh - 1, 0), mode="reflect")
            return F.conv2d(padded, self.weight, self.bias, self.stride)
        top, bottom = same_padding(input.shape[-2], kh, self.stride[0])
        left, right = same_padding(input.shape[-1], kw, self.stride[1])
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

    With ``geometry="torch"`` the full output is cropped by ``p = max(0, (k - s + 1) // 2)`` at the start
    instead, as ``nn.ConvTranspose2d(k, s, padding=p, output_padding=...)`` does (the PyTorch port's
    ``deconv(..., 3, 2, 1, 1)`` and ``deconv(..., 3, 4, 0, 1)``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side.
        stride: stride (the up-sampling factor).
        bias: whether to add a learned bias.
        geometry: ``"same"`` (TF) or ``"torch"``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, H_{out}, W_{out})` with ``(H_out, W_out) = output_size``.

    Example:
        >>> ConvTranspose2dSame(8, 4, 3, stride=2)(torch.zeros(1, 8, 3, 3), (5, 6)).shape
        torch.Size([1, 4, 5, 6])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2,
                 bias: bool = True, geometry: str = "same"):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        if geometry not in ("same", "torch"):
            raise ValueError(f"geometry must be 'same' or 'torch', got {geometry!r}")
        self.geometry = geometry

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
            if self.geometry == "torch":
                before = max(0, (kernel - stride + 1) // 2)
            else:
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
        init: ``"tf"`` or ``"kaiming"`` (then PyTorch's default ``nn.Linear`` initialisation, as the port has).

    Shape:
        - Input: :math:`(B, in)`
        - Output: :math:`(B, out)`
    """

    def __init__(self, in_features: int, out_features: int, bias_start: float = 0.0, init: str = "tf"):
        super().__init__(in_features, out_features)
        self.bias_start, self.init_scheme = bias_start, init
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if getattr(self, "init_scheme", "tf") == "kaiming":
            super().reset_parameters()
            return
        nn.init.normal_(self.weight, mean=0.0, std=0.02)
        nn.init.constant_(self.bias, getattr(self, "bias_start", 0.0))


def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")


def _activation(activation: str | None, slope: float = 0.2) -> nn.Module:
    if activation == "lrelu":
        return nn.LeakyReLU(slope)
    if activation == "relu":
        return nn.ReLU()
    if activation is None:
        return nn.Identity()
    raise ValueError(f"activation must be 'lrelu', 'relu' or None, got {activation!r}")


def _kaiming_init(layer: nn.Module, activation: str | None, slope: float) -> None:
    """``iwtw/pytorch-TP-GAN: layers.py weight_initialization``: PyTorch's default, then kaiming-normal (fan in,
    ``a`` = the activation's negative slope) on layers followed by an activation."""
    base = nn.Conv2d if isinstance(layer, nn.Conv2d) else nn.ConvTranspose2d
    base.reset_parameters(layer)
    if activation is not None:
        nn.init.kaiming_normal_(layer.weight, a=slope if activation == "lrelu" else 0.0)


class ConvLayer(nn.Sequential):
    r"""``act(norm(conv(x)))`` with a TF-``SAME`` convolution: TF's ``lrelu(batch_norm(conv2d(...)))``.

    With ``arch.norm_placement == "iwtw"`` the order is ``norm(act(conv(x)))`` (``iwtw/pytorch-TP-GAN:
    layers.py conv``); the submodules keep their indices (0 conv, 1 norm, 2 activation) either way.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side.
        stride: stride.
        norm: ``"batch"`` or ``"none"`` (use ``"none"`` for the layers TF leaves without BN).
        activation: ``"lrelu"`` (slope ``arch.slope``, 0.2), ``"relu"`` or ``None``.
        arch: :class:`TPGANArch` (padding, slope, norm placement, initialisation); default TF.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, \lceil H / s \rceil, \lceil W / s \rceil)`
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 norm: str = "batch", activation: str | None = "lrelu", arch: TPGANArch | None = None):
        arch = resolve_arch(arch)
        conv = Conv2dSame(in_channels, out_channels, kernel_size, stride, geometry=arch.padding)
        if arch.init == "kaiming":
            _kaiming_init(conv, activation, arch.slope)
        super().__init__(conv, _norm(norm, out_channels), _activation(activation, arch.slope))
        self.post_activation_norm = arch.norm_placement == "iwtw"

    def forward(self, input: Tensor) -> Tensor:
        conv, norm, act = self
        if self.post_activation_norm:
            return norm(act(conv(input)))
        return act(norm(conv(input)))


class DeconvLayer(nn.Module):
    r"""``act(norm(deconv(x, output_size)))`` with a :class:`ConvTranspose2dSame`.

    With ``arch.norm_placement == "iwtw"`` the order is ``norm(act(deconv(x)))`` (``layers.py: deconv``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side (3 in TP-GAN).
        stride: up-sampling factor.
        norm: ``"batch"`` or ``"none"``.
        activation: ``"lrelu"``, ``"relu"`` or ``None``.
        arch: :class:`TPGANArch`; default TF.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, H_{out}, W_{out})`, ``output_size = (H_out, W_out)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 2,
                 norm: str = "batch", activation: str | None = "lrelu", arch: TPGANArch | None = None):
        super().__init__()
        arch = resolve_arch(arch)
        self.deconv = ConvTranspose2dSame(in_channels, out_channels, kernel_size, stride, geometry=arch.padding)
        if arch.init == "kaiming":
            _kaiming_init(self.deconv, activation, arch.slope)
        self.norm = _norm(norm, out_channels)
        self.act = _activation(activation, arch.slope)
        self.post_activation_norm = arch.norm_placement == "iwtw"

    def forward(self, input: Tensor, output_size: Sequence[int]) -> Tensor:
        x = self.deconv(input, output_size)
        if self.post_activation_norm:
            return self.norm(self.act(x))
        return self.act(self.norm(x))


class ResidualBlock(nn.Module):
    r"""TP-GAN residual block (``ops.py: resblock``): ``lrelu(x + bn(conv(lrelu(bn(conv(x))))))``.

    Both convolutions keep the channel count and use stride 1 with TF ``SAME`` padding (so even kernels,
    e.g. the decoder's 2x2 blocks at s/16, pad one pixel at the bottom/right). With
    ``arch.norm_placement == "iwtw"`` the block has no BatchNorm whatever ``norm`` says
    (``iwtw/pytorch-TP-GAN: layers.py ResidualBlock``).

    Args:
        channels: input = output channels.
        kernel_size: square kernel side (2, 3, 5 or 7 in TP-GAN).
        norm: ``"batch"`` or ``"none"``.
        arch: :class:`TPGANArch` (padding, LeakyReLU slope, norm placement, initialisation); default TF.

    Shape:
        - Input: :math:`(B, C, H, W)`
        - Output: :math:`(B, C, H, W)`

    Example:
        >>> ResidualBlock(8, 3)(torch.zeros(2, 8, 5, 7)).shape
        torch.Size([2, 8, 5, 7])
    """

    def __init__(self, channels: int, kernel_size: int = 3, norm: str = "batch", arch: TPGANArch | None = None):
        super().__init__()
        arch = resolve_arch(arch)
        norm = norm if arch.norm_placement == "tf" else "none"
        self.conv1 = ConvLayer(channels, channels, kernel_size, 1, norm, "lrelu", arch)
        self.conv2 = ConvLayer(channels, channels, kernel_size, 1, norm, None, arch)
        self.act = nn.LeakyReLU(arch.slope)

    def forward(self, input: Tensor) -> Tensor:
        return self.act(input + self.conv2(self.conv1(input)))


class Maxout(nn.Module):
    r"""Maxout over two halves of the feature vector, as TP-GAN's encoder does it.

    TF: ``tf.maximum(c7_l[:, 0:256], c7_l[:, 256:])``, i.e. unit ``i`` is the max of units ``i`` and
    ``i + D/2`` (not of adjacent units). ``mode="pairs"`` takes adjacent units ``2i`` and ``2i + 1`` instead
    (``iwtw/pytorch-TP-GAN: network.py``, ``nn.MaxPool1d(2, 2)`` on the (B, D, 2) view).

    Args:
        mode: ``"halves"`` (TF) or ``"pairs"``.

    Shape:
        - Input: :math:`(B, 2D)`
        - Output: :math:`(B, D)`

    Example:
        >>> Maxout()(torch.tensor([[1.0, 5.0, 3.0, 2.0]]))
        tensor([[3., 5.]])
        >>> Maxout("pairs")(torch.tensor([[1.0, 5.0, 3.0, 2.0]]))
        tensor([[5., 3.]])
    """

    def __init__(self, mode: str = "halves"):
        super().__init__()
        if mode not in ("halves", "pairs"):
            raise ValueError(f"mode must be 'halves' or 'pairs', got {mode!r}")
        self.mode = mode

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() != 2 or input.shape[1] % 2:
            raise ValueError(f"expected a (B, 2D) tensor, got {tuple(input.shape)}")
        if self.mode == "pairs":
            return input.unflatten(1, (-1, 2)).amax(2)
        first, second = input.chunk(2, dim=1)
        return torch.maximum(first, second)


def _resize(input: Tensor, size: tuple[int, int], align_corners: bool = False) -> Tensor:
    if tuple(input.shape[-2:]) == tuple(size):
        return input
    return F.interpolate(input, size=size, mode="bilinear", align_corners=align_corners)


def _check_image(name: str, tensor: Tensor, channels: int, size: tuple[int, int] | None = None) -> None:
    if not isinstance(tensor, Tensor) or tensor.dim() != 4 or tensor.shape[1] != channels:
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise ValueError(f"{name} must be a (B, {channels}, H, W) tensor, got {shape}")
    if size is not None and tuple(tensor.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} must be {size[0]}x{size[1]}, got {tuple(tensor.shape[-2:])}")


def _rgb(x: Tensor, arch: TPGANArch) -> Tensor:
    return torch.tanh(x) if arch.output_tanh else x


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

    :class:`TPGANArch` fields change the bottleneck depth, the deconvolutions' activation, which map is the
    part feature, the RGB kernel and the tanh (``iwtw/pytorch-TP-GAN: network.py LocalPathway``: one bottleneck
    block, ReLU deconvolutions, the last deconvolution's output as the feature, a 1x1 RGB convolution, no tanh).

    Args:
        in_channels: input channels (3, or 6 for TF's right-eye net fed with [right, left] eye patches).
        width: channel multiplier (1 = official).
        norm: ``"batch"`` (official) or ``"none"``.
        arch: :class:`TPGANArch`; default TF.

    Returns:
        ``(feature, patch)`` from :meth:`forward`.

    Shape:
        - Input: :math:`(B, C_{in}, h, w)` in [-1, 1]
        - Output: feature :math:`(B, 64 \cdot width, h, w)`, patch :math:`(B, 3, h, w)` in [-1, 1] (unbounded
          without ``output_tanh``)

    Example:
        >>> feature, patch = LocalPathway(width=0.125)(torch.zeros(2, 3, 16, 24))
        >>> feature.shape, patch.shape
        (torch.Size([2, 8, 16, 24]), torch.Size([2, 3, 16, 24]))
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, norm: str = "batch",
                 arch: TPGANArch | Mapping | str | None = None):
        super().__init__()
        arch = self.arch = resolve_arch(arch)
        c64, c128, c256, c512 = (scaled_channels(c, width) for c in (64, 128, 256, 512))
        first_norm = norm if arch.norm_placement == "iwtw" else "none"
        up_act = arch.local_up_activation
        self.in_channels = in_channels
        self.out_channels = c64
        self.conv0 = ConvLayer(in_channels, c64, 3, 1, first_norm, arch=arch)
        self.res0 = ResidualBlock(c64, 3, norm, arch)
        self.down1 = ConvLayer(c64, c128, 3, 2, norm, arch=arch)
        self.res1 = ResidualBlock(c128, 3, norm, arch)
        self.down2 = ConvLayer(c128, c256, 3, 2, norm, arch=arch)
        self.res2 = ResidualBlock(c256, 3, norm, arch)
        self.down3 = ConvLayer(c256, c512, 3, 2, norm, arch=arch)
        self.res3 = nn.Sequential(*(ResidualBlock(c512, 3, norm, arch) for _ in range(arch.local_bottleneck_blocks)))
        self.up1 = DeconvLayer(c512, c256, 3, 2, norm, up_act, arch)
        self.fuse1 = ConvLayer(2 * c256, c256, 3, 1, norm, arch=arch)
        self.res_up1 = ResidualBlock(c256, 3, norm, arch)
        self.up2 = DeconvLayer(c256, c128, 3, 2, norm, up_act, arch)
        self.fuse2 = ConvLayer(2 * c128, c128, 3, 1, norm, arch=arch)
        self.res_up2 = ResidualBlock(c128, 3, norm, arch)
        self.up3 = DeconvLayer(c128, c64, 3, 2, norm, up_act, arch)
        self.fuse3 = ConvLayer(2 * c64, c64, 3, 1, norm, arch=arch)
        self.res_up3 = ResidualBlock(c64, 3, norm, arch)
        self.to_rgb = ConvLayer(c64, 3, arch.local_rgb_kernel, 1, "none", None, arch)

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
        refined = self.res_up3(self.fuse3(torch.cat([up, skip0], 1)))
        feature = up if self.arch.local_feature == "deconv" else refined
        return feature, _rgb(self.to_rgb(refined), self.arch)


class LocalFuser(nn.Module):
    r"""Pastes the four part maps onto a face canvas and fuses them by element-wise max (``partCombiner``).

    Each map is zero-padded to ``image_size`` at its fixed box (:func:`part_boxes`) and the four canvases are
    combined with ``max``. As in TF, the zero padding takes part in the max: outside every box the result is
    0, and a pixel covered by some of the boxes gets the max of those parts' values and 0 (so negative values,
    e.g. dark tanh RGB, are clipped to 0). Works for any channel count (64-ch features, 3-ch RGB patches).

    Args:
        image_size: side of the square canvas.
        layout: ``"tf"`` or ``"iwtw"`` part centres (:func:`part_geometry`).

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

    def __init__(self, image_size: int = 128, layout: str = "tf"):
        super().__init__()
        self.image_size = image_size
        self.boxes = part_boxes(image_size, layout)

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
        in_channels: input channels (6: the image and its mirror; 3 for the PyTorch port).
        width: channel multiplier.
        feature_dim: identity feature size (256).
        image_size: input side ``s`` (a multiple of 16).
        norm: ``"batch"`` or ``"none"``.
        arch: :class:`TPGANArch` (maxout mode, layer details); default TF.

    Returns:
        ``(skips, feature)`` from :meth:`forward`, ``skips`` ordered s, s/2, s/4, s/8, s/16.

    Shape:
        - Input: :math:`(B, C_{in}, s, s)`
        - Output: skips with (64, 64, 128, 256, 512) * width channels, feature :math:`(B, feature\_dim)`
    """

    def __init__(self, in_channels: int = 6, width: float = 1.0, feature_dim: int = 256,
                 image_size: int = 128, norm: str = "batch", arch: TPGANArch | Mapping | str | None = None):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {image_size}")
        arch = resolve_arch(arch)
        c64, c128, c256, c512 = (scaled_channels(c, width) for c in (64, 128, 256, 512))
        first_norm = norm if arch.norm_placement == "iwtw" else "none"
        self.in_channels = in_channels
        self.image_size = image_size
        self.channels = (c64, c64, c128, c256, c512)
        self.conv0 = ConvLayer(in_channels, c64, 7, 1, first_norm, arch=arch)
        self.res0 = ResidualBlock(c64, 7, norm, arch)
        self.conv1 = ConvLayer(c64, c64, 5, 2, norm, arch=arch)
        self.res1 = ResidualBlock(c64, 5, norm, arch)
        self.conv2 = ConvLayer(c64, c128, 3, 2, norm, arch=arch)
        self.res2 = ResidualBlock(c128, 3, norm, arch)
        self.conv3 = ConvLayer(c128, c256, 3, 2, norm, arch=arch)
        self.res3 = ResidualBlock(c256, 3, norm, arch)
        self.conv4 = ConvLayer(c256, c512, 3, 2, norm, arch=arch)
        self.res4 = nn.Sequential(*(ResidualBlock(c512, 3, norm, arch) for _ in range(4)))
        self.fc = Linear((image_size // 16) ** 2 * c512, 2 * feature_dim, bias_start=0.1, init=arch.init)
        self.maxout = Maxout(arch.maxout)

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
        dropout: drop probability (0.7; the PyTorch port 0.3).
        init: ``"tf"`` or ``"kaiming"`` (PyTorch's default for the linear layer).

    Shape:
        - Input: :math:`(B, feature\_dim)`
        - Output: :math:`(B, num\_classes)` logits
    """

    def __init__(self, feature_dim: int = 256, num_classes: int = 340, dropout: float = 0.7, init: str = "tf"):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc = Linear(feature_dim, num_classes, bias_start=0.1, init=init)

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

    With ``arch.concat_order == "iwtw"`` (``iwtw/pytorch-TP-GAN: network.py GlobalPathway``) the concatenations
    are ``[initial_s/4, enc, input_s/4]``, ``[initial_s/2, enc, input_s/2]``, ``[initial_s, enc, input]`` and
    ``[deconv, selected, up(image_half), local features, local RGB]``; with ``arch.initial == "deconv"`` the
    initial map is a transposed convolution (kernel s/16) of the 1x1 [feature, z], and the port's BatchNorm
    placement also normalises the initial maps.

    Args:
        in_channels: channels of the (mirror-concatenated) input copies concatenated at s/4, s/2, s (6).
        width: channel multiplier.
        zdim: noise size (100 in TF).
        feature_dim: identity feature size (256).
        image_size: output side ``s`` (a multiple of 16).
        local_channels: channels of the fused local features (``scaled_channels(64, width)``), or 0 when the
            local pathway is disabled (then neither local features nor local RGB are concatenated).
        norm: ``"batch"`` or ``"none"``.
        arch: :class:`TPGANArch`; default TF.

    Shape:
        - Input: encoder skips (as :class:`GlobalEncoder` returns), feature :math:`(B, feature\_dim)`,
          z :math:`(B, zdim)`, input :math:`(B, C_{in}, s, s)`, local feature :math:`(B, C_{loc}, s, s)` and
          local RGB :math:`(B, 3, s, s)`; optionally the input at s/2 and s/4 (else bilinear resizes of input)
        - Output: images :math:`(B, 3, s, s)`, :math:`(B, 3, s/2, s/2)`, :math:`(B, 3, s/4, s/4)` in [-1, 1]
          (unbounded without ``arch.output_tanh``)
    """

    def __init__(self, in_channels: int = 6, width: float = 1.0, zdim: int = 100, feature_dim: int = 256,
                 image_size: int = 128, local_channels: int = 64, norm: str = "batch",
                 arch: TPGANArch | Mapping | str | None = None):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {image_size}")
        arch = self.arch = resolve_arch(arch)
        ch = {c: scaled_channels(c, width) for c in (8, 16, 32, 64, 128, 256, 512)}
        self.in_channels, self.zdim, self.feature_dim = in_channels, zdim, feature_dim
        self.image_size, self.local_channels = image_size, local_channels
        self.initial_channels = ch[64]
        initial_norm = norm if arch.norm_placement == "iwtw" else "none"
        # "initial" maps from the identity feature and the noise
        if arch.initial == "linear":
            self.initial = Linear(feature_dim + zdim, (image_size // 16) ** 2 * ch[64], bias_start=0.1,
                                  init=arch.init)
        else:
            self.initial = nn.ConvTranspose2d(feature_dim + zdim, ch[64], image_size // 16)
            if arch.init == "kaiming":
                nn.init.kaiming_normal_(self.initial.weight, a=0.0)
            else:
                nn.init.normal_(self.initial.weight, mean=0.0, std=0.02)
                nn.init.constant_(self.initial.bias, 0.1)
        self.initial_norm = _norm(initial_norm, ch[64])
        self.initial_s4 = DeconvLayer(ch[64], ch[32], 3, 4, initial_norm, "relu", arch)
        self.initial_s2 = DeconvLayer(ch[32], ch[16], 3, 2, initial_norm, "relu", arch)
        self.initial_s = DeconvLayer(ch[16], ch[8], 3, 2, initial_norm, "relu", arch)
        # s/16
        c = ch[64] + ch[512]
        self.select_s16 = ResidualBlock(c, 2, norm, arch)
        self.decode_s16 = nn.Sequential(ResidualBlock(c, 2, norm, arch), ResidualBlock(c, 2, norm, arch))
        # s/8
        self.up_s8 = DeconvLayer(c, ch[512], 3, 2, norm, "relu", arch)
        self.select_s8 = ResidualBlock(ch[256], 3, norm, arch)
        c = ch[512] + ch[256]
        self.decode_s8 = nn.Sequential(ResidualBlock(c, 3, norm, arch), ResidualBlock(c, 3, norm, arch))
        # s/4
        self.up_s4 = DeconvLayer(c, ch[256], 3, 2, norm, "relu", arch)
        c_select = ch[128] + in_channels + ch[32]
        self.select_s4 = ResidualBlock(c_select, 3, norm, arch)
        c = ch[256] + c_select
        self.decode_s4 = nn.Sequential(ResidualBlock(c, 3, norm, arch), ResidualBlock(c, 3, norm, arch))
        self.to_rgb_s4 = ConvLayer(c, 3, 3, 1, "none", None, arch)
        # s/2
        self.up_s2 = DeconvLayer(c, ch[128], 3, 2, norm, "relu", arch)
        c_select = ch[64] + in_channels + ch[16]
        self.select_s2 = ResidualBlock(c_select, 5, norm, arch)
        c = ch[128] + c_select + 3
        self.decode_s2 = nn.Sequential(ResidualBlock(c, 3, norm, arch), ResidualBlock(c, 3, norm, arch))
        self.to_rgb_s2 = ConvLayer(c, 3, 3, 1, "none", None, arch)
        # s
        self.up_s = DeconvLayer(c, ch[64], 3, 2, norm, "relu", arch)
        c_select = ch[64] + ch[8] + in_channels
        self.select_s = ResidualBlock(c_select, 7, norm, arch)
        c = ch[64] + c_select + (local_channels + 3 if local_channels else 0) + 3
        self.decode_s = ResidualBlock(c, 5, norm, arch)
        self.conv_s1 = ConvLayer(c, ch[64], 5, 1, norm, arch=arch)
        self.res_s = ResidualBlock(ch[64], 3, norm, arch)
        self.conv_s2 = ConvLayer(ch[64], ch[32], 3, 1, norm, arch=arch)
        self.to_rgb_s = ConvLayer(ch[32], 3, 3, 1, "none", None, arch)

    def _initial(self, feature: Tensor, z: Tensor) -> Tensor:
        s16 = self.image_size // 16
        code = torch.cat([feature, z], 1)
        if self.arch.initial == "linear":
            x = F.relu(self.initial(code).view(-1, self.initial_channels, s16, s16))
        else:
            x = F.relu(self.initial(code[:, :, None, None]))
        return self.initial_norm(x)  # BatchNorm after the ReLU in the port (norm_placement "iwtw"); TF: none

    def forward(self, skips: Sequence[Tensor], feature: Tensor, z: Tensor, input: Tensor,
                local_feature: Tensor | None = None, local_rgb: Tensor | None = None,
                input_half: Tensor | None = None, input_quarter: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        s, arch = self.image_size, self.arch
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
        if input_half is None:
            input_half = _resize(input, (s // 2, s // 2), arch.align_corners)
        if input_quarter is None:
            input_quarter = _resize(input, (s // 4, s // 4), arch.align_corners)
        _check_image("input_half", input_half, self.in_channels, (s // 2, s // 2))
        _check_image("input_quarter", input_quarter, self.in_channels, (s // 4, s // 4))
        iwtw = arch.concat_order == "iwtw"

        initial = self._initial(feature, z)
        initial_s4 = self.initial_s4(initial, (s // 4, s // 4))
        initial_s2 = self.initial_s2(initial_s4, (s // 2, s // 2))
        initial_s = self.initial_s(initial_s2, (s, s))

        x = self.decode_s16(self.select_s16(torch.cat([initial, feat_s16], 1)))

        x = self.up_s8(x, feat_s8.shape[-2:])
        x = self.decode_s8(torch.cat([x, self.select_s8(feat_s8)], 1))

        x = self.up_s4(x, feat_s4.shape[-2:])
        maps = [initial_s4, feat_s4, input_quarter] if iwtw else [feat_s4, input_quarter, initial_s4]
        x = self.decode_s4(torch.cat([x, self.select_s4(torch.cat(maps, 1))], 1))
        image_quarter = _rgb(self.to_rgb_s4(x), arch)

        x = self.up_s2(x, feat_s2.shape[-2:])
        maps = [initial_s2, feat_s2, input_half] if iwtw else [feat_s2, input_half, initial_s2]
        quarter_up = _resize(image_quarter.detach() if arch.detach_quarter else image_quarter, (s // 2, s // 2),
                             arch.align_corners)
        x = self.decode_s2(torch.cat([x, self.select_s2(torch.cat(maps, 1)), quarter_up], 1))
        image_half = _rgb(self.to_rgb_s2(x), arch)

        x = self.up_s(x, feat_s.shape[-2:])
        maps = [initial_s, feat_s, input] if iwtw else [feat_s, initial_s, input]
        selected = self.select_s(torch.cat(maps, 1))
        local = [local_feature, local_rgb] if self.local_channels else []
        half_up = _resize(image_half, (s, s), arch.align_corners)
        x = self.decode_s(torch.cat([x, selected, half_up, *local] if iwtw else [x, selected, *local, half_up], 1))
        x = self.conv_s2(self.res_s(self.conv_s1(x)))
        image = _rgb(self.to_rgb_s(x), arch)
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
        arch: :class:`TPGANArch`; default TF.

    Returns:
        dict from :meth:`forward` with ``image`` (B, 3, s, s), ``image_half`` (B, 3, s/2, s/2),
        ``image_quarter`` (B, 3, s/4, s/4) in [-1, 1], ``identity_feature`` (B, feature_dim) and
        ``identity_logits`` (B, num_classes).
    """

    def __init__(self, in_channels: int = 6, width: float = 1.0, zdim: int = 100, feature_dim: int = 256,
                 num_classes: int = 340, image_size: int = 128, local_channels: int = 64,
                 norm: str = "batch", arch: TPGANArch | Mapping | str | None = None):
        super().__init__()
        arch = resolve_arch(arch)
        self.encoder = GlobalEncoder(in_channels, width, feature_dim, image_size, norm, arch)
        self.identity_head = IdentityHead(feature_dim, num_classes, arch.identity_dropout, arch.init)
        self.decoder = GlobalDecoder(in_channels, width, zdim, feature_dim, image_size, local_channels, norm, arch)

    def forward(self, input: Tensor, z: Tensor, local_feature: Tensor | None = None,
                local_rgb: Tensor | None = None, input_half: Tensor | None = None,
                input_quarter: Tensor | None = None) -> dict[str, Tensor]:
        skips, feature = self.encoder(input)
        image, image_half, image_quarter = self.decoder(skips, feature, z, input, local_feature, local_rgb,
                                                        input_half, input_quarter)
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
    ``arch="iwtw"`` builds the PyTorch port's generator instead (:class:`TPGANArch`; each part alone, no mirror).

    Args:
        image_size: side ``s`` of the square face crop (a multiple of 16 and at least 32; 128 official).
        width: channel multiplier (1 = official, e.g. 0.25 for a CPU preset).
        zdim: noise size (100; the port 64).
        feature_dim: identity feature size (256).
        num_classes: identities of the identity head (340 in the TF code).
        norm: ``"batch"`` (official) or ``"none"``.
        use_local: build the local pathways (the ablation without them concatenates no local maps).
        arch: :class:`TPGANArch`, a name of :data:`ARCHS` or a mapping of its fields; default ``"tf"``.

    Shape:
        - image: :math:`(B, 3, s, s)` in [-1, 1]
        - patches: ``{name: (B, 3, h, w)}`` in [-1, 1] for each name of :data:`PART_NAMES`, sizes from
          :func:`part_geometry` (ignored when ``use_local=False``)
        - z: :math:`(B, zdim)` or ``None`` for :meth:`sample_noise` (TF: N(0, 0.02^2))
        - image_half, image_quarter: optional :math:`(B, 3, s/2, s/2)`, :math:`(B, 3, s/4, s/4)` copies of
          ``image`` (the port's data loader gives pre-resized files); default: bilinear resizes
        - Output: dict with ``image`` (B, 3, s, s), ``image_half`` (B, 3, s/2, s/2), ``image_quarter``
          (B, 3, s/4, s/4), ``parts`` ({name: (B, 3, h, w)}), ``parts_fused`` (B, 3, s, s) — all in [-1, 1]
          with ``arch.output_tanh`` — ``identity_feature`` (B, feature_dim) and ``identity_logits``
          (B, num_classes). Without the local pathways ``parts`` is ``{}`` and ``parts_fused`` is ``None``.

    Example:
        >>> g = TPGANGenerator(image_size=64, width=0.125, num_classes=10).eval()
        >>> patches = {n: torch.zeros(1, 3, *size) for n, (_, size) in part_geometry(64).items()}
        >>> out = g(torch.zeros(1, 3, 64, 64), patches, z=torch.zeros(1, 100))
        >>> out["image"].shape, out["image_quarter"].shape, out["identity_logits"].shape
        (torch.Size([1, 3, 64, 64]), torch.Size([1, 3, 16, 16]), torch.Size([1, 10]))
    """

    def __init__(self, image_size: int = 128, width: float = 1.0, zdim: int = 100, feature_dim: int = 256,
                 num_classes: int = 340, norm: str = "batch", use_local: bool = True,
                 arch: TPGANArch | Mapping | str | None = None):
        super().__init__()
        if image_size % 16 or image_size < 32:
            raise ValueError(f"image_size must be a multiple of 16 and at least 32, got {image_size}")
        arch = self.arch = resolve_arch(arch)
        self.image_size, self.zdim, self.use_local = image_size, zdim, use_local
        self.part_sizes = {name: size for name, (_, size) in part_geometry(image_size).items()}
        #: where the fuser pastes each part, ``{name: (top, left, h, w)}`` (:func:`part_boxes` of the layout)
        self.part_boxes = part_boxes(image_size, arch.part_layout)
        local_channels = 0
        if use_local:
            self.local_pathways = nn.ModuleDict(
                {name: LocalPathway(6 if name == "right_eye" and arch.right_eye_pair else 3, width, norm, arch)
                 for name in PART_NAMES}
            )
            self.fuser = LocalFuser(image_size, arch.part_layout)
            local_channels = self.local_pathways["left_eye"].out_channels
        self.global_pathway = GlobalPathway(
            6 if arch.mirror_input else 3, width, zdim, feature_dim, num_classes, image_size, local_channels, norm,
            arch,
        )

    def local_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the four local pathways (TF ``rot_optim`` trains only these); empty without them."""
        if self.use_local:
            yield from self.local_pathways.parameters()

    def global_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of the global pathway (encoder, identity head, decoder)."""
        yield from self.global_pathway.parameters()

    def sample_noise(self, batch_size: int, generator: torch.Generator | None = None,
                     device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Tensor:
        r"""The default z of ``arch.noise``: N(0, 0.02^2) (TF ``tf.random_normal(stddev=0.02)``) or U(-1, 1)
        (the port's ``np.random.uniform(-1, 1)``), drawn on the CPU from ``generator`` and moved to ``device``.

        Returns:
            :math:`(B, zdim)`.
        """
        if self.arch.noise == "uniform":
            z = torch.rand(batch_size, self.zdim, generator=generator) * 2 - 1
        else:
            z = 0.02 * torch.randn(batch_size, self.zdim, generator=generator)
        return z.to(device=device, dtype=dtype)

    def forward(self, image: Tensor, patches: Mapping[str, Tensor] | None = None, z: Tensor | None = None,
                generator: torch.Generator | None = None, image_half: Tensor | None = None,
                image_quarter: Tensor | None = None) -> dict[str, object]:
        """Frontalise ``image``; see the class docstring. ``generator`` seeds the default noise."""
        s = self.image_size
        _check_image("image", image, 3, (s, s))
        batch = image.shape[0]
        if z is None:
            shape, where = (batch, self.zdim), dict(generator=generator, device=image.device, dtype=image.dtype)
            uniform = self.arch.noise == "uniform"
            z = 2 * torch.rand(shape, **where) - 1 if uniform else 0.02 * torch.randn(shape, **where)
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
                if name == "right_eye" and self.arch.right_eye_pair:
                    patch = torch.cat([patches["right_eye"], patches["left_eye"]], 1)
                features[name], parts[name] = self.local_pathways[name](patch)
            local_feature = self.fuser(features)
            parts_fused = self.fuser(parts)
        copies = {"image_half": image_half, "image_quarter": image_quarter}
        for name, size in (("image_half", s // 2), ("image_quarter", s // 4)):
            if copies[name] is not None:
                _check_image(name, copies[name], 3, (size, size))
                if self.arch.mirror_input:
                    copies[name] = torch.cat([copies[name], copies[name].flip(-1)], 1)
        global_input = torch.cat([image, image.flip(-1)], 1) if self.arch.mirror_input else image
        output: dict[str, object] = dict(self.global_pathway(global_input, z, local_feature, parts_fused,
                                                             copies["image_half"], copies["image_quarter"]))
        output["parts"] = parts
        output["parts_fused"] = parts_fused
        return output


class Discriminator(nn.Module):
    r"""TP-GAN's patch discriminator (TF ``discriminatorLocal``).

    conv3 s2 -> 64 (no BN), -> 128, -> 256, -> 512 (BN, LeakyReLU 0.2); res; conv3 s2 -> 512; res;
    conv1x1 -> 1 logit per patch: a 4x4 logit map on a 128 px image (s/32 in general). The PyTorch port
    (``arch="iwtw"``, ``iwtw/pytorch-TP-GAN: network.py Discriminator``) has the same layer list with LeakyReLU
    0.01, PyTorch padding, BatchNorm (if any) after the activation of all five convolutions, and a 3x3 last
    convolution.

    Args:
        image_size: input side ``s`` (a multiple of 32 for exact s/32 maps).
        width: channel multiplier.
        norm: ``"batch"`` (official) or ``"none"`` (e.g. for a gradient penalty).
        arch: :class:`TPGANArch`, a name of :data:`ARCHS` or a mapping of its fields; default ``"tf"``.

    Shape:
        - Input: :math:`(B, 3, s, s)` in [-1, 1]
        - Output: :math:`(B, 1, s/32, s/32)` logits (real = frontal ground truth)

    Example:
        >>> Discriminator(64, width=0.125)(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1, 2, 2])
    """

    def __init__(self, image_size: int = 128, width: float = 1.0, norm: str = "batch",
                 arch: TPGANArch | Mapping | str | None = None):
        super().__init__()
        if image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        arch = resolve_arch(arch)
        c64, c128, c256, c512 = (scaled_channels(c, width) for c in (64, 128, 256, 512))
        self.image_size = image_size
        self.conv0 = ConvLayer(3, c64, 3, 2, norm if arch.norm_placement == "iwtw" else "none", arch=arch)
        self.conv1 = ConvLayer(c64, c128, 3, 2, norm, arch=arch)
        self.conv2 = ConvLayer(c128, c256, 3, 2, norm, arch=arch)
        self.conv3 = ConvLayer(c256, c512, 3, 2, norm, arch=arch)
        self.res3 = ResidualBlock(c512, 3, norm, arch)
        self.conv4 = ConvLayer(c512, c512, 3, 2, norm, arch=arch)
        self.res4 = ResidualBlock(c512, 3, norm, arch)
        self.to_logit = ConvLayer(c512, 1, arch.logit_kernel, 1, "none", None, arch)

    def forward(self, image: Tensor) -> Tensor:
        _check_image("image", image, 3, (self.image_size, self.image_size))
        x = self.conv2(self.conv1(self.conv0(image)))
        x = self.res4(self.conv4(self.res3(self.conv3(x))))
        return self.to_logit(x)
