"""Reliability promises (docs/reliability.md): a bad input ends with ONE line ``<entry>: error: <what to fix>`` and
exit status 2, before any work and without writing or touching an output; a NaN or inf loss stops training at that
step by name and leaves the last good checkpoint as it was.

Four cases run the real command lines in subprocesses (``python -m facezoo.<entry>``); the others call the same
``main`` (Hydra decorator included) in-process with ``sys.argv`` set, which exercises the same code path without the
import cost.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from conftest import call_main, error_line, files_under, one_line_error, run_module
from PIL import Image

from facezoo.config import compose
from facezoo.utils import EXIT_USAGE, FacezooError, NonFiniteLossError, user_errors

#: Tiny GANnotation (tests/test_contract.py's sizes), 4 batches an epoch, with an absurd learning-rate schedule: G's
#: rate is multiplied by 1e34 after every epoch (1e-4 → 1e30), so epoch 0 trains normally and is checkpointed, and
#: epoch 1 blows up.
TINY_GANNOTATION = [
    "model=gannotation", "data.size=64", "model.width=0.125", "data.batch_size=2", "data.num_workers=0",
    "data.splits.train.length=8", "data.splits.train.num_identities=2",
    "data.splits.val.length=2", "data.splits.val.num_identities=2",
    "data.splits.test.length=2", "data.splits.test.num_identities=2",
    "model.frozen.identity_loss=null", "trainer=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=4",
    "trainer.limit_val_batches=1", "trainer.val_check_interval=null", "trainer.num_sanity_val_steps=0",
    "trainer.enable_model_summary=false", "+trainer.enable_progress_bar=false", "callbacks.rich_progress_bar=null",
    "callbacks.sample_grid=null", "logger=csv",
    "+model.schedulers.generator._target_=torch.optim.lr_scheduler.StepLR",
    "+model.schedulers.generator._partial_=true", "+model.schedulers.generator.step_size=1",
    "+model.schedulers.generator.gamma=1e34",
]

# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """One epoch of tiny GANnotation (in-process): ``checkpoints/last.ckpt`` is the last good checkpoint of a run
    whose next epoch will blow up."""
    from facezoo.train import train

    folder = tmp_path_factory.mktemp("gannotation_run")
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        train(compose("train", [*TINY_GANNOTATION, f"paths.output_dir={folder}", "paths.work_dir=."]))
    finally:
        os.chdir(cwd)
    assert (folder / "checkpoints" / "last.ckpt").is_file()
    return folder


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """The astronaut photo, a real target's points, points with zero inter-ocular distance."""
    from facezoo.face.detect import DlibDetector

    folder = tmp_path_factory.mktemp("photos")
    image = skimage.data.astronaut()
    Image.fromarray(image).save(folder / "astronaut.png")
    points = DlibDetector().detect(image)[0].landmarks
    np.save(folder / "target.npy", points)
    flat = points.copy()
    flat[45] = flat[36]                       # outer eye corners on one spot
    np.save(folder / "zero_iod.npy", flat)
    return {"source": folder / "astronaut.png", "target": folder / "target.npy", "zero_iod": folder / "zero_iod.npy"}


