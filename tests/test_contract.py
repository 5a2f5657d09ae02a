"""The method contract, checked on every model and experiment config: a new method is covered by its YAML.

For each ``conf/model/*.yaml`` and ``conf/experiment/*.yaml``: compose, instantiate, fit a few tiny batches
(enough for every phase to run once; the experiments in bf16 autocast), check that the logged ``train/*`` terms are
exactly the configured non-zero terms that are not switched off, save, reload with :func:`facezoo.load` (same
weights), evaluate (model and baselines on the same samples), and run the method's photo inference where it has one
(``INFERENCE_INPUTS`` names what that needs besides a checkpoint and a photo). A method trained in stages gets the
files of its earlier stages from ``TRAINING_INPUTS`` (made first, at the same tiny settings).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

import facezoo
from facezoo.checkpoints import method_of
from facezoo.config import compose, config_names
from facezoo.infer import infer
from facezoo.train import train
from facezoo.utils import FacezooError

#: Tiny settings every model config accepts (64 px synthetic faces, 1/8 width, two samples a batch).
TINY = [
    "data.size=64", "data.batch_size=2", "data.num_workers=0",
    "data.splits.val.length=2", "data.splits.val.num_identities=2",
    "data.splits.test.length=2", "data.splits.test.num_identities=2",
    "model.width=0.125", "trainer=cpu", "trainer.max_epochs=1", "trainer.limit_val_batches=1",
    "trainer.val_check_interval=null", "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1",
    "trainer.enable_model_summary=false", "callbacks.rich_progress_bar=null", "logger=csv",
]

CONFIGS = [f"model={m}" for m in config_names("model")] + [f"experiment={e}" for e in config_names("experiment")]

#: Each method has a model config and an experiment (CPU preset): the experiments train in bf16 autocast (CPU bf16
#: is a tested path of every method, with finite losses), the model configs in fp32.
PRECISION = {"experiment": ["trainer.precision=bf16-mixed"]}


def tiny_config(choice: str, tmp_path, batches: int = 1, extra=()):
    cfg = compose("train", [choice, *TINY, f"data.splits.train.length={2 * batches}",
                            "data.splits.train.num_identities=2", f"trainer.limit_train_batches={batches}",
                            f"paths.output_dir={tmp_path}", "paths.work_dir=.", *extra])
    return cfg


def earlier_stages(choice: str, tmp_path) -> list[str]:
    """Overrides naming the files that the earlier training stages of ``choice``'s model make (none for most)."""
    target = compose("train", [choice]).model._target_
    return TRAINING_INPUTS[target](tmp_path / "earlier_stage") if target in TRAINING_INPUTS else []


def logged_terms(metrics) -> set[str]:
    return {k.removesuffix("_step").removesuffix("_epoch") for k in metrics if k.startswith("train/")}


