"""The bad-input corpus (issue 13, docs/reliability.md section 1): each bad file of ``make_corpus`` given to the entry
point that reads it ends with exit status 2, ONE line ``facezoo.<entry>: error: <file>: <problem>``, no traceback,
no output written and an existing output left byte for byte.

Entry points run in-process (``call_main``: the Hydra ``main`` with ``sys.argv`` set); the loaders' finer cases
(every kind of state-dict mismatch, the two-face choice) are checked at the function the entry points call.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import make_corpus as corpus
import numpy as np
import pytest
import skimage.data
import torch
from conftest import call_main, cli_env, error_line, files_under, one_line_error
from omegaconf import OmegaConf
from PIL import Image

from facezoo.utils import EXIT_USAGE, user_errors

SIZE = 64


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    """A tiny MaskGAN checkpoint (random weights, 64 px) and the astronaut photo."""
    from hydra.utils import instantiate

    from facezoo.config import compose

    folder = tmp_path_factory.mktemp("corpus_inputs")
    cfg = compose("train", ["model=maskgan", "model.width=0.125", "model.frozen.mask_vae=null",
                            "model.frozen.perceptual_loss=null", f"data.size={SIZE}", f"paths.output_dir={folder}",
                            f"paths.work_dir={folder}"])
    model = instantiate(cfg.model, _convert_="all")
    torch.save({"facezoo_config": OmegaConf.to_container(cfg, resolve=True), "state_dict": model.state_dict()},
               folder / "maskgan.ckpt")
    Image.fromarray(skimage.data.astronaut()).save(folder / "astronaut.png")
    return {"maskgan": folder / "maskgan.ckpt", "photo": folder / "astronaut.png"}


def refused(entry, args, folder, monkeypatch, capsys, out_name: str = "out.png") -> str:
    """Run ``entry`` with an earlier result at ``folder/<out_name>``: status 2, one line, the folder as it was."""
    out = folder / out_name
    out.write_bytes(b"an earlier result")
    before = files_under(folder)
    code, err = call_main(entry, [*args, f"out={out}", f"hydra.run.dir={folder / 'run'}"], monkeypatch, capsys)
    assert code == EXIT_USAGE, err[-2000:]
    line = error_line(err, entry)
    after = {name: data for name, data in files_under(folder).items() if not name.startswith("run/")}
    assert after == before          # the output untouched, nothing new (no temporary file); run/: Hydra's log record
    return line


# ------------------------------------------------------------------------------------------- MaskGAN masks
MASKS = {
    "labels outside 0-18": ("mask", corpus.mask_labels_outside, [],
                            "labels_outside.png: label ids 0..25 are outside label_order celebamask_hq (0..18)"),
    "wrong size": ("source_mask", corpus.mask_wrong_size, [],
                   "wrong_size.png: source_mask= is a 48x64 label map; it must be a square map of the aligned face, "
                   "64x64 for this model"),
    "RGB colours": ("mask", corpus.mask_in_colours, [], "colours.png: a colour picture, not a label map; give one "
                    "channel of integer ids (celebamask_hq order)"),
    "another order": ("source_mask", corpus.mask_celebamask_ids, ["mask_order=mt"],
                      "celebamask_ids.png: label ids 0..17 are outside label_order mt (0..13)"),
    "unknown order": ("mask", corpus.mask_celebamask_ids, ["mask_order=helen"],
                      "mask_order=helen: use one of celebamask_hq, face_parsing_pytorch, mt"),
}


@pytest.mark.parametrize("case", list(MASKS))
def test_maskgan_bad_masks(case, inputs, tmp_path, monkeypatch, capsys):
    option, make, extra, message = MASKS[case]
    masks = {"mask": corpus.mask_celebamask_ids(tmp_path), option: make(tmp_path)}
    line = refused("facezoo.infer", ["model=maskgan", f"ckpt_path={inputs['maskgan']}", f"source={inputs['photo']}",
                                     *(f"{k}={v}" for k, v in masks.items()), "parser=landmarks", *extra],
                   tmp_path, monkeypatch, capsys)
    assert f"{tmp_path}/{message}" in line or message.startswith("mask_order=") and message in line, line


# -------------------------------------------------------------------------------- another method's checkpoint
#: method → the options its pipeline needs besides ckpt_path, source and out
PIPELINES = {
    "gannotation": lambda d, p: [f"target_landmarks={p}"],
    "psgan": lambda d, p: [f"reference={p}", "parser=landmarks"],
    "psp": lambda d, p: [],
    "maskgan": lambda d, p: [f"mask={corpus.mask_celebamask_ids(d)}"],
}


@pytest.mark.parametrize("method", list(PIPELINES))
def test_a_checkpoint_of_another_method(method, inputs, tmp_path, monkeypatch, capsys):
    """A TP-GAN checkpoint (a method with no photo pipeline) given to each pipeline; MaskGAN's to pSp."""
    tpgan = corpus.foreign_checkpoint(tmp_path, "tpgan", "TPGAN")
    args = [f"model={method}", f"ckpt_path={tpgan}", f"source={inputs['photo']}",
            *PIPELINES[method](tmp_path, inputs["photo"])]
    line = refused("facezoo.infer", args, tmp_path, monkeypatch, capsys)
    assert line.endswith(f"{tpgan}: a tpgan checkpoint, not {method} (facezoo.infer has no tpgan pipeline; "
                         f"python -m facezoo.evaluate ckpt_path={tpgan} evaluates it)"), line
    if method == "psp":
        args[1] = f"ckpt_path={inputs['maskgan']}"
        line = refused("facezoo.infer", args, tmp_path, monkeypatch, capsys)
        assert line.endswith(f"{inputs['maskgan']}: a maskgan checkpoint, not psp (model=maskgan runs it)"), line


