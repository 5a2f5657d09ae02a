"""MaskGAN's photo pipeline, offline: the astronaut with dlib's landmarks and a tiny random MaskGAN at 64 px.

The paste-back promise is exact: every photo pixel whose blend weight is 0 — everything farther than
``dilate + feather`` crop pixels from where the edited mask differs from the source's — keeps its value (PNG in,
PNG out). The tiny generator's style and label encoders are redrawn at N(0, 0.2): at the demo's N(0, 0.02)
initialisation the AdaIN parameters hardly depend on the style image (~1e-8), and a style copy would equal the
self-style rendering.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import skimage.data
import torch
from conftest import run_module
from omegaconf import OmegaConf
from PIL import Image
from torch import nn

from facezoo.face.align import align_ffhq, invert_affine, transform_points
from facezoo.face.detect import DlibDetector
from facezoo.face.labels import CELEBAMASK_HQ, convert_labels
from facezoo.methods.maskgan.edit import grow
from facezoo.methods.maskgan.inference import (
    align_face,
    alignment_matrix,
    blend_weight,
    edit_photo,
    edit_region,
    read_mask,
    run,
)
from facezoo.utils import FacezooError

SIZE = 64


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def landmarks(photo) -> np.ndarray:
    return DlibDetector().detect(photo)[0].landmarks


@pytest.fixture(scope="module")
def files(tmp_path_factory, photo) -> dict[str, Path]:
    """A tiny MaskGAN checkpoint, the astronaut, a recoloured astronaut (the style reference), the source's own mask
    (written by the pipeline's ``save_mask``) and an edit of it (lips grown by 3 pixels into the skin)."""
    from hydra.utils import instantiate

    from facezoo.config import compose

    d = tmp_path_factory.mktemp("maskgan_infer")
    cfg = compose("train", ["model=maskgan", "model.width=0.125", "model.frozen.mask_vae=null",
                            "model.frozen.perceptual_loss=null", f"data.size={SIZE}", f"paths.output_dir={d}",
                            f"paths.work_dir={d}"])
    torch.manual_seed(0)
    model = instantiate(cfg.model, _convert_="all")
    encoders = [*model.generator.style_encoder.parameters(), *model.generator.label_encoder.parameters()]
    with torch.no_grad():
        for p in encoders:
            if p.ndim > 1:
                p.normal_(0.0, 0.2)
    torch.save({"facezoo_config": OmegaConf.to_container(cfg, resolve=True), "state_dict": model.state_dict()},
               d / "maskgan.ckpt")
    Image.fromarray(photo).save(d / "source.png")
    reference = (photo[..., [2, 0, 1]].astype(np.float64) * 0.6 + 60).astype(np.uint8)
    Image.fromarray(reference).save(d / "reference.png")
    run(config(ckpt_path=d / "maskgan.ckpt", source=d / "source.png", save_mask=d / "source_mask.png"))
    own = torch.from_numpy(np.asarray(Image.open(d / "source_mask.png")).astype(np.int64))
    Image.fromarray(grow(own, "lips", 3, into="skin").numpy().astype(np.uint8)).save(d / "lips.png")
    return {"dir": d, "ckpt": d / "maskgan.ckpt", "source": d / "source.png", "reference": d / "reference.png",
            "source_mask": d / "source_mask.png", "lips": d / "lips.png", "model": model}


def config(**options):
    base = {"ckpt_path": None, "weights": None, "detector": "dlib", "parser_weights": "face_parsing_bisenet"}
    return OmegaConf.create({**base, **{k: None if v is None else str(v) for k, v in options.items()}})


def edit(files, out, **options) -> np.ndarray:
    run(config(**{"ckpt_path": files["ckpt"], "source": files["source"], "mask": files["lips"], "out": out, **options}))
    return np.asarray(Image.open(out).convert("RGB"))


def labels(path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int64)


# ------------------------------------------------------------------------------------- the edit
def test_edit_keeps_the_resolution_and_every_pixel_away_from_the_edited_region(files, photo, landmarks, tmp_path):
    out = edit(files, tmp_path / "x.png")
    assert out.shape == photo.shape and out.dtype == np.uint8
    region = labels(files["source_mask"]) != labels(files["lips"])
    assert 20 < region.sum() < 400                                    # the grown lips: a thin band at 64 px
    # the region's crop pixels, grown by dilate + feather (3 + 4) and one pixel, mapped into the photo
    matrix = alignment_matrix(photo.shape, SIZE, "ffhq", landmarks)
    ys, xs = np.nonzero(region)
    corners = np.array([[xs.min() - 8, ys.min() - 8], [xs.max() + 8, ys.min() - 8], [xs.min() - 8, ys.max() + 8],
                        [xs.max() + 8, ys.max() + 8]], np.float64)
    box = transform_points(corners, invert_affine(matrix))
    (x0, y0), (x1, y1) = np.floor(box.min(0)).astype(int) - 1, np.ceil(box.max(0)).astype(int) + 1
    changed = (out != photo).any(-1)
    inside = np.zeros_like(changed)
    inside[max(y0, 0):y1 + 1, max(x0, 0):x1 + 1] = True
    assert changed.any() and not changed[~inside].any()               # exactly: nothing away from the edit
    # inside: the lips are repainted, around the mouth's landmarks
    cy, cx = np.argwhere(changed).mean(0)
    mouth = landmarks[48:68].mean(0)
    assert abs(cx - mouth[0]) < 25 and abs(cy - mouth[1]) < 25
    assert changed.sum() > 500


def test_blend_weight_is_exactly_zero_beyond_dilate_plus_feather():
    region = np.zeros((32, 32), bool)
    region[10:12, 10:14] = True
    alpha = blend_weight(region, dilate=3, feather=4)
    ys, xs = np.mgrid[:32, :32]
    distance = np.min([np.hypot(ys - y, xs - x) for y, x in np.argwhere(region)], axis=0)
    assert (alpha[distance <= 3] == 1).all() and (alpha[distance >= 7] == 0).all()
    assert ((alpha > 0) & (alpha < 1)).any()                          # the feathered band
    assert set(np.unique(blend_weight(region, 2, 0))) == {0.0, 1.0}
    assert not blend_weight(np.zeros((8, 8), bool)).any()


def test_unchanged_mask_leaves_the_photo_as_it_is(files, photo, tmp_path, caplog):
    """The source's own mask given back as mask=: the edited region is empty, the photo is written unchanged."""
    caplog.set_level(logging.WARNING, logger="facezoo.infer.maskgan")
    out = edit(files, tmp_path / "same.png", mask=files["source_mask"])
    assert np.array_equal(out, photo) and "the photo is left as it is" in caplog.text


class StyleImage(nn.Module):
    """A stand-in generator: returns its style image, so the pipeline's own geometry is all that is left."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, mask, style_mask, style_image):
        return style_image


def test_warping_back_inverts_the_alignment(photo, landmarks):
    """G = the style image with region=crop: the aligned crop goes back where it came from. A square photo of the
    network's side with align=center is an identity map (exact); the FFHQ crop at 512 is resampled twice."""
    small = np.asarray(Image.fromarray(photo).resize((SIZE, SIZE), Image.LANCZOS))
    face = align_face(small, SIZE, "center")
    mask = torch.zeros(SIZE, SIZE, dtype=torch.long)
    out = edit_photo(small, face, mask, mask, StyleImage(), region="crop")
    assert np.array_equal(out, small)

    face = align_face(photo, 512, "ffhq", SimpleNamespace(landmarks=landmarks))
    assert np.array_equal(face.image, align_ffhq(photo, landmarks, 512))       # the crop pSp and StyleGAN2 use
    mask = torch.zeros(512, 512, dtype=torch.long)
    out = edit_photo(photo, face, mask, mask, StyleImage(), region="crop", dilate=0, feather=0)
    ys, xs = np.mgrid[:512, :512]
    where = transform_points(np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64), face.matrix).reshape(512, 512, 2)
    inside = ((where >= 2) & (where <= 509)).all(-1)                    # photo pixels well inside the crop
    outside = ((where < -1.5) | (where > 512.5)).any(-1)                # beyond the crop and its bilinear support
    diff = np.abs(out.astype(int) - photo.astype(int))
    assert inside.sum() > 20000 and np.array_equal(out[outside], photo[outside])
    assert diff[inside].mean() < 3 and np.percentile(diff[inside], 99) < 16   # measured 1.43 and 7: bilinear twice


