"""GANnotation on photos: re-pose a face to target landmarks, one step or a progressive chain.

    python -m facezoo.infer model=gannotation ckpt_path=CKPT source=A.jpg target_landmarks=POINTS out=B.png
    python -m facezoo.infer model=gannotation ckpt_path=CKPT source=A.jpg chain=[P1,P2,P3] out=steps.png
    python -m facezoo.infer model=gannotation weights=myGEN.pth source=A.jpg target_landmarks=C.jpg out=B.png

The source's 68 landmarks are detected (``detector=auto|dlib|face_alignment``) and the face is cropped as the
official ``utils.crop`` does (landmark box + 16% margin, resized to the network's side;
:func:`facezoo.data.video300w.face_transform`). A target is a points file — ``.pts`` (300-W), ``.txt`` (one
``x y`` line per point), ``.npy`` or ``.pt`` with ``(68, 2)`` or ``(66, 2)`` points — or another photo, whose
landmarks are detected. Target points are placed into the crop by their **own** box, as each face of a
training triplet is, so the target's shape, pose and expression are kept and its position and size in its
photo do not matter.

A chain ``[P1, P2, …]`` re-poses progressively, ``A → G(A, H_1) → G(G(A, H_1), H_2) → …``, and writes every
step: ``<out stem>_0`` is the cropped source, ``<out stem>_k`` the k-th step; for two or more steps it also
writes ``<out stem>_direct`` = ``G(A, H_last)`` and logs the mean absolute difference to the last step (the
triple-consistency error of this chain; 0 for a perfectly consistent model). Outputs are written atomically
(:func:`facezoo.face.photo.write_photo`), only after every input has been checked.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import kornia
import numpy as np
import torch
from omegaconf import DictConfig, ListConfig

from facezoo.data.video300w import face_transform, read_pts
from facezoo.face.photo import tensor_to_uint8
from facezoo.utils import FacezooError, atomic_write_json

log = logging.getLogger(__name__)

__all__ = ["POINT_SUFFIXES", "read_points", "crop_face", "points_in_crop", "Reposer", "load_reposer",
           "progressive_reposing", "chain_paths", "run"]

#: Suffixes read as points files; anything else is read as a photo.
POINT_SUFFIXES = (".pts", ".txt", ".npy", ".pt")


# ------------------------------------------------------------------------------------------ points
def read_points(path: str | Path) -> np.ndarray:
    """Read target landmarks from ``.pts`` (300-W), ``.txt`` (``x y`` per line), ``.npy`` or ``.pt``.

    Returns:
        ``(N, 2)`` float64 (x, y), N = 68 (iBUG) or 66 (GANnotation's scheme).

    Raises:
        FacezooError: missing or unreadable file, wrong shape, non-finite values, or degenerate points (the outer
            eye corners coincide, or the points lie on a line); the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FacezooError(f"{path}: no such points file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".pts":
            points = read_pts(path)
        elif suffix == ".txt":
            points = np.loadtxt(path, dtype=np.float64, ndmin=2)
        elif suffix == ".npy":
            points = np.load(path, allow_pickle=False)
        elif suffix == ".pt":
            points = torch.load(path, map_location="cpu", weights_only=True)
            points = points.numpy() if torch.is_tensor(points) else np.asarray(points)
        else:
            raise FacezooError(f"{path}: unknown points format {suffix!r}; use one of {list(POINT_SUFFIXES)}")
    except FacezooError:
        raise
    except UnicodeDecodeError as err:     # a binary file named .txt: say so, not the codec's words
        raise FacezooError(f"{path}: not a text file of points (byte 0x{err.object[err.start]:02x} at offset "
                           f"{err.start} is not UTF-8); write one 'x y' line per point") from None
    except pickle.UnpicklingError:        # torch's message would suggest weights_only=False, no fix for this
        raise FacezooError(f"{path}: cannot read points, the file is truncated, damaged or not a torch file") from None
    except Exception as err:  # numpy / torch parse errors
        raise FacezooError(f"{path}: cannot read points ({type(err).__name__}: {' '.join(str(err).split())})") from None
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape not in ((68, 2), (66, 2)):
        raise FacezooError(f"{path}: expected (68, 2) or (66, 2) points (x y per row), got shape {points.shape}")
    if not np.isfinite(points).all():
        raise FacezooError(f"{path}: non-finite point coordinates")
    from facezoo.metrics import EYE_CORNERS

    a, b = EYE_CORNERS[len(points)]
    if np.linalg.norm(points[a] - points[b]) <= 0:     # the crop box and every NME are normalised by it
        raise FacezooError(f"{path}: zero inter-ocular distance (points {a + 1} and {b + 1}, the outer eye corners, "
                           f"coincide); not the landmarks of a face")
    if (np.ptp(points, axis=0) <= 0).any():
        raise FacezooError(f"{path}: the points have no width or no height; not the landmarks of a face")
    return points


def points_in_crop(points: np.ndarray, size: int, tight: float = 16) -> np.ndarray:
    """Place landmarks into a ``size × size`` crop by their own box (official ``utils.crop``, no clipping).

    Args:
        points: ``(N, 2)`` (x, y) in any pixel frame.
        size: crop side.

    Returns:
        ``(N, 2)`` float64 points in crop pixels.
    """
    points = np.asarray(points, np.float64)
    big = int(np.abs(points).max() * 4 + 4 * size)      # a frame large enough that the box is never clipped
    shift = np.array([big / 2.0, big / 2.0])
    m = face_transform(points + shift, big, big, size, 0.0, tight)
    return (points + shift) @ m[:, :2].T + m[:, 2]


def crop_face(image: np.ndarray, landmarks: np.ndarray, size: int, tight: float = 16) -> tuple[torch.Tensor,
                                                                                                np.ndarray]:
    """Crop a photo's face as the official ``utils.crop`` (landmark box + margin, resized to ``size``).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` (x, y) pixels of ``image``.

    Returns:
        ``(crop (1, 3, size, size) in [-1, 1], landmarks (68, 2) in crop pixels)``.
    """
    height, width = image.shape[:2]
    m = face_transform(landmarks, width, height, size, 0.0, tight)
    frame = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float().div(127.5).sub(1.0)
    crop = kornia.geometry.transform.warp_affine(frame, torch.from_numpy(m[None]).float(), (size, size),
                                                 mode="bilinear", padding_mode="border", align_corners=True)
    return crop.clamp(-1.0, 1.0), np.asarray(landmarks, np.float64) @ m[:, :2].T + m[:, 2]


# ---------------------------------------------------------------------------------------- networks
class Reposer:
    """``G(image, landmarks)`` for one face: a trained facezoo GANnotation or the released generator.

    Args:
        fn: ``fn(image (1, 3, S, S) in [-1, 1], landmarks (1, N, 2) crop pixels) -> (1, 3, S, S)``.
        size: the side S the network works at.
    """

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], size: int):
        self.fn, self.size = fn, int(size)

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        if image.shape[-2:] != (self.size, self.size):
            raise ValueError(f"expected ({self.size}, {self.size}) faces, got {tuple(image.shape)}")
        return self.fn(image, landmarks).clamp(-1.0, 1.0)


