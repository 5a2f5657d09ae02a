"""PSGAN on photos: detect → crop → parse → transfer → paste back with detail restoration.

The pipeline follows the official pre- and post-processing (``wtjiang98/PSGAN:psgan/preprocess.py``,
``psgan/postprocess.py``, ``psgan/inference.py``):

1. the largest face and its 68 landmarks (dlib or face-alignment, :mod:`facezoo.face.detect`);
2. the official square crop (:func:`facezoo.face.photo.official_crop_box`), resized to 256² (Lanczos,
   PIL's ``ANTIALIAS``); landmarks moved into the crop, scaled to 256 and rounded as the official code does;
3. BiSeNet parsing of the crop at 512², nearest-resized to 256 and converted to CelebAMask-HQ labels, then
   the lip / skin / eye region masks (:func:`facezoo.methods.psgan.networks.region_masks_from_parsing`);
   without BiSeNet's weights (``parser=auto``, the default) or with ``parser=landmarks`` the labels are drawn
   from the 68 landmarks instead (:func:`facezoo.face.parsing.parsing_from_landmarks`; not official);
4. one generator pass with the reference's makeup, shade ``alpha`` and optional ``regions``;
5. the 256² result upsampled to the crop's resolution plus the crop's high-frequency residual, pasted into
   the source photo: pixels outside the crop box are never touched.

    python -m facezoo.infer model=psgan ckpt_path=CKPT source=A.jpg reference=B.jpg out=C.png
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from omegaconf import DictConfig, ListConfig
from torch import nn

from facezoo.face.detect import Face, LandmarkDetector, largest_face
from facezoo.face.parsing import FaceParser, parsing_from_landmarks
from facezoo.face.photo import (
    crop,
    image_to_tensor,
    official_crop_box,
    paste_back,
    resize,
    restore_details,
    tensor_to_image,
    tensor_to_uint8,
)
from facezoo.methods.psgan.networks import REGION_NAMES, region_masks_from_parsing
from facezoo.utils import FacezooError

__all__ = ["REGIONS", "PARSERS", "PreparedFace", "parse_regions", "detect_face", "prepare", "transfer",
           "load_parser", "load_generator", "run", "predict"]

log = logging.getLogger("facezoo.infer.psgan")

#: PSGAN's makeup regions, in the order of the region masks (lip, skin, eye).
REGIONS = tuple(REGION_NAMES)
#: The ``parser=`` choices: BiSeNet when its weights resolve, else landmarks; BiSeNet only; landmarks only.
PARSERS = ("auto", "bisenet", "landmarks")
_BISENET = "face_parsing_bisenet"


@dataclass
class PreparedFace:
    """One photo's network inputs and where they came from.

    Attributes:
        image: ``(1, 3, S, S)`` float in [-1, 1], the square crop at the network size ``S``.
        landmarks: ``(1, 68, 2)`` float, (x, y) pixels of ``image``, rounded.
        mask: ``(1, S, S)`` int64 CelebAMask-HQ labels of ``image``.
        regions: ``(1, 3, S, S)`` float {0, 1} lip / skin / eye masks.
        box: integer ``(x0, y0, x1, y1)`` square crop box in the photo.
        crop: ``(side, side, 3)`` uint8, the full-resolution crop.
        face: the detection used.
    """

    image: torch.Tensor
    landmarks: torch.Tensor
    mask: torch.Tensor
    regions: torch.Tensor
    box: tuple[int, int, int, int]
    crop: np.ndarray
    face: Face


def parse_regions(regions) -> list[str] | None:
    """Normalise the ``regions=`` option: ``None``/``"all"`` → ``None`` (all), ``"lip,eye"`` → ``["lip", "eye"]``.

    Raises:
        FacezooError: an unknown region name or an empty selection.

    Example:
        >>> parse_regions("lip, eye"), parse_regions(None)
        (['lip', 'eye'], None)
    """
    if regions is None:
        return None
    if isinstance(regions, str):
        if regions.strip().lower() in ("", "all", "null", "none"):
            return None
        regions = regions.split(",")
    if not isinstance(regions, (Sequence, ListConfig)):
        raise FacezooError(f"regions={regions!r}: use a list or a comma-separated string of {', '.join(REGIONS)}")
    names = [str(r).strip().lower() for r in regions]
    unknown = [r for r in names if r not in REGIONS]
    if unknown or not names:
        raise FacezooError(f"regions={','.join(names)}: unknown or empty; choose from {', '.join(REGIONS)}")
    return names


def prepare(image: np.ndarray, detector: LandmarkDetector, parser: FaceParser | None, size: int = 256,
            name: str = "photo", face: Face | None = None) -> PreparedFace:
    """Detect, crop, parse: the official PSGAN ``PreProcess`` for one photo.

    Args:
        image: ``(H, W, 3)`` uint8 RGB photo.
        detector: a landmark backend; the largest face is used.
        parser: a :class:`~facezoo.face.parsing.FaceParser` (CelebAMask-HQ output), or ``None`` to draw the
            labels from the landmarks (:func:`~facezoo.face.parsing.parsing_from_landmarks`).
        size: network resolution ``S``.
        name: how error messages call the photo (e.g. its path).
        face: an earlier detection of this photo to reuse (skips ``detector``).

    Returns:
        A :class:`PreparedFace`.

    Raises:
        FacezooError: no face in the photo.
    """
    face = face if face is not None else detect_face(image, detector, name)
    box = official_crop_box(face.box, image.shape[:2])
    face_crop = crop(image, box)
    side = box[2] - box[0]
    exact = (face.landmarks - np.array(box[:2], np.float32)) * (size / side)
    landmarks = torch.from_numpy(np.round(exact).astype(np.float32))[None]
    if parser is None:                                        # polygons through the unrounded points
        mask = parsing_from_landmarks(exact, size)[None]
    else:
        mask = parser.parse(face_crop, out_size=size)[None]
    regions = region_masks_from_parsing(mask, landmarks)      # eye margin 16 px at 256, scaled with size
    return PreparedFace(image_to_tensor(resize(face_crop, size, "lanczos")), landmarks, mask,
                        regions.float(), box, face_crop, face)


def detect_face(image: np.ndarray, detector: LandmarkDetector, name: str = "photo") -> Face:
    """The largest face of ``image`` (logged when there are several).

    Raises:
        FacezooError: ``"<name>: no face found"``.
    """
    faces = detector.detect(image)
    if not faces:
        raise FacezooError(f"{name}: no face found")
    return largest_face(faces, name=name)


@torch.inference_mode()
def transfer(source_img: np.ndarray, reference_img: np.ndarray, generator: nn.Module,
             detector: LandmarkDetector, parser: FaceParser | None, alpha: float = 1.0,
             regions: Sequence[str] | str | None = None, size: int = 256, minmax: bool = False,
             names: tuple[str, str] = ("source", "reference"),
             faces: tuple[Face | None, Face | None] = (None, None)) -> np.ndarray:
    """Put the reference's makeup on the source photo, at the source photo's resolution.

    Args:
        source_img: ``(H, W, 3)`` uint8 RGB, the face to make up.
        reference_img: ``(H', W', 3)`` uint8 RGB, the makeup example.
        generator: a :class:`~facezoo.methods.psgan.networks.PSGANGenerator` (any device; eval mode).
        detector: landmark backend (:func:`facezoo.face.detect.get_detector`).
        parser: face parser with CelebAMask-HQ output, or ``None``: labels drawn from the landmarks.
        alpha: shade control in [0, 1] (0: no makeup).
        regions: ``None`` for all, or a subset of ``("lip", "skin", "eye")`` (list or comma string).
        size: network resolution (256 for the official model).
        minmax: stretch the 256² output to its own min..max like the official ``Solver.test``; by default
            the generator's [-1, 1] range maps to [0, 255].
        names: the two photos' names for error messages.
        faces: earlier detections of the two photos to reuse (``None``: detect here).

    Returns:
        ``(H, W, 3)`` uint8: ``source_img`` outside the face crop box, the made-up face (with the
        source's high-frequency detail) inside it.

    Raises:
        FacezooError: no face in a photo, or bad ``regions``.
    """
    if not 0.0 <= float(alpha) <= 1.0:
        raise FacezooError(f"alpha={alpha}: must be in [0, 1]")
    regions = parse_regions(regions)
    source = prepare(source_img, detector, parser, size, names[0], faces[0])
    reference = prepare(reference_img, detector, parser, size, names[1], faces[1])
    device = next(generator.parameters()).device
    fake = generator(source.image.to(device), reference.image.to(device), source.landmarks.to(device),
                     reference.landmarks.to(device), source.regions.to(device), reference.regions.to(device),
                     alpha=float(alpha), regions=regions)
    if minmax:
        fake = (fake - fake.min()) / (fake.max() - fake.min() + 1e-5) * 2 - 1
    result = tensor_to_image(fake)                                     # (S, S, 3) float in [0, 255]
    patch = restore_details(result, source.crop)
    return paste_back(source_img, patch, source.box)


def load_parser(cfg: DictConfig) -> FaceParser | None:
    """The face parser ``parser=`` asks for; ``None`` means labels drawn from the landmarks. Logs which, once.

    * ``bisenet``: BiSeNet from ``parser_weights`` (the registry name, searched in the facezoo cache, or a path);
    * ``landmarks``: no network (:func:`facezoo.face.parsing.parsing_from_landmarks`);
    * ``auto`` (default): BiSeNet when ``parser_weights`` is the registry name (or null) and ``79999_iter.pth``
      is in the cache, landmarks when it is not; an explicit path must exist, as with ``bisenet``.

    Raises:
        FacezooError: an unknown ``parser``.
        WeightsNotFoundError: BiSeNet asked for (``bisenet``, or a path) and the file is missing; one line
            naming ``79999_iter.pth``.
    """
    from facezoo.face.parsing import load_bisenet
    from facezoo.nets.weights import WeightsNotFoundError, cache_dir, resolve_weights

    choice = _parser_choice(cfg)
    weights = cfg.get("parser_weights", _BISENET)
    if choice == "landmarks":
        log.info("face parsing: landmarks (parser=landmarks)")
        return None
    if choice == "auto" and weights in (None, _BISENET):
        try:
            weights = resolve_weights(_BISENET, path_arg="parser_weights")
        except WeightsNotFoundError:
            log.info("face parsing: landmarks (BiSeNet's 79999_iter.pth is not in %s; put it there or pass "
                     "parser_weights=PATH to use it)", cache_dir())
            return None
    try:
        net = load_bisenet(_BISENET if weights is None else weights, cfg.get("device", "cpu"))
    except WeightsNotFoundError as err:
        raise WeightsNotFoundError(f"{err}; or use parser=landmarks") from None
    log.info("face parsing: BiSeNet (%s)", weights)
    return FaceParser(net)


def _parser_choice(cfg: DictConfig) -> str:
    choice = str(cfg.get("parser") or "auto").strip().lower()
    if choice not in PARSERS:
        raise FacezooError(f"parser={cfg.get('parser')}: choose one of {', '.join(PARSERS)}")
    return choice


def load_generator(cfg: DictConfig) -> nn.Module:
    """The generator from ``ckpt_path`` (a facezoo PSGAN checkpoint) or ``weights`` (the official ``G.pth``).

    Raises:
        FacezooError: neither or both given, an unreadable checkpoint, or one of another method.
        WeightsNotFoundError / FileNotFoundError: the file is missing.
    """
    from facezoo.checkpoints import load_method
    from facezoo.methods.psgan.official import load_official_generator

    model, generator = load_method(cfg, "psgan", load_official_generator, "G.pth (the official PSGAN generator)")
    return generator if model is None else model.generator


def run(cfg: DictConfig) -> np.ndarray:
    """``python -m facezoo.infer model=psgan ...``: read, transfer, write ``out``; returns the image. ``fast=true``:
    the generator's bf16 fast path (:meth:`~facezoo.methods.psgan.networks.PSGANGenerator.fast_path`).

    Inputs are validated (files, faces) before any network is loaded, and ``out`` is written only at the
    end, atomically.
    """
    from facezoo.face.detect import get_detector
    from facezoo.face.photo import check_output_path, read_photo, write_photo

    for key in ("source", "reference", "out"):
        if not cfg.get(key):
            raise FacezooError(f"{key}= is required: python -m facezoo.infer model=psgan ckpt_path=CKPT "
                               "source=A.jpg reference=B.jpg out=C.png")
    check_output_path(cfg.out)
    regions = parse_regions(cfg.get("regions"))
    _parser_choice(cfg)
    source_img, reference_img = read_photo(cfg.source), read_photo(cfg.reference)
    detector = get_detector(cfg.get("detector", "auto"), cfg.get("detector_weights"), cfg.get("device", "cpu"),
                            path_arg="detector_weights")
    faces = (detect_face(source_img, detector, str(cfg.source)),  # "no face" fails before loading networks
             detect_face(reference_img, detector, str(cfg.reference)))
    parser = load_parser(cfg)
    generator = load_generator(cfg)
    if cfg.get("fast"):
        generator.fast_path()
    out = transfer(source_img, reference_img, generator, detector, parser, alpha=cfg.get("alpha", 1.0),
                   regions=regions, size=int(cfg.get("size", 256)), minmax=bool(cfg.get("minmax", False)),
                   names=(str(cfg.source), str(cfg.reference)), faces=faces)
    path = write_photo(cfg.out, out)
    log.info("wrote %s (%dx%d)", path, out.shape[1], out.shape[0])
    return out


# ----------------------------------------------------------------------- evaluation at photo resolution
_FACE_KEYS = (("image", "landmarks", "mask"), ("reference", "reference_landmarks", "reference_mask"))


@torch.no_grad()
def predict(model, batch) -> torch.Tensor:
    """PSGAN's output for a makeup batch at any resolution ≥ the network's, as the photo pipeline makes it.

    At the network's ``image_size`` this is ``model.predict_batch``. A larger batch goes through what
    :func:`run` does to a photo's face crop (official ``PreProcess`` / ``PostProcess``): each face is
    Lanczos-resized to ``image_size`` in 8 bit (landmarks scaled and rounded, masks nearest), transferred, and
    the result is upsampled with the source's high-frequency residual restored (:func:`restore_details`),
    rounded to 8 bit. ``facezoo.evaluate`` uses it for every batch.

    Args:
        model: a :class:`~facezoo.methods.psgan.module.PSGAN`.
        batch: a makeup sample batch (``image``, ``landmarks``, ``mask`` and the ``reference*`` keys).

    Returns:
        ``(B, 3, H, W)`` in [-1, 1], at the batch's resolution.
    """
    size, res = model.hparams.image_size, batch["image"].shape[-1]
    if res < size:
        raise ValueError(f"PSGAN was built for {size}x{size} faces; a {res}x{res} batch is smaller")
    if res == size:
        return model.predict_batch(batch)
    return _restore_details(model.predict_batch(_downsample_faces(batch, size)), batch["image"])


def _downsample_faces(batch, size: int) -> dict:
    """The source and reference faces of a batch at ``size``, as :func:`prepare` makes a photo's crop:
    8-bit Lanczos images, landmarks ``round(p · size / H)``, nearest-resized masks."""
    out = dict(batch)
    res = batch["image"].shape[-1]
    for image_key, landmarks_key, mask_key in _FACE_KEYS:
        out[image_key] = torch.cat([image_to_tensor(resize(tensor_to_uint8(im), size, "lanczos"))
                                    for im in batch[image_key]]).to(batch[image_key])
        out[landmarks_key] = torch.round(batch[landmarks_key] * (size / res))
        masks = [resize(m.cpu().numpy().astype(np.uint8), size, "nearest") for m in batch[mask_key]]
        out[mask_key] = torch.from_numpy(np.stack(masks)).to(batch[mask_key])
    return out


def _restore_details(result: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """PSGAN's post-processing on a batch: ``result`` (B, 3, h, w) upsampled to ``source`` (B, 3, H, W) plus
    the source's high-frequency residual (:func:`restore_details`), 8 bit, in [-1, 1]."""
    return torch.cat([image_to_tensor(restore_details(tensor_to_image(r), tensor_to_uint8(s)))
                      for r, s in zip(result, source)]).to(source)
