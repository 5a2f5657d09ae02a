"""TP-GAN's LightningModule: its phases (order, repeats, the local optimizer), loss terms, identity network and
determinism. Models are built from ``conf/model/tpgan*.yaml`` (the one source of their defaults)."""

from __future__ import annotations

import logging
import re

import lightning as L
import pytest
import torch
from hydra.errors import InstantiationException
from torch.utils.data import DataLoader, Dataset

from facezoo.callbacks import param_checksum
from facezoo.config import build_model
from facezoo.methods.tpgan.module import five_points, part_centers
from facezoo.methods.tpgan.networks import part_boxes
from facezoo.nets.lightcnn import LightCNN29v2
from facezoo.utils import FacezooError

SIZE = 64
#: 64-pixel faces, 1/8 width, 4 identity classes; the identity term off unless a test gives LightCNN weights.
TINY = ["data.size=64", "data.splits.train.num_identities=4", "model.width=0.125", "model.zdim=8",
        "model.feature_dim=32"]
NO_IDENTITY = "model.frozen.identity_loss=null"


def tiny(*overrides: str, model: str = "tpgan"):
    return build_model(f"model={model}", *TINY, *overrides)


def construction_error(*overrides: str) -> BaseException:
    """The error the constructor raises: a config error wrapped by Hydra (its cause), or a missing file as one
    FacezooError line (facezoo.config.instantiate_model)."""
    with pytest.raises((InstantiationException, FacezooError)) as info:
        tiny(*overrides)
    return info.value.__cause__ if isinstance(info.value, InstantiationException) else info.value


class FaceLikeBatches(Dataset):
    """Random images with face-like 5-point geometry (the renderer is tested elsewhere)."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        points = torch.tensor([[22.0, 20.0], [43.0, 20.0], [32.0, 32.0], [24.0, 44.0], [40.0, 44.0]])
        return {"image": torch.rand(3, SIZE, SIZE, generator=g) * 2 - 1,
                "target": torch.rand(3, SIZE, SIZE, generator=g) * 2 - 1,
                "five_points": points + torch.randn(5, 2, generator=g), "identity": torch.tensor(i % 4)}


def one_batch() -> dict:
    batch = {k: v[None] if torch.is_tensor(v) else v for k, v in FaceLikeBatches()[0].items()}
    batch["identity"] = batch["identity"].reshape(1)
    return batch


def fit(model, batches=2, callbacks=(), **trainer_kwargs):
    trainer = L.Trainer(max_epochs=1, limit_train_batches=batches, limit_val_batches=1, accelerator="cpu",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=list(callbacks),
                        **trainer_kwargs)
    loader = DataLoader(FaceLikeBatches(), batch_size=4)
    trainer.fit(model, loader, loader)
    return trainer


def test_part_centers_from_five_points_and_landmarks():
    five = torch.tensor([[[10.0, 20.0], [30.0, 20.0], [20.0, 30.0], [12.0, 40.0], [28.0, 42.0]]])
    c = part_centers(five)
    assert c["left_eye"].tolist() == [[10.0, 20.0]] and c["mouth"].tolist() == [[20.0, 41.0]]
    lm = torch.zeros(1, 68, 2)
    lm[0, 36:42], lm[0, 30] = torch.tensor([5.0, 6.0]), torch.tensor([7.0, 8.0])
    assert five_points({"landmarks": lm})[0, 0].tolist() == [5.0, 6.0]
    assert five_points({"landmarks": lm, "five_points": five}) is five


def test_target_parts_are_cut_from_the_fuser_boxes():
    model = tiny(NO_IDENTITY)
    images = torch.randn(2, 3, SIZE, SIZE)
    for name, patch in model.crop_parts(images).items():
        top, left, h, w = part_boxes(SIZE)[name]
        assert torch.equal(patch, images[:, :, top:top + h, left:left + w])


class RecordSteps(L.Callback):
    """Records every optimizer step by name, with the gradients the ``local`` optimizer steps on."""

    def __init__(self):
        self.steps, self.local_grads = [], []

    def on_train_start(self, trainer, pl_module):
        for name, optimizer in zip(pl_module._optimizer_names, trainer.optimizers):
            optimizer.register_step_pre_hook(lambda opt, args, kwargs, name=name: self.record(name, opt))

    def record(self, name, optimizer):
        self.steps.append(name)
        if name == "local":
            self.local_grads.append([p.grad.clone() for g in optimizer.param_groups for p in g["params"]])


@pytest.mark.parametrize(("model_name", "phases", "steps"), [
    ("tpgan", ["d", "g"], ["discriminator", "generator"]),
    ("tpgan_official", ["d", "g", "g"], ["discriminator", "generator", "local", "generator", "local"]),
])
def test_phase_order_and_steps_per_batch(model_name, phases, steps):
    """Paper config: D then G, one step each per batch; official (TF code): D, then G twice (``g_steps: 2``), each
    G step followed by the ``local`` optimizer (the TF ``rot_optim``) on the same forward pass."""
    model = tiny(model=model_name)
    assert [p.name for p in model.phases] == ["d", "g"]
    calls = []
    for name in ("d", "g"):
        original = getattr(model, f"{name}_terms")
        setattr(model, f"{name}_terms", lambda batch, original=original, name=name: calls.append(name) or
                original(batch))
    recorder = RecordSteps()
    trainer = fit(model, batches=2, callbacks=[recorder])
    assert calls == phases * 2
    assert recorder.steps == steps * 2
    assert trainer.global_step == 2 * len(steps)
    assert model.batches_seen == 2


def test_local_optimizer_steps_on_the_part_loss_only():
    """tpgan_official: the ``local`` optimizer's gradients are those of λ_local·L_local alone (``also``), while the
    generator's step takes the whole weighted G loss."""
    model = tiny(NO_IDENTITY, model="tpgan_official")
    local_params = list(model.generator.local_pathways.parameters())
    expected = []
    original = model.g_terms

    def g_terms(batch):
        terms = original(batch)
        w = model.loss_weights["g"]
        part = torch.autograd.grad(w["local"] * terms["local"], local_params, retain_graph=True)
        total = torch.autograd.grad(model.weighted_sum("g", terms), local_params, retain_graph=True)
        expected.append((part, total))
        return terms

    model.g_terms = g_terms
    recorder = RecordSteps()
    fit(model, batches=1, callbacks=[recorder])
    assert len(recorder.local_grads) == len(expected) == 2        # g runs twice on the batch
    for got, (part, total) in zip(recorder.local_grads, expected):
        assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-8) for a, b in zip(got, part))
        assert not all(torch.allclose(a, b, rtol=1e-3, atol=1e-6) for a, b in zip(got, total))


