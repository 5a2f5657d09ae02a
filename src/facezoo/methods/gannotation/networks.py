"""GANnotation's networks: the released generator (colour + attention-mask heads) and the PatchGAN critic.

Facts from ``ESanchezLozano/GANnotation`` (``model.py``, ``utils.py``, ``training/model_GAN.py``):

* **Generator** (the released test model, ``model.py``): the image concatenated with one heatmap per
  landmark → conv7 (IN affine, LReLU 0.2) → 2 × down conv4 s2 → 6 residual blocks → 2 × up ConvTranspose4 s2
  → a colour head ``C = tanh(conv7 → 3)`` and a mask head ``M = sigmoid(conv7 → 1)``; the output is
  ``M·x + (1 − M)·C``. Convolutions outside the residual blocks have no bias; the residual blocks' convs have
  a bias and their instance norms no affine parameters.
* **Discriminator** (``training/model_GAN.py``): unconditional PatchGAN, conv4 s2 + LReLU(0.01) doubling the
  channels ``repeat_num`` times, then conv3 → 1 (no bias); no normalisation. A 128² input gives 2×2 logits.
* **Landmark encoding** (``utils.py``: ``generate_maps`` / ``draw_gaussian`` / ``_gaussian``): one map per
  point, a 7×7 Gaussian patch pasted at integer pixels: see :func:`landmark_heatmaps_official`.
* Weights N(0, 0.02), biases 0 (``init_weights``).

Example:
    >>> g = Generator(num_points=66, width=0.125, repeat_num=1)
    >>> points = torch.full((1, 66, 2), 32.0)
    >>> out = g(torch.zeros(1, 3, 64, 64), landmark_heatmaps_official(points, size=64))
    >>> out["image"].shape, out["mask"].shape
    (torch.Size([1, 3, 64, 64]), torch.Size([1, 1, 64, 64]))
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = [
    "landmark_heatmaps_official",
    "heatmaps_to_image",
    "init_weights",
    "ConvNormAct",
    "UpConvNormAct",
    "ResidualBlock",
    "Generator",
    "Discriminator",
]


# --------------------------------------------------------------------------------------------------
# landmark encoding
# --------------------------------------------------------------------------------------------------


def _patch_axis(coord: torch.Tensor, length: int, sigma: int) -> torch.Tensor:
    """Half squared normalised offsets of one axis of the official patch, ``inf`` outside it.

    ``coord`` (…,) float64 pixel coordinates (already rounded to 2 decimals). Returns (…, length) float64:
    ``((k + 1 - centre) / (0.25 · size))² / 2`` at the pixels the patch covers (``k`` = the patch index that
    ``draw_gaussian`` pastes there), ``inf`` elsewhere, so ``exp(-(ex + ey))`` is the pasted value.
    """
    size = 6 * sigma + 1
    ul = torch.floor(coord - 3 * sigma)  # upper-left corner (1-based in the official code)
    br = torch.floor(coord + 3 * sigma)
    one = torch.ones_like(ul)
    lo = torch.maximum(one, ul)  # first covered pixel (1-based) ...
    hi = torch.minimum(br, torch.full_like(br, length))  # ... and last
    shift = torch.maximum(one, -ul) - lo  # patch index k = pixel + shift (0-based pixel, 0-based k)
    pixel = torch.arange(length, dtype=coord.dtype, device=coord.device)
    k = pixel + shift[..., None]
    inside = (pixel >= lo[..., None] - 1) & (pixel <= hi[..., None] - 1)
    centre = 0.5 * size + 0.5
    half_sq = ((k + 1 - centre) / (0.25 * size)).pow(2) / 2.0
    return torch.where(inside, half_sq, torch.full_like(half_sq, float("inf")))


def landmark_heatmaps_official(points: torch.Tensor, size: int = 128, sigma: int = 1) -> torch.Tensor:
    r"""GANnotation's landmark heatmaps, pixel-exact with the released code (``utils.generate_maps``).

    Each point gets its own map holding a ``(6σ+1)²`` Gaussian patch (7×7 for the default ``σ = 1``) whose
    kernel standard deviation is :math:`0.25 (6σ+1)` px (1.75 px), amplitude 1, values clipped to ≤ 1. As
    in ``draw_gaussian``, the point is rounded to 2 decimals and the patch is pasted at integer pixels: its
    peak lands at pixel ``(⌊x⌋ − 1, ⌊y⌋ − 1)`` (a leftover of 1-based indexing, kept because the released
    weights were trained with it), and near the top/left border (``⌊x − 3σ⌋ ≤ 0``) the partial patch is
    pasted with the official code's own offset. A point whose patch lies fully outside gives an all-zero
    map. The maps are in [0, 1] (the released test model's input range; the training scripts' edge maps
    are the ones mapped to [-1, 1]). Not differentiable in ``points`` (use
    :func:`facezoo.face.heatmaps.landmark_heatmaps` for a smooth, sub-pixel encoding: it equals this one at the
    covered pixels for ``points - 1`` when the points are integers).

    Args:
        points: ``(B, N, 2)`` (x, y) pixel coordinates on the ``size × size`` grid (N = 66 for the released
            model; any N works).
        size: side of the square maps (128 in the official code).
        sigma: the official ``sigma`` argument, a positive integer: the patch side is ``6σ + 1``.

    Returns:
        ``(B, N, size, size)`` float32 heatmaps in [0, 1].

    Example:
        >>> h = landmark_heatmaps_official(torch.tensor([[[10.3, 20.7]]]), size=32)
        >>> h[0, 0, 19, 9], (h[0, 0] > 0).sum()
        (tensor(1.), tensor(49))
    """
    if not torch.is_tensor(points) or points.ndim != 3 or points.shape[-1] != 2:
        shape = tuple(points.shape) if torch.is_tensor(points) else type(points).__name__
        raise ValueError(f"points must be a (B, N, 2) tensor of (x, y) pixels, got {shape}")
    if int(sigma) != sigma or sigma < 1:
        raise ValueError(f"sigma must be a positive integer (patch side 6*sigma+1), got {sigma}")
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    sigma = int(sigma)
    p = torch.round(points.detach().to(torch.float64) * 100.0) / 100.0  # round(point, 2)
    x, y = p[..., 0], p[..., 1]
    # draw_gaussian returns an empty map when the patch is fully outside
    visible = ~((torch.floor(x - 3 * sigma) > size) | (torch.floor(y - 3 * sigma) > size)
                | (torch.floor(x + 3 * sigma) < 1) | (torch.floor(y + 3 * sigma) < 1))
    # the patch is separable: exp(-(ey + ex)) = exp(-ey) exp(-ex), two exps per axis instead of one per pixel
    ex = torch.exp(-_patch_axis(x, size, sigma))  # (B, N, W)
    ey = torch.exp(-_patch_axis(y, size, sigma)) * visible[..., None]  # (B, N, H)
    return (ey[..., :, None] * ex[..., None, :]).clamp(max=1.0).to(torch.float32)


def heatmaps_to_image(heatmaps: torch.Tensor) -> torch.Tensor:
    """Visualise heatmaps as a grey image: the sum over points, clipped to [0, 1], mapped to [-1, 1].

    Args:
        heatmaps: ``(B, N, H, W)`` in [0, 1].

    Returns:
        ``(B, 3, H, W)`` in [-1, 1] (black background, white blobs).
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (B, N, H, W), got {tuple(heatmaps.shape)}")
    grey = heatmaps.sum(1, keepdim=True).clamp(0.0, 1.0) * 2.0 - 1.0
    return grey.expand(-1, 3, -1, -1)


