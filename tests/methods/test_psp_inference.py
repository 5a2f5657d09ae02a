"""pSp photos in, photos out: `python -m facezoo.infer model=psp` on tiny random official releases of every task."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from conftest import run_module
from PIL import Image

from facezoo.config import compose
from facezoo.face.labels import CELEBAMASK_HQ_COLORS, convert_labels
from facezoo.face.photo import center_crop, image_to_tensor, resize, tensor_to_uint8
from facezoo.infer import infer
from facezoo.methods.psp.inference import parse_latent_mask
from facezoo.methods.psp.networks import PSP
from facezoo.methods.psp.official import load_official, official_checkpoint_from
from facezoo.nets.stylegan2 import Generator
from facezoo.utils import FacezooError

#: The tiny encoder takes 32 px inputs (the releases: 256), the decoder draws 32 px faces with 8 styles of 16.
INPUT, OUTPUT, N_STYLES, STYLE_DIM = 32, 32, 8, 16
#: dataset_type of each release → (task, input channels).
RELEASES = {"ffhq_encode": ("encode", 3), "ffhq_frontalize": ("frontalize", 3),
            "celebs_super_resolution": ("superres", 3), "celebs_sketch_to_face": ("sketch2face", 1),
            "celebs_seg_to_face": ("seg2face", 19)}


def tiny_release(path: Path, dataset_type: str, input_nc: int, seed: int) -> Path:
    """A random tiny pSp written as an official release (``official_checkpoint_from``)."""
    torch.manual_seed(seed)
    decoder = Generator(OUTPUT, STYLE_DIM, 2, channel_multiplier=1, narrow=1 / 32)
    model = PSP(decoder, input_nc=input_nc, width=0.0625, irse50=False, input_size=INPUT,
                start_from_latent_avg=True, latent_avg=torch.randn(STYLE_DIM) * 0.1)
    torch.save(official_checkpoint_from(model, {"dataset_type": dataset_type}), path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("psp_infer")
    out = {kind: tiny_release(d / f"{kind}.pt", kind, channels, seed)
           for seed, (kind, (_, channels)) in enumerate(RELEASES.items())}
    photo = skimage.data.astronaut()
    Image.fromarray(photo).save(d / "face.png")
    Image.fromarray(photo).convert("L").save(d / "sketch.png")
    ids = np.zeros((96, 80), np.uint8)            # a CelebAMask-HQ label map: background, skin, hair, eyes, lips
    ids[20:90, 15:65], ids[5:25, 10:70], ids[45:50, 25:32], ids[45:50, 45:52], ids[70:76, 32:48] = 1, 13, 4, 5, 11
    Image.fromarray(ids).save(d / "mask.png")
    Image.fromarray(convert_labels(ids, "celebamask_hq", "face_parsing_pytorch").astype(np.uint8)).save(
        d / "mask_fpp.png")
    return {**out, "dir": d, "face": d / "face.png", "sketch": d / "sketch.png", "mask": d / "mask.png",
            "mask_fpp": d / "mask_fpp.png", "ids": ids}


def run(files, release: str, tmp_path, *overrides: str, source: str = "face", out: str = "out.png"):
    cfg = compose("infer", ["model=psp", f"weights={files[release]}", f"source={files[source]}",
                            f"out={tmp_path / out}", "align=center", *overrides])
    picture = infer(cfg)
    written = np.asarray(Image.open(tmp_path / out).convert("RGB"))
    np.testing.assert_array_equal(written, picture)        # what is returned is what was written (PNG)
    return picture


def reference(files, release: str, x: torch.Tensor, resize: bool = False) -> np.ndarray:
    """The official forward pass on ``x``: ``pSp(x, randomize_noise=False, resize=resize)``, as a picture."""
    psp = load_official(files[release])
    with torch.no_grad():
        return tensor_to_uint8(psp(x, resize=resize, randomize_noise=False).clamp(-1, 1))


def aligned_face(files) -> torch.Tensor:
    return image_to_tensor(center_crop(skimage.data.astronaut(), INPUT))


# --------------------------------------------------------------------------------------------- tasks
@pytest.mark.parametrize("release", ["ffhq_encode", "ffhq_frontalize"])
def test_photo_tasks_encode_the_aligned_face(files, tmp_path, release):
    picture = run(files, release, tmp_path)
    assert picture.shape == (OUTPUT, OUTPUT, 3)            # the decoder's size
    np.testing.assert_array_equal(picture, reference(files, release, aligned_face(files)))


def test_fast_path_is_close_to_the_fp32_output(files, tmp_path):
    exact = run(files, "ffhq_encode", tmp_path, out="exact.png").astype(np.float64)
    fast = run(files, "ffhq_encode", tmp_path, "fast=true", out="fast.png").astype(np.float64)
    psnr = 10 * np.log10(255**2 / np.mean((fast - exact) ** 2))
    assert 30 < psnr < np.inf, psnr                          # bf16 ran, and stayed close


def test_resize_outputs_and_couple(files, tmp_path):
    pooled = run(files, "ffhq_encode", tmp_path, "resize_outputs=true", "couple=true")
    assert pooled.shape == (256, 2 * 256, 3)                # [input | output] at face_pool's 256 px (the releases')
    np.testing.assert_array_equal(pooled[:, 256:], reference(files, "ffhq_encode", aligned_face(files), resize=True))
    np.testing.assert_array_equal(pooled[:, :256], resize(center_crop(skimage.data.astronaut(), INPUT), 256))


def test_superres_degrades_the_face_by_factor(files, tmp_path):
    from facezoo.data.psp import degrade

    picture = run(files, "celebs_super_resolution", tmp_path, "factor=8", "couple=true")
    assert picture.shape == (OUTPUT, 3 * OUTPUT, 3)         # [aligned | degraded | output]
    low = degrade(aligned_face(files), 8)
    np.testing.assert_array_equal(picture[:, 2 * OUTPUT:], reference(files, "celebs_super_resolution", low))
    other = run(files, "celebs_super_resolution", tmp_path, "factor=2", out="x2.png")
    assert not np.array_equal(other, picture[:, 2 * OUTPUT:])


def test_sketch2face_reads_one_grey_channel(files, tmp_path):
    picture = run(files, "celebs_sketch_to_face", tmp_path, "couple=true", source="sketch")
    assert picture.shape == (OUTPUT, 2 * OUTPUT, 3)
    grey = np.asarray(Image.open(files["sketch"]).resize((INPUT, INPUT), Image.BILINEAR), np.float32)
    x = torch.from_numpy(grey / 255)[None, None]            # official sketches: [0, 1] (ToTensor, no Normalize)
    np.testing.assert_array_equal(picture[:, OUTPUT:], reference(files, "celebs_sketch_to_face", x))
    shown = picture[:, :OUTPUT]
    assert (shown[..., 0] == shown[..., 1]).all() and (shown[..., 1] == shown[..., 2]).all()     # shown in grey


def test_seg2face_one_hot_in_any_label_order(files, tmp_path):
    from facezoo.data.psp import one_hot_labels

    picture = run(files, "celebs_seg_to_face", tmp_path, "couple=true", source="mask")
    assert picture.shape == (OUTPUT, 2 * OUTPUT, 3)
    ids = np.asarray(Image.fromarray(files["ids"]).resize((INPUT, INPUT), Image.NEAREST), np.int64)
    x = one_hot_labels(torch.from_numpy(ids)[None], 19).float()
    np.testing.assert_array_equal(picture[:, OUTPUT:], reference(files, "celebs_seg_to_face", x))
    shown = {tuple(c) for c in picture[:, :OUTPUT].reshape(-1, 3)}                # the labels, coloured
    assert len(shown) >= 3 and shown <= {CELEBAMASK_HQ_COLORS[i] for i in (0, 1, 4, 5, 11, 13)}
    fpp = run(files, "celebs_seg_to_face", tmp_path, "couple=true", "label_order=face_parsing_pytorch",
              source="mask_fpp", out="fpp.png")
    np.testing.assert_array_equal(fpp, picture)             # the same map in face-parsing.PyTorch ids


def test_task_override(files, tmp_path):
    """task= replaces the release's: the encode release run as super-resolution sees the degraded face."""
    from facezoo.data.psp import degrade

    picture = run(files, "ffhq_encode", tmp_path, "task=superres", "factor=4")
    low = degrade(aligned_face(files), 4)
    np.testing.assert_array_equal(picture, reference(files, "ffhq_encode", low))


