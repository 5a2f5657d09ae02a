"""pSp on pictures: a face photo, a sketch or a segmentation map in, StyleGAN2 faces out.

    python -m facezoo.infer model=psp ckpt_path=CKPT source=face.jpg out=x.png
    python -m facezoo.infer model=psp weights=psp_ffhq_encode.pt source=face.jpg out=x.png save_latents=x.npy
    python -m facezoo.infer model=psp weights=psp_celebs_super_resolution.pt source=face.jpg out=x.png factor=8
    python -m facezoo.infer model=psp weights=psp_celebs_sketch_to_face.pt source=sketch.png out=x.png
    python -m facezoo.infer model=psp weights=psp_celebs_seg_to_face.pt source=mask.png out=x.png \\
        n_outputs=4 latent_mask=8-17 mix_alpha=0.5 couple=true

A facezoo checkpoint (``ckpt_path``) gives its pSp, its task and its input size; an official release (``weights``,
:func:`facezoo.methods.psp.official.load_official`) gives its task from ``opts["dataset_type"]`` and takes 256 px
inputs (a release written from a smaller facezoo pSp: its encoder's input size). ``task=`` overrides either (the
model's input channels must fit it). What the source is, by task (``eladrich/pixel2style2pixel:
configs/transforms_config.py``, ``datasets/inference_dataset.py``):

* ``encode``, ``frontalize``: a photo, FFHQ-aligned (:func:`facezoo.face.align.read_aligned`; ``align=center`` for
  pictures aligned already);
* ``superres``: the same, then degraded by ``factor`` (:func:`facezoo.data.psp.degrade`), as the official
  ``--resize_factors`` does to the test images;
* ``sketch2face``: a sketch picture, read as one grey channel and resized to the input size; in [0, 1] for an
  official release (its ``SketchToImageTransforms`` has no ``Normalize``), in [-1, 1] for a facezoo checkpoint
  (:func:`facezoo.data.psp.sketch`);
* ``seg2face``: a label map (a one-channel PNG of integer ids in ``label_order``, converted to CelebAMask-HQ ids,
  :func:`facezoo.face.labels.convert_labels`), resized with nearest neighbours and one-hot encoded.

The W+ codes are decoded with the decoder's fixed noise (the official ``inference.py``). ``n_outputs=K`` with
``latent_mask`` gives K multi-modal results (official ``scripts/style_mixing.py``): the styles in ``latent_mask`` are
taken from (or, with ``mix_alpha``, blended with) K random latents, z ~ N(0, I) from ``seed`` through the mapping
network. ``out`` is one picture: the outputs side by side, after the input picture with ``couple=true`` (official
``--couple_outputs``: a sketch in grey, a label map in colour, for super-resolution the aligned face and its
degraded copy). ``save_latents=x.npy`` keeps the W+ codes of the outputs, ``(K, n_styles, D)`` float32.

What differs from the official scripts: the noise is fixed for the multi-modal outputs too (the official ones
draw fresh noise there), label maps are resized with nearest neighbours (the official ``Resize`` is bilinear on the
ids), and one run takes one source.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from PIL import Image

from facezoo.utils import FacezooError, atomic_write

__all__ = ["DATASET_TASKS", "LoadedPSP", "PSPSource", "task_of", "load_psp", "parse_latent_mask",
           "read_sketch", "read_source", "synthesize", "run"]

log = logging.getLogger("facezoo.infer.psp")

#: The official ``--dataset_type`` of a release → facezoo's task.
DATASET_TASKS = {
    "ffhq_encode": "encode",
    "ffhq_frontalize": "frontalize",
    "celebs_sketch_to_face": "sketch2face",
    "celebs_seg_to_face": "seg2face",
    "celebs_super_resolution": "superres",
}

#: Side of the official releases' inputs (``transforms.Resize((256, 256))``); a release saved from a smaller facezoo
#: pSp has its encoder's ``input_size``.
OFFICIAL_INPUT_SIZE = 256

_USAGE = "python -m facezoo.infer model=psp ckpt_path=CKPT (or weights=psp_ffhq_encode.pt) source=face.jpg out=x.png"


@dataclass
class LoadedPSP:
    """What :func:`load_psp` loads.

    Attributes:
        psp: the :class:`~facezoo.methods.psp.networks.PSP`, in eval mode.
        task: its task (``cfg.task`` when given): one of :data:`facezoo.data.psp.TASKS`.
        input_size: the side its inputs are resized to (a checkpoint's ``image_size``, a release's encoder input
            size: 256).
        official: loaded from an official release (whose sketch inputs are in [0, 1], not [-1, 1]).
    """

    psp: torch.nn.Module
    task: str
    input_size: int
    official: bool


@dataclass
class PSPSource:
    """The encoder's input and what the coupled picture shows of it.

    Attributes:
        input: ``(1, C_in, S, S)``: an image in [-1, 1] (RGB or grey) or a one-hot map in {0, 1}.
        shown: the input as pictures, ``(S, S, 3)`` uint8 each (for super-resolution the aligned face and its
            degraded copy).
        labels: ``shown`` pictures to resize with nearest neighbours (label maps, pixelated inputs).
    """

    input: torch.Tensor
    shown: list[np.ndarray]
    labels: list[bool]


def task_of(dataset_type: str | None, input_nc: int) -> str:
    """The task of an official release: from its ``dataset_type``, else (other or no type) from its input channels.

    Example:
        >>> task_of("celebs_seg_to_face", 19), task_of("toonify", 3)
        ('seg2face', 'encode')
    """
    if dataset_type in DATASET_TASKS:
        return DATASET_TASKS[dataset_type]
    by_channels = {3: "encode", 1: "sketch2face", 19: "seg2face"}
    if input_nc not in by_channels:
        raise FacezooError(f"dataset_type {dataset_type!r} with {input_nc} input channels: no pSp task fits; "
                           f"give task=one of {', '.join(DATASET_TASKS.values())}")
    log.info("dataset_type %r: taken as task %s (%d input channels)", dataset_type, by_channels[input_nc], input_nc)
    return by_channels[input_nc]


def load_psp(cfg: DictConfig) -> LoadedPSP:
    """The :class:`~facezoo.methods.psp.networks.PSP` of ``ckpt_path`` or ``weights``, its task and input side.

    Args:
        cfg: ``ckpt_path`` (a facezoo pSp checkpoint) or ``weights`` (an official release), ``device``, and
            optionally ``task``.

    Returns:
        A :class:`LoadedPSP`; the model in eval mode on ``cfg.device``.

    Raises:
        FacezooError: neither or both files, an unreadable one, a checkpoint of another method, an unknown
            ``task``, or a ``task`` whose input channels the model does not take (one line).

    Example:
        >>> loaded = load_psp(OmegaConf.create({"weights": "psp_celebs_seg_to_face.pt"}))  # doctest: +SKIP
        >>> loaded.task, loaded.input_size, loaded.psp.n_styles  # doctest: +SKIP
        ('seg2face', 256, 18)
    """
    from facezoo.checkpoints import load_method
    from facezoo.data.psp import TASK_CHANNELS
    from facezoo.methods.psp.official import load_official

    model, psp = load_method(cfg, "psp", load_official, "psp_ffhq_encode.pt (an official pSp release)")
    if model is not None:
        psp, task, size = model.psp, str(model.hparams.task), int(model.hparams.image_size)
    else:
        opts = getattr(psp, "official_opts", {}) or {}
        task = task_of(opts.get("dataset_type"), psp.input_nc)
        size = int(getattr(psp.encoder, "input_size", OFFICIAL_INPUT_SIZE))   # 256 for the releases
    wanted = cfg.get("task")
    if wanted:
        if wanted not in TASK_CHANNELS:
            raise FacezooError(f"task={wanted}: use one of {', '.join(TASK_CHANNELS)}")
        if TASK_CHANNELS[wanted] != psp.input_nc:
            raise FacezooError(f"task={wanted} needs a model with {TASK_CHANNELS[wanted]} input channels; this one "
                               f"takes {psp.input_nc} (task {task})")
        task = str(wanted)
    return LoadedPSP(psp.eval(), task, size, model is None)


def parse_latent_mask(value, n_styles: int) -> list[int] | None:
    """The ``latent_mask=`` option as style indices: ``"8-17"``, ``"8,9,10"``, ``"0-2,8-17"``, ``8`` or a list.

    Args:
        value: the option (``None`` for no mixing).
        n_styles: the model's number of styles.

    Returns:
        Sorted distinct indices in ``[0, n_styles)``, or ``None``.

    Raises:
        FacezooError: a malformed value or an index out of range (one line).

    Example:
        >>> parse_latent_mask("8-13", 14), parse_latent_mask([0, "2"], 14), parse_latent_mask(None, 14)
        ([8, 9, 10, 11, 12, 13], [0, 2], None)
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null", "none")):
        return None
    items = value if isinstance(value, (Sequence, ListConfig)) and not isinstance(value, str) else [value]
    parts = [p.strip() for item in items for p in str(item).split(",")]
    indices: set[int] = set()
    for part in parts:
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
        if match is None:
            raise FacezooError(f"latent_mask={value}: use style indices like 8-17, '8,9,10' or [8,9,10]")
        first, last = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if last < first:
            raise FacezooError(f"latent_mask={value}: the range {part} is empty")
        indices.update(range(first, last + 1))
    bad = sorted(i for i in indices if i >= n_styles)
    if bad:
        raise FacezooError(f"latent_mask={value}: style {bad[0]} is out of range; this model has {n_styles} styles "
                           f"(0-{n_styles - 1})")
    return sorted(indices)


