"""Evaluate a checkpoint on its task's test split, next to the task's trivial baselines.

    python -m facezoo.evaluate ckpt_path=runs/x/checkpoints/last.ckpt out=eval.json

The checkpoint carries the config it was trained with (data and model), so nothing else is needed. The
metrics are the ones the method lists (``model.metrics``, names of :data:`facezoo.metrics.METRICS`), computed
through the registry for the model and for every baseline on the same samples; those that need networks whose
weights are absent (LPIPS, identity similarity) are reported as skipped. The JSON holds flat metric keys:
``l1``, ``psnr``… for the model and ``baseline_<name>/<metric>`` for each baseline (frontalization:
``baseline_input`` — the profile itself as the output — and ``baseline_mean_frontal``), and for each output its
``seconds_per_image`` (wall time of its calls on the configured device / images).
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig, OmegaConf

from facezoo.checkpoints import load, method_of
from facezoo.config import check_command_line
from facezoo.metrics import DISTRIBUTION_METRICS
from facezoo.utils import atomic_write_json, check_writable, user_errors

log = logging.getLogger("facezoo.evaluate")


class _Accumulator:
    """Sample-weighted means of per-batch metric values."""

    def __init__(self):
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0

    def add(self, values: dict[str, float], n: int) -> None:
        for k, v in values.items():
            self.sums[k] += float(v) * n
        self.count += n

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


def metric_networks(names, cfg: DictConfig, device) -> tuple[dict, dict[str, str]]:
    """The networks the requested metrics need, built once: ``({keyword: net}, {metric: why skipped})``.

    ``lpips``: the AlexNet LPIPS (``lpips_backbone``); ``id_sim``: ArcFace IR-SE50 (``identity_weights``);
    ``id_sim_synthetic``: facezoo's synthetic-face identity network (``synthetic_identity_weights``).
    """
    from facezoo.nets.weights import WeightsNotFoundError

    builders = {"lpips": ("lpips_net", lambda: _lpips(cfg)), "id_sim": ("id_net", lambda: _arcface(cfg)),
                "id_sim_synthetic": ("synthetic_id_net", lambda: _synthetic_identity(cfg))}
    nets, skipped = {}, {}
    for name in names:
        if name not in builders:
            continue
        key, build = builders[name]
        try:
            net = build()
        except (WeightsNotFoundError, FileNotFoundError) as err:
            net, skipped[name] = None, f"skipped ({' '.join(str(err).split())})"
        if net is not None:
            nets[key] = net.to(device).eval()
        elif name not in skipped:
            skipped[name] = "skipped (off in the config)"
    for name, why in skipped.items():
        log.warning("%s %s", name, why)
    return nets, skipped


def _lpips(cfg: DictConfig):
    if not cfg.get("lpips_backbone"):
        return None
    from facezoo.nets.lpips_net import lpips_network

    return lpips_network("alex", backbone_weights=cfg.lpips_backbone)


def _arcface(cfg: DictConfig):
    if not cfg.get("identity_weights"):
        return None
    from facezoo.nets.irse import IRSE50

    return IRSE50.from_pretrained(None if cfg.identity_weights == "ir_se50" else cfg.identity_weights)


def _synthetic_identity(cfg: DictConfig):
    from facezoo.nets.identity import SyntheticIdentityNet

    return SyntheticIdentityNet.from_pretrained(cfg.get("synthetic_identity_weights"))


def distribution_metrics(names, outputs, cfg: DictConfig, device, skipped: dict) -> dict:
    """``{metric: {output name: FID accumulator}}`` for the requested ``fid`` / ``fld``; a metric whose network
    weights are absent is left out with a ``skipped`` line."""
    from facezoo.metrics import FID, distribution_extractor
    from facezoo.nets.weights import WeightsNotFoundError

    metrics = {}
    for name in names:
        try:
            extractor = distribution_extractor(name, cfg.get("fid_weights" if name == "fid" else "landmark_weights"))
        except (WeightsNotFoundError, FileNotFoundError) as err:
            skipped[name] = f"skipped ({' '.join(str(err).split())})"
            log.warning("%s %s", name, skipped[name])
            continue
        metrics[name] = {out: FID(extractor=extractor).to(device) for out in outputs}
    return metrics


def predictor(model):
    """The model's output function for evaluation batches: the method's ``inference.predict(model, batch)``
    when it has one (photo resolution, official post-processing), else ``model.predict_batch``."""
    try:
        inference = importlib.import_module(f"facezoo.methods.{method_of(type(model).__module__)}.inference")
    except ModuleNotFoundError:
        return model.predict_batch
    predict = getattr(inference, "predict", None)
    return model.predict_batch if predict is None else (lambda batch: predict(model, batch))


@torch.no_grad()
def evaluate(cfg: DictConfig) -> dict:
    """Compute the model's and the baselines' metrics on the configured split; returns the JSON object."""
    model, datamodule, train_cfg = load(cfg.ckpt_path, cfg.get("data_overrides"),
                                        trust=bool(cfg.get("trust_checkpoint")))
    device = torch.device(cfg.device)
    model.to(device)
    dataset = datamodule.dataset(cfg.split)
    n = len(dataset) if cfg.limit_samples is None else min(int(cfg.limit_samples), len(dataset))
    subset = torch.utils.data.Subset(dataset, range(n))
    loader = torch.utils.data.DataLoader(subset, batch_size=cfg.batch_size, shuffle=False)

    per_batch = [m for m in model.metrics if m not in DISTRIBUTION_METRICS]
    nets, skipped = metric_networks(per_batch, cfg, device)
    baselines = model.evaluation_baselines(datamodule, mean_face_samples=cfg.mean_face_samples,
                                           projection_steps=list(cfg.get("projection_steps") or []))
    outputs = {"model": predictor(model), **{f"baseline_{k}": fn for k, fn in baselines.items()}}
    acc = {name: _Accumulator() for name in outputs}
    distributions = distribution_metrics([m for m in model.metrics if m in DISTRIBUTION_METRICS], outputs, cfg,
                                         device, skipped)
    for batch in loader:
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        n_batch = batch["image"].shape[0]
        for name, fn in outputs.items():
            start = time.perf_counter()
            fake = fn(batch)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds = time.perf_counter() - start
            values = model.evaluation_metrics(fake, batch, nets=nets, names=per_batch)
            values["seconds_per_image"] = seconds / n_batch
            if name == "model":
                values.update(model.evaluation_model_metrics(batch))
            acc[name].add(values, n_batch)
            for per_output in distributions.values():   # outputs against the real images of the split
                per_output[name].update(batch.get("target", batch["image"]), real=True)
                per_output[name].update(fake.clamp(-1, 1), real=False)

    flat: dict[str, float] = {}
    for name, a in acc.items():
        prefix = "" if name == "model" else f"{name}/"
        values = a.means()
        for metric, per_output in distributions.items():
            if per_output[name].real_features_num_samples > 1:
                values[metric] = float(per_output[name].compute())
        flat.update({f"{prefix}{k}": round(v, 6) for k, v in values.items()})
    return {"checkpoint": str(cfg.ckpt_path), "model": train_cfg.model._target_, "split": cfg.split,
            "num_samples": n, "skipped": skipped, "metrics": flat}


#: the usage line of a missing ``ckpt_path``
USAGE = "python -m facezoo.evaluate ckpt_path=runs/<run>/checkpoints/last.ckpt [out=FILE.json] [split=test]"


def output_path(cfg: DictConfig) -> Path:
    """Where the JSON goes: ``out``, or ``<checkpoint dir>/../eval_metrics.json``."""
    return Path(cfg.out) if cfg.out else Path(cfg.ckpt_path).resolve().parent.parent / "eval_metrics.json"


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@user_errors("facezoo.evaluate", usage=USAGE)
def main(cfg: DictConfig) -> None:
    out = check_writable(output_path(cfg), "out")     # before any work: a folder, a read-only place
    result = evaluate(cfg)
    atomic_write_json(out, result)
    log.info("wrote %s", out)
    print(OmegaConf.to_yaml(OmegaConf.create(result["metrics"])))


if __name__ == "__main__":
    with user_errors("facezoo.evaluate"):          # unknown options and keys: one line, before Hydra's report
        check_command_line("evaluate", sys.argv[1:])
    main()
