"""Face parsing with BiSeNet, as released by face-parsing.PyTorch (zllrunning) and used by PSGAN.

The network follows ``zllrunning/face-parsing.PyTorch:model.py`` closely enough that its released file
``79999_iter.pth`` loads with ``strict=True`` and the same key names:

* context path ``cp``: a ResNet-18 (``cp.resnet``: ``conv1``/``bn1``, ``layer1..4`` of two basic blocks,
  ``downsample.0/1`` shortcuts) giving 1/8, 1/16, 1/32 features; attention refinement modules ``arm16``
  (256→128) and ``arm32`` (512→128); the global context ``conv_avg`` (512→128, 1×1); ``conv_head32`` and
  ``conv_head16`` after each nearest upsampling;
* spatial path: the released model has none — the ResNet's 1/8 feature (``layer2``, 128 channels) stands
  in for it;
* feature fusion module ``ffm`` (128 + 128 → 256, squeeze-excite style ``conv1``/``conv2``);
* heads ``conv_out`` (256→256→19) and the auxiliary ``conv_out16`` / ``conv_out32`` (128→64→19, used only
  for the training loss), bilinearly upsampled to the input size (``align_corners=True``).

Its 19 labels are in face-parsing.PyTorch's order (:data:`facezoo.face.labels.FACE_PARSING_PYTORCH`);
:class:`FaceParser` converts them to the CelebAMask-HQ scheme facezoo uses everywhere.
The input is RGB in [0, 1] normalised with the ImageNet mean/std, at 512×512
(``wtjiang98/PSGAN:faceutils/mask/main.py``).

Example:
    >>> net = BiSeNet().eval()
    >>> net(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 19, 64, 64])
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facezoo.face.labels import CELEBAMASK_HQ, FACE_PARSING_PYTORCH, IBUG68_PARTS, convert_labels
from facezoo.nets.weights import Freezable, load_state_dict_file, resolve_weights

__all__ = [
    "ConvBNReLU",
    "BasicBlock",
    "ResNet18",
    "AttentionRefinementModule",
    "ContextPath",
    "FeatureFusionModule",
    "BiSeNetOutput",
    "BiSeNet",
    "load_bisenet",
    "FaceParser",
    "BROW_THICKNESS",
    "parsing_from_landmarks",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvBNReLU(nn.Sequential):
    """Conv (no bias) → BatchNorm → ReLU; keys ``conv.*``, ``bn.*``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv-BN, a 1×1 conv-BN shortcut when the shape changes, ReLU after the sum."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if in_channels != out_channels or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + residual)


class ResNet18(nn.Module):
    """The ResNet-18 trunk of the context path (no pooling head, no classifier).

    Shape:
        ``(B, 3, H, W)`` → features at 1/8 ``(B, 128, H/8, W/8)``, 1/16 ``(B, 256, ·)``, 1/32 ``(B, 512, ·)``.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(64, 64), BasicBlock(64, 64))
        self.layer2 = nn.Sequential(BasicBlock(64, 128, 2), BasicBlock(128, 128))
        self.layer3 = nn.Sequential(BasicBlock(128, 256, 2), BasicBlock(256, 256))
        self.layer4 = nn.Sequential(BasicBlock(256, 512, 2), BasicBlock(512, 512))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        feat8 = self.layer2(x)
        feat16 = self.layer3(feat8)
        feat32 = self.layer4(feat16)
        return feat8, feat16, feat32


class AttentionRefinementModule(nn.Module):
    """ARM: a 3×3 conv-BN-ReLU, then a channel attention from its global average (1×1 conv, BN, sigmoid)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels, 3)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        attention = torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))
        return feat * attention


class ContextPath(nn.Module):
    """ResNet-18 + ARMs + global context; returns (1/8 trunk feature, 1/8 context, 1/16 context).

    Shape:
        ``(B, 3, H, W)`` → ``(B, 128, H/8, W/8)``, ``(B, 128, H/8, W/8)``, ``(B, 128, H/16, W/16)``.
    """

    def __init__(self):
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3)
        self.conv_head16 = ConvBNReLU(128, 128, 3)
        self.conv_avg = ConvBNReLU(512, 128, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(feat32.mean((2, 3), keepdim=True))          # broadcast = nearest upsampling
        up32 = F.interpolate(self.arm32(feat32) + context, size=feat16.shape[2:], mode="nearest")
        up32 = self.conv_head32(up32)
        up16 = F.interpolate(self.arm16(feat16) + up32, size=feat8.shape[2:], mode="nearest")
        up16 = self.conv_head16(up16)
        return feat8, up16, up32


class FeatureFusionModule(nn.Module):
    """FFM: concat → 1×1 conv-BN-ReLU → ``feat + feat·sigmoid(conv2(relu(conv1(avg(feat)))))``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, 1)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        attention = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)))))
        return feat + feat * attention


class BiSeNetOutput(nn.Module):
    """Segmentation head: 3×3 conv-BN-ReLU then a 1×1 conv (no bias) to the class logits."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int):
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels, 3)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(Freezable, nn.Module):
    """BiSeNet face parser with face-parsing.PyTorch's layout and key names.

    Args:
        num_classes: number of labels (19 for the released model).

    Shape:
        input ``(B, 3, H, W)`` RGB in [0, 1] normalised by :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`,
        ``H, W`` multiples of 32; output logits ``(B, num_classes, H, W)`` (``return_aux=True``: a tuple of
        the main and the two auxiliary logits, all at ``(H, W)``).
    """

    def __init__(self, num_classes: int = 19):
        super().__init__()
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, num_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, num_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, num_classes)

    def forward(self, x: torch.Tensor, return_aux: bool = False):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"BiSeNet expects (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[2] % 32 or x.shape[3] % 32:
            raise ValueError(f"BiSeNet needs H and W divisible by 32, got {tuple(x.shape[2:])}")
        size = x.shape[2:]
        feat8, context8, context16 = self.cp(x)
        logits = self.conv_out(self.ffm(feat8, context8))
        heads = [logits] + ([self.conv_out16(context8), self.conv_out32(context16)] if return_aux else [])
        heads = [F.interpolate(h, size=size, mode="bilinear", align_corners=True) for h in heads]
        return tuple(heads) if return_aux else heads[0]


