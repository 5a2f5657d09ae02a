"""Loading the official pSp releases (``eladrich/pixel2style2pixel``) into :class:`~facezoo.methods.psp.PSP`.

A release file (``psp_ffhq_encode.pt``, ``psp_ffhq_frontalization.pt``, ``psp_celebs_sketch_to_face.pt``,
``psp_celebs_seg_to_face.pt``, ``psp_celebs_super_resolution.pt``, ``psp_ffhq_toonify.pt``) is what
``training/coach.py: Coach.__get_save_dict`` writes::

    {"state_dict": pSp.state_dict(),      # "encoder.<...>" and "decoder.<...>" keys
     "opts": vars(opts),                  # the training options as a plain dict
     "latent_avg": (n_styles, 512)}       # only when trained with --start_from_latent_avg

The options used here are those ``models/psp.py: pSp`` reads: ``encoder_type``, ``input_nc``, ``output_size`` (absent
from the 2020 releases, which are all 1024 px: it is then read off the decoder's weights, where the official
``scripts/inference.py`` assumes 1024), ``start_from_latent_avg``, ``learn_in_w`` (absent from some releases) and
``label_nc`` (the data loader's input mode; kept in :attr:`PSP.official_opts`). Parameter names are the official ones,
so both halves load with ``strict=True``.

The file is read with ``torch.load(weights_only=True)``: the options dict holds only strings, numbers, booleans and
``None``. A file whose options are a pickled object (an ``argparse.Namespace``) is refused unless ``trust=True``.

Example:
    >>> import os, tempfile
    >>> from facezoo.nets.stylegan2 import Generator
    >>> from facezoo.methods.psp.networks import PSP
    >>> model = PSP(Generator(16, 8, 1, narrow=1 / 64), "BackboneEncoderUsingLastLayerIntoWPlus", irse50=False)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = os.path.join(tmp.name, "psp.pt")
    >>> torch.save(official_checkpoint_from(model), path)
    >>> load_official(path).n_styles
    6
    >>> tmp.cleanup()
"""

from __future__ import annotations

import os
import pickle
from argparse import Namespace
from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import Tensor, nn

from facezoo.methods.psp.networks import COARSE_END, ENCODER_TYPES, FEATURES, PSP, build_encoder
from facezoo.nets.stylegan2 import Generator, generator_config_from_state_dict
from facezoo.utils import FacezooError

__all__ = ["RELEASES", "OPTION_DEFAULTS", "read_release", "release_options", "encoder_architecture",
           "load_official", "official_checkpoint_from"]

#: The released pSp files and their ``dataset_type`` (README "Pretrained Models"); all decode at 1024 px.
RELEASES: dict[str, str] = {
    "psp_ffhq_encode.pt": "ffhq_encode",
    "psp_ffhq_frontalization.pt": "ffhq_frontalize",
    "psp_celebs_sketch_to_face.pt": "celebs_sketch_to_face",
    "psp_celebs_seg_to_face.pt": "celebs_seg_to_face",
    "psp_celebs_super_resolution.pt": "celebs_super_resolution",
    "psp_ffhq_toonify.pt": "ffhq_encode",
}

#: Defaults of the options pSp reads (``options/train_options.py``); ``output_size`` is inferred when absent.
OPTION_DEFAULTS: dict[str, object] = {
    "encoder_type": "GradualStyleEncoder",
    "input_nc": 3,
    "label_nc": 0,
    "output_size": None,
    "start_from_latent_avg": False,
    "learn_in_w": False,
    "train_decoder": False,
}
#: Keyword arguments of :func:`load_official` that are not release options.
_FACEZOO_ARGS = ("pool_size", "input_size")


