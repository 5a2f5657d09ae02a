"""Loading GANnotation's released generator (``myGEN.pth``) into :class:`~.networks.Generator`.

The release (``ESanchezLozano/GANnotation: GANnotation.py``) is ``{"state_dict": {"module.<key>": …}}``
for ``model.py: Generator(conv_dim=64, c_dim=66, repeat_num=6)``, whose modules are three ``nn.Sequential``
stacks and two heads:

==============================  ==================================
official key prefix              facezoo key prefix
==============================  ==================================
``down_conv.0`` / ``.1``          ``stem.conv`` / ``stem.norm``
``down_conv.3`` / ``.4``          ``down.0.conv`` / ``down.0.norm``
``down_conv.6`` / ``.7``          ``down.1.conv`` / ``down.1.norm``
``bottleneck.<i>.conv1/conv2``    ``bottleneck.<i>.conv1/conv2``
``feature_layer.0`` / ``.1``      ``up.0.conv`` / ``up.0.norm``
``feature_layer.3`` / ``.4``      ``up.1.conv`` / ``up.1.norm``
``colour_layer.0``                ``color_head.conv``
``mask_layer.0``                  ``mask_head.conv``
==============================  ==================================

The released model was run on images in **[0, 1]** (``demo_gannotation.py``: ``image / 255``) with [0, 1]
heatmaps, and its output read as [-1, 1] (``0.5 · (G + 1)``): :func:`official_reposing` does that
conversion for facezoo's [-1, 1] images. The weights are on Google Drive only (no script download):
``resolve_weights("gannotation_g")`` finds ``myGEN.pth`` in the facezoo cache or takes a path.

Example:
    >>> import os, tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "myGEN.pth")
    >>> torch.save(official_state_dict_from(Generator(width=0.125, repeat_num=1)), path)
    >>> load_official_generator(path, width=0.125, repeat_num=1).num_points
    66
    >>> tmp.cleanup()
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping

import torch

from facezoo.face.labels import landmarks_68_to_66
from facezoo.methods.gannotation.networks import Generator, landmark_heatmaps_official
from facezoo.nets.weights import WEIGHTS, load_state_dict_file, resolve_weights, state_dict_mismatch
from facezoo.utils import FacezooError

__all__ = [
    "GANNOTATION_G",
    "official_key_map",
    "from_official_keys",
    "official_state_dict_from",
    "load_official_generator",
    "official_reposing",
]

#: The released generator's weight file.
GANNOTATION_G = WEIGHTS["gannotation_g"]


def official_key_map(repeat_num: int = 6) -> dict[str, str]:
    """Official module prefix → facezoo module prefix for the released generator.

    Args:
        repeat_num: residual blocks (6 in the release).

    Returns:
        ``{"down_conv.0": "stem.conv", …}``; parameter names (``weight``, ``bias``) follow the prefix.

    Example:
        >>> official_key_map(1)["feature_layer.4"]
        'up.1.norm'
    """
    table = {
        "down_conv.0": "stem.conv", "down_conv.1": "stem.norm",
        "down_conv.3": "down.0.conv", "down_conv.4": "down.0.norm",
        "down_conv.6": "down.1.conv", "down_conv.7": "down.1.norm",
        "feature_layer.0": "up.0.conv", "feature_layer.1": "up.0.norm",
        "feature_layer.3": "up.1.conv", "feature_layer.4": "up.1.norm",
        "colour_layer.0": "color_head.conv", "mask_layer.0": "mask_head.conv",
    }
    for i in range(repeat_num):
        table[f"bottleneck.{i}.conv1"] = f"bottleneck.{i}.conv1"
        table[f"bottleneck.{i}.conv2"] = f"bottleneck.{i}.conv2"
    return table


def _rename(state: Mapping[str, torch.Tensor], table: Mapping[str, str]) -> OrderedDict[str, torch.Tensor]:
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        prefix, _, name = key.rpartition(".")
        if prefix not in table:
            raise KeyError(f"unexpected key {key!r}: no module {prefix!r} in the GANnotation generator")
        out[f"{table[prefix]}.{name}"] = value
    return out


def from_official_keys(state: Mapping[str, torch.Tensor], repeat_num: int = 6) -> OrderedDict[str, torch.Tensor]:
    """Rename an official generator state dict (``module.`` prefix already stripped) to facezoo keys.

    Args:
        state: ``{official key: tensor}``.
        repeat_num: residual blocks of the checkpoint.

    Returns:
        ``{facezoo key: tensor}`` for :class:`~.networks.Generator`.

    Raises:
        KeyError: a key belongs to no module of the generator.
    """
    return _rename(state, official_key_map(repeat_num))


def official_state_dict_from(generator: Generator, repeat_num: int | None = None) -> dict:
    """The inverse mapping: a facezoo generator saved as the release is (``{"state_dict": {"module.…"}}``).

    Used to test the loader with random weights in the real format, and to hand a facezoo-trained
    generator to the official demo.

    Args:
        generator: a :class:`~.networks.Generator`.
        repeat_num: its residual blocks (default: counted from ``generator.bottleneck``).

    Returns:
        ``{"state_dict": OrderedDict("module.<official key>": tensor)}``.
    """
    repeat_num = len(generator.bottleneck) if repeat_num is None else repeat_num
    inverse = {ours: theirs for theirs, ours in official_key_map(repeat_num).items()}
    renamed = _rename(generator.state_dict(), inverse)
    return {"state_dict": OrderedDict((f"module.{k}", v) for k, v in renamed.items())}


def load_official_generator(path: str | os.PathLike | None = None, num_points: int = 66, conv_dim: int = 64,
                            repeat_num: int = 6, width: float = 1.0) -> Generator:
    """Build :class:`~.networks.Generator` and load the released weights through the key map, strictly.

    Args:
        path: the checkpoint; ``None`` resolves ``"gannotation_g"`` (``myGEN.pth`` in the facezoo cache).
        num_points, conv_dim, repeat_num, width: the generator's settings (the release: 66, 64, 6, 1.0).

    Returns:
        The generator in eval mode.

    Raises:
        WeightsNotFoundError: no file (one line saying where to put ``myGEN.pth``).
        UntrustedFileError: the file holds pickled Python objects and pickles are not trusted (one line).
        FacezooError: the file is not a GANnotation generator of these settings (one line).
    """
    file = resolve_weights("gannotation_g", path, path_arg="path")
    state = load_state_dict_file(file)          # a damaged file: WeightFileError, one line naming it
    generator = Generator(num_points=num_points, conv_dim=conv_dim, repeat_num=repeat_num, width=width)
    # compared in the release's own key names (the ones the user's file holds), before torch's multi-line report
    expected = {key[len("module."):]: value.shape
                for key, value in official_state_dict_from(generator, repeat_num)["state_dict"].items()}
    problem = state_dict_mismatch(state, expected)
    if problem:
        raise FacezooError(f"{file} is not a GANnotation generator with {num_points} points, conv_dim {conv_dim}, "
                           f"{repeat_num} residual blocks ({problem})")
    generator.load_state_dict(from_official_keys(state, repeat_num), strict=True)
    return generator.eval()


@torch.no_grad()
def official_reposing(generator: Generator, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
    """Run the released generator as its demo does, on facezoo tensors.

    The input image is mapped from [-1, 1] to the [0, 1] the release was run on; the target landmarks are
    converted to 66 points (when 68 are given) and encoded with :func:`~.networks.landmark_heatmaps_official`.

    Args:
        generator: the released generator (:func:`load_official_generator`).
        image: ``(B, 3, 128, 128)`` faces in [-1, 1], cropped as the official ``utils.crop`` does.
        landmarks: ``(B, 68, 2)`` or ``(B, 66, 2)`` target (x, y) pixels on the same grid.

    Returns:
        ``(B, 3, 128, 128)`` re-posed faces in [-1, 1] (clamped).
    """
    if landmarks.ndim == 3 and landmarks.shape[1] == 68 and generator.num_points == 66:
        landmarks = landmarks_68_to_66(landmarks)
    heatmaps = landmark_heatmaps_official(landmarks, size=image.shape[-1]).to(image)
    return generator((image + 1.0) / 2.0, heatmaps)["image"].clamp(-1.0, 1.0)
