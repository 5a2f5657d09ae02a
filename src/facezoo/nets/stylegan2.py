"""StyleGAN2 (Karras et al., CVPR 2020) in plain PyTorch, with rosinality/stylegan2-pytorch's parameter names.

The generator is pSp's decoder and facezoo's unconditional face generator. Its layer structure and every parameter
and buffer name follow ``rosinality/stylegan2-pytorch: model.py``, so that rosinality checkpoints
(``{"g_ema", "g", "d", "latent_avg"}``, e.g. ``stylegan2-ffhq-config-f.pt``) load with ``strict=True`` and give the
same images for the same latents and noise. Nothing here is compiled: the resampling filter ``upfirdn2d`` and the
fused bias + leaky ReLU are a few PyTorch ops each, so the networks run on CPU, CUDA, under bf16 autocast and
``torch.compile``.

How it is made fast without compiled kernels (rosinality's CPU fallback ``op/upfirdn2d.py: upfirdn2d_native``
pads, permutes and filters every channel as a separate 1-channel image):

* FIR filtering is one depthwise convolution (``groups=C``), upsampling a strided depthwise *transposed*
  convolution (no zero-stuffed intermediate), downsampling a strided depthwise convolution that only computes the
  kept pixels; a separable kernel can also run as two 1-D passes (:func:`upfirdn2d`, ``kernel=(ky, kx)``);
* modulated convolutions use stylegan2-ada's "scale the input, shared-weight convolution, scale the output" form,
  which builds no weight tensor per sample, and rosinality's per-sample weights (grouped convolution, batch folded
  into groups) only for a single image at high resolution, where modulating the weight is the cheaper pass;
* the noise, bias, leaky ReLU and its sqrt(2) gain are applied in one or two passes (the gain is folded into the
  bias and the demodulation, which is exact up to rounding because leaky ReLU is positively homogeneous), and
  the generator runs in ``channels_last`` memory format, which oneDNN/cuDNN convolutions prefer.

Loading: :func:`load_rosinality` (infers size, style size, mapping depth and channels from the tensor shapes),
:func:`save_rosinality`, and :func:`convert_stylegan2_ada_state_dict` for NVlabs stylegan2-ada-pytorch generators
(``scripts/convert_stylegan2.py`` is its command line).

Example:
    >>> g = Generator(16, style_dim=8, n_mlp=2, narrow=1 / 64)
    >>> image, _ = g([torch.randn(2, 8)])
    >>> image.shape
    torch.Size([2, 3, 16, 16])
    >>> d = Discriminator(16, narrow=1 / 64)
    >>> d(image).shape
    torch.Size([2, 1])
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import pickle
import random
import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facezoo.utils import FacezooError

__all__ = [
    "make_kernel",
    "upfirdn2d",
    "fused_leaky_relu",
    "FusedLeakyReLU",
    "PixelNorm",
    "Upsample",
    "Downsample",
    "Blur",
    "EqualConv2d",
    "EqualLinear",
    "ModulatedConv2d",
    "NoiseInjection",
    "ConstantInput",
    "StyledConv",
    "ToRGB",
    "Generator",
    "ConvLayer",
    "ResBlock",
    "Discriminator",
    "channel_dict",
    "generator_config_from_state_dict",
    "discriminator_config_from_state_dict",
    "load_rosinality",
    "load_rosinality_discriminator",
    "save_rosinality",
    "estimate_latent_avg",
    "stylegan2_ada_generator_shapes",
    "convert_stylegan2_ada_state_dict",
]

SQRT2 = math.sqrt(2.0)
#: rosinality's default resampling filter taps.
BLUR_KERNEL = (1, 3, 3, 1)
#: Resolutions with a channel entry (rosinality's ``channels`` dict).
RESOLUTIONS = (4, 8, 16, 32, 64, 128, 256, 512, 1024)


# ================================================================================================ resampling ops
def make_kernel(k: Sequence[float] | Tensor) -> Tensor:
    """A 2-D FIR filter normalised to sum 1 (rosinality ``model.py: make_kernel``).

    Args:
        k: 1-D taps (the filter is their outer product, e.g. ``[1, 3, 3, 1]``) or a 2-D filter.

    Returns:
        float32 tensor (K, K) (or the 2-D shape given) summing to 1.

    Example:
        >>> make_kernel([1, 3, 3, 1]).sum().item()
        1.0
    """
    k = torch.as_tensor(k, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    if k.ndim != 2:
        raise ValueError(f"make_kernel: taps must be 1-D or 2-D, got shape {tuple(k.shape)}")
    return k / k.sum()


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if len(value) != 2:
        raise ValueError(f"upfirdn2d: {name} must be an int or (x, y), got {value!r}")
    return int(value[0]), int(value[1])


def _separable_factors(kernel: Tensor) -> tuple[Tensor, Tensor]:
    """(ky, kx) with outer(ky, kx) == kernel for a rank-1 kernel whose sum is not 0."""
    return kernel.sum(1), kernel.sum(0) / kernel.sum()


def _depthwise_fir(x: Tensor, k: Tensor, up: tuple[int, int], down: tuple[int, int], pad: tuple[int, ...]) -> Tensor:
    """One upfirdn2d pass with a 2-D kernel (kh, kw) as a depthwise (transposed) convolution.

    Zero insertion + padding + true convolution + decimation (rosinality's definition) equals, per axis, the
    full convolution of the input with the filter at stride ``up`` (a transposed convolution), cropped or padded
    to ``[K - 1 - pad0, K - 1 - pad0 + L)`` with ``L = n * up + pad0 + pad1 - K + 1``, then every ``down``-th
    sample. Without upsampling it is padding + correlation with the flipped filter at stride ``down``.
    """
    channels = x.shape[1]
    kh, kw = k.shape
    ux, uy = up
    dx, dy = down
    px0, px1, py0, py1 = pad
    k = k.to(dtype=x.dtype)
    if ux == 1 and uy == 1:
        weight = k.flip(0, 1).expand(channels, 1, kh, kw)
        if px0 == px1 >= 0 and py0 == py1 >= 0:
            return F.conv2d(x, weight, stride=(dy, dx), padding=(py0, px0), groups=channels)
        return F.conv2d(F.pad(x, [px0, px1, py0, py1]), weight, stride=(dy, dx), groups=channels)

    height, width = x.shape[2], x.shape[3]
    start_y, start_x = kh - 1 - py0, kw - 1 - px0
    end_y = (height - 1) * uy + kh - (start_y + height * uy + py0 + py1 - kh + 1)  # samples cut at the end
    end_x = (width - 1) * ux + kw - (start_x + width * ux + px0 + px1 - kw + 1)
    weight = k.expand(channels, 1, kh, kw)
    if start_y == end_y >= 0 and start_x == end_x >= 0:
        out = F.conv_transpose2d(x, weight, stride=(uy, ux), padding=(start_y, start_x), groups=channels)
    else:
        out = F.conv_transpose2d(x, weight, stride=(uy, ux), groups=channels)
        out = F.pad(out, [-start_x, -end_x, -start_y, -end_y])
    if dx > 1 or dy > 1:
        out = out[:, :, ::dy, ::dx]
    return out


def upfirdn2d(
    input: Tensor,
    kernel: Tensor | tuple[Tensor, Tensor],
    up: int | tuple[int, int] = 1,
    down: int | tuple[int, int] = 1,
    pad: Sequence[int] = (0, 0),
) -> Tensor:
    """Upsample by zero insertion, pad, FIR-filter, downsample: rosinality ``op/upfirdn2d.py: upfirdn2d``.

    Same numbers as rosinality's ``upfirdn2d_native`` (and the CUDA kernel), computed as depthwise (transposed)
    convolutions: upsampling never builds the zero-stuffed image and downsampling only computes the kept pixels.

    Args:
        input: images (B, C, H, W), any float dtype, any memory format.
        kernel: the filter applied as a true convolution: a 2-D tensor (kh, kw); a 1-D tensor ``k``, meaning the
            separable filter ``outer(k, k)``; or a pair ``(ky, kx)`` of 1-D tensors, meaning ``outer(ky, kx)``.
            Separable filters run as two 1-D passes.
        up: upsampling factor, int or (x, y).
        down: downsampling factor, int or (x, y).
        pad: (pad0, pad1) for both axes, or (x0, x1, y0, y1); negative values crop.

    Returns:
        The filtered images.

    Shape:
        - Output: (B, C, (H * up_y + y0 + y1 - kh) // down_y + 1, (W * up_x + x0 + x1 - kw) // down_x + 1).

    Example:
        >>> k = make_kernel([1, 3, 3, 1]) * 4
        >>> upfirdn2d(torch.ones(1, 2, 8, 8), k, up=2, pad=(2, 1)).shape
        torch.Size([1, 2, 16, 16])
    """
    if input.ndim != 4:
        raise ValueError(f"upfirdn2d: input must be (B, C, H, W), got shape {tuple(input.shape)}")
    up, down = _pair(up, "up"), _pair(down, "down")
    if len(pad) == 2:
        pad = (pad[0], pad[1], pad[0], pad[1])
    if len(pad) != 4:
        raise ValueError(f"upfirdn2d: pad must have 2 or 4 entries, got {tuple(pad)}")
    px0, px1, py0, py1 = (int(p) for p in pad)
    if isinstance(kernel, (tuple, list)):
        ky, kx = kernel
    elif kernel.ndim == 1:
        ky = kx = kernel
    elif kernel.ndim == 2:
        return _depthwise_fir(input, kernel, up, down, (px0, px1, py0, py1))
    else:
        raise ValueError(f"upfirdn2d: kernel must be 1-D, 2-D or a (ky, kx) pair, got shape {tuple(kernel.shape)}")
    out = _depthwise_fir(input, kx[None, :], (up[0], 1), (down[0], 1), (px0, px1, 0, 0))
    return _depthwise_fir(out, ky[:, None], (1, up[1]), (1, down[1]), (0, 0, py0, py1))


def fused_leaky_relu(
    input: Tensor, bias: Tensor | None = None, negative_slope: float = 0.2, scale: float = SQRT2
) -> Tensor:
    """``leaky_relu(input + bias) * scale``: rosinality ``op/fused_act.py: fused_leaky_relu``.

    The scale is applied before the activation (``leaky_relu(scale * input + scale * bias)``, equal because leaky
    ReLU is positively homogeneous), so the whole op is one allocation and one in-place pass.

    Args:
        input: (B, C, ...) features.
        bias: (C,) added along dim 1, or ``None``.
        negative_slope: slope for negative inputs.
        scale: gain after the activation (sqrt(2) keeps the variance of unit Gaussian inputs), must be > 0.

    Returns:
        Tensor shaped like ``input``.

    Example:
        >>> fused_leaky_relu(torch.tensor([[-1.0, 2.0]]), torch.zeros(2), scale=1.0)
        tensor([[-0.2000,  2.0000]])
    """
    if bias is None:
        out = input * scale
    else:
        out = torch.add((bias * scale).view(1, -1, *([1] * (input.ndim - 2))), input, alpha=scale)
    return F.leaky_relu(out, negative_slope, inplace=True)


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU + gain as a module with a learnable ``bias`` (rosinality ``op/fused_act.py``).

    Args:
        channel: number of channels C.
        bias: learn a bias (C,), zeros at init.
        negative_slope: slope for negative inputs.
        scale: gain after the activation.
    """

    def __init__(self, channel: int, bias: bool = True, negative_slope: float = 0.2, scale: float = SQRT2):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel)) if bias else None
        self.negative_slope = negative_slope
        self.scale = scale

    def forward(self, input: Tensor) -> Tensor:
        return fused_leaky_relu(input, self.bias, self.negative_slope, self.scale)


