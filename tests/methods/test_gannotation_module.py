"""GANnotation's LightningModule: step ratio, loss terms, optimizers, LR schedule, clipping, ablation, configs, CLI."""

from __future__ import annotations

import json
import logging

import lightning as L
import pytest
import torch
from conftest import run_module
from hydra.errors import InstantiationException
from torch.utils.data import DataLoader, Dataset

from facezoo import losses
from facezoo.config import build_model, compose
from facezoo.methods.gannotation.module import GANnotation, triple_consistency
from facezoo.methods.gannotation.networks import landmark_heatmaps_official
from facezoo.nets.lightcnn import LightCNN29v2
from facezoo.nets.vgg import VGGFeatures
from facezoo.utils import FacezooError

SIZE = 32
#: 32-pixel faces, 1/8 width, one residual block, a 4-layer critic.
TINY = [f"data.size={SIZE}", "model.width=0.125", "model.repeat_num=1", "model.d_repeat_num=4"]
#: no loss network: the perceptual term has weight 0 in the paper config, the identity term is switched off
NO_NETS = ["model.frozen.identity_loss=null", "model.frozen.perceptual_loss=null"]

#: The CLI at tiny settings: 32 px, 1/8 width, 2 batches of 2.
TINY_CLI = [
    "data.size=32", "data.batch_size=2", "data.num_workers=0",
    "data.splits.train.length=4", "data.splits.train.num_identities=2",
    "data.splits.val.length=2", "data.splits.val.num_identities=1",
    "data.splits.test.length=2", "data.splits.test.num_identities=1",
    "model.width=0.125", "model.repeat_num=1", "model.d_repeat_num=4",
    "trainer=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1", "trainer.enable_model_summary=false",
    "callbacks.rich_progress_bar=null",
]


def tiny(*overrides: str, model: str = "gannotation") -> GANnotation:
    return build_model(f"model={model}", *TINY, *overrides)


def construction_error(*overrides: str, model: str = "gannotation") -> BaseException:
    """The error the constructor raises: a config error wrapped by Hydra (its cause), or a missing file as one
    FacezooError line (facezoo.config.instantiate_model)."""
    with pytest.raises((InstantiationException, FacezooError)) as info:
        tiny(*overrides, model=model)
    return info.value.__cause__ if isinstance(info.value, InstantiationException) else info.value


class Triplets(Dataset):
    """Random A, B, C faces with random landmarks (the renderer and its landmarks are tested elsewhere)."""

    def __init__(self, n: int = 10):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        out = {}
        for prefix in ("", "target", "third"):
            image_key = prefix or "image"
            out[image_key] = torch.rand(3, SIZE, SIZE, generator=g) * 2 - 1
            out[f"{prefix}_landmarks" if prefix else "landmarks"] = torch.rand(68, 2, generator=g) * 24 + 4
        return out


def batch_of(n: int = 2) -> dict:
    return {k: torch.stack([Triplets()[i][k] for i in range(n)]) for k in Triplets()[0]}


def fit(model, batches: int = 2, epochs: int = 1, callbacks=(), loader_len: int = 10):
    trainer = L.Trainer(max_epochs=epochs, limit_train_batches=batches, limit_val_batches=1, accelerator="cpu",
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=list(callbacks))
    loader = DataLoader(Triplets(loader_len), batch_size=2)
    trainer.fit(model, loader, loader)
    return trainer


class StepRecorder(L.Callback):
    """Records which optimizer (G or D) stepped, and the grad norm of its parameters before and after clipping.

    Torch's step pre-hook runs before Lightning's closure (which calls on_before_optimizer_step, where the
    module clips), the post-hook after the step: they see the raw and the clipped gradients.
    """

    def __init__(self):
        self.steps, self.norms = [], []

    def on_train_start(self, trainer, pl_module):
        for opt_name, opt in zip(pl_module._optimizer_names, trainer.optimizers):
            name = {"generator": "G", "discriminator": "D"}[opt_name]


            def norm(o):
                return torch.linalg.vector_norm(torch.stack(
                    [p.grad.norm() for g in o.param_groups for p in g["params"] if p.grad is not None]))

            opt.register_step_pre_hook(lambda o, *a, n=name: self.norms.append((n, "raw", float(norm(o)))))
            opt.register_step_post_hook(lambda o, *a, n=name: (self.steps.append(n),
                                                               self.norms.append((n, "clipped", float(norm(o))))))


