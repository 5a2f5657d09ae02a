"""PSGAN's photo pipeline, offline: the astronaut with dlib, a random BiSeNet and a random small generator.

Pixels outside the face crop box must be *exactly* unchanged: the result is computed on the crop only and
:func:`facezoo.face.photo.paste_back` writes inside the box, so no resampling ever touches the rest.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from conftest import run_module
from PIL import Image
from torch import nn

from facezoo.face.detect import DlibDetector
from facezoo.face.labels import CELEBAMASK_HQ, FACE_PARSING_PYTORCH
from facezoo.face.parsing import BiSeNet, FaceParser
from facezoo.methods.psgan.inference import load_generator, load_parser, parse_regions, prepare, transfer
from facezoo.methods.psgan.networks import PSGANGenerator
from facezoo.utils import FacezooError


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def reference(source) -> np.ndarray:
    """A recoloured copy: channels rotated and the contrast lowered."""
    return (source[..., [2, 0, 1]].astype(np.float64) * 0.8 + 30).astype(np.uint8)


@pytest.fixture(scope="module")
def detector() -> DlibDetector:
    return DlibDetector()


@pytest.fixture(scope="module")
def parser() -> FaceParser:
    torch.manual_seed(0)
    return FaceParser(BiSeNet().eval(), input_size=512)


@pytest.fixture(scope="module")
def generator() -> PSGANGenerator:
    torch.manual_seed(0)
    return PSGANGenerator(width=0.125).eval()


def outside(box, shape) -> np.ndarray:
    x0, y0, x1, y1 = box
    keep = np.ones(shape[:2], bool)
    keep[y0:y1, x0:x1] = False
    return keep


class ConstantParser(nn.Module):
    """A stand-in BiSeNet whose argmax is one face-parsing.PyTorch label everywhere."""

    def __init__(self, label: int):
        super().__init__()
        self.label = label
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        logits = torch.zeros(x.shape[0], 19, *x.shape[2:])
        logits[:, self.label] = 1.0
        return logits


class Recorder(nn.Module):
    """A stand-in generator that returns its source image and remembers its arguments."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.calls = []

    def forward(self, source, reference, source_landmarks, reference_landmarks, source_regions,
                reference_regions, alpha=1.0, regions=None):
        self.calls.append(dict(source=source, reference=reference, source_landmarks=source_landmarks,
                               source_regions=source_regions, alpha=alpha, regions=regions))
        return source


# ------------------------------------------------------------------------------------- the pipeline
def test_astronaut_transfer_changes_only_the_face_crop(source, reference, generator, detector, parser):
    box = prepare(source, detector, parser).box
    out = transfer(source, reference, generator, detector, parser)
    assert out.shape == source.shape and out.dtype == np.uint8
    assert 0 <= out.min() and out.max() <= 255
    keep = outside(box, source.shape)
    assert np.array_equal(out[keep], source[keep])                    # exactly: nothing outside the crop
    changed = (out[~keep] != source[~keep]).any(-1).mean()
    assert changed > 0.5                                              # a random generator repaints the face
    x0, y0, x1, y1 = box
    assert x0 < 200 < x1 and y0 < 110 < y1                            # the crop holds the astronaut's face


def test_identity_generator_gives_the_photo_back(source, reference, detector, parser):
    """With G(x, y) = x the pipeline must reproduce the photo: the crop, resize, detail restoration and
    paste-back are aligned. The residual is taken with bilinear resampling and the network input with
    Lanczos (both official), so a few levels of difference remain at sharp edges."""
    out = transfer(source, reference, Recorder(), detector, parser)
    diff = np.abs(out.astype(int) - source.astype(int))
    assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8