def read_sketch(path, size: int) -> np.ndarray:
    """A sketch picture as one grey channel resized to ``size`` × ``size`` (official ``Image.open().convert("L")``,
    ``Resize((256, 256))``).

    Returns:
        ``(size, size)`` uint8.

    Raises:
        FacezooError: unreadable or too small a picture (one line).
    """
    from facezoo.face.photo import read_photo, resize

    grey = np.asarray(Image.fromarray(read_photo(path, min_side=16)).convert("L"))
    return resize(grey, int(size), "bilinear")


def read_source(cfg: DictConfig, task: str, size: int, official: bool = False) -> PSPSource:
    """The encoder input for ``task`` from ``cfg.source`` (see the module docstring).

    Args:
        cfg: ``source`` and the options of its task (``align``, ``detector``, ``factor``, ``label_order``).
        task: one of :data:`facezoo.data.psp.TASKS`.
        size: the input side.
        official: the model is an official release: a sketch goes in as [0, 1] (the official
            ``SketchToImageTransforms`` has no ``Normalize``), not facezoo's [-1, 1].

    Raises:
        FacezooError: unreadable source, no face, bad ``factor`` or label ids (one line).
    """
    from facezoo.face.labels import colorize_labels
    from facezoo.face.photo import image_to_tensor, resize, tensor_to_uint8

    if task in ("encode", "frontalize", "superres"):
        from facezoo.face.align import read_aligned

        aligned = read_aligned(cfg.source, size, str(cfg.get("align", "ffhq")), cfg.get("detector", "auto"),
                               cfg.get("detector_weights"), cfg.get("device", "cpu"))
        x = image_to_tensor(aligned)
        if task != "superres":
            return PSPSource(x, [aligned], [False])
        from facezoo.data.psp import degrade

        factor = _factor(cfg)
        if factor > size:
            raise FacezooError(f"factor={factor}: larger than the {size} px input")
        low = degrade(x, factor)
        return PSPSource(low, [aligned, tensor_to_uint8(low)], [False, True])
    if task == "sketch2face":
        grey = read_sketch(cfg.source, size)
        x = torch.from_numpy(grey.astype(np.float32) / 255.0)[None, None]
        return PSPSource(x if official else x * 2 - 1, [np.repeat(grey[..., None], 3, axis=2)], [False])
    if task == "seg2face":
        from facezoo.data.psp import one_hot_labels, read_label_map

        ids = resize(read_label_map(cfg.source, str(cfg.get("label_order", "celebamask_hq"))), size, "nearest")
        mask = torch.from_numpy(ids.astype(np.int64))[None]
        return PSPSource(one_hot_labels(mask, 19), [tensor_to_uint8(colorize_labels(mask))], [True])
    raise FacezooError(f"task={task}: use one of encode, frontalize, superres, sketch2face, seg2face")


