"""A small heatmap landmark network: facezoo's landmark detector for synthetic faces (evaluation tool).

GANnotation is judged by how well a landmark detector finds the *target* points on the generated faces
(the FG 2020 paper's protocol, arXiv 2004.07165). Real-photo detectors (dlib, face-alignment) do not work
on the renderer's cartoon faces, so facezoo trains this network on :mod:`facezoo.data.synthetic` itself
(``scripts/train_landmark_net.py``) and reports its own NME on held-out identities next to the NME it
measures on generated faces.

Architecture: a stride-2 stem, then a U-Net (encoder of ``depth`` stride-2 stages, decoder with skip
connections) that predicts one heatmap per landmark at half the input resolution; landmarks are the
soft-argmax of the maps (:func:`facezoo.face.heatmaps.landmarks_from_heatmaps` with a softmax temperature), mapped to
input pixels (``x = 2·(x_h + ½) − ½``). It is trained on Gaussian target
maps (:func:`facezoo.face.heatmaps.landmark_heatmaps`, MSE) plus an L1 loss on the soft-argmax coordinates.

Weights: a checkpoint written by :meth:`HeatmapLandmarkNet.save_checkpoint` (``{"state_dict", "config",
"meta"}``); the default file is resolved as ``"synthetic_landmarks"`` by :func:`facezoo.nets.weights.resolve_weights`
(cache directory, or an explicit path); it has no download URL.

Example:
    >>> net = HeatmapLandmarkNet(num_points=68, size=32, width=4, depth=2)
    >>> net(torch.zeros(2, 3, 48, 48)).shape          # any input size: resized, points in its pixels
    torch.Size([2, 68, 2])
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from facezoo.face.heatmaps import landmark_heatmaps, landmarks_from_heatmaps
from facezoo.losses import heatmap_loss
from facezoo.nets.weights import PackagedNet

__all__ = ["to_heatmap_pixels", "to_image_pixels", "ConvBlock", "SmallUNet", "HeatmapLandmarkNet", "landmark_net_loss",
           "training_step", "dataset_nme", "stack_faces"]


def to_heatmap_pixels(points: torch.Tensor, stride: int) -> torch.Tensor:
    """Image pixels → pixels of a map ``stride`` times smaller (pixel centres: ``x_h = (x + ½)/s − ½``)."""
    return (points + 0.5) / stride - 0.5


def to_image_pixels(points: torch.Tensor, stride: int) -> torch.Tensor:
    """Inverse of :func:`to_heatmap_pixels`: ``x = (x_h + ½)·s − ½``."""
    return (points + 0.5) * stride - 0.5


class ConvBlock(nn.Sequential):
    """Two ``conv3×3 → BatchNorm → ReLU`` layers.

    Shape: ``(B, in_ch, H, W)`` → ``(B, out_ch, H, W)``.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__(
            nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
        )