def load_reposer(cfg: DictConfig) -> Reposer:
    """The network from ``ckpt_path`` (a facezoo GANnotation checkpoint) or ``weights`` (the released ``myGEN.pth``);
    ``fast=true``: its weights in bf16 (:func:`facezoo.nets.precision.bf16_fast_path`).

    Raises:
        FacezooError: neither or both given, an unreadable checkpoint, or one of another method.
    """
    from facezoo.checkpoints import load_method
    from facezoo.methods.gannotation.official import load_official_generator, official_reposing
    from facezoo.nets.precision import bf16_fast_path

    device = torch.device(cfg.get("device", "cpu"))
    model, generator = load_method(cfg, "gannotation", load_official_generator,
                                   "myGEN.pth (the released GANnotation generator)")
    if cfg.get("fast"):
        bf16_fast_path(generator if model is None else model.generator)
    if model is not None:
        def fn(image, landmarks):
            return model(image.to(device), model.heatmaps(landmarks.to(device), image.shape[-1]))["image"]

        return Reposer(fn, model.hparams.image_size)
    return Reposer(lambda image, landmarks: official_reposing(generator, image.to(device), landmarks.to(device)), 128)


def progressive_reposing(reposer: Reposer, image: torch.Tensor, targets: Sequence[np.ndarray]) -> list[torch.Tensor]:
    """Progressive re-posing ``x_k = G(x_{k−1}, H_k)`` from ``x_0 = image``.

    Args:
        reposer: the network.
        image: ``(1, 3, S, S)`` in [-1, 1].
        targets: ``(N, 2)`` landmark sets in crop pixels.

    Returns:
        ``[x_0, x_1, …, x_n]``, each ``(1, 3, S, S)`` in [-1, 1].
    """
    steps = [image]
    for points in targets:
        steps.append(reposer(steps[-1], torch.as_tensor(np.asarray(points), dtype=torch.float32)[None]))
    return steps


def chain_paths(out: str | Path, steps: int) -> list[Path]:
    """``<stem>_0<suffix> … <stem>_<steps><suffix>`` next to ``out`` (step 0 is the source crop)."""
    out = Path(out)
    return [out.with_name(f"{out.stem}_{k}{out.suffix}") for k in range(steps + 1)]


# ------------------------------------------------------------------------------------------- entry
def _targets(cfg: DictConfig) -> list[str]:
    chain = cfg.get("chain")
    if chain:
        if isinstance(chain, str):
            chain = [c for c in chain.split(",") if c.strip()]
        if not isinstance(chain, (list, tuple, ListConfig)) or not chain:
            raise FacezooError(f"chain= must be a list of points files or photos, got {chain!r}")
        if cfg.get("target_landmarks"):
            raise FacezooError("give either target_landmarks=POINTS (one step) or chain=[P1,P2,...], not both")
        return [str(c).strip() for c in chain]
    if not cfg.get("target_landmarks"):
        raise FacezooError("target_landmarks= is required (a points file or a photo), or chain=[P1,P2,...]: "
                           "python -m facezoo.infer model=gannotation ckpt_path=CKPT source=A.jpg "
                           "target_landmarks=B.pts out=B.png")
    return [str(cfg.target_landmarks)]