def _factor(cfg: DictConfig) -> int:
    factor = cfg.get("factor", 4)
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise FacezooError(f"factor={factor}: the super-resolution factor must be a positive integer (1, 2, 4, 8...)")
    return factor


@torch.no_grad()
def synthesize(psp, x: torch.Tensor, n_outputs: int = 1, latent_mask: Sequence[int] | None = None,
               mix_alpha: float | None = None, seed: int = 0,
               resize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode one input and decode ``n_outputs`` results (official ``inference.py`` / ``style_mixing.py``).

    Args:
        psp: a :class:`~facezoo.methods.psp.networks.PSP`.
        x: ``(1, C_in, S, S)``.
        n_outputs: results; more than one needs ``latent_mask``.
        latent_mask: styles taken from random latents (``None``: the plain reconstruction).
        mix_alpha: blend factor for those styles (``None`` replaces them).
        seed: seed of the random z.
        resize: pool the outputs to ``face_pool``'s size.

    Returns:
        ``(images (K, 3, S', S') in [-1, 1], latents (K, n_styles, D))``, decoded with the decoder's fixed noise.
    """
    if n_outputs > 1 and latent_mask is None:
        raise FacezooError(f"n_outputs={n_outputs} needs latent_mask (e.g. latent_mask=8-17): without it every output "
                           "is the same reconstruction")
    codes = psp.encode(x)
    if latent_mask is None:
        latents = codes
    else:
        inject = psp.random_latents(n_outputs, torch.Generator().manual_seed(int(seed)))
        latents = psp.mix(codes.expand(n_outputs, -1, -1), latent_mask, inject, mix_alpha)
    images = psp.decode(latents, randomize_noise=False, resize=resize)
    return images.clamp(-1, 1), latents


def _check_options(cfg: DictConfig) -> tuple[int, float | None]:
    """The options that need no model, checked before anything is loaded."""
    from facezoo.data.psp import TASKS
    from facezoo.face.align import ALIGNMENTS
    from facezoo.face.labels import LABEL_MAPS
    from facezoo.face.photo import check_output_path
    from facezoo.utils import check_writable

    for key in ("source", "out"):
        if not cfg.get(key):
            raise FacezooError(f"{key}= is required: {_USAGE}")
    check_output_path(cfg.out)
    if cfg.get("save_latents"):
        if Path(cfg.save_latents).suffix.lower() != ".npy":
            raise FacezooError(f"save_latents={cfg.save_latents}: the latents are written as a .npy file")
        check_writable(cfg.save_latents, "save_latents")
    n_outputs = cfg.get("n_outputs", 1)
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, int) or n_outputs < 1:
        raise FacezooError(f"n_outputs={n_outputs}: must be a positive integer")
    has_mask = parse_latent_mask(cfg.get("latent_mask"), 10**9) is not None
    if n_outputs > 1 and not has_mask:
        raise FacezooError(f"n_outputs={n_outputs} needs latent_mask (e.g. latent_mask=8-17): multi-modal outputs mix "
                           "random styles into those style indices")
    alpha = cfg.get("mix_alpha")
    if alpha is not None:
        if not has_mask:
            raise FacezooError(f"mix_alpha={alpha} needs latent_mask (the styles it blends)")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1:
            raise FacezooError(f"mix_alpha={alpha}: must be a number in [0, 1]")
        alpha = float(alpha)
    if str(cfg.get("align", "ffhq")) not in ALIGNMENTS:
        raise FacezooError(f"align={cfg.get('align')}: use one of {', '.join(ALIGNMENTS)}")
    if str(cfg.get("label_order", "celebamask_hq")) not in LABEL_MAPS:
        raise FacezooError(f"label_order={cfg.get('label_order')}: use one of {', '.join(LABEL_MAPS)}")
    if cfg.get("task") is not None and cfg.task not in TASKS:
        raise FacezooError(f"task={cfg.task}: use one of {', '.join(TASKS)}")
    if cfg.get("task") == "superres" or cfg.get("factor") is not None:
        _factor(cfg)
    return n_outputs, alpha


def _picture(source: PSPSource, images: torch.Tensor, couple: bool) -> np.ndarray:
    """``[input pictures |] output_1 | ... | output_K`` as one uint8 row, every tile at the outputs' size."""
    from facezoo.face.photo import resize, tensor_to_uint8

    side = images.shape[-1]
    tiles = [tensor_to_uint8(image) for image in images]
    if couple:
        shown = [im if im.shape[0] == side else resize(im, side, "nearest" if labels else "lanczos")
                 for im, labels in zip(source.shown, source.labels)]
        tiles = shown + tiles
    return np.concatenate(tiles, axis=1)


def run(cfg: DictConfig) -> np.ndarray:
    """``python -m facezoo.infer model=psp ...``: read, encode, decode, write ``out`` (and ``save_latents``).

    The options and the output paths are checked before any file is read or network loaded; the outputs are
    written at the end, atomically; a failure leaves neither.

    Returns:
        The picture written, ``(S, W, 3)`` uint8.
    """
    from facezoo.face.photo import write_photo

    n_outputs, alpha = _check_options(cfg)
    loaded = load_psp(cfg)
    psp, task = loaded.psp, loaded.task
    if cfg.get("fast"):
        psp.fast_path()
    latent_mask = parse_latent_mask(cfg.get("latent_mask"), psp.n_styles)
    source = read_source(cfg, task, loaded.input_size, loaded.official)
    device = psp.latent_avg.device
    images, latents = synthesize(psp, source.input.to(device), n_outputs, latent_mask, alpha,
                                 int(cfg.get("seed", 0)), bool(cfg.get("resize_outputs", False)))
    picture = _picture(source, images.cpu(), bool(cfg.get("couple", False)))
    log.info("pSp %s: %d output(s) of %d px from %s", task, n_outputs, images.shape[-1], cfg.source)
    path = write_photo(cfg.out, picture)
    if cfg.get("save_latents"):
        codes = latents.detach().cpu().numpy().astype(np.float32)
        try:
            atomic_write(cfg.save_latents, lambda f: np.save(f, codes))
        except BaseException:
            path.unlink(missing_ok=True)        # both files or neither
            raise
        log.info("wrote %s %s", cfg.save_latents, codes.shape)
    log.info("wrote %s (%dx%d)", path, picture.shape[1], picture.shape[0])
    return picture
