"""Turn a `facezoo.evaluate` JSON into the markdown table docs/results.md shows.

    python scripts/results_table.py docs/results/tpgan_cpu_eval.json

Rows: the model and each ``baseline_<name>``; columns: the metrics they share, and the seconds per image of each
output. Lower or higher is better as ``facezoo.metrics.METRICS`` says (lower for fid, fld and time); the best value of
each column is bold.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facezoo.metrics import METRICS

HIGHER_IS_BETTER = {name for name, spec in METRICS.items() if spec.higher_is_better}


def table(result: dict) -> str:
    metrics = result["metrics"]
    rows: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        name, _, metric = key.rpartition("/")
        rows.setdefault(name or "model", {})[metric] = value
    order = ("l1", "mse", "psnr", "ssim", "ms_ssim", "lpips", "id_sim", "id_sim_synthetic", "nme", "fid", "fld",
             "l1_edited", "mask_accuracy", "mask_miou", "mask_accuracy_edited", "seconds_per_image")
    columns = [m for m in order if all(m in r for r in rows.values())]
    best = {m: (max if m in HIGHER_IS_BETTER else min)(r[m] for r in rows.values()) for m in columns}
    arrows = {m: "↑" if m in HIGHER_IS_BETTER else "↓" for m in columns}
    lines = ["| output | " + " | ".join(f"{m} {arrows[m]}" for m in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for name, values in sorted(rows.items(), key=lambda kv: (kv[0] != "model", kv[0])):
        cells = [f"**{values[m]:.4f}**" if values[m] == best[m] else f"{values[m]:.4f}" for m in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    skipped = result.get("skipped") or ({"lpips": result["lpips"]} if "lpips" in result else {})
    note = f"{result['num_samples']} samples of the `{result['split']}` split"
    note += "".join(f"; {name}: {why}" for name, why in sorted(skipped.items())) + "."
    return "\n".join(lines) + "\n\n" + note


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("json", type=Path)
    print(table(json.loads(p.parse_args().json.read_text())))


if __name__ == "__main__":
    main()
