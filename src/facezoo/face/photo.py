"""Photos in, photos out: reading and validating files, face crops, and pasting results back.

* :func:`read_photo` returns an RGB uint8 ``(H, W, 3)`` array for any file Pillow reads, or raises a
  one-line :class:`~facezoo.utils.FacezooError` naming the file (missing, unreadable, truncated, too small).
  It applies the EXIF orientation and converts what is safe to convert: grayscale → RGB, RGBA / LA /
  transparent palettes → RGB composited on white (logged), 16-bit → 8-bit by scaling, CMYK / YCbCr /
  palette → RGB.
* :func:`write_photo` writes through a temporary file and a rename, so an error never leaves half a file.
* :func:`official_crop_box` is PSGAN's face crop (``wtjiang98/PSGAN:faceutils/dlibutils/main.py: crop``,
  margins from ``psgan/config.py``): the face box grown by 0.6/0.85 of its height above, 0.2/0.85 of its
  height below and 0.2/0.85 of the *image* width on each side (as the official code does), clipped to
  the image, then cut to a square of the shorter side centred on the grown box.
* :func:`restore_details` is PSGAN's post-processing (``psgan/postprocess.py``): the network's low
  resolution result, upsampled, plus the high-frequency residual of the full-resolution source,
  ``source − up(down(source))``; :func:`paste_back` puts the patch into the photo, leaving every pixel
  outside the crop box untouched.

Example:
    >>> official_crop_box((170, 120, 290, 240), (480, 640))
    (113, 35, 346, 268)
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from facezoo.utils import FacezooError, atomic_write, check_writable

__all__ = [
    "MIN_SIDE",
    "MAX_PIXELS",
    "PSGAN_MARGINS",
    "open_image",
    "read_photo",
    "write_photo",
    "check_output_path",
    "official_crop_box",
    "crop",
    "center_crop",
    "resize",
    "resize_bilinear",
    "high_frequency_residual",
    "restore_details",
    "paste_back",
    "image_to_tensor",
    "tensor_to_image",
    "tensor_to_uint8",
]

log = logging.getLogger(__name__)

#: Smallest accepted photo side in pixels (below it dlib finds no face and crops are meaningless).
MIN_SIDE = 64
#: Largest accepted photo, in pixels (5000×5000): checked from the file's header before decoding, so a huge photo
#: is refused at no memory cost. Decoding alone takes several bytes a pixel, and the pipelines' paste-back works
#: on float64 copies of the whole photo (24 bytes a pixel each): a 6000×6000 photo would need gigabytes.
MAX_PIXELS = 25_000_000

#: PSGAN's crop margins (``psgan/config.py: PREPROCESS.UP_RATIO, DOWN_RATIO, WIDTH_RATIO``).
PSGAN_MARGINS = {"up": 0.6 / 0.85, "down": 0.2 / 0.85, "width": 0.2 / 0.85}

_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF",
                  ".tiff": "TIFF", ".webp": "WEBP"}


# ----------------------------------------------------------------------------------------- reading
def _to_uint8_rgb(img: Image.Image, name: str) -> np.ndarray:
    """Pillow image of any common mode → RGB uint8 array (logs the lossy conversions)."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(img).astype(np.float64)
        if values.min() < 0 or values.max() > 65535:
            raise FacezooError(f"{name}: 32-bit integer image with values outside 0..65535 is not supported")
        log.info("%s: 16-bit image scaled to 8 bits", name)
        gray = np.round(values / 257.0).astype(np.uint8)                # 65535 → 255, scaled not clipped
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        raise FacezooError(f"{name}: floating-point images are not supported; save it as 8- or 16-bit")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        log.info("%s: image has an alpha channel; composited on white", name)
        rgba = np.asarray(img.convert("RGBA")).astype(np.float64)
        alpha = rgba[..., 3:] / 255.0
        rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
        return np.round(rgb).astype(np.uint8)
    if mode != "RGB":                                                    # L, 1, CMYK, YCbCr, LAB, HSV
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def open_image(path: str | os.PathLike, what: str = "image") -> Image.Image:
    """Open and decode an image file of any mode (label maps included), or one line naming it and ``what`` it is.

    Raises:
        FacezooError: ``<path>: <what> not found`` or ``<path>: unreadable or truncated <what> (<reason>)``.
    """
    try:
        with Image.open(path) as img:
            img.load()
            return img.copy()
    except FileNotFoundError:
        raise FacezooError(f"{path}: {what} not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise FacezooError(f"{path}: unreadable or truncated {what} ({reason})") from None


def read_photo(path: str | os.PathLike, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read a photo as RGB uint8, with one-line errors a user can act on.

    Args:
        path: image file (anything Pillow opens: PNG, JPEG, BMP, TIFF, WebP...).
        min_side: reject images whose shorter side is below this many pixels.
        max_pixels: reject images of more pixels than this, before decoding them (:data:`MAX_PIXELS`).

    Returns:
        ``(H, W, 3)`` uint8 RGB array in [0, 255], EXIF orientation applied.

    Raises:
        FacezooError: the file is missing, not an image, truncated, of an unsupported kind, too small or too
            large; the message starts with the path.

    Example:
        >>> import tempfile, os
        >>> tmp = tempfile.TemporaryDirectory()
        >>> p = os.path.join(tmp.name, "gray.png")
        >>> Image.fromarray(np.full((64, 80), 7, np.uint8)).save(p)
        >>> read_photo(p).shape, int(read_photo(p)[0, 0, 2])
        ((64, 80, 3), 7)
        >>> tmp.cleanup()
    """
    path = Path(path)
    if not path.is_file():
        raise FacezooError(f"{path}: no such file")
    try:
        with Image.open(path) as img:                   # reads the header only
            _check_pixels(path, img.size, max_pixels)
            img.load()                                   # decodes now: truncated files fail here
            img = ImageOps.exif_transpose(img)
            image = _to_uint8_rgb(img, str(path))
    except FacezooError:
        raise
    except UnidentifiedImageError:
        raise FacezooError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as err:
        raise FacezooError(f"{path}: {' '.join(str(err).split())}") from None
    except (OSError, ValueError, SyntaxError) as err:   # "image file is truncated", broken data
        message = " ".join(str(err).split())
        raise FacezooError(f"{path}: cannot read image, the file is damaged or truncated ({message})") from None
    h, w = image.shape[:2]
    if min(h, w) < min_side:
        raise FacezooError(f"{path}: image is {w}x{h} pixels; faces need at least {min_side} pixels per side")
    return image


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise FacezooError(f"{path}: image is {w}x{h} pixels ({w * h / 1e6:.1f} megapixels); facezoo reads photos of "
                           f"at most {max_pixels / 1e6:g} megapixels: downscale it first")


def check_output_path(path: str | os.PathLike) -> str:
    """Check that ``path`` has an image suffix :func:`write_photo` knows and can be written
    (:func:`facezoo.utils.check_writable`); returns the Pillow format name.

    Raises:
        FacezooError: unknown suffix, a folder, or a place that cannot be written (one line).

    Example:
        >>> check_output_path("out.JPG")
        'JPEG'
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FacezooError(f"{path}: unknown image format {path.suffix!r}; use one of {sorted(_WRITE_FORMATS)}")
    check_writable(path, "out")
    return fmt


def write_photo(path: str | os.PathLike, image: np.ndarray, **save_kwargs) -> Path:
    """Write an RGB uint8 image atomically (temporary file in the same folder, then a rename).

    Args:
        path: destination; its suffix picks the format (``.png``, ``.jpg``/``.jpeg``, ``.bmp``, ``.tif``,
            ``.webp``).
        image: ``(H, W, 3)`` uint8.
        save_kwargs: passed to ``PIL.Image.save`` (e.g. ``quality=95``).

    Returns:
        The written path.

    Raises:
        FacezooError: unknown suffix (nothing is written).
        ValueError: ``image`` is not ``(H, W, 3)`` uint8.
    """
    path = Path(path)
    fmt = check_output_path(path)
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"write_photo expects an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    return atomic_write(path, lambda f: Image.fromarray(np.ascontiguousarray(image)).save(f, format=fmt,
                                                                                           **save_kwargs))