def test_style_copy_differs_from_the_self_style(files, photo, tmp_path):
    own = edit(files, tmp_path / "own.png")
    copied = edit(files, tmp_path / "copy.png", reference=files["reference"], region="edited")
    changed = (own != photo).any(-1)
    assert ((copied != photo).any(-1) ^ changed).mean() < 1e-3          # the same region ...
    diff = np.abs(own.astype(int) - copied.astype(int)).max(-1)[changed]
    assert diff.mean() > 1 and (diff > 0).mean() > 0.5                  # ... in another style (measured 2.2, 0.89)
    face = edit(files, tmp_path / "face.png", reference=files["reference"])   # region=auto: the whole face
    assert (face != photo).any(-1).sum() > 2 * changed.sum()                # measured 13200 against 5689


def test_style_comes_from_the_reference_face_and_its_mask(photo):
    """G = its style image: with a reference the pasted pixels are the reference's, and G gets the reference's mask."""
    calls = []

    class Recorder(StyleImage):
        def forward(self, mask, style_mask, style_image):
            calls.append((mask, style_mask))
            return style_image

    small = np.asarray(Image.fromarray(photo).resize((SIZE, SIZE), Image.LANCZOS))
    other = 255 - small
    source, reference = align_face(small, SIZE, "center"), align_face(other, SIZE, "center")
    mask, edited, reference_mask = (torch.full((SIZE, SIZE), i, dtype=torch.long) for i in (1, 2, 13))
    out = edit_photo(small, source, mask, edited, Recorder(), style=(reference, reference_mask), dilate=0, feather=0)
    assert np.array_equal(out, other)
    assert torch.equal(calls[0][0][0], edited) and torch.equal(calls[0][1][0], reference_mask)