@pytest.fixture
def read_only_dir(tmp_path) -> Path:
    """A folder this process cannot create files in: a ``chmod 555`` folder, or for root (whom permission bits do
    not stop) ``/sys``, which the kernel refuses to create files in."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    candidates = [folder, Path("/sys")]
    for candidate in candidates:
        try:
            (candidate / ".probe").touch()
        except OSError:
            yield candidate
            break
        (candidate / ".probe").unlink()
    else:
        pytest.skip("no folder here refuses writes to this process")
    folder.chmod(0o755)


# -------------------------------------------------------------------------------- the one place, as a unit
def test_user_errors_turns_user_errors_into_one_line_and_status_2(capsys):
    with pytest.raises(SystemExit) as exit_, user_errors("facezoo.x"):
        raise FacezooError("a.ckpt: cannot read checkpoint\n  (details)")
    assert exit_.value.code == EXIT_USAGE == 2
    assert capsys.readouterr().err == "facezoo.x: error: a.ckpt: cannot read checkpoint (details)\n"

    with pytest.raises(KeyError), user_errors("facezoo.x"):     # a bug keeps its traceback
        raise KeyError("bug")


def test_nonfinite_loss_names_phase_term_and_kind():
    from facezoo.config import build_model

    model = build_model(*TINY_GANNOTATION[:3])
    terms = {"adversarial": torch.tensor(1.0), "reconstruction": torch.tensor(float("nan")),
             "self_consistency": torch.tensor(float("inf")), "triple": torch.tensor(0.5)}
    with pytest.raises(NonFiniteLossError, match=r"loss term g\.reconstruction is nan at step 0 \(phase g"):
        model.check_finite("g", terms, model.weighted_sum("g", terms))
    terms["reconstruction"] = torch.tensor(1.0)
    with pytest.raises(NonFiniteLossError, match=r"loss term g\.self_consistency is inf at step 0"):
        model.check_finite("g", terms, model.weighted_sum("g", terms))
    huge = {"adversarial": torch.tensor(3e38), "reconstruction": torch.tensor(3e38)}     # finite terms, inf sum
    with pytest.raises(NonFiniteLossError, match=r"loss term g\.total is inf"):
        model.check_finite("g", huge, model.weighted_sum("g", huge))
    assert not model.wants("g", "perceptual")         # weight 0: not counted, so its NaN does not stop the run
    model.check_finite("g", {"adversarial": torch.tensor(1.0), "perceptual": torch.tensor(float("nan"))},
                       torch.tensor(1.0))


# ------------------------------------------------------------------------------------------------ NaN stop
def test_nan_stops_training_by_name_and_keeps_the_last_checkpoint(run_dir, tmp_path):
    """An absurd learning rate (1e30 from epoch 1): the resumed run stops at the first non-finite term with one line
    naming phase, term and step; last.ckpt and best.ckpt are byte for byte the epoch-0 files, nothing else appears."""
    folder = tmp_path / "run"
    shutil.copytree(run_dir, folder)
    before = files_under(folder / "checkpoints")
    summary = (folder / "metrics.json").read_bytes()        # epoch 0's; a failed run does not rewrite it
    proc = run_module("facezoo.train", *TINY_GANNOTATION, "trainer.max_epochs=2", f"hydra.run.dir={folder}",
                      f"ckpt_path={folder / 'checkpoints' / 'last.ckpt'}", check=False)
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = error_line(proc.stderr, "facezoo.train")
    found = re.fullmatch(r"facezoo\.train: error: loss term (\w+)\.(\w+) is (nan|inf) at step (\d+) \(phase (\w+), "
                         r"epoch 1, .*", line)
    assert found, line
    phase, term, _, step, phase_again = found.groups()
    assert phase == phase_again and phase in ("d", "g") and term
    assert int(step) > torch.load(folder / "checkpoints" / "last.ckpt", map_location="cpu",
                                  weights_only=False)["global_step"]
    assert files_under(folder / "checkpoints") == before
    assert (folder / "metrics.json").read_bytes() == summary


def test_disk_full_while_checkpointing_is_one_line_and_keeps_the_checkpoints(tmp_path, monkeypatch, capsys):
    """Two epochs; the disk fills up in the middle of the first checkpoint write after epoch 0's (simulated inside
    facezoo's checkpoint writer, AtomicCheckpointIO): one line naming the file, and epoch 0's checkpoints byte for
    byte, no temporary files."""
    import errno

    import facezoo.checkpoints

    real_write, written = facezoo.checkpoints.atomic_write, {}

    def disk_fills_up(path, write, binary=True):
        if len(written) < 2:                                  # epoch 0: best.ckpt and last.ckpt
            real_write(path, write, binary)
            written[Path(path).name] = Path(path).read_bytes()
            return path

        def half(f):
            f.write(b"\0" * 4096)
            raise OSError(errno.ENOSPC, "No space left on device")

        return real_write(path, half, binary)

    monkeypatch.setattr(facezoo.checkpoints, "atomic_write", disk_fills_up)
    code, stderr = call_main("facezoo.train", [*TINY_GANNOTATION, "model.schedulers.generator.gamma=1",
                                               "trainer.max_epochs=2", f"hydra.run.dir={tmp_path}"],
                             monkeypatch, capsys)
    assert code == EXIT_USAGE and set(written) == {"best.ckpt", "last.ckpt"}
    line = error_line(stderr, "facezoo.train")
    assert re.search(r"checkpoints/\w+\.ckpt: No space left on device while writing it; the previous file is "
                     r"unchanged", line), line
    assert files_under(tmp_path / "checkpoints") == written


@pytest.mark.parametrize("entry, args, message", [
    ("facezoo.train", ["model=nope"], "Could not find 'model/nope'; choose one of gannotation, gannotation_official, "),
    ("facezoo.infer", ["model=psgan", "source=[x"], "source=[x: cannot parse it (no viable alternative at input"),
])
def test_unknown_options_and_malformed_overrides_are_one_line(tmp_path, entry, args, message):
    """Checked before Hydra's own multi-line report (facezoo.config.check_command_line, called under each entry
    point's ``__main__``): status 2, one line, nothing written; evaluate's misspelt key through the same check."""
    from facezoo.config import check_command_line

    proc = run_module(entry, *args, f"hydra.run.dir={tmp_path}", check=False, cwd=tmp_path)
    assert proc.returncode == EXIT_USAGE, proc.stderr[-2000:]
    assert error_line(proc.stderr, entry).startswith(f"{entry}: error: {message}")
    assert list(tmp_path.iterdir()) == []                    # before any work: not even Hydra's run folder
    assert one_line_error(lambda: check_command_line("evaluate", ["ckpt_path=x.ckpt", "limit_sample=3"])) == (
        "Could not override 'limit_sample'. To append to your config use +limit_sample=3")
    check_command_line("evaluate", ["ckpt_path=x.ckpt", "limit_samples=3", "-m"])       # sweeps: Hydra's


def test_an_unwritable_run_folder_is_one_line_before_hydra_makes_it(tmp_path, monkeypatch):
    """Hydra makes the run folder before facezoo's handler runs, so check_command_line checks it first: the given
    ``hydra.run.dir``, or the default's root ``paths.log_dir``."""
    from facezoo.config import check_command_line

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert one_line_error(lambda: check_command_line("train", [f"hydra.run.dir={blocker / 'run'}"])) == (
        f"hydra.run.dir={blocker / 'run'}: cannot write there, {blocker} is a file, not a folder")
    assert one_line_error(lambda: check_command_line("train", ["hydra.run.dir=/sys/facezoo_run"])).startswith(
        "hydra.run.dir=/sys/facezoo_run: cannot write there, /sys: ")
    assert one_line_error(lambda: check_command_line("train", [f"hydra.run.dir={blocker}"])) == (
        f"hydra.run.dir={blocker}: is a file, not a folder")
    monkeypatch.setenv("FACEZOO_ROOT", str(blocker))
    assert one_line_error(lambda: check_command_line("train", [])) == (
        f"paths.log_dir={blocker}/runs: cannot write there, {blocker} is a file, not a folder")
    check_command_line("train", [f"hydra.run.dir={tmp_path / 'new' / 'run'}"])     # missing folders are fine
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


