"""MaskGAN's networks (Lee et al., "MaskGAN: Towards Diverse and Interactive Facial Image Manipulation", CVPR 2020).

Facts from ``switchablenorms/CelebAMask-HQ`` (``MaskGAN_demo/models/networks.py``, ``models/pix2pixHD_model.py``,
``options/*.py``); the demo's defaults are the constructors' defaults:

* **Dense mapping network** (:class:`DenseMappingNetwork`, the demo's ``GlobalGenerator``): a pix2pixHD global
  generator on the 19-channel one-hot mask (reflect-pad conv7 → ``n_downsample`` conv3 s2 → ``n_blocks`` residual
  blocks whose two instance norms are AdaIN → as many ConvTranspose3 s2 → reflect-pad conv7, tanh; instance norms
  without affine parameters), ``ngf 64``, ``n_downsample 4``, ``n_blocks 4``, 512 px. Its AdaIN parameters come
  from the **spatial-aware style encoder**: a label encoder on the reference mask gives ``fea1`` (H/4) and
  ``fea2`` (H/32); a style encoder on the reference image modulates its own features with them through two SFT
  layers (``x·scale + shift``, each from two 1×1 convs with LeakyReLU 0.1 between), then global average pooling
  and a 1×1 conv give ``4·C·n_blocks`` numbers (per AdaIN layer: C means, used as bias, then C stds, used as
  weight; ``GlobalGenerator.assign_adain_params``).
* **MaskVAE** (:class:`MaskVAE`, the demo's ``VAE(19, 32, 32, 1024)``): conv4 s2 + BN + LReLU 0.2 down to 4×4
  (7 layers at 512 px, channels ``ndf·2^i``), two linear heads to a 1024-d μ and log σ²; the decoder is a linear
  layer + ReLU to ``ngf·2^(n-1)``×4×4, then (nearest ×2, replicate-pad conv3, BN eps 1e-3, LReLU 0.2) blocks and a
  last upsampled conv3 to 19 class logits.
* **Alpha blender** (:class:`BlendGenerator`, ``define_B(6, 3, 32, 3, 3)``): the same encoder-decoder with plain
  instance-norm residual blocks and a sigmoid head; ``α·a + (1 − α)·b``.
* **Discriminator** (:class:`MultiscaleDiscriminator`, pix2pixHD, ``num_D 2``, ``n_layers_D 3``, ``ndf 64``):
  PatchGANs (conv4, stride 2 then 1, padding 2, IN, LReLU 0.2, channels capped at 512) on the one-hot mask
  concatenated with the image, at full resolution and after each ``AvgPool(3, 2, 1, count_include_pad=False)``;
  every layer's output is returned (feature matching).
* Initialisation (``networks.weights_init``): ``nn.Conv2d`` weights ~ N(0, 0.02) (not the transposed convs),
  BatchNorm weights ~ N(1, 0.02) and biases 0; applied to G, B and D, not to the VAE.

Unlike the demo, the AdaIN parameters are passed through the forward call instead of being written into the
modules, so a network can be called from several threads, under DDP or ``torch.compile``.

Example:
    >>> g = DenseMappingNetwork(ngf=8, n_downsample=2, n_blocks=1, label_ngf=4, style_ngf=4)
    >>> mask = torch.randint(0, 19, (1, 64, 64))
    >>> g(mask, mask, torch.rand(1, 3, 64, 64) * 2 - 1).shape
    torch.Size([1, 3, 64, 64])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from facezoo.face.labels import CELEBAMASK_HQ

__all__ = [
    "NUM_LABELS",
    "one_hot",
    "adaptive_instance_norm",
    "init_weights",
    "ConvLayer",
    "UpConvLayer",
    "UpsampleConvLayer",
    "ResBlock",
    "ResnetGenerator",
    "SFTLayer",
    "LabelEncoder",
    "StyleEncoder",
    "DenseMappingNetwork",
    "BlendGenerator",
    "PatchDiscriminator",
    "MultiscaleDiscriminator",
    "MaskVAE",
]

#: Number of CelebAMask-HQ labels (:data:`facezoo.face.labels.CELEBAMASK_HQ`): the one-hot input channels.
NUM_LABELS = len(CELEBAMASK_HQ)


# --------------------------------------------------------------------------------------------------
# label maps
# --------------------------------------------------------------------------------------------------


def one_hot(labels: Tensor, num_classes: int = NUM_LABELS, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot encode a label map (the demo's ``scatter_(1, label, 1.0)``).

    Args:
        labels: integer label ids in ``[0, num_classes - 1]`` (CelebAMask-HQ ids by default).
        num_classes: number of channels of the result.
        dtype: floating dtype of the result.

    Returns:
        ``1`` in the channel of each pixel's label, ``0`` elsewhere.

    Raises:
        ValueError: ``labels`` is not a ``(B, H, W)`` integer tensor, or holds an id outside the range.

    Shape:
        - labels: :math:`(B, H, W)`, int64 (any integer dtype)
        - output: :math:`(B, C, H, W)`, ``C = num_classes``

    Example:
        >>> one_hot(torch.tensor([[[0, 2]]]), 3)[0, :, 0].tolist()
        [[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]]
    """
    if not isinstance(labels, Tensor):
        raise TypeError(f"labels must be a torch.Tensor, got {type(labels).__name__}")
    if labels.ndim != 3:
        raise ValueError(f"labels must have shape (B, H, W), got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    if labels.numel():
        low, high = torch.aminmax(labels)
        if low < 0 or high >= num_classes:
            raise ValueError(f"labels must lie in [0, {num_classes - 1}], got values in [{int(low)}, {int(high)}]")
    b, h, w = labels.shape
    out = torch.zeros(b, num_classes, h, w, dtype=dtype, device=labels.device)
    return out.scatter_(1, labels.long().unsqueeze(1), 1.0)


def _as_one_hot(mask: Tensor, num_classes: int, name: str) -> Tensor:
    """Accept a ``(B, H, W)`` integer label map or an already encoded ``(B, num_classes, H, W)`` float tensor."""
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.ndim == 3:
        return one_hot(mask, num_classes)
    if mask.ndim == 4 and mask.shape[1] == num_classes and mask.dtype.is_floating_point:
        return mask
    raise ValueError(f"{name} must be an integer label map (B, H, W) or a float one-hot map (B, {num_classes}, H, W), "
                     f"got {tuple(mask.shape)} {mask.dtype}")


def _check_image(x: Tensor, name: str, channels: int) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name} must have shape (B, {channels}, H, W), got {tuple(x.shape)}")
    return x


