"""Loading the networks of the PyTorch port ``iwtw/pytorch-TP-GAN`` into facezoo's TP-GAN.

No TP-GAN weights were ever released by the authors (``HRLTY/TP-GAN#1``); what users have are the files the
port's ``train.py`` writes after each epoch (``utils.py: save_model``)::

    torch.save(model.state_dict(), "<run dir>/Generator_epoch<N>.pth")       # model = G.module
    torch.save(model.state_dict(), "<run dir>/Discriminator_epoch<N>.pth")   # model = D.module

i.e. plain state dicts of ``network.Generator`` / ``network.Discriminator``, **without** ``module.`` prefixes
(``save_model`` unwraps the ``DataParallel``), written by PyTorch 0.3.1 (legacy serialisation, BatchNorm layers
without ``num_batches_tracked``). :func:`load_official` reads them with ``torch.load(weights_only=True)`` and
loads them with ``strict=True`` into :class:`~facezoo.methods.tpgan.networks.TPGANGenerator` /
:class:`~facezoo.methods.tpgan.networks.Discriminator` built with ``arch="iwtw"``
(:data:`~facezoo.methods.tpgan.networks.ARCHS`), which computes the port's function: same outputs to float
rounding. ``zdim``, ``num_classes`` and ``use_batchnorm`` (``config.py``: 64, 347, ``False``) are read off the
file.

Key mapping (port → facezoo; ``conv(...)`` is the port's ``Sequential(Conv2d, activation, BatchNorm)``, so its
``.0`` is the convolution and ``.2`` the BatchNorm; a ``ResidualBlock``'s ``layers.{0,1}.0`` are its two
convolutions, ``layers.{0,1}.1`` after the 2x2 blocks' ``ReflectionPad2d``):

* ``local_pathway_<part>.`` = ``local_pathways.<part>.``: ``conv{i}.0`` / ``conv{i}.1`` = ``conv0`` / ``res0``,
  ``down{i}`` / ``res{i}`` (``conv3.1`` = ``res3.0``), ``deconv{i}`` = ``up{i+1}``, ``after_select{i}.0`` /
  ``.1`` = ``fuse{i+1}`` / ``res_up{i+1}``, ``local_img`` = ``to_rgb``.
* ``global_pathway.conv{i}.0`` = ``global_pathway.encoder.conv{i}``, ``conv{i}.1`` = ``res{i}`` (``conv4.{j}`` =
  ``res4.{j-1}``), ``fc1`` = ``encoder.fc``; ``feature_predict.fc`` = ``global_pathway.identity_head.fc``.
* decoder (``global_pathway.decoder.``): ``initial_8.0`` / ``.2`` = ``initial`` / ``initial_norm``,
  ``initial_{32,64,128}`` = ``initial_{s4,s2,s}``, ``before_select_{8,16,32,64,128}`` =
  ``select_{s16,s8,s4,s2,s}``, ``reconstruct_{8,16,32,64}.{j}`` = ``decode_{s16,s8,s4,s2}.{j}``,
  ``reconstruct_128.0`` = ``decode_s``, ``reconstruct_deconv_{16,32,64,128}`` = ``up_{s8,s4,s2,s}``,
  ``decoded_img{32,64,128}`` = ``to_rgb_{s4,s2,s}``, ``conv5.0`` / ``conv5.1`` / ``conv6`` = ``conv_s1`` /
  ``res_s`` / ``conv_s2``.
* Discriminator ``model.{0,1,2,3,5}`` = ``conv{0,1,2,3,4}``, ``model.{4,6}`` = ``res{3,4}``, ``model.7`` =
  ``to_logit``.

Example:
    >>> official_key_map(build("D"))["conv3.0.weight"]
    'model.3.0.weight'
"""

from __future__ import annotations

import os
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from facezoo.methods.tpgan.networks import PART_NAMES, Discriminator, TPGANGenerator
from facezoo.nets.weights import load_state_dict_file, seeded_official_state_dict, short_key_list, unreadable_weights
from facezoo.utils import FacezooError

__all__ = [
    "PARTS",
    "PORT_DEFAULTS",
    "build",
    "infer_architecture",
    "official_key_map",
    "official_shapes",
    "from_official_state_dict",
    "to_official_state_dict",
    "seeded_official_state_dict",
    "find_run_files",
    "load_part",
    "load_official",
]

#: The port's networks: part → (facezoo class, the port's file name pattern).
PARTS: dict[str, tuple[type[nn.Module], str]] = {
    "G": (TPGANGenerator, "Generator_epoch{epoch}.pth"),
    "D": (Discriminator, "Discriminator_epoch{epoch}.pth"),
}

