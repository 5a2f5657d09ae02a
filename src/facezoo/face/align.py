"""Face alignment from landmarks: similarity transforms, the Multi-PIE crop, the FFHQ crop, warping and part crops.

:func:`read_aligned` is the one way the photo pipelines (StyleGAN2 projection, pSp) read a face: the FFHQ crop of the
largest face's 68 points, or a centre crop for pictures aligned already.

Matrices are ``(2, 3)`` affine maps of **pixel coordinates** ``(x, y)``, with pixel centres at integer
coordinates: ``dst = M[:, :2] @ src + M[:, 2]``.

Example:
    >>> five = np.array([[40., 50], [80, 50], [60, 70], [45, 90], [75, 90]])
    >>> M = multipie_alignment(five, size=128)
    >>> transform_points(five, M)[:2].round(1).tolist()    # eyes land level, centred at (64, 40)
    [[40.0, 40.0], [88.0, 40.0]]
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from facezoo.face.labels import landmarks_68_to_5

__all__ = [
    "umeyama",
    "multipie_alignment",
    "transform_points",
    "invert_affine",
    "warp_affine",
    "align_multipie",
    "crop_patches",
    "ffhq_quad",
    "align_ffhq",
    "ALIGNMENTS",
    "align_photo",
    "read_aligned",
]


def umeyama(src: np.ndarray, dst: np.ndarray, estimate_scale: bool = True) -> np.ndarray:
    """Least-squares similarity transform (Umeyama 1991) mapping ``src`` points onto ``dst``.

    Args:
        src, dst: ``(N, 2)`` corresponding points, N ≥ 2.
        estimate_scale: fit a scale too (similarity); otherwise a rigid transform.

    Returns:
        ``(2, 3)`` float64 matrix ``M`` minimising ``Σ‖M·src_i − dst_i‖²``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"umeyama needs two (N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[-1] = -1
    rot = u @ np.diag(sign) @ vt
    scale = (sig * sign).sum() / s.var(0).sum() if estimate_scale else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def multipie_alignment(five_points: np.ndarray, size: int = 128, ec_mc: float = 48.0,
                       ec_y: float = 40.0) -> np.ndarray:
    """The Multi-PIE crop of TP-GAN's preparation (``face_db_align_single_custom.m``).

    The face is rotated and scaled so that the eye centre (mid-point of the two eyes) sits at
    ``(size/2, ec_y)`` and the mouth centre (mid-point of the mouth corners) straight below it at
    distance ``ec_mc``. Values are for a 128-pixel crop and scale with ``size``.

    Args:
        five_points: ``(5, 2)`` eyes, nose tip, mouth corners (:func:`~facezoo.face.labels.landmarks_68_to_5`).
        size: side of the square crop.

    Returns:
        ``(2, 3)`` matrix from source pixels to crop pixels.
    """
    p = np.asarray(five_points, np.float64)
    if p.shape != (5, 2):
        raise ValueError(f"expected (5, 2) points, got {p.shape}")
    k = size / 128.0
    eye_c, mouth_c = p[:2].mean(0), p[3:].mean(0)
    src = np.stack([eye_c, mouth_c])
    dst = np.array([[size / 2.0, ec_y * k], [size / 2.0, (ec_y + ec_mc) * k]])
    return umeyama(src, dst)