# ------------------------------------------------------------------------------------- evaluate's checkpoints
def _evaluate_checkpoints(folder, source) -> dict[str, tuple[object, str]]:
    """Bad ``ckpt_path=`` files for ``facezoo.evaluate``, made from a good checkpoint: case → (file, problem)."""
    good = torch.load(source, weights_only=True)
    (folder / "truncated.ckpt").write_bytes(source.read_bytes()[:4096])
    torch.save({"weights": torch.zeros(2)}, folder / "plain.ckpt")
    unknown = {**good, "facezoo_config": {**good["facezoo_config"], "model": {
        **good["facezoo_config"]["model"], "_target_": "facezoo.methods.nope.module.Nope"}}}
    torch.save(unknown, folder / "unknown.ckpt")
    name = next(iter(good["state_dict"]))
    torch.save({**good, "state_dict": {**good["state_dict"], name: torch.zeros(3)}}, folder / "shape.ckpt")
    return {
        "truncated": ("truncated.ckpt", "cannot read checkpoint, the file is truncated, damaged or not a torch file"),
        "not facezoo's": ("plain.ckpt", "not a facezoo checkpoint (no facezoo_config / state_dict)"),
        "unknown model": ("unknown.ckpt", "its model facezoo.methods.nope.module.Nope is not in this facezoo"),
        "wrong shape": ("shape.ckpt", f"its weights do not fit the model its config builds (wrong shapes {name} "
                                      f"(3,) (needs {tuple(good['state_dict'][name].shape)}))"),
    }


@pytest.mark.parametrize("case", ["truncated", "not facezoo's", "unknown model", "wrong shape"])
def test_evaluate_bad_checkpoints(case, inputs, tmp_path, monkeypatch, capsys):
    file, problem = _evaluate_checkpoints(tmp_path, inputs["maskgan"])[case]
    line = refused("facezoo.evaluate", [f"ckpt_path={tmp_path / file}"], tmp_path, monkeypatch, capsys,
                   out_name="metrics.json")
    assert line.startswith(f"facezoo.evaluate: error: {tmp_path / file}: {problem}"), line


# -------------------------------------------------------------------------------------- official weights
def _official_state(method: str) -> dict[str, torch.Tensor]:
    """A valid official state dict of a tiny (width 1/8) generator, with the loader that reads it at that width."""
    if method == "gannotation":
        from facezoo.methods.gannotation.networks import Generator
        from facezoo.methods.gannotation.official import official_state_dict_from

        state = official_state_dict_from(Generator(width=0.125))["state_dict"]
        return {k.removeprefix("module."): v for k, v in state.items()}
    from facezoo.methods.psgan.networks import PSGANGenerator
    from facezoo.methods.psgan.official import official_state_dict_from

    return dict(official_state_dict_from(PSGANGenerator(width=0.125)))


