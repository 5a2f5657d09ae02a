"""VGG16 / VGG19 feature taps for perceptual losses.

Layer names follow the usual ``conv{block}_{i}`` / ``relu{block}_{i}`` / ``pool{block}`` scheme over
torchvision's ``features`` stack, e.g. for VGG16 ``relu1_2`` is ``features[3]``, ``relu3_3`` is
``features[15]``, ``relu4_3`` is ``features[22]`` and ``pool5`` is ``features[30]``.

Example:
    >>> net = VGGFeatures("vgg16", layers=("relu1_2", "relu2_2"))
    >>> [f.shape for f in net(torch.zeros(1, 3, 32, 32))]
    [torch.Size([1, 64, 32, 32]), torch.Size([1, 128, 16, 16])]
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models import vgg as tv_vgg

from facezoo.nets.weights import Freezable, load_state_dict_file, resolve_weights

__all__ = ["VGGFeatures", "vgg_layer_names", "IMAGENET_MEAN", "IMAGENET_STD"]

#: ImageNet RGB statistics of torchvision's classifiers (inputs in [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_CFG = {"vgg16": "D", "vgg19": "E"}


def vgg_layer_names(arch: str = "vgg16") -> list[str]:
    """Names of the modules of torchvision's ``vgg16().features`` / ``vgg19().features``, by index.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.

    Returns:
        One name per ``features`` index (31 for VGG16, 37 for VGG19).

    Example:
        >>> vgg_layer_names("vgg16")[:5]
        ['conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1']
    """
    if arch not in _CFG:
        raise ValueError(f"arch must be one of {sorted(_CFG)}, got {arch!r}")
    names, block, conv = [], 1, 0
    for item in tv_vgg.cfgs[_CFG[arch]]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 0
        else:
            conv += 1
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
    return names


class VGGFeatures(Freezable, nn.Module):
    """Frozen VGG feature extractor returning the activations of named layers.

    The ``features`` stack of torchvision's VGG is truncated after the deepest requested layer; the
    ReLUs are made out-of-place so that a tapped ``conv`` output is not overwritten.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.
        layers: layer names (see :func:`vgg_layer_names`), returned in this order.
        weights: ``None`` (random init, for tests), ``"imagenet"`` (torchvision's ImageNet weights,
            found by :func:`~facezoo.nets.weights.resolve_weights`) or a path to a torchvision VGG
            state dict. Loading is strict on the kept layers.
        normalize_input: map inputs from [-1, 1] to ImageNet normalisation. ``False`` feeds the
            input unchanged (PSGAN's VGG sees un-normalised images).

    Shape:
        - Input: :math:`(B, 3, H, W)` in [-1, 1].
        - Output: a list, one :math:`(B, C_l, H_l, W_l)` tensor per requested layer.
    """

    def __init__(
        self,
        arch: str = "vgg16",
        layers: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3"),
        weights: str | os.PathLike | None = None,
        normalize_input: bool = True,
    ) -> None:
        super().__init__()
        names = vgg_layer_names(arch)
        if isinstance(layers, str) or len(layers) == 0:
            raise ValueError(f"layers must be a non-empty sequence of names, got {layers!r}")
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise ValueError(f"unknown {arch} layers {unknown}; valid names: {names}")
        self.arch = arch
        self.layers = tuple(layers)
        self.normalize_input = normalize_input
        self._indices = [names.index(name) for name in self.layers]
        depth = max(self._indices) + 1
        full = tv_vgg.make_layers(tv_vgg.cfgs[_CFG[arch]], batch_norm=False)
        self.features = nn.Sequential(*list(full.children())[:depth])
        for module in self.features:
            if isinstance(module, nn.ReLU):
                module.inplace = False
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if weights is not None:
            self.load_torchvision(weights)
        self.freeze()

    def load_torchvision(self, weights: str | os.PathLike) -> None:
        """Load the kept layers from a torchvision VGG state dict.

        Args:
            weights: ``"imagenet"`` (resolved) or a file path.

        Raises:
            WeightsNotFoundError: the file cannot be found.
            RuntimeError: the file misses a kept layer or has wrong shapes.
        """
        path = resolve_weights(self.arch, path=None if weights == "imagenet" else weights)
        state = load_state_dict_file(path)
        kept = {
            key: value
            for key, value in state.items()
            if key.startswith("features.") and int(key.split(".")[1]) < len(self.features)
        }
        self.load_state_dict(kept, strict=True)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Run the truncated stack and collect the requested activations.

        Args:
            x: images :math:`(B, 3, H, W)` in [-1, 1].

        Returns:
            Activations in the order of ``layers``.
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGGFeatures expects (B, 3, H, W) images, got {tuple(x.shape)}")
        if self.normalize_input:
            x = ((x + 1) / 2 - self.mean) / self.std
        taps: dict[int, torch.Tensor] = {}
        wanted = set(self._indices)
        for index, module in enumerate(self.features):
            x = module(x)
            if index in wanted:
                taps[index] = x
        return [taps[index] for index in self._indices]