def transform_points(points, matrix):
    """Apply a ``(2, 3)`` (or batched ``(B, 2, 3)``) affine map to ``(..., N, 2)`` points."""
    if isinstance(points, torch.Tensor):
        matrix = torch.as_tensor(matrix, dtype=points.dtype, device=points.device)
        return points @ matrix[..., :2].transpose(-1, -2) + matrix[..., None, :, 2]
    matrix = np.asarray(matrix)
    return points @ np.swapaxes(matrix[..., :2], -1, -2) + matrix[..., None, :, 2]


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a ``(2, 3)`` affine map."""
    full = np.vstack([np.asarray(matrix, np.float64), [0, 0, 1]])
    return np.linalg.inv(full)[:2]


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: int | tuple[int, int],
                nearest: bool = False, fill=0) -> np.ndarray:
    """Warp an ``(H, W[, C])`` uint8 image (or label map) by the source→destination ``matrix``.

    Bilinear for images, nearest for label maps (``nearest=True``). Uses PIL's C resampler.

    Returns:
        The warped array of shape ``(h, w[, C])`` and the input's dtype.
    """
    h, w = (size, size) if isinstance(size, int) else size
    inv = invert_affine(matrix)
    pil = Image.fromarray(np.ascontiguousarray(image))
    # PIL samples pixel centres at x+0.5: shift into and out of the centre convention.
    a, b, c = inv[0]
    d, e, f = inv[1]
    coeffs = (a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e))
    out = pil.transform((w, h), Image.AFFINE, coeffs,
                        resample=Image.NEAREST if nearest else Image.BILINEAR, fillcolor=fill)
    return np.asarray(out)


def align_multipie(image: np.ndarray, landmarks: np.ndarray, size: int = 128, mask: np.ndarray | None = None):
    """Crop a face as Multi-PIE is prepared for TP-GAN, from its 68 landmarks.

    Args:
        image: ``(H, W, 3)`` uint8.
        landmarks: ``(68, 2)`` (x, y) pixels of ``image``.
        size: crop side.
        mask: optional ``(H, W)`` label map warped with nearest sampling.

    Returns:
        ``(aligned image (size, size, 3), aligned landmarks (68, 2), aligned mask or None, matrix (2, 3))``.
    """
    m = multipie_alignment(landmarks_68_to_5(np.asarray(landmarks, np.float64)), size)
    out = warp_affine(image, m, size)
    lm = transform_points(np.asarray(landmarks, np.float64), m).astype(np.float32)
    out_mask = warp_affine(mask, m, size, nearest=True) if mask is not None else None
    return out, lm, out_mask, m


def crop_patches(images: torch.Tensor, centers: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop fixed-size patches around (per-sample) centres, zero-padded outside the image.

    The top-left corner is ``round(center - size/2)`` (pixel-exact, no resampling), so a patch cut at
    TP-GAN's fixed part centre from an aligned face is the same pixels the local pathway must predict.

    Args:
        images: ``(B, C, H, W)``.
        centers: ``(B, 2)`` or ``(2,)`` (x, y) pixel centres.
        size: ``(h, w)`` of the patches.

    Returns:
        ``(B, C, h, w)`` patches; differentiable w.r.t. ``images``.
    """
    if images.ndim != 4:
        raise ValueError(f"crop_patches expects (B, C, H, W) images, got {tuple(images.shape)}")
    b, _, height, width = images.shape
    h, w = size
    centers = torch.as_tensor(centers, dtype=torch.float32).reshape(-1, 2).expand(b, 2)
    top_left = torch.round(centers - torch.tensor([w / 2.0, h / 2.0])).long()
    pad = max(h, w)
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    out = []
    for i in range(b):
        x0, y0 = int(top_left[i, 0]) + pad, int(top_left[i, 1]) + pad
        x0 = min(max(x0, 0), width + pad)
        y0 = min(max(y0, 0), height + pad)
        out.append(padded[i, :, y0:y0 + h, x0:x0 + w])
    return torch.stack(out)


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop of a face: the oriented square (4 corners) of Karras et al.'s dataset tool.

    From the 68 iBUG points: eyes' and mouth's centres give the crop's centre (eye centre moved 10 % towards the
    mouth), orientation (eye-to-eye direction, tilted by the eye-to-mouth one) and half-size
    ``max(2·|eye-to-eye|, 1.8·|eye-to-mouth|)`` (``NVlabs/ffhq-dataset: download_ffhq.py recreate_aligned_images``,
    used by ``eladrich/pixel2style2pixel: scripts/align_all_parallel.py``).

    Args:
        landmarks: ``(68, 2)`` (x, y) pixels.

    Returns:
        ``(4, 2)`` corners: top-left, bottom-left, bottom-right, top-right.
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"ffhq_quad needs (68, 2) landmarks, got {lm.shape}")
    eye_left, eye_right = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_left + eye_right) / 2, eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def align_ffhq(image: np.ndarray, landmarks: np.ndarray, size: int = 256) -> np.ndarray:
    """Warp a photo to the FFHQ crop of its face (:func:`ffhq_quad`), ``size`` × ``size``, bilinear.

    Pixels of the quad outside the photo are black (the dataset tool pads with a blurred reflection; facezoo
    keeps the plain crop).

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` (x, y) pixels of ``image``.
        size: output side.

    Returns:
        ``(size, size, 3)`` uint8.
    """
    quad = ffhq_quad(landmarks)
    dst = np.array([[0, 0], [0, size], [size, size], [size, 0]], np.float64)
    matrix = umeyama(quad, dst)        # the quad is a square: a similarity maps it exactly
    return warp_affine(image, matrix, size)