def load_bisenet(weights: str | os.PathLike = "face_parsing_bisenet", device: str | torch.device = "cpu",
                 num_classes: int = 19) -> BiSeNet:
    """Build :class:`BiSeNet` and load face-parsing.PyTorch weights (``79999_iter.pth``) strictly.

    Args:
        weights: the registry name ``"face_parsing_bisenet"`` (searched in the facezoo cache) or a file path.
        device: where the frozen network goes.
        num_classes: label count of the file.

    Returns:
        A frozen network in eval mode.

    Raises:
        WeightsNotFoundError: the file is missing (the message names ``79999_iter.pth`` and where to put it).
        RuntimeError: the file's keys or shapes do not match (strict loading).
    """
    name = "face_parsing_bisenet"
    path = resolve_weights(name, path_arg="parser_weights") if str(weights) == name else \
        resolve_weights(name, path=weights, path_arg="parser_weights")
    state = load_state_dict_file(path)
    net = BiSeNet(num_classes)
    # Files saved before PyTorch 0.4.1 carry no BatchNorm `num_batches_tracked`; it is unused in eval.
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    net.load_state_dict(state, strict=True)
    return net.to(device).freeze()



class FaceParser:
    """Photo → CelebAMask-HQ label map with a BiSeNet trained in face-parsing.PyTorch's label order.

    The crop is resized (bilinear) to ``input_size`` (official: 512), parsed, converted from
    :data:`~facezoo.face.labels.FACE_PARSING_PYTORCH` to CelebAMask-HQ ids, and nearest-resized to
    ``out_size`` (official PSGAN: 256).

    Args:
        net: a :class:`BiSeNet` (e.g. from :func:`load_bisenet`).
        input_size: side of the square the network sees; a multiple of 32.
        labels: the label scheme of ``net``'s output channels.

    Example:
        >>> parser = FaceParser(BiSeNet().eval(), input_size=64)
        >>> parser.parse(np.zeros((50, 40, 3), np.uint8), out_size=32).shape
        torch.Size([32, 32])
    """

    def __init__(self, net: nn.Module, input_size: int = 512, labels=FACE_PARSING_PYTORCH):
        if input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
        self.net = net
        self.input_size = int(input_size)
        self.labels = labels

    @torch.no_grad()
    def parse(self, image: np.ndarray, out_size: int | tuple[int, int] | None = None) -> torch.Tensor:
        """Label map of an RGB uint8 ``(H, W, 3)`` image.

        Args:
            image: uint8 RGB photo (usually a face crop).
            out_size: side (or ``(h, w)``) of the returned map; default ``(H, W)``.

        Returns:
            int64 ``(out_h, out_w)`` tensor of CelebAMask-HQ labels (0..18), on the CPU.
        """
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        if out_size is None:
            out_size = image.shape[:2]
        elif isinstance(out_size, int):
            out_size = (out_size, out_size)
        device = next(self.net.parameters()).device
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255).to(device)
        x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        ids = self.net((x - mean) / std).argmax(1, keepdim=True).float()
        ids = F.interpolate(ids, size=tuple(out_size), mode="nearest")[0, 0].long().cpu()
        return convert_labels(ids, self.labels.name, "celebamask_hq")


# ------------------------------------------------------------------------------- parsing from landmarks
#: Eyebrow height below its landmarks (iBUG-68 points 17-26 trace the brow's upper edge), as a fraction of the
#: mean eye width (corner 36 to 39, 42 to 45).
BROW_THICKNESS = 0.3


def _polygon(label: np.ndarray, points: np.ndarray, value: int) -> None:
    """Set the pixels of ``label`` whose centres lie inside the polygon ``points`` ((x, y), any order of turn)."""
    from skimage.draw import polygon

    rows, cols = polygon(points[:, 1], points[:, 0], shape=label.shape)
    label[rows, cols] = value