# ----------------------------------------------------------------------------------------------- training
def test_negative_learning_rate_is_one_line_before_any_output(tmp_path):
    proc = run_module("facezoo.train", *TINY_GANNOTATION, "model.optimizers.generator.lr=-0.001",
                      f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 2
    assert error_line(proc.stderr, "facezoo.train") == (
        "facezoo.train: error: model.optimizers.generator.lr must be a finite number >= 0, got -0.001")
    assert {p.name for p in tmp_path.iterdir()} <= {"train.log", ".hydra"}     # no csv/, checkpoints/, samples/


@pytest.mark.parametrize("override, message", [
    ("data.batch_size=0", "data.batch_size must be an integer >= 1, got 0"),
    ("data.size=0", "data.size must be an integer >= 1, got 0"),
    ("data.size=96", "image_size 96 must be positive and divisible by 2**repeat_num = 64"),
    ("model.optimizers.discriminator.betas=[0.5,1.5]", "model.optimizers.discriminator.betas must be numbers in"),
])
def test_bad_hyper_parameters_are_one_line_at_construction(override, message, tmp_path, monkeypatch, capsys):
    code, err = call_main("facezoo.train", [*TINY_GANNOTATION, override, f"hydra.run.dir={tmp_path}"],
                          monkeypatch, capsys)
    assert code == 2
    assert message in error_line(err, "facezoo.train")
    assert not (tmp_path / "csv").exists() and not (tmp_path / "checkpoints").exists()


def test_psgan_refuses_a_size_its_networks_cannot_take(tmp_path, monkeypatch, capsys):
    code, err = call_main("facezoo.train", ["model=psgan", "data.size=50", "data.num_workers=0", "model.width=0.125",
                                            "trainer=cpu", f"hydra.run.dir={tmp_path}"], monkeypatch, capsys)
    assert code == 2
    assert "image_size must be a multiple of 4 and at least 24" in error_line(err, "facezoo.train")


def test_truncated_resume_checkpoint_is_one_line(run_dir, tmp_path, monkeypatch, capsys):
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes((run_dir / "checkpoints" / "last.ckpt").read_bytes()[:100_000])
    code, err = call_main("facezoo.train", [*TINY_GANNOTATION, f"ckpt_path={truncated}",
                                            f"hydra.run.dir={tmp_path / 'run'}"], monkeypatch, capsys)
    assert code == 2
    line = error_line(err, "facezoo.train")
    assert line.startswith(f"facezoo.train: error: ckpt_path={truncated}: cannot read checkpoint, the file is "
                           "truncated"), line
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_resuming_with_another_model_config_is_one_line(run_dir, tmp_path, monkeypatch, capsys):
    """A run's checkpoint resumed with other model options (here twice the width): one line naming the first
    wrong-shaped weights, before Lightning's restore (which prints every key) and before any output."""
    last = run_dir / "checkpoints" / "last.ckpt"
    wider = [a.replace("model.width=0.125", "model.width=0.25") for a in TINY_GANNOTATION]
    code, err = call_main("facezoo.train", [*wider, f"ckpt_path={last}", f"hydra.run.dir={tmp_path / 'run'}"],
                          monkeypatch, capsys)
    assert code == 2
    line = error_line(err, "facezoo.train")
    assert line.startswith(f"facezoo.train: error: ckpt_path={last}: its weights do not fit the configured model "
                           "(wrong shapes "), line
    assert line.endswith("; resume with the run's own model options") and "(+" in line   # the first few, counted
    assert not (tmp_path / "run" / "checkpoints").exists()


# --------------------------------------------------------------------------------------------- evaluation
def test_evaluate_without_checkpoint_prints_its_usage(tmp_path):
    proc = run_module("facezoo.evaluate", f"hydra.run.dir={tmp_path}", check=False)
    assert proc.returncode == 2
    assert error_line(proc.stderr, "facezoo.evaluate") == (
        "facezoo.evaluate: error: ckpt_path= is required: python -m facezoo.evaluate "
        "ckpt_path=runs/<run>/checkpoints/last.ckpt [out=FILE.json] [split=test]")


def test_evaluate_refuses_an_unwritable_output_before_any_work(run_dir, read_only_dir, tmp_path, monkeypatch, capsys):
    import facezoo.evaluate

    monkeypatch.setattr(facezoo.evaluate, "evaluate", lambda cfg: pytest.fail("evaluated before checking out="))
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    for out, problem in ((read_only_dir / "x.json", "cannot write there"), (tmp_path, "is a folder")):
        code, err = call_main("facezoo.evaluate", [f"ckpt_path={ckpt}", f"out={out}",
                                                   f"hydra.run.dir={tmp_path / 'h'}"], monkeypatch, capsys)
        assert code == 2
        assert error_line(err, "facezoo.evaluate").startswith(f"facezoo.evaluate: error: out={out}: {problem}")
    assert not (read_only_dir / "x.json").exists()


# ---------------------------------------------------------------------------------------------- inference
def test_infer_a_checkpoint_of_another_method_is_one_line(run_dir, photos, tmp_path):
    out = tmp_path / "out.png"
    proc = run_module("facezoo.infer", "model=psgan", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                      f"source={photos['source']}", f"reference={photos['source']}",
                      "parser=landmarks", f"out={out}", check=False)
    assert proc.returncode == 2
    assert error_line(proc.stderr, "facezoo.infer").endswith(
        "last.ckpt: a gannotation checkpoint, not psgan (model=gannotation runs it)")
    assert not out.exists()


@pytest.mark.parametrize("method", ["gannotation", "psgan"])
def test_infer_refuses_an_unwritable_output_or_a_folder(method, run_dir, photos, read_only_dir, tmp_path,
                                                        monkeypatch, capsys):
    import facezoo.face.photo

    monkeypatch.setattr(facezoo.face.photo, "read_photo", lambda *a, **k: pytest.fail("read a photo before out="))
    inputs = {"gannotation": [f"target_landmarks={photos['target']}"],
              "psgan": [f"reference={photos['source']}", "parser=landmarks"]}[method]
    folder = tmp_path / "existing.png"
    folder.mkdir()
    for out, problem in ((read_only_dir / "x.png", "cannot write there"), (folder, "is a folder")):
        code, err = call_main("facezoo.infer", [f"model={method}", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                                                f"source={photos['source']}", f"out={out}", *inputs],
                              monkeypatch, capsys)
        assert code == 2
        assert error_line(err, "facezoo.infer").startswith(f"facezoo.infer: error: out={out}: {problem}")
    assert not (read_only_dir / "x.png").exists() and not any(folder.iterdir())


def test_infer_zero_inter_ocular_target_is_one_line_and_leaves_the_output(run_dir, photos, tmp_path, monkeypatch,
                                                                          capsys):
    out = tmp_path / "out.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out)
    before = out.read_bytes()
    code, err = call_main("facezoo.infer", ["model=gannotation", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}",
                                            f"source={photos['source']}", f"target_landmarks={photos['zero_iod']}",
                                            f"out={out}"], monkeypatch, capsys)
    assert code == 2
    assert error_line(err, "facezoo.infer") == (
        f"facezoo.infer: error: {photos['zero_iod']}: zero inter-ocular distance (points 37 and 46, the outer eye "
        "corners, coincide); not the landmarks of a face")
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]       # no temporary file, no _nme.json


