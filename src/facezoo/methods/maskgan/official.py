"""Loading the MaskGAN demo's network files (``switchablenorms/CelebAMask-HQ: MaskGAN_demo``).

The demo saves each network with ``torch.save(network.cpu().state_dict(), '<epoch>_net_<part>.pth')``
(``models/base_model.py: save_network``) and loads ``checkpoints/label2face_512p/latest_net_G.pth`` (and, when
training, ``latest_net_B.pth`` and ``latest_net_D.pth``); the VAE's file is a state dict of
``networks.VAE(19, 32, 32, 1024)``. :func:`load_official` reads such a file with ``weights_only=True``, renames its
entries to facezoo's (:func:`official_key_map`) and loads them with ``strict=True``.

Key mapping (``nd`` = ``n_downsample``, ``nb`` = ``n_blocks``):

* G and B, the pix2pixHD ``model`` Sequential: ``model.1`` = ``backbone.stem.conv``, ``model.{4+3i}`` =
  ``backbone.down.{i}.conv``, ``model.{4+3nd+i}.conv_block.{0,1}.conv`` = ``backbone.blocks.{i}.conv{1,2}``,
  ``model.{4+3nd+nb+3i}`` = ``backbone.up.{i}.conv``, ``model.{4+6nd+nb+1}`` = ``backbone.head.conv``.
  G's AdaIN layers also carry ``norm.running_mean`` / ``norm.running_var`` buffers that the demo never reads
  (``AdaptiveInstanceNorm2d``: "just dummy buffers"); they must be present and are dropped.
* G's encoders: ``enc_label.model.{k}`` = ``label_encoder.down1.{k}``, ``enc_label.model_last.{k+1}`` =
  ``label_encoder.down2.{k}`` (``model_last.0`` is a ReLU); ``enc_style.model.{k}`` = ``style_encoder.down1.{k}``,
  ``enc_style.model_middle.{k}`` = ``style_encoder.down2.{k}``, ``enc_style.sft{s}.SFT_{scale,shift}_conv{j}`` =
  ``style_encoder.sft{s}.{scale,shift}_conv{j}``, ``enc_style.model_last.1`` = ``style_encoder.to_style``.
* D (the training layout, ``getIntermFeat=True``): ``scale{k}_layer{j}.0`` = ``scales.{num_D-1-k}.layers.{j}.conv``:
  pix2pixHD runs its highest-numbered PatchGAN at full resolution, facezoo numbers them from full resolution.
* VAE (``n`` = log2(resolution) − 2, 7 at 512 px): ``e{i+1}`` / ``bn{i+1}`` = ``encoder.{i}.conv`` / ``.norm``,
  ``fc1`` = ``fc_mu``, ``fc2`` = ``fc_logvar``, ``d1`` = ``fc_decode``, ``d{i+2}`` / ``bn{n+1+i}`` =
  ``decoder.{i}.conv`` / ``.norm``, ``d{n+1}`` = ``to_logits.conv``. ``num_batches_tracked`` entries are optional
  (PyTorch 0.4.0 did not write them).

Example:
    >>> from facezoo.methods.maskgan.networks import BlendGenerator
    >>> official_key_map(BlendGenerator())["backbone.head.conv.weight"]
    'model.26.weight'
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from facezoo.methods.maskgan.networks import BlendGenerator, DenseMappingNetwork, MaskVAE, MultiscaleDiscriminator
from facezoo.nets.weights import load_state_dict_file, seeded_official_state_dict, short_key_list, unreadable_weights
from facezoo.utils import FacezooError

__all__ = [
    "PARTS",
    "build",
    "official_key_map",
    "official_extra_keys",
    "official_shapes",
    "from_official_state_dict",
    "to_official_state_dict",
    "seeded_official_state_dict",
    "load_official",
]

#: The demo's network files: part name → (facezoo class, the demo's file name).
PARTS: dict[str, tuple[type[nn.Module], str]] = {
    "G": (DenseMappingNetwork, "latest_net_G.pth"),
    "B": (BlendGenerator, "latest_net_B.pth"),
    "D": (MultiscaleDiscriminator, "latest_net_D.pth"),
    "VAE": (MaskVAE, "VAE state dict"),
}


def _part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    return part


def _part_of(net: nn.Module) -> str:
    for name, (cls, _) in PARTS.items():
        if isinstance(net, cls):
            return name
    raise TypeError(f"not a MaskGAN network: {type(net).__name__}")


def build(part: str, **overrides) -> nn.Module:
    """A facezoo network for one of the demo's files, with the demo's architecture unless overridden.

    Args:
        part: ``"G"`` (:class:`~facezoo.methods.maskgan.networks.DenseMappingNetwork`), ``"B"``
            (:class:`~facezoo.methods.maskgan.networks.BlendGenerator`), ``"D"``
            (:class:`~facezoo.methods.maskgan.networks.MultiscaleDiscriminator`) or ``"VAE"``
            (:class:`~facezoo.methods.maskgan.networks.MaskVAE`).
        **overrides: constructor arguments of that class (``ngf=``, ``n_downsample=``, ``resolution=`` …).

    Returns:
        A freshly initialised network.
    """
    cls = PARTS[_part(part)][0]
    try:
        return cls(**overrides)
    except TypeError as err:
        raise ValueError(f"bad architecture overrides for part {part}: {err}") from None


# --------------------------------------------------------------------------------------------------
# key mapping
# --------------------------------------------------------------------------------------------------

_Rule = tuple[str, Callable[[re.Match], str]]


def _backbone_rules(nd: int, nb: int) -> list[_Rule]:
    conv = {"1": "0", "2": "1"}
    return [
        (r"backbone\.stem\.conv\.(\w+)", lambda m: f"model.1.{m[1]}"),
        (r"backbone\.down\.(\d+)\.conv\.(\w+)", lambda m: f"model.{4 + 3 * int(m[1])}.{m[2]}"),
        (r"backbone\.blocks\.(\d+)\.conv([12])\.(\w+)",
         lambda m: f"model.{4 + 3 * nd + int(m[1])}.conv_block.{conv[m[2]]}.conv.{m[3]}"),
        (r"backbone\.up\.(\d+)\.conv\.(\w+)", lambda m: f"model.{4 + 3 * nd + nb + 3 * int(m[1])}.{m[2]}"),
        (r"backbone\.head\.conv\.(\w+)", lambda m: f"model.{4 + 6 * nd + nb + 1}.{m[1]}"),
    ]


_ENCODER_RULES: list[_Rule] = [
    (r"label_encoder\.down1\.(\d+)\.conv\.(\w+)", lambda m: f"enc_label.model.{m[1]}.conv.{m[2]}"),
    (r"label_encoder\.down2\.(\d+)\.conv\.(\w+)", lambda m: f"enc_label.model_last.{int(m[1]) + 1}.conv.{m[2]}"),
    (r"style_encoder\.down1\.(\d+)\.conv\.(\w+)", lambda m: f"enc_style.model.{m[1]}.conv.{m[2]}"),
    (r"style_encoder\.down2\.(\d+)\.conv\.(\w+)", lambda m: f"enc_style.model_middle.{m[1]}.conv.{m[2]}"),
    (r"style_encoder\.sft([12])\.(scale|shift)_conv([12])\.(\w+)",
     lambda m: f"enc_style.sft{m[1]}.SFT_{m[2]}_conv{m[3]}.{m[4]}"),
    (r"style_encoder\.to_style\.(\w+)", lambda m: f"enc_style.model_last.1.{m[1]}"),
]


def _vae_rules(n: int) -> list[_Rule]:
    return [
        (r"encoder\.(\d+)\.conv\.(\w+)", lambda m: f"e{int(m[1]) + 1}.{m[2]}"),
        (r"encoder\.(\d+)\.norm\.(\w+)", lambda m: f"bn{int(m[1]) + 1}.{m[2]}"),
        (r"fc_mu\.(\w+)", lambda m: f"fc1.{m[1]}"),
        (r"fc_logvar\.(\w+)", lambda m: f"fc2.{m[1]}"),
        (r"fc_decode\.(\w+)", lambda m: f"d1.{m[1]}"),
        (r"decoder\.(\d+)\.conv\.(\w+)", lambda m: f"d{int(m[1]) + 2}.{m[2]}"),
        (r"decoder\.(\d+)\.norm\.(\w+)", lambda m: f"bn{n + 1 + int(m[1])}.{m[2]}"),
        (r"to_logits\.conv\.(\w+)", lambda m: f"d{n + 1}.{m[1]}"),
    ]


def _rules(net: nn.Module) -> list[_Rule]:
    part = _part_of(net)
    if part == "G":
        return _backbone_rules(net.backbone.n_downsample, len(net.backbone.blocks)) + _ENCODER_RULES
    if part == "B":
        return _backbone_rules(net.backbone.n_downsample, len(net.backbone.blocks))
    if part == "D":
        last = len(net.scales) - 1
        return [(r"scales\.(\d+)\.layers\.(\d+)\.conv\.(\w+)",
                 lambda m: f"scale{last - int(m[1])}_layer{m[2]}.0.{m[3]}")]
    return _vae_rules(len(net.encoder))


def official_key_map(net: nn.Module) -> OrderedDict[str, str]:
    """``{facezoo key: the demo's key}`` for every entry of ``net.state_dict()``.

    Args:
        net: a :class:`DenseMappingNetwork`, :class:`BlendGenerator`, :class:`MultiscaleDiscriminator` or
            :class:`MaskVAE` of any size (the indices of the demo's ``Sequential`` depend on it).

    Returns:
        An ordered mapping in facezoo's ``state_dict`` order.

    Example:
        >>> from facezoo.methods.maskgan.networks import MultiscaleDiscriminator
        >>> official_key_map(MultiscaleDiscriminator())["scales.0.layers.4.conv.bias"]
        'scale1_layer4.0.bias'
    """
    rules = [(re.compile(pattern), rename) for pattern, rename in _rules(net)]
    out: OrderedDict[str, str] = OrderedDict()
    for key in net.state_dict():
        for pattern, rename in rules:
            match = pattern.fullmatch(key)
            if match:
                out[key] = rename(match)
                break
        else:  # a facezoo layer without a rule is a bug in this module, not in the user's file
            raise AssertionError(f"no official name for {key}")
    return out


def official_extra_keys(net: nn.Module) -> OrderedDict[str, tuple[int, ...]]:
    """Entries the demo's file has and facezoo does not use: G's dummy AdaIN ``running_mean`` / ``running_var``.

    Returns:
        ``{the demo's key: shape}`` (empty for B, D and the VAE).
    """
    out: OrderedDict[str, tuple[int, ...]] = OrderedDict()
    if _part_of(net) == "G":
        nd = net.backbone.n_downsample
        for i, block in enumerate(net.backbone.blocks):
            channels = block.conv1.out_channels
            for j in (0, 1):
                for buffer in ("running_mean", "running_var"):
                    out[f"model.{4 + 3 * nd + i}.conv_block.{j}.norm.{buffer}"] = (channels,)
    return out


def _optional(key: str) -> bool:
    return key.endswith("num_batches_tracked")


def official_shapes(net: nn.Module) -> OrderedDict[str, tuple[int, ...]]:
    """``{the demo's key: shape}`` of the file the demo would write for a network of ``net``'s size."""
    state = net.state_dict()
    out = OrderedDict((official, tuple(state[key].shape)) for key, official in official_key_map(net).items())
    out.update(official_extra_keys(net))
    return out


def from_official_state_dict(state: Mapping[str, Tensor], net: nn.Module,
                             source: str = "state dict") -> OrderedDict[str, Tensor]:
    """Rename the demo's state dict to ``net``'s names, checking the key set and every shape.

    Args:
        state: the content of one of the demo's files (``module.`` prefixes already stripped).
        net: the facezoo network it is for (gives the architecture, hence the expected names and shapes).
        source: what ``state`` came from, for the error message.

    Returns:
        ``{facezoo key: tensor}`` for ``net.load_state_dict(..., strict=True)``; a missing optional
        ``num_batches_tracked`` is taken from ``net``.

    Raises:
        FacezooError: missing or unexpected entries, or a shape that does not fit ``net`` (one line).
    """
    part = _part_of(net)
    mapping = official_key_map(net)
    extra = official_extra_keys(net)
    expected = set(mapping.values()) | set(extra)
    missing = {k for k in expected - set(state) if not _optional(k)}
    unexpected = set(state) - expected
    if missing or unexpected:
        detail = "; ".join(p for p in (missing and f"missing {short_key_list(missing)}",
                                       unexpected and f"unexpected {short_key_list(unexpected)}") if p)
        raise FacezooError(f"{source} is not a MaskGAN demo {part} state dict of this architecture ({detail})")
    ours = net.state_dict()
    shapes = {official: tuple(ours[key].shape) for key, official in mapping.items()} | dict(extra)
    for official, shape in shapes.items():
        if official in state and tuple(state[official].shape) != shape:
            raise FacezooError(f"{source}: {official} has shape {tuple(state[official].shape)}, a {part} of this "
                               f"architecture needs {shape} (pass the widths it was trained with)")
    return OrderedDict((key, state[official] if official in state else ours[key])
                       for key, official in mapping.items())


def to_official_state_dict(net: nn.Module) -> OrderedDict[str, Tensor]:
    """The inverse mapping: ``net``'s weights as the demo would save them (dummy AdaIN buffers 0 / 1).

    Example:
        >>> from facezoo.methods.maskgan.networks import MaskVAE
        >>> sorted(to_official_state_dict(MaskVAE(ngf=2, ndf=2, latent_dim=4, resolution=32)))[:3]
        ['bn1.bias', 'bn1.num_batches_tracked', 'bn1.running_mean']
    """
    ours = net.state_dict()
    out = OrderedDict((official, ours[key].detach().clone()) for key, official in official_key_map(net).items())
    device = next(iter(ours.values())).device
    for key, shape in official_extra_keys(net).items():
        fill = torch.ones if key.endswith("running_var") else torch.zeros
        out[key] = fill(shape, device=device)
    return out




# --------------------------------------------------------------------------------------------------
# loading a file
# --------------------------------------------------------------------------------------------------


def load_official(path: str | os.PathLike, part: str, **overrides) -> nn.Module:
    """Build a facezoo network and load one of the MaskGAN demo's files into it strictly.

    Args:
        path: ``latest_net_G.pth`` (the released dense mapping network), ``latest_net_B.pth``,
            ``latest_net_D.pth``, or a state dict of the demo's ``VAE``.
        part: ``"G"``, ``"B"``, ``"D"`` or ``"VAE"``.
        **overrides: architecture arguments of the facezoo class when the file is not of the demo's size
            (see :func:`build`).

    Returns:
        The network in eval mode, on the CPU.

    Raises:
        ValueError: unknown ``part`` or overrides.
        FacezooError: no such file, not a readable state dict, missing / unexpected entries or a wrong shape
            (one line).

    Example:
        >>> import os, tempfile
        >>> from facezoo.methods.maskgan.networks import BlendGenerator
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = os.path.join(tmp.name, "latest_net_B.pth")
        >>> torch.save(to_official_state_dict(BlendGenerator(ngf=4, n_downsample=2, n_blocks=1)), p)
        >>> load_official(p, "B", ngf=4, n_downsample=2, n_blocks=1).training
        False
        >>> tmp.cleanup()
    """
    net = build(part, **overrides)
    file = Path(path)
    if not file.is_file():
        raise FacezooError(f"{file}: no such file (the MaskGAN demo's {PARTS[part][1]})")
    try:
        state = load_state_dict_file(file, allow_pickle=False)
    except Exception as err:  # unpickling, zip, EOF, "not a mapping of tensors": all mean "not a state dict"
        raise unreadable_weights(file, "state dict", err) from None
    mapped = from_official_state_dict(state, net, str(file))
    net.load_state_dict(mapped, strict=True)
    return net.eval()