#: The port's architecture (``network.py`` hard-codes 128 px, width 1 and a 256-d feature; ``config.py``: zdim 64,
#: 347 classes, no BatchNorm) as facezoo constructor arguments of each part.
PORT_DEFAULTS: dict[str, dict] = {
    "G": {"image_size": 128, "width": 1.0, "zdim": 64, "feature_dim": 256, "num_classes": 347, "norm": "none",
          "use_local": True, "arch": "iwtw"},
    "D": {"image_size": 128, "width": 1.0, "norm": "none", "arch": "iwtw"},
}


def _part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    return part


def build(part: str, **overrides) -> nn.Module:
    """A facezoo network with the port's architecture (:data:`PORT_DEFAULTS`) unless overridden.

    Args:
        part: ``"G"`` (:class:`TPGANGenerator`) or ``"D"`` (:class:`Discriminator`).
        **overrides: constructor arguments (``zdim=``, ``num_classes=``, ``norm="batch"`` for a port run with
            ``use_batchnorm=True``).

    Returns:
        A freshly initialised network (on the current default device).

    Raises:
        ValueError: unknown part or overrides.
    """
    cls = PARTS[_part(part)][0]
    try:
        return cls(**{**PORT_DEFAULTS[part], **overrides})
    except TypeError as err:
        raise ValueError(f"bad architecture overrides for part {part}: {err}") from None


def infer_architecture(state: Mapping[str, Tensor], part: str) -> dict:
    """The constructor arguments a port file implies: ``norm`` (BatchNorm entries present), and for G ``zdim``
    (``initial_8``'s input channels minus the 256-d feature) and ``num_classes`` (``feature_predict.fc``).

    Args:
        state: the port's state dict (only names and shapes are read).
        part: ``"G"`` or ``"D"``.

    Returns:
        ``{argument: value}`` for the arguments it could read (a damaged file gets the defaults, and the strict
        key check then names what is wrong).

    Example:
        >>> infer_architecture({"feature_predict.fc.weight": torch.empty(5, 256, device="meta")}, "G")
        {'norm': 'none', 'num_classes': 5}
    """
    out: dict = {"norm": "batch" if any(k.endswith(".running_mean") for k in state) else "none"}
    if _part(part) == "G":
        initial = state.get("global_pathway.initial_8.0.weight")
        feature_dim = PORT_DEFAULTS["G"]["feature_dim"]
        if isinstance(initial, Tensor) and initial.dim() == 4 and initial.shape[0] > feature_dim:
            out["zdim"] = int(initial.shape[0]) - feature_dim
        fc = state.get("feature_predict.fc.weight")
        if isinstance(fc, Tensor) and fc.dim() == 2:
            out["num_classes"] = int(fc.shape[0])
    return out


# --------------------------------------------------------------------------------------------------
# key mapping
# --------------------------------------------------------------------------------------------------

# facezoo module prefix -> (port module prefix, kind). Kinds: how the suffix under the prefix is renamed.
_LOCAL = [("conv0", "conv0.0", "conv"), ("res0", "conv0.1", "res"), ("down1", "conv1.0", "conv"),
          ("res1", "conv1.1", "res"), ("down2", "conv2.0", "conv"), ("res2", "conv2.1", "res"),
          ("down3", "conv3.0", "conv"), ("res3.0", "conv3.1", "res"),
          ("up1", "deconv0", "deconv"), ("fuse1", "after_select0.0", "conv"), ("res_up1", "after_select0.1", "res"),
          ("up2", "deconv1", "deconv"), ("fuse2", "after_select1.0", "conv"), ("res_up2", "after_select1.1", "res"),
          ("up3", "deconv2", "deconv"), ("fuse3", "after_select2.0", "conv"), ("res_up3", "after_select2.1", "res"),
          ("to_rgb", "local_img", "conv")]
_ENCODER = [("conv0", "conv0.0", "conv"), ("res0", "conv0.1", "res"), ("conv1", "conv1.0", "conv"),
            ("res1", "conv1.1", "res"), ("conv2", "conv2.0", "conv"), ("res2", "conv2.1", "res"),
            ("conv3", "conv3.0", "conv"), ("res3", "conv3.1", "res"), ("conv4", "conv4.0", "conv"),
            *((f"res4.{j}", f"conv4.{j + 1}", "res") for j in range(4)), ("fc", "fc1", "plain")]