# ------------------------------------------------------------------------------------------ masks
def test_source_mask_file_is_used_instead_of_the_parser(files, photo, tmp_path, caplog):
    """A synthetic face's mask given as both source_mask= and mask=: nothing differs, so nothing changes; the
    parser is not even loaded (parser=bisenet with a missing file would fail) and no face is detected (center)."""
    from facezoo.data.synthetic import SyntheticFaces

    synthetic = SyntheticFaces(split="test", size=SIZE, length=1)[0]["mask"].numpy().astype(np.uint8)
    Image.fromarray(synthetic).save(tmp_path / "synthetic.png")
    caplog.set_level(logging.INFO, logger="facezoo.infer.maskgan")
    out = edit(files, tmp_path / "x.png", mask=tmp_path / "synthetic.png", source_mask=tmp_path / "synthetic.png",
               parser="bisenet", parser_weights=tmp_path / "absent.pth", align="center", detector="no_such_backend")
    assert np.array_equal(out, photo)
    assert f"source mask: source_mask={tmp_path / 'synthetic.png'}" in caplog.text
    # without it, the source's mask is drawn from the landmarks, and the same map is an edit of the whole face
    caplog.clear()
    out = edit(files, tmp_path / "y.png", mask=tmp_path / "synthetic.png", align="center")
    assert "source mask: drawn from the 68 landmarks" in caplog.text and (out != photo).any(-1).mean() > 0.1