# --------------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------------


def adaptive_instance_norm(x: Tensor, mean: Tensor, std: Tensor, eps: float = 1e-5) -> Tensor:
    """Instance-normalise ``x`` and give each sample's channels a new mean and standard deviation.

    The demo's ``AdaptiveInstanceNorm2d``: biased variance, ``eps`` 1e-5, the style's means as bias and its
    stds as weight.

    Args:
        x: features.
        mean: per-sample, per-channel target means.
        std: per-sample, per-channel target standard deviations (any sign, as in the demo).
        eps: added to the variance.

    Returns:
        ``(x − μ(x)) / sqrt(σ²(x) + eps) · std + mean``.

    Shape:
        - x: :math:`(B, C, H, W)`
        - mean, std: :math:`(B, C)`
        - output: :math:`(B, C, H, W)`
    """
    normalized = F.instance_norm(x, eps=eps)
    return torch.addcmul(mean[:, :, None, None], normalized, std[:, :, None, None])


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """The demo's ``weights_init``, applied to every submodule of ``module``.

    ``nn.Conv2d`` weights ~ N(0, std²) (transposed convolutions and biases keep PyTorch's defaults);
    BatchNorm weights ~ N(1, std²), biases 0.

    Returns:
        ``module`` (initialised in place).
    """
    for m in module.modules():
        if type(m) is nn.Conv2d:
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


class ConvLayer(nn.Module):
    """Convolution → optional normalisation → optional activation (the demo's ``ConvBlock`` and pix2pixHD triples).

    Args:
        in_channels, out_channels, kernel_size, stride, padding: as :class:`torch.nn.Conv2d`.
        padding_mode: ``"zeros"``, ``"reflect"`` or ``"replicate"`` (the demo's explicit padding layers).
        norm: a normalisation module, or ``None``.
        act: an activation module, or ``None``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 padding_mode: str = "zeros", norm: nn.Module | None = None, act: nn.Module | None = None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, padding_mode=padding_mode)
        self.norm = nn.Identity() if norm is None else norm
        self.act = nn.Identity() if act is None else act

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class UpConvLayer(nn.Module):
    """ConvTranspose3 s2 (output padding 1, so exactly ×2) → InstanceNorm → ReLU: pix2pixHD's upsampling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)
        self.norm = nn.InstanceNorm2d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(x)))


