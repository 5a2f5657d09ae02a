#!/usr/bin/env python
"""Train facezoo's synthetic-face parser (facezoo.nets.parser), MaskGAN's segmentation-accuracy tool.

    python scripts/train_face_parser.py --out ~/.cache/facezoo/facezoo_synthetic_parser_64.pt

The network learns the 19 CelebAMask-HQ labels of ``SyntheticFaces`` training samples (random pose, expression,
light, makeup and background; half of the faces blurred by a Gaussian of σ ∈ [0.3, 1.2] px so that it also parses
the softer images GANs produce) with pixel cross-entropy. At the end it parses faces of the **test** split
(identities never seen), sharp and all blurred, and prints and stores in the checkpoint's ``meta`` their pixel
accuracy and mean IoU: the numbers that say how much a ``mask_accuracy`` value means (docs/results.md). A file in the
facezoo cache directory (``$FACEZOO_CACHE``, default ``~/.cache/facezoo``) under the name above takes the place of
the one the package ships. Training is a pure function of the arguments (on one machine).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from facezoo.data.synthetic import SyntheticFaces
from facezoo.metrics import mean_iou, pixel_accuracy
from facezoo.nets.parser import SyntheticFaceParser
from facezoo.nets.training import descend, parse_arguments, report, run_steps, script_parser
from facezoo.ops import random_blur


@torch.no_grad()
def held_out_scores(net: SyntheticFaceParser, size: int, samples: int, seed: int) -> dict:
    """Pixel accuracy and mean IoU of the parsed test faces, sharp and blurred (σ ∈ [0.3, 1.2] px)."""
    test = SyntheticFaces("test", size=size, length=samples, num_identities=100, seed=seed)
    items = [test[i] for i in range(len(test))]
    images, masks = torch.stack([s["image"] for s in items]), torch.stack([s["mask"] for s in items])
    blurred = random_blur(images, torch.Generator().manual_seed(seed), prob=1.0)
    net.eval()
    scores = {"test_faces": len(items)}
    for name, x in (("", images), ("_blurred", blurred)):
        parsed = torch.cat([net(chunk) for chunk in x.split(64)])
        scores[f"test_pixel_accuracy{name}"] = round(float(pixel_accuracy(parsed, masks)), 5)
        scores[f"test_miou{name}"] = round(float(mean_iou(parsed, masks)), 5)
    return scores


def train(out: Path, steps: int = 1500, batch_size: int = 32, size: int = 64, width: int = 16, lr: float = 2e-3,
          seed: int = 0, identities: int = 1000, test_samples: int = 256, num_workers: int = 1, blur: float = 0.5,
          log_every: int = 100) -> dict:
    """Train, test on held-out identities and save; returns the checkpoint's ``meta``."""
    torch.manual_seed(seed)
    net = SyntheticFaceParser(size=size, width=width)
    data = SyntheticFaces("train", size=size, length=steps * batch_size, num_identities=identities, seed=seed,
                          yaw_range=(-40.0, 40.0))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                         generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    net.train()

    def step(batch):
        logits = net.logits(random_blur(batch["image"], generator, blur))
        return {"cross_entropy": descend(optimizer, F.cross_entropy(logits, batch["mask"]))}

    seconds = run_steps(loader, step, steps, schedule, log_every)
    meta = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "train_identities": identities,
            "data": f"SyntheticFaces(size={size}, yaw_range=(-40, 40))", "blur": blur,
            "train_seconds": round(seconds, 1), **held_out_scores(net, size, test_samples, seed)}
    net.save_checkpoint(out, **meta)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(__doc__, steps=1500, batch_size=32, lr=2e-3, width=16, identities=1000)
    parser.add_argument("--test-samples", type=int, default=256, help="held-out test faces (default 256)")
    args = parse_arguments(parser, argv)
    meta = train(Path(args.out), args.steps, args.batch_size, args.size, args.width, args.lr, args.seed,
                 args.identities, args.test_samples, args.num_workers, args.blur)
    return report(meta, f"wrote {args.out}; held-out pixel accuracy {meta['test_pixel_accuracy']:.4f} (blurred "
                  f"{meta['test_pixel_accuracy_blurred']:.4f}), mIoU {meta['test_miou']:.4f} (blurred "
                  f"{meta['test_miou_blurred']:.4f}) on {meta['test_faces']} faces")


if __name__ == "__main__":
    sys.exit(main())