def test_both_networks_learn_and_all_terms_are_logged():
    model = tiny(NO_IDENTITY)
    assert model.terms_off == {"g.identity": "model.frozen.identity_loss is null"}
    g0 = {k: v.clone() for k, v in model.generator.state_dict().items()}
    d0 = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    trainer = fit(model)
    assert any(not torch.equal(v, model.generator.state_dict()[k]) for k, v in g0.items())
    assert any(not torch.equal(v, model.discriminator.state_dict()[k]) for k, v in d0.items())
    logged = set(trainer.callback_metrics)
    for term in ("pixel", "local", "symmetry", "adversarial", "tv", "cross_entropy", "total"):
        assert f"train/g_{term}" in logged
    assert {"train/d_adversarial", "train/d_total"} <= logged
    assert "train/g_identity" not in logged  # switched off without LightCNN weights
    assert "train/d_gradient_penalty" not in logged  # weight 0 in the paper config
    assert {"val/l1", "val/psnr", "val/ssim", "val/l1_input"} <= logged


@pytest.mark.parametrize(("override", "match"), [
    ("+model.loss.g.symmetri=0.5", "model.loss.g: unknown term 'symmetri'"),
    ("+model.loss.gen.pixel=1.0", "model.loss: unknown phase 'gen'"),
    ("~model.loss.g.tv", r"model.loss.g: no weight for \['tv'\]"),
    ("model.loss.g.pixel=-1", "model.loss.g.pixel must be a number >= 0"),
])
def test_a_bad_loss_config_fails_at_construction(override, match):
    error = construction_error(NO_IDENTITY, override)
    assert isinstance(error, ValueError) and re.match(match, str(error))