class _FIR(nn.Module):
    """Shared part of Upsample / Downsample / Blur: a 2-D ``kernel`` buffer (rosinality's name) and its padding."""

    kernel: Tensor

    def __init__(self, kernel: Tensor, pad: tuple[int, int], up: int = 1, down: int = 1):
        super().__init__()
        self.register_buffer("kernel", kernel)
        self.pad = pad
        self.up, self.down = up, down
        #: run the filter as two 1-D passes (only when the kernel is rank 1); one 2-D depthwise pass measured
        #: faster on CPU for 4-tap filters, so this is off by default.
        self.separable = False

    def fir_kernel(self) -> Tensor | tuple[Tensor, Tensor]:
        return _separable_factors(self.kernel) if self.separable else self.kernel

    def forward(self, input: Tensor) -> Tensor:
        return upfirdn2d(input, self.fir_kernel(), up=self.up, down=self.down, pad=self.pad)

    def extra_repr(self) -> str:
        return f"kernel={tuple(self.kernel.shape)}, up={self.up}, down={self.down}, pad={self.pad}"


class Upsample(_FIR):
    """2x (or ``factor``) upsampling with a FIR filter (rosinality ``model.py: Upsample``).

    Args:
        kernel: 1-D filter taps, e.g. ``[1, 3, 3, 1]``.
        factor: upsampling factor.

    Shape:
        - Input: (B, C, H, W); Output: (B, C, H * factor, W * factor).
    """

    def __init__(self, kernel: Sequence[float] = BLUR_KERNEL, factor: int = 2):
        k = make_kernel(kernel) * factor**2
        p = k.shape[0] - factor
        super().__init__(k, ((p + 1) // 2 + factor - 1, p // 2), up=factor)
        self.factor = factor


class Downsample(_FIR):
    """2x (or ``factor``) downsampling with a FIR filter (rosinality ``model.py: Downsample``).

    Args:
        kernel: 1-D filter taps.
        factor: downsampling factor.

    Shape:
        - Input: (B, C, H, W); Output: (B, C, H // factor, W // factor).
    """

    def __init__(self, kernel: Sequence[float] = BLUR_KERNEL, factor: int = 2):
        k = make_kernel(kernel)
        p = k.shape[0] - factor
        super().__init__(k, ((p + 1) // 2, p // 2), down=factor)
        self.factor = factor


class Blur(_FIR):
    """FIR low-pass filter with explicit padding (rosinality ``model.py: Blur``).

    Args:
        kernel: 1-D filter taps.
        pad: (pad0, pad1) on both axes.
        upsample_factor: the kernel is multiplied by its square (the filter that follows a stride-2 transposed
            convolution must restore the gain lost to the inserted zeros).
    """

    def __init__(self, kernel: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        k = make_kernel(kernel)
        if upsample_factor > 1:
            k = k * upsample_factor**2
        super().__init__(k, tuple(pad))


# ======================================================================================================= layers
class PixelNorm(nn.Module):
    """Normalise each latent to unit mean square over dim 1 (rosinality ``model.py: PixelNorm``)."""

    def forward(self, input: Tensor) -> Tensor:
        return input * torch.rsqrt(torch.mean(input**2, dim=1, keepdim=True) + 1e-8)


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate: weights N(0, 1) scaled by 1/sqrt(fan_in) at run time.

    Args:
        in_channel: input channels.
        out_channel: output channels.
        kernel_size: square kernel size.
        stride: convolution stride.
        padding: zero padding.
        bias: learn a bias (zeros at init).
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.stride = stride
        self.padding = padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, input: Tensor) -> Tensor:
        return F.conv2d(input, self.weight * self.scale, bias=self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"{i}, {o}, {k}, stride={self.stride}, padding={self.padding}"


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate and an optional fused leaky ReLU (rosinality ``EqualLinear``).

    Args:
        in_dim: input features.
        out_dim: output features.
        bias: learn a bias.
        bias_init: initial bias value (1 for style modulation).
        lr_mul: learning-rate multiplier: weights are stored divided by it and multiplied back at run time
            (0.01 in the mapping network).
        activation: ``None`` (linear) or ``"fused_lrelu"``.
    """

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: str | None = None):
        super().__init__()
        if activation not in (None, "fused_lrelu"):
            raise ValueError(f"EqualLinear: activation must be None or 'fused_lrelu', got {activation!r}")
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.zeros(out_dim).fill_(bias_init)) if bias else None
        self.activation = activation
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, input: Tensor) -> Tensor:
        # the scale multiplies the (small) input instead of the weight matrix: no weight-sized copy per call
        bias = None if self.bias is None else self.bias * self.lr_mul
        if self.activation:
            # leaky_relu(x W s + b) * sqrt2 == leaky_relu((x s sqrt2) W + b sqrt2): the gain rides on the matmul
            out = F.linear(input * (self.scale * SQRT2), self.weight, None if bias is None else bias * SQRT2)
            return F.leaky_relu(out, 0.2, inplace=True)
        return F.linear(input * self.scale, self.weight, bias)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, lr_mul={self.lr_mul}, activation={self.activation}"


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution with optional demodulation and 2x up/downsampling (rosinality ``ModulatedConv2d``).

    The weight ``(1, O, I, k, k)`` is scaled per sample by ``style`` (an affine map of the latent, bias init 1) and,
    with ``demodulate``, renormalised to unit norm per output channel. Upsampling is a stride-2 transposed
    convolution followed by a FIR blur, downsampling a blur followed by a stride-2 convolution.

    Two equivalent computations: ``fused`` (rosinality's: per-sample weights, batch folded into the groups of one
    grouped convolution) and not fused (stylegan2-ada's ``fused_modconv=False``: scale the input channels, one
    convolution with the shared weight, scale the output channels by the demodulation coefficients).

    Args:
        in_channel: input channels I.
        out_channel: output channels O.
        kernel_size: square kernel size k.
        style_dim: latent size.
        demodulate: normalise the modulated weight per output channel.
        upsample: 2x upsampling.
        downsample: 2x downsampling.
        blur_kernel: FIR taps for the resampling filter.
        fused: ``True`` grouped convolution, ``False`` shared-weight convolution, ``None`` (default) the cheaper of
            the two: fused for a batch of one when the input has at least ``out_channel * k * k`` pixels (modulating
            the weight then costs less than scaling the input), shared-weight otherwise.

    Shape:
        - input: (B, I, H, W), style: (B, style_dim); output: (B, O, H', W') with H' = 2H / H / H/2.
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, downsample: bool = False, blur_kernel: Sequence[float] = BLUR_KERNEL,
                 fused: bool | None = None):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        self.downsample = downsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2, p // 2))
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate
        self.fused = fused

    def extra_repr(self) -> str:
        return (f"{self.in_channel}, {self.out_channel}, {self.kernel_size}, upsample={self.upsample}, "
                f"downsample={self.downsample}, demodulate={self.demodulate}, fused={self.fused}")

    def modulated(self, input: Tensor, style: Tensor, gain: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """The convolution, with the demodulation left to the caller when that saves a pass.

        Returns ``(out, dcoefs)``: the result is ``out * dcoefs[:, :, None, None]`` when ``dcoefs`` is a (B, O)
        tensor, else ``out`` itself. Either way it is multiplied by ``gain`` (> 0); StyledConv folds the
        activation gain and the demodulation into its noise + bias pass.
        """
        batch, in_channel, height, width = input.shape
        style = self.modulation(style) * self.scale          # (B, I); the 1/sqrt(fan_in) scale rides on the style
        weight = self.weight[0]                                 # (O, I, k, k): the parameter, no per-call copy
        fused = self.fused
        if fused is None:
            # per-sample weights cost O*I*k*k per sample, input scaling I*H*W: fused only pays for a single image
            # at high resolution (and the grouped convolution of a batch is slower than a shared-weight one)
            fused = batch == 1 and height * width >= self.out_channel * self.kernel_size**2
        dcoefs = None
        if self.demodulate:
            # sum_{i,k} (w_oik s_i)^2 = s^2 @ (sum_k w_oik^2); without autograd, vector_norm reduces the weight
            # without a weight-sized temporary
            wsq = (weight.square().sum((2, 3)) if torch.is_grad_enabled()
                   else torch.linalg.vector_norm(weight, dim=(2, 3)).square())
            dcoefs = torch.rsqrt(style.square() @ wsq.t() + self.eps) * gain      # (B, O)
        elif gain != 1:
            style = style * gain

        if not fused:
            x = input * style.view(batch, in_channel, 1, 1)
            if self.upsample:
                out = self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
            elif self.downsample:
                out = F.conv2d(self.blur(x), weight, stride=2)
            else:
                out = F.conv2d(x, weight, padding=self.padding)
            return out, dcoefs

        coef = style.view(batch, 1, in_channel)
        if dcoefs is not None:
            coef = coef * dcoefs.view(batch, self.out_channel, 1)
        weight = weight.unsqueeze(0) * coef.view(*coef.shape, 1, 1)             # (B, O, I, k, k), one tensor
        k = self.kernel_size
        if batch == 1:                                                          # plain conv, keeps memory format
            weight = weight[0]
            if self.upsample:
                return self.blur(F.conv_transpose2d(input, weight.transpose(0, 1), stride=2)), None
            if self.downsample:
                return F.conv2d(self.blur(input), weight, stride=2), None
            return F.conv2d(input, weight, padding=self.padding), None
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_channel, self.out_channel, k, k)
            out = F.conv_transpose2d(input.reshape(1, batch * in_channel, height, width), weight, stride=2,
                                     groups=batch)
            return self.blur(out.view(batch, self.out_channel, out.shape[2], out.shape[3])), None
        weight = weight.reshape(batch * self.out_channel, in_channel, k, k)
        if self.downsample:
            input = self.blur(input)
            height, width = input.shape[2], input.shape[3]
            out = F.conv2d(input.reshape(1, batch * in_channel, height, width), weight, stride=2, groups=batch)
        else:
            out = F.conv2d(input.reshape(1, batch * in_channel, height, width), weight, padding=self.padding,
                           groups=batch)
        return out.view(batch, self.out_channel, out.shape[2], out.shape[3]), None

    def forward(self, input: Tensor, style: Tensor) -> Tensor:
        out, dcoefs = self.modulated(input, style)
        if dcoefs is not None:
            out = out * dcoefs.view(*dcoefs.shape, 1, 1)
        return out


class NoiseInjection(nn.Module):
    """Add per-pixel Gaussian noise scaled by a learned scalar ``weight`` (zero at init).

    Shape:
        - image: (B, C, H, W); noise: (B or 1, 1, H, W) or ``None`` (drawn N(0, 1)).
    """

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, image: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            batch, _, height, width = image.shape
            noise = image.new_empty(batch, 1, height, width).normal_()
        return image + self.weight * noise


class ConstantInput(nn.Module):
    """The learned constant (1, C, size, size) that starts synthesis, repeated over the batch."""

    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, input: Tensor) -> Tensor:
        return self.input.repeat(input.shape[0], 1, 1, 1)


class StyledConv(nn.Module):
    """ModulatedConv2d → NoiseInjection → FusedLeakyReLU (rosinality ``StyledConv``), computed in fused passes.

    Args:
        in_channel: input channels.
        out_channel: output channels.
        kernel_size: square kernel size.
        style_dim: latent size.
        upsample: 2x upsampling before the convolution.
        blur_kernel: FIR taps.
        demodulate: weight demodulation.

    Shape:
        - input: (B, in_channel, H, W), style: (B, style_dim), noise: (B or 1, 1, H', W') or ``None``;
          output (B, out_channel, H', W').
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[float] = BLUR_KERNEL, demodulate: bool = True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel, demodulate=demodulate)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, input: Tensor, style: Tensor, noise: Tensor | None = None) -> Tensor:
        act = self.activate
        gain = act.scale
        # leaky_relu(conv + w_n * noise + b) * gain, with the gain moved inside (positive homogeneity)
        out, dcoefs = self.conv.modulated(input, style, gain=gain)
        bias = (act.bias * gain).view(1, -1, 1, 1)
        if torch.is_grad_enabled():
            # out-of-place first: autograd keeps the convolution output for the gradient of dcoefs
            out = torch.add(bias, out) if dcoefs is None else torch.addcmul(bias, out, dcoefs[:, :, None, None])
        else:
            # inference: every step in place on the convolution output (no new full-size tensors)
            out = out if dcoefs is None else out.mul_(dcoefs[:, :, None, None])
            out = out.add_(bias)
        if noise is None:
            batch, _, height, width = out.shape
            noise = out.new_empty(batch, 1, height, width).normal_()
        out = out.addcmul_(noise, self.noise.weight * gain)
        return F.leaky_relu(out, act.negative_slope, inplace=True)


def _modulated_1x1(input: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """Per-sample 1x1 convolution ``weight`` (B, O, I) plus ``bias`` (O,) as one batched matmul, any memory format."""
    batch, in_channel, height, width = input.shape
    out_channel = weight.shape[1]
    if input.is_contiguous(memory_format=torch.channels_last) and not input.is_contiguous():
        x = input.permute(0, 2, 3, 1).reshape(batch, height * width, in_channel)
        out = torch.baddbmm(bias.view(1, 1, out_channel), x, weight.transpose(1, 2))
        return out.view(batch, height, width, out_channel).permute(0, 3, 1, 2)
    out = torch.baddbmm(bias.view(1, out_channel, 1), weight, input.reshape(batch, in_channel, height * width))
    return out.view(batch, out_channel, height, width)


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to RGB (no demodulation) + bias, plus the upsampled RGB of the previous resolution.

    Args:
        in_channel: input channels.
        style_dim: latent size.
        upsample: whether a skip image from the previous resolution is added (it is upsampled 2x).
        blur_kernel: FIR taps for the skip upsampling.

    Shape:
        - input: (B, in_channel, H, W), style: (B, style_dim), skip: (B, 3, H/2, W/2); output (B, 3, H, W).
    """

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True,
                 blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, input: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        conv = self.conv
        style = conv.modulation(style)
        weight = conv.weight[0, :, :, 0, 0] * conv.scale                           # (3, I)
        out = _modulated_1x1(input, weight.unsqueeze(0) * style.unsqueeze(1), self.bias.view(-1))
        if skip is not None:
            out = out + self.upsample(skip)
        return out


def channel_dict(channel_multiplier: int = 2, narrow: float = 1.0) -> dict[int, int]:
    """Channels per resolution: rosinality's dict (512 up to 32 px, then ``2**14 / res * channel_multiplier``).

    Args:
        channel_multiplier: 2 for config-f (FFHQ 1024), 1 for the smaller configs.
        narrow: width factor applied to every entry (e.g. 1/8 for a CPU-sized network); at least 1 channel.

    Returns:
        ``{resolution: channels}`` for resolutions 4 .. 1024.

    Example:
        >>> channel_dict(2)[1024], channel_dict(1, narrow=0.125)[4]
        (32, 64)
    """
    base = {4: 512, 8: 512, 16: 512, 32: 512}
    base.update({res: (2**14 // res) * channel_multiplier for res in RESOLUTIONS[4:]})
    return {res: max(1, int(c * narrow)) for res, c in base.items()}


def _check_size(size: int, who: str) -> int:
    if not isinstance(size, int) or size < 8 or size > 1024 or size & (size - 1):
        raise ValueError(f"{who}: size must be a power of two in 8..1024, got {size!r}")
    return int(math.log2(size))


def _resolve_channels(size, channel_multiplier, narrow, channels, who) -> dict[int, int]:
    chans = channel_dict(channel_multiplier, narrow)
    if channels is not None:
        missing = [r for r in RESOLUTIONS if r <= size and r not in channels]
        if missing:
            raise ValueError(f"{who}: channels needs an entry for every resolution up to {size}, missing {missing}")
        chans.update({int(r): int(c) for r, c in channels.items()})
    return chans


class Generator(nn.Module):
    """StyleGAN2 generator with rosinality's structure, names and call signature (``model.py: Generator``).

    Mapping: PixelNorm + ``n_mlp`` EqualLinear layers (lr multiplier ``lr_mlp``, fused leaky ReLU). Synthesis:
    constant 4x4 input, per resolution one upsampling and one plain StyledConv (modulated 3x3 convolutions with
    demodulation, noise, bias, leaky ReLU) and a ToRGB added to the upsampled RGB of the previous resolution.

    Args:
        size: output resolution, a power of two in 8..1024.
        style_dim: latent size (512 for released models).
        n_mlp: mapping layers (8).
        channel_multiplier: 2 for config-f, 1 for smaller configs (channels at 64 px and above).
        blur_kernel: FIR taps for resampling.
        lr_mlp: learning-rate multiplier of the mapping network.
        narrow: width factor on every channel count (1 = released architecture).
        channels: explicit ``{resolution: channels}`` overriding the dict (e.g. converted stylegan2-ada nets).
        channels_last: run the synthesis in ``channels_last`` memory format (faster convolutions); the returned
            image is contiguous either way.

    Attributes:
        n_latent: number of W+ entries, ``2 * log2(size) - 2``.
        num_layers: number of noise inputs, ``2 * log2(size) - 3``.

    Example:
        >>> g = Generator(32, 16, 2, narrow=1 / 32)
        >>> w = g.get_latent(torch.randn(3, 16))
        >>> image, latent = g([w], input_is_latent=True, return_latents=True, randomize_noise=False)
        >>> image.shape, latent.shape
        (torch.Size([3, 3, 32, 32]), torch.Size([3, 8, 16]))
    """

    def __init__(self, size: int, style_dim: int = 512, n_mlp: int = 8, channel_multiplier: int = 2,
                 blur_kernel: Sequence[float] = BLUR_KERNEL, lr_mlp: float = 0.01, narrow: float = 1.0,
                 channels: Mapping[int, int] | None = None, channels_last: bool = True):
        super().__init__()
        self.log_size = _check_size(size, "Generator")
        self.size = size
        self.style_dim = style_dim
        self.n_mlp = n_mlp
        self.channel_multiplier = channel_multiplier
        self.narrow = narrow
        self.blur_kernel = tuple(blur_kernel)
        self.lr_mlp = lr_mlp
        self.channels_last = channels_last

        layers: list[nn.Module] = [PixelNorm()]
        for _ in range(n_mlp):
            layers.append(EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu"))
        self.style = nn.Sequential(*layers)

        self.channels = _resolve_channels(size, channel_multiplier, narrow, channels, "Generator")
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.num_layers = (self.log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()   # empty, kept because rosinality's module has it
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, 2**res, 2**res))
        in_channel = self.channels[4]
        for i in range(3, self.log_size + 1):
            out_channel = self.channels[2**i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True,
                                         blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel
        self.n_latent = self.log_size * 2 - 2

    def extra_repr(self) -> str:
        return (f"size={self.size}, style_dim={self.style_dim}, n_mlp={self.n_mlp}, "
                f"channels={[self.channels[2**i] for i in range(2, self.log_size + 1)]}")

    def config(self) -> dict:
        """Constructor arguments that rebuild this architecture (``Generator(**g.config())``)."""
        return {"size": self.size, "style_dim": self.style_dim, "n_mlp": self.n_mlp,
                "channel_multiplier": self.channel_multiplier, "blur_kernel": list(self.blur_kernel),
                "lr_mlp": self.lr_mlp, "narrow": self.narrow,
                "channels": {2**i: self.channels[2**i] for i in range(2, self.log_size + 1)}}

    def make_noise(self) -> list[Tensor]:
        """Fresh N(0, 1) noise maps, one per layer: [(1, 1, 4, 4), (1, 1, 8, 8) x 2, ..., (1, 1, size, size) x 2]."""
        device = self.input.input.device
        noises = [torch.randn(1, 1, 4, 4, device=device)]
        for i in range(3, self.log_size + 1):
            for _ in range(2):
                noises.append(torch.randn(1, 1, 2**i, 2**i, device=device))
        return noises

    def mean_latent(self, n_latent: int) -> Tensor:
        """Mean of ``n_latent`` mapped N(0, I) latents, (1, style_dim), in one batch (rosinality's method).

        For the 10^5-sample average of released models use :func:`estimate_latent_avg` (chunked).
        """
        latent_in = torch.randn(n_latent, self.style_dim, device=self.input.input.device)
        return self.style(latent_in).mean(0, keepdim=True)

    def get_latent(self, input: Tensor) -> Tensor:
        """Map z (B, style_dim) to w (B, style_dim)."""
        return self.style(input)

    def forward(
        self,
        styles: Sequence[Tensor] | Tensor,
        return_latents: bool = False,
        inject_index: int | None = None,
        truncation: float = 1,
        truncation_latent: Tensor | None = None,
        input_is_latent: bool = False,
        noise: Sequence[Tensor | None] | None = None,
        randomize_noise: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Synthesize images (rosinality's signature and semantics).

        Args:
            styles: a list of one or two latents (a single tensor is taken as a list of one). z (B, style_dim), or
                with ``input_is_latent`` w (B, style_dim) or W+ (B, n_latent, style_dim).
            return_latents: also return the W+ latents used.
            inject_index: style mixing with two latents: W+ entries ``[0, inject_index)`` from the first, the rest
                from the second; ``None`` draws it uniformly in ``[1, n_latent - 1]`` (Python ``random``).
            truncation: ``< 1`` pulls every latent toward ``truncation_latent`` (truncation trick).
            truncation_latent: the average w (1, style_dim) or (style_dim,), e.g. :meth:`mean_latent`.
            input_is_latent: ``styles`` are w / W+ already (skip the mapping network).
            noise: one noise map per layer (see :meth:`make_noise`; ``None`` entries draw fresh noise); overrides
                ``randomize_noise``.
            randomize_noise: ``True`` draws fresh noise, ``False`` uses the stored ``noises.noise_<i>`` buffers.

        Returns:
            ``(image, latent)``: images (B, 3, size, size), nominally in [-1, 1] (not clamped), and the W+ latent
            (B, n_latent, style_dim) if ``return_latents`` else ``None``.
        """
        if isinstance(styles, Tensor):
            styles = [styles]
        if not isinstance(styles, (list, tuple)) or not 1 <= len(styles) <= 2:
            raise ValueError(f"Generator: styles must be a list of one or two latents, got {type(styles).__name__}"
                             f"{'' if not isinstance(styles, (list, tuple)) else f' of length {len(styles)}'}")
        for s in styles:
            allowed = (2, 3) if input_is_latent else (2,)
            if s.ndim not in allowed or s.shape[-1] != self.style_dim or (s.ndim == 3 and s.shape[1] != self.n_latent):
                want = f"(B, {self.style_dim})" + (f" or (B, {self.n_latent}, {self.style_dim})"
                                                    if input_is_latent else "")
                raise ValueError(f"Generator: each style must be {want}, got {tuple(s.shape)}")
        if not input_is_latent:
            styles = [self.style(s) for s in styles]

        if noise is None:
            if randomize_noise:
                noise = [None] * self.num_layers
            else:
                noise = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        elif len(noise) != self.num_layers:
            raise ValueError(f"Generator: noise must be a list of {self.num_layers} maps, got {len(noise)}")

        if truncation < 1:
            if truncation_latent is None:
                raise ValueError("Generator: truncation < 1 needs truncation_latent (e.g. g.mean_latent(4096))")
            styles = [truncation_latent + truncation * (style - truncation_latent) for style in styles]

        if len(styles) < 2:
            latent = styles[0]
            if latent.ndim < 3:
                latent = latent.unsqueeze(1).repeat(1, self.n_latent, 1)
        else:
            if inject_index is None:
                inject_index = random.randint(1, self.n_latent - 1)
            first, second = (s if s.ndim == 3 else s.unsqueeze(1).repeat(1, self.n_latent, 1) for s in styles)
            latent = torch.cat([first[:, :inject_index], second[:, inject_index:]], 1)

        out = self.input(latent)
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        out = self.conv1(out, latent[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, latent[:, 1])
        i = 1
        for conv1, conv2, noise1, noise2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2],
                                                        noise[2::2], self.to_rgbs):
            out = conv1(out, latent[:, i], noise=noise1)
            out = conv2(out, latent[:, i + 1], noise=noise2)
            skip = to_rgb(out, latent[:, i + 2], skip)
            i += 2
        image = skip.contiguous()
        return (image, latent) if return_latents else (image, None)


class ConvLayer(nn.Sequential):
    """[Blur] → EqualConv2d → [FusedLeakyReLU], as rosinality's ``ConvLayer`` (same Sequential indices).

    The forward pass fuses the activation's bias and gain into the convolution and, for a 1x1 downsampling
    convolution, filters only the kept pixels (blur and 1x1 convolution commute).

    Args:
        in_channel: input channels.
        out_channel: output channels.
        kernel_size: square kernel size.
        downsample: 2x downsampling (blur, then stride 2).
        blur_kernel: FIR taps.
        bias: learn a bias (in the activation if ``activate``, else in the convolution).
        activate: leaky ReLU with gain sqrt(2).
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[float] = BLUR_KERNEL, bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            factor = 2
            p = (len(blur_kernel) - factor) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channel, out_channel, kernel_size, padding=padding, stride=stride,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channel, bias=bias))
        super().__init__(*layers)
        self.padding = padding
        self.downsample = downsample
        self.activate = activate

    def forward(self, input: Tensor, gain: float = 1.0) -> Tensor:
        """Output times ``gain`` (> 0), folded into the convolution."""
        conv: EqualConv2d = self[1] if self.downsample else self[0]
        x, stride = input, conv.stride
        if self.downsample:
            blur: Blur = self[0]
            if conv.weight.shape[-1] == 1:         # 1x1 conv after the blur: blur at stride 2 instead
                x, stride = upfirdn2d(x, blur.fir_kernel(), down=2, pad=blur.pad), 1
            else:
                x = blur(x)
        if self.activate:
            act: FusedLeakyReLU = self[-1]
            g = act.scale * gain
            bias = None if act.bias is None else act.bias * g
            out = F.conv2d(x, conv.weight * (conv.scale * g), bias, stride=stride, padding=conv.padding)
            return F.leaky_relu(out, act.negative_slope, inplace=True)
        bias = None if conv.bias is None else conv.bias * gain
        return F.conv2d(x, conv.weight * (conv.scale * gain), bias, stride=stride, padding=conv.padding)


class ResBlock(nn.Module):
    """Residual discriminator block: two 3x3 ConvLayers (the second downsamples) + a 1x1 downsampling skip, / sqrt 2.

    Shape:
        - input: (B, in_channel, H, W); output (B, out_channel, H/2, W/2).
    """

    def __init__(self, in_channel: int, out_channel: int, blur_kernel: Sequence[float] = BLUR_KERNEL):
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_channel, out_channel, 1, downsample=True, activate=False, bias=False,
                              blur_kernel=blur_kernel)

    def forward(self, input: Tensor) -> Tensor:
        out = self.conv2(self.conv1(input), gain=1 / SQRT2)
        return out + self.skip(input, gain=1 / SQRT2)


class Discriminator(nn.Module):
    """StyleGAN2 ResNet discriminator with minibatch standard deviation (rosinality ``model.py: Discriminator``).

    Args:
        size: input resolution, a power of two in 8..1024.
        channel_multiplier: 2 for config-f, 1 for smaller configs.
        blur_kernel: FIR taps for downsampling.
        narrow: width factor on every channel count.
        channels: explicit ``{resolution: channels}`` overriding the dict.
        stddev_group: minibatch-stddev group size (the batch must be divisible by ``min(batch, group)``).
        stddev_feat: number of minibatch-stddev feature maps (1).
        channels_last: run in ``channels_last`` memory format (faster convolutions).

    Shape:
        - input: images (B, 3, size, size) in [-1, 1]; output logits (B, 1).
    """

    def __init__(self, size: int, channel_multiplier: int = 2, blur_kernel: Sequence[float] = BLUR_KERNEL,
                 narrow: float = 1.0, channels: Mapping[int, int] | None = None, stddev_group: int = 4,
                 stddev_feat: int = 1, channels_last: bool = True):
        super().__init__()
        log_size = _check_size(size, "Discriminator")
        self.size = size
        self.channel_multiplier = channel_multiplier
        self.narrow = narrow
        self.blur_kernel = tuple(blur_kernel)
        self.channels_last = channels_last
        chans = _resolve_channels(size, channel_multiplier, narrow, channels, "Discriminator")
        self.channels = chans
        convs: list[nn.Module] = [ConvLayer(3, chans[size], 1)]
        in_channel = chans[size]
        for i in range(log_size, 2, -1):
            out_channel = chans[2 ** (i - 1)]
            convs.append(ResBlock(in_channel, out_channel, blur_kernel))
            in_channel = out_channel
        self.convs = nn.Sequential(*convs)
        self.stddev_group = stddev_group
        self.stddev_feat = stddev_feat
        self.final_conv = ConvLayer(in_channel + 1, chans[4], 3)
        self.final_linear = nn.Sequential(
            EqualLinear(chans[4] * 4 * 4, chans[4], activation="fused_lrelu"),
            EqualLinear(chans[4], 1),
        )

    def config(self) -> dict:
        """Constructor arguments that rebuild this architecture."""
        return {"size": self.size, "channel_multiplier": self.channel_multiplier,
                "blur_kernel": list(self.blur_kernel), "narrow": self.narrow,
                "channels": {r: c for r, c in self.channels.items() if r <= self.size},
                "stddev_group": self.stddev_group, "stddev_feat": self.stddev_feat}

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim != 4 or input.shape[1] != 3 or input.shape[2:] != (self.size, self.size):
            raise ValueError(f"Discriminator: input must be (B, 3, {self.size}, {self.size}), "
                             f"got {tuple(input.shape)}")
        if self.channels_last:
            input = input.contiguous(memory_format=torch.channels_last)
        out = self.convs(input)
        batch, channel, height, width = out.shape
        group = min(batch, self.stddev_group)
        if batch % group:
            raise ValueError(f"Discriminator: batch {batch} is not divisible by the stddev group {group}")
        stddev = out.reshape(group, -1, self.stddev_feat, channel // self.stddev_feat, height, width)
        stddev = torch.sqrt(stddev.var(0, unbiased=False) + 1e-8)
        stddev = stddev.mean([2, 3, 4], keepdim=True).squeeze(2)
        stddev = stddev.repeat(group, 1, height, width)
        out = torch.cat([out, stddev], 1)
        out = self.final_conv(out)
        out = out.reshape(batch, -1)
        return self.final_linear(out)


# ============================================================================================ checkpoint formats
def _fail(source: str, message: str) -> FacezooError:
    return FacezooError(f"{source}: {message}")


def _short(names: Sequence[str], n: int = 4) -> str:
    names = list(names)
    more = f" (+{len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def _blur_kernel_from(kernel: Tensor, factor: float) -> list[float]:
    """1-D taps that rebuild a stored 2-D resampling kernel (make_kernel(taps) * factor)."""
    default = make_kernel(BLUR_KERNEL) * factor
    if kernel.shape == default.shape and torch.allclose(kernel.float(), default, atol=1e-6):
        return list(BLUR_KERNEL)
    return (kernel.float().sum(1) / kernel.float().sum()).tolist()


def _fit_multiplier(chans: dict[int, int], size: int) -> tuple[int, float] | None:
    """(channel_multiplier, narrow) that reproduce ``chans`` exactly, if any."""
    narrow = chans[4] / 512
    candidates = [2, 1] + ([] if size < 64 else [max(1, round(chans[64] / (256 * narrow)))])
    for cm in candidates:
        ref = channel_dict(cm, narrow)
        if all(ref[r] == c for r, c in chans.items()):
            return cm, narrow
    return None


def _architecture(config: dict, chans: dict[int, int], blur: Tensor | None, blur_factor: float) -> dict:
    """``config`` plus the channels (as a multiplier and width when they fit one, else the table) and the blur
    kernel (stored scaled by ``blur_factor``) found in a state dict."""
    fit = _fit_multiplier(chans, config["size"])
    if fit is not None:
        config["channel_multiplier"], config["narrow"] = fit
    else:
        config["channels"] = chans
    if blur is not None:
        config["blur_kernel"] = _blur_kernel_from(blur, blur_factor)
    return config


def generator_config_from_state_dict(state_dict: Mapping[str, Tensor], source: str = "state dict") -> dict:
    """Infer :class:`Generator` arguments (size, style_dim, n_mlp, channels, blur kernel) from tensor shapes.

    Args:
        state_dict: a rosinality generator state dict (``g_ema`` / ``g``).
        source: name used in error messages (a file path).

    Returns:
        keyword arguments for :class:`Generator` (``lr_mlp`` is not stored in a state dict: pass it yourself
        when it is not 0.01).

    Raises:
        FacezooError: the dict is not a rosinality generator (one line naming the missing key).
    """
    for key in ("input.input", "style.1.weight", "conv1.conv.weight"):
        if key not in state_dict:
            raise _fail(source, f"not a rosinality StyleGAN2 generator state dict (no {key!r})")
    n_mlp = len([k for k in state_dict if re.fullmatch(r"style\.\d+\.weight", k)])
    style_dim = int(state_dict["style.1.weight"].shape[1])
    n_rgbs = len([k for k in state_dict if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    size = 2 ** (n_rgbs + 2)
    chans = {4: int(state_dict["input.input"].shape[1])}
    for i in range(n_rgbs):
        key = f"convs.{2 * i}.conv.weight"
        if key not in state_dict:
            raise _fail(source, f"not a rosinality StyleGAN2 generator state dict (no {key!r})")
        chans[2 ** (i + 3)] = int(state_dict[key].shape[1])
    return _architecture({"size": size, "style_dim": style_dim, "n_mlp": n_mlp}, chans,
                         state_dict.get("convs.0.conv.blur.kernel"), 4.0)


def discriminator_config_from_state_dict(state_dict: Mapping[str, Tensor], source: str = "state dict") -> dict:
    """Infer :class:`Discriminator` arguments (size, channels, blur kernel) from a rosinality ``d`` state dict."""
    for key in ("convs.0.0.weight", "final_conv.0.weight", "final_linear.0.weight"):
        if key not in state_dict:
            raise _fail(source, f"not a rosinality StyleGAN2 discriminator state dict (no {key!r})")
    n_blocks = len([k for k in state_dict if re.fullmatch(r"convs\.\d+\.conv1\.0\.weight", k)])
    size = 2 ** (n_blocks + 2)
    chans = {size: int(state_dict["convs.0.0.weight"].shape[0])}
    for j in range(1, n_blocks + 1):
        chans[2 ** (n_blocks + 2 - j)] = int(state_dict[f"convs.{j}.conv2.1.weight"].shape[0])
    return _architecture({"size": size}, chans, state_dict.get("convs.1.conv2.0.kernel"), 1.0)


def _load_strict(module: nn.Module, state_dict: Mapping[str, Tensor], source: str) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        parts = ([f"missing {_short(missing)}"] if missing else []) + (
            [f"unexpected {_short(unexpected)}"] if unexpected else [])
        raise _fail(source, "keys do not match the inferred architecture: " + "; ".join(parts))
    wrong = [f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
             if tuple(state_dict[k].shape) != tuple(v.shape)]
    if wrong:
        raise _fail(source, f"wrong shapes: {_short(wrong, 2)}")
    module.load_state_dict(state_dict, strict=True)


def _read_checkpoint(path: str | os.PathLike, map_location) -> Mapping:
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FacezooError(f"{source}: no such file")
    try:
        # rosinality train.py checkpoints also hold their argparse Namespace ("args"): allow that class only
        allow = getattr(torch.serialization, "safe_globals", None)       # torch >= 2.5
        with allow([argparse.Namespace]) if allow else contextlib.nullcontext():
            obj = torch.load(source, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        refused = re.search(r"GLOBAL (\S+) was not an allowed global", str(err))
        if refused:
            raise _fail(source, f"holds a {refused.group(1)} object, which torch.load(weights_only=True) refuses; "
                                "save plain state dicts instead") from None
        raise _fail(source, "not a torch checkpoint (unreadable by torch.load(weights_only=True))") from None
    except Exception as err:  # truncated files, zip errors, not a torch file at all
        raise _fail(source, f"not a torch checkpoint ({type(err).__name__}: {' '.join(str(err).split())[:160]})") \
            from None
    if not isinstance(obj, Mapping):
        raise _fail(source, f"holds a {type(obj).__name__}, not a dict like {{'g_ema': ..., 'latent_avg': ...}}")
    return obj


def _state_dict_entry(ckpt: Mapping, key: str, source: str) -> Mapping[str, Tensor]:
    if key not in ckpt:
        raise _fail(source, f"no {key!r} entry (keys: {_short([str(k) for k in ckpt], 6)})")
    sd = ckpt[key]
    if not isinstance(sd, Mapping) or not all(isinstance(v, Tensor) for v in sd.values()):
        raise _fail(source, f"{key!r} is not a state dict of tensors")
    return sd


def load_rosinality(
    path: str | os.PathLike,
    key: str = "g_ema",
    map_location: str | torch.device = "cpu",
    lr_mlp: float = 0.01,
    channels_last: bool = True,
) -> tuple[Generator, Tensor | None]:
    """Load a rosinality-format StyleGAN2 generator (e.g. ``stylegan2-ffhq-config-f.pt``) strictly.

    The architecture (size, style size, mapping depth, channel multiplier / width) is inferred from the tensor
    shapes. The file is read with ``torch.load(weights_only=True)``; rosinality ``train.py`` checkpoints load too
    (their ``args`` Namespace is allowed, optimizer states are ignored).

    Args:
        path: a ``.pt`` file holding ``{"g_ema": state_dict, "latent_avg": (style_dim,), "g": ..., "d": ...}``.
        key: which generator: ``"g_ema"`` (the EMA weights, for inference) or ``"g"``.
        map_location: device for the tensors.
        lr_mlp: mapping-network learning-rate multiplier used in training (not in the file; 0.01 in rosinality).
        channels_last: see :class:`Generator`.

    Returns:
        ``(generator, latent_avg)``: the generator in eval mode, and the file's ``latent_avg`` (style_dim,) or
        ``None`` when it has none (rosinality ``train.py`` files; use :func:`estimate_latent_avg`).

    Raises:
        FacezooError: one line naming the problem: no such file, not a torch file, not a dict, missing ``key``,
            keys or shapes that do not form a generator.

    Example:
        >>> import tempfile, os
        >>> g = Generator(8, 8, 1, narrow=1 / 64)
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = os.path.join(tmp.name, "g.pt")
        >>> save_rosinality(p, g, torch.zeros(8))
        >>> g2, avg = load_rosinality(p)
        >>> g2.size, g2.channels[4], avg.shape
        (8, 8, torch.Size([8]))
        >>> tmp.cleanup()
    """
    source = os.fspath(path)
    ckpt = _read_checkpoint(path, map_location)
    state_dict = _state_dict_entry(ckpt, key, source)
    config = generator_config_from_state_dict(state_dict, source)
    generator = Generator(**config, lr_mlp=lr_mlp, channels_last=channels_last)
    _load_strict(generator, state_dict, source)
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None:
        if not isinstance(latent_avg, Tensor) or latent_avg.numel() != generator.style_dim:
            raise _fail(source, f"latent_avg must be a tensor of {generator.style_dim} values")
        latent_avg = latent_avg.reshape(generator.style_dim)
    return generator.to(map_location).eval(), latent_avg


def load_rosinality_discriminator(path: str | os.PathLike, key: str = "d",
                                  map_location: str | torch.device = "cpu") -> Discriminator:
    """Load the discriminator ``key`` of a rosinality checkpoint strictly (architecture inferred from shapes).

    Raises:
        FacezooError: as :func:`load_rosinality`.
    """
    source = os.fspath(path)
    state_dict = _state_dict_entry(_read_checkpoint(path, map_location), key, source)
    discriminator = Discriminator(**discriminator_config_from_state_dict(state_dict, source))
    _load_strict(discriminator, state_dict, source)
    return discriminator.to(map_location)


def save_rosinality(path: str | os.PathLike, g_ema: Generator, latent_avg: Tensor | None,
                    g: Generator | None = None, d: Discriminator | None = None) -> None:
    """Write ``{"g_ema", "latent_avg"[, "g"][, "d"]}`` as rosinality (and pSp) read it; tensors moved to CPU.

    Args:
        path: output file.
        g_ema: the generator used for inference.
        latent_avg: average w (style_dim,) or (1, style_dim); ``None`` omits the entry.
        g: the training generator, optional.
        d: the discriminator, optional.
    """
    def cpu(module: nn.Module) -> OrderedDict:
        return OrderedDict((k, v.detach().cpu().contiguous()) for k, v in module.state_dict().items())

    ckpt: dict = {"g_ema": cpu(g_ema)}
    if latent_avg is not None:
        ckpt["latent_avg"] = latent_avg.detach().cpu().reshape(-1).float()
    if g is not None:
        ckpt["g"] = cpu(g)
    if d is not None:
        ckpt["d"] = cpu(d)
    torch.save(ckpt, os.fspath(path))


@torch.no_grad()
def estimate_latent_avg(generator: Generator, n: int = 100_000, seed: int = 0, chunk: int = 10_000) -> Tensor:
    """Mean of ``n`` mapped z ~ N(0, I): the ``latent_avg`` pSp expects (its ``coach.py`` uses 10^5 samples).

    Args:
        generator: the generator whose mapping network is used.
        n: number of samples.
        seed: seed of the z draws (a private ``torch.Generator``; the global RNG is untouched).
        chunk: samples per batch.

    Returns:
        (style_dim,) float32 tensor on the generator's device.
    """
    device = generator.input.input.device
    rng = torch.Generator(device="cpu").manual_seed(seed)
    total = torch.zeros(generator.style_dim, dtype=torch.float64, device=device)
    done = 0
    while done < n:
        m = min(chunk, n - done)
        z = torch.randn(m, generator.style_dim, generator=rng).to(device)
        total += generator.style(z).double().sum(0)
        done += m
    return (total / n).float()


# ====================================================================================== stylegan2-ada conversion
def stylegan2_ada_generator_shapes(size: int, channels: Mapping[int, int], w_dim: int = 512, z_dim: int = 512,
                                   n_mlp: int = 8, with_w_avg: bool = True) -> dict[str, tuple[int, ...]]:
    """Names and shapes of an NVlabs stylegan2-ada-pytorch ``Generator.state_dict()`` (``training/networks.py``).

    Covers the unconditional generator with the default ``skip`` synthesis architecture (the FFHQ / MetFaces /
    AFHQ releases): ``mapping.fc<i>``, ``mapping.w_avg``, ``synthesis.b<res>.{const, conv0, conv1, torgb,
    resample_filter}``.

    Args:
        size: output resolution.
        channels: ``{resolution: channels}`` (stylegan2-ada: ``min(channel_base // res, channel_max)``).
        w_dim: W size.
        z_dim: Z size.
        n_mlp: mapping layers.
        with_w_avg: include ``mapping.w_avg``.

    Returns:
        ``{name: shape}`` (stylegan2-ada lists parameters before buffers; the order here is per layer).
    """
    shapes: dict[str, tuple[int, ...]] = {}
    log_size = _check_size(size, "stylegan2_ada_generator_shapes")
    for res in (2**i for i in range(2, log_size + 1)):
        block = f"synthesis.b{res}"
        out_c = channels[res]
        if res == 4:
            shapes[f"{block}.const"] = (out_c, 4, 4)
        shapes[f"{block}.resample_filter"] = (4, 4)
        layers = ["conv1"] if res == 4 else ["conv0", "conv1"]
        for name in layers:
            in_c = channels[res // 2] if name == "conv0" else out_c
            shapes[f"{block}.{name}.resample_filter"] = (4, 4)
            shapes[f"{block}.{name}.affine.weight"] = (in_c, w_dim)
            shapes[f"{block}.{name}.affine.bias"] = (in_c,)
            shapes[f"{block}.{name}.weight"] = (out_c, in_c, 3, 3)
            shapes[f"{block}.{name}.noise_const"] = (res, res)
            shapes[f"{block}.{name}.noise_strength"] = ()
            shapes[f"{block}.{name}.bias"] = (out_c,)
        shapes[f"{block}.torgb.affine.weight"] = (out_c, w_dim)
        shapes[f"{block}.torgb.affine.bias"] = (out_c,)
        shapes[f"{block}.torgb.weight"] = (3, out_c, 1, 1)
        shapes[f"{block}.torgb.bias"] = (3,)
    for i in range(n_mlp):
        shapes[f"mapping.fc{i}.weight"] = (w_dim, z_dim if i == 0 else w_dim)
        shapes[f"mapping.fc{i}.bias"] = (w_dim,)
    if with_w_avg:
        shapes["mapping.w_avg"] = (w_dim,)
    return shapes


def convert_stylegan2_ada_state_dict(
    state_dict: Mapping[str, Tensor],
    n_mean_latent: int = 100_000,
    seed: int = 0,
    source: str = "stylegan2-ada state dict",
) -> tuple[OrderedDict[str, Tensor], Tensor, dict]:
    """Map an NVlabs stylegan2-ada-pytorch generator (``G_ema.state_dict()``) to rosinality's format.

    Correspondences (``training/networks.py`` → rosinality ``model.py``): ``mapping.fc<i>`` → ``style.<i+1>``
    (both store weights divided by the lr multiplier 0.01); ``synthesis.b4.const`` → ``input.input``;
    ``b<res>.conv0`` / ``conv1`` → ``convs.<2j>`` / ``convs.<2j+1>`` (``b4.conv1`` → ``conv1``): ``weight`` →
    ``conv.weight[None]`` (the upsampling conv needs no flip: stylegan2-ada's ``flip_weight=False`` transposed
    convolution is rosinality's), ``affine`` → ``conv.modulation`` (both initialise the bias to 1 and store it
    with the 1 included), ``noise_strength`` → ``noise.weight``, ``noise_const`` → ``noises.noise_<k>``,
    ``bias`` → ``activate.bias``; ``torgb`` → ``to_rgb1`` / ``to_rgbs.<j>`` (bias reshaped to (1, 3, 1, 1)); the
    blur / upsample kernels are ``resample_filter * 4``. Demodulation differs only in where the 1/sqrt(fan_in)
    gain sits (it cancels). stylegan2-ada's ``conv_clamp`` (256 in its fp16 configs) is not reproduced:
    activations beyond +-256 are not clamped.

    Args:
        state_dict: the stylegan2-ada generator state dict (unconditional, ``skip`` architecture, z_dim == w_dim).
        n_mean_latent: samples for ``latent_avg`` when the source has no ``mapping.w_avg`` (pixel2style2pixel #24).
        seed: seed for those samples.
        source: name for error messages.

    Returns:
        ``(g_ema_state_dict, latent_avg, config)``: the rosinality-format state dict, ``latent_avg``
        (w_dim,) (``mapping.w_avg``, else the mean of ``n_mean_latent`` mapped samples), and the
        :class:`Generator` arguments that load it strictly.

    Raises:
        FacezooError: conditional generators, other architectures, missing keys or wrong shapes (one line).
    """
    sd = {k: v for k, v in state_dict.items()}
    if any(k.startswith("mapping.embed.") for k in sd):
        raise _fail(source, "conditional generators (mapping.embed, c_dim > 0) have no rosinality equivalent")
    if "synthesis.b4.const" not in sd or "mapping.fc0.weight" not in sd:
        raise _fail(source, "not a stylegan2-ada-pytorch generator state dict (no 'synthesis.b4.const' "
                            "or 'mapping.fc0.weight')")
    blocks = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
    size = blocks[-1]
    _check_size(size, source)
    n_mlp = len([k for k in sd if re.fullmatch(r"mapping\.fc\d+\.weight", k)])
    w_dim, z_dim = int(sd["mapping.fc0.weight"].shape[0]), int(sd["mapping.fc0.weight"].shape[1])
    if z_dim != w_dim:
        raise _fail(source, f"z_dim {z_dim} != w_dim {w_dim}: rosinality's mapping network needs them equal")
    chans = {res: int(sd[f"synthesis.b{res}.conv1.weight"].shape[0]) for res in blocks}
    expected = stylegan2_ada_generator_shapes(size, chans, w_dim, z_dim, n_mlp, with_w_avg="mapping.w_avg" in sd)
    optional = {k for k in expected if k.endswith("resample_filter")}
    missing = [k for k in expected if k not in sd and k not in optional]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = ([f"missing {_short(missing)}"] if missing else []) + (
            [f"unexpected {_short(unexpected)}"] if unexpected else [])
        raise _fail(source, "not an unconditional 'skip' stylegan2-ada generator: " + "; ".join(parts))
    wrong = [f"{k} {tuple(sd[k].shape)} != {v}" for k, v in expected.items() if k in sd and tuple(sd[k].shape) != v]
    if wrong:
        raise _fail(source, f"wrong shapes: {_short(wrong, 2)}")

    default_filter = make_kernel(BLUR_KERNEL)

    def kernel4(key: str) -> Tensor:              # rosinality stores the 2x-upsampling filter times 4
        return sd.get(key, default_filter).float() * 4

    out: OrderedDict[str, Tensor] = OrderedDict()
    for i in range(n_mlp):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"].unsqueeze(0)

    def styled(src: str, dst: str, upsample: bool) -> None:
        if upsample:
            out[f"{dst}.conv.blur.kernel"] = kernel4(f"{src}.resample_filter")
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"].unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]

    def to_rgb(src: str, dst: str, upsample: bool) -> None:
        if upsample:
            out[f"{dst}.upsample.kernel"] = kernel4(src.rsplit(".", 1)[0] + ".resample_filter")
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"].unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, 3, 1, 1)

    styled("synthesis.b4.conv1", "conv1", False)
    to_rgb("synthesis.b4.torgb", "to_rgb1", False)
    noises = [sd["synthesis.b4.conv1.noise_const"]]
    for j, res in enumerate(blocks[1:]):
        styled(f"synthesis.b{res}.conv0", f"convs.{2 * j}", True)
        styled(f"synthesis.b{res}.conv1", f"convs.{2 * j + 1}", False)
        to_rgb(f"synthesis.b{res}.torgb", f"to_rgbs.{j}", True)
        noises += [sd[f"synthesis.b{res}.conv0.noise_const"], sd[f"synthesis.b{res}.conv1.noise_const"]]
    for k, noise in enumerate(noises):
        out[f"noises.noise_{k}"] = noise.reshape(1, 1, *noise.shape)
    out = OrderedDict((k, v.detach().float().contiguous()) for k, v in out.items())

    config = generator_config_from_state_dict(out, source)
    generator = Generator(**config)
    _load_strict(generator, out, source)
    ordered = OrderedDict((k, out[k]) for k in generator.state_dict())
    if "mapping.w_avg" in sd:
        latent_avg = sd["mapping.w_avg"].detach().float().clone()
    else:
        latent_avg = estimate_latent_avg(generator, n_mean_latent, seed)
    return ordered, latent_avg, config