@pytest.mark.parametrize("choice", CONFIGS)
def test_method_contract(choice, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from hydra.utils import instantiate

    extra = earlier_stages(choice, tmp_path) + PRECISION.get(choice.split("=")[0], [])
    model = instantiate(tiny_config(choice, tmp_path, extra=extra).model, _convert_="all")
    batches = max(max(p.at) + 1 for p in model.phases if p.at)     # every phase runs at least once
    cfg = tiny_config(choice, tmp_path, batches, extra)
    metrics = train(cfg)
    assert metrics and all(math.isfinite(v) for v in metrics.values()), metrics

    # the logged terms are exactly the configured, non-zero terms that are on (plus each phase's total)
    ckpt_path = tmp_path / "checkpoints" / "last.ckpt"
    trained, datamodule, train_cfg = facezoo.load(ckpt_path)
    expected = {f"train/{p.name}_total" for p in trained.phases if p.at}
    expected |= {f"train/{p.name}_{t}" for p in trained.phases if p.at for t in p.terms if trained.wants(p.name, t)}
    columns = set(next(csv.reader(open(tmp_path / "csv" / "metrics.csv"))))
    assert logged_terms(columns) == expected

    # save / load: the checkpoint rebuilds the same weights
    state = torch.load(ckpt_path, map_location="cpu", weights_only=False)["state_dict"]
    assert set(trained.state_dict()) == set(state)
    assert all(torch.equal(trained.state_dict()[k], v) for k, v in state.items())

    # evaluation: model and baselines on the same samples, the method's metrics
    from facezoo.evaluate import evaluate

    eval_cfg = compose("evaluate", [f"ckpt_path={ckpt_path}", "limit_samples=2", "batch_size=2",
                                    "lpips_backbone=null", "identity_weights=null"])
    result = evaluate(eval_cfg)
    assert result["num_samples"] == 2
    values = result["metrics"]
    assert any("/" not in k for k in values) and all(math.isfinite(v) for v in values.values()), values
    for name in trained.evaluation_baselines(datamodule):
        assert any(k.startswith(f"baseline_{name}/") for k in values), (name, sorted(values))

    # photos in, photos out, where the method has an inference pipeline
    method = method_of(train_cfg.model._target_)
    if (Path(facezoo.__file__).parent / "methods" / method / "inference.py").is_file():
        source = tmp_path / "astronaut.png"
        Image.fromarray(skimage.data.astronaut()).save(source)
        out = tmp_path / "out.png"
        infer_cfg = compose("infer", [f"model={method}", f"ckpt_path={ckpt_path}", f"source={source}", f"out={out}",
                                      *INFERENCE_INPUTS[method](tmp_path)])
        refusal = INFERENCE_REFUSED.get(train_cfg.model._target_)
        if refusal:             # a model its method's pipeline does not run: one line naming why, nothing written
            with pytest.raises(FacezooError, match=rf"^[^\n]*{refusal}[^\n]*$"):
                infer(infer_cfg)
            assert not out.exists()
            return
        infer(infer_cfg)
        result = np.asarray(Image.open(out))
        assert result.ndim == 3 and result.shape[2] == 3 and result.std() > 0    # a real RGB picture was written


def _psgan_inputs(tmp_path) -> list[str]:
    from facezoo.face.parsing import BiSeNet

    torch.save(BiSeNet().state_dict(), tmp_path / "79999_iter.pth")        # a random parser: offline stand-in
    return [f"reference={tmp_path / 'astronaut.png'}", f"parser_weights={tmp_path / '79999_iter.pth'}"]


def _gannotation_inputs(tmp_path) -> list[str]:
    from facezoo.face.detect import DlibDetector

    points = DlibDetector().detect(skimage.data.astronaut())[0].landmarks + np.array([6.0, 0.0])
    np.save(tmp_path / "target.npy", points)
    return [f"target_landmarks={tmp_path / 'target.npy'}", "landmark_error=false"]


def _psp_inputs(tmp_path) -> list[str]:
    """pSp's source by task: the photo (centre crop), a sketch (the photo read grey), or for seg2face a label map (a
    synthetic face's CelebAMask-HQ parsing)."""
    from facezoo.data.synthetic import SyntheticFaces

    config = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    if config["facezoo_config"]["model"]["task"] != "seg2face":
        return ["align=center"]
    Image.fromarray(SyntheticFaces(split="test", size=64, length=1)[0]["mask"].numpy().astype(np.uint8)).save(
        tmp_path / "mask.png")
    return ["align=center", f"source={tmp_path / 'mask.png'}"]


def _maskgan_inputs(tmp_path) -> list[str]:
    """MaskGAN edits the photo (centre crop, its mask drawn from dlib's landmarks) with a synthetic face's mask as the
    edited one."""
    from facezoo.data.synthetic import SyntheticFaces

    Image.fromarray(SyntheticFaces(split="test", size=64, length=1)[0]["mask"].numpy().astype(np.uint8)).save(
        tmp_path / "edited_mask.png")
    return ["align=center", "detector=dlib", f"mask={tmp_path / 'edited_mask.png'}"]


#: What each method's inference needs besides a checkpoint, a source photo and an output path.
INFERENCE_INPUTS = {"psgan": _psgan_inputs, "gannotation": _gannotation_inputs,
                    "stylegan2": lambda tmp_path: ["project_steps=2"],      # project the photo (2 steps)
                    "psp": lambda tmp_path: _psp_inputs(tmp_path), "maskgan": _maskgan_inputs}

#: Models (``_target_``) whose method's photo pipeline refuses their checkpoints, and what the one-line error says.
INFERENCE_REFUSED = {"facezoo.methods.maskgan.module.MaskVAE": r"MaskVAE \(stage-1\) checkpoint"}


def _maskgan_stage_one(folder) -> list[str]:
    """MaskGAN's stage 2 reads the stage-1 MaskVAE (a required frozen part): ``model=maskvae`` is fitted first."""
    train(tiny_config("model=maskvae", folder))
    return [f"model.frozen.mask_vae.build.path={folder / 'checkpoints' / 'last.ckpt'}"]


def _psp_decoder(folder) -> list[str]:
    """pSp decodes with a StyleGAN2 file (``model=stylegan2`` exported): a tiny random one in rosinality's format."""
    from facezoo.nets.stylegan2 import Generator, save_rosinality

    folder.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        g = Generator(64, 16, 2, channel_multiplier=1, narrow=1 / 32)
    save_rosinality(folder / "stylegan2.pt", g, g.mean_latent(64)[0])
    return [f"model.decoder={folder / 'stylegan2.pt'}", "model.irse50=false"]


#: What training a model (``_target_``) needs from its earlier stages: ``function(folder) -> overrides``, which makes
#: the files (at the tiny settings) in ``folder`` and names them.
TRAINING_INPUTS = {"facezoo.methods.maskgan.module.MaskGAN": _maskgan_stage_one,
                   "facezoo.methods.psp.module.Pixel2Style2Pixel": _psp_decoder}


def test_every_config_instantiates(tmp_path):
    """Every model config builds its module and its data module (the template's smoke test, for all)."""
    from hydra.utils import instantiate

    decoder = _psp_decoder(tmp_path)
    for choice in CONFIGS:
        default = compose("train", [choice]).model
        psp = default._target_.endswith("Pixel2Style2Pixel")
        narrow = ["model.width=0.0625"] if "width" in default else []     # e.g. pSp's 102 M-parameter encoder: slow
        cfg = compose("train", [choice, "data.num_workers=0", *narrow, *(decoder if psp else [])])
        for name, part in (cfg.model.get("frozen") or {}).items():
            if part and part.get("required"):      # a file an earlier stage makes (test_method_contract makes it)
                cfg.model.frozen[name] = None
        model = instantiate(cfg.model, _convert_="all")
        assert model.phases and model.optimizer_factories
        instantiate(cfg.data, _convert_="all").dataset("val")
