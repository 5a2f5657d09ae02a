"""MaskGAN on photos: edit a face by redrawing its semantic mask; the result keeps the photo's resolution.

    python -m facezoo.infer model=maskgan ckpt_path=CKPT source=face.jpg save_mask=face_mask.png   # the map to edit
    python -m facezoo.infer model=maskgan ckpt_path=CKPT source=face.jpg mask=edited.png out=x.png
    python -m facezoo.infer model=maskgan weights=latest_net_G.pth source=face.jpg mask=edited.png out=x.png
    python -m facezoo.infer model=maskgan ckpt_path=CKPT source=face.jpg mask=edited.png reference=other.jpg \\
        out=x.png                                                                          # style copy

What is done, in order:

1. **Align.** The source photo's largest face is cropped to the network's side ``S`` (``align=ffhq``: the FFHQ crop
   of its 68 landmarks, :func:`facezoo.face.align.ffhq_quad`, the alignment family of CelebA-HQ whose faces
   CelebAMask-HQ labels; ``align=center``: shorter side resized, central square, for pictures aligned already). Both
   are one affine map ``M`` from photo to crop pixels, kept for step 5. ``S`` is the checkpoint's ``image_size``, 512
   for the demo's ``latest_net_G.pth`` (``weights=``), or ``size=``.
2. **The source's own mask** (CelebAMask-HQ ids, ``S`` × ``S``): ``source_mask=FILE`` when given (a label map of the
   aligned face); else facezoo's BiSeNet (:class:`facezoo.face.parsing.FaceParser`) on the crop when its weights
   ``79999_iter.pth`` resolve (``parser=auto``; ``parser=bisenet`` requires them); else polygons through the
   landmarks (:func:`facezoo.face.parsing.parsing_from_landmarks`, ``parser=landmarks`` forces it). One log line
   says which.
3. **The edited mask** ``mask=FILE``: a square one-channel label map of the aligned face (ids in ``mask_order``:
   ``celebamask_hq``, or ``face_parsing_pytorch`` / ``mt`` converted with :func:`facezoo.face.labels.convert_labels`),
   resized with nearest neighbours to ``S``. ``save_mask=FILE.png`` writes the source's mask of step 2 as that file
   (a palette PNG whose indices are the ids and whose colours are :data:`~facezoo.face.labels.CELEBAMASK_HQ_COLORS`):
   edit it, keeping the palette, and give it back as ``mask=``.
4. **Render.** ``G(edited mask; style mask, style image)`` (the demo's ``inference``): the style is the aligned source
   and its mask, or with ``reference=OTHER`` the aligned reference and its own mask (``reference_mask=FILE``, else
   parsed as in step 2): a style copy.
5. **Paste back.** The region ``R`` is where the edited mask differs from the source's mask (``region=edited``, the
   default without ``reference=``), every pixel that is not background in either mask (``region=face``, the default
   with ``reference=``), or the whole crop (``region=crop``). With ``d`` the distance in crop pixels to ``R``, the
   blend weight is ``α = clip((dilate + feather − d) / feather, 0, 1)``: 1 within ``dilate`` pixels of ``R``, falling
   linearly to 0 at ``dilate + feather`` (``feather=0``: a hard edge). ``dilate`` and ``feather`` are given in pixels
   of a 512 px face (the demo's size) and scaled with the network's side (:func:`paste_margins`), so that the band
   covers the same share of the face at any size; "crop pixels" below are the scaled values. ``α`` and the
   rendering (edge-replicated) are warped into the photo by ``M⁻¹`` (bilinear), and
   ``out = round(α·rendering + (1 − α)·photo)``: every photo pixel where the warped ``α`` is 0 — every one that lies,
   mapped by ``M``, farther than ``dilate + feather + √2`` crop pixels from ``R`` (the bilinear support) — keeps its
   value exactly. No detail of the source is added back
   into ``R`` (the edit is new content there).

The options are checked before anything is read or loaded, the photos, the generator (whose side the label maps
must fit), the label maps and the faces before anything is rendered; ``out`` and ``save_mask`` are written last and
atomically, so a failure writes nothing and leaves an existing file as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor

from facezoo.face.labels import CELEBAMASK_HQ_COLORS, LABEL_MAPS
from facezoo.utils import FacezooError

__all__ = ["PARSERS", "REGIONS", "OFFICIAL_SIZE", "AlignedFace", "alignment_matrix", "align_face", "read_mask",
           "resize_mask", "face_mask", "edit_region", "blend_weight", "paste_edit", "render", "edit_photo",
           "load_parser", "load_generator", "paste_margins", "paste_on_source", "predict", "run"]

log = logging.getLogger("facezoo.infer.maskgan")

#: The ``parser=`` choices: BiSeNet when its weights resolve, else landmarks; BiSeNet only; landmarks only.
PARSERS = ("auto", "bisenet", "landmarks")
#: The ``region=`` choices (see the module docstring, step 5).
REGIONS = ("auto", "edited", "face", "crop")
#: The side of the demo's released generator (``label2face_512p``).
OFFICIAL_SIZE = 512
#: Smallest side of a label-map file.
MIN_MASK_SIDE = 16

_BISENET = "face_parsing_bisenet"
_USAGE = ("python -m facezoo.infer model=maskgan ckpt_path=CKPT (or weights=latest_net_G.pth) source=face.jpg "
          "mask=edited.png out=x.png")

Generator = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass
class AlignedFace:
    """A photo's face cropped for the network, and how to put it back.

    Attributes:
        image: ``(S, S, 3)`` uint8, the aligned crop.
        matrix: ``(2, 3)`` float64 affine map from photo pixels to crop pixels (pixel centres at integers).
        landmarks: ``(68, 2)`` float64 (x, y) crop pixels, or ``None`` when no face was detected (``align=center``
            without a detector).
    """

    image: np.ndarray
    matrix: np.ndarray
    landmarks: np.ndarray | None


# ----------------------------------------------------------------------------------------- alignment
def alignment_matrix(image_shape: tuple[int, ...], size: int, align: str = "ffhq",
                     landmarks: np.ndarray | None = None) -> np.ndarray:
    """The ``(2, 3)`` photo → crop map of :func:`facezoo.face.align.align_photo`'s two crops.

    * ``"ffhq"``: the similarity that takes :func:`~facezoo.face.align.ffhq_quad` of ``landmarks`` to the corners of
      the ``size`` square (as :func:`~facezoo.face.align.align_ffhq`);
    * ``"center"``: the scaling and shift of :func:`~facezoo.face.photo.center_crop` (Pillow's resize maps pixel
      centres as ``x' = (x + ½)·s − ½``).

    Args:
        image_shape: ``(H, W[, C])`` of the photo.
        size: crop side ``S``.
        align: ``"ffhq"`` or ``"center"``.
        landmarks: ``(68, 2)`` photo pixels (``"ffhq"`` only).

    Returns:
        ``(2, 3)`` float64.

    Example:
        >>> alignment_matrix((64, 96, 3), 32, "center").round(3).tolist()
        [[0.5, 0.0, -8.25], [0.0, 0.5, -0.25]]
    """
    from facezoo.face.align import ffhq_quad, umeyama

    if align == "ffhq":
        if landmarks is None:
            raise ValueError("align='ffhq' needs the face's 68 landmarks")
        corners = np.array([[0, 0], [0, size], [size, size], [size, 0]], np.float64)
        return umeyama(ffhq_quad(landmarks), corners)
    if align != "center":
        raise FacezooError(f"align={align!r}: use one of ffhq, center")
    h, w = image_shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    sx, sy = new_w / w, new_h / h
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return np.array([[sx, 0.0, 0.5 * sx - 0.5 - left], [0.0, sy, 0.5 * sy - 0.5 - top]])


def align_face(photo: np.ndarray, size: int, align: str = "ffhq", face=None) -> AlignedFace:
    """Crop ``photo`` to its face: the network input and the map back.

    Args:
        photo: ``(H, W, 3)`` uint8 RGB.
        size: crop side ``S``.
        align: ``"ffhq"`` (needs ``face``) or ``"center"`` (:func:`facezoo.face.photo.center_crop`, pixel for pixel).
        face: the :class:`~facezoo.face.detect.Face` of ``photo`` (``None``: no landmarks, ``"center"`` only).

    Returns:
        An :class:`AlignedFace`.
    """
    from facezoo.face.align import transform_points, warp_affine
    from facezoo.face.photo import center_crop

    points = None if face is None else np.asarray(face.landmarks, np.float64)
    matrix = alignment_matrix(photo.shape, size, align, points)
    image = center_crop(photo, size) if align == "center" else warp_affine(photo, matrix, size)
    return AlignedFace(image, matrix, None if points is None else transform_points(points, matrix))


# ----------------------------------------------------------------------------------------------- masks
def read_mask(path, size: int | None = None, label_order: str = "celebamask_hq", option: str = "mask") -> Tensor:
    """A label-map file of an aligned face, as CelebAMask-HQ ids at the network's side.

    Args:
        path: a one-channel picture of integer ids (PNG ``L``, palette ``P`` whose indices are the ids, 16-bit, or
            grey RGB; :func:`facezoo.data.psp.read_label_map`), square.
        size: the network's side ``S``; another square side is resized with nearest neighbours (``None``: as read).
        label_order: the ids' scheme (:data:`facezoo.face.labels.LABEL_MAPS`).
        option: how the message names the file's option.

    Returns:
        ``(S, S)`` int64 CelebAMask-HQ ids.

    Raises:
        FacezooError: missing or unreadable file, a colour picture, an id outside ``label_order``, or a map that is
            not square or smaller than 16 pixels (one line naming the file and the size it needs).
    """
    from facezoo.data.psp import read_label_map

    ids = read_label_map(path, label_order)
    h, w = ids.shape
    if h != w or h < MIN_MASK_SIDE:
        need = f"{size}x{size} for this model" if size else f"{OFFICIAL_SIZE}x{OFFICIAL_SIZE} for the demo's model"
        raise FacezooError(f"{path}: {option}= is a {w}x{h} label map; it must be a square map of the aligned face, "
                           f"{need} (another square side of at least {MIN_MASK_SIDE} is resized with nearest "
                           "neighbours)")
    return resize_mask(torch.from_numpy(ids.astype(np.int64)), size)


def resize_mask(mask: Tensor, size: int | None) -> Tensor:
    """A square ``(s, s)`` label map at ``size`` × ``size`` (nearest neighbours; ``None`` or ``s``: unchanged)."""
    from facezoo.face.photo import resize

    if size is None or mask.shape[-1] == size:
        return mask
    return torch.from_numpy(resize(mask.numpy().astype(np.uint8), int(size), "nearest").astype(np.int64))


def face_mask(face: AlignedFace, parser=None, given: Tensor | None = None, name: str = "source") -> Tensor:
    """The CelebAMask-HQ label map of an aligned face: ``given``, else ``parser``'s, else drawn from its landmarks.

    Args:
        face: the aligned face.
        parser: a :class:`~facezoo.face.parsing.FaceParser` or ``None``.
        given: ``(S, S)`` ids read from a file (:func:`read_mask`), used as they are.
        name: how the log line calls the face.

    Returns:
        ``(S, S)`` int64 ids.

    Raises:
        FacezooError: no parser, no file and no landmarks (``align=center`` with no face found).
    """
    from facezoo.face.parsing import parsing_from_landmarks

    size = face.image.shape[0]
    if given is not None:
        return given
    if parser is not None:
        return parser.parse(face.image, out_size=size)
    if face.landmarks is None:
        raise FacezooError(f"{name}: no face found to draw its mask from; give {name}_mask=FILE")
    return parsing_from_landmarks(face.landmarks, size)


# ------------------------------------------------------------------------------------------- paste back
def edit_region(source_mask: Tensor, edited_mask: Tensor, region: str = "edited") -> np.ndarray:
    """The pixels of the aligned face that the edit may change (before growing and feathering).

    Args:
        source_mask, edited_mask: ``(S, S)`` CelebAMask-HQ ids.
        region: ``"edited"`` (the two masks differ), ``"face"`` (not background in either) or ``"crop"`` (all).

    Returns:
        ``(S, S)`` bool.
    """
    source, edited = np.asarray(source_mask), np.asarray(edited_mask)
    if region == "edited":
        return source != edited
    if region == "face":
        return (source != 0) | (edited != 0)
    if region == "crop":
        return np.ones(source.shape, bool)
    raise FacezooError(f"region={region}: use one of {', '.join(REGIONS)}")


def blend_weight(region: np.ndarray, dilate: float = 3, feather: float = 4) -> np.ndarray:
    """``α = clip((dilate + feather − d) / feather, 0, 1)`` with ``d`` the Euclidean distance (pixels) to ``region``.

    Args:
        region: ``(S, S)`` bool.
        dilate: pixels around ``region`` that get ``α = 1``.
        feather: width of the linear fall to 0 (0: ``α = [d ≤ dilate]``).

    Returns:
        ``(S, S)`` float32 in [0, 1]; exactly 0 beyond ``dilate + feather`` (all 0 for an empty region).

    Example:
        >>> row = np.zeros((1, 9), bool); row[0, 0] = True
        >>> blend_weight(row, 2, 4)[0].round(2).tolist()
        [1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0]
    """
    from scipy.ndimage import distance_transform_edt

    if not region.any():
        return np.zeros(region.shape, np.float32)
    distance = distance_transform_edt(~region)
    if feather <= 0:
        return (distance <= dilate).astype(np.float32)
    return np.clip((dilate + feather - distance) / feather, 0.0, 1.0).astype(np.float32)


def paste_edit(photo: np.ndarray, rendering: np.ndarray, alpha: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Blend an aligned rendering into the photo with the weight ``alpha`` (both in crop pixels).

    The rendering, padded by 2 edge-replicated pixels (so that the bilinear warp never mixes in a fill colour), and
    ``alpha`` (0 outside the crop) are warped by ``matrix⁻¹``; ``out = round(α·rendering + (1 − α)·photo)`` where the
    warped ``α > 0``, the photo's own pixels elsewhere.

    Args:
        photo: ``(H, W, 3)`` uint8.
        rendering: ``(S, S, 3)`` uint8, the network's output.
        alpha: ``(S, S)`` float in [0, 1] (:func:`blend_weight`).
        matrix: ``(2, 3)`` photo → crop map (:class:`AlignedFace`).

    Returns:
        ``(H, W, 3)`` uint8.
    """
    from facezoo.face.align import invert_affine, warp_affine

    h, w = photo.shape[:2]
    pad = 2
    padded = np.pad(rendering, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    shifted = np.array(matrix, np.float64)
    shifted[:, 2] += pad
    back = warp_affine(padded, invert_affine(shifted), (h, w)).astype(np.float64)
    weight = warp_affine(np.asarray(alpha, np.float32), invert_affine(matrix), (h, w)).astype(np.float64)
    weight = np.clip(weight, 0.0, 1.0)
    out = photo.copy()
    inside = weight > 0
    a = weight[inside][:, None]
    out[inside] = np.clip(np.round(a * back[inside] + (1 - a) * photo[inside]), 0, 255).astype(np.uint8)
    return out


# ------------------------------------------------------------------------------------------------- render
@torch.inference_mode()
def render(generator: Generator, mask: Tensor, style_mask: Tensor, style_image: np.ndarray) -> np.ndarray:
    """``G(mask; style_mask, style_image)`` for one face.

    Args:
        generator: a :class:`~facezoo.methods.maskgan.networks.DenseMappingNetwork` (or any callable of the same
            signature) in eval mode.
        mask: ``(S, S)`` CelebAMask-HQ ids to render.
        style_mask, style_image: ``(S, S)`` ids and ``(S, S, 3)`` uint8 of the face whose style is used.

    Returns:
        ``(S, S, 3)`` uint8.
    """
    from facezoo.face.photo import image_to_tensor, tensor_to_uint8

    device = next(generator.parameters()).device if isinstance(generator, torch.nn.Module) else torch.device("cpu")
    out = generator(mask[None].to(device), style_mask[None].to(device), image_to_tensor(style_image).to(device))
    return tensor_to_uint8(out[0].float().cpu())


def edit_photo(photo: np.ndarray, source: AlignedFace, source_mask: Tensor, edited_mask: Tensor,
               generator: Generator, style: tuple[AlignedFace, Tensor] | None = None, region: str = "auto",
               dilate: float = 3, feather: float = 4) -> np.ndarray:
    """Render the edited mask and paste it into the photo (steps 4 and 5 of the module docstring).

    Args:
        photo: ``(H, W, 3)`` uint8, the source photo.
        source: its aligned face (:func:`align_face`).
        source_mask: ``(S, S)`` ids of ``source`` (:func:`face_mask`).
        edited_mask: ``(S, S)`` ids to render (:func:`read_mask`).
        generator: the dense mapping network.
        style: ``(aligned reference, its mask)`` for a style copy; ``None``: the source's style.
        region: ``"auto"`` (``"edited"``, or ``"face"`` with ``style``), ``"edited"``, ``"face"`` or ``"crop"``.
        dilate, feather: the blend weight (:func:`blend_weight`), in crop pixels.

    Returns:
        ``(H, W, 3)`` uint8; equal to ``photo`` wherever the blend weight is 0.
    """
    size = source.image.shape[0]
    if edited_mask.shape != (size, size) or source_mask.shape != (size, size):
        raise ValueError(f"masks must be {size}x{size}, got {tuple(edited_mask.shape)} and {tuple(source_mask.shape)}")
    if region == "auto":
        region = "edited" if style is None else "face"
    area = edit_region(source_mask, edited_mask, region)
    if not area.any():
        log.warning("the edited mask equals the source's (region=%s is empty): the photo is left as it is", region)
        return photo.copy()
    style_face, style_mask = (source, source_mask) if style is None else style
    rendering = render(generator, edited_mask, style_mask, style_face.image)
    return paste_edit(photo, rendering, blend_weight(area, dilate, feather), source.matrix)


# ------------------------------------------------------------------------------------------------ loading
def load_parser(cfg: DictConfig):
    """The face parser ``parser=`` asks for, or ``None`` (masks drawn from the landmarks).

    * ``bisenet``: BiSeNet from ``parser_weights`` (the registry name, searched in the facezoo cache, or a path);
    * ``landmarks``: none;
    * ``auto``: BiSeNet when ``parser_weights`` is the registry name and ``79999_iter.pth`` is in the cache, none when
      it is not; an explicit path must exist.

    Returns:
        ``(parser or None, how)``: ``how`` is the phrase the log line uses.

    Raises:
        WeightsNotFoundError: BiSeNet asked for and its file is missing (one line naming ``79999_iter.pth``).
    """
    from facezoo.face.parsing import FaceParser, load_bisenet
    from facezoo.nets.weights import WeightsNotFoundError, cache_dir, resolve_weights

    choice = _choice(cfg, "parser", PARSERS)
    weights = cfg.get("parser_weights") or _BISENET
    if choice == "landmarks":
        return None, "drawn from the 68 landmarks (parser=landmarks)"
    if choice == "auto" and weights == _BISENET:
        try:
            weights = resolve_weights(_BISENET, path_arg="parser_weights")
        except WeightsNotFoundError:
            return None, (f"drawn from the 68 landmarks (BiSeNet's 79999_iter.pth is not in {cache_dir()}; put it "
                          "there or pass parser_weights=PATH to parse with it)")
    try:
        net = load_bisenet(weights, cfg.get("device", "cpu"))
    except WeightsNotFoundError as err:
        raise WeightsNotFoundError(f"{err}; or use parser=landmarks") from None
    return FaceParser(net), f"BiSeNet ({weights})"


def load_generator(cfg: DictConfig) -> tuple[torch.nn.Module, int]:
    """The dense mapping network of ``ckpt_path`` (a facezoo MaskGAN checkpoint) or ``weights`` (the demo's
    ``latest_net_G.pth``, :func:`facezoo.methods.maskgan.official.load_official`), and its side ``S``.

    ``S`` is ``size=`` when given, else the checkpoint's ``image_size`` or :data:`OFFICIAL_SIZE`. ``fast=true``:
    the network's bf16 fast path (:meth:`~facezoo.methods.maskgan.networks.DenseMappingNetwork.fast_path`).
    ``weights_arch=`` passes architecture arguments of :class:`~facezoo.methods.maskgan.networks.DenseMappingNetwork`
    for a file that is not of the demo's size.

    Raises:
        FacezooError: neither or both files, an unreadable one, one of another method or a stage-1 MaskVAE, or a size
            the network cannot render (one line).
    """
    from facezoo.checkpoints import load_method
    from facezoo.methods.maskgan.module import MaskGAN
    from facezoo.methods.maskgan.official import load_official

    arch = dict(cfg.get("weights_arch") or {})

    def official(path):
        try:
            return load_official(path, "G", **arch)
        except (FacezooError, ValueError) as err:       # keys, shapes or overrides of another architecture
            if "architecture" not in str(err):
                raise
            raise FacezooError(f"{err}; give the file's architecture as weights_arch=, the demo's is {{ngf: 64, "
                               "n_downsample: 4, n_blocks: 4, label_ngf: 16, style_ngf: 16}") from None

    model, generator = load_method(cfg, "maskgan", official, "latest_net_G.pth (the MaskGAN demo's generator)")
    if model is not None:
        if not isinstance(model, MaskGAN):
            raise FacezooError(f"{cfg.ckpt_path}: a {type(model).__name__} (stage-1) checkpoint; photo editing renders "
                               "with the stage-2 dense mapping network: a model=maskgan checkpoint")
        generator, size = model.generator, int(model.image_size)
    else:
        size = OFFICIAL_SIZE
    size = int(cfg.get("size") or size)
    unit, low = 2**generator.n_downsample, 2**generator.style_downsample
    if size % unit or size < low:
        raise FacezooError(f"size={size}: this generator renders sides divisible by {unit} and at least {low}")
    if cfg.get("fast"):
        generator.fast_path()
    return generator.eval(), size


# ------------------------------------------------------------------------------------------------------ run
def _choice(cfg: DictConfig, key: str, choices: tuple[str, ...]) -> str:
    value = str(cfg.get(key) or choices[0]).strip().lower()
    if value not in choices:
        raise FacezooError(f"{key}={cfg.get(key)}: choose one of {', '.join(choices)}")
    return value


def _check_options(cfg: DictConfig) -> None:
    """Everything that needs no file and no network, checked first."""
    from facezoo.face.align import ALIGNMENTS
    from facezoo.face.photo import check_output_path
    from facezoo.utils import check_writable

    if not cfg.get("source"):
        raise FacezooError(f"source= is required: {_USAGE}")
    if not cfg.get("mask") and not cfg.get("save_mask"):
        raise FacezooError(f"mask= is required (the edited label map; save_mask=FILE.png writes the source's to "
                           f"edit): {_USAGE}")
    if bool(cfg.get("mask")) != bool(cfg.get("out")):
        missing = "out" if cfg.get("mask") else "mask"
        raise FacezooError(f"{missing}= is required with {'mask' if missing == 'out' else 'out'}=: {_USAGE}")
    if cfg.get("out"):
        check_output_path(cfg.out)
    if cfg.get("save_mask"):
        if Path(cfg.save_mask).suffix.lower() != ".png":
            raise FacezooError(f"save_mask={cfg.save_mask}: the label map is written as a .png file")
        check_writable(cfg.save_mask, "save_mask")
        if cfg.get("out") and Path(cfg.save_mask).resolve() == Path(cfg.out).resolve():
            raise FacezooError(f"save_mask={cfg.save_mask} is the same file as out=")
    if str(cfg.get("align", "ffhq")) not in ALIGNMENTS:
        raise FacezooError(f"align={cfg.get('align')}: use one of {', '.join(ALIGNMENTS)}")
    if str(cfg.get("mask_order", "celebamask_hq")) not in LABEL_MAPS:
        raise FacezooError(f"mask_order={cfg.get('mask_order')}: use one of {', '.join(LABEL_MAPS)}")
    _choice(cfg, "parser", PARSERS)
    _choice(cfg, "region", REGIONS)
    for key in ("dilate", "feather"):
        value = cfg.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise FacezooError(f"{key}={value}: must be a number of pixels >= 0")
    if cfg.get("reference_mask") and not cfg.get("reference"):
        raise FacezooError("reference_mask= needs reference= (the photo it labels)")


def _write_label_map(path, mask: Tensor) -> Path:
    """``mask`` as a palette PNG: the indices are the CelebAMask-HQ ids, the colours the facezoo palette."""
    from PIL import Image

    from facezoo.utils import atomic_write

    image = Image.fromarray(mask.numpy().astype(np.uint8), mode="P")
    image.putpalette([c for color in CELEBAMASK_HQ_COLORS for c in color])
    return atomic_write(path, lambda f: image.save(f, format="PNG"))


def paste_margins(size: int, dilate: float = 3, feather: float = 4) -> tuple[float, float]:
    """The paste-back margins in pixels of a ``size`` px aligned face, from margins given for the demo's 512 px.

    A 7-pixel band is 1.4% of a 512 px face but 11% of a 64 px one, where it replaced exact source pixels by blurry
    rendered ones over a large share of the face (docs/results.md, MaskGAN).

    Example:
        >>> paste_margins(64)
        (0.375, 0.5)
    """
    scale = size / OFFICIAL_SIZE
    return dilate * scale, feather * scale


def paste_on_source(batch, rendering: Tensor, dilate: float | None = None, feather: float | None = None) -> Tensor:
    """Step 5 on aligned tensors: each rendering kept only near where its edited mask differs from the source's.

    ``α`` is :func:`blend_weight` of :func:`edit_region` (``region="edited"``) per sample, and the result is
    ``α·rendering + (1 − α)·image``: what :func:`run` writes into a photo, before the warp back.

    Args:
        batch: ``image`` ``(B, 3, S, S)`` in [-1, 1], ``mask`` ``(B, S, S)`` and ``target_mask`` ``(B, S, S)`` ids
            (a batch without ``target_mask`` edits nothing: the image comes back).
        rendering: ``(B, 3, S, S)``, the edited mask rendered.
        dilate, feather: in pixels of the ``S`` px face; ``None``: the photo pipeline's defaults scaled to ``S``
            (:func:`paste_margins`).

    Returns:
        ``(B, 3, S, S)``.
    """
    image, mask = batch["image"], batch["mask"]
    edited = batch.get("target_mask", mask)
    default_dilate, default_feather = paste_margins(image.shape[-1])
    dilate = default_dilate if dilate is None else dilate
    feather = default_feather if feather is None else feather
    alpha = np.stack([blend_weight(edit_region(m.cpu(), e.cpu()), dilate, feather) for m, e in zip(mask, edited)])
    alpha = torch.from_numpy(alpha).to(image)[:, None]
    return alpha * rendering + (1 - alpha) * image


def predict(model, batch) -> Tensor:
    """MaskGAN's output for a mask-editing batch as the photo pipeline makes it: the edited mask rendered with the
    source's style (``model.predict_batch``), pasted on the source near the edit (:func:`paste_on_source`, the
    pipeline's default margins scaled to the face's side). ``facezoo.evaluate`` uses it for every batch."""
    return paste_on_source(batch, model.predict_batch(batch))


def run(cfg: DictConfig) -> np.ndarray | None:
    """``python -m facezoo.infer model=maskgan ...``: align, mask, render, paste back, write ``out``.

    Returns:
        The edited photo, ``(H, W, 3)`` uint8 (``None`` when only ``save_mask`` was asked for).
    """
    from facezoo.face.photo import read_photo, write_photo

    _check_options(cfg)
    align, order = str(cfg.get("align", "ffhq")), str(cfg.get("mask_order", "celebamask_hq"))
    photos = {"source": read_photo(cfg.source)}
    if cfg.get("reference"):
        photos["reference"] = read_photo(cfg.reference)
    generator, size = load_generator(cfg)
    files = {key: read_mask(cfg[key], size, order, key) for key in ("mask", "source_mask", "reference_mask")
             if cfg.get(key)}
    unlabelled = [name for name in photos if f"{name}_mask" not in files]
    parser, how = load_parser(cfg) if unlabelled else (None, "")
    faces = {}
    wanted = [name for name in photos if align == "ffhq" or (parser is None and name in unlabelled)]
    if wanted:
        from facezoo.face.detect import get_detector, largest_face

        detector = get_detector(cfg.get("detector", "auto"), cfg.get("detector_weights"), cfg.get("device", "cpu"),
                                path_arg="detector_weights")
        for name in wanted:
            faces[name] = largest_face(detector.detect(photos[name]), str(cfg[name]))    # "<path>: no face found"

    aligned, masks = {}, {}
    for name, photo in photos.items():
        aligned[name] = align_face(photo, size, align, faces.get(name))
        given = files.get(f"{name}_mask")
        masks[name] = face_mask(aligned[name], parser, given, name)
        log.info("%s mask: %s", name, f"{name}_mask={cfg[f'{name}_mask']}" if given is not None else how)
    out = None
    if "mask" in files:
        style = (aligned["reference"], masks["reference"]) if "reference" in photos else None
        out = edit_photo(photos["source"], aligned["source"], masks["source"], files["mask"],
                         generator, style, _choice(cfg, "region", REGIONS),
                         *paste_margins(size, float(cfg.get("dilate", 3)), float(cfg.get("feather", 4))))
        path = write_photo(cfg.out, out)
        log.info("wrote %s (%dx%d)", path, out.shape[1], out.shape[0])
    if cfg.get("save_mask"):
        try:
            _write_label_map(cfg.save_mask, masks["source"])
        except BaseException:
            if out is not None:
                Path(cfg.out).unlink(missing_ok=True)            # both files or neither
            raise
        log.info("wrote %s (the source's mask, %dx%d CelebAMask-HQ ids)", cfg.save_mask, size, size)
    return out
