#!/usr/bin/env python
"""Train facezoo's synthetic-face landmark network (facezoo.nets.landmarks), the NME evaluation tool.

    python scripts/train_landmark_net.py --out ~/.cache/facezoo/facezoo_synthetic_landmarks_64.pt --steps 1500

The network learns the 68 iBUG landmarks of the three faces of ``SyntheticReposing`` training samples
(identities of the train split, the same renderer settings GANnotation trains on). Half of the faces are
blurred by a Gaussian of σ ∈ [0, 1.2] px so that the detector also works on the softer images GANs produce.
At the end its NME (inter-ocular, :func:`facezoo.metrics.landmark_nme`) on ``--eval-samples`` samples of the
**test** split (held-out identities) is printed and stored in the checkpoint's ``meta`` — this is the number
reported next to the NME it measures (docs/results.md). Put the file in the facezoo cache directory
(``$FACEZOO_CACHE``, default ``~/.cache/facezoo``) under the name above, or pass its path as
``landmark_net=PATH`` where a config asks for it. Training is a pure function of the arguments (on one
machine); a few minutes on 2 CPU cores for the default 1500 steps.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from facezoo.data.synthetic import SyntheticReposing
from facezoo.nets.landmarks import HeatmapLandmarkNet, dataset_nme, stack_faces, training_step
from facezoo.nets.training import parse_arguments, report, run_steps, script_parser
from facezoo.ops import random_blur


def train(out: Path, steps: int = 1500, batch_size: int = 16, size: int = 64, width: int = 16, lr: float = 2e-3,
          seed: int = 0, identities: int = 200, eval_samples: int = 128, num_workers: int = 1,
          blur: float = 0.5, log_every: int = 100) -> dict:
    """Train, evaluate on the test identities and save; returns the checkpoint's ``meta``."""
    torch.manual_seed(seed)
    net = HeatmapLandmarkNet(num_points=68, size=size, width=width)
    data = SyntheticReposing("train", size=size, length=steps * batch_size, num_identities=identities, seed=seed)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    generator = torch.Generator().manual_seed(seed)

    def step(batch):
        images, points = stack_faces(batch)
        terms = training_step(net, optimizer, random_blur(images, generator, blur), points)
        return {"heatmap": terms["heatmap"], "coordinate_px": terms["coordinate"]}

    seconds = run_steps(loader, step, steps, schedule, log_every)
    test = SyntheticReposing("test", size=size, length=eval_samples, num_identities=50, seed=seed)
    nme = dataset_nme(net, test, eval_samples)
    meta = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "train_identities": identities,
            "data": f"SyntheticReposing(size={size})", "test_nme": round(nme, 5),
            "test_faces": 3 * min(eval_samples, len(test)), "train_seconds": round(seconds, 1)}
    net.save_checkpoint(out, **meta)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(__doc__, steps=1500, batch_size=16, lr=2e-3, width=16, identities=200,
                           batch_help="samples per step, 3 faces each")
    parser.add_argument("--eval-samples", type=int, default=128, help="held-out test samples (default 128)")
    args = parse_arguments(parser, argv)
    meta = train(Path(args.out), args.steps, args.batch_size, args.size, args.width, args.lr, args.seed,
                 args.identities, args.eval_samples, args.num_workers, args.blur)
    return report(meta, f"wrote {args.out}; held-out NME {meta['test_nme']:.4f} on {meta['test_faces']} test faces")


if __name__ == "__main__":
    sys.exit(main())
