#!/usr/bin/env python
"""Write MaskGAN's simulated edits once to disk, in the demo's aligned layout (``<phase>_label_inter_{1,2}/``).

    python scripts/make_inter_masks.py --vae runs/maskvae/checkpoints/last.ckpt --root data/maskgan_aligned

Stage 2 of MaskGAN (Editing Behaviour Simulated Training) renders two masks interpolated by the stage-1 MaskVAE
around each training mask. ``model=maskgan`` makes them on the fly (``facezoo.methods.maskgan.module.ebst_masks``);
this script makes them once for a dataset in the demo's layout (``MaskGAN_demo/data/aligned_dataset.py``:
``train_label/`` → ``train_label_inter_1/``, ``train_label_inter_2/``, one PNG of CelebAMask-HQ ids per mask, same
names), which ``data=celebamask_hq`` then reads as ``inter_mask_1/2`` and stage 2 uses instead of its own.

The recipe is the on-the-fly one (docs/methods/maskgan.md): ``argmax decode(z ∓ step·(z_ref − z))`` with ``z`` the
posterior mean of the mask and ``z_ref`` that of a reference mask: the previous mask in file order
(``--reference batch``, as ``ebst_masks`` takes the previous mask of a batch) or the mask under a small random
warp (``--reference perturbed``, seeded). Masks of another size than the VAE's are resized (nearest) to it and the
results back. Each file is written atomically; a run can be repeated.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from facezoo.data.celebamask import _listdir, _natural_key, read_label_map
from facezoo.methods.maskgan.module import interpolate_masks, load_mask_vae, perturb_masks
from facezoo.utils import FacezooError, atomic_write_bytes, user_errors


def _resized(mask: torch.Tensor, size: int) -> torch.Tensor:
    """``(B, H, W)`` ids → ``(B, size, size)`` (nearest)."""
    if tuple(mask.shape[-2:]) == (size, size):
        return mask
    return F.interpolate(mask[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()


def _png(ids: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(ids.astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@torch.no_grad()
def make_inter_masks(vae_path: str | Path, root: str | Path, phase: str = "train", step: float = 0.4,
                     reference: str = "batch", batch_size: int = 8, seed: int = 0, label_order: str = "celebamask_hq",
                     resolution: int | None = None) -> int:
    """Write ``<root>/<phase>_label_inter_{1,2}/<name>.png`` for every ``<root>/<phase>_label/<name>``; returns
    how many masks. ``resolution``: the VAE's (default: the size of the first mask)."""
    if reference not in ("batch", "perturbed"):
        raise FacezooError(f"--reference must be 'batch' or 'perturbed', got {reference!r}")
    if batch_size < 1:
        raise FacezooError("--batch-size must be positive")
    labels = Path(root) / f"{phase}_label"
    if not labels.is_dir():
        raise FacezooError(f"{labels}: no such folder (the demo's aligned layout: <root>/{phase}_label/)")
    names = sorted(_listdir(labels), key=_natural_key)
    if not names:
        raise FacezooError(f"{labels}: no label maps")
    masks = [torch.from_numpy(read_label_map(labels / name, label_order)) for name in names]
    vae = load_mask_vae(vae_path, resolution or masks[0].shape[-1])
    outs = [Path(root) / f"{phase}_label_inter_{k}" for k in (1, 2)]
    generator = torch.Generator().manual_seed(seed)
    for start in range(0, len(masks), batch_size):
        index = range(start, min(start + batch_size, len(masks)))
        shapes = [masks[i].shape for i in index]
        mask = torch.stack([_resized(masks[i][None], vae.resolution)[0] for i in index])
        if reference == "batch":      # the previous mask in file order (the last one's for the first)
            ref = torch.stack([_resized(masks[i - 1][None], vae.resolution)[0] for i in index])
        else:
            ref = perturb_masks(mask, generator=generator)
        inter = interpolate_masks(vae, mask, ref, (-step, step))
        for k, out in enumerate(outs):
            for j, i in enumerate(index):
                ids = F.interpolate(inter[k][j][None, None].float(), size=tuple(shapes[j]), mode="nearest")
                atomic_write_bytes(out / f"{Path(names[i]).stem}.png", _png(ids[0, 0].numpy()))
    return len(masks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vae", required=True, help="the stage-1 MaskVAE: a model=maskvae checkpoint or the demo's "
                                                     "VAE state dict")
    parser.add_argument("--root", required=True, help="a dataset in the demo's aligned layout")
    parser.add_argument("--phase", default="train", help="the folders' prefix (default train)")
    parser.add_argument("--step", type=float, default=0.4, help="edit distance, model.inter_step (default 0.4)")
    parser.add_argument("--reference", default="batch", help="batch (the previous mask) or perturbed (default batch)")
    parser.add_argument("--resolution", type=int, default=None, help="the VAE's mask size (default: the masks'; "
                                                                      "masks of another size are resized to it)")
    parser.add_argument("--batch-size", type=int, default=8, help="masks per VAE call (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the perturbed references (default 0)")
    parser.add_argument("--label-order", default="celebamask_hq", help="the masks' label scheme (default "
                                                                       "celebamask_hq; the outputs are always that)")
    args = parser.parse_args(argv)
    with user_errors("make_inter_masks"):
        n = make_inter_masks(args.vae, args.root, args.phase, args.step, args.reference, args.batch_size, args.seed,
                             args.label_order, args.resolution)
    print(f"wrote {n} masks to {args.root}/{args.phase}_label_inter_1/ and _2/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
