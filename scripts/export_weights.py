#!/usr/bin/env python
"""Export a facezoo checkpoint's weights as .safetensors, the format users share weights in.

    python scripts/export_weights.py runs/x/checkpoints/last.ckpt x.safetensors

The file holds the model's state dict (every network, EMA copies and buffers) as tensors, and its config and the
method's plain checkpoint extras as JSON metadata (:func:`facezoo.checkpoints.export_weights`). It loads wherever a
checkpoint does for inference and evaluation (``facezoo.load("x.safetensors")``, ``python -m facezoo.infer
ckpt_path=x.safetensors``, ``python -m facezoo.evaluate ckpt_path=x.safetensors``); it holds no optimizer state,
so training does not resume from it.
"""

from __future__ import annotations

import argparse
import sys

from facezoo.checkpoints import export_weights
from facezoo.utils import FacezooError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ckpt", help="a facezoo checkpoint (runs/.../checkpoints/last.ckpt)")
    parser.add_argument("out", help="the .safetensors file to write")
    parser.add_argument("--trust-checkpoint", action="store_true",
                        help="unpickle a checkpoint that holds Python objects (only files you made or trust)")
    args = parser.parse_args(argv)
    try:
        export_weights(args.ckpt, args.out, trust=args.trust_checkpoint)
    except FacezooError as err:
        print(f"export_weights: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
