"""Evaluate a checkpoint on its task's test split, next to the task's trivial baselines.

    python -m facezoo.evaluate ckpt_path=runs/x/checkpoints/last.ckpt out=eval.json

The checkpoint carries the config it was trained with (data and model), so nothing else is needed.
The JSON holds flat metric keys: ``l1``, ``psnr``… for the model and ``baseline_<name>/<metric>`` for
each baseline (frontalization: ``baseline_input`` — the profile itself as the output — and
``baseline_mean_frontal`` — the mean frontal face of the training split), all on the same samples.
"""

from __future__ import annotations

import logging
import sys
from collections import defaultdict
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from facezoo.utils import FacezooError, atomic_write_json

log = logging.getLogger("facezoo.evaluate")


def load_checkpoint(ckpt_path: str | Path, data_overrides: dict | None = None, map_location="cpu"):
    """Rebuild ``(model, datamodule, config)`` from a facezoo checkpoint.

    Raises:
        FacezooError: the file is missing, unreadable or not a facezoo checkpoint (one-line message).
    """
    from hydra.utils import instantiate

    path = Path(ckpt_path)
    if not path.is_file():
        raise FacezooError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated or not a torch file
        raise FacezooError(f"{path}: cannot read checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(ckpt, dict) or "facezoo_config" not in ckpt or "state_dict" not in ckpt:
        raise FacezooError(f"{path}: not a facezoo checkpoint (no facezoo_config / state_dict)")
    cfg = OmegaConf.create(ckpt["facezoo_config"])
    if data_overrides:
        cfg.data = OmegaConf.merge(cfg.data, OmegaConf.create(dict(data_overrides)))
    datamodule = instantiate(cfg.data, _convert_="all")
    model = instantiate(cfg.model, _convert_="all")
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    model.eval()
    return model, datamodule, cfg


class _Accumulator:
    """Sample-weighted means of per-batch metric values."""

    def __init__(self):
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0

    def add(self, values: dict[str, float], n: int) -> None:
        for k, v in values.items():
            self.sums[k] += float(v) * n

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict:
    """Compute the model's and the baselines' metrics on the configured split; returns the JSON object."""
    model, datamodule, train_cfg = load_checkpoint(cfg.ckpt_path, cfg.get("data_overrides"))
    device = torch.device(cfg.device)
    model.to(device)
    dataset = datamodule.dataset(cfg.split)
    n = len(dataset) if cfg.limit_samples is None else min(int(cfg.limit_samples), len(dataset))
    subset = torch.utils.data.Subset(dataset, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=cfg.batch_size, shuffle=False)

    lpips_net = None
    if cfg.get("lpips_backbone"):
        try:
            from facezoo.nets.lpips_net import lpips_network

            lpips_net = lpips_network("alex", backbone_weights=cfg.lpips_backbone).to(device)
        except FileNotFoundError as err:
            log.warning("LPIPS skipped: %s", err)

    baselines = model.evaluation_baselines(datamodule, mean_face_samples=cfg.mean_face_samples)
    outputs = {"model": model.predict_batch, **{f"baseline_{k}": fn for k, fn in baselines.items()}}
    acc = {name: _Accumulator() for name in outputs}
    for batch in loader:
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        n_batch = batch["image"].shape[0]
        for name, fn in outputs.items():
            fake = fn(batch)
            values = model.evaluation_metrics(fake, batch)
            if name == "model":
                values.update(model.evaluation_model_metrics(batch))
            if lpips_net is not None:
                values["lpips"] = lpips_net(fake, batch["target"]).mean()
            acc[name].add(values, n_batch)
            acc[name].count += n_batch

    flat: dict[str, float] = {}
    for name, a in acc.items():
        prefix = "" if name == "model" else f"{name}/"
        flat.update({f"{prefix}{k}": round(v, 6) for k, v in a.means().items()})
    return {"checkpoint": str(cfg.ckpt_path), "model": train_cfg.model._target_, "split": cfg.split,
            "num_samples": n, "lpips": "alexnet backbone" if lpips_net is not None else "skipped (no weights)",
            "metrics": flat}


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        result = evaluate(cfg)
    except FacezooError as err:
        print(f"facezoo.evaluate: error: {err}", file=sys.stderr)
        sys.exit(2)
    out = Path(cfg.out) if cfg.out else Path(cfg.ckpt_path).resolve().parent.parent / "eval_metrics.json"
    atomic_write_json(out, result)
    log.info("wrote %s", out)
    print(OmegaConf.to_yaml(OmegaConf.create(result["metrics"])))


if __name__ == "__main__":
    main()