def test_facezoo_checkpoint_gives_task_and_size(files, tmp_path):
    """ckpt_path: the module's pSp, its task (sketch2face: the sketch read grey, in facezoo's [-1, 1]) and size."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from facezoo.nets.stylegan2 import save_rosinality

    torch.manual_seed(0)
    decoder = Generator(OUTPUT, STYLE_DIM, 2, channel_multiplier=1, narrow=1 / 32)
    save_rosinality(tmp_path / "g.pt", decoder, decoder.mean_latent(64)[0])
    cfg = compose("train", ["model=psp_sketch2face", "data.size=32", "model.width=0.0625", "model.irse50=false",
                            f"model.decoder={tmp_path / 'g.pt'}", "model.frozen.lpips_loss=null",
                            "model.frozen.identity_loss=null", "model.frozen.moco_loss=null",
                            f"paths.output_dir={tmp_path}", f"paths.work_dir={tmp_path}"])
    model = instantiate(cfg.model, _convert_="all").eval()
    torch.save({"facezoo_config": OmegaConf.to_container(cfg, resolve=True), "state_dict": model.state_dict()},
               tmp_path / "psp.ckpt")
    picture = infer(compose("infer", ["model=psp", f"ckpt_path={tmp_path / 'psp.ckpt'}", f"source={files['sketch']}",
                                      f"out={tmp_path / 'out.png'}"]))
    grey = np.asarray(Image.open(files["sketch"]).resize((32, 32), Image.BILINEAR), np.float32)
    with torch.no_grad():
        expected = model.psp(torch.from_numpy(grey / 127.5 - 1)[None, None], resize=False, randomize_noise=False)
    np.testing.assert_array_equal(picture, tensor_to_uint8(expected.clamp(-1, 1)))


# ---------------------------------------------------------------------------------------- multi-modal
def test_multimodal_outputs_mix_only_the_masked_styles(files, tmp_path):
    picture = run(files, "celebs_seg_to_face", tmp_path, "n_outputs=3", "latent_mask=4-7", "seed=3",
                  f"save_latents={tmp_path / 'w.npy'}", source="mask")
    tiles = np.split(picture, 3, axis=1)
    assert picture.shape == (OUTPUT, 3 * OUTPUT, 3)
    assert all(not np.array_equal(a, b) for i, a in enumerate(tiles) for b in tiles[i + 1:])
    w = np.load(tmp_path / "w.npy")
    assert w.shape == (3, N_STYLES, STYLE_DIM) and w.dtype == np.float32
    np.testing.assert_array_equal(w[:, :4], np.broadcast_to(w[:1, :4], (3, 4, STYLE_DIM)))   # kept: the encoding
    assert all(not np.allclose(w[i, 4:], w[j, 4:]) for i in range(3) for j in range(i + 1, 3))  # mixed: random
    single = run(files, "celebs_seg_to_face", tmp_path, f"save_latents={tmp_path / 'w1.npy'}", source="mask",
                 out="one.png")
    encoded = np.load(tmp_path / "w1.npy")                  # no latent_mask: the plain encoding, (1, n_styles, D)
    assert encoded.shape == (1, N_STYLES, STYLE_DIM) and single.shape == (OUTPUT, OUTPUT, 3)
    np.testing.assert_array_equal(w[:, :4], np.broadcast_to(encoded[:, :4], (3, 4, STYLE_DIM)))
    # mix_alpha blends the same random styles (same seed): alpha * random + (1 - alpha) * encoded
    run(files, "celebs_seg_to_face", tmp_path, "n_outputs=3", "latent_mask='4,5,6,7'", "seed=3", "mix_alpha=0.25",
        f"save_latents={tmp_path / 'w_alpha.npy'}", source="mask", out="alpha.png")
    w_alpha = np.load(tmp_path / "w_alpha.npy")
    np.testing.assert_array_equal(w_alpha[:, :4], w[:, :4])
    np.testing.assert_allclose(w_alpha[:, 4:], 0.25 * w[:, 4:] + 0.75 * encoded[:, 4:], rtol=1e-5, atol=1e-6)


def test_parse_latent_mask():
    assert parse_latent_mask("8-17", 18) == list(range(8, 18))
    assert parse_latent_mask("8,9,10", 18) == parse_latent_mask([8, 9, 10], 18) == [8, 9, 10]
    assert parse_latent_mask("0-2, 8", 18) == [0, 1, 2, 8] and parse_latent_mask(5, 18) == [5]
    assert parse_latent_mask(None, 18) is None
    for bad in ("8-18", "x", "5-3", "-1"):
        with pytest.raises(FacezooError):
            parse_latent_mask(bad, 18)


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("release, source, overrides, message", [
    ("celebs_seg_to_face", "mask", ["n_outputs=3"], "needs latent_mask"),
    ("celebs_seg_to_face", "mask", ["mix_alpha=0.5", "latent_mask=4-7", "n_outputs=0"], "positive integer"),
    ("celebs_seg_to_face", "mask", ["latent_mask=4-9"], "style 8 is out of range"),
    ("celebs_seg_to_face", "bad_ids", [], "outside label_order celebamask_hq"),
    ("celebs_seg_to_face", "face", [], "a colour picture, not a label map"),
    ("ffhq_encode", "face", ["task=seg2face"], "needs a model with 19 input channels"),
    ("ffhq_encode", "face", ["task=paint"], "task=paint"),
    ("ffhq_encode", "face", ["factor=0"], "factor=0"),
    ("ffhq_encode", "face", ["save_latents=w.pt"], ".npy"),
    ("ffhq_encode", "face", ["out={file}/out.png"], "is a file, not a folder"),
    ("ffhq_encode", "face", ["save_latents={file}/w.npy"], "is a file, not a folder"),
])
def test_bad_inputs_are_one_line_and_write_nothing(files, tmp_path, release, source, overrides, message):
    Image.fromarray(np.full((64, 64), 25, np.uint8)).save(tmp_path / "bad_ids.png")
    (tmp_path / "file").write_text("not a folder")
    sources = {**files, "bad_ids": tmp_path / "bad_ids.png"}
    overrides = [o.replace("{file}", str(tmp_path / "file")) for o in overrides]
    overrides = [f"save_latents={tmp_path / o.split('=', 1)[1]}" if o.startswith("save_latents=w") else o
                 for o in overrides]
    cfg = compose("infer", ["model=psp", f"weights={files[release]}", f"source={sources[source]}",
                            f"out={tmp_path / 'out.png'}", "align=center", f"save_latents={tmp_path / 'w.npy'}",
                            *overrides])
    with pytest.raises(FacezooError) as err:
        infer(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "w.npy").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_cli_bad_input_is_one_line_and_exit_2(files, tmp_path):
    """The command line itself (the options parse as above, in-process): a bad input exits 2 with one line."""
    bad = run_module("facezoo.infer", "model=psp", f"weights={files['ffhq_encode']}", f"source={files['face']}",
                     f"out={tmp_path / 'bad.png'}", "task=sketch2face", "n_outputs=2", "latent_mask=4-7",
                     check=False, timeout=300)
    errors = [line for line in bad.stderr.splitlines() if line.startswith("facezoo.infer: error:")]
    assert bad.returncode == 2 and len(errors) == 1 and "Traceback" not in bad.stderr, bad.stderr
    assert "task=sketch2face needs a model with 1 input channels" in errors[0]
    assert not (tmp_path / "bad.png").exists()


# ------------------------------------------------------------------------------------ shared alignment
def test_read_aligned(files):
    from facezoo.face.align import align_ffhq, read_aligned
    from facezoo.face.detect import DlibDetector

    photo = skimage.data.astronaut()
    np.testing.assert_array_equal(read_aligned(files["face"], 64, "center"), center_crop(photo, 64))
    face = DlibDetector().detect(photo)[0]
    np.testing.assert_array_equal(read_aligned(files["face"], 64, "ffhq", detector="dlib"),
                                  align_ffhq(photo, face.landmarks, 64))
    with pytest.raises(FacezooError, match="align='tight'"):
        read_aligned(files["face"], 64, "tight")