# ------------------------------------------------------------------------------------------- crops
def official_crop_box(face_box, image_size: tuple[int, int], up: float = PSGAN_MARGINS["up"],
                      down: float = PSGAN_MARGINS["down"], width: float = PSGAN_MARGINS["width"]
                      ) -> tuple[int, int, int, int]:
    """PSGAN's square face crop box.

    With the face box ``(x0, y0, x1, y1)``, face height ``fh = y1 - y0`` and image ``(H, W)``:
    the grown box is ``left = int(max(0, x0 - width·W))``, ``top = int(max(0, y0 - up·fh))``,
    ``right = int(min(W, x1 + width·W))``, ``bottom = int(min(H, y1 + down·fh))``; the longer side is then
    cut to the shorter one around the grown box's centre (``int(centre - side/2)``), shifted back inside
    the grown box when it sticks out.

    The official code centres this square with the grown box's centre in *image* coordinates while it
    crops the already-cropped image, which shifts the square by the grown box's left/top offset; facezoo
    centres it on the grown box as intended.

    Args:
        face_box: ``(x0, y0, x1, y1)`` pixels, ``x1 - x0`` the face width.
        image_size: ``(H, W)`` of the photo.
        up, down: margins above / below the face, as fractions of the face height.
        width: margin left and right, as a fraction of the image width (official behaviour).

    Returns:
        ``(x0, y0, x1, y1)`` integer square box inside the image (``x1 - x0 == y1 - y0``).
    """
    H, W = int(image_size[0]), int(image_size[1])
    fx0, fy0, fx1, fy1 = (float(v) for v in face_box)
    if fx1 <= fx0 or fy1 <= fy0:
        raise ValueError(f"empty face box {tuple(face_box)}")
    face_h = fy1 - fy0
    left = int(max(0.0, fx0 - width * W))
    top = int(max(0.0, fy0 - up * face_h))
    right = int(min(float(W), fx1 + width * W))
    bottom = int(min(float(H), fy1 + down * face_h))
    w, h = right - left, bottom - top
    if w > h:
        start = int((left + right) / 2 - h / 2)
        start = min(max(start, left), right - h)
        return start, top, start + h, bottom
    if h > w:
        start = int((top + bottom) / 2 - w / 2)
        start = min(max(start, top), bottom - w)
        return left, start, right, start + w
    return left, top, right, bottom


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """``image[y0:y1, x0:x1]`` (a copy) for an integer box inside the image.

    Raises:
        ValueError: the box is empty or leaves the image.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    h, w = image.shape[:2]
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"crop box {tuple(box)} is empty or outside the {w}x{h} image")
    return image[y0:y1, x0:x1].copy()


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to ``size`` (Lanczos) and cut the central ``size`` × ``size`` square.

    Args:
        image: ``(H, W, 3)`` (or ``(H, W)``) uint8.
        size: output side.

    Returns:
        ``(size, size[, 3])`` uint8.

    Example:
        >>> center_crop(np.zeros((60, 90, 3), np.uint8), 32).shape
        (32, 32, 3)
    """
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    image = resize(image, (new_h, new_w), "lanczos")
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top:top + size, left:left + size]