class SmallUNet(nn.Module):
    """A stride-2 stem, then a U-Net (``depth`` stride-2 stages down, skip connections up) to ``out_channels``
    maps at half the input resolution: the body of facezoo's synthetic-face landmark network and face parser.

    Args:
        out_channels: maps predicted (1x1 ``head``).
        width: channels of the stem (doubled at each stage).
        depth: down/up-sampling stages after the stem.

    Shape:
        - :meth:`unet`: ``(B, 3, H, W)`` → maps ``(B, out_channels, H/2, W/2)`` and the bottleneck
          ``(B, width·2^depth, H/2^(depth+1), W/2^(depth+1))``.
    """

    def __init__(self, out_channels: int, width: int, depth: int):
        super().__init__()
        chans = [width * 2**i for i in range(depth + 1)]
        self.stem = nn.Sequential(nn.Conv2d(3, chans[0], 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(chans[0]), nn.ReLU(inplace=True), ConvBlock(chans[0], chans[0]))
        self.down = nn.ModuleList(ConvBlock(chans[i], chans[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(ConvBlock(chans[i + 1] + chans[i], chans[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(chans[0], out_channels, 1)

    def unet(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(maps, bottleneck feature map) of ``(B, 3, H, W)`` images (H, W divisible by ``2**(depth + 1)``)."""
        x = self.stem(images)
        skips = [x]
        for block in self.down:
            x = block(F.max_pool2d(x, 2))
            skips.append(x)
        bottleneck = x
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = block(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], 1))
        return self.head(x), bottleneck


class HeatmapLandmarkNet(PackagedNet, SmallUNet):
    """U-Net heatmap regressor with a soft-argmax read-out.

    Args:
        num_points: landmarks predicted (68 for iBUG-68).
        size: the side of the square images the network works on; inputs of another size are resized to it
            and the points mapped back to the input's pixels.
        width: channels of the stem (doubled at each of the ``depth`` stride-2 stages).
        depth: number of down/up-sampling stages after the stem (``size`` divisible by ``2**(depth + 1)``).
        sigma: σ of the Gaussian target maps, in heatmap pixels (half the input's).
        temperature: softmax temperature of the soft-argmax (target maps peak at 1).

    Shape:
        - ``forward``: images ``(B, 3, H, W)`` in [-1, 1] → landmarks ``(B, num_points, 2)`` (x, y) pixels of
          the input.
        - :meth:`heatmaps`: ``(B, 3, size, size)`` → ``(B, num_points, size/2, size/2)`` (≈ [0, 1]).
    """

    #: heatmap pixels per input pixel: 1 / stride
    stride = 2
    weights_name = "synthetic_landmarks"
    kind = "landmark-net"

    def __init__(self, num_points: int = 68, size: int = 64, width: int = 16, depth: int = 2,
                 sigma: float = 1.0, temperature: float = 0.05):
        if num_points < 1 or width < 1 or depth < 1:
            raise ValueError(f"num_points, width and depth must be positive, got {num_points}, {width}, {depth}")
        if size % (self.stride * 2**depth):
            raise ValueError(f"size {size} must be divisible by 2**(depth + 1) = {self.stride * 2**depth}")
        super().__init__(num_points, width, depth)
        self.config = {"num_points": int(num_points), "size": int(size), "width": int(width), "depth": int(depth),
                       "sigma": float(sigma), "temperature": float(temperature)}
        self.num_points, self.size, self.sigma, self.temperature = num_points, size, sigma, temperature

    def heatmaps(self, images: torch.Tensor) -> torch.Tensor:
        """Heatmaps of ``(B, 3, size, size)`` images in [-1, 1]: ``(B, num_points, size/2, size/2)``."""
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"expected (B, 3, {self.size}, {self.size}) images, got {tuple(images.shape)}")
        return self.unet(images)[0]

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """A face descriptor for distribution distances (the ``fld`` metric): ``(B, C + 2·num_points)``.

        The bottleneck feature map, averaged over space (appearance), and the landmarks in units of the
        network's side centred on the image centre (geometry). Images of any size, in [-1, 1].
        """
        maps, bottleneck = self.unet(self.resize_input(images))
        points = self.landmarks_from(maps) / self.size - 0.5
        return torch.cat([bottleneck.mean((-2, -1)), points.flatten(1)], 1)

    def landmarks_from(self, heatmaps: torch.Tensor) -> torch.Tensor:
        """Soft-argmax of ``(B, N, size/2, size/2)`` maps: ``(B, N, 2)`` (x, y) pixels of a ``size`` image."""
        return to_image_pixels(landmarks_from_heatmaps(heatmaps, temperature=self.temperature), self.stride)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        points = self.landmarks_from(self.heatmaps(self.resize_input(images)))
        if (height, width) == (self.size, self.size):
            return points
        scale = points.new_tensor([width / self.size, height / self.size])
        return (points + 0.5) * scale - 0.5                      # pixel centres of the input


class LandmarkFeatures(nn.Module):
    """:meth:`HeatmapLandmarkNet.features` as a feature extractor for :class:`facezoo.metrics.FID` (the ``fld``
    metric: a Fréchet distance that needs no downloaded weights, in the feature space of a network trained on
    facezoo's synthetic faces)."""

    def __init__(self, net: HeatmapLandmarkNet):
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.num_features = net.config["width"] * 2 ** net.config["depth"] + 2 * net.config["num_points"]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.features(images)


# ------------------------------------------------------------------------------------ training
def stack_faces(batch: Mapping, keys: tuple[str, ...] = ("image", "target", "third")) -> tuple[torch.Tensor,
                                                                                                  torch.Tensor]:
    """All faces of a sample batch with their landmarks: ``image``/``landmarks``, ``target``/
    ``target_landmarks``, ``third``/``third_landmarks`` (those present), concatenated along the batch.

    Returns:
        ``(images (K·B, 3, H, W), landmarks (K·B, N, 2))``.
    """
    images, points = [], []
    for key in keys:
        if key in batch:
            images.append(batch[key])
            points.append(batch["landmarks" if key == "image" else f"{key}_landmarks"])
    if not images:
        raise ValueError(f"the batch has none of the image keys {keys}")
    return torch.cat(images), torch.cat(points)


def landmark_net_loss(net: HeatmapLandmarkNet, images: torch.Tensor, landmarks: torch.Tensor,
                      coordinate_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The training loss of the network on images of its own size.

    ``heatmap``: mean squared error to Gaussian maps of σ ``net.sigma`` (times 100, so that both terms are of
    order 1); ``coordinate``: mean absolute error in pixels of the soft-argmax points, weighted by
    ``coordinate_weight``; ``total``: their sum.

    Args:
        images: ``(B, 3, size, size)`` in [-1, 1]; landmarks: ``(B, N, 2)`` pixels.

    Returns:
        ``{"heatmap", "coordinate", "total"}`` scalar tensors.
    """
    maps = net.heatmaps(images)
    target = landmark_heatmaps(to_heatmap_pixels(landmarks, net.stride), maps.shape[-2:], sigma=net.sigma)
    heat = 100.0 * heatmap_loss(maps, target)
    coord = (net.landmarks_from(maps) - landmarks).abs().mean()
    return {"heatmap": heat, "coordinate": coord, "total": heat + coordinate_weight * coord}


def training_step(net: HeatmapLandmarkNet, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                  landmarks: torch.Tensor) -> dict[str, float]:
    """One optimizer step on a batch; returns the loss terms as floats."""
    net.train()
    terms = landmark_net_loss(net, net.resize_input(images), _scale_points(landmarks, images, net.size))
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    optimizer.step()
    return {k: float(v.detach()) for k, v in terms.items()}


def _scale_points(points: torch.Tensor, images: torch.Tensor, size: int) -> torch.Tensor:
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return points
    return (points + 0.5) * points.new_tensor([size / width, size / height]) - 0.5


@torch.no_grad()
def dataset_nme(net: nn.Module, dataset, samples: int | None = None, batch_size: int = 32) -> float:
    """Mean landmark NME (:func:`facezoo.metrics.landmark_nme`, inter-ocular) of ``net`` on a dataset's faces
    (every face of each sample, :func:`stack_faces`), over its first ``samples`` samples."""
    from facezoo.metrics import landmark_nme

    was_training = net.training
    net.eval()
    n = len(dataset) if samples is None else min(int(samples), len(dataset))
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, range(n)), batch_size=batch_size)
    total, count = 0.0, 0
    for batch in loader:
        images, points = stack_faces(batch)
        total += float(landmark_nme(net(images), points, reduction="none").sum())
        count += len(images)
    net.train(was_training)
    return total / max(count, 1)