def _official_loader(method: str):
    if method == "gannotation":
        from facezoo.methods.gannotation.official import load_official_generator

        return lambda path: load_official_generator(path, width=0.125)
    from facezoo.methods.psgan.official import load_official_generator

    return lambda path: load_official_generator(path, width=0.125)


OFFICIAL = {     # (method, variant) → what the line says after the file name
    ("gannotation", "missing"): " is not a GANnotation generator with 66 points, conv_dim 64, 6 residual blocks "
                                "(missing {0}, {1})",
    ("gannotation", "extra"): " is not a GANnotation generator with 66 points, conv_dim 64, 6 residual blocks "
                              "(unexpected extra.0.weight, extra.1.weight)",
    ("gannotation", "wrong_shape"): " is not a GANnotation generator with 66 points, conv_dim 64, 6 residual blocks "
                                    "(wrong shapes ",
    ("psgan", "missing"): " is not an official PSGAN generator state dict (missing {0}, {1})",
    ("psgan", "extra"): " is not an official PSGAN generator state dict (unexpected extra.0.weight, extra.1.weight)",
    ("psgan", "wrong_shape"): " does not fit a PSGAN generator of width 0.125 (wrong shapes ",
}


@pytest.mark.parametrize("method, variant", list(OFFICIAL))
def test_official_weights_with_missing_extra_or_wrong_shaped_keys(method, variant, tmp_path):
    """One line naming the file and the first offending keys in the file's own (official) names."""
    state = _official_state(method)
    bad = corpus.state_dict_variants(state)[variant]
    torch.save(bad, tmp_path / "G.pth")
    first = sorted(list(state)[:2])
    message = one_line_error(lambda: _official_loader(method)(tmp_path / "G.pth"),
                             f"{tmp_path / 'G.pth'}" + OFFICIAL[method, variant].format(*first))
    if variant == "wrong_shape":
        for key in sorted(k for k in state if state[k].ndim > 1)[:2]:
            if key in [k for k in state if state[k].ndim > 1][:2]:
                assert f"{key} {tuple(s + 1 for s in state[key].shape)} (needs {tuple(state[key].shape)})" in message


@pytest.mark.parametrize("method", ["gannotation", "psgan"])
def test_official_weights_through_the_command_line(method, inputs, tmp_path, monkeypatch, capsys):
    """``weights=`` a damaged file, then a tiny generator's file (wrong shapes for the release's width)."""
    needs = PIPELINES[method](tmp_path, inputs["photo"])
    if method == "gannotation":
        np.save(tmp_path / "target.npy", np.stack([np.arange(68.0), np.arange(68.0) % 7], 1))
        needs = [f"target_landmarks={tmp_path / 'target.npy'}"]
    args = [f"model={method}", f"source={inputs['photo']}", *needs]
    damaged = corpus.damaged_weights(tmp_path)
    line = refused("facezoo.infer", [*args, f"weights={damaged}"], tmp_path, monkeypatch, capsys)
    assert "cannot read weights, the file is truncated, damaged or not a torch file" in line, line
    assert line.count(str(damaged)) == 1, line   # named once, whichever loader wraps the reader's error
    assert "weights_only" not in line            # torch's advice, no fix for a damaged file
    torch.save(_official_state(method), tmp_path / "tiny.pth")
    line = refused("facezoo.infer", [*args, f"weights={tmp_path / 'tiny.pth'}"], tmp_path, monkeypatch, capsys)
    assert f"{tmp_path / 'tiny.pth'} " in line and "(wrong shapes " in line and "(+" in line, line