def _parts_from_landmarks(points: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """The polygons of one face, in drawing order (each drawn over the ones before)."""
    part = {name: points[list(idx)] for name, idx in IBUG68_PARTS.items()}
    eye_width = 0.5 * (np.linalg.norm(points[39] - points[36]) + np.linalg.norm(points[45] - points[42]))
    across = points[45] - points[36]                                      # image-left → image-right eye corner
    down = np.array([-across[1], across[0]]) / max(float(np.linalg.norm(across)), 1e-6)   # towards the chin
    brow_depth = BROW_THICKNESS * eye_width * down
    outer, inner = part["outer_lip"], part["inner_lip"]                   # 48-59 and 60-67
    return [
        ("skin", np.concatenate([part["jaw"], part["right_brow"][::-1], part["left_brow"][::-1]])),
        ("nose", points[[27, 31, 32, 33, 34, 35]]),
        ("l_brow", np.concatenate([part["left_brow"], part["left_brow"][::-1] + brow_depth])),
        ("r_brow", np.concatenate([part["right_brow"], part["right_brow"][::-1] + brow_depth])),
        ("l_eye", part["left_eye"]),
        ("r_eye", part["right_eye"]),
        ("u_lip", np.concatenate([outer[0:7], inner[[4, 3, 2, 1, 0]]])),  # 48..54, then 64..60
        ("l_lip", np.concatenate([outer[6:12], outer[:1], inner[[0, 7, 6, 5, 4]]])),   # 54..59, 48, 60, 67..64
        ("mouth", inner),
    ]


def parsing_from_landmarks(landmarks: torch.Tensor | np.ndarray, size: int | tuple[int, int]) -> torch.Tensor:
    """A CelebAMask-HQ label map drawn from the 68 landmarks, for when no parsing network is at hand.

    Polygons through the iBUG-68 points, each drawn over the ones before:

    * ``skin``: the face outline, the jaw (0-16) closed by the top of the brows (26-17): no forehead, ears,
      neck or hair;
    * ``nose``: the bridge top 27 and the nostril line 31-35;
    * ``l_brow`` / ``r_brow``: the brow points (17-21 / 22-26), which trace the brow's upper edge, and the same
      points moved towards the chin by :data:`BROW_THICKNESS` eye widths;
    * ``l_eye`` / ``r_eye``: the eye contours 36-41 / 42-47;
    * ``u_lip``: the outer upper lip 48-54 back along the inner one 64-60; ``l_lip``: 54-59, 48 back along 60,
      67-64; ``mouth`` (teeth, inner mouth): the inner contour 60-67, so the lips are outer minus inner.

    "l"/"r" are image sides, as everywhere in facezoo (``l_eye`` = points 36-41). A pixel belongs to a polygon when
    its centre does; pixel ``(i, j)`` is centred at ``x = j, y = i``, the landmarks' convention. What PSGAN
    needs of a parsing (lips, skin + nose, the skin around the eyes) is all there, so
    :func:`facezoo.methods.psgan.networks.region_masks_from_parsing` takes this map unchanged.

    Args:
        landmarks: (x, y) pixel coordinates in the image of ``size``, iBUG-68 order.
        size: side of the square map, or ``(height, width)``.

    Returns:
        int64 CelebAMask-HQ ids (:data:`facezoo.face.labels.CELEBAMASK_HQ`) on the CPU; 0 (background) outside
        the face.

    Shape:
        - landmarks: :math:`(68, 2)` or :math:`(B, 68, 2)`
        - output: :math:`(H, W)` or :math:`(B, H, W)`

    Example:
        >>> import skimage.data
        >>> from facezoo.face.detect import DlibDetector
        >>> points = DlibDetector().detect(skimage.data.astronaut())[0].landmarks
        >>> labels = parsing_from_landmarks(points, (512, 512))
        >>> [CELEBAMASK_HQ.names[i] for i in labels[90:120, 150:270].unique()]    # around the eyes
        ['background', 'skin', 'nose', 'l_eye', 'r_eye', 'l_brow', 'r_brow']
    """
    points = landmarks.detach().cpu().numpy() if isinstance(landmarks, torch.Tensor) else np.asarray(landmarks)
    if points.ndim not in (2, 3) or points.shape[-2:] != (68, 2):
        raise ValueError(f"landmarks must have shape (68, 2) or (B, 68, 2), got {tuple(points.shape)}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks must be finite")
    height, width = (size, size) if isinstance(size, (int, np.integer)) else tuple(int(s) for s in size)
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {size}")
    maps = []
    for face in points.reshape(-1, 68, 2).astype(np.float64):
        label = np.zeros((height, width), np.int64)
        for name, polygon in _parts_from_landmarks(face):
            _polygon(label, polygon, CELEBAMASK_HQ.index(name))
        maps.append(label)
    out = torch.from_numpy(np.stack(maps))
    return out if points.ndim == 3 else out[0]