class UpsampleConvLayer(nn.Module):
    """Nearest ×2 → replicate-padded conv3 → optional norm → optional activation: a MaskVAE decoder block."""

    def __init__(self, in_channels: int, out_channels: int, norm: nn.Module | None = None,
                 act: nn.Module | None = None):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1, padding_mode="replicate")
        self.norm = nn.Identity() if norm is None else norm
        self.act = nn.Identity() if act is None else act

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))))


class ResBlock(nn.Module):
    """``x + N(conv3(ReLU(N(conv3(x)))))`` with reflect padding; ``N`` is AdaIN or a plain instance norm.

    Args:
        channels: width of the block.
        adaptive: AdaIN (the dense mapping network) instead of instance norm without affine (the blender).

    Shape:
        - x: :math:`(B, C, H, W)`
        - style: :math:`(B, 4C)` when ``adaptive`` (mean₁, std₁, mean₂, std₂), else ``None``
        - output: :math:`(B, C, H, W)`
    """

    def __init__(self, channels: int, adaptive: bool):
        super().__init__()
        self.adaptive = adaptive
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, padding_mode="reflect")
        self.num_style_params = 4 * channels if adaptive else 0

    def forward(self, x: Tensor, style: Tensor | None = None) -> Tensor:
        if self.adaptive:
            if style is None:
                raise ValueError("an adaptive ResBlock needs its AdaIN parameters (style)")
            mean1, std1, mean2, std2 = style.chunk(4, dim=1)
            h = F.relu(adaptive_instance_norm(self.conv1(x), mean1, std1), inplace=True)
            h = adaptive_instance_norm(self.conv2(h), mean2, std2)
        else:
            h = F.relu(F.instance_norm(self.conv1(x)), inplace=True)
            h = F.instance_norm(self.conv2(h))
        return x + h


