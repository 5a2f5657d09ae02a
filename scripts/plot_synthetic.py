"""Render a grid of facezoo's synthetic task views to ``docs/figures/synthetic_views.png``.

Usage::

    python scripts/plot_synthetic.py [--out docs/figures/synthetic_views.png] [--size 128] [--seed 0]

Rows: frontalization pairs (profile → frontal, Multi-PIE crop), re-posing triplets (A, B, C), makeup
triples (source, reference, ground truth), mask edits (image, mask, edited mask, edited image) and plain
faces with their 68 landmarks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from facezoo.data.synthetic import (
    SyntheticFaces,
    SyntheticFrontalization,
    SyntheticMakeup,
    SyntheticMaskEdit,
    SyntheticReposing,
)
from facezoo.face.photo import tensor_to_uint8

#: One colour per CelebAMask-HQ label (background, skin, nose, eye_g, l_eye, r_eye, l_brow, r_brow, l_ear,
#: r_ear, mouth, u_lip, l_lip, hair, hat, ear_r, neck_l, neck, cloth).
PALETTE = np.array([
    [0, 0, 0], [204, 153, 102], [255, 200, 0], [255, 255, 255], [0, 120, 255], [0, 220, 255],
    [120, 60, 0], [180, 100, 30], [255, 0, 120], [200, 0, 200], [60, 0, 0], [255, 40, 40],
    [160, 0, 60], [90, 50, 160], [0, 160, 80], [0, 255, 0], [150, 150, 0], [230, 120, 90],
    [60, 90, 140]], np.uint8)


def colour_mask(mask) -> np.ndarray:
    """``(H, W)`` label tensor → ``(H, W, 3)`` uint8 colour image."""
    return PALETTE[mask.numpy()]


def with_landmarks(image: np.ndarray, landmarks, colour=(0, 255, 0)) -> np.ndarray:
    """Draw the 68 landmarks as small dots (image-left eye 36-41 in red to show the index convention)."""
    im = Image.fromarray(image)
    draw = ImageDraw.Draw(im)
    for i, (x, y) in enumerate(landmarks.tolist()):
        c = (255, 0, 0) if 36 <= i < 42 else colour
        draw.ellipse([x - 1, y - 1, x + 1, y + 1], fill=c)
    return np.asarray(im)


def row(tiles: list[np.ndarray], label: str, size: int, width: int) -> np.ndarray:
    """One labelled row of tiles, padded to ``width`` tiles."""
    pad = 120
    canvas = Image.new("RGB", (pad + width * (size + 4), size + 4), (255, 255, 255))
    ImageDraw.Draw(canvas).multiline_text((4, size // 2 - 12), label, fill=(0, 0, 0))
    for i, tile in enumerate(tiles):
        canvas.paste(Image.fromarray(tile), (pad + i * (size + 4) + 2, 2))
    return np.asarray(canvas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/synthetic_views.png")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    s, width = args.size, 8
    kw = dict(split="test", size=s, length=64, num_identities=16, seed=args.seed)
    rows = []

    front = SyntheticFrontalization(yaws=(15, 30, 45, 60, 75), **kw)
    for r in range(2):
        tiles = []
        for i in range(4 * r, 4 * r + 4):
            smp = front[i]
            tiles += [tensor_to_uint8(smp["image"]), tensor_to_uint8(smp["target"])]
        rows.append(row(tiles, "frontalization\n(profile, frontal)\nMulti-PIE crop", s, width))

    repose = SyntheticReposing(**kw)
    for r in range(2):
        tiles = []
        for i in (2 * r, 2 * r + 1):
            smp = repose[i]
            tiles += [tensor_to_uint8(smp[k]) for k in ("image", "target", "third")]
            tiles.append(with_landmarks(np.zeros((s, s, 3), np.uint8) + 40, smp["target_landmarks"]))
        rows.append(row(tiles, "re-posing\n(A, B, C,\nB's landmarks)", s, width))

    makeup = SyntheticMakeup(**kw)
    for r in range(2):
        tiles = []
        for i in (2 * r, 2 * r + 1):
            smp = makeup[i]
            target, image = (tensor_to_uint8(smp[k]).astype(int) for k in ("target", "image"))
            diff = np.abs(target - image).sum(-1)
            tiles += [tensor_to_uint8(smp[k]) for k in ("image", "reference", "target")]
            tiles.append(np.repeat((diff.clip(0, 85) * 3).astype(np.uint8)[..., None], 3, -1))
        rows.append(row(tiles, "makeup\n(source, reference,\ntruth, |truth-src|)", s, width))

    edit = SyntheticMaskEdit(**kw)
    for r in range(2):
        tiles = []
        for i in (2 * r, 2 * r + 1):
            smp = edit[i]
            tiles += [tensor_to_uint8(smp["image"]), colour_mask(smp["mask"]), colour_mask(smp["target_mask"]),
                      tensor_to_uint8(smp["target"])]
        rows.append(row(tiles, "mask edit\n(image, mask,\nedited mask, truth)", s, width))

    faces = SyntheticFaces(**kw)
    rows.append(row([with_landmarks(tensor_to_uint8(faces[i]["image"]), faces[i]["landmarks"]) for i in range(8)],
                    "plain faces\n+ 68 landmarks", s, width))
    masks = [colour_mask(faces[i]["mask"]) for i in range(8)]
    rows.append(row(masks, "plain faces:\nparsing masks", s, width))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, 0)).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