# --------------------------------------------------------------------------------------------------
# the GAN step
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "schedule"), [
    ("gannotation", ["d", "g"] * 5),                       # hinge: D on even batches, G on odd ones
    ("gannotation_official", (["d"] * 4 + ["g"]) * 2),     # wgan-gp, official disiters = 5: 4 D then 1 G
])
def test_which_phase_runs_on_which_batch(model, schedule):
    """training/train.py: in every cycle of d_steps_per_g + 1 batches D steps on the first d_steps_per_g, G on the
    last; exactly one phase per batch."""
    m = tiny(*NO_NETS, model=model)
    assert [[p.name for p in m.phases if p.runs_at(i)] for i in range(10)] == [[name] for name in schedule]
    assert [[p.name for p in tiny(*NO_NETS, "model.d_steps_per_g=0").phases if p.runs_at(i)]
            for i in range(3)] == [["g"]] * 3                # no critic steps: G on every batch


@pytest.mark.parametrize(("model", "expected"), [
    ("gannotation_official", "DDDDG"),  # wgan-gp with its gradient penalty, disiters = 5
    ("gannotation", "DGDGD"),           # hinge, 1 : 1, no gradient penalty (weight 0)
])
def test_step_ratio(model, expected):
    m = tiny(*NO_NETS, model=model)
    rec = StepRecorder()
    trainer = fit(m, batches=5, callbacks=[rec])
    assert "".join(rec.steps) == expected
    assert trainer.global_step == 5 and m.batches_seen == 5  # one optimizer step per batch
    logged = set(trainer.callback_metrics)
    assert "train/d_adversarial" in logged and "train/g_reconstruction" in logged
    assert ("train/d_gradient_penalty" in logged) == (model == "gannotation_official")


def test_generator_terms_by_hand():
    torch.manual_seed(0)
    model = tiny(*NO_NETS, "model.loss.g.tv=1e-5").eval()
    batch = batch_of()
    outputs = []
    model.generator.register_forward_hook(lambda module, args, out: outputs.append(out["image"]))
    terms = model.g_terms(batch)
    assert set(terms) == {"adversarial", "reconstruction", "self_consistency", "triple", "tv"}
    g = model.generator
    keep = [i for i in range(68) if i not in (60, 64)]  # 66 points: no inner mouth corners
    h = {k: landmark_heatmaps_official(batch[k][:, keep], size=SIZE)
         for k in ("landmarks", "target_landmarks", "third_landmarks")}
    ab_ref = g(batch["image"], h["target_landmarks"])["image"]
    assert torch.equal(outputs[0], ab_ref)                    # the first generator call is G(A, H_B)
    assert torch.allclose(terms["reconstruction"], (ab_ref - batch["target"]).abs().mean())
    aba = g(ab_ref, h["landmarks"])["image"]
    assert torch.allclose(terms["self_consistency"], (aba - batch["image"]).abs().mean())
    ac, abc = g(batch["image"], h["third_landmarks"])["image"], g(ab_ref, h["third_landmarks"])["image"]
    assert torch.allclose(terms["triple"], (ac - abc).abs().mean())
    dy, dx = ab_ref.diff(dim=2), ab_ref.diff(dim=3)
    assert torch.allclose(terms["tv"], dy.pow(2).mean() + dx.pow(2).mean())
    assert torch.allclose(terms["adversarial"], -model.discriminator(ab_ref).mean())
    expected = sum(model.loss_weights["g"][k] * v for k, v in terms.items())
    assert torch.allclose(model.weighted_sum("g", terms), expected)
    assert model.loss_weights["g"]["reconstruction"] == 100.0  # paper config (conf/model/gannotation.yaml)