def test_prepare_moves_landmarks_into_the_256_crop(source, detector, parser):
    face = prepare(source, detector, parser)
    x0, y0, x1, y1 = face.box
    side = x1 - x0
    assert side == y1 - y0 and face.crop.shape == (side, side, 3)
    assert face.image.shape == (1, 3, 256, 256) and -1 <= face.image.min() and face.image.max() <= 1
    back = face.landmarks[0].numpy() * side / 256 + np.array([x0, y0])
    assert np.abs(back - face.face.landmarks).max() <= 0.5 * side / 256 + 1e-4   # rounded at 256, like the official
    assert face.mask.shape == (1, 256, 256) and face.mask.dtype == torch.int64
    assert face.regions.shape == (1, 3, 256, 256) and set(face.regions.unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("part", ["u_lip", "nose", "skin", "hair"])
def test_regions_come_from_converted_parser_labels(source, detector, part):
    """The parser speaks face-parsing.PyTorch ids (nose = 10, hair = 17); the regions need CelebAMask-HQ ones."""
    parser = FaceParser(ConstantParser(FACE_PARSING_PYTORCH.index(part)), input_size=64)
    face = prepare(source, detector, parser)
    assert (face.mask == CELEBAMASK_HQ.index(part)).all()
    lip, skin, eye = face.regions.sum((2, 3))[0].tolist()
    if part == "u_lip":
        assert (lip, skin, eye) == (256 * 256, 0, 0)
    elif part == "hair":
        assert (lip, skin, eye) == (0, 0, 0)
    else:                                   # skin and nose are "skin", minus the two eye-shadow boxes
        assert lip == 0 and eye > 0 and skin + eye == 256 * 256


def test_alpha_and_regions_reach_the_generator(source, reference, detector, parser):
    g = Recorder()
    transfer(source, reference, g, detector, parser, alpha=0.25, regions="lip, eye")
    call = g.calls[-1]
    assert call["alpha"] == 0.25 and call["regions"] == ["lip", "eye"]
    assert call["source"].shape == (1, 3, 256, 256) and call["source_landmarks"].shape == (1, 68, 2)
    assert not torch.equal(call["source"], call["reference"])
    with pytest.raises(FacezooError, match="regions=lip,nose"):
        transfer(source, reference, g, detector, parser, regions=["lip", "nose"])
    with pytest.raises(FacezooError, match="alpha=1.5"):
        transfer(source, reference, g, detector, parser, alpha=1.5)
    assert parse_regions("all") is None and parse_regions(["Skin"]) == ["skin"]


def test_several_faces_pick_the_largest(detector, parser, caplog):
    head = skimage.data.astronaut()[20:276, 90:346]
    pair = np.full((256, 448, 3), 255, np.uint8)
    pair[:, :256] = head
    pair[:192, 256:] = np.asarray(Image.fromarray(head).resize((192, 192), Image.LANCZOS))
    with caplog.at_level(logging.INFO, logger="facezoo.face.detect"):
        face = prepare(pair, detector, parser, name="pair.png")
    assert face.face.box[2] < 256                                     # the full-size head on the left
    assert "pair.png: found 2 faces; using the largest" in caplog.text


def test_no_face_is_a_one_line_error(detector, parser, generator):
    blank = np.full((128, 128, 3), 200, np.uint8)
    with pytest.raises(FacezooError, match="^reference: no face found$"):
        transfer(skimage.data.astronaut(), blank, generator, detector, parser)


# ------------------------------------------------------------------------------ regions from landmarks
def test_landmark_regions_on_the_astronaut(source, detector):
    """Without a parser the lips, skin and eye shadow come from the 68 points: each non-empty, disjoint, where a
    face has them, and the official eye-shadow construction (skin inside the 16-px eye boxes) still applies."""
    face = prepare(source, detector, None)
    lip, skin, eye = face.regions[0].bool()
    points = face.landmarks[0]
    assert lip.sum() > 300 and skin.sum() > 5000 and eye.sum() > 300          # measured 692, 8725, 3337
    assert not (lip & skin).any() and not (lip & eye).any() and not (skin & eye).any()
    ys, xs = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    nose_tip, chin = points[33, 1], points[8, 1]
    assert (ys[lip] > nose_tip).all() and (ys[lip] < chin).all()              # lips: in the lower face
    assert (xs[lip] >= points[48, 0] - 1).all() and (xs[lip] <= points[54, 0] + 1).all()
    assert (ys[eye] < points[30, 1]).all()                                     # eye shadow: above the nose
    left, right = eye & (xs < points[27, 0]), eye & (xs > points[27, 0])
    assert left.sum() > 100 and right.sum() > 100                            # around both eyes
    labels = face.mask[0]
    for part in ("l_eye", "r_eye", "u_lip", "l_lip", "mouth", "l_brow", "r_brow"):
        drawn = labels == CELEBAMASK_HQ.index(part)
        assert drawn.any() and not (skin | eye)[drawn].any(), part          # skin excludes eyes, brows, lips
    for point, part in ((51, "u_lip"), (57, "l_lip")):                       # outer lip points, nudged inwards
        x, y = points[point].long().tolist()
        assert CELEBAMASK_HQ.names[int(labels[y + (1 if part == "u_lip" else -1), x])] == part
    assert (labels[points[37:39, 1].long().max() + 1:points[40:42, 1].long().min(),
                   points[37, 0].long():points[38, 0].long() + 1] == CELEBAMASK_HQ.index("l_eye")).all()


def test_landmark_regions_keep_the_rest_of_the_pipeline(source, detector, parser):
    """Only the labels change: the crop, the network image and the landmarks are those of the BiSeNet path."""
    drawn, parsed = prepare(source, detector, None), prepare(source, detector, parser)
    assert drawn.box == parsed.box and torch.equal(drawn.image, parsed.image)
    assert torch.equal(drawn.landmarks, parsed.landmarks) and not torch.equal(drawn.mask, parsed.mask)


def test_load_parser_auto_bisenet_and_landmarks(tmp_path, monkeypatch, caplog):
    from omegaconf import OmegaConf

    from facezoo.nets.weights import WeightsNotFoundError

    monkeypatch.setenv("FACEZOO_CACHE", str(tmp_path))
    caplog.set_level(logging.INFO, logger="facezoo.infer.psgan")
    cfg = OmegaConf.create({"parser": "auto", "parser_weights": "face_parsing_bisenet"})
    assert load_parser(cfg) is None and "face parsing: landmarks" in caplog.text      # nothing in the cache
    with pytest.raises(WeightsNotFoundError) as info:                                  # asked for: an error
        load_parser(OmegaConf.merge(cfg, {"parser": "bisenet"}))
    message = str(info.value)
    assert "79999_iter.pth" in message and "parser_weights=" in message and "parser=landmarks" in message
    assert "\n" not in message
    with pytest.raises(WeightsNotFoundError, match="absent.pth"):                      # a typo'd path is not "absent"
        load_parser(OmegaConf.merge(cfg, {"parser_weights": str(tmp_path / "absent.pth")}))
    with pytest.raises(FacezooError, match="^parser=segformer: choose one of auto, bisenet, landmarks$"):
        load_parser(OmegaConf.merge(cfg, {"parser": "segformer"}))

    torch.save(BiSeNet().state_dict(), tmp_path / "79999_iter.pth")                   # in the cache: BiSeNet
    caplog.clear()
    assert isinstance(load_parser(cfg), FaceParser) and "face parsing: BiSeNet" in caplog.text
    assert load_parser(OmegaConf.merge(cfg, {"parser": "landmarks"})) is None


# ---------------------------------------------------------------------------------- loading weights
def test_load_generator_from_the_official_file_and_argument_checks(tmp_path):
    from omegaconf import OmegaConf

    from facezoo.methods.psgan.official import official_state_dict_from

    torch.manual_seed(1)
    released = PSGANGenerator(width=1.0)
    torch.save(official_state_dict_from(released), tmp_path / "G.pth")
    g = load_generator(OmegaConf.create({"weights": str(tmp_path / "G.pth"), "ckpt_path": None}))
    assert not g.training
    assert all(torch.equal(v, released.state_dict()[k]) for k, v in g.state_dict().items())
    for both_or_none in ({"weights": "G.pth", "ckpt_path": "x.ckpt"}, {"weights": None, "ckpt_path": None}):
        with pytest.raises(FacezooError, match="exactly one of ckpt_path"):
            load_generator(OmegaConf.create(both_or_none))


def test_load_generator_refuses_checkpoints_of_other_methods(tmp_path):
    """A GANnotation checkpoint given to PSGAN is a one-line error naming what it is, not a traceback."""
    from omegaconf import OmegaConf

    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "facezoo_config": {
        "model": {"_target_": "facezoo.methods.gannotation.module.GANnotation"}}}, path)
    with pytest.raises(FacezooError, match=r"^.*other.ckpt: a gannotation checkpoint, not psgan \(model=gannotation"):
        load_generator(OmegaConf.create({"weights": None, "ckpt_path": str(path)}))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(FacezooError, match="other.ckpt: cannot read checkpoint"):
        load_generator(OmegaConf.create({"weights": None, "ckpt_path": str(path)}))


