#!/usr/bin/env python
"""Train facezoo's synthetic-face identity network (facezoo.nets.identity), the offline identity-similarity tool.

    python scripts/train_identity_net.py --out ~/.cache/facezoo/facezoo_synthetic_identity_64.pt

The network learns the identities of ``SyntheticFaces`` training samples (each identity seen in random pose,
expression, light, makeup and background; half of the faces blurred by a Gaussian of σ ∈ [0.3, 1.2] px so that it
also works on the softer images GANs produce) with the CosFace loss. At the end it is tested on faces of the
**test** split (identities never seen): the ROC AUC of same-identity against different-identity pairs, and the
mean cosine similarity of each kind of pair, are printed and stored in the checkpoint's ``meta``: the numbers
that say how much an ``id_sim_synthetic`` value means (docs/results.md). Put the file in the facezoo cache
directory (``$FACEZOO_CACHE``, default ``~/.cache/facezoo``) under the name above, or pass its path as
``synthetic_identity_weights=PATH`` to ``facezoo.evaluate``. Training is a pure function of the arguments (on one
machine).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from facezoo.data.synthetic import SyntheticFaces
from facezoo.nets.identity import SyntheticIdentityNet, cosface_loss, roc_auc, verification_scores
from facezoo.nets.training import descend, parse_arguments, report, run_steps, script_parser
from facezoo.ops import random_blur


@torch.no_grad()
def held_out_verification(net: SyntheticIdentityNet, size: int, identities: int, views: int, seed: int) -> dict:
    """ROC AUC and mean similarities of all pairs among ``views`` faces of each of ``identities`` test identities."""
    test = SyntheticFaces("test", size=size, length=identities * views, num_identities=identities, seed=seed)
    samples = [test[i] for i in range(len(test))]
    images = torch.stack([s["image"] for s in samples])
    labels = torch.stack([s["identity"] for s in samples])
    same, different = verification_scores(net.eval(), images, labels)
    return {"test_auc": round(roc_auc(same, different), 5), "test_same_similarity": round(float(same.mean()), 4),
            "test_different_similarity": round(float(different.mean()), 4),
            "test_identities": identities, "test_views": views}


def train(out: Path, steps: int = 1500, batch_size: int = 64, size: int = 64, width: int = 16, dim: int = 128,
          lr: float = 2e-3, seed: int = 0, identities: int = 1000, test_identities: int = 100, test_views: int = 8,
          num_workers: int = 1, blur: float = 0.5, log_every: int = 100) -> dict:
    """Train, test on held-out identities and save; returns the checkpoint's ``meta``."""
    torch.manual_seed(seed)
    net = SyntheticIdentityNet(size=size, width=width, dim=dim)
    classes = torch.nn.Parameter(torch.randn(identities, dim) * 0.01)
    data = SyntheticFaces("train", size=size, length=steps * batch_size, num_identities=identities, seed=seed,
                          yaw_range=(-40.0, 40.0))
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=num_workers,
                                         generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam([*net.parameters(), classes], lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    net.train()

    def step(batch):
        embeddings = net(random_blur(batch["image"], generator, blur))
        return {"cosface": descend(optimizer, cosface_loss(embeddings, classes, batch["identity"]))}

    seconds = run_steps(loader, step, steps, schedule, log_every)
    meta = {"steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "train_identities": identities,
            "data": f"SyntheticFaces(size={size}, yaw_range=(-40, 40))", "blur": blur,
            "train_seconds": round(seconds, 1),
            **held_out_verification(net, size, test_identities, test_views, seed)}
    net.save_checkpoint(out, **meta)
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = script_parser(__doc__, steps=1500, batch_size=64, lr=2e-3, width=16, identities=1000)
    parser.add_argument("--dim", type=int, default=128, help="embedding size (default 128)")
    parser.add_argument("--test-identities", type=int, default=100, help="held-out identities (default 100)")
    parser.add_argument("--test-views", type=int, default=8, help="faces per held-out identity (default 8)")
    args = parse_arguments(parser, argv)
    if args.identities < 2 or args.test_views < 2:
        print("train_identity_net: error: --identities and --test-views must be at least 2", file=sys.stderr)
        return 2
    meta = train(Path(args.out), args.steps, args.batch_size, args.size, args.width, args.dim, args.lr, args.seed,
                 args.identities, args.test_identities, args.test_views, args.num_workers, args.blur)
    return report(meta, f"wrote {args.out}; held-out verification AUC {meta['test_auc']:.4f} (same-identity similarity "
                  f"{meta['test_same_similarity']:.3f}, different {meta['test_different_similarity']:.3f})")


if __name__ == "__main__":
    sys.exit(main())
