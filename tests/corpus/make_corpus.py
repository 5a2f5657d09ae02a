"""The bad-input corpus of issue 13: functions that write one bad file each into a folder, at test time.

Nothing here is committed as a binary: every file is made from numpy, Pillow, skimage's astronaut or a freshly
built network, at the smallest size that still shows the problem. Each function returns the path it wrote.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def _save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


# ------------------------------------------------------------------------------------------- label maps
def mask_labels_outside(folder: Path, size: int = 64, high: int = 25) -> Path:
    """A one-channel map whose ids run up to ``high`` (CelebAMask-HQ has 0..18)."""
    ids = np.zeros((size, size), np.uint8)
    ids[size // 2:, :] = high
    return _save(folder / "labels_outside.png", ids)


def mask_wrong_size(folder: Path, width: int = 48, height: int = 64) -> Path:
    """A valid map that is not square."""
    return _save(folder / "wrong_size.png", np.zeros((height, width), np.uint8))


def mask_in_colours(folder: Path, size: int = 64) -> Path:
    """A label map drawn in CelebAMask-HQ's colours (what a viewer shows), not its ids."""
    from facezoo.face.labels import CELEBAMASK_HQ_COLORS

    ids = np.zeros((size, size), np.int64)
    ids[8:-8, 8:-8] = 1                               # skin
    ids[20:28, 20:44] = 4                             # an eye
    return _save(folder / "colours.png", np.asarray(CELEBAMASK_HQ_COLORS, np.uint8)[ids])


def mask_celebamask_ids(folder: Path, size: int = 64) -> Path:
    """CelebAMask-HQ ids up to 18 (hair is 13, the neck 17): read in MT's order (0..13) they do not fit."""
    ids = np.zeros((size, size), np.uint8)
    ids[:8] = 13
    ids[-8:] = 17
    return _save(folder / "celebamask_ids.png", ids)


# ------------------------------------------------------------------------------------------ checkpoints
def foreign_checkpoint(folder: Path, method: str, cls: str) -> Path:
    """A facezoo checkpoint of another method (``facezoo.methods.<method>.module.<cls>``), empty weights: the
    method is told from the config, before any weight is read."""
    path = folder / f"{method}.ckpt"
    torch.save({"state_dict": {}, "facezoo_config": {"model": {"_target_": f"facezoo.methods.{method}.module.{cls}"}}},
               path)
    return path


# ------------------------------------------------------------------------------------------- state dicts
def state_dict_variants(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """``missing`` (the first two entries dropped), ``extra`` (two entries added), ``wrong_shape`` (the first two
    entries of rank > 1 one larger in every dimension) versions of a valid state dict."""
    keys = list(state)
    tensors = [k for k in keys if state[k].ndim > 1][:2]
    missing = {k: v for k, v in state.items() if k not in keys[:2]}
    extra = {**state, "extra.0.weight": torch.zeros(1), "extra.1.weight": torch.zeros(1)}
    wrong = {k: torch.zeros(*(s + 1 for s in v.shape)) if k in tensors else v for k, v in state.items()}
    return {"missing": missing, "extra": extra, "wrong_shape": wrong}


def damaged_weights(folder: Path, name: str = "G.pth") -> Path:
    """Not a torch file at all (the first bytes of a PNG)."""
    path = folder / name
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return path


# ----------------------------------------------------------------------------------------------- points
def non_utf8_points(folder: Path, suffix: str = ".txt") -> Path:
    """A points file in Latin-1 with a comment (``é`` is the byte 0xe9, not UTF-8)."""
    path = folder / f"points{suffix}"
    body = "".join(f"{x} {x}\n" for x in range(68))
    if suffix == ".pts":
        body = f"version: 1\nn_points: 68\n{{\n{body}}}\n"
    path.write_bytes("# points relevés à la main\n".encode("latin-1") + body.encode())
    return path


# ----------------------------------------------------------------------------------------------- photos
def two_faces(folder: Path, scale: float = 0.8) -> Path:
    """The astronaut at full size and at ``scale`` side by side (dlib, after facezoo's 361-pixel downscale, finds
    both at 0.8; at 0.7 and below it misses the smaller one)."""
    import skimage.data

    face = skimage.data.astronaut()
    n = int(512 * scale)
    small = np.asarray(Image.fromarray(face).resize((n, n), Image.BILINEAR))
    canvas = np.full((512, 512 + n, 3), 128, np.uint8)
    canvas[:, :512] = face
    canvas[(512 - n) // 2:(512 - n) // 2 + n, 512:] = small
    return _save(folder / "two_faces.png", canvas)


def huge_photo(folder: Path, side: int = 6000) -> Path:
    """A ``side`` × ``side`` PNG, written as a one-bit image (4.5 MB in memory, a small file): what matters is the
    size its header declares."""
    path = folder / f"huge_{side}.png"
    Image.new("1", (side, side), 1).save(path)
    return path


# ----------------------------------------------------------------------------------------------- datasets
def folder_with_a_damaged_image(folder: Path, n: int = 4, damaged: int = 2) -> tuple[Path, Path]:
    """A folder dataset (``data=folder``) of ``n`` 80×80 PNGs, the ``damaged``-th cut after 60 bytes."""
    root = folder / "faces"
    root.mkdir()
    for i in range(n):
        _save(root / f"{i}.png", np.full((80, 80, 3), 40 * i, np.uint8))
    bad = root / f"{damaged}.png"
    bad.write_bytes(bad.read_bytes()[:60])
    return root, bad