# ------------------------------------------------------------------------------------------------- points
@pytest.mark.parametrize("suffix, message", [
    (".txt", "points.txt: not a text file of points (byte 0xe9 at offset 14 is not UTF-8); write one 'x y' line "
             "per point"),
    (".pts", "points.pts: not a text .pts file (byte 0xe9 at offset 14 is not UTF-8)"),
])
def test_non_utf8_points_file(suffix, message, inputs, tmp_path, monkeypatch, capsys):
    """GANnotation's ``target_landmarks=``, read before the weights are: the file's problem, not a codec's."""
    points = corpus.non_utf8_points(tmp_path, suffix)
    line = refused("facezoo.infer", ["model=gannotation", f"ckpt_path={inputs['maskgan']}",
                                     f"source={inputs['photo']}", f"target_landmarks={points}"],
                   tmp_path, monkeypatch, capsys)
    assert line.endswith(message), line


# ------------------------------------------------------------------------------------------------- photos
def test_two_faces_the_largest_is_used_and_logged(tmp_path, caplog):
    """facezoo's detector (dlib, offline, its default 361-pixel downscale) finds both astronauts; the chosen face is
    the largest box (ties: the higher score), said in one log line. dlib's boxes come in steps of its image pyramid,
    so the two boxes here may be of one size: the size rule itself is checked on boxes of different sizes."""
    from facezoo.face.detect import DlibDetector, Face, largest_face
    from facezoo.face.photo import read_photo

    path = corpus.two_faces(tmp_path)
    faces = DlibDetector().detect(read_photo(path))
    assert len(faces) == 2
    with caplog.at_level(logging.INFO, logger="facezoo"):
        face = largest_face(faces, str(path))
    assert (face.area, face.score) == max((f.area, f.score) for f in faces)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith(f"{path}: found 2 faces; using the largest (box "), lines
    small, large = Face((0, 0, 40, 40), np.zeros((68, 2)), 9.0), Face((50, 0, 110, 60), np.zeros((68, 2)), 0.1)
    assert largest_face([small, large]) is large                         # size wins over the detector's score


def test_a_6000_pixel_photo_is_refused_from_its_header(tmp_path):
    """Refused by the documented limit (facezoo.face.photo.MAX_PIXELS) before decoding: the peak RSS of a fresh
    process grows by less than 20 MB (decoding alone would take 108 MB, the pipelines gigabytes)."""
    path = corpus.huge_photo(tmp_path)
    code = textwrap.dedent(f"""
        import resource
        from facezoo.face.photo import read_photo
        from facezoo.utils import FacezooError
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            read_photo({str(path)!r})
        except FacezooError as err:
            print(err)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120)
    message, grown_mb = proc.stdout.strip().splitlines()
    assert message == (f"{path}: image is 6000x6000 pixels (36.0 megapixels); facezoo reads photos of at most 25 "
                       "megapixels: downscale it first")
    assert int(grown_mb) < 20, grown_mb


def test_a_6000_pixel_photo_given_to_a_pipeline(inputs, tmp_path, monkeypatch, capsys):
    line = refused("facezoo.infer", ["model=maskgan", f"ckpt_path={inputs['maskgan']}",
                                     f"source={corpus.huge_photo(tmp_path)}", "parser=landmarks",
                                     f"mask={corpus.mask_celebamask_ids(tmp_path)}"], tmp_path, monkeypatch, capsys)
    assert "huge_6000.png: image is 6000x6000 pixels (36.0 megapixels)" in line, line


# ----------------------------------------------------------------------------------------------- datasets
def test_a_damaged_dataset_file_read_by_a_worker_is_one_line(tmp_path, capsys):
    """A truncated image in a folder dataset, read in a DataLoader worker (the configs' default num_workers > 0):
    torch re-raises the error with the worker's traceback as its message; the line keeps only the original."""
    from facezoo.data.folder import ImageFolder

    root, bad = corpus.folder_with_a_damaged_image(tmp_path)
    dataset = ImageFolder(root=str(root), size=64, val_fraction=0.0, test_fraction=0.0)
    with pytest.raises(SystemExit) as exit_, user_errors("facezoo.train"):
        for _ in torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=1):
            pass
    assert exit_.value.code == EXIT_USAGE
    assert capsys.readouterr().err == (f"facezoo.train: error: {bad}: cannot read image, the file is damaged or "
                                       "truncated (image file is truncated)\n")
