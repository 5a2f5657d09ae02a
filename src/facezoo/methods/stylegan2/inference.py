"""StyleGAN2 in, pictures out: samples of a generator, or the projection of a photo into its latent space.

    python -m facezoo.infer model=stylegan2 ckpt_path=CKPT out=grid.png n=16 truncation=0.7
    python -m facezoo.infer model=stylegan2 weights=stylegan2-ffhq-config-f.pt source=face.jpg out=x.png

A facezoo checkpoint (``ckpt_path``) uses its EMA generator; ``weights`` takes a rosinality-format file
(:func:`facezoo.nets.stylegan2.load_rosinality`). With ``source=`` the face is aligned (FFHQ crop from dlib's 68
points, or a centre crop), projected (:func:`facezoo.methods.stylegan2.project`), and the reconstruction is
written next to the aligned input; ``save_latents=`` keeps the latents and noise maps.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from omegaconf import DictConfig

from facezoo.utils import FacezooError, atomic_write

log = logging.getLogger("facezoo.infer.stylegan2")

__all__ = ["load_generator", "sample_grid", "run"]


def load_generator(cfg: DictConfig) -> torch.nn.Module:
    """The EMA generator of ``ckpt_path`` or the ``g_ema`` of a rosinality-format ``weights`` file."""
    from facezoo.checkpoints import load_method
    from facezoo.nets.stylegan2 import load_rosinality

    model, generator = load_method(cfg, "stylegan2", lambda path: load_rosinality(path)[0],
                                   "FILE.pt (a rosinality-format StyleGAN2 generator)")
    return generator if model is None else model.generator_ema


@torch.inference_mode()
def sample_grid(generator: torch.nn.Module, n: int, per_row: int, seed: int = 0,
                truncation: float = 1.0) -> np.ndarray:
    """``n`` samples from fixed z as one uint8 grid picture (rows of ``per_row``)."""
    from facezoo.callbacks import make_grid

    if n < 1 or per_row < 1:
        raise FacezooError(f"n and n_per_row must be positive, got {n}, {per_row}")
    device = next(generator.parameters()).device
    z = torch.randn(n, generator.style_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    kwargs = {}
    if truncation < 1:
        kwargs = {"truncation": truncation, "truncation_latent": generator.mean_latent(4096)}
    images = generator([z], randomize_noise=False, **kwargs)[0].clamp(-1, 1)
    rows = {str(r): images[r * per_row:(r + 1) * per_row] for r in range((n + per_row - 1) // per_row)}
    last = list(rows)[-1]
    if rows[last].shape[0] < per_row:   # pad the last row with white
        pad = torch.ones(per_row - rows[last].shape[0], *images.shape[1:], device=device)
        rows[last] = torch.cat([rows[last], pad])
    return make_grid(rows)


def run(cfg: DictConfig) -> np.ndarray:
    """``python -m facezoo.infer model=stylegan2 ...``: write a sample grid, or [aligned source | projection]."""
    from facezoo.face.align import read_aligned
    from facezoo.face.photo import check_output_path, image_to_tensor, tensor_to_uint8, write_photo

    if not cfg.get("out"):
        raise FacezooError("out= is required: python -m facezoo.infer model=stylegan2 ckpt_path=CKPT out=grid.png")
    check_output_path(cfg.out)
    generator = load_generator(cfg)
    if not cfg.get("source"):
        picture = sample_grid(generator, int(cfg.n), int(cfg.n_per_row), int(cfg.seed), float(cfg.truncation))
    else:
        from facezoo.methods.stylegan2.projection import project

        aligned = read_aligned(cfg.source, generator.size, cfg.get("align", "ffhq"), cfg.get("detector", "auto"),
                               cfg.get("detector_weights"), cfg.get("device", "cpu"))
        target = image_to_tensor(aligned).to(next(generator.parameters()).device)
        result = project(generator, target, steps=int(cfg.project_steps), space=str(cfg.space), seed=int(cfg.seed))
        log.info("projection distance %.4f after %d steps", result.losses[-1], len(result.losses))
        picture = np.concatenate([aligned, tensor_to_uint8(result.images[0])], axis=1)
        if cfg.get("save_latents"):
            data = {"latents": result.latents.cpu(), "noises": [n.cpu() for n in result.noises]}
            atomic_write(cfg.save_latents, lambda f: torch.save(data, f))
    write_photo(cfg.out, picture)
    log.info("wrote %s", cfg.out)
    return picture