def read_release(path: str | os.PathLike, trust: bool = False) -> dict:
    """Read a pSp release file and check its layout.

    Args:
        path: the ``.pt`` file.
        trust: allow unpickling arbitrary objects (``weights_only=False``) for files whose options are an
            ``argparse.Namespace``. Only for files you trust.

    Returns:
        ``{"state_dict", "opts" (a dict), "latent_avg" (tensor or None)}``.

    Raises:
        FacezooError: no such file, not a torch file, pickled options without ``trust``, or not a pSp release
            (one line).
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FacezooError(f"{source}: no such file")
    try:
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not trust:
            what = " ".join(str(err).split("GLOBAL")[-1].split()[:1]) if "GLOBAL" in str(err) else "Python objects"
            raise FacezooError(f"{source}: holds pickled {what} (its opts); pass trust=True to load it only if you "
                               f"trust the file") from None
        ckpt = torch.load(source, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated, not a torch file
        raise FacezooError(f"{source}: not a torch checkpoint ({type(err).__name__}: "
                           f"{' '.join(str(err).split())[:160]})") from None
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping) or "opts" not in ckpt:
        keys = list(ckpt)[:6] if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise FacezooError(f"{source}: not a pSp release (expected 'state_dict' and 'opts', got {keys})")
    opts = ckpt["opts"]
    if isinstance(opts, Namespace):
        opts = vars(opts)
    if not isinstance(opts, Mapping):
        raise FacezooError(f"{source}: 'opts' is a {type(opts).__name__}, not a dict of options")
    state = ckpt["state_dict"]
    other = sorted({k.split(".")[0] for k in state} - {"encoder", "decoder"})
    if other or not all(isinstance(v, Tensor) for v in state.values()):
        raise FacezooError(f"{source}: 'state_dict' must hold only encoder./decoder. tensors (found {other[:3]})")
    latent_avg = ckpt.get("latent_avg")
    if latent_avg is not None and not isinstance(latent_avg, Tensor):
        raise FacezooError(f"{source}: 'latent_avg' is a {type(latent_avg).__name__}, not a tensor")
    return {"state_dict": state, "opts": dict(opts), "latent_avg": latent_avg}


def release_options(opts: Mapping, state_dict: Mapping[str, Tensor] | None = None) -> dict:
    """The options pSp reads, with the official defaults for missing ones.

    Args:
        opts: a release's ``opts``.
        state_dict: its ``state_dict``, to infer ``output_size`` when ``opts`` has none.

    Returns:
        A dict with every key of :data:`OPTION_DEFAULTS`.
    """
    out = {key: opts.get(key, default) for key, default in OPTION_DEFAULTS.items()}
    if out["output_size"] is None and state_dict is not None:
        n_rgbs = len({k.split(".")[2] for k in state_dict if k.startswith("decoder.to_rgbs.")})
        out["output_size"] = 2 ** (n_rgbs + 2) if n_rgbs else 1024
    elif out["output_size"] is None:
        out["output_size"] = 1024
    return out


def _load_part(module: nn.Module, state: Mapping[str, Tensor], source: str, part: str, assign: bool = False) -> None:
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        detail = "; ".join(f"{name} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                           for name, keys in (("missing", missing), ("unexpected", unexpected),
                                              ("wrong shape", wrong)) if keys)
        raise FacezooError(f"{source}: the {part} does not match its options ({detail})")
    module.load_state_dict(state, strict=True, assign=assign)


def encoder_architecture(encoder_state: Mapping[str, Tensor]) -> dict:
    """What an encoder state dict says of the encoder's shape beyond the release's options.

    ``width`` (facezoo's channel scale; 1 for every official release) is the last IR unit's output channels over
    512; ``input_size`` (256 for the releases) is ``8 * 2 ** n`` for ``n`` stride-2 convolutions in the first
    medium style block (index 3, built for ``input_size / 8``) of a
    :class:`~facezoo.methods.psp.networks.GradualStyleEncoder`, or ``16 * 2 ** n`` from the first coarse block when
    there are only coarse styles, and 256 for the other encoders, whose weights do not depend on it.

    Args:
        encoder_state: the ``encoder.`` part of a release's ``state_dict``, prefix removed.

    Returns:
        ``{"width": float, "input_size": int}``.
    """
    units = [int(k.split(".")[1]) for k in encoder_state if k.startswith("body.") and k.split(".")[1].isdigit()]
    last_bn = f"body.{max(units)}.res_layer.4.weight" if units else None
    width = encoder_state[last_bn].shape[0] / FEATURES if last_bn in encoder_state else 1.0
    def convs(block: int) -> int:
        prefix = f"styles.{block}.convs."
        return len({k for k in encoder_state if k.startswith(prefix) and k.endswith(".weight")})

    input_size = 8 * 2 ** convs(COARSE_END) if convs(COARSE_END) else 16 * 2 ** convs(0) if convs(0) else 256
    return {"width": float(width), "input_size": input_size}


def load_official(path: str | os.PathLike, trust: bool = False, **overrides) -> PSP:
    """Build a :class:`PSP` from an official pSp release, strictly, in eval mode on the CPU.

    Args:
        path: the release file.
        trust: see :func:`read_release`.
        **overrides: release options to replace (keys of :data:`OPTION_DEFAULTS`, e.g. ``train_decoder=True``),
            and ``pool_size`` / ``input_size`` (:class:`PSP`). The encoder's width and input size are read off its
            weights (:func:`encoder_architecture`): 1 and 256 for the releases, facezoo's own for a small
            :class:`PSP` saved with :func:`official_checkpoint_from`.

    Returns:
        The model (eval mode; decoder frozen unless ``train_decoder``); the release's options are in
        ``model.official_opts``.

    Raises:
        FacezooError: unreadable file, keys or shapes that do not match the options, or ``start_from_latent_avg``
            without a ``latent_avg`` (one line).
        ValueError: an unknown override.

    Example:
        >>> model = load_official("psp_ffhq_encode.pt")  # doctest: +SKIP
        >>> images, latents = model(x, randomize_noise=False, resize=False, return_latents=True)  # doctest: +SKIP
    """
    unknown = sorted(set(overrides) - set(OPTION_DEFAULTS) - set(_FACEZOO_ARGS))
    if unknown:
        raise ValueError(f"load_official: unknown options {unknown}; known: {sorted(OPTION_DEFAULTS)} + "
                         f"{list(_FACEZOO_ARGS)}")
    source = os.fspath(path)
    release = read_release(path, trust=trust)
    state = release["state_dict"]
    opts = release_options({**release["opts"], **{k: v for k, v in overrides.items() if k in OPTION_DEFAULTS}},
                           state)
    if opts["encoder_type"] not in ENCODER_TYPES:
        raise FacezooError(f"{source}: unknown encoder_type {opts['encoder_type']!r}")
    decoder_state = {k[len("decoder."):]: v for k, v in state.items() if k.startswith("decoder.")}
    encoder_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    config = generator_config_from_state_dict(decoder_state, source)
    if config["size"] != opts["output_size"]:
        raise FacezooError(f"{source}: opts say output_size={opts['output_size']} but the decoder is "
                           f"{config['size']} px")
    latent_avg = release["latent_avg"]
    if opts["start_from_latent_avg"] and latent_avg is None:
        raise FacezooError(f"{source}: trained with start_from_latent_avg but holds no latent_avg")
    n_styles = 2 * (config["size"].bit_length() - 1) - 2
    arch = encoder_architecture(encoder_state)
    input_size = overrides.get("input_size", arch["input_size"])
    with torch.device("meta"):                             # no memory, no initialisation: the weights are assigned
        encoder = build_encoder(opts["encoder_type"], n_styles, int(opts["input_nc"]), config["style_dim"],
                                input_size, width=arch["width"])
    _load_part(encoder, encoder_state, source, "encoder", assign=True)
    left = [name for name, t in [*encoder.named_parameters(), *encoder.named_buffers()] if t.is_meta]
    if left:                                               # a tensor the state dict did not provide
        raise FacezooError(f"{source}: the encoder has no weights for {', '.join(left[:3])}")
    decoder = Generator(**config)
    _load_part(decoder, decoder_state, source, "decoder")
    try:
        model = PSP(decoder, encoder=encoder, encoder_type=opts["encoder_type"], input_nc=int(opts["input_nc"]),
                    start_from_latent_avg=bool(opts["start_from_latent_avg"]),
                    train_decoder=bool(opts["train_decoder"]), latent_avg=latent_avg, irse50=False,
                    pool_size=overrides.get("pool_size", 256), input_size=input_size)
    except ValueError as err:                              # a latent_avg of the wrong shape
        raise FacezooError(f"{source}: {err}") from None
    model.official_opts = dict(release["opts"])
    return model.eval()


def official_checkpoint_from(model: PSP, opts: Mapping | None = None) -> dict:
    """The inverse of :func:`load_official`: a facezoo :class:`PSP` as an official release dict.

    Args:
        model: the model.
        opts: extra options to store (e.g. ``dataset_type``); the architecture options come from ``model``.

    Returns:
        ``{"state_dict", "opts", "latent_avg"}`` (``latent_avg`` only with ``start_from_latent_avg``, (1, 512) with
        the W encoder, as the official coach saves it), tensors detached on the CPU.
    """
    state = OrderedDict((k, v.detach().cpu()) for k, v in model.state_dict().items()
                        if k.startswith(("encoder.", "decoder.")))
    out_opts = dict(opts or {})
    out_opts.update(encoder_type=model.encoder_type, input_nc=model.input_nc,
                    label_nc=out_opts.get("label_nc", 0 if model.input_nc == 3 else model.input_nc),
                    output_size=model.output_size, start_from_latent_avg=model.start_from_latent_avg,
                    learn_in_w=model.learn_in_w, train_decoder=model.train_decoder, n_styles=model.n_styles)
    ckpt: dict = {"state_dict": state, "opts": out_opts}
    if model.start_from_latent_avg:
        avg = model.latent_avg.detach().cpu().clone()
        ckpt["latent_avg"] = avg[:1] if model.learn_in_w else avg
    return ckpt