def test_discriminator_terms():
    torch.manual_seed(0)
    batch = batch_of()
    hinge = tiny(*NO_NETS).eval()
    fake, real = hinge.predict_batch(batch), batch["target"]
    d_real, d_fake = hinge.discriminator(real), hinge.discriminator(fake)
    t = hinge.d_terms(batch)
    assert set(t) == {"adversarial"}                          # loss.d.gradient_penalty 0: not computed
    assert torch.allclose(t["adversarial"], torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean())
    wgan = tiny(*NO_NETS, "model.adversarial=wgan-gp", "model.loss.d.gradient_penalty=10").eval()
    fake = wgan.predict_batch(batch)
    torch.manual_seed(1)
    t = wgan.d_terms(batch)
    assert set(t) == {"adversarial", "gradient_penalty"} and t["gradient_penalty"] > 0
    assert torch.allclose(t["adversarial"], wgan.discriminator(fake).mean() - wgan.discriminator(real).mean())
    torch.manual_seed(1)                                       # the same interpolation points
    gp = losses.gradient_penalty(wgan.discriminator, real, fake, weight=1.0)
    assert torch.allclose(t["gradient_penalty"], gp)           # computed with weight 1 ...
    assert torch.allclose(wgan.weighted_sum("d", t), t["adversarial"] + 10 * gp)   # ... weighted by the config
    error = construction_error(*NO_NETS, "model.adversarial=ns")
    assert isinstance(error, ValueError) and "adversarial must be one of" in str(error)
    for override, message in (("+model.loss.g.pixel=1.0", "model.loss.g: unknown term 'pixel'"),
                              ("+model.loss.critic.adversarial=1.0", "model.loss: unknown phase 'critic'"),
                              ("~model.loss.d.gradient_penalty", "model.loss.d: no weight for ['gradient_penalty']")):
        error = construction_error(*NO_NETS, override)
        assert isinstance(error, ValueError) and str(error).startswith(message), error


def test_triple_ablation_keeps_the_validation_metric():
    """model.loss.g.triple=0: no triple term (and no extra forward passes); val/triple_consistency still logged."""
    model = tiny(*NO_NETS, "model.loss.g.triple=0")
    calls = []
    model.generator.register_forward_hook(lambda *a: calls.append(1))
    terms = model.g_terms(batch_of())
    assert "triple" not in terms and len(calls) == 2  # G(A,H_B) and G(G(A,H_B),H_A) only
    trainer = fit(model, batches=2)
    logged = set(trainer.callback_metrics)
    assert "train/g_triple" not in logged and "train/g_self_consistency" in logged
    assert "val/triple_consistency" in logged
    batch = batch_of()
    with torch.no_grad():
        h_b, h_c = model.heatmaps(batch["target_landmarks"]), model.heatmaps(batch["third_landmarks"])
        ab = model(batch["image"], h_b)["image"]
        by_hand = triple_consistency(model(batch["image"], h_c)["image"], model(ab, h_c)["image"])
    assert torch.allclose(model.triple_consistency_error(batch), by_hand)
    assert {"val/l1", "val/psnr", "val/ssim", "val/l1_input"} <= logged


# --------------------------------------------------------------------------------------------------
# optimizers, schedule, clipping
# --------------------------------------------------------------------------------------------------

STEP_LR = "{_target_: torch.optim.lr_scheduler.StepLR, _partial_: true, step_size: 1, gamma: 0.1}"


def test_official_optimizer_and_per_epoch_step_lr():
    model = tiny(*NO_NETS, "model.optimizers.generator.lr=1e-4", "model.optimizers.discriminator.lr=2e-4",
                 f"+model.schedulers.generator={STEP_LR}", f"+model.schedulers.discriminator={STEP_LR}")
    trainer = fit(model, batches=2, epochs=2)
    opt_g, opt_d = trainer.optimizers
    for opt, lr in ((opt_g, 1e-4), (opt_d, 2e-4)):
        group = opt.param_groups[0]
        assert group["betas"] == (0.5, 0.9) and group["weight_decay"] == 5e-4
        assert group["lr"] == pytest.approx(lr * 0.1**2)  # x0.1 per epoch (2 epochs), not per step (4 steps)
    assert isinstance(trainer.lr_scheduler_configs[0].scheduler, torch.optim.lr_scheduler.StepLR)


