"""PSGAN networks: MDNet, MANet, the Attentive Makeup Morphing module and the PatchGAN discriminators.

PSGAN (Jiang et al., "PSGAN: Pose and Expression Robust Spatial-Aware GAN for Customizable Makeup
Transfer", CVPR 2020) transfers the makeup of a reference face ``y`` onto a source face ``x``:

* the **Makeup Distill Network** (MDNet, official "PNet") encodes ``y`` and distils two *makeup matrices*
  γ, β (one channel each at a quarter of the image size);
* the **Attentive Makeup Morphing** module (AMM) morphs γ, β from the reference's geometry to the
  source's: every source pixel attends to the reference pixels of the same facial region (lips, skin,
  eyes), with a similarity built from relative-position features (offsets to the 68 landmarks) and, weighted
  by 0.01, the visual features of both networks;
* the **Makeup Apply Network** (MANet, official "TNet") encodes ``x``, applies the morphed matrices before
  its 4th bottleneck block as ``f * (1 + γ') + β'`` and decodes the result.

The layer structure follows the official code (``wtjiang98/PSGAN: psgan/net.py`` — ``Generator``,
``ResidualBlock``, ``GetMatrix``, ``Discriminator``; ``psgan/preprocess.py`` — ``PreProcess.process``,
``copy_area``), so the released ``G.pth`` loads with a key mapping and ``strict=True``
(:mod:`facezoo.methods.psgan.official`).

What differs from the official code (none changes a weight or, up to float rounding, a result):

* the AMM never builds the dense ``(3, HW, HW)`` similarity matrix that the official ``get_weight`` computes
  and then sparsifies: :func:`attentive_makeup_morphing` runs the same per-region softmax through
  :func:`torch.nn.functional.scaled_dot_product_attention` (fused, memory-efficient kernels) or in query
  chunks, and reproduces the official softmax exactly — including its denominator, which also counts one
  ``exp(0)`` per reference pixel *outside* the region (the official softmax runs over all HW columns before
  the zero columns are dropped). :func:`dense_reference_amm` is the literal dense formulation, kept as the
  test reference and the benchmark baseline;
* any batch size (the official generator handles one image: its 3 "batch" rows are the regions), any image
  side that is a multiple of 4 (official 256, features at 64);
* shade control (``alpha``) and partial transfer (``regions``), which the official code only sketches in a
  comment (``Generator.forward``; ``wtjiang98/PSGAN#25``);
* the official ``NONLocalBlock2D`` owns a 1x1 conv ``g`` that its forward never calls; it is not built here
  (its 4 checkpoint entries are dropped by the loader);
* ``width`` scales the 64/128/256 channels (minimum 8): 1 = official, e.g. 0.25 for a CPU preset.

Conventions (``docs/architecture.md``): images in [-1, 1], landmarks ``(B, 68, 2)`` as (x, y) pixels of the
image they belong to, label maps in the CelebAMask-HQ scheme, region masks ``(B, 3, H, W)`` in the order of
:data:`REGION_NAMES`.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from facezoo.face.labels import CELEBAMASK_HQ, IBUG68_PARTS

__all__ = [
    "REGION_NAMES",
    "NUM_LANDMARKS",
    "VISUAL_WEIGHT",
    "ATTENTION_SCALE",
    "EYE_MARGIN",
    "relative_position_features",
    "region_masks_from_parsing",
    "ConvNormReLU",
    "ResidualBlock",
    "GetMatrix",
    "MDNet",
    "MANet",
    "apply_makeup",
    "attentive_makeup_morphing",
    "dense_reference_amm",
    "AMM",
    "PSGANGenerator",
    "Discriminator",
    "init_xavier",
]

#: The three makeup regions, in the order of the region-mask channels (official ``mask_list``).
REGION_NAMES: tuple[str, ...] = ("lip", "skin", "eye")
#: Landmarks per face (dlib / iBUG-68); the relative-position feature has ``2 * NUM_LANDMARKS`` channels.
NUM_LANDMARKS = 68
#: Weight of the visual features in the AMM similarity (official ``fea * 0.01`` in ``get_weight``).
VISUAL_WEIGHT = 0.01
#: Multiplier of the AMM similarity before the softmax (official ``weight *= 200``).
ATTENTION_SCALE = 200.0
#: Margin around the eye landmarks of the eye-shadow boxes, in pixels of a 256 image (``PreProcess.eye_margin``).
EYE_MARGIN = 16
# Official ``PreProcess.process``: a zero norm is replaced by this value, so a zero vector stays zero.
_ZERO_NORM_REPLACEMENT = 1e10


def _channels(channels: int, width: float) -> int:
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    return max(8, int(round(channels * width)))


def _check_landmarks(name: str, landmarks: Tensor, batch: int | None = None) -> None:
    if not isinstance(landmarks, Tensor) or landmarks.dim() != 3 or tuple(landmarks.shape[1:]) != (NUM_LANDMARKS, 2):
        shape = tuple(landmarks.shape) if isinstance(landmarks, Tensor) else type(landmarks).__name__
        raise ValueError(f"{name} must be a (B, {NUM_LANDMARKS}, 2) tensor of (x, y) pixels, got {shape}")
    if batch is not None and landmarks.shape[0] != batch:
        raise ValueError(f"{name} has batch {landmarks.shape[0]}, expected {batch}")


def _check_4d(name: str, tensor: Tensor, channels: int | None = None, batch: int | None = None,
              size: tuple[int, int] | None = None) -> None:
    if not isinstance(tensor, Tensor) or tensor.dim() != 4 or (channels is not None and tensor.shape[1] != channels):
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else type(tensor).__name__
        raise ValueError(f"{name} must be a (B, {channels if channels is not None else 'C'}, H, W) tensor, got {shape}")
    if batch is not None and tensor.shape[0] != batch:
        raise ValueError(f"{name} has batch {tensor.shape[0]}, expected {batch}")
    if size is not None and tuple(tensor.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} must be {size[0]}x{size[1]}, got {tuple(tensor.shape[-2:])}")


# ----------------------------------------------------------------------------------------------------------
# Geometry: relative-position features and region masks (official psgan/preprocess.py)
# ----------------------------------------------------------------------------------------------------------


def _nearest_coordinates(image_size: int, feature_size: int, dtype: torch.dtype, device) -> Tensor:
    # Pixel index of the 256-grid sample that F.interpolate(mode="nearest") keeps for each output pixel.
    grid = torch.arange(image_size, dtype=dtype, device=device).view(1, 1, image_size)
    return F.interpolate(grid, size=feature_size, mode="nearest").view(feature_size)


def relative_position_features(landmarks: Tensor, feature_size: int = 64, image_size: int = 256) -> Tensor:
    r"""Offsets of each feature pixel to the 68 landmarks (PSGAN's relative-position feature).

    As ``PreProcess.process``: on the ``image_size`` pixel grid, channel ``k < 68`` is ``y_pixel - y_k`` and
    channel ``68 + k`` is ``x_pixel - x_k`` (68 y-offsets, then 68 x-offsets, in pixels, not normalised);
    the map is then resized to ``feature_size`` with nearest-neighbour sampling, i.e. feature pixel ``(i, j)``
    keeps the grid pixel ``(floor(i * s / f), floor(j * s / f))``. The AMM masks and L2-normalises these
    features per region (:func:`attentive_makeup_morphing`).

    Args:
        landmarks: (x, y) pixel coordinates in an image of side ``image_size``, iBUG-68 order.
        feature_size: side of the output map (64 = official, a quarter of the image).
        image_size: side of the square image the landmarks belong to (256 = official).

    Returns:
        The offsets, in pixels of the ``image_size`` image, dtype of ``landmarks`` (float).

    Shape:
        - landmarks: :math:`(B, 68, 2)`
        - Output: :math:`(B, 136, f, f)`

    Example:
        >>> lm = torch.zeros(1, 68, 2); lm[0, 0] = torch.tensor([3.0, 1.0])   # landmark 0 at x=3, y=1
        >>> p = relative_position_features(lm, feature_size=4, image_size=8)
        >>> p.shape, p[0, 0, 2, 1].item(), p[0, 68, 2, 1].item()            # pixel (y=4, x=2)
        (torch.Size([1, 136, 4, 4]), 3.0, -1.0)
    """
    _check_landmarks("landmarks", landmarks)
    if feature_size <= 0 or image_size <= 0:
        raise ValueError(f"feature_size and image_size must be positive, got {feature_size}, {image_size}")
    if not landmarks.is_floating_point():
        landmarks = landmarks.float()
    coords = _nearest_coordinates(image_size, feature_size, landmarks.dtype, landmarks.device)
    x, y = landmarks[..., 0, None, None], landmarks[..., 1, None, None]   # (B, 68, 1, 1)
    dy = coords.view(1, 1, -1, 1) - y                                     # (B, 68, f, 1)
    dx = coords.view(1, 1, 1, -1) - x                                     # (B, 68, 1, f)
    shape = (landmarks.shape[0], NUM_LANDMARKS, feature_size, feature_size)
    return torch.cat([dy.expand(shape), dx.expand(shape)], dim=1)


def _box_mask(points: Tensor, margin: int, height: int, width: int) -> Tensor:
    # (B, H, W) bool: the official copy_area rectangle around rounded landmarks, clamped to the image.
    rounded = points.round()
    x0 = (rounded[..., 0].amin(1) - margin).clamp(0, width).long()
    y0 = (rounded[..., 1].amin(1) - margin).clamp(0, height).long()
    x1 = (rounded[..., 0].amax(1) + margin + 1).clamp(0, width).long()
    y1 = (rounded[..., 1].amax(1) + margin + 1).clamp(0, height).long()
    ys = torch.arange(height, device=points.device).view(1, height, 1)
    xs = torch.arange(width, device=points.device).view(1, 1, width)
    inside_y = (ys >= y0.view(-1, 1, 1)) & (ys < y1.view(-1, 1, 1))
    inside_x = (xs >= x0.view(-1, 1, 1)) & (xs < x1.view(-1, 1, 1))
    return inside_y & inside_x


def region_masks_from_parsing(mask: Tensor, landmarks: Tensor, eye_margin: int | None = None) -> Tensor:
    r"""PSGAN's three makeup regions (lips, skin, eye shadow) from a face parsing and the landmarks.

    The official construction (``wtjiang98/PSGAN: psgan/preprocess.py PreProcess.process``, ``copy_area``;
    ``configs/base.yaml PREPROCESS``):

    * **lip** = upper lip + lower lip (``u_lip``, ``l_lip``);
    * **skin** = skin + nose (MT's "face" and "nose" classes);
    * **eye** = the skin inside a rectangle around each eye's landmarks (points 42-47, then 36-41) grown by
      ``eye_margin`` pixels; those pixels are removed from the skin. The rectangle spans
      ``round(min) - margin`` to ``round(max) + margin`` inclusive on both axes. The official code copies
      the two boxes one after the other, so where they overlap (only with very large margins) the pixels end
      in neither region; this is reproduced. Boxes are clamped to the image (the official slicing would
      wrap a negative start around instead).

    Args:
        mask: label map in the CelebAMask-HQ scheme (:data:`facezoo.face.labels.CELEBAMASK_HQ`).
        landmarks: (x, y) pixel coordinates of the same image, iBUG-68 order.
        eye_margin: box margin in pixels; ``None`` = 16 at 256 px, scaled with ``H`` (``round(16 * H / 256)``).

    Returns:
        Region masks with values in {0, 1}, channels in the order of :data:`REGION_NAMES`, float (dtype of
        ``landmarks``).

    Shape:
        - mask: :math:`(B, H, W)` int
        - landmarks: :math:`(B, 68, 2)`
        - Output: :math:`(B, 3, H, W)`

    Example:
        >>> mask = torch.full((1, 64, 64), CELEBAMASK_HQ.index("skin"))
        >>> landmarks = torch.full((1, 68, 2), 32.0)
        >>> landmarks[:, 36:42] = torch.tensor([16.0, 20.0]); landmarks[:, 42:48] = torch.tensor([48.0, 20.0])
        >>> regions = region_masks_from_parsing(mask, landmarks)   # margin round(16 * 64 / 256) = 4
        >>> regions.sum(dim=(2, 3)).tolist()   # two 9 x 9 eye boxes move from skin to eye
        [[0.0, 3934.0, 162.0]]
    """
    if not isinstance(mask, Tensor) or mask.dim() != 3 or mask.is_floating_point():
        shape = tuple(mask.shape) if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"mask must be a (B, H, W) integer label map, got {shape}")
    _check_landmarks("landmarks", landmarks, mask.shape[0])
    height, width = mask.shape[-2:]
    if eye_margin is None:
        eye_margin = int(round(EYE_MARGIN * height / 256))
    dtype = landmarks.dtype if landmarks.is_floating_point() else torch.get_default_dtype()

    def labels(*names: str) -> Tensor:
        return sum((mask == CELEBAMASK_HQ.index(n)) for n in names).to(dtype)

    lip = labels("u_lip", "l_lip")
    skin = labels("skin", "nose")
    first = _box_mask(landmarks[:, list(IBUG68_PARTS["right_eye"])], eye_margin, height, width)
    second = _box_mask(landmarks[:, list(IBUG68_PARTS["left_eye"])], eye_margin, height, width)
    # copy_area(eyes, skin, box1); copy_area(eyes, skin, box2): the overlap was zeroed before the 2nd copy.
    eye = skin * (first ^ second).to(dtype)
    skin = skin * (~(first | second)).to(dtype)
    return torch.stack([lip, skin, eye], dim=1)


# ----------------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------------


class ConvNormReLU(nn.Sequential):
    r"""Convolution (no bias) -> InstanceNorm -> ReLU, the official down/up-sampling stage.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: square kernel side (7 for the stems, 4 for the stride-2 stages).
        stride: 1 or 2.
        padding: zero padding (3 for 7x7, 1 for 4x4).
        affine: learnable InstanceNorm scale/shift (MDNet: ``True``; MANet: ``False``).
        transposed: a ``ConvTranspose2d`` (MANet's up-sampling) instead of a ``Conv2d``.

    Shape:
        - Input: :math:`(B, C_{in}, H, W)`
        - Output: :math:`(B, C_{out}, H', W')`, non-negative

    Example:
        >>> ConvNormReLU(3, 8, 4, 2, 1)(torch.zeros(1, 3, 16, 16)).shape
        torch.Size([1, 8, 8, 8])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 affine: bool = True, transposed: bool = False):
        conv = nn.ConvTranspose2d if transposed else nn.Conv2d
        super().__init__(OrderedDict(
            conv=conv(in_channels, out_channels, kernel_size, stride, padding, bias=False),
            norm=nn.InstanceNorm2d(out_channels, affine=affine),
            relu=nn.ReLU(inplace=True),
        ))


class ResidualBlock(nn.Module):
    r"""Official ``ResidualBlock``: ``x + IN(conv3(ReLU(IN(conv3(x)))))``, bias-free convolutions.

    Args:
        channels: input = output channels.
        affine: learnable InstanceNorm parameters (MDNet ``net_mode='p'``: ``True``; MANet ``'t'``: ``False``).

    Shape:
        - Input: :math:`(B, C, H, W)`
        - Output: :math:`(B, C, H, W)`

    Example:
        >>> ResidualBlock(8)(torch.zeros(2, 8, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
    """

    def __init__(self, channels: int, affine: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm1 = nn.InstanceNorm2d(channels, affine=affine)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = nn.InstanceNorm2d(channels, affine=affine)

    def forward(self, input: Tensor) -> Tensor:
        return input + self.norm2(self.conv2(self.relu(self.norm1(self.conv1(input)))))


class GetMatrix(nn.Module):
    r"""The makeup matrices γ and β: two bias-free 1x1 convolutions to one channel each (official ``GetMatrix``).

    Args:
        channels: channels of the MDNet feature (256 official).

    Shape:
        - Input: :math:`(B, C, h, w)`
        - Output: ``(gamma, beta)``, each :math:`(B, 1, h, w)`

    Example:
        >>> gamma, beta = GetMatrix(8)(torch.ones(2, 8, 4, 4))
        >>> gamma.shape, beta.shape
        (torch.Size([2, 1, 4, 4]), torch.Size([2, 1, 4, 4]))
    """

    def __init__(self, channels: int):
        super().__init__()
        self.get_gamma = nn.Conv2d(channels, 1, 1, bias=False)
        self.get_beta = nn.Conv2d(channels, 1, 1, bias=False)

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        return self.get_gamma(features), self.get_beta(features)


def apply_makeup(features: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    r"""Apply makeup matrices to a MANet feature map: ``f * (1 + γ') + β'``.

    Args:
        features: MANet bottleneck feature before its 4th residual block.
        gamma: morphed makeup matrix γ', broadcast over the channels.
        beta: morphed makeup matrix β', broadcast over the channels.

    Returns:
        The made-up feature, same shape as ``features``.

    Shape:
        - features: :math:`(B, C, h, w)`
        - gamma, beta: :math:`(B, 1, h, w)` (or :math:`(B, C, h, w)`)
        - Output: :math:`(B, C, h, w)`

    Example:
        >>> apply_makeup(torch.full((1, 2, 1, 1), 2.0), torch.full((1, 1, 1, 1), 0.5), torch.ones(1, 1, 1, 1))
        tensor([[[[4.]],
        <BLANKLINE>
                 [[4.]]]])
    """
    _check_4d("features", features)
    for name, matrix in (("gamma", gamma), ("beta", beta)):
        _check_4d(name, matrix, batch=features.shape[0], size=tuple(features.shape[-2:]))
        if matrix.shape[1] not in (1, features.shape[1]):
            raise ValueError(f"{name} must have 1 or {features.shape[1]} channels, got {matrix.shape[1]}")
    return features * (1 + gamma) + beta


# ----------------------------------------------------------------------------------------------------------
# MDNet and MANet
# ----------------------------------------------------------------------------------------------------------


class MDNet(nn.Module):
    r"""Makeup Distill Network (official "PNet"): reference image -> feature map and makeup matrices γ, β.

    conv7 3->64, IN(affine), ReLU; 2 x [conv4 s2 (->128->256), IN(affine), ReLU]; 3 residual blocks
    (IN affine); :class:`GetMatrix`.

    Args:
        width: channel multiplier (1 = official 64/128/256).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [-1, 1], ``H, W`` multiples of 4
        - Output: ``(features (B, C, H/4, W/4), gamma (B, 1, H/4, W/4), beta (B, 1, H/4, W/4))``,
          ``C = 256 * width``

    Example:
        >>> features, gamma, beta = MDNet(width=0.125)(torch.zeros(1, 3, 32, 32))
        >>> features.shape, gamma.shape
        (torch.Size([1, 32, 8, 8]), torch.Size([1, 1, 8, 8]))
    """

    def __init__(self, width: float = 1.0):
        super().__init__()
        c64, c128, c256 = (_channels(c, width) for c in (64, 128, 256))
        self.out_channels = c256
        self.stem = ConvNormReLU(3, c64, 7, 1, 3, affine=True)
        self.down1 = ConvNormReLU(c64, c128, 4, 2, 1, affine=True)
        self.down2 = ConvNormReLU(c128, c256, 4, 2, 1, affine=True)
        self.blocks = nn.ModuleList(ResidualBlock(c256, affine=True) for _ in range(3))
        self.get_matrix = GetMatrix(c256)

    def forward(self, reference: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _check_4d("reference", reference, 3)
        x = self.down2(self.down1(self.stem(reference)))
        for block in self.blocks:
            x = block(x)
        gamma, beta = self.get_matrix(x)
        return x, gamma, beta


class MANet(nn.Module):
    r"""Makeup Apply Network (official "TNet"): source image + makeup matrices -> made-up image.

    conv7 3->64, IN, ReLU; 2 x [conv4 s2 (->128->256), IN, ReLU]; 6 residual blocks, with the makeup applied
    (:func:`apply_makeup`) just before the 4th; 2 x [transposed conv4 s2 (->128->64), IN, ReLU]; conv7 ->3,
    Tanh. No InstanceNorm here is affine. :meth:`encode` returns the feature the makeup is applied to (also
    the AMM's source visual feature), :meth:`decode` does the rest.

    Args:
        width: channel multiplier (1 = official 64/128/256).

    Shape:
        - source: :math:`(B, 3, H, W)` in [-1, 1], ``H, W`` multiples of 4
        - gamma, beta: :math:`(B, 1, H/4, W/4)`
        - Output: :math:`(B, 3, H, W)` in [-1, 1]

    Example:
        >>> net = MANet(width=0.125)
        >>> net(torch.zeros(1, 3, 32, 32), torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8)).shape
        torch.Size([1, 3, 32, 32])
    """

    #: Index of the bottleneck block the makeup is applied before (the 4th of 6).
    makeup_block = 3

    def __init__(self, width: float = 1.0):
        super().__init__()
        c64, c128, c256 = (_channels(c, width) for c in (64, 128, 256))
        self.out_channels = c256
        self.stem = ConvNormReLU(3, c64, 7, 1, 3, affine=False)
        self.down1 = ConvNormReLU(c64, c128, 4, 2, 1, affine=False)
        self.down2 = ConvNormReLU(c128, c256, 4, 2, 1, affine=False)
        self.blocks = nn.ModuleList(ResidualBlock(c256, affine=False) for _ in range(6))
        self.up1 = ConvNormReLU(c256, c128, 4, 2, 1, affine=False, transposed=True)
        self.up2 = ConvNormReLU(c128, c64, 4, 2, 1, affine=False, transposed=True)
        self.to_rgb = nn.Sequential(OrderedDict(conv=nn.Conv2d(c64, 3, 7, 1, 3, bias=False), tanh=nn.Tanh()))

    def encode(self, source: Tensor) -> Tensor:
        """The bottleneck feature before the 4th residual block, ``(B, C, H/4, W/4)``."""
        _check_4d("source", source, 3)
        if source.shape[-1] % 4 or source.shape[-2] % 4:
            raise ValueError(f"source height and width must be multiples of 4, got {tuple(source.shape[-2:])}")
        x = self.down2(self.down1(self.stem(source)))
        for block in self.blocks[: self.makeup_block]:
            x = block(x)
        return x

    def decode(self, features: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        """Apply γ', β' to :meth:`encode`'s feature, run the last 3 blocks and the up-sampling; ``[-1, 1]``."""
        x = apply_makeup(features, gamma, beta)
        for block in self.blocks[self.makeup_block:]:
            x = block(x)
        return self.to_rgb(self.up2(self.up1(x)))

    def forward(self, source: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        return self.decode(self.encode(source), gamma, beta)


# ----------------------------------------------------------------------------------------------------------
# Attentive Makeup Morphing
# ----------------------------------------------------------------------------------------------------------


def _region_tokens(features: Tensor, positions: Tensor, masks: Tensor, visual_weight: float) -> Tensor:
    # Official get_weight / process: per region r, [visual_weight * fea * m_r, normalise(pos * m_r)].
    m = masks.unsqueeze(2)                                          # (B, 3, 1, h, w)
    visual = features.unsqueeze(1) * m * visual_weight              # (B, 3, C, h, w)
    position = positions.unsqueeze(1) * m                           # (B, 3, 136, h, w)
    norm = torch.linalg.vector_norm(position, dim=2, keepdim=True)
    norm = torch.where(norm == 0, torch.full_like(norm, _ZERO_NORM_REPLACEMENT), norm)
    tokens = torch.cat([visual, position / norm], dim=2)            # (B, 3, D, h, w)
    return tokens.flatten(3).transpose(2, 3).contiguous()           # (B, 3, hw, D); fused SDPA needs contiguous


def _region_pixels(tokens: Tensor, inside: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The tokens of each (image, region)'s pixels, first ``n`` rows, ``n`` the largest pixel count of a region
    in the batch: ``(B, 3, n, D)`` tokens, their ``(B, 3, n)`` pixel indices and which rows are the region's (the
    others are padding, taken from outside the region)."""
    counts = inside.sum(-1, keepdim=True)                                      # (B, 3, 1)
    n = int(counts.max())
    index = torch.argsort((~inside).to(torch.uint8), dim=-1, stable=True)[..., :n]   # region pixels first, in order
    valid = torch.arange(n, device=inside.device) < counts
    return tokens.gather(2, index.unsqueeze(-1).expand(-1, -1, -1, tokens.shape[-1])), index, valid


def _check_amm_inputs(fea_x, fea_y, pos_x, pos_y, masks_x, masks_y, gamma, beta) -> None:
    _check_4d("fea_x", fea_x)
    batch, channels = fea_x.shape[:2]
    _check_4d("fea_y", fea_y, channels, batch)
    _check_4d("pos_x", pos_x, 2 * NUM_LANDMARKS, batch, tuple(fea_x.shape[-2:]))
    _check_4d("pos_y", pos_y, 2 * NUM_LANDMARKS, batch, tuple(fea_y.shape[-2:]))
    _check_4d("masks_x", masks_x, len(REGION_NAMES), batch)
    _check_4d("masks_y", masks_y, len(REGION_NAMES), batch)
    _check_4d("gamma", gamma, 1, batch, tuple(fea_y.shape[-2:]))
    _check_4d("beta", beta, 1, batch, tuple(fea_y.shape[-2:]))


def _resize_masks(masks: Tensor, size: Sequence[int], dtype: torch.dtype) -> Tensor:
    # Official F.interpolate(mask, size=64): nearest neighbour.
    return F.interpolate(masks.to(dtype), size=tuple(size), mode="nearest")


def attentive_makeup_morphing(
    fea_x: Tensor, fea_y: Tensor, pos_x: Tensor, pos_y: Tensor, masks_x: Tensor, masks_y: Tensor,
    gamma: Tensor, beta: Tensor, chunk: int | None = None, visual_weight: float = VISUAL_WEIGHT,
    scale: float = ATTENTION_SCALE, per_region: bool = False,
) -> tuple[Tensor, Tensor]:
    r"""Morph the reference's makeup matrices to the source's geometry (PSGAN's AMM), memory-efficiently.

    For each region ``r`` (lips, skin, eyes) with masks ``m_r`` (resized to the feature size, nearest):
    ``θ_i = [0.01 * fea_x_i * m_r, p_i / |p_i|]`` with ``p = pos_x * m_r`` (zero norms replaced by 1e10, so
    zero vectors stay zero), ``φ_j`` likewise for the reference; then for every source pixel ``i`` inside the
    region

    .. math::
        γ'_i = \sum_{j \in R_y} \frac{\exp(200\, θ_i^T φ_j)}{\sum_{k \in R_y} \exp(200\, θ_i^T φ_k) + |\bar R_y|}
               \, γ_j m_{r,j}

    where ``|R̄_y|`` counts the reference pixels outside the region: the official code takes the softmax over
    all HW columns of the dense similarity (out-of-region columns are exactly 0 and contribute ``exp(0)``)
    before keeping only the non-zero entries. Source pixels outside the region get 0; the 3 regions are
    summed. β' is the same with β.

    This is computed as one attention call over ``(B, 3)`` heads between the region's pixels only (each
    region's source and reference pixels are gathered first, padded to the batch's largest region, the padding
    masked out), plus one *null key* (zero key, zero value, additive score ``log |R̄_y|``) that carries the
    ``exp(0)`` terms — it also makes an empty reference region give 0 instead of NaN. The ``(3, HW, HW)`` matrix is
    never materialised, and the work is ``#x-pixels × #y-pixels`` per region instead of ``HW × HW``: the lips and
    eyes are a few percent of a face (4.2x faster than attending over all pixels at 256 px, docs/benchmarks.md).

    Args:
        fea_x: source visual feature (MANet, before its 4th block).
        fea_y: reference visual feature (MDNet output).
        pos_x: source relative-position feature (:func:`relative_position_features`), not masked.
        pos_y: reference relative-position feature.
        masks_x: source region masks (lip, skin, eye), values in {0, 1}, any size (resized here).
        masks_y: reference region masks.
        gamma: the reference's makeup matrix γ (MDNet / :class:`GetMatrix`).
        beta: the reference's makeup matrix β.
        chunk: ``None`` uses :func:`torch.nn.functional.scaled_dot_product_attention` (the value is
            zero-padded to the key width so that the fused flash / memory-efficient kernels apply);
            an int computes the same softmax explicitly for ``chunk`` source pixels at a time (peak memory
            ``B * 3 * chunk * n_y`` scores, ``n_y`` the largest region's reference pixels).
        visual_weight: weight of the visual features (0.01 official).
        scale: similarity multiplier before the softmax (200 official).
        per_region: return the per-region terms ``(B, 3, 1, h, w)`` instead of their sum.

    Returns:
        ``(gamma', beta')`` at the source's feature size.

    Shape:
        - fea_x: :math:`(B, C, h, w)`, fea_y: :math:`(B, C, h_y, w_y)`
        - pos_x: :math:`(B, 136, h, w)`, pos_y: :math:`(B, 136, h_y, w_y)`
        - masks_x, masks_y: :math:`(B, 3, H, W)`
        - gamma, beta: :math:`(B, 1, h_y, w_y)`
        - Output: two :math:`(B, 1, h, w)` (or :math:`(B, 3, 1, h, w)` with ``per_region``)

    Example:
        >>> fea, pos = torch.randn(1, 8, 4, 4), torch.randn(1, 136, 4, 4)
        >>> masks = torch.zeros(1, 3, 16, 16); masks[:, 1] = 1           # everything is skin
        >>> g, b = attentive_makeup_morphing(fea, fea, pos, pos, masks, masks, torch.ones(1, 1, 4, 4),
        ...                                  torch.zeros(1, 1, 4, 4))
        >>> torch.allclose(g, torch.ones(1, 1, 4, 4)), g.shape             # weights sum to 1 in the region
        (True, torch.Size([1, 1, 4, 4]))
    """
    _check_amm_inputs(fea_x, fea_y, pos_x, pos_y, masks_x, masks_y, gamma, beta)
    if chunk is not None and chunk <= 0:
        raise ValueError(f"chunk must be a positive int or None, got {chunk}")
    batch, regions = fea_x.shape[0], len(REGION_NAMES)
    (h, w), size_y = fea_x.shape[-2:], fea_y.shape[-2:]
    hw_y = size_y[0] * size_y[1]
    dtype = fea_x.dtype
    m_x = _resize_masks(masks_x, (h, w), dtype)
    m_y = _resize_masks(masks_y, size_y, dtype)
    query = _region_tokens(fea_x, pos_x, m_x, visual_weight)                   # (B, 3, hw, D)
    key = _region_tokens(fea_y, pos_y, m_y, visual_weight)                     # (B, 3, hw_y, D)
    value = torch.stack([gamma.flatten(1), beta.flatten(1)], dim=-1)           # (B, hw_y, 2)
    value = value.unsqueeze(1).expand(-1, regions, -1, -1)                     # (B, 3, hw_y, 2)

    # Only the region's pixels take part: its source pixels (the others get 0) and its reference pixels (the
    # others add exp(0) each to the denominator). Gathering them first makes the attention (#x-pixels, #y-pixels)
    # per region instead of (hw, hw_y): the lips and eyes are a few percent of a face, the skin about half.
    query, query_index, query_valid = _region_pixels(query, m_x.flatten(2) != 0)
    key, key_index, key_valid = _region_pixels(key, m_y.flatten(2) != 0)
    value = value.gather(2, key_index.unsqueeze(-1).expand(-1, -1, -1, 2))

    # The null key: zero vector, zero value, additive score log(#reference pixels outside the region).
    outside = (hw_y - key_valid.sum(-1, keepdim=True)).to(dtype)              # (B, 3, 1)
    null_score = torch.where(outside > 0, outside.log(), torch.full_like(outside, -math.inf))
    bias = torch.where(key_valid, torch.zeros((), dtype=dtype, device=key.device),
                       torch.full((), -math.inf, dtype=dtype, device=key.device))
    bias = torch.cat([bias, null_score], dim=-1).unsqueeze(2)                  # (B, 3, 1, n_y + 1)
    key = torch.cat([key, key.new_zeros(batch, regions, 1, key.shape[-1])], dim=2)
    value = torch.cat([value, value.new_zeros(batch, regions, 1, 2)], dim=2)

    if chunk is None:
        padded = F.pad(value, (0, key.shape[-1] - 2))                           # fused kernels need D_v == D
        out = F.scaled_dot_product_attention(query, key, padded, attn_mask=bias, scale=scale)[..., :2]
    else:
        pieces = [query.new_zeros(batch, regions, 0, 2)]
        for start in range(0, query.shape[2], chunk):
            logits = query[:, :, start:start + chunk] @ key.transpose(-1, -2) * scale + bias
            pieces.append(logits.softmax(-1) @ value)
        out = torch.cat(pieces, dim=2)                                          # (B, 3, n_x, 2)
    out = out * query_valid.unsqueeze(-1).to(dtype)                            # padding rows: 0
    out = out.new_zeros(batch, regions, h * w, 2).scatter(2, query_index.unsqueeze(-1).expand(-1, -1, -1, 2), out)
    out = out.transpose(2, 3).reshape(batch, regions, 2, 1, h, w)
    gamma_out, beta_out = out[:, :, 0], out[:, :, 1]
    if per_region:
        return gamma_out, beta_out
    return gamma_out.sum(1), beta_out.sum(1)


def dense_reference_amm(
    fea_x: Tensor, fea_y: Tensor, pos_x: Tensor, pos_y: Tensor, masks_x: Tensor, masks_y: Tensor,
    gamma: Tensor, beta: Tensor, dtype: torch.dtype | None = torch.float64,
    visual_weight: float = VISUAL_WEIGHT, scale: float = ATTENTION_SCALE,
) -> tuple[Tensor, Tensor]:
    r"""The official AMM, literally: dense ``(3, HW, HW)`` similarity, softmax, then keep its non-zero entries.

    Per image (the official code handles one): ``S = bmm(θ, φ)`` (3 regions), ``A = softmax(200 S)`` over
    all reference pixels, entries where ``S == 0`` dropped (official ``nonzero`` + ``torch.sparse``),
    ``γ' = Σ_r A_r (γ ⊙ m_r)``. Memory grows as ``3 (HW)^2``: this is the test reference for
    :func:`attentive_makeup_morphing` and the benchmark baseline, not for training.

    Args:
        fea_x, fea_y, pos_x, pos_y, masks_x, masks_y, gamma, beta: as :func:`attentive_makeup_morphing`.
        dtype: computation dtype (float64 for a test reference); ``None`` keeps the input dtype.
        visual_weight: weight of the visual features (0.01 official).
        scale: similarity multiplier before the softmax (200 official).

    Returns:
        ``(gamma', beta')``, each :math:`(B, 1, h, w)`, in ``dtype``.

    Example:
        >>> fea, pos = torch.randn(1, 8, 4, 4), torch.randn(1, 136, 4, 4)
        >>> masks = torch.zeros(1, 3, 16, 16); masks[:, 0, :8] = 1; masks[:, 1, 8:] = 1
        >>> g = torch.randn(1, 1, 4, 4)
        >>> ref = dense_reference_amm(fea, fea, pos, pos, masks, masks, g, g)[0]
        >>> new = attentive_makeup_morphing(fea, fea, pos, pos, masks, masks, g, g)[0]
        >>> torch.allclose(ref.float(), new, atol=1e-5)
        True
    """
    _check_amm_inputs(fea_x, fea_y, pos_x, pos_y, masks_x, masks_y, gamma, beta)
    dtype = dtype or fea_x.dtype
    fea_x, fea_y, pos_x, pos_y, gamma, beta = (t.to(dtype) for t in (fea_x, fea_y, pos_x, pos_y, gamma, beta))
    (h, w), size_y = fea_x.shape[-2:], fea_y.shape[-2:]
    m_x = _resize_masks(masks_x, (h, w), dtype)
    m_y = _resize_masks(masks_y, size_y, dtype)
    outputs = []
    for b in range(fea_x.shape[0]):                     # the official generator sees one image at a time
        theta = _region_tokens(fea_x[b:b + 1], pos_x[b:b + 1], m_x[b:b + 1], visual_weight)[0]   # (3, HW, D)
        phi = _region_tokens(fea_y[b:b + 1], pos_y[b:b + 1], m_y[b:b + 1], visual_weight)[0]     # (3, HWy, D)
        similarity = torch.bmm(theta, phi.transpose(1, 2))                                      # (3, HW, HWy)
        attention = F.softmax(similarity * scale, dim=-1) * (similarity != 0)
        values = torch.stack([gamma[b].flatten(), beta[b].flatten()], -1) * m_y[b].flatten(1).unsqueeze(-1)
        outputs.append(torch.bmm(attention, values).sum(0))                                      # (HW, 2)
    out = torch.stack(outputs).transpose(1, 2).reshape(-1, 2, 1, h, w)
    return out[:, 0], out[:, 1]


class AMM(nn.Module):
    r"""Attentive Makeup Morphing as a module (no parameters): :func:`attentive_makeup_morphing` or the dense
    official formulation.

    Args:
        mode: ``"sdpa"`` (fused attention, default), ``"chunked"`` (explicit softmax over ``chunk`` source
            pixels at a time) or ``"dense"`` (:func:`dense_reference_amm` in the input dtype, the official
            memory profile; no ``per_region``).
        chunk: query chunk of ``"chunked"`` (default 1024).
        visual_weight: weight of the visual features (0.01 official).
        scale: similarity multiplier (200 official).

    Shape:
        as :func:`attentive_makeup_morphing`.

    Example:
        >>> amm = AMM()
        >>> fea, pos, m = torch.randn(1, 8, 4, 4), torch.randn(1, 136, 4, 4), torch.ones(1, 3, 4, 4)
        >>> amm(fea, fea, pos, pos, m, m, torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4))[0].shape
        torch.Size([1, 1, 4, 4])
    """

    modes = ("sdpa", "chunked", "dense")

    def __init__(self, mode: str = "sdpa", chunk: int | None = None, visual_weight: float = VISUAL_WEIGHT,
                 scale: float = ATTENTION_SCALE):
        super().__init__()
        if mode not in self.modes:
            raise ValueError(f"AMM mode must be one of {self.modes}, got {mode!r}")
        self.mode, self.visual_weight, self.scale = mode, visual_weight, scale
        self.chunk = (chunk or 1024) if mode == "chunked" else None

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, chunk={self.chunk}, visual_weight={self.visual_weight}, scale={self.scale}"

    def forward(self, fea_x: Tensor, fea_y: Tensor, pos_x: Tensor, pos_y: Tensor, masks_x: Tensor,
                masks_y: Tensor, gamma: Tensor, beta: Tensor, per_region: bool = False) -> tuple[Tensor, Tensor]:
        if self.mode == "dense" and per_region:
            raise ValueError("the dense AMM has no per_region output; use mode='sdpa' or 'chunked'")
        # Always in fp32 (also under bf16 autocast and the bf16 fast path): the similarities are multiplied by 200
        # before the softmax, so bf16's 3 significant digits would move the attention weights by whole percents.
        dtype = torch.float32 if fea_x.dtype in (torch.float16, torch.bfloat16) else fea_x.dtype
        inputs = [t.to(dtype) for t in (fea_x, fea_y, pos_x, pos_y, masks_x, masks_y, gamma, beta)]
        with torch.autocast(fea_x.device.type, enabled=False):
            if self.mode == "dense":
                out = dense_reference_amm(*inputs, dtype=None, visual_weight=self.visual_weight, scale=self.scale)
            else:
                out = attentive_makeup_morphing(*inputs, chunk=self.chunk, visual_weight=self.visual_weight,
                                                scale=self.scale, per_region=per_region)
        return out[0].to(fea_x.dtype), out[1].to(fea_x.dtype)


# ----------------------------------------------------------------------------------------------------------
# Generator
# ----------------------------------------------------------------------------------------------------------


def _region_selection(regions: Sequence[str] | None, like: Tensor) -> Tensor:
    if regions is None:
        return torch.ones(len(REGION_NAMES), dtype=like.dtype, device=like.device)
    if isinstance(regions, str):
        regions = (regions,)
    unknown = [r for r in regions if r not in REGION_NAMES]
    if unknown:
        raise ValueError(f"unknown regions {unknown}; choose from {REGION_NAMES}")
    return torch.tensor([float(r in regions) for r in REGION_NAMES], dtype=like.dtype, device=like.device)


def _alpha_tensor(alpha: float | Tensor, batch: int, like: Tensor) -> Tensor:
    alpha = torch.as_tensor(alpha, dtype=like.dtype, device=like.device)
    if alpha.dim() > 1 or (alpha.dim() == 1 and alpha.shape[0] not in (1, batch)):
        raise ValueError(f"alpha must be a float, a scalar tensor or a ({batch},) tensor, got {tuple(alpha.shape)}")
    if alpha.numel() and (alpha.min() < 0 or alpha.max() > 1):
        raise ValueError(f"alpha must lie in [0, 1], got {alpha.tolist()}")
    return alpha.reshape(-1).expand(batch)


class PSGANGenerator(nn.Module):
    r"""The PSGAN generator: MDNet + AMM + MANet, with shade control and partial transfer.

    ``forward`` is the official single pass ``G(x, y)``; :meth:`makeup_matrices` then :meth:`apply` is the
    official two-pass inference (``Solver.test``: ``ret=True`` returns γ', β', the second pass applies them).

    **Shade control** (``alpha``) and **partial transfer** (``regions``): the morphed matrices of every
    region are computed twice, with the reference (``ref``) and with the source as its own reference
    (``own``); a selected region gets ``alpha * ref + (1 - alpha) * own``, an unselected one ``own``. With
    ``alpha=1`` and all regions only ``ref`` is computed (the official path).

    Args:
        width: channel multiplier (1 = official, 12.6 M parameters).
        amm: AMM implementation, see :class:`AMM` (``"sdpa"``, ``"chunked"``, ``"dense"``).
        chunk: query chunk of ``amm="chunked"``.

    Shape:
        - source, reference: :math:`(B, 3, H, W)` in [-1, 1], ``H = W`` a multiple of 4 (256 official)
        - source_landmarks, reference_landmarks: :math:`(B, 68, 2)`, (x, y) pixels
        - source_regions, reference_regions: :math:`(B, 3, H, W)` in {0, 1}
          (:func:`region_masks_from_parsing`)
        - alpha: float or :math:`()` / :math:`(B,)` tensor in [0, 1]
        - regions: a subset of :data:`REGION_NAMES`, ``None`` = all
        - Output: :math:`(B, 3, H, W)` in [-1, 1]

    Example:
        >>> g = PSGANGenerator(width=0.125)
        >>> x, lm, reg = torch.zeros(1, 3, 32, 32), torch.full((1, 68, 2), 16.0), torch.ones(1, 3, 32, 32)
        >>> g(x, x, lm, lm, reg, reg).shape
        torch.Size([1, 3, 32, 32])
        >>> gamma, beta = g.makeup_matrices(x, x, lm, lm, reg, reg, alpha=0.5, regions=("lip",))
        >>> g.apply(x, gamma, beta).shape, gamma.shape
        (torch.Size([1, 3, 32, 32]), torch.Size([1, 1, 8, 8]))
    """

    def __init__(self, width: float = 1.0, amm: str = "sdpa", chunk: int | None = None):
        super().__init__()
        self.width = width
        self.mdnet = MDNet(width)
        self.manet = MANet(width)
        self.amm = AMM(amm, chunk)
        self.fast_dtype: torch.dtype | None = None        # fast_path(): bf16 weights

    def fast_path(self) -> PSGANGenerator:
        """Inference fast path: MDNet's and MANet's weights in bf16 (the images cast to it, the output back to
        fp32); the AMM stays in fp32 (:class:`AMM`). docs/benchmarks.md has its speed and its PSNR to fp32. For
        inference, not training; irreversible (load the network again for fp32).

        Returns:
            ``self``, in eval mode.
        """
        self.fast_dtype = torch.bfloat16
        return self.to(self.fast_dtype).eval()

    def _input(self, image: Tensor) -> Tensor:
        return image if self.fast_dtype is None else image.to(self.fast_dtype)

    def _output(self, image: Tensor) -> Tensor:
        return image if self.fast_dtype is None else image.float()

    def _check_inputs(self, source, reference, source_landmarks, reference_landmarks, source_regions,
                      reference_regions) -> None:
        _check_4d("source", source, 3)
        batch, size = source.shape[0], tuple(source.shape[-2:])
        if size[0] != size[1] or size[0] % 4:
            raise ValueError(f"source must be square with a side that is a multiple of 4, got {size}")
        _check_4d("reference", reference, 3, batch, size)
        _check_landmarks("source_landmarks", source_landmarks, batch)
        _check_landmarks("reference_landmarks", reference_landmarks, batch)
        _check_4d("source_regions", source_regions, len(REGION_NAMES), batch)
        _check_4d("reference_regions", reference_regions, len(REGION_NAMES), batch)

    def _morph(self, features, source, reference, source_landmarks, reference_landmarks, source_regions,
               reference_regions, alpha, regions) -> tuple[Tensor, Tensor]:
        image_size, feature_size = source.shape[-1], features.shape[-1]
        pos_x = relative_position_features(source_landmarks, feature_size, image_size).to(features.dtype)
        pos_y = relative_position_features(reference_landmarks, feature_size, image_size).to(features.dtype)
        fea_y, gamma, beta = self.mdnet(reference)
        if isinstance(regions, str):
            regions = (regions,)
        full_transfer = regions is None or set(regions) >= set(REGION_NAMES)
        if full_transfer and not isinstance(alpha, Tensor) and float(alpha) == 1.0:
            return self.amm(features, fea_y, pos_x, pos_y, source_regions, reference_regions, gamma, beta)
        weight = _alpha_tensor(alpha, source.shape[0], features)[:, None] * _region_selection(regions, features)
        weight = weight.view(*weight.shape, 1, 1, 1)                                 # (B, 3, 1, 1, 1)
        ref = self.amm(features, fea_y, pos_x, pos_y, source_regions, reference_regions, gamma, beta,
                       per_region=True)
        fea_own, gamma_own, beta_own = self.mdnet(source)
        own = self.amm(features, fea_own, pos_x, pos_x, source_regions, source_regions, gamma_own, beta_own,
                       per_region=True)
        return tuple((weight * r + (1 - weight) * o).sum(1) for r, o in zip(ref, own))  # type: ignore[return-value]

    def makeup_matrices(self, source: Tensor, reference: Tensor, source_landmarks: Tensor,
                        reference_landmarks: Tensor, source_regions: Tensor, reference_regions: Tensor,
                        alpha: float | Tensor = 1.0, regions: Sequence[str] | None = None) -> tuple[Tensor, Tensor]:
        """The morphed makeup matrices ``(gamma', beta')``, each ``(B, 1, H/4, W/4)`` (first inference pass)."""
        self._check_inputs(source, reference, source_landmarks, reference_landmarks, source_regions,
                           reference_regions)
        source, reference = self._input(source), self._input(reference)
        features = self.manet.encode(source)
        gamma, beta = self._morph(features, source, reference, source_landmarks, reference_landmarks,
                                  source_regions, reference_regions, alpha, regions)
        return self._output(gamma), self._output(beta)

    def apply(self, source: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
        """Apply given makeup matrices to ``source`` (second inference pass); ``(B, 3, H, W)`` in [-1, 1]."""
        return self._output(self.manet(self._input(source), self._input(gamma), self._input(beta)))

    def forward(self, source: Tensor, reference: Tensor, source_landmarks: Tensor, reference_landmarks: Tensor,
                source_regions: Tensor, reference_regions: Tensor, alpha: float | Tensor = 1.0,
                regions: Sequence[str] | None = None) -> Tensor:
        self._check_inputs(source, reference, source_landmarks, reference_landmarks, source_regions,
                           reference_regions)
        source, reference = self._input(source), self._input(reference)
        features = self.manet.encode(source)
        gamma, beta = self._morph(features, source, reference, source_landmarks, reference_landmarks,
                                  source_regions, reference_regions, alpha, regions)
        return self._output(self.manet.decode(features, gamma, beta))


# ----------------------------------------------------------------------------------------------------------
# Discriminator and initialisation
# ----------------------------------------------------------------------------------------------------------


class Discriminator(nn.Module):
    r"""The official PatchGAN discriminator (``net.py: Discriminator``), spectral norm on every convolution.

    conv4 s2 3->64, LReLU(0.01); ``repeat_num - 1`` x [conv4 s2, channels x2, LReLU(0.01)]; conv4 s1 -> x2,
    LReLU(0.01); conv4 s1 -> 1 (no bias). PSGAN trains two: D_A on the makeup domain, D_B on the non-makeup
    domain (``solver.py: build_model``). Spectral norm is PyTorch's (1 power iteration, like the official
    ``ops/spectral_norm.py``).

    Args:
        width: channel multiplier of the first conv's 64 channels.
        spectral_norm: wrap every convolution in spectral normalisation (official ``MODEL.NORM="SN"``).
        repeat_num: number of stride-2 convolutions (3 official, ``D_REPEAT_NUM``).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [-1, 1]
        - Output: :math:`(B, 1, H / 2^r - 2, W / 2^r - 2)` patch logits (30 x 30 at 256, r = 3)

    Example:
        >>> Discriminator(width=0.125)(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1, 6, 6])
    """

    def __init__(self, width: float = 1.0, spectral_norm: bool = True, repeat_num: int = 3):
        super().__init__()
        if repeat_num < 1:
            raise ValueError(f"repeat_num must be at least 1, got {repeat_num}")
        norm = _spectral_norm if spectral_norm else (lambda module: module)
        channels = _channels(64, width)
        layers: list[nn.Module] = [norm(nn.Conv2d(3, channels, 4, 2, 1)), nn.LeakyReLU(0.01, inplace=True)]
        for _ in range(1, repeat_num):
            layers += [norm(nn.Conv2d(channels, channels * 2, 4, 2, 1)), nn.LeakyReLU(0.01, inplace=True)]
            channels *= 2
        layers += [norm(nn.Conv2d(channels, channels * 2, 4, 1, 1)), nn.LeakyReLU(0.01, inplace=True)]
        self.main = nn.Sequential(*layers)
        self.to_logit = norm(nn.Conv2d(channels * 2, 1, 4, 1, 1, bias=False))

    def forward(self, image: Tensor) -> Tensor:
        _check_4d("image", image, 3)
        return self.to_logit(self.main(image))


def init_xavier(module: nn.Module) -> nn.Module:
    r"""Xavier-normal (gain 1) initialisation of every convolution and linear weight (``solver.py:
    weights_init_xavier``); biases and InstanceNorm parameters keep PyTorch's defaults.

    For a spectral-normalised layer the *original* weight is initialised (the official code's SN deletes
    ``weight``, so its init only touched a temporary tensor and left SN layers at their default init).

    Args:
        module: a network; modified in place.

    Returns:
        ``module``.

    Example:
        >>> conv = init_xavier(nn.Conv2d(64, 64, 3))
        >>> round(conv.weight.std().item(), 2)       # sqrt(2 / (576 + 576)) = 0.042
        0.04
    """
    for child in module.modules():
        if isinstance(child, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if parametrize.is_parametrized(child, "weight"):
                weight = child.parametrizations.weight.original
            else:
                weight = child.weight
            nn.init.xavier_normal_(weight, gain=1.0)
    return module