# --------------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------------


def init_weights(module: nn.Module, std: float = 0.02) -> nn.Module:
    """GANnotation's initialisation: conv / transposed-conv / linear weights ~ N(0, std²), biases 0.

    Norm layers keep PyTorch's defaults (weight 1, bias 0), as in the official ``init_weights``.

    Args:
        module: the network to initialise in place.
        std: the weights' standard deviation (0.02).

    Returns:
        ``module``.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _channels(base: int, width: float) -> int:
    return max(1, int(round(base * width)))


class ConvNormAct(nn.Sequential):
    """Conv (no bias) → InstanceNorm (affine) → LeakyReLU(0.2): the generator's stem and down blocks.

    Args:
        in_channels, out_channels: channels.
        kernel_size, stride, padding: of the convolution (stem: 7/1/3, down: 4/2/1).

    Shape:
        ``(B, in, H, W)`` → ``(B, out, H / stride, W / stride)``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.norm = nn.InstanceNorm2d(out_channels, affine=True)
        self.act = nn.LeakyReLU(0.2)


class UpConvNormAct(nn.Sequential):
    """ConvTranspose4 s2 (no bias) → InstanceNorm (affine) → LeakyReLU(0.2): ×2 upsampling.

    Shape:
        ``(B, in, H, W)`` → ``(B, out, 2H, 2W)``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False)
        self.norm = nn.InstanceNorm2d(out_channels, affine=True)
        self.act = nn.LeakyReLU(0.2)


class ResidualBlock(nn.Module):
    """``x + IN(conv3(LReLU(IN(conv3(x)))))``; convs with bias, instance norms without affine parameters.

    Args:
        channels: input = output channels.

    Shape:
        ``(B, C, H, W)`` → ``(B, C, H, W)``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = nn.InstanceNorm2d(channels)
        self.act = nn.LeakyReLU(0.2)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = nn.InstanceNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