def test_paper_and_official_weights_come_from_the_yaml():
    paper, official = tiny(NO_IDENTITY), tiny(NO_IDENTITY, model="tpgan_official")
    assert paper.loss_weights == {"d": {"adversarial": 1.0, "gradient_penalty": 0.0},
                                  "g": {"pixel": 1.0, "local": 3.0, "symmetry": 0.3, "adversarial": 1e-3,
                                        "identity": 3e-3, "tv": 1e-4, "cross_entropy": 1.0}}
    # HRLTY/TP-GAN TP_GAN-Mar6FS.py: ALPHA_ADVER, BELTA_FEATURE, TV_WEIGHT, IDEN_W; pixel/part/sym as the paper
    assert official.loss_weights["g"] == {**paper.loss_weights["g"], "adversarial": 20.0, "identity": 40.0,
                                          "tv": 1e-3, "cross_entropy": 10.0}
    assert (official.hparams.reduction, official.hparams.real_label) == ("sum_hw", 0.9)
    assert set(official.optimizer_factories) == {"generator", "discriminator", "local"}
    assert set(paper.optimizer_factories) == {"generator", "discriminator"}


def test_sum_hw_reduction_scales_pixel_terms_by_the_image_area():
    batch = one_batch()
    mean = tiny(NO_IDENTITY).eval()
    summed = tiny(NO_IDENTITY, "model.reduction=sum_hw").eval()
    summed.load_state_dict(mean.state_dict())
    terms = []
    for model in (mean, summed):
        torch.manual_seed(0)  # the same noise z in both forward passes
        terms.append(model.g_terms(batch))
    a, b = terms
    torch.manual_seed(0)
    out = mean(batch["image"], batch["five_points"])
    weights = mean.hparams.pixel_scales
    by_hand = sum(w * (o - torch.nn.functional.interpolate(batch["target"], size=o.shape[-2:], mode="area"))
                  .abs().mean() * o.shape[-1] ** 2
                  for w, o in zip(weights, [out["image"], out["image_half"], out["image_quarter"]]))
    assert torch.allclose(b["pixel"], by_hand, rtol=1e-5)
    assert torch.allclose(b["tv"], a["tv"] * SIZE * SIZE)
    assert torch.equal(a["adversarial"], b["adversarial"]) and torch.equal(a["cross_entropy"], b["cross_entropy"])


def test_identity_loss_with_lightcnn_weights_in_the_release_format(tmp_path):
    net = LightCNN29v2()  # 80013 classes, as released
    path = tmp_path / "LightCNN_29Layers_V2_checkpoint.pth.tar"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    model = tiny(f"model.frozen.identity_loss.build.weights={path}", "model.frozen.identity_loss.required=true")
    assert model.identity_loss is not None and model.terms_off == {} and model.wants("g", "identity")
    batch = one_batch()
    terms = model.eval().g_terms(batch)
    assert terms["identity"] > 0
    terms["identity"].backward()
    assert next(model.generator.global_pathway.parameters()).grad is not None
    assert all(p.grad is None for p in model.identity_loss.parameters())  # frozen
    assert not any(k.startswith("identity_loss.") for k in model.state_dict())  # not in checkpoints


def test_identity_loss_missing_weights(caplog):
    with caplog.at_level(logging.WARNING):
        model = tiny()  # required: false, lightcnn29_v2 not in the (empty) test cache
    assert model.identity_loss is None and not model.wants("g", "identity")
    assert "LightCNN_29Layers_V2_checkpoint.pth.tar" in model.terms_off["g.identity"]
    assert model.loss_weights["g"]["identity"] == 3e-3  # the configured weight stays; the term is recorded off
    assert "loss term g.identity off" in caplog.text and "LightCNN_29Layers_V2_checkpoint.pth.tar" in caplog.text
    assert "identity" not in model.eval().g_terms(one_batch())
    error = construction_error("model.frozen.identity_loss.required=true")
    assert isinstance(error, FacezooError) and "\n" not in str(error)           # one line, naming the file
    assert "LightCNN_29Layers_V2_checkpoint.pth.tar" in str(error)


def test_training_is_a_function_of_the_seed():
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # same initial weights
        model = tiny(NO_IDENTITY, "seed=7")
        torch.manual_seed(999)  # a different global RNG state must not matter: steps seed themselves
        fit(model, batches=1)
        runs.append(param_checksum(model)["sha256"])
    torch.manual_seed(123)
    other = tiny(NO_IDENTITY, "seed=8")
    fit(other, batches=1)
    assert runs[0] == runs[1] != param_checksum(other)["sha256"]