def test_gradient_norm_clipping_is_engaged():
    model = tiny(*NO_NETS, "model.grad_clip=0.01")
    rec = StepRecorder()
    fit(model, batches=2, callbacks=[rec])
    for net in "GD":
        raw = [v for n, kind, v in rec.norms if n == net and kind == "raw"]
        clipped = [v for n, kind, v in rec.norms if n == net and kind == "clipped"]
        assert raw and max(raw) > 0.01  # the clip had something to do ...
        assert max(clipped) <= 0.01 * (1 + 1e-4)  # ... and the step used gradients of norm <= 0.01


# --------------------------------------------------------------------------------------------------
# pretrained loss networks
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def loss_net_files(tmp_path_factory):
    """VGG16 (features up to relu4_3, torchvision keys) and LightCNN-29 v2 (release format), random weights."""
    d = tmp_path_factory.mktemp("loss_nets")
    vgg = VGGFeatures("vgg16", layers=("relu4_3",))
    torch.save(vgg.state_dict(), d / "vgg16-397923af.pth")  # keys features.<i>.weight/bias as torchvision's
    net = LightCNN29v2()
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}},
               d / "LightCNN_29Layers_V2_checkpoint.pth.tar")
    return d


def test_every_term_is_logged_with_both_loss_networks(loss_net_files):
    vgg, lightcnn = loss_net_files / "vgg16-397923af.pth", loss_net_files / "LightCNN_29Layers_V2_checkpoint.pth.tar"
    model = tiny("model.loss.g.perceptual=0.1", "model.loss.g.identity=1.0", "model.adversarial=wgan-gp",
                 "model.loss.d.gradient_penalty=10", f"model.frozen.perceptual_loss.build.weights={vgg}",
                 "model.frozen.perceptual_loss.required=true", f"model.frozen.identity_loss.build.weights={lightcnn}",
                 "model.frozen.identity_loss.required=true")
    assert not model.terms_off
    g0 = [p.clone() for p in model.generator.parameters()]
    trainer = fit(model, batches=2)
    logged = set(trainer.callback_metrics)
    for term in ("adversarial", "reconstruction", "self_consistency", "triple", "perceptual", "tv", "identity",
                 "total"):
        assert f"train/g_{term}" in logged, term
    for term in ("adversarial", "gradient_penalty", "total"):
        assert f"train/d_{term}" in logged, term
    assert any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters()))
    assert all(not p.requires_grad for p in model.perceptual_loss.parameters())
    assert all(not p.requires_grad for p in model.identity_loss.parameters())
    assert not any(k.startswith(("perceptual_loss.", "identity_loss.")) for k in model.state_dict())
    # the perceptual term is the MSE sum over relu1_2/2_2/3_3/4_3 of the official LossNetwork (no normalisation)
    a, b = torch.rand(1, 3, SIZE, SIZE) * 2 - 1, torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    feats = model.perceptual_loss.feature_net
    assert not feats.normalize_input
    by_hand = sum(torch.nn.functional.mse_loss(x, y) for x, y in zip(feats(a), feats(b)))
    assert torch.allclose(model.perceptual_loss(a, b), by_hand)