class _Head(nn.Sequential):
    """conv7 (no bias) → activation: the colour (tanh, 3 channels) and mask (sigmoid, 1 channel) heads."""

    def __init__(self, in_channels: int, out_channels: int, act: nn.Module):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 7, 1, 3, bias=False)
        self.act = act


# --------------------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------------------


class Generator(nn.Module):
    """GANnotation's generator (the released test model): re-poses a face to the given landmark heatmaps.

    ``forward(image, heatmaps)`` runs the encoder–decoder on ``cat(image, heatmaps)`` and blends the input
    with the predicted colour through the attention mask: ``image_out = M·image + (1 − M)·C``.

    Args:
        num_points: heatmap channels (66 for the released model; 68 by config).
        conv_dim: channels of the first layer (64); doubled by each of the 2 down blocks.
        repeat_num: residual blocks in the bottleneck (6).
        width: channel multiplier (1.0 = the official widths; the CPU preset uses less).

    Shape:
        - image: ``(B, 3, H, W)`` in [-1, 1], ``H`` and ``W`` divisible by 4.
        - heatmaps: ``(B, num_points, H, W)`` in [0, 1].
        - output: dict with ``image`` ``(B, 3, H, W)``, ``color`` ``(B, 3, H, W)`` in [-1, 1] and ``mask``
          ``(B, 1, H, W)`` in [0, 1].

    Example:
        >>> g = Generator(num_points=2, width=0.125, repeat_num=1)
        >>> out = g(torch.zeros(1, 3, 16, 16), torch.zeros(1, 2, 16, 16))
        >>> sorted(out), out["image"].shape
        (['color', 'image', 'mask'], torch.Size([1, 3, 16, 16]))
    """

    def __init__(self, num_points: int = 66, conv_dim: int = 64, repeat_num: int = 6, width: float = 1.0):
        super().__init__()
        if num_points < 1 or repeat_num < 0 or width <= 0:
            raise ValueError(f"invalid Generator(num_points={num_points}, repeat_num={repeat_num}, width={width})")
        self.num_points = num_points
        c = _channels(conv_dim, width)
        self.stem = ConvNormAct(3 + num_points, c, 7, 1, 3)
        self.down = nn.Sequential(ConvNormAct(c, 2 * c, 4, 2, 1), ConvNormAct(2 * c, 4 * c, 4, 2, 1))
        self.bottleneck = nn.Sequential(*[ResidualBlock(4 * c) for _ in range(repeat_num)])
        self.up = nn.Sequential(UpConvNormAct(4 * c, 2 * c), UpConvNormAct(2 * c, c))
        self.color_head = _Head(c, 3, nn.Tanh())
        self.mask_head = _Head(c, 1, nn.Sigmoid())
        init_weights(self)

    def forward(self, image: torch.Tensor, heatmaps: torch.Tensor) -> dict[str, torch.Tensor]:
        """Re-pose ``image`` to ``heatmaps``.

        Args:
            image: ``(B, 3, H, W)`` in [-1, 1].
            heatmaps: ``(B, num_points, H, W)`` in [0, 1].

        Returns:
            ``{"image": M·image + (1 − M)·C, "color": C, "mask": M}``.
        """
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be (B, 3, H, W), got {tuple(image.shape)}")
        if heatmaps.shape != (image.shape[0], self.num_points, *image.shape[-2:]):
            raise ValueError(f"heatmaps must be (B, {self.num_points}, H, W) = "
                             f"{(image.shape[0], self.num_points, *image.shape[-2:])}, got {tuple(heatmaps.shape)}")
        if image.shape[-2] % 4 or image.shape[-1] % 4:
            raise ValueError(f"image sides must be divisible by 4, got {tuple(image.shape[-2:])}")
        features = self.up(self.bottleneck(self.down(self.stem(torch.cat([image, heatmaps], 1)))))
        color = self.color_head(features)
        mask = self.mask_head(features)
        return {"image": mask * image + (1.0 - mask) * color, "color": color, "mask": mask}