_DECODER = [("initial", "initial_8.0", "plain"), ("initial_norm", "initial_8.2", "plain"),
            ("initial_s4", "initial_32", "deconv"), ("initial_s2", "initial_64", "deconv"),
            ("initial_s", "initial_128", "deconv"),
            ("select_s16", "before_select_8", "res_reflect"),
            *((f"decode_s16.{j}", f"reconstruct_8.{j}", "res_reflect") for j in range(2)),
            ("up_s8", "reconstruct_deconv_16", "deconv"), ("select_s8", "before_select_16", "res"),
            *((f"decode_s8.{j}", f"reconstruct_16.{j}", "res") for j in range(2)),
            ("up_s4", "reconstruct_deconv_32", "deconv"), ("select_s4", "before_select_32", "res"),
            *((f"decode_s4.{j}", f"reconstruct_32.{j}", "res") for j in range(2)),
            ("to_rgb_s4", "decoded_img32", "conv"),
            ("up_s2", "reconstruct_deconv_64", "deconv"), ("select_s2", "before_select_64", "res"),
            *((f"decode_s2.{j}", f"reconstruct_64.{j}", "res") for j in range(2)),
            ("to_rgb_s2", "decoded_img64", "conv"),
            ("up_s", "reconstruct_deconv_128", "deconv"), ("select_s", "before_select_128", "res"),
            ("decode_s", "reconstruct_128.0", "res"), ("conv_s1", "conv5.0", "conv"), ("res_s", "conv5.1", "res"),
            ("conv_s2", "conv6", "conv"), ("to_rgb_s", "decoded_img128", "conv")]
_DISCRIMINATOR = [("conv0", "model.0", "conv"), ("conv1", "model.1", "conv"), ("conv2", "model.2", "conv"),
                  ("conv3", "model.3", "conv"), ("res3", "model.4", "res"), ("conv4", "model.5", "conv"),
                  ("res4", "model.6", "res"), ("to_logit", "model.7", "conv")]


def _prefixes(part: str) -> dict[str, tuple[str, str]]:
    if part == "D":
        return {ours: (theirs, kind) for ours, theirs, kind in _DISCRIMINATOR}
    table = {}
    for name in PART_NAMES:
        for ours, theirs, kind in _LOCAL:
            table[f"local_pathways.{name}.{ours}"] = (f"local_pathway_{name}.{theirs}", kind)
    for ours, theirs, kind in _ENCODER:
        table[f"global_pathway.encoder.{ours}"] = (f"global_pathway.{theirs}", kind)
    for ours, theirs, kind in _DECODER:
        table[f"global_pathway.decoder.{ours}"] = (f"global_pathway.{theirs}", kind)
    table["global_pathway.identity_head.fc"] = ("feature_predict.fc", "plain")
    return table


# suffix renames per kind: (facezoo suffix pattern, port suffix template)
_SUFFIX = {
    "plain": [(r"(\w+)", r"\1")],
    "conv": [(r"0\.(\w+)", r"0.\1"), (r"1\.(\w+)", r"2.\1")],  # ConvLayer (conv, norm, act) / conv(Conv, act, BN)
    "deconv": [(r"deconv\.(\w+)", r"0.\1"), (r"norm\.(\w+)", r"2.\1")],
    "res": [(r"conv([12])\.0\.(\w+)", "layers.{0}.0.{1}")],
    "res_reflect": [(r"conv([12])\.0\.(\w+)", "layers.{0}.1.{1}")],
}


def _rename(kind: str, suffix: str) -> str | None:
    for pattern, template in _SUFFIX[kind]:
        match = re.fullmatch(pattern, suffix)
        if match:
            if kind.startswith("res"):
                return template.format(int(match[1]) - 1, match[2])
            return match.expand(template)
    return None


def _part_of(net: nn.Module) -> str:
    if isinstance(net, TPGANGenerator):
        return "G"
    if isinstance(net, Discriminator):
        return "D"
    raise TypeError(f"not a TP-GAN generator or discriminator: {type(net).__name__}")


def official_key_map(net: nn.Module) -> OrderedDict[str, str]:
    """``{facezoo key: the port's key}`` for every entry of ``net.state_dict()``.

    Args:
        net: a :class:`TPGANGenerator` or :class:`Discriminator` built with the port's architecture
            (:func:`build`; ``arch="iwtw"``, 128 px, width 1, local pathways on).

    Returns:
        An ordered mapping in facezoo's ``state_dict`` order.

    Raises:
        ValueError: ``net`` is not of the port's layout (a facezoo entry has no counterpart in the port).

    Example:
        >>> with torch.device("meta"):  # names and shapes only
        ...     generator = build("G")
        >>> official_key_map(generator)["global_pathway.decoder.select_s16.conv2.0.bias"]
        'global_pathway.before_select_8.layers.1.1.bias'
    """
    part = _part_of(net)
    table = _prefixes(part)
    out: OrderedDict[str, str] = OrderedDict()
    for key in net.state_dict():
        pieces = key.split(".")
        for cut in range(len(pieces) - 1, 0, -1):
            prefix = ".".join(pieces[:cut])
            if prefix in table:
                theirs, kind = table[prefix]
                renamed = _rename(kind, ".".join(pieces[cut:]))
                if renamed is not None:
                    out[key] = f"{theirs}.{renamed}"
                    break
        else:
            raise ValueError(f"{key} has no counterpart in the iwtw port's {part}: build the network with "
                             f"facezoo.methods.tpgan.official.build (arch='iwtw', 128 px, width 1)")
    return out