#: How :func:`align_photo` crops a face: ``"ffhq"`` (the FFHQ crop of the largest face's 68 points) or ``"center"``
#: (shorter side resized, central square; for pictures that are aligned already).
ALIGNMENTS = ("ffhq", "center")


def align_photo(image: np.ndarray, size: int, align: str = "ffhq", detector=None, name: str = "photo") -> np.ndarray:
    """A photo cropped to its face as the StyleGAN2 / pSp networks expect it: the FFHQ crop or a centre crop.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.
        size: output side.
        align: ``"ffhq"`` (the largest face found by ``detector``, :func:`align_ffhq`) or ``"center"``
            (:func:`facezoo.face.photo.center_crop`; no detector).
        detector: a landmark backend (:class:`facezoo.face.detect.LandmarkDetector`), needed for ``"ffhq"``.
        name: how errors call the photo (e.g. its path).

    Returns:
        ``(size, size, 3)`` uint8.

    Raises:
        FacezooError: an unknown ``align`` or no face found (one line).
    """
    from facezoo.face.detect import largest_face
    from facezoo.face.photo import center_crop
    from facezoo.utils import FacezooError

    if align not in ALIGNMENTS:
        raise FacezooError(f"align={align!r}: use one of {', '.join(ALIGNMENTS)}")
    if align == "center":
        return center_crop(image, int(size))
    if detector is None:
        raise ValueError("align_photo(align='ffhq') needs a landmark detector")
    face = largest_face(detector.detect(image), name)
    return align_ffhq(image, face.landmarks, int(size))


def read_aligned(path, size: int, align: str = "ffhq", detector: str = "auto", detector_weights=None,
                 device: str = "cpu") -> np.ndarray:
    """Read a photo and crop it to its face (:func:`align_photo`): the input of StyleGAN2 projection and pSp.

    Args:
        path: the photo (anything :func:`facezoo.face.photo.read_photo` reads).
        size: output side.
        align: ``"ffhq"`` (dlib / face-alignment 68 points → the FFHQ crop of ``NVlabs/ffhq-dataset`` and pSp's
            ``scripts/align_all_parallel.py``) or ``"center"`` (resize + centre crop, no detector).
        detector: landmark backend name for ``"ffhq"`` (:func:`facezoo.face.detect.get_detector`).
        detector_weights: face-alignment's weight folder.
        device: where the detector runs.

    Returns:
        ``(size, size, 3)`` uint8 RGB.

    Raises:
        FacezooError: unreadable photo, unknown ``align``, no face, or no detector available (one line).
    """
    from facezoo.face.photo import read_photo
    from facezoo.utils import FacezooError

    if align not in ALIGNMENTS:     # before reading or loading anything
        raise FacezooError(f"align={align!r}: use one of {', '.join(ALIGNMENTS)}")
    image = read_photo(path)
    backend = None
    if align == "ffhq":
        from facezoo.face.detect import get_detector

        backend = get_detector(detector, detector_weights, device, path_arg="detector_weights")
    return align_photo(image, size, align, backend, str(path))