def resize(image: np.ndarray, size: int | tuple[int, int], resample: str = "lanczos") -> np.ndarray:
    """Resize a uint8 image (or label map with ``resample="nearest"``) with Pillow.

    Args:
        image: ``(H, W)`` or ``(H, W, 3)`` uint8.
        size: side of a square, or ``(h, w)``.
        resample: ``"lanczos"`` (official PSGAN's ``ANTIALIAS`` for the network input), ``"bilinear"``,
            ``"nearest"``.

    Returns:
        The resized uint8 array, ``(h, w[, 3])``.
    """
    h, w = (size, size) if isinstance(size, int) else size
    method = {"lanczos": Image.LANCZOS, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[resample]
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((int(w), int(h)), method))


def resize_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Float bilinear resize with half-pixel centres and no antialiasing (OpenCV's ``INTER_LINEAR``).

    Args:
        image: ``(H, W, C)`` array, any real dtype.
        size: ``(h, w)``.

    Returns:
        ``(h, w, C)`` float64 array.
    """
    x = torch.from_numpy(np.asarray(image, dtype=np.float64)).permute(2, 0, 1)[None]
    y = F.interpolate(x, size=tuple(int(s) for s in size), mode="bilinear", align_corners=False)
    return y[0].permute(1, 2, 0).numpy()


def high_frequency_residual(source: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """``source − up(down(source))``: the detail a ``size`` resolution image cannot hold.

    Args:
        source: ``(H, W, 3)`` uint8 or float, full resolution.
        size: the low resolution (side or ``(h, w)``), e.g. 256.

    Returns:
        ``(H, W, 3)`` float64 residual, roughly in [-255, 255] for uint8 input.
    """
    h, w = (size, size) if isinstance(size, int) else size
    source = np.asarray(source, dtype=np.float64)
    return source - resize_bilinear(resize_bilinear(source, (h, w)), source.shape[:2])


def restore_details(result: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Upsample a low-resolution result to ``source``'s size and add ``source``'s high-frequency residual.

    ``out = clip(round(up(result) + source − up(down(source))), 0, 255)`` with the bilinear resampler of
    :func:`resize_bilinear`, as PSGAN's ``PostProcess``. If ``result`` equals ``down(source)``, ``out``
    equals ``source``.

    Args:
        result: ``(h, w, 3)`` uint8 or float in [0, 255], the network output.
        source: ``(H, W, 3)`` uint8, the full-resolution crop the network saw.

    Returns:
        ``(H, W, 3)`` uint8.

    Example:
        >>> src = np.random.default_rng(0).integers(0, 256, (40, 40, 3)).astype(np.uint8)
        >>> small = resize_bilinear(src, (16, 16))
        >>> bool((restore_details(small, src) == src).all())
        True
    """
    result = np.asarray(result)
    source = np.asarray(source)
    if result.ndim != 3 or source.ndim != 3 or result.shape[2] != 3 or source.shape[2] != 3:
        raise ValueError(f"expected (h, w, 3) and (H, W, 3) images, got {result.shape} and {source.shape}")
    up = resize_bilinear(result, source.shape[:2])
    out = up + high_frequency_residual(source, result.shape[:2])
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def paste_back(image: np.ndarray, patch: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A copy of ``image`` with ``patch`` written at ``box``; nothing outside the box changes.

    Args:
        image: ``(H, W, 3)`` uint8 photo.
        patch: ``(y1 - y0, x1 - x0, 3)`` uint8.
        box: integer ``(x0, y0, x1, y1)`` inside ``image``.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    x0, y0, x1, y1 = (int(v) for v in box)
    if patch.shape[:2] != (y1 - y0, x1 - x0):
        raise ValueError(f"patch of shape {patch.shape[:2]} does not fit box {tuple(box)}")
    crop(image, box)                                          # validates the box
    out = image.copy()
    out[y0:y1, x0:x1] = patch
    return out


# ------------------------------------------------------------------------------------------ tensors
def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` → float ``(1, 3, H, W)`` in [-1, 1]."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float().div(127.5).sub(1.0)


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """float ``(3, H, W)`` or ``(1, 3, H, W)`` in [-1, 1] → float ``(H, W, 3)`` in [0, 255] (not rounded).

    Values outside [-1, 1] are clipped.
    """
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {tensor.shape[0]}")
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] != 3:
        raise ValueError(f"expected (3, H, W), got {tuple(tensor.shape)}")
    x = tensor.detach().float().clamp(-1, 1).add(1).mul(127.5)
    return x.permute(1, 2, 0).cpu().numpy().astype(np.float64)


def tensor_to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """float ``(3, H, W)`` or ``(1, 3, H, W)`` in [-1, 1] → uint8 ``(H, W, 3)``: :func:`tensor_to_image`, rounded.

    Example:
        >>> tensor_to_uint8(torch.tensor([-1.0, 0.0, 1.0]).view(3, 1, 1)).tolist()
        [[[0, 128, 255]]]
    """
    return np.round(tensor_to_image(tensor)).astype(np.uint8)