def _optional(key: str) -> bool:
    return key.endswith("num_batches_tracked")  # PyTorch 0.3 (the port's) did not write them


def official_shapes(net: nn.Module) -> OrderedDict[str, tuple[int, ...]]:
    """``{the port's key: shape}`` of the file the port (run on PyTorch >= 0.4.1) writes for ``net``'s size."""
    state = net.state_dict()
    return OrderedDict((theirs, tuple(state[ours].shape)) for ours, theirs in official_key_map(net).items())


def from_official_state_dict(state: Mapping[str, Tensor], net: nn.Module,
                             source: str = "state dict") -> OrderedDict[str, Tensor]:
    """Rename the port's state dict to ``net``'s names, checking the key set and every shape.

    Args:
        state: the content of a ``Generator_epoch<N>.pth`` / ``Discriminator_epoch<N>.pth`` file.
        net: the facezoo network it is for (gives the expected names and shapes; may live on ``meta``).
        source: what ``state`` came from, for the error message.

    Returns:
        ``{facezoo key: float32 tensor}`` for ``net.load_state_dict(..., strict=True)``; a missing
        ``num_batches_tracked`` (files written by PyTorch 0.3) is 0.

    Raises:
        FacezooError: missing or unexpected entries, or a shape that does not fit ``net`` (one line).
    """
    part = _part_of(net)
    mapping = official_key_map(net)
    missing = {k for k in set(mapping.values()) - set(state) if not _optional(k)}
    unexpected = set(state) - set(mapping.values())
    if missing or unexpected:
        detail = "; ".join(p for p in (missing and f"missing {short_key_list(missing)}",
                                       unexpected and f"unexpected {short_key_list(unexpected)}") if p)
        raise FacezooError(f"{source} is not an iwtw/pytorch-TP-GAN {part} state dict ({detail})")
    ours = net.state_dict()
    for key, theirs in mapping.items():
        if theirs in state and tuple(state[theirs].shape) != tuple(ours[key].shape):
            raise FacezooError(f"{source}: {theirs} has shape {tuple(state[theirs].shape)}, an iwtw {part} of this "
                               f"architecture needs {tuple(ours[key].shape)}")
    out: OrderedDict[str, Tensor] = OrderedDict()
    for key, theirs in mapping.items():
        if theirs not in state:  # an optional num_batches_tracked
            out[key] = torch.zeros((), dtype=torch.long)
            continue
        value = state[theirs]
        out[key] = value.float() if value.is_floating_point() else value
    return out


def to_official_state_dict(net: nn.Module) -> OrderedDict[str, Tensor]:
    """The inverse mapping: ``net``'s weights under the port's names, in the port's file layout.

    Example:
        >>> list(to_official_state_dict(build("D")))[:2]
        ['model.0.0.weight', 'model.0.0.bias']
    """
    ours = net.state_dict()
    return OrderedDict((theirs, ours[key].detach().clone()) for key, theirs in official_key_map(net).items())




# --------------------------------------------------------------------------------------------------
# loading files
# --------------------------------------------------------------------------------------------------

_EPOCH_FILE = re.compile(r"Generator_epoch(\d+)\.pth")


def find_run_files(run_dir: str | os.PathLike, epoch: int | None = None) -> tuple[Path, Path | None]:
    """The generator and discriminator files of one epoch in a port run directory (``utils.py: resume_model``).

    Args:
        run_dir: the directory ``train.py`` saved into (``tb.path``).
        epoch: which epoch; default the latest ``Generator_epoch<N>.pth``.

    Returns:
        ``(generator file, discriminator file or None when that epoch has none)``.

    Raises:
        FacezooError: no generator file of that epoch.
    """
    run_dir = Path(run_dir)
    if epoch is None:
        epochs = [int(m[1]) for f in run_dir.iterdir() if (m := _EPOCH_FILE.fullmatch(f.name))]
        if not epochs:
            raise FacezooError(f"{run_dir} has no Generator_epoch<N>.pth (an iwtw/pytorch-TP-GAN run directory)")
        epoch = max(epochs)
    generator = run_dir / PARTS["G"][1].format(epoch=epoch)
    if not generator.is_file():
        raise FacezooError(f"{generator}: no such file")
    discriminator = run_dir / PARTS["D"][1].format(epoch=epoch)
    return generator, discriminator if discriminator.is_file() else None