def test_inference_config_is_per_method():
    """conf/infer/model/<method>.yaml: cfg.method names the pipeline and only that method's options are there."""
    from facezoo.config import compose

    psgan = compose("infer", ["model=psgan"])
    assert psgan.method == "psgan" and psgan.size == 256 and psgan.alpha == 1.0
    assert psgan.parser_weights == "face_parsing_bisenet" and psgan.regions is None and psgan.minmax is False
    assert psgan.parser == "auto"
    gannotation = compose("infer", ["model=gannotation"])
    assert gannotation.method == "gannotation" and "reference" not in gannotation and "alpha" not in gannotation
    assert "target_landmarks" not in psgan


# ----------------------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, source, reference) -> dict[str, Path]:
    """A tiny facezoo PSGAN checkpoint, a random BiSeNet as 79999_iter.pth and the two photos."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from facezoo.config import compose

    d = tmp_path_factory.mktemp("infer")
    cfg = compose("train", ["model=psgan", "model.width=0.125", "model.frozen.perceptual_loss=null", "data.size=64",
                            f"paths.output_dir={d}", f"paths.work_dir={d}"])
    torch.manual_seed(0)
    model = instantiate(cfg.model, _convert_="all")
    torch.save({"facezoo_config": OmegaConf.to_container(cfg, resolve=True), "state_dict": model.state_dict()},
               d / "psgan.ckpt")
    torch.save(BiSeNet().state_dict(), d / "79999_iter.pth")
    Image.fromarray(source).save(d / "source.png")
    Image.fromarray(reference).save(d / "reference.jpg", quality=95)
    return {"dir": d, "ckpt": d / "psgan.ckpt", "parser": d / "79999_iter.pth", "source": d / "source.png",
            "reference": d / "reference.jpg"}


def infer(*args: str, check: bool = False):
    return run_module("facezoo.infer", "model=psgan", "detector=dlib", *args, check=check, timeout=300)


def test_cli_writes_the_made_up_photo_at_the_source_resolution(cli_files, tmp_path, source):
    out = tmp_path / "made_up.png"
    proc = infer(f"ckpt_path={cli_files['ckpt']}", f"parser_weights={cli_files['parser']}",
                 f"source={cli_files['source']}", f"reference={cli_files['reference']}", f"out={out}",
                 "alpha=0.5", "regions=[lip,skin]", check=True)
    assert "wrote" in proc.stdout + proc.stderr
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == source.shape
    changed = (result != source).any(-1)
    ys, xs = np.nonzero(changed)
    assert changed.any() and xs.min() > 100 and xs.max() < 350 and ys.max() < 250   # only around the face
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made_up.png"]


def test_cli_without_parser_weights_uses_the_landmarks(cli_files, tmp_path, source):
    """The common case: no 79999_iter.pth anywhere (the test cache is empty). The photo is still made up."""
    out = tmp_path / "made_up.png"
    proc = infer(f"ckpt_path={cli_files['ckpt']}", f"source={cli_files['source']}",
                 f"reference={cli_files['reference']}", f"out={out}", check=True)
    logs = proc.stdout + proc.stderr
    assert logs.count("face parsing: landmarks") == 1 and "BiSeNet (" not in logs and "wrote" in logs
    result = np.asarray(Image.open(out).convert("RGB"))
    assert result.shape == source.shape and (result != source).any(-1).mean() > 0.01


def test_fast_path_is_close_to_the_fp32_output(cli_files, tmp_path):
    from omegaconf import OmegaConf

    from facezoo.methods.psgan.inference import run

    cfg = OmegaConf.create({"ckpt_path": str(cli_files["ckpt"]), "weights": None, "detector": "dlib",
                            "parser": "landmarks", "source": str(cli_files["source"]),
                            "reference": str(cli_files["reference"]), "out": str(tmp_path / "exact.png")})
    exact = run(cfg).astype(np.float64)
    fast = run(OmegaConf.merge(cfg, {"fast": True, "out": str(tmp_path / "fast.png")})).astype(np.float64)
    psnr = 10 * np.log10(255**2 / np.mean((fast - exact) ** 2))
    assert 30 < psnr < np.inf, psnr                          # bf16 ran, and stayed close


def test_run_with_parser_bisenet_and_no_weights_is_one_line_naming_the_file(cli_files, tmp_path):
    from omegaconf import OmegaConf

    from facezoo.methods.psgan.inference import run
    from facezoo.nets.weights import WeightsNotFoundError

    out = tmp_path / "result.png"
    cfg = OmegaConf.create({"ckpt_path": str(cli_files["ckpt"]), "weights": None, "detector": "dlib",
                            "parser": "bisenet", "parser_weights": "face_parsing_bisenet",
                            "source": str(cli_files["source"]), "reference": str(cli_files["reference"]),
                            "out": str(out)})
    with pytest.raises(WeightsNotFoundError) as info:
        run(cfg)
    assert "79999_iter.pth" in str(info.value) and "\n" not in str(info.value) and not out.exists()
    with pytest.raises(FacezooError, match="^parser=Landmark: choose one of"):   # checked before reading photos
        run(OmegaConf.merge(cfg, {"parser": "Landmark", "source": str(tmp_path / "not_yet.png")}))


def _truncated_png(path: Path) -> Path:
    buf = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).save(buf, format="PNG")
    path.write_bytes(buf.getvalue()[:5000])
    return path


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


BAD_INPUTS = {
    "missing": (lambda d: d / "nope.png", "nope.png: no such file"),
    "garbage": (lambda d: _write(d / "g.png", b"PNG? no, plain text"), "g.png: not an image"),
    "truncated": (lambda d: _truncated_png(d / "cut.png"), "cut.png: cannot read image, the file is damaged"),
    "tiny": (lambda d: _save(d / "t.png", np.zeros((32, 48, 3), np.uint8)), "t.png: image is 48x32 pixels"),
    "no face": (lambda d: _save(d / "f.png", np.full((200, 200), 90, np.uint8)), "f.png: no face found"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_source_is_a_one_line_error_and_writes_nothing(cli_files, tmp_path, case):
    from omegaconf import OmegaConf

    from facezoo.methods.psgan.inference import run

    make, message = BAD_INPUTS[case]
    out = tmp_path / "out" / "result.png"
    cfg = OmegaConf.create({"ckpt_path": str(cli_files["ckpt"]), "weights": None, "detector": "dlib",
                            "parser_weights": str(cli_files["parser"]), "source": str(make(tmp_path)),
                            "reference": str(cli_files["reference"]), "out": str(out)})
    with pytest.raises(FacezooError) as info:
        run(cfg)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not out.parent.exists()
    for key, value, expected in (("out", str(tmp_path / "r.gif"), "unknown image format"),
                                 ("ckpt_path", None, "exactly one of ckpt_path")):
        bad = OmegaConf.merge(cfg, {"source": str(cli_files["source"]), key: value})
        with pytest.raises(FacezooError, match=expected):
            run(bad)


def _cli_error(proc) -> str:
    """The single `facezoo.infer: error:` line of a failed run (asserts there is exactly one, no traceback)."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("facezoo.infer: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    return errors[0]


