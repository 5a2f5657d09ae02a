"""A small face parser for synthetic faces: MaskGAN's segmentation-accuracy tool.

MaskGAN (Lee et al., CVPR 2020, §4.2) judges an edit by parsing the generated face again and comparing the parsed
labels with the mask it was asked to draw. The paper's parser is trained on CelebAMask-HQ photos (the released
face-parsing BiSeNet, :mod:`facezoo.face.parsing`, whose weights are a separate download) and says little on the
renderer's cartoon faces. So facezoo trains this network on :mod:`facezoo.data.synthetic` itself
(``scripts/train_face_parser.py``), as it does its landmark detector and identity network, and reports its own
held-out accuracy next to the accuracies it measures (metrics ``mask_accuracy`` / ``mask_miou`` with
``mask_parser``).

Architecture: :class:`facezoo.nets.landmarks.SmallUNet` predicting 19 CelebAMask-HQ class logits at half the
input resolution, upsampled bilinearly to the input's. Trained with pixel cross-entropy on faces in random pose,
expression, light, makeup and background, half of them blurred (GAN outputs are soft).

Weights: a checkpoint written by :meth:`~facezoo.nets.weights.PackagedNet.save_checkpoint`; the default file is
resolved as ``"synthetic_parser"`` by :func:`facezoo.nets.weights.resolve_weights` (an explicit path, the cache
directory, or the file the package ships).

Example:
    >>> net = SyntheticFaceParser(size=32, width=4, depth=2)
    >>> net(torch.zeros(2, 3, 48, 48)).shape            # label ids at the input's size
    torch.Size([2, 48, 48])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facezoo.face.labels import CELEBAMASK_HQ
from facezoo.nets.landmarks import SmallUNet
from facezoo.nets.weights import PackagedNet

__all__ = ["SyntheticFaceParser"]


class SyntheticFaceParser(PackagedNet, SmallUNet):
    """U-Net face parser: images → CelebAMask-HQ label ids.

    Args:
        size: the side of the square images it works on; other sizes are resized to it, and the logits back to
            the input's size.
        width: channels of the stem (doubled at each stage).
        depth: down/up-sampling stages after the stem (``size`` divisible by ``2**(depth + 1)``).

    Shape:
        - :meth:`logits`: ``(B, 3, H, W)`` in [-1, 1] → ``(B, 19, H, W)``.
        - ``forward`` / :meth:`parse`: ``(B, 3, H, W)`` → ``(B, H, W)`` int64 ids in [0, 18].
    """

    weights_name = "synthetic_parser"
    kind = "face-parser"

    def __init__(self, size: int = 64, width: int = 16, depth: int = 3):
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be positive, got {width}, {depth}")
        if size % 2 ** (depth + 1):
            raise ValueError(f"size {size} must be divisible by 2**(depth + 1) = {2 ** (depth + 1)}")
        super().__init__(len(CELEBAMASK_HQ), width, depth)
        self.config = {"size": int(size), "width": int(width), "depth": int(depth)}
        self.size = size

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, 19, H, W)`` at the input's size, for ``(B, 3, H, W)`` images in [-1, 1]."""
        maps = self.unet(self.resize_input(images))[0]
        return F.interpolate(maps, size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False)

    def parse(self, images: torch.Tensor) -> torch.Tensor:
        """Label ids ``(B, H, W)`` (int64) of ``(B, 3, H, W)`` images in [-1, 1]."""
        return self.logits(images).argmax(1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.parse(images)