def test_save_mask_is_a_palette_png_of_the_landmark_parsing(files, photo, landmarks):
    from facezoo.face.parsing import parsing_from_landmarks

    saved = Image.open(files["source_mask"])
    assert saved.mode == "P" and saved.size == (SIZE, SIZE)
    aligned = transform_points(landmarks.astype(np.float64), alignment_matrix(photo.shape, SIZE, "ffhq", landmarks))
    assert np.array_equal(labels(files["source_mask"]), parsing_from_landmarks(aligned, SIZE).numpy())
    assert saved.getpalette()[3 * 13:3 * 14] == [90, 50, 160]          # hair's colour: the map is viewable
    assert torch.equal(read_mask(files["source_mask"], SIZE), torch.from_numpy(labels(files["source_mask"])))


def test_mask_order_converts_the_ids(files, tmp_path):
    ids = labels(files["lips"])
    Image.fromarray(convert_labels(ids, "celebamask_hq", "face_parsing_pytorch").astype(np.uint8)).save(
        tmp_path / "fpp.png")
    assert not np.array_equal(labels(tmp_path / "fpp.png"), ids)       # nose 2 -> 10, lips 11/12 -> 12/13 ...
    direct = edit(files, tmp_path / "a.png")
    converted = edit(files, tmp_path / "b.png", mask=tmp_path / "fpp.png", mask_order="face_parsing_pytorch")
    assert np.array_equal(direct, converted)


def test_read_mask_resizes_other_square_sides_with_nearest_neighbours(tmp_path):
    ids = np.zeros((128, 128), np.uint8)
    ids[32:96, 32:96] = CELEBAMASK_HQ.index("skin")
    ids[60:68, 40:88] = CELEBAMASK_HQ.index("u_lip")
    Image.fromarray(ids).save(tmp_path / "big.png")
    small = read_mask(tmp_path / "big.png", SIZE)
    assert small.shape == (SIZE, SIZE) and set(small.unique().tolist()) == {0, 1, 11}
    assert edit_region(small, small, "face").sum() == 32 * 32


# -------------------------------------------------------------------------------------- weights=
def test_demo_generator_file_renders_as_the_checkpoint(files, tmp_path):
    from facezoo.methods.maskgan.official import to_official_state_dict

    torch.save(to_official_state_dict(files["model"].generator), tmp_path / "latest_net_G.pth")
    arch = {"ngf": 8, "label_ngf": 2, "style_ngf": 2}                  # the demo's 64, 16, 16 at width 0.125
    from_ckpt = edit(files, tmp_path / "a.png")
    cfg = config(weights=tmp_path / "latest_net_G.pth", size=SIZE, source=files["source"], mask=files["lips"],
                 out=tmp_path / "b.png")
    run(OmegaConf.merge(cfg, {"weights_arch": arch, "size": SIZE}))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png")), from_ckpt)
    with pytest.raises(FacezooError, match=r"needs \(64, 19, 7, 7\).*give the file's architecture as weights_arch="):
        run(OmegaConf.merge(cfg, {"out": str(tmp_path / "c.png")}))                 # the demo's widths by default
    assert not (tmp_path / "c.png").exists()


# ------------------------------------------------------------------------------------- bad inputs
def _save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def _other_checkpoint(path: Path, target: str) -> Path:
    torch.save({"state_dict": {}, "facezoo_config": {"model": {"_target_": target}}}, path)
    return path


def _maskvae_checkpoint(path: Path) -> Path:
    from hydra.utils import instantiate

    from facezoo.config import compose

    cfg = compose("train", ["model=maskvae", "model.width=0.125", f"data.size={SIZE}"])
    model = instantiate(cfg.model, _convert_="all")
    torch.save({"facezoo_config": OmegaConf.to_container(cfg, resolve=True), "state_dict": model.state_dict()}, path)
    return path


