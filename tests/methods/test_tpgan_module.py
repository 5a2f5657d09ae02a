"""TP-GAN's LightningModule: the GAN step, its step ratio, loss terms, identity network and determinism."""

from __future__ import annotations

import logging

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from facezoo.callbacks import param_checksum
from facezoo.methods.tpgan.module import TPGAN, five_points, part_centers
from facezoo.methods.tpgan.networks import part_boxes
from facezoo.nets.lightcnn import LightCNN29v2

SIZE = 64
TINY = dict(image_size=SIZE, num_classes=4, width=0.125, zdim=8, feature_dim=32)


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


def fit(model, batches=2, **trainer_kwargs):
    trainer = L.Trainer(max_epochs=1, limit_train_batches=batches, limit_val_batches=1, accelerator="cpu",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, **trainer_kwargs)
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
    model = TPGAN(**TINY, identity_net={"weights": None})
    images = torch.randn(2, 3, SIZE, SIZE)
    for name, patch in model.crop_parts(images).items():
        top, left, h, w = part_boxes(SIZE)[name]
        assert torch.equal(patch, images[:, :, top:top + h, left:left + w])


@pytest.mark.parametrize(("official", "steps_per_batch"), [(False, 2), (True, 5)])
def test_step_ratio(official, steps_per_batch):
    """Paper config: 1 D + 1 G optimizer step per batch; official: 1 D + 2 × (G + local)."""
    kwargs = dict(g_steps=2, separate_local_optimizer=True, reduction="sum_hw", real_label=0.9) if official else {}
    model = TPGAN(**TINY, identity_net={"weights": None}, **kwargs)
    calls = []
    model.discriminator.register_forward_hook(lambda *a: calls.append("D"))
    trainer = fit(model, batches=2)
    assert trainer.global_step == 2 * steps_per_batch
    assert model.batches_seen == 2


def test_both_networks_learn_and_all_terms_are_logged():
    model = TPGAN(**TINY, identity_net={"weights": None})
    g0 = {k: v.clone() for k, v in model.generator.state_dict().items()}
    d0 = {k: v.clone() for k, v in model.discriminator.state_dict().items()}
    trainer = fit(model)
    assert any(not torch.equal(v, model.generator.state_dict()[k]) for k, v in g0.items())
    assert any(not torch.equal(v, model.discriminator.state_dict()[k]) for k, v in d0.items())
    logged = set(trainer.callback_metrics)
    for term in ("pixel", "local", "symmetry", "adversarial", "tv", "cross_entropy"):
        assert f"train/g_{term}" in logged
    assert "train/g_identity" not in logged  # switched off without LightCNN weights
    assert {"val/l1", "val/psnr", "val/ssim", "val/l1_input"} <= logged


def test_sum_hw_reduction_scales_pixel_terms_by_the_image_area():
    torch.manual_seed(0)
    batch = FaceLikeBatches()[0]
    batch = {k: v[None] if torch.is_tensor(v) else v for k, v in batch.items()}
    batch["identity"] = batch["identity"].reshape(1)
    mean = TPGAN(**TINY, identity_net={"weights": None}).eval()
    summed = TPGAN(**TINY, identity_net={"weights": None}, reduction="sum_hw").eval()
    summed.load_state_dict(mean.state_dict())
    out = mean(batch["image"], batch["five_points"], z=torch.zeros(1, 8))
    a, b = mean.generator_terms(batch, out), summed.generator_terms(batch, out)
    weights = mean.loss_weights["pixel_scales"]
    by_hand = sum(w * (o - torch.nn.functional.interpolate(batch["target"], size=o.shape[-2:], mode="area"))
                  .abs().mean() * o.shape[-1] ** 2
                  for w, o in zip(weights, [out["image"], out["image_half"], out["image_quarter"]]))
    assert torch.allclose(b["pixel"], by_hand, rtol=1e-5)
    assert torch.allclose(b["tv"], a["tv"] * SIZE * SIZE)
    assert torch.equal(a["adversarial"], b["adversarial"]) and torch.equal(a["cross_entropy"], b["cross_entropy"])


def test_identity_loss_with_lightcnn_weights_in_the_release_format(tmp_path, caplog):
    net = LightCNN29v2()  # 80013 classes, as released
    path = tmp_path / "LightCNN_29Layers_V2_checkpoint.pth.tar"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    model = TPGAN(**TINY, identity_net={"weights": str(path), "required": True})
    assert model.identity_loss is not None
    batch = {k: v[None] if torch.is_tensor(v) else v for k, v in FaceLikeBatches()[0].items()}
    batch["identity"] = batch["identity"].reshape(1)
    out = model.eval()(batch["image"], batch["five_points"], z=torch.zeros(1, 8))
    terms = model.generator_terms(batch, out)
    assert terms["identity"] > 0
    terms["identity"].backward()
    assert model.generator.global_pathway.parameters().__next__().grad is not None
    assert all(p.grad is None for p in model.identity_loss.parameters())  # frozen
    assert not any(k.startswith("identity_loss.") for k in model.state_dict())  # not in checkpoints


def test_identity_loss_missing_weights(caplog):
    with caplog.at_level(logging.WARNING):
        model = TPGAN(**TINY, identity_net={"weights": "lightcnn29_v2", "required": False})
    assert model.identity_loss is None and model.loss_weights["identity"] == 0.0
    assert "identity loss off" in caplog.text and "LightCNN_29Layers_V2_checkpoint.pth.tar" in caplog.text
    with pytest.raises(FileNotFoundError, match="LightCNN_29Layers_V2_checkpoint.pth.tar"):
        TPGAN(**TINY, identity_net={"weights": "lightcnn29_v2", "required": True})


def test_training_is_a_function_of_the_seed():
    runs = []
    for _ in range(2):
        torch.manual_seed(123)  # same initial weights
        model = TPGAN(**TINY, identity_net={"weights": None}, seed=7)
        torch.manual_seed(999)  # a different global RNG state must not matter: steps seed themselves
        fit(model)
        runs.append(param_checksum(model)["sha256"])
    torch.manual_seed(123)
    other = TPGAN(**TINY, identity_net={"weights": None}, seed=8)
    fit(other)
    assert runs[0] == runs[1] != param_checksum(other)["sha256"]
