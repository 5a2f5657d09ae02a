#!/usr/bin/env python
"""Export a facezoo StyleGAN2 checkpoint as a rosinality-format generator file (what pSp decodes with).

    python scripts/export_stylegan2.py runs/x/checkpoints/last.ckpt stylegan2_synthetic_64.pt

writes ``{"g_ema", "g", "d", "latent_avg", "args"}``: the EMA generator, the generator and discriminator state dicts
with rosinality's parameter names, ``latent_avg`` the mean w of 10^5 mapped samples, and ``args`` the architecture
(``size``, ``latent``, ``n_mlp``, ``channel_multiplier``, ``narrow``) as plain data. The released
``stylegan2-ffhq-config-f.pt`` has the same keys (``latent_avg`` aside), so one loader,
:func:`facezoo.nets.stylegan2.load_rosinality`, reads both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from facezoo.checkpoints import load
from facezoo.utils import FacezooError, atomic_write


def export(ckpt_path: str | Path, out: str | Path, n_mean_latent: int = 100_000) -> dict:
    """Write the rosinality-format file for a facezoo StyleGAN2 checkpoint; returns what was written."""
    model, _, _ = load(ckpt_path)
    if type(model).__name__ != "StyleGAN2":
        raise FacezooError(f"{ckpt_path}: a {type(model).__name__} checkpoint, not StyleGAN2")
    h = model.hparams
    with torch.no_grad():
        torch.manual_seed(0)
        latent_avg = model.generator_ema.mean_latent(n_mean_latent)[0]
    data = {"g_ema": model.generator_ema.state_dict(), "g": model.generator.state_dict(),
            "d": model.discriminator.state_dict(), "latent_avg": latent_avg.clone(),
            "args": {"size": int(h.image_size), "latent": int(h.latent_dim), "n_mlp": int(h.n_mlp),
                     "channel_multiplier": int(h.channel_multiplier), "narrow": float(h.width),
                     "lr_mlp": float(h.lr_mlp)}}
    atomic_write(out, lambda f: torch.save(data, f))
    return data


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpt", help="a facezoo StyleGAN2 checkpoint (runs/.../checkpoints/last.ckpt)")
    parser.add_argument("out", help="the rosinality-format file to write")
    parser.add_argument("--mean-latent-samples", type=int, default=100_000)
    args = parser.parse_args(argv)
    try:
        export(args.ckpt, args.out, args.mean_latent_samples)
    except FacezooError as err:
        print(f"export_stylegan2: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
