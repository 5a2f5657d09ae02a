"""Convert an NVlabs stylegan2-ada-pytorch generator to rosinality's checkpoint format (what pSp and facezoo load).

    # a network pickle (needs the stylegan2-ada-pytorch code for its classes: dnnlib, torch_utils, legacy.py)
    python scripts/convert_stylegan2.py ffhq.pkl stylegan2-ffhq-ada.pt --ada-repo /path/to/stylegan2-ada-pytorch
    # a state dict exported from it: torch.save(G_ema.state_dict(), "g_ema.pt") or {"G_ema": state_dict}
    python scripts/convert_stylegan2.py g_ema.pt stylegan2-ffhq-ada.pt

Writes ``{"g_ema": state_dict, "latent_avg": (w_dim,)}`` (``facezoo.nets.stylegan2.save_rosinality``).
``latent_avg`` is the generator's tracked ``mapping.w_avg``; when the source has none (pixel2style2pixel #24), it
is the mean of ``--n-mean-latent`` (10^5, as pSp's ``coach.py``) mapped samples. The result is checked by
loading it back strictly; with a pickle, ``--verify`` also compares images against the stylegan2-ada generator
(const noise, fp32) and prints the largest difference.

The mapping itself is ``facezoo.nets.stylegan2.convert_stylegan2_ada_state_dict`` (documented there).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def read_source(path: Path, key: str, ada_repo: Path | None):
    """(state_dict, module or None) from a network pickle or a saved state dict."""
    if path.suffix == ".pkl":
        if ada_repo is not None:
            sys.path.insert(0, str(ada_repo.resolve()))
        try:
            import legacy  # stylegan2-ada-pytorch/legacy.py
        except ImportError as err:
            raise SystemExit(f"error: {path} is a network pickle; its classes need the stylegan2-ada-pytorch code: "
                             f"pass --ada-repo PATH ({err})") from None
        with open(path, "rb") as f:
            data = legacy.load_network_pkl(f)
        if key not in data:
            raise SystemExit(f"error: {path} has no {key!r} (has {sorted(data)})")
        module = data[key].eval().requires_grad_(False).float()
        return module.state_dict(), module
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise SystemExit(f"error: {path} holds a {type(obj).__name__}, not a state dict")
    return obj, None


@torch.no_grad()
def verify(module, generator, latent_avg, seed: int = 0) -> float:
    """Largest |difference| between the stylegan2-ada generator and the converted one (4 images, const noise)."""
    z = torch.randn(4, generator.style_dim, generator=torch.Generator().manual_seed(seed))
    c = torch.zeros(4, getattr(module, "c_dim", 0))
    reference = module(z, c, noise_mode="const", force_fp32=True)
    image, _ = generator([z], randomize_noise=False)
    return float((image - reference).abs().max())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="network pickle (.pkl) or state dict (.pt/.pth)")
    parser.add_argument("out", type=Path, help="output rosinality-format .pt")
    parser.add_argument("--key", default="G_ema", help="network in the pickle / dict (default G_ema)")
    parser.add_argument("--ada-repo", type=Path, help="stylegan2-ada-pytorch checkout (to read pickles)")
    parser.add_argument("--n-mean-latent", type=int, default=100_000,
                        help="samples for latent_avg when the source has no mapping.w_avg (default 1e5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of those samples")
    parser.add_argument("--verify", action="store_true", help="compare images with the pickle's generator")
    args = parser.parse_args(argv)

    from facezoo.nets.stylegan2 import Generator, convert_stylegan2_ada_state_dict, load_rosinality, save_rosinality
    from facezoo.utils import FacezooError

    try:
        state_dict, module = read_source(args.source, args.key, args.ada_repo)
        converted, latent_avg, config = convert_stylegan2_ada_state_dict(
            state_dict, n_mean_latent=args.n_mean_latent, seed=args.seed, source=str(args.source))
    except FacezooError as err:
        raise SystemExit(f"error: {err}") from None
    generator = Generator(**config).eval()
    generator.load_state_dict(converted, strict=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_rosinality(args.out, generator, latent_avg)
    reloaded, _ = load_rosinality(args.out)
    avg_from = "mapping.w_avg" if "mapping.w_avg" in state_dict else f"mean of {args.n_mean_latent} mapped samples"
    print(f"wrote {args.out}: {reloaded.size} px, style_dim {reloaded.style_dim}, n_mlp {reloaded.n_mlp}, "
          f"channels {[reloaded.channels[2**i] for i in range(2, reloaded.log_size + 1)]}, latent_avg = {avg_from}")
    if args.verify:
        if module is None:
            raise SystemExit("error: --verify needs a network pickle (the stylegan2-ada module itself)")
        print(f"max |stylegan2-ada - converted| = {verify(module, generator, latent_avg):.3g}")


if __name__ == "__main__":
    main()
