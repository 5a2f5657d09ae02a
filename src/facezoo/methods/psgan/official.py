"""Loading the official released PSGAN generator (``wtjiang98/PSGAN: assets/models/G.pth``).

The official ``G.pth`` is the ``state_dict`` of ``psgan/net.py: Generator`` (51 entries, 12.6 M parameters;
``Solver`` loads it with ``load_state_dict``, i.e. strictly). Its names are flat (``pnet_*`` = MDNet,
``tnet_*`` = MANet, ``simple_spade`` = ``GetMatrix``, residual blocks as ``main.{0,1,3,4}`` of an
``nn.Sequential``); :func:`official_key_map` maps them onto :class:`~facezoo.methods.psgan.PSGANGenerator`'s
names one by one, and the weights load with ``strict=True``. The only entries without a counterpart are the
four parameters of the official ``NONLocalBlock2D.g`` 1x1 convs, which the official forward never calls
(:data:`UNUSED_OFFICIAL_KEYS`): they must be present and are dropped.

Example:
    >>> from facezoo.methods.psgan.networks import PSGANGenerator
    >>> official = official_state_dict_from(PSGANGenerator(width=0.125))
    >>> len(official), official["pnet_in.0.weight"].shape
    (51, torch.Size([8, 3, 7, 7]))
"""
from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import Tensor

from facezoo.methods.psgan.networks import PSGANGenerator
from facezoo.nets.weights import (
    load_state_dict_file,
    resolve_weights,
    short_key_list,
    state_dict_mismatch,
    unreadable_weights,
)
from facezoo.utils import FacezooError

__all__ = [
    "UNUSED_OFFICIAL_KEYS",
    "official_key_map",
    "from_official_state_dict",
    "official_state_dict_from",
    "load_official_generator",
]

#: Entries of the official ``G.pth`` that the official forward never uses (``NONLocalBlock2D.g``), with shapes.
UNUSED_OFFICIAL_KEYS: dict[str, tuple[int, ...]] = {
    "atten_bottleneck_g.g.weight": (1, 1, 1, 1),
    "atten_bottleneck_g.g.bias": (1,),
    "atten_bottleneck_b.g.weight": (1, 1, 1, 1),
    "atten_bottleneck_b.g.bias": (1,),
}

# Official residual block ``main`` Sequential: 0 conv, 1 IN, 2 ReLU, 3 conv, 4 IN.
_BLOCK = {"main.0": "conv1", "main.1": "norm1", "main.3": "conv2", "main.4": "norm2"}


def official_key_map() -> OrderedDict[str, str]:
    """``{official G.pth key: facezoo PSGANGenerator key}`` for every used official entry (47 of 51).

    Returns:
        An ordered mapping in the official ``state_dict`` order (MDNet first, then MANet).

    Example:
        >>> official_key_map()["tnet_bottleneck_4.main.3.weight"]
        'manet.blocks.3.conv2.weight'
    """
    m: OrderedDict[str, str] = OrderedDict()
    # MDNet (official "PNet"): affine InstanceNorms
    for official, ours in (("pnet_in", "mdnet.stem"), ("pnet_down_1", "mdnet.down1"), ("pnet_down_2", "mdnet.down2")):
        m[f"{official}.0.weight"] = f"{ours}.conv.weight"
        m[f"{official}.1.weight"] = f"{ours}.norm.weight"
        m[f"{official}.1.bias"] = f"{ours}.norm.bias"
    m["simple_spade.get_gamma.weight"] = "mdnet.get_matrix.get_gamma.weight"
    m["simple_spade.get_beta.weight"] = "mdnet.get_matrix.get_beta.weight"
    for i in range(3):
        for official, ours in _BLOCK.items():
            suffixes = ("weight",) if ours.startswith("conv") else ("weight", "bias")
            for suffix in suffixes:
                m[f"pnet_bottleneck_{i + 1}.{official}.{suffix}"] = f"mdnet.blocks.{i}.{ours}.{suffix}"
    # MANet (official "TNet"): no affine InstanceNorm, so only the bias-free convolutions have weights
    m["tnet_in_conv.weight"] = "manet.stem.conv.weight"
    for i in range(2):
        m[f"tnet_down_conv_{i + 1}.weight"] = f"manet.down{i + 1}.conv.weight"
    for i in range(6):
        m[f"tnet_bottleneck_{i + 1}.main.0.weight"] = f"manet.blocks.{i}.conv1.weight"
        m[f"tnet_bottleneck_{i + 1}.main.3.weight"] = f"manet.blocks.{i}.conv2.weight"
    for i in range(2):
        m[f"tnet_up_conv_{i + 1}.weight"] = f"manet.up{i + 1}.conv.weight"
    m["tnet_out.0.weight"] = "manet.to_rgb.conv.weight"
    return m