def _detect_points(detector, image: np.ndarray, upscale: int = 4) -> np.ndarray | None:
    """68 landmarks of the largest face in a (small) output crop, detected on a ×``upscale`` copy; or None."""
    from PIL import Image

    h, w = image.shape[:2]
    big = np.asarray(Image.fromarray(image).resize((w * upscale, h * upscale), Image.BICUBIC))
    faces = detector.detect(big)
    if not faces:
        return None
    best = max(faces, key=lambda f: f.area)
    return (np.asarray(best.landmarks, np.float64) + 0.5) / upscale - 0.5


def output_landmark_error(detect_points: Callable[[np.ndarray], np.ndarray | None],
                          outputs: Sequence[torch.Tensor], targets: Sequence[np.ndarray]) -> dict:
    """Landmark error of re-posed outputs: NME (inter-ocular, :func:`facezoo.metrics.landmark_nme`) between the
    landmarks a photo backend finds on each output and the target points it was asked for.

    Args:
        detect_points: uint8 (H, W, 3) image → (68, 2) points or None (no face found).
        outputs: generator outputs, (1, 3, S, S) in [-1, 1], one per target.
        targets: the target points in the crop's pixels, (68, 2) each.

    Returns:
        ``{"steps": [{"step": k, "nme": value or None}, ...], "mean_nme": mean over steps with a face or None}``.
    """
    from facezoo.metrics import landmark_nme

    steps = []
    for k, (out, target) in enumerate(zip(outputs, targets), start=1):
        found = detect_points(tensor_to_uint8(out))
        if found is None:
            log.warning("step %d: no face found on the output; its landmark error is skipped", k)
            steps.append({"step": k, "nme": None})
            continue
        nme = float(landmark_nme(torch.as_tensor(found, dtype=torch.float32)[None],
                                 torch.as_tensor(np.asarray(target), dtype=torch.float32)[None]))
        log.info("step %d: landmark NME of the output against the target points = %.4f", k, nme)
        steps.append({"step": k, "nme": nme})
    values = [s["nme"] for s in steps if s["nme"] is not None]
    return {"steps": steps, "mean_nme": float(np.mean(values)) if values else None}


def run(cfg: DictConfig) -> list[Path]:
    """``python -m facezoo.infer model=gannotation ...``: crop, re-pose, write; returns the written paths.

    Inputs (photos, faces, points files, output suffix) are validated before any network is loaded.
    """
    from facezoo.face.detect import get_detector, largest_face
    from facezoo.face.photo import check_output_path, read_photo, write_photo

    if not cfg.get("source") or not cfg.get("out"):
        raise FacezooError("source= and out= are required: python -m facezoo.infer model=gannotation "
                           "ckpt_path=CKPT source=A.jpg target_landmarks=B.pts out=B.png")
    check_output_path(cfg.out)
    targets = _targets(cfg)
    tight = float(cfg.get("tight", 16))
    detector = None

    def get_detector_once():
        nonlocal detector
        if detector is None:
            detector = get_detector(cfg.get("detector", "auto"), cfg.get("detector_weights"), cfg.get("device", "cpu"))
        return detector

    def detect(path: str) -> tuple[np.ndarray, np.ndarray]:
        photo = read_photo(path)
        return photo, largest_face(get_detector_once().detect(photo), str(path)).landmarks

    source_img, source_points = detect(str(cfg.source))
    raw_targets = [read_points(t) if Path(t).suffix.lower() in POINT_SUFFIXES else detect(t)[1] for t in targets]
    reposer = load_reposer(cfg)
    size = reposer.size
    crop, _ = crop_face(source_img, source_points, size, tight)
    in_crop = [points_in_crop(p, size, tight) for p in raw_targets]
    steps = progressive_reposing(reposer, crop, in_crop)
    if len(targets) == 1 and not cfg.get("chain"):
        written = [write_photo(cfg.out, tensor_to_uint8(steps[1]))]
    else:
        paths = chain_paths(cfg.out, len(in_crop))
        written = [write_photo(path, tensor_to_uint8(step)) for path, step in zip(paths, steps)]
        if len(in_crop) >= 2:
            direct = reposer(crop, torch.as_tensor(in_crop[-1], dtype=torch.float32)[None])
            out = Path(cfg.out)
            written.append(write_photo(out.with_name(f"{out.stem}_direct{out.suffix}"), tensor_to_uint8(direct)))
            log.info("chain of %d steps: mean |direct - chained| = %.4f (triple-consistency error, [-1, 1] units)",
                     len(in_crop), float((direct - steps[-1]).abs().mean()))
    if cfg.get("landmark_error", True):
        report = output_landmark_error(detect_points=lambda img: _detect_points(get_detector_once(), img),
                                       outputs=steps[1:], targets=in_crop)
        written.append(atomic_write_json(Path(cfg.out).with_name(f"{Path(cfg.out).stem}_nme.json"), report))
    for path in written:
        log.info("wrote %s", path)
    return written