def test_missing_loss_network_weights_switch_the_terms_off(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        model = tiny("model.loss.g.perceptual=0.1", "model.loss.g.identity=1.0")
    assert model.perceptual_loss is None and model.identity_loss is None
    assert not model.wants("g", "perceptual") and not model.wants("g", "identity")
    assert model.loss_weights["g"]["perceptual"] == 0.1 and model.loss_weights["g"]["identity"] == 1.0
    assert set(model.terms_off) == {"g.perceptual", "g.identity"}
    assert "loss term g.perceptual off" in caplog.text and "vgg16-397923af.pth" in caplog.text
    assert "loss term g.identity off" in caplog.text and "LightCNN_29Layers_V2_checkpoint.pth.tar" in caplog.text
    assert set(model.g_terms(batch_of())) == {"adversarial", "reconstruction", "self_consistency", "triple", "tv"}
    error = construction_error("model.frozen.identity_loss.required=true")
    assert isinstance(error, FacezooError) and "LightCNN_29Layers_V2" in str(error) and "\n" not in str(error)


# --------------------------------------------------------------------------------------------------
# evaluation API
# --------------------------------------------------------------------------------------------------


def test_predict_batch_and_sample_rows():
    torch.manual_seed(0)
    model = tiny(*NO_NETS, "model.num_points=68")
    batch = batch_of()
    heat = landmark_heatmaps_official(batch["target_landmarks"], size=SIZE)  # 68 points: no conversion
    assert torch.equal(model.predict_batch(batch), model.generator(batch["image"], heat)["image"])
    rows = model.sample_rows(batch)
    assert list(rows) == ["input A", "target landmarks H_B", "G(A, H_B)", "target B", "mask M"]
    assert all(r.shape == (2, 3, SIZE, SIZE) and r.min() >= -1 and r.max() <= 1 for r in rows.values())
    blobs = rows["target landmarks H_B"][:, 0] > -1
    assert torch.equal(blobs, heat.sum(1) > 0)
    baselines = model.evaluation_baselines(None)  # filled by the evaluation part (baselines.py)
    assert isinstance(baselines, dict) and all(callable(fn) for fn in baselines.values())
    assert set(model.evaluation_metrics(rows["G(A, H_B)"], batch)) >= {"l1", "psnr", "ssim"}


# --------------------------------------------------------------------------------------------------
# configs and the command line
# --------------------------------------------------------------------------------------------------


def test_paper_and_official_configs():
    """The two configs' values, as conf/model/gannotation*.yaml document them (the class defaults of
    training/GANnotation.py; the CLI defaults of training/Train_options.py)."""
    paper = compose("train", ["model=gannotation"]).model
    official = compose("train", ["model=gannotation_official"]).model
    assert (paper.adversarial, paper.d_steps_per_g, dict(paper.schedulers)) == ("hinge", 1, {})
    assert dict(paper.loss.d) == {"adversarial": 1.0, "gradient_penalty": 0.0}
    assert dict(paper.loss.g) == {"adversarial": 1.0, "reconstruction": 100.0, "self_consistency": 100.0,
                                  "triple": 100.0, "perceptual": 0.0, "tv": 1e-5, "identity": 1.0}
    assert (official.adversarial, official.d_steps_per_g) == ("wgan-gp", 4)
    assert dict(official.loss.d) == {"adversarial": 1.0, "gradient_penalty": 10.0}
    assert dict(official.loss.g) == {"adversarial": 0.01, "reconstruction": 1.0, "self_consistency": 1.0,
                                     "triple": 1.0, "perceptual": 0.1, "tv": 1e-8, "identity": 0.0}
    for name in ("generator", "discriminator"):
        step_lr = official.schedulers[name]
        assert step_lr._target_ == "torch.optim.lr_scheduler.StepLR" and (step_lr.step_size, step_lr.gamma) == (1, 0.1)
        for cfg in (paper, official):
            opt = cfg.optimizers[name]
            assert opt._target_ == "torch.optim.Adam" and opt.lr == 1e-4
            assert list(opt.betas) == [0.5, 0.9] and opt.weight_decay == 5e-4
    assert paper.grad_clip == official.grad_clip == 1.0
    model = tiny("model.frozen.perceptual_loss=null", model="gannotation_official")
    assert isinstance(model, GANnotation) and model.grad_clip == 1.0 and model.hparams.num_points == 66
    assert model.loss_weights["d"]["gradient_penalty"] == 10.0 and set(model.scheduler_factories) == {
        "generator", "discriminator"}
    assert model.terms_off == {"g.perceptual": "model.frozen.perceptual_loss is null"}   # identity: weight 0


@pytest.mark.parametrize("model", ["gannotation", "gannotation_official"])
def test_cli_tiny_run(model, tmp_path):
    run_module("facezoo.train", f"model={model}", *TINY_CLI, f"hydra.run.dir={tmp_path}")
    summary = json.loads((tmp_path / "metrics.json").read_text())
    assert summary["batches"] == 2 and summary["global_step"] == 2  # one optimizer step per batch
    assert {"val/l1", "val/triple_consistency"} <= set(summary["metrics"])
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["facezoo_config"]["model"]["_target_"] == "facezoo.methods.gannotation.module.GANnotation"
    assert ckpt["facezoo_config"]["model"]["adversarial"] == ("hinge" if model == "gannotation" else "wgan-gp")
    assert (tmp_path / "samples" / "epoch_000.png").is_file()
