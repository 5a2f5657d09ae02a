"""How fast can PSGAN's generator learn to give back its input? A reference point for short CPU budgets.

Trains only the generator, only on the identity term ``|G(x, x) − x|₁`` (no discriminators, no makeup,
cycle or perceptual terms), on synthetic makeup sources, and prints the identity L1 on held-out faces every
``--every`` steps. The full objective also has to move the makeup, so within the same number of steps PSGAN
is not expected to re-synthesise the face better than this: when the probe's L1 is no lower than the trivial
baselines of ``facezoo.evaluate`` (the source unchanged, per-region histogram matching), the budget is too
short for PSGAN to beat them on L1. A measurement, not a proof.

    python scripts/psgan_reconstruction_probe.py --steps 800 --width 0.25 --size 64 --batch 8 --lr 1e-3

Output: one line per report (the first before training), ``step  seconds  identity_l1(test)``, and a final
JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.data import default_collate

from facezoo import losses
from facezoo.config import build_model
from facezoo.data.synthetic import SyntheticMakeup


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--width", type=float, default=0.25)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--test-samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    train = SyntheticMakeup("train", size=args.size, length=args.steps * args.batch, num_identities=400)
    test = SyntheticMakeup("test", size=args.size, length=args.test_samples, num_identities=32)
    model = build_model("model=psgan", f"data.size={args.size}", f"model.width={args.width}",
                        "model.frozen.perceptual_loss=null")       # the probe uses only the generator
    optimizer = torch.optim.Adam(model.generator.parameters(), args.lr, betas=(0.5, 0.999))
    test_x, _ = model.faces(default_collate([test[i] for i in range(len(test))]))

    def test_l1() -> float:
        with torch.no_grad():
            return float(losses.pixel_l1(model.generate(test_x, test_x), test_x.image))

    start, history = time.perf_counter(), [(0, 0.0, round(test_l1(), 4))]
    print(*history[0], flush=True)
    for step in range(1, args.steps + 1):
        batch = default_collate([train[i] for i in range((step - 1) * args.batch, step * args.batch)])
        x, _ = model.faces(batch)
        loss = losses.pixel_l1(model.generate(x, x), x.image)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps:
            history.append((step, round(time.perf_counter() - start, 1), round(test_l1(), 4)))
            print(*history[-1], flush=True)
    result = {"args": vars(args), "history": history, "final_identity_l1": history[-1][2]}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