# ------------------------------------------------------------------------------------------ untrusted files
@pytest.fixture(scope="module")
def pickled_checkpoint(run_dir, tmp_path_factory) -> Path:
    """The tiny run's checkpoint with one pickled Python object added (an ``argparse.Namespace``, as official
    releases store their options): ``torch.load(weights_only=True)`` refuses it."""
    import argparse

    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["opts"] = argparse.Namespace(lr=1e-4)
    path = tmp_path_factory.mktemp("pickled") / "pickled.ckpt"
    torch.save(ckpt, path)
    return path


def test_every_entry_point_refuses_to_unpickle_a_checkpoint_unless_trusted(pickled_checkpoint, photos, tmp_path,
                                                                          monkeypatch, capsys):
    import facezoo
    from facezoo.checkpoints import UntrustedCheckpointError

    refusal = f"{pickled_checkpoint}: holds a pickled argparse.Namespace, which facezoo does not unpickle"
    out = tmp_path / "out.png"
    runs = {"facezoo.train": [*TINY_GANNOTATION, f"hydra.run.dir={tmp_path / 'run'}"],
            "facezoo.evaluate": [f"out={tmp_path / 'eval.json'}", f"hydra.run.dir={tmp_path / 'h'}"],
            "facezoo.infer": ["model=gannotation", f"source={photos['source']}",
                              f"target_landmarks={photos['target']}", f"out={out}"]}
    for entry, args in runs.items():
        code, err = call_main(entry, [*args, f"ckpt_path={pickled_checkpoint}"], monkeypatch, capsys)
        assert code == 2
        assert refusal in error_line(err, entry) and "trust_checkpoint=true" in err
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "eval.json").exists()
    assert not out.exists()
    with pytest.raises(UntrustedCheckpointError):
        facezoo.load(pickled_checkpoint)
    model, _, _ = facezoo.load(pickled_checkpoint, trust=True)              # the user's explicit choice
    assert type(model).__name__ == "GANnotation"
    code, err = call_main("facezoo.infer", [*runs["facezoo.infer"], f"ckpt_path={pickled_checkpoint}",
                                            "trust_checkpoint=true"], monkeypatch, capsys)
    assert code is None and out.is_file()