class Discriminator(nn.Module):
    """GANnotation's unconditional PatchGAN critic (``training/model_GAN.py``, ``ndim=0``).

    ``repeat_num`` × (conv4 s2 + LeakyReLU(0.01)) from ``conv_dim`` channels, doubling each time, then a
    conv3 (no bias) to one logit per patch. No normalisation (WGAN-GP friendly).

    Args:
        image_size: input side; must be divisible by ``2 ** repeat_num``.
        conv_dim: channels of the first layer (64).
        repeat_num: stride-2 layers (6: 128 → 2).
        width: channel multiplier.

    Shape:
        ``(B, 3, S, S)`` in [-1, 1] → logits ``(B, 1, S / 2^repeat_num, S / 2^repeat_num)`` (2×2 at 128).

    Example:
        >>> Discriminator(image_size=64, repeat_num=5, width=0.125)(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1, 2, 2])
    """

    def __init__(self, image_size: int = 128, conv_dim: int = 64, repeat_num: int = 6, width: float = 1.0):
        super().__init__()
        if repeat_num < 1 or image_size < 2**repeat_num or image_size % 2**repeat_num:
            raise ValueError(f"image_size {image_size} must be positive and divisible by 2**repeat_num = "
                             f"{2 ** repeat_num}")
        self.image_size = image_size
        layers, cin, cout = [], 3, _channels(conv_dim, width)
        for _ in range(repeat_num):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.01)]
            cin, cout = cout, 2 * cout
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, 1, 3, 1, 1, bias=False)
        init_weights(self)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Args: image ``(B, 3, S, S)``. Returns: patch logits ``(B, 1, s, s)``, unbounded."""
        if image.ndim != 4 or image.shape[1] != 3 or tuple(image.shape[-2:]) != (self.image_size,) * 2:
            raise ValueError(f"Discriminator expects (B, 3, {self.image_size}, {self.image_size}) images, "
                             f"got {tuple(image.shape)}")
        return self.head(self.blocks(image))