def from_official_state_dict(state: dict[str, Tensor], source: str = "state dict") -> OrderedDict[str, Tensor]:
    """Rename an official ``Generator`` state dict to facezoo's names, checking that the key set is exact.

    Args:
        state: the official ``G.pth`` content (a ``module.`` prefix must already be stripped).
        source: what ``state`` came from, for the error message.

    Returns:
        ``{facezoo key: tensor}`` for :meth:`PSGANGenerator.load_state_dict`.

    Raises:
        FacezooError: keys are missing or unexpected (one line, naming a few of them).
    """
    mapping = official_key_map()
    expected = set(mapping) | set(UNUSED_OFFICIAL_KEYS)
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        parts = (missing and f"missing {short_key_list(missing, 4)}",
                 unexpected and f"unexpected {short_key_list(unexpected, 4)}")
        detail = "; ".join(part for part in parts if part)
        raise FacezooError(f"{source} is not an official PSGAN generator state dict ({detail})")
    return OrderedDict((ours, state[official]) for official, ours in mapping.items())


def official_state_dict_from(generator: PSGANGenerator) -> OrderedDict[str, Tensor]:
    """The inverse mapping: a facezoo generator's weights in the official ``G.pth`` layout.

    The four unused ``NONLocalBlock2D.g`` entries are written as zeros of their official shapes.

    Args:
        generator: a :class:`PSGANGenerator` (any ``width``).

    Returns:
        ``{official key: tensor}`` (detached, on the generator's device), in the official order.
    """
    ours = generator.state_dict()
    out: OrderedDict[str, Tensor] = OrderedDict()
    mapping = official_key_map()
    for official, key in list(mapping.items())[:9]:                       # pnet_in / pnet_down_*
        out[official] = ours[key].detach().clone()
    device = next(iter(ours.values())).device
    for official, shape in UNUSED_OFFICIAL_KEYS.items():                  # official order: after pnet_down_2
        out[official] = torch.zeros(shape, device=device)
    for official, key in list(mapping.items())[9:]:
        out[official] = ours[key].detach().clone()
    return out


def load_official_generator(path: str | os.PathLike | None = None, width: float = 1.0,
                            amm: str = "sdpa") -> PSGANGenerator:
    """Build a :class:`PSGANGenerator` with the official released weights (``G.pth``).

    Args:
        path: the file (``wtjiang98/PSGAN: assets/models/G.pth``); ``None`` looks for ``G.pth`` in the facezoo
            cache (:func:`facezoo.nets.weights.resolve_weights`, name ``"psgan_g"``; there is no URL).
        width: channel multiplier of the generator (1 for the released file).
        amm: AMM implementation of the returned generator (see :class:`~facezoo.methods.psgan.networks.AMM`).

    Returns:
        The generator in eval mode, on the CPU.

    Raises:
        WeightsNotFoundError: no file at ``path`` / in the cache.
        FacezooError: the file is not a readable PSGAN generator checkpoint, or its shapes do not match
            ``width`` (one line).

    Example:
        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = os.path.join(tmp.name, "G.pth")
        >>> torch.save(official_state_dict_from(PSGANGenerator(width=0.125)), p)
        >>> load_official_generator(p, width=0.125).training
        False
        >>> tmp.cleanup()
    """
    file = resolve_weights("psgan_g", path=path, path_arg="weights")
    try:
        state = load_state_dict_file(file, allow_pickle=False)
    except Exception as err:  # unpickling, zip, EOF, type errors: all mean "not a G.pth"
        raise unreadable_weights(file, "PSGAN G.pth checkpoint", err) from None
    generator = PSGANGenerator(width=width, amm=amm)
    mapped = from_official_state_dict(state, str(file))
    # shapes compared in the file's own key names, the first few named (torch's report names ours, one per line)
    own = generator.state_dict()
    wrong = state_dict_mismatch({official: state[official] for official in official_key_map()},
                                {official: own[ours].shape for official, ours in official_key_map().items()})
    if wrong:
        raise FacezooError(f"{file} does not fit a PSGAN generator of width {width} ({wrong})")
    generator.load_state_dict(mapped, strict=True)
    return generator.eval()