def test_cli_unreadable_source_exits_2_with_one_line_and_no_output(cli_files, tmp_path):
    out = tmp_path / "out" / "result.png"
    proc = infer(f"ckpt_path={cli_files['ckpt']}", f"parser_weights={cli_files['parser']}",
                 f"source={_truncated_png(tmp_path / 'cut.png')}", f"reference={cli_files['reference']}",
                 f"out={out}")
    assert "cut.png: cannot read image, the file is damaged or truncated" in _cli_error(proc)
    assert not out.parent.exists()


def test_cli_missing_parser_weights_exits_2_naming_the_file(cli_files, tmp_path):
    out = tmp_path / "result.png"
    proc = infer(f"ckpt_path={cli_files['ckpt']}", f"parser_weights={tmp_path / 'absent.pth'}",
                 f"source={cli_files['source']}", f"reference={cli_files['reference']}", f"out={out}")
    line = _cli_error(proc)
    assert "absent.pth" in line and "parser_weights=" in line and "79999_iter.pth" in line
    assert not out.exists()


def test_unknown_model_names_the_available_pipelines():
    from facezoo.infer import available_methods, load_pipeline

    assert "psgan" in available_methods()
    with pytest.raises(FacezooError, match="model=tpgan has no inference pipeline; available: .*psgan"):
        load_pipeline("tpgan")