class ResnetGenerator(nn.Module):
    """pix2pixHD's global generator: stem, ``n_downsample`` × (conv3 s2), residual blocks, as many ×2 ups, head.

    Args:
        in_channels: input channels (19 one-hot labels for the dense mapping network, 6 for the blender).
        out_channels: output channels.
        ngf: channels after the stem; doubled by each downsampling.
        n_downsample: number of stride-2 convolutions (and of transposed convolutions).
        n_blocks: number of residual blocks at ``ngf · 2^n_downsample`` channels.
        adaptive: AdaIN residual blocks (their parameters are the ``style`` argument of :meth:`forward`).
        out_act: the head's activation (``nn.Tanh()`` for images, ``nn.Sigmoid()`` for blending weights).

    Shape:
        - x: :math:`(B, C_{in}, H, W)`, H and W divisible by ``2^n_downsample``
        - style: :math:`(B, S)` with ``S = num_style_params`` when ``adaptive``
        - output: :math:`(B, C_{out}, H, W)`
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int, n_downsample: int, n_blocks: int,
                 adaptive: bool, out_act: nn.Module):
        super().__init__()
        if ngf < 1 or n_downsample < 0 or n_blocks < 0:
            raise ValueError(f"need ngf >= 1, n_downsample >= 0, n_blocks >= 0, got {ngf}, {n_downsample}, {n_blocks}")
        self.n_downsample = n_downsample
        self.stem = ConvLayer(in_channels, ngf, 7, 1, 3, "reflect", nn.InstanceNorm2d(ngf), nn.ReLU(inplace=True))
        self.down = nn.Sequential(*[
            ConvLayer(ngf * 2**i, ngf * 2 ** (i + 1), 3, 2, 1, "zeros", nn.InstanceNorm2d(ngf * 2 ** (i + 1)),
                      nn.ReLU(inplace=True))
            for i in range(n_downsample)
        ])
        width = ngf * 2**n_downsample
        self.blocks = nn.ModuleList([ResBlock(width, adaptive) for _ in range(n_blocks)])
        self.up = nn.Sequential(*[
            UpConvLayer(ngf * 2 ** (n_downsample - i), ngf * 2 ** (n_downsample - i) // 2)
            for i in range(n_downsample)
        ])
        self.head = ConvLayer(ngf, out_channels, 7, 1, 3, "reflect", None, out_act)
        #: Number of AdaIN parameters the forward call takes (0 without adaptive blocks).
        self.num_style_params = sum(block.num_style_params for block in self.blocks)

    def forward(self, x: Tensor, style: Tensor | None = None) -> Tensor:
        x = self.down(self.stem(x))
        start = 0
        for block in self.blocks:
            n = block.num_style_params
            x = block(x, style[:, start:start + n] if n else None)
            start += n
        return self.head(self.up(x))


# --------------------------------------------------------------------------------------------------
# the dense mapping network and its spatial-aware style encoder
# --------------------------------------------------------------------------------------------------


class SFTLayer(nn.Module):
    """Spatial feature transform: ``x · scale(cond) + shift(cond)``, each a 1×1 conv, LeakyReLU(0.1), 1×1 conv.

    Args:
        cond_channels: channels of the condition (label-encoder features; 64 in the demo).
        channels: channels of the modulated features (64 in the demo).

    Shape:
        - x: :math:`(B, C, h, w)`
        - cond: :math:`(B, C_{cond}, h, w)`
        - output: :math:`(B, C, h, w)`
    """

    def __init__(self, cond_channels: int = 64, channels: int = 64):
        super().__init__()
        self.scale_conv1 = nn.Conv2d(cond_channels, cond_channels, 1)
        self.scale_conv2 = nn.Conv2d(cond_channels, channels, 1)
        self.shift_conv1 = nn.Conv2d(cond_channels, cond_channels, 1)
        self.shift_conv2 = nn.Conv2d(cond_channels, channels, 1)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale = self.scale_conv2(F.leaky_relu(self.scale_conv1(cond), 0.1))
        shift = self.shift_conv2(F.leaky_relu(self.shift_conv1(cond), 0.1))
        return torch.addcmul(shift, x, scale)


class LabelEncoder(nn.Module):
    """Encodes the reference mask into the SFT conditions ``fea1`` (H/4) and ``fea2`` (H/2^n_downsample).

    Reflect-padded convs without normalisation: conv7 → ``ngf``, conv4 s2 → ``2·ngf``, conv4 s2 → ``4·ngf`` (no
    activation) = ``fea1``; then ReLU, ``n_downsample − 3`` × (conv4 s2, ReLU) and a conv4 s2 without activation
    = ``fea2`` (the demo's ``LabelEncoder(5, 19, 16, 64)``).

    Shape:
        - mask: :math:`(B, L, H, W)` one-hot
        - output: ``(fea1, fea2)``, :math:`(B, 4·ngf, H/4, W/4)` and :math:`(B, 4·ngf, H/2^n, W/2^n)`
    """

    def __init__(self, num_labels: int = NUM_LABELS, ngf: int = 16, n_downsample: int = 5):
        super().__init__()
        if n_downsample < 3:
            raise ValueError(f"the label encoder needs n_downsample >= 3, got {n_downsample}")
        width = 4 * ngf
        self.down1 = nn.Sequential(
            ConvLayer(num_labels, ngf, 7, 1, 3, "reflect", act=nn.ReLU(inplace=True)),
            ConvLayer(ngf, 2 * ngf, 4, 2, 1, "reflect", act=nn.ReLU(inplace=True)),
            ConvLayer(2 * ngf, width, 4, 2, 1, "reflect"),
        )
        self.down2 = nn.Sequential(
            *[ConvLayer(width, width, 4, 2, 1, "reflect", act=nn.ReLU(inplace=True)) for _ in range(n_downsample - 3)],
            ConvLayer(width, width, 4, 2, 1, "reflect"),
        )
        self.out_channels = width

    def forward(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        fea1 = self.down1(mask)
        return fea1, self.down2(F.relu(fea1))


class StyleEncoder(nn.Module):
    """Encodes the reference image, modulated by the label features, into the AdaIN parameters.

    Reflect-padded convs with ReLU and no normalisation: conv7 → ``ngf``, 2 × conv4 s2 (→ ``4·ngf``), SFT with
    ``fea1``, ``n_downsample − 2`` × conv4 s2, SFT with ``fea2``, global average pooling, 1×1 conv to ``style_dim``
    (the demo's ``StyleEncoder(5, 3, 16, n_adain)``).

    Shape:
        - image: :math:`(B, 3, H, W)` in [-1, 1]
        - fea1, fea2: as returned by :class:`LabelEncoder`
        - output: :math:`(B, style\\_dim)`
    """

    def __init__(self, style_dim: int, in_channels: int = 3, ngf: int = 16, n_downsample: int = 5,
                 cond_channels: int = 64):
        super().__init__()
        if n_downsample < 2:
            raise ValueError(f"the style encoder needs n_downsample >= 2, got {n_downsample}")
        width = 4 * ngf
        self.down1 = nn.Sequential(
            ConvLayer(in_channels, ngf, 7, 1, 3, "reflect", act=nn.ReLU(inplace=True)),
            ConvLayer(ngf, 2 * ngf, 4, 2, 1, "reflect", act=nn.ReLU(inplace=True)),
            ConvLayer(2 * ngf, width, 4, 2, 1, "reflect", act=nn.ReLU(inplace=True)),
        )
        self.sft1 = SFTLayer(cond_channels, width)
        self.down2 = nn.Sequential(*[
            ConvLayer(width, width, 4, 2, 1, "reflect", act=nn.ReLU(inplace=True)) for _ in range(n_downsample - 2)
        ])
        self.sft2 = SFTLayer(cond_channels, width)
        self.to_style = nn.Conv2d(width, style_dim, 1)

    def forward(self, image: Tensor, fea1: Tensor, fea2: Tensor) -> Tensor:
        x = self.sft1(self.down1(image), fea1)
        x = self.sft2(self.down2(x), fea2)
        return self.to_style(x.mean(dim=(2, 3), keepdim=True)).flatten(1)


class DenseMappingNetwork(nn.Module):
    """MaskGAN's generator: renders a mask in the style (AdaIN parameters) of a reference image and its mask.

    Args:
        num_labels: label channels of the one-hot masks (19 CelebAMask-HQ labels).
        out_channels: image channels (also those of the reference image).
        ngf: generator width after the stem (64).
        n_downsample: generator downsamplings (4).
        n_blocks: AdaIN residual blocks (4).
        style_downsample: downsamplings of the label and style encoders (5: ``fea2`` at H/32).
        label_ngf: label-encoder width (16; its features have ``4·label_ngf`` channels).
        style_ngf: style-encoder width (16).

    Shape:
        - mask_to_render: :math:`(B, H, W)` int64 CelebAMask-HQ ids, or :math:`(B, 19, H, W)` one-hot; H and W
          divisible by ``2^n_downsample``
        - mask_ref: the same, for the reference (style) image, :math:`H_r, W_r \\ge 2^{style\\_downsample}`
        - image_ref: :math:`(B, 3, H_r, W_r)` in [-1, 1]
        - style: :math:`(B, S)` or :math:`(S,)`, ``S = style_dim``
        - output: :math:`(B, 3, H, W)` in [-1, 1]

    Example:
        >>> g = DenseMappingNetwork(ngf=8, n_downsample=2, n_blocks=1, label_ngf=4, style_ngf=4)
        >>> g.style_dim
        128
        >>> mask, image = torch.randint(0, 19, (2, 64, 64)), torch.rand(2, 3, 64, 64) * 2 - 1
        >>> mean_style = g.encode_style(mask, image).mean(0)      # a fixed style, e.g. for a baseline
        >>> g(mask, style=mean_style).shape
        torch.Size([2, 3, 64, 64])
    """

    def __init__(self, num_labels: int = NUM_LABELS, out_channels: int = 3, ngf: int = 64, n_downsample: int = 4,
                 n_blocks: int = 4, style_downsample: int = 5, label_ngf: int = 16, style_ngf: int = 16):
        super().__init__()
        self.num_labels = num_labels
        self.out_channels = out_channels
        self.n_downsample = n_downsample
        self.style_downsample = style_downsample
        self.backbone = ResnetGenerator(num_labels, out_channels, ngf, n_downsample, n_blocks, adaptive=True,
                                        out_act=nn.Tanh())
        self.label_encoder = LabelEncoder(num_labels, label_ngf, style_downsample)
        self.style_encoder = StyleEncoder(self.backbone.num_style_params, out_channels, style_ngf, style_downsample,
                                          self.label_encoder.out_channels)
        init_weights(self)
        self.fast_dtype: torch.dtype | None = None        # fast_path(): bf16 weights

    def fast_path(self) -> DenseMappingNetwork:
        """Inference fast path: the weights in bf16 (inputs cast to it, outputs back to fp32).

        At 512 px on the 2-core AVX512-BF16 CPU of docs/benchmarks.md the network runs 2.0x faster this way (1.20 vs
        2.40 s at batch 1; bf16 autocast 1.33 s: it re-casts the weights at every call; channels_last gains nothing),
        with the output 45 dB PSNR from the fp32 one on random weights. For inference, not training; irreversible
        (load the network again for fp32).

        Returns:
            ``self``, in eval mode.
        """
        self.fast_dtype = torch.bfloat16
        return self.to(self.fast_dtype).eval()

    @property
    def style_dim(self) -> int:
        """Number of AdaIN parameters: ``4 · ngf · 2^n_downsample · n_blocks`` (16 384 in the demo)."""
        return self.backbone.num_style_params

    def encode_style(self, mask_ref: Tensor, image_ref: Tensor) -> Tensor:
        """The AdaIN parameters of a reference image and its mask: ``(B, style_dim)``."""
        mask_ref = _as_one_hot(mask_ref, self.num_labels, "mask_ref")
        image_ref = _check_image(image_ref, "image_ref", self.out_channels)
        if mask_ref.shape[0] != image_ref.shape[0] or mask_ref.shape[-2:] != image_ref.shape[-2:]:
            raise ValueError(f"mask_ref {tuple(mask_ref.shape)} and image_ref {tuple(image_ref.shape)} must have the "
                             "same batch size and spatial size")
        low = 2**self.style_downsample
        if min(image_ref.shape[-2:]) < low:
            raise ValueError(f"image_ref must be at least {low}x{low} pixels, got {tuple(image_ref.shape[-2:])}")
        if self.fast_dtype is not None:
            mask_ref, image_ref = mask_ref.to(self.fast_dtype), image_ref.to(self.fast_dtype)
        fea1, fea2 = self.label_encoder(mask_ref)
        return self.style_encoder(image_ref, fea1, fea2).float()

    def render(self, mask: Tensor, style: Tensor) -> Tensor:
        """Render ``mask`` with given AdaIN parameters (``(B, style_dim)``, or ``(style_dim,)`` for every sample)."""
        mask = _as_one_hot(mask, self.num_labels, "mask_to_render")
        unit = 2**self.n_downsample
        if mask.shape[-2] % unit or mask.shape[-1] % unit:
            raise ValueError(f"mask_to_render must have H and W divisible by {unit}, got {tuple(mask.shape[-2:])}")
        if not isinstance(style, Tensor) or style.shape[-1] != self.style_dim or style.ndim not in (1, 2):
            shape = tuple(style.shape) if isinstance(style, Tensor) else type(style).__name__
            raise ValueError(f"style must have shape (B, {self.style_dim}) or ({self.style_dim},), got {shape}")
        style = style.expand(mask.shape[0], -1) if style.ndim == 1 else style
        if style.shape[0] != mask.shape[0]:
            raise ValueError(f"style has batch size {style.shape[0]}, mask_to_render {mask.shape[0]}")
        dtype = self.fast_dtype or mask.dtype
        return self.backbone(mask.to(dtype), style.to(dtype)).float()

    def forward(self, mask_to_render: Tensor, mask_ref: Tensor | None = None, image_ref: Tensor | None = None,
                style: Tensor | None = None) -> Tensor:
        """Render ``mask_to_render`` in the style of ``(mask_ref, image_ref)``, or with a given ``style``."""
        if style is None:
            if mask_ref is None or image_ref is None:
                raise ValueError("pass mask_ref and image_ref, or a style")
            style = self.encode_style(mask_ref, image_ref)
        elif mask_ref is not None or image_ref is not None:
            raise ValueError("pass either mask_ref and image_ref or a style, not both")
        return self.render(mask_to_render, style)


# --------------------------------------------------------------------------------------------------
# alpha blender
# --------------------------------------------------------------------------------------------------


class BlendGenerator(nn.Module):
    """MaskGAN's alpha blender: ``α = sigmoid(net(a ‖ b))`` per pixel and channel, output ``α·a + (1 − α)·b``.

    Args:
        channels: channels of each image (3); the network sees ``2·channels``.
        ngf: width (32 in the demo's ``define_B``).
        n_downsample: downsamplings (3).
        n_blocks: instance-norm residual blocks (3).

    Shape:
        - a, b: :math:`(B, C, H, W)`, H and W divisible by ``2^n_downsample``
        - output: ``(blend, alpha)``, both :math:`(B, C, H, W)`; alpha in [0, 1]

    Example:
        >>> blend, alpha = BlendGenerator(ngf=4, n_downsample=2, n_blocks=1)(torch.zeros(1, 3, 16, 16),
        ...                                                                     torch.ones(1, 3, 16, 16))
        >>> torch.allclose(blend, 1 - alpha)
        True
    """

    def __init__(self, channels: int = 3, ngf: int = 32, n_downsample: int = 3, n_blocks: int = 3):
        super().__init__()
        self.channels = channels
        self.n_downsample = n_downsample
        self.backbone = ResnetGenerator(2 * channels, channels, ngf, n_downsample, n_blocks, adaptive=False,
                                        out_act=nn.Sigmoid())
        init_weights(self)

    def forward(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        _check_image(a, "a", self.channels)
        _check_image(b, "b", self.channels)
        if a.shape != b.shape:
            raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        unit = 2**self.n_downsample
        if a.shape[-2] % unit or a.shape[-1] % unit:
            raise ValueError(f"images must have H and W divisible by {unit}, got {tuple(a.shape[-2:])}")
        alpha = self.backbone(torch.cat([a, b], dim=1))
        return a * alpha + b * (1 - alpha), alpha


# --------------------------------------------------------------------------------------------------
# discriminator
# --------------------------------------------------------------------------------------------------


class PatchDiscriminator(nn.Module):
    """pix2pixHD's ``NLayerDiscriminator`` with intermediate features (``getIntermFeat``).

    conv4 s2 + LReLU 0.2; ``n_layers − 1`` × (conv4 s2, IN, LReLU); conv4 s1, IN, LReLU; conv4 s1 → 1 logit map.
    All convs have padding 2; widths double from ``ndf`` up to ``max_channels``.

    Shape:
        - x: :math:`(B, C_{in}, H, W)`
        - output: ``n_layers + 2`` feature maps, the last :math:`(B, 1, h, w)` patch logits
    """

    def __init__(self, in_channels: int, ndf: int = 64, n_layers: int = 3, max_channels: int = 512):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        layers = [ConvLayer(in_channels, ndf, 4, 2, 2, act=nn.LeakyReLU(0.2, inplace=True))]
        width = ndf
        for n in range(1, n_layers + 1):
            previous, width = width, min(width * 2, max_channels)
            layers.append(ConvLayer(previous, width, 4, 2 if n < n_layers else 1, 2, norm=nn.InstanceNorm2d(width),
                                    act=nn.LeakyReLU(0.2, inplace=True)))
        layers.append(ConvLayer(width, 1, 4, 1, 2))
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's multi-scale discriminator on ``one-hot mask ‖ image``, returning every layer's features.

    Args:
        in_channels: input channels, ``num_labels + 3`` (22) for the conditional discriminator.
        ndf: width of the first layer (64).
        n_layers: stride-2 layers per scale (3).
        num_scales: number of PatchGANs, each on the input average-pooled once more (``num_D`` 2).
        max_channels: width cap (512).
        num_labels: one-hot channels that :meth:`forward` builds from a label map.

    Shape:
        - image: :math:`(B, 3, H, W)` in [-1, 1], or the already concatenated :math:`(B, C_{in}, H, W)`
        - mask: :math:`(B, H, W)` int64 or :math:`(B, 19, H, W)` one-hot, or ``None``
        - output: ``num_scales`` lists (full resolution first) of ``n_layers + 2`` features; the last of each list
          is the patch logit map

    Example:
        >>> d = MultiscaleDiscriminator(ndf=4, n_layers=2)
        >>> out = d(torch.zeros(1, 3, 32, 32), torch.zeros(1, 32, 32, dtype=torch.long))
        >>> len(out), len(out[0]), tuple(out[0][-1].shape), tuple(out[1][-1].shape)
        (2, 4, (1, 1, 11, 11), (1, 1, 7, 7))
    """

    def __init__(self, in_channels: int = NUM_LABELS + 3, ndf: int = 64, n_layers: int = 3, num_scales: int = 2,
                 max_channels: int = 512, num_labels: int = NUM_LABELS):
        super().__init__()
        if num_scales < 1:
            raise ValueError(f"num_scales must be >= 1, got {num_scales}")
        self.in_channels = in_channels
        self.num_labels = num_labels
        self.scales = nn.ModuleList([
            PatchDiscriminator(in_channels, ndf, n_layers, max_channels) for _ in range(num_scales)
        ])
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        init_weights(self)

    def forward(self, image: Tensor, mask: Tensor | None = None) -> list[list[Tensor]]:
        if mask is not None:
            x = torch.cat([_as_one_hot(mask, self.num_labels, "mask").to(image.dtype), image], dim=1)
        else:
            x = image
        _check_image(x, "the discriminator input (one-hot mask ‖ image)", self.in_channels)
        out = []
        for i, scale in enumerate(self.scales):
            if i:
                x = self.downsample(x)
            out.append(scale(x))
        return out


# --------------------------------------------------------------------------------------------------
# MaskVAE
# --------------------------------------------------------------------------------------------------


class MaskVAE(nn.Module):
    """MaskVAE: a convolutional VAE on one-hot masks, used to interpolate masks in its latent space.

    The number of stride-2 layers is ``log2(resolution) − 2`` (7 at 512 px, 5 at 128 px, 4 at 64 px), so the
    bottleneck is always 4×4; encoder widths ``ndf·2^i``, decoder widths the mirror image from ``ngf``.

    Args:
        num_labels: label channels (19).
        ngf: decoder width at full resolution (32).
        ndf: encoder width at half resolution (32).
        latent_dim: size of the latent code (1024).
        resolution: side of the (square) masks, a power of two >= 8 (512).

    Shape:
        - mask: :math:`(B, H, W)` int64 ids or :math:`(B, 19, H, W)` one-hot, ``H = W = resolution``
        - mu, logvar, z: :math:`(B, latent\\_dim)`
        - logits: :math:`(B, 19, H, W)` class logits (argmax over dim 1 gives a label map)

    Example:
        >>> vae = MaskVAE(ngf=4, ndf=4, latent_dim=8, resolution=64).eval()
        >>> mu, logvar = vae.encode(torch.zeros(2, 64, 64, dtype=torch.long))
        >>> vae.decode(mu).shape, len(vae.encoder)
        (torch.Size([2, 19, 64, 64]), 4)
    """

    def __init__(self, num_labels: int = NUM_LABELS, ngf: int = 32, ndf: int = 32, latent_dim: int = 1024,
                 resolution: int = 512):
        super().__init__()
        if resolution < 8 or resolution & (resolution - 1):
            raise ValueError(f"resolution must be a power of two >= 8, got {resolution}")
        n = int(math.log2(resolution)) - 2
        self.num_labels = num_labels
        self.resolution = resolution
        self.latent_dim = latent_dim
        enc = [ndf * 2**i for i in range(n)]
        self.encoder = nn.Sequential(*[
            ConvLayer(cin, cout, 4, 2, 1, norm=nn.BatchNorm2d(cout), act=nn.LeakyReLU(0.2))
            for cin, cout in zip([num_labels] + enc[:-1], enc)
        ])
        self.fc_mu = nn.Linear(enc[-1] * 16, latent_dim)
        self.fc_logvar = nn.Linear(enc[-1] * 16, latent_dim)
        dec = [ngf * 2 ** (n - 1 - i) for i in range(n)]
        self.fc_decode = nn.Linear(latent_dim, dec[0] * 16)
        self.decoder = nn.Sequential(*[
            UpsampleConvLayer(cin, cout, norm=nn.BatchNorm2d(cout, eps=1e-3), act=nn.LeakyReLU(0.2))
            for cin, cout in zip(dec[:-1], dec[1:])
        ])
        self.to_logits = UpsampleConvLayer(ngf, num_labels)
        self._bottleneck = dec[0]

    def encode(self, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``(mu, logvar)`` of the posterior of a mask."""
        x = _as_one_hot(mask, self.num_labels, "mask")
        if tuple(x.shape[-2:]) != (self.resolution, self.resolution):
            raise ValueError(f"mask must be {self.resolution}x{self.resolution}, got {tuple(x.shape[-2:])}")
        h = self.encoder(x).flatten(1)
        return self.fc_mu(h), self.fc_logvar(h)

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, noise: Tensor | None = None) -> Tensor:
        """``z = mu + noise · exp(logvar / 2)``, ``noise ~ N(0, I)`` unless given."""
        if noise is None:
            noise = torch.randn_like(mu)
        return torch.addcmul(mu, noise, logvar.mul(0.5).exp())

    def decode(self, z: Tensor) -> Tensor:
        """Class logits ``(B, num_labels, resolution, resolution)`` of a latent code ``(B, latent_dim)``."""
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape (B, {self.latent_dim}), got {tuple(z.shape)}")
        h = F.relu(self.fc_decode(z)).view(z.shape[0], self._bottleneck, 4, 4)
        return self.to_logits(self.decoder(h))

    def forward(self, mask: Tensor, noise: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Encode, sample (always, as the demo), decode: ``(logits, mu, logvar)``."""
        mu, logvar = self.encode(mask)
        return self.decode(self.reparameterize(mu, logvar, noise)), mu, logvar