def test_official_weights_holding_pickles_are_refused_unless_trusted(tmp_path, photos, monkeypatch, capsys):
    """GANnotation's official loader used to unpickle anything with a warning; now one line, or trust."""
    import argparse

    torch.save({"state_dict": {}, "opts": argparse.Namespace(a=1)}, tmp_path / "myGEN.pth")
    args = ["model=gannotation", f"weights={tmp_path / 'myGEN.pth'}", f"source={photos['source']}",
            f"target_landmarks={photos['target']}", f"out={tmp_path / 'x.png'}"]
    code, err = call_main("facezoo.infer", args, monkeypatch, capsys)
    assert code == 2
    assert error_line(err, "facezoo.infer") == (
        f"facezoo.infer: error: {tmp_path / 'myGEN.pth'}: holds a pickled argparse.Namespace, which facezoo does not "
        "unpickle from files (a pickle can run code); pass trust_checkpoint=true if you trust its source")
    code, err = call_main("facezoo.infer", [*args, "trust_checkpoint=true"], monkeypatch, capsys)
    assert code == 2 and "holds a pickled" not in err       # unpickled; then refused as an empty state dict
    assert "myGEN.pth is not a GANnotation generator with 66 points" in error_line(err, "facezoo.infer")
    assert not (tmp_path / "x.png").exists()


