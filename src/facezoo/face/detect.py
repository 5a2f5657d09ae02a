"""Face detection and 68-point landmark backends for photos.

Two backends give the same answer type, a list of :class:`Face` (box, iBUG-68 landmarks as (x, y)
pixels of the image, score):

* :class:`DlibDetector` — dlib's HOG frontal-face detector plus the 68-point shape predictor shipped by
  the ``face-recognition-models`` package. It works offline and is what the official PSGAN
  pre-processing uses (``wtjiang98/PSGAN:faceutils/dlibutils/main.py``): detection runs on the image
  resized so that its longest side is 361 pixels, with one upsampling pass, and the boxes are scaled back.
* :class:`FaceAlignmentDetector` — the ``face-alignment`` package (S3FD detector + 2D-FAN-4), the design
  card's backend. Its two weight files come from the facezoo cache, torch hub's checkpoint directory or
  ``weights_dir``; it never downloads them.

:func:`get_detector` picks one by name; ``"auto"`` uses face-alignment when its weights are present and
falls back to dlib otherwise, saying so once in the log. :func:`largest_face` picks the face to edit.

Example:
    >>> import numpy as np
    >>> faces = [Face((0, 0, 10, 10), np.zeros((68, 2), np.float32), 1.0),
    ...          Face((5, 5, 45, 45), np.zeros((68, 2), np.float32), 0.5)]
    >>> largest_face(faces).box
    (5.0, 5.0, 45.0, 45.0)
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from facezoo.nets.weights import WeightsNotFoundError, resolve_weights
from facezoo.utils import FacezooError

__all__ = [
    "Face",
    "LandmarkDetector",
    "DlibDetector",
    "FaceAlignmentDetector",
    "DETECTORS",
    "get_detector",
    "largest_face",
    "check_image",
    "face_recognition_models_file",
]

log = logging.getLogger(__name__)

#: The official PSGAN pre-processing runs dlib's detector on the image resized to this longest side.
DLIB_DETECT_MAX_SIDE = 361


@dataclass(frozen=True)
class Face:
    """One detected face.

    Args:
        box: ``(x0, y0, x1, y1)`` in pixels of the image; ``x1 - x0`` is the box width (dlib's ``width()``).
        landmarks: ``(68, 2)`` float32, iBUG-68 order, (x, y) pixel coordinates of the image.
        score: detector confidence (dlib: SVM margin, any real; face-alignment: probability in [0, 1]).
    """

    box: tuple[float, float, float, float]
    landmarks: np.ndarray = field(repr=False)
    score: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "box", tuple(float(v) for v in self.box))
        lms = np.asarray(self.landmarks, dtype=np.float32)
        if lms.shape != (68, 2):
            raise ValueError(f"Face.landmarks must have shape (68, 2), got {lms.shape}")
        object.__setattr__(self, "landmarks", lms)
        object.__setattr__(self, "score", float(self.score))

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, 0.0) * max(y1 - y0, 0.0)


@runtime_checkable
class LandmarkDetector(Protocol):
    """Anything that finds faces and their 68 landmarks in an RGB uint8 photo."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces of ``image`` (uint8, ``(H, W, 3)`` RGB), in any order; an empty list when none."""
        ...


def check_image(image: np.ndarray) -> np.ndarray:
    """Check that ``image`` is an RGB uint8 photo ``(H, W, 3)``; returns it C-contiguous.

    Raises:
        ValueError: wrong dtype, rank or channel count.
    """
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


def largest_face(faces: list[Face], name: str = "image") -> Face:
    """The face with the largest box (ties: the higher score); logs a line when there are several.

    Args:
        faces: at least one face.
        name: how the log line and the error call the image (e.g. its path).

    Returns:
        The chosen :class:`Face`.

    Raises:
        FacezooError: ``faces`` is empty (``"<name>: no face found"``).
    """
    if not faces:
        raise FacezooError(f"{name}: no face found")
    best = max(faces, key=lambda f: (f.area, f.score))
    if len(faces) > 1:
        x0, y0, x1, y1 = best.box
        log.info("%s: found %d faces; using the largest (box %.0f,%.0f-%.0f,%.0f, %.0fx%.0f px)",
                 name, len(faces), x0, y0, x1, y1, x1 - x0, y1 - y0)
    return best


# -------------------------------------------------------------------------------------------- dlib
def face_recognition_models_file(name: str) -> Path:
    """Path of a model file shipped by ``face-recognition-models``, found without importing the package.

    (Its ``__init__`` imports ``pkg_resources``, which recent setuptools removed.)

    Args:
        name: file name under the package's ``models/`` folder, e.g. ``"shape_predictor_68_face_landmarks.dat"``.

    Returns:
        The path of an existing file.

    Raises:
        WeightsNotFoundError: the package or the file is missing.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsNotFoundError("package face-recognition-models is not installed "
                                   "(pip install face-recognition-models); it ships dlib's 68-point predictor")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise WeightsNotFoundError(f"{path} is missing; reinstall face-recognition-models")
    return path


def _resize_longest(image: np.ndarray, max_side: int) -> np.ndarray:
    """Bilinear resize so the longest side is ``max_side`` (only shrinks), rounding like the official code."""
    from PIL import Image

    h, w = image.shape[:2]
    if max(h, w) < max_side:
        return image
    ratio = max(h, w) / max_side
    size = (int(w / ratio + 0.5), int(h / ratio + 0.5))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


@functools.lru_cache(maxsize=2)
def _dlib_models(predictor_path: str):
    """dlib's detector and a shape predictor, loaded once per process (the predictor file is ~100 MB)."""
    import dlib

    return dlib.get_frontal_face_detector(), dlib.shape_predictor(predictor_path)


class DlibDetector:
    """dlib HOG face detector + 68-point shape predictor (offline; PSGAN's official backend).

    Args:
        predictor_path: a ``shape_predictor_68_face_landmarks.dat``; default: the file of
            ``face-recognition-models``.
        max_side: detection runs on the image shrunk to this longest side (official: 361); ``None``
            detects at full resolution. Landmarks are always predicted at full resolution.
        upsample: dlib's ``upsample_num_times`` (official: 1; each pass finds faces half as large).

    Example:
        >>> import skimage.data
        >>> faces = DlibDetector().detect(skimage.data.astronaut())
        >>> len(faces), faces[0].landmarks.shape
        (1, (68, 2))
    """

    name = "dlib"

    def __init__(self, predictor_path: str | os.PathLike | None = None,
                 max_side: int | None = DLIB_DETECT_MAX_SIDE, upsample: int = 1):
        path = Path(predictor_path) if predictor_path else face_recognition_models_file(
            "shape_predictor_68_face_landmarks.dat")
        if not path.is_file():
            raise WeightsNotFoundError(f"dlib shape predictor {path} not found")
        self.detector, self.predictor = _dlib_models(str(path.resolve()))
        self.max_side = max_side
        self.upsample = int(upsample)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces of an RGB uint8 ``(H, W, 3)`` image (see :class:`LandmarkDetector`)."""
        import dlib

        image = check_image(image)
        h, w = image.shape[:2]
        small = _resize_longest(image, self.max_side) if self.max_side else image
        sh, sw = small.shape[:2]
        rects, scores, _ = self.detector.run(small, self.upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores):
            # back to full resolution, rounded like the official detect(); dlib's right/bottom are inclusive
            left, top = int(rect.left() / sw * w + 0.5), int(rect.top() / sh * h + 0.5)
            right, bottom = int(rect.right() / sw * w + 0.5), int(rect.bottom() / sh * h + 0.5)
            shape = self.predictor(image, dlib.rectangle(left, top, right, bottom))
            landmarks = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)
            faces.append(Face((left, top, right + 1, bottom + 1), landmarks, float(score)))
        return faces


# ---------------------------------------------------------------------------------- face-alignment
#: face-alignment's weight files, registered in :data:`facezoo.nets.weights.WEIGHTS`.
FACE_ALIGNMENT_WEIGHTS = ("face_alignment_s3fd", "face_alignment_2dfan4")


def _face_alignment_files(weights_dir: str | os.PathLike | None, path_arg: str = "weights_dir") -> dict[str, Path]:
    """Resolve the S3FD and 2D-FAN-4 files without any download (raises WeightsNotFoundError)."""
    from facezoo.nets.weights import WEIGHTS

    files = {}
    for name in FACE_ALIGNMENT_WEIGHTS:
        explicit = Path(weights_dir).expanduser() / WEIGHTS[name].filename if weights_dir else None
        files[name] = resolve_weights(name, path=explicit, download=False, path_arg=path_arg)
    return files


@contextlib.contextmanager
def _torch_hub_dir(path: Path):
    import torch.hub

    # restore torch's own setting, not the directory it resolves to: get_dir() follows $TORCH_HOME only while
    # no directory was set, and set_dir(get_dir()) would pin it for the rest of the process
    old = torch.hub._hub_dir
    torch.hub.set_dir(str(path))
    try:
        yield
    finally:
        torch.hub._hub_dir = old


class FaceAlignmentDetector:
    """face-alignment's S3FD detector + 2D-FAN-4 landmarks, from local weight files only.

    face-alignment downloads its weights when constructed; this wrapper first finds both files
    (``s3fd-619a316812.pth``, ``2DFAN4-11f355bf06.pth.tar``) in ``weights_dir``, the facezoo cache or
    torch hub's ``checkpoints`` directory, and raises before touching the network when one is missing.

    Args:
        weights_dir: a folder holding both files; ``None`` searches the caches.
        device: torch device for both networks.
        path_arg: the option that takes ``weights_dir``, named in the error message.

    Raises:
        WeightsNotFoundError: a weight file is missing (one line naming it and where to put it).
    """

    name = "face_alignment"

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str = "cpu",
                 path_arg: str = "weights_dir"):
        files = _face_alignment_files(weights_dir, path_arg)
        import face_alignment

        # FaceAlignment looks its FAN file up in <torch hub dir>/checkpoints: point a temporary hub dir
        # at the resolved file so the constructor finds it there and never downloads.
        from facezoo.nets.weights import WEIGHTS

        with tempfile.TemporaryDirectory() as hub:
            checkpoints = Path(hub) / "checkpoints"
            checkpoints.mkdir()
            fan = WEIGHTS["face_alignment_2dfan4"].filename
            os.symlink(files["face_alignment_2dfan4"].resolve(), checkpoints / fan)
            kwargs = {"device": device, "face_detector": "sfd",
                      "face_detector_kwargs": {"path_to_detector": str(files["face_alignment_s3fd"])}}
            if "compile" in inspect.signature(face_alignment.FaceAlignment).parameters:
                kwargs["compile"] = False                      # face-alignment >= 1.5 compiles by default
            with _torch_hub_dir(Path(hub)):
                self.model = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, **kwargs)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces of an RGB uint8 ``(H, W, 3)`` image (see :class:`LandmarkDetector`)."""
        image = check_image(image)
        landmarks, _, boxes = self.model.get_landmarks_from_image(image, return_bboxes=True)
        if landmarks is None:
            return []
        return [Face(tuple(box[:4]), lms[:, :2], float(box[4]) if len(box) > 4 else 1.0)
                for lms, box in zip(landmarks, boxes)]


# ------------------------------------------------------------------------------------------ registry
DETECTORS = {"dlib": DlibDetector, "face_alignment": FaceAlignmentDetector}

_fallback_logged = False


def get_detector(name: str = "auto", weights_dir: str | os.PathLike | None = None,
                 device: str = "cpu", path_arg: str = "weights_dir") -> LandmarkDetector:
    """Build a landmark backend by name.

    Args:
        name: ``"dlib"``, ``"face_alignment"`` or ``"auto"`` (face-alignment when its weights are present,
            else dlib — logged once per process).
        weights_dir: face-alignment's weight folder (see :class:`FaceAlignmentDetector`).
        device: torch device for face-alignment.
        path_arg: the option that takes ``weights_dir``, named in error messages.

    Returns:
        A :class:`LandmarkDetector`.

    Raises:
        FacezooError: unknown ``name``.
        WeightsNotFoundError: ``name="face_alignment"`` and its weights are missing.

    Example:
        >>> get_detector("dlib").name
        'dlib'
    """
    global _fallback_logged
    if name == "auto":
        try:
            _face_alignment_files(weights_dir, path_arg)
        except WeightsNotFoundError as err:
            if not _fallback_logged:
                log.info("face-alignment weights not found (%s); using the dlib landmark backend", err)
                _fallback_logged = True
            return DlibDetector()
        return FaceAlignmentDetector(weights_dir, device=device, path_arg=path_arg)
    if name == "dlib":
        return DlibDetector()
    if name == "face_alignment":
        return FaceAlignmentDetector(weights_dir, device=device, path_arg=path_arg)
    raise FacezooError(f"unknown detector {name!r}; use one of auto, {', '.join(DETECTORS)}")
