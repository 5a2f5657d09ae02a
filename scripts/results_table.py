"""Turn a `facezoo.evaluate` JSON, or a run's validation history, into the markdown tables docs/results.md shows.

    python scripts/results_table.py docs/results/tpgan_cpu_eval.json
    python scripts/results_table.py runs/psgan_long/csv/metrics.csv --columns val/l1 val/hist_lip   # learning curve

Rows: the model and each ``baseline_<name>``; columns: the metrics they share, and the seconds per image of each
output. Lower or higher is better as ``facezoo.metrics.METRICS`` says (lower for fid, fld and time); the best value of
each column is bold.
"""

from __future__ import annotations

import argparse
import csv
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


def curve(metrics_csv: Path, columns: list[str]) -> str:
    """A learning curve from a run's ``csv/metrics.csv`` (Lightning's CSV logger): one row per validation (the rows
    with ``columns[0]``), the training batches run before it (the logger's ``step`` counts batches from 0) and the
    columns' values."""
    with open(metrics_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(columns[0])]
    lines = ["| batches | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for r in rows:
        cells = [f"{float(r[c]):.4f}" if r.get(c) else "–" for c in columns]
        lines.append(f"| {int(r['step']) + 1} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("path", type=Path, help="a facezoo.evaluate JSON, or a run's csv/metrics.csv")
    p.add_argument("--columns", nargs="+", default=["val/l1"], help="metrics.csv: the validation metrics to show")
    args = p.parse_args()
    if args.path.suffix == ".csv":
        print(curve(args.path, args.columns))
    else:
        print(table(json.loads(args.path.read_text())))


if __name__ == "__main__":
    main()