def load_part(path: str | os.PathLike, part: str, **overrides) -> nn.Module:
    """Build one facezoo network with the port's architecture and load one of the port's files strictly.

    Args:
        path: a ``Generator_epoch<N>.pth`` (``part="G"``) or ``Discriminator_epoch<N>.pth`` (``part="D"``) file.
        part: ``"G"`` or ``"D"``.
        **overrides: constructor arguments that win over :data:`PORT_DEFAULTS` and :func:`infer_architecture`.

    Returns:
        The network in eval mode, on the CPU.

    Raises:
        ValueError: unknown part or overrides.
        FacezooError: see :func:`load_official`.

    Example:
        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "Discriminator_epoch0.pth")
        >>> torch.save(to_official_state_dict(build("D", norm="batch")), path)
        >>> type(load_part(path, "D").conv1[1]).__name__  # norm="batch" read off the file
        'BatchNorm2d'
        >>> tmp.cleanup()
    """
    _part(part)
    file = Path(path)
    if not file.is_file():
        raise FacezooError(f"{file}: no such file (the iwtw port's {PARTS[part][1].format(epoch='<N>')})")
    try:
        state = load_state_dict_file(file, allow_pickle=False)  # torch.load(weights_only=True), strips module.
    except Exception as err:  # unpickling, zip, EOF, "not a mapping of tensors": all mean "not a state dict"
        raise unreadable_weights(file, "state dict", err) from None
    with torch.device("meta"):  # no initialisation of ~138 M parameters only to overwrite them
        net = build(part, **{**infer_architecture(state, part), **overrides})
    net.load_state_dict(from_official_state_dict(state, net, str(file)), strict=True, assign=True)
    return net.eval()


def load_official(generator_path: str | os.PathLike, discriminator_path: str | os.PathLike | None = None,
                  **overrides) -> tuple[TPGANGenerator, Discriminator | None]:
    """Build facezoo's TP-GAN networks with the port's architecture and load the port's files strictly.

    The architecture is the port's (:data:`PORT_DEFAULTS`, ``arch="iwtw"``), with ``zdim``, ``num_classes`` and
    ``norm`` read off each file (:func:`infer_architecture`). The networks compute what the port's
    ``Generator.forward(I128, I64, I32, left_eye, right_eye, nose, mouth, z, use_dropout=False)`` and
    ``Discriminator.forward`` compute: call the generator as ``G(I128, {"left_eye": ..., ...}, z,
    image_half=I64, image_quarter=I32)``; its ``image``, ``image_half``, ``image_quarter``, ``identity_logits``,
    ``parts`` and ``parts_fused`` are the port's ``I128_fake``, ``I64_fake``, ``I32_fake``, ``encoder_predict``,
    ``le_fake``... and ``local_vision``.

    Args:
        generator_path: a ``Generator_epoch<N>.pth`` file, or the run directory (then the latest epoch's
            generator and, unless ``discriminator_path`` is given, that epoch's discriminator if present).
        discriminator_path: a ``Discriminator_epoch<N>.pth`` file, or ``None``.
        **overrides: constructor arguments that win over the port's and the inferred ones (both networks).

    Returns:
        ``(generator, discriminator or None)``, in eval mode, on the CPU.

    Raises:
        ValueError: unknown overrides.
        FacezooError: no such file, not a readable state dict (pickled objects are refused), missing /
            unexpected entries or a wrong shape (one line).

    Example:
        >>> G, D = load_official("save/try_1")  # the port's run directory  # doctest: +SKIP
        >>> out = G(I128, {"left_eye": le, "right_eye": re, "nose": nose, "mouth": mouth}, z,
        ...         image_half=I64, image_quarter=I32)  # doctest: +SKIP
        >>> logits = D(out["image"])  # doctest: +SKIP
    """
    if Path(generator_path).is_dir():
        generator_path, found = find_run_files(generator_path)
        discriminator_path = discriminator_path if discriminator_path is not None else found
    generator = load_part(generator_path, "G", **overrides)
    discriminator = None
    if discriminator_path is not None:
        d_overrides = {k: v for k, v in overrides.items() if k in ("image_size", "width", "norm", "arch")}
        discriminator = load_part(discriminator_path, "D", **d_overrides)
    return generator, discriminator

