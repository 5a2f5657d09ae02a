"""What the scripts that train facezoo's synthetic-face evaluation networks share: their options and their loop.

``scripts/train_landmark_net.py``, ``scripts/train_identity_net.py`` and ``scripts/train_face_parser.py`` each
train one small network on the renderer's faces for a fixed number of steps, print its held-out score and write it
with :meth:`~facezoo.nets.weights.PackagedNet.save_checkpoint`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence

import torch

__all__ = ["script_parser", "parse_arguments", "report", "descend", "run_steps"]


def script_parser(doc: str, *, steps: int, batch_size: int, lr: float, width: int, identities: int,
                  batch_help: str = "faces per step") -> argparse.ArgumentParser:
    """The script's parser (described by the first paragraph of ``doc``) with the shared options, these defaults:
    ``--out --steps --batch-size --size --width --lr --seed --identities --num-workers --blur``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="checkpoint file to write")
    parser.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
    parser.add_argument("--batch-size", type=int, default=batch_size, help=f"{batch_help} (default {batch_size})")
    parser.add_argument("--size", type=int, default=64, help="image side (default 64)")
    parser.add_argument("--width", type=int, default=width, help=f"channels of the stem (default {width})")
    parser.add_argument("--lr", type=float, default=lr, help=f"Adam (peak) learning rate (default {lr:g})")
    parser.add_argument("--seed", type=int, default=0, help="data and initialisation seed (default 0)")
    parser.add_argument("--identities", type=int, default=identities,
                        help=f"training identities (default {identities})")
    parser.add_argument("--num-workers", type=int, default=1, help="data loader workers (default 1)")
    parser.add_argument("--blur", type=float, default=0.5, help="probability of blurring a face (default 0.5)")
    return parser


def parse_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse ``argv``; exit with status 2 and one line when ``--steps`` or ``--batch-size`` is not positive."""
    args = parser.parse_args(argv)
    if args.steps < 1 or args.batch_size < 1:
        print(f"{parser.prog}: error: --steps and --batch-size must be positive", file=sys.stderr)
        sys.exit(2)
    return args


def report(meta: Mapping, summary: str) -> int:
    """Print the checkpoint's ``meta`` as JSON, then the one-line summary; returns the exit status 0."""
    print(json.dumps(dict(meta)))
    print(summary)
    return 0


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> float:
    """One gradient step on ``loss``; returns its value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def run_steps(batches: Iterable[Mapping], step: Callable[[Mapping], Mapping[str, float]], steps: int,
              schedule: torch.optim.lr_scheduler.LRScheduler | None = None, log_every: int = 100) -> float:
    """Call ``step(batch)`` (which returns its terms) on the first ``steps`` batches, stepping ``schedule`` after
    each and printing the terms every ``log_every`` steps and at the end; returns the seconds it took."""
    start = time.time()
    for i, batch in enumerate(batches, start=1):
        terms = step(batch)
        if schedule is not None:
            schedule.step()
        if i % log_every == 0 or i == steps:
            values = "  ".join(f"{name} {value:.4f}" for name, value in terms.items())
            print(f"step {i}/{steps}  {values}  ({time.time() - start:.0f} s)", flush=True)
        if i == steps:
            break
    return time.time() - start