# --------------------------------------------------------------------------------------------- safetensors
def test_safetensors_export_loads_everywhere_a_checkpoint_does(run_dir, photos, tmp_path, monkeypatch, capsys):
    from safetensors import safe_open

    import facezoo

    spec = importlib.util.spec_from_file_location("export_weights", Path(__file__).parents[1] / "scripts" /
                                                  "export_weights.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    ckpt, weights = run_dir / "checkpoints" / "last.ckpt", tmp_path / "gannotation.safetensors"
    assert script.main([str(ckpt), str(weights)]) == 0
    with safe_open(str(weights), framework="pt") as f:           # tensors and strings only, no pickle
        assert f.metadata()["format"] == "facezoo-weights-1" and any(k.startswith("generator.") for k in f.keys())
    original, datamodule, _ = facezoo.load(ckpt)
    exported, _, cfg = facezoo.load(weights)
    assert cfg.model._target_ == original.facezoo_config["model"]["_target_"]
    for key, value in original.state_dict().items():
        assert torch.equal(exported.state_dict()[key], value), key
    assert exported.batches_seen == original.batches_seen
    # the inference pipeline takes it as ckpt_path=
    out = tmp_path / "out.png"
    code, err = call_main("facezoo.infer", ["model=gannotation", f"ckpt_path={weights}", f"source={photos['source']}",
                                            f"target_landmarks={photos['target']}", f"out={out}"], monkeypatch, capsys)
    assert code is None and out.is_file(), err
    # training does not resume from it, a damaged one is one line, and out= must say .safetensors
    code, err = call_main("facezoo.train", [*TINY_GANNOTATION, f"ckpt_path={weights}",
                                            f"hydra.run.dir={tmp_path / 'run'}"], monkeypatch, capsys)
    assert code == 2 and "a weights file has no optimizer or loop state" in error_line(err, "facezoo.train")
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(FacezooError, match=r"damaged\.safetensors: cannot read safetensors file"):
        facezoo.load(damaged)
    assert script.main([str(ckpt), str(tmp_path / "x.pt")]) == 2
    assert "must end in .safetensors" in capsys.readouterr().err


def test_weight_loaders_read_safetensors(tmp_path):
    from safetensors.torch import save_file

    from facezoo.nets.weights import load_state_dict_file

    save_file({"module.fc.weight": torch.arange(3.0)}, str(tmp_path / "w.safetensors"))
    state = load_state_dict_file(tmp_path / "w.safetensors")
    assert list(state) == ["fc.weight"] and torch.equal(state["fc.weight"], torch.arange(3.0))