#: case → (the option, how to make its value in a folder, what the one line says)
BAD_INPUTS = {
    "no face": ("source", lambda d: _save(d / "grey.png", np.full((200, 200, 3), 90, np.uint8)),
                "grey.png: no face found"),
    "missing photo": ("source", lambda d: d / "nope.jpg", "nope.jpg: no such file"),
    "unreadable mask": ("mask", lambda d: (d / "m.png").write_bytes(b"no PNG here") and d / "m.png",
                        "m.png: cannot read the label map"),
    "non-square mask": ("mask", lambda d: _save(d / "m.png", np.zeros((64, 48), np.uint8)),
                        "m.png: mask= is a 48x64 label map; it must be a square map of the aligned face, 64x64 for "
                        "this model"),
    "tiny mask": ("source_mask", lambda d: _save(d / "m.png", np.zeros((8, 8), np.uint8)),
                  "source_mask= is a 8x8 label map"),
    "label 19": ("mask", lambda d: _save(d / "m.png", np.full((64, 64), 19, np.uint8)),
                 "m.png: label ids 19..19 are outside label_order celebamask_hq (0..18)"),
    "colour mask": ("mask", lambda d: _save(d / "m.png", np.dstack([np.zeros((64, 64), np.uint8)] * 2
                                                                  + [np.ones((64, 64), np.uint8)])),
                    "m.png: a colour picture, not a label map"),
    "psgan checkpoint": ("ckpt_path", lambda d: _other_checkpoint(d / "p.ckpt", "facezoo.methods.psgan.module.PSGAN"),
                         "p.ckpt: a psgan checkpoint, not maskgan (model=psgan runs it)"),
    "stage-1 checkpoint": ("ckpt_path", lambda d: _maskvae_checkpoint(d / "vae.ckpt"),
                           "vae.ckpt: a MaskVAE (stage-1) checkpoint"),
    "gif out": ("out", lambda d: d / "x.gif", "unknown image format '.gif'"),
    "jpeg save_mask": ("save_mask", lambda d: d / "m.jpg", "m.jpg: the label map is written as a .png file"),
    "out without mask": ("mask", lambda d: None, "mask= is required"),
    "bad region": ("region", lambda d: "lips", "region=lips: choose one of auto, edited, face, crop"),
    "negative dilate": ("dilate", lambda d: -1, "dilate=-1: must be a number of pixels >= 0"),
    "reference_mask alone": ("reference_mask", lambda d: d / "r.png", "reference_mask= needs reference="),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_and_writes_nothing(files, tmp_path, case):
    key, make, message = BAD_INPUTS[case]
    out, saved = tmp_path / "out.png", tmp_path / "mask_out.png"
    out.write_bytes(b"an earlier result")
    options = {"ckpt_path": files["ckpt"], "source": files["source"], "mask": files["lips"], "out": out,
               "save_mask": saved, key: make(tmp_path)}
    before = sorted(tmp_path.iterdir())
    with pytest.raises(FacezooError) as info:
        run(config(**options))
    text = str(info.value)
    assert message in text and "\n" not in text, text
    assert out.read_bytes() == b"an earlier result" and sorted(tmp_path.iterdir()) == before   # nothing written


def test_cli_bad_mask_exits_2_with_one_line(files, tmp_path):
    _save(tmp_path / "wide.png", np.zeros((64, 80), np.uint8))
    proc = run_module("facezoo.infer", "model=maskgan", "detector=dlib", f"ckpt_path={files['ckpt']}",
                      f"source={files['source']}", f"mask={tmp_path / 'wide.png'}", f"out={tmp_path / 'x.png'}",
                      check=False, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("facezoo.infer: error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "wide.png: mask= is a 80x64 label map" in errors[0] and "64x64 for this model" in errors[0]
    assert not (tmp_path / "x.png").exists()


def test_inference_config():
    from facezoo.config import compose

    cfg = compose("infer", ["model=maskgan"])
    assert cfg.method == "maskgan" and cfg.mask is None and cfg.mask_order == "celebamask_hq"
    assert cfg.parser == "auto" and cfg.align == "ffhq" and cfg.size is None and cfg.region == "auto"
    assert (cfg.dilate, cfg.feather) == (3, 4) and "alpha" not in cfg
