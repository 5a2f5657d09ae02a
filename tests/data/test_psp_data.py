"""Tests of pSp's data (facezoo.data.psp): sketches, one-hot maps, degradation, the synthetic pairs per task, paired
folders and the two data configs (tiny sizes, a few samples each)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from facezoo.config import compose
from facezoo.data.datamodule import FaceDataModule
from facezoo.data.psp import (
    TASK_CHANNELS,
    TASKS,
    PairedFolders,
    PSPDataModule,
    SyntheticPSP,
    degrade,
    input_channels,
    one_hot_labels,
    read_label_map,
    sketch,
)
from facezoo.data.synthetic import Pose, SyntheticFaces
from facezoo.face.labels import CELEBAMASK_HQ, FACE_PARSING_PYTORCH
from facezoo.utils import FacezooError

SIZE = 32
KW = {"size": SIZE, "length": 12, "num_identities": 3}


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message, message
    return message


# ------------------------------------------------------------------------------------------------- tasks
def test_task_channels():
    assert TASKS == ("encode", "frontalize", "sketch2face", "seg2face", "superres")
    assert [input_channels(t) for t in TASKS] == [3, 3, 1, 19, 3] == list(TASK_CHANNELS.values())
    with pytest.raises(ValueError) as err:
        input_channels("toonify")
    assert "toonify" in one_line(err) and "sketch2face" in str(err.value)
    with pytest.raises(ValueError) as err:
        SyntheticPSP(task="inpaint", **KW)
    assert "encode, frontalize, sketch2face, seg2face, superres" in one_line(err)


@pytest.mark.parametrize("task", TASKS)
def test_synthetic_sample_per_task(task):
    ds = SyntheticPSP(task=task, **KW)
    assert ds.input_nc == TASK_CHANNELS[task]
    s = ds[1]
    assert s["image"].shape == (TASK_CHANNELS[task], SIZE, SIZE) and s["image"].dtype == torch.float32
    assert s["target"].shape == (3, SIZE, SIZE) and s["target"].dtype == torch.float32
    assert s["target"].min() >= -1 and s["target"].max() <= 1 and s["target"].std() > 0.1
    assert s["image"].min() >= -1 and s["image"].max() <= 1
    assert s["identity"].dtype == torch.int64 and int(s["identity"]) == 1
    assert s["mask"].shape == (SIZE, SIZE) and s["landmarks"].shape == (68, 2) and s["pose"].shape == (3,)
    if task == "encode":
        assert torch.equal(s["image"], s["target"])
    if task == "sketch2face":
        assert torch.equal(s["image"], sketch(s["target"]))
    if task == "seg2face":
        assert set(s["image"].unique().tolist()) == {0.0, 1.0}
        assert torch.equal(s["image"].argmax(0), s["mask"])
    if task == "superres":
        assert int(s["factor"]) in ds.factors
        assert torch.equal(s["image"], degrade(s["target"], int(s["factor"])))
    # every sample is a pure function of (seed, split, index): a second dataset gives the same tensors
    again = SyntheticPSP(task=task, **KW)[1]
    assert again.keys() == s.keys() and all(torch.equal(again[k], s[k]) for k in s)


def test_targets_are_the_plain_faces():
    """encode's (and every non-frontalize task's) target is SyntheticFaces' image: the decoder's training faces."""
    faces = SyntheticFaces(**KW)
    for task in ("encode", "superres"):
        ds = SyntheticPSP(task=task, **KW)
        for i in (0, 5):
            assert torch.equal(ds[i]["target"], faces[i]["image"])
    assert not torch.equal(SyntheticPSP(task="encode", **KW)[0]["target"],
                           SyntheticPSP(task="encode", split="val", **KW)[0]["target"])


def test_superres_factor_is_per_sample_and_deterministic():
    ds = SyntheticPSP(task="superres", size=64, length=64, num_identities=3)
    factors = [ds.factor(i) for i in range(64)]
    assert factors == [SyntheticPSP(task="superres", size=64, length=64, num_identities=3).factor(i)
                       for i in range(64)]
    assert set(factors) == {1, 2, 4, 8, 16, 32}
    assert [int(ds[i]["factor"]) for i in range(3)] == factors[:3]
    other_seed = SyntheticPSP(task="superres", size=64, length=64, num_identities=3, seed=1)
    assert [other_seed.factor(i) for i in range(64)] != factors
    with pytest.raises(ValueError) as err:
        SyntheticPSP(task="superres", size=16, length=4, num_identities=2)            # factor 32 > 16 px
    assert "32" in one_line(err)


def test_frontalize_target_is_the_same_face_frontal():
    ds = SyntheticPSP(task="frontalize", **KW)
    yaws = [ds.params(i).pose.yaw for i in range(12)]
    assert max(abs(y) for y in yaws) > 30 and max(abs(y) for y in yaws) <= 60     # the wider frontalize range
    i = int(np.argmax(np.abs(yaws)))
    s = ds[i]
    assert torch.equal(s["target_pose"], torch.zeros(3)) and abs(float(s["pose"][0])) > 30
    assert not torch.equal(s["image"], s["target"])
    assert (s["image"] - s["target"]).abs().mean() > 0.05
    p = ds.params(i)
    frontal = ds._render(p.replace(pose=Pose()), zoom=ds.zoom)                      # same face, same camera
    assert np.array_equal(((s["target"].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy(), frontal.image)
    assert torch.equal(s["target_mask"], torch.from_numpy(frontal.mask.astype(np.int64)))
    # the target is the plain-face framing: the frontal face's eyes sit where SyntheticFaces' frontal faces' do
    eyes = s["target_landmarks"][36:48].mean(0)
    assert abs(float(eyes[0]) - (SIZE - 1) / 2) < SIZE * 0.05


# ---------------------------------------------------------------------------------------------- sketch
def test_sketch_of_flat_image_is_white():
    assert torch.equal(sketch(torch.full((3, 16, 16), 0.3)), torch.ones(1, 16, 16))


def test_sketch_strokes_are_dark_for_both_edge_polarities():
    x = torch.full((3, 24, 24), -0.8)
    x[:, :, 8:16] = 0.8                                              # a bright stripe: edges up and down
    s = sketch(x)
    assert s.shape == (1, 24, 24)
    profile = s[0, 12]
    assert torch.equal(s[0], profile.expand(24, 24))                 # vertical edges only
    assert (profile[:5] == 1).all() and (profile[11:13] == 1).all() and (profile[19:] == 1).all()
    assert profile[7] < 0 and profile[8] < 0 and profile[15] < 0 and profile[16] < 0
    assert torch.equal(profile, profile.flip(0))                     # rising and falling edges alike (the inverse)


def test_sketch_of_a_rendered_face():
    s = SyntheticFaces(size=64, length=2, num_identities=2)[0]
    sk = sketch(s["image"])
    assert sk.shape == (1, 64, 64) and sk.min() >= -1 and sk.max() <= 1
    assert sk.mean() > 0.5                                           # white background
    mask = s["mask"]
    boundary = torch.zeros_like(mask, dtype=torch.bool)
    boundary[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    boundary[1:, :] |= mask[1:, :] != mask[:-1, :]
    assert sk[0][boundary].mean() < sk[0][~boundary].mean() - 0.3   # dark strokes on the part outlines
    # batched == unbatched, and a grey single channel gives the same sketch as its RGB copy
    batch = torch.stack([s["image"], s["image"].flip(-1)])
    assert torch.equal(sketch(batch)[0], sk)
    grey = torch.full((1, 20, 20), -1.0)
    grey[:, 5:15, 5:15] = 0.6
    assert torch.equal(sketch(grey), sketch(grey.expand(3, -1, -1)))
    with pytest.raises(ValueError) as err:
        sketch(torch.zeros(2, 8, 8))
    assert "channels" in one_line(err)


# ---------------------------------------------------------------------------------------------- one-hot
def test_one_hot_labels():
    mask = torch.randint(0, 19, (2, 9, 7))
    oh = one_hot_labels(mask)
    assert oh.shape == (2, 19, 9, 7) and oh.dtype == torch.float32
    assert torch.equal(oh.sum(1), torch.ones(2, 9, 7)) and torch.equal(oh.argmax(1), mask)
    assert torch.equal(one_hot_labels(mask[0].to(torch.uint8)), oh[0])
    assert one_hot_labels(torch.zeros(4, 4, dtype=torch.long), 3).shape == (3, 4, 4)
    for bad in (torch.tensor([[19]]), torch.tensor([[-1]])):
        with pytest.raises(ValueError) as err:
            one_hot_labels(bad)
        assert "[0, 19)" in one_line(err)
    with pytest.raises(ValueError) as err:
        one_hot_labels(torch.zeros(3, 3))
    assert "integer" in one_line(err)


# ---------------------------------------------------------------------------------------------- degrade
def test_degrade():
    face = SyntheticFaces(size=64, length=2, num_identities=2)[1]["image"]
    assert torch.equal(degrade(face, 1), face)
    errors = [(degrade(face, f) - face).abs().mean().item() for f in (2, 4, 8, 16)]
    assert 0 < errors[0] < errors[1] < errors[2] < errors[3], errors
    out = degrade(face, 8)
    assert out.shape == face.shape and out.min() >= -1 and out.max() <= 1
    # factor 8 keeps at most 8x8 samples: a one-pixel checkerboard (the highest frequency) vanishes
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None]) % 2 * 1.6 - 0.8
    assert degrade(checker.expand(3, -1, -1), 8).std() < 0.01 * checker.std()
    flat = torch.full((2, 3, 32, 32), 0.25)
    assert torch.allclose(degrade(flat, 4), flat, atol=1e-6)
    batch = torch.stack([face, face.flip(-1)])
    assert torch.allclose(degrade(batch, 4)[0], degrade(face, 4), atol=1e-6)
    assert torch.allclose(degrade(face, 4, upsample="bicubic"), degrade(face, 4), atol=0.2)
    for bad, word in ((0, "positive"), (2.5, "positive"), (128, "larger")):
        with pytest.raises(ValueError) as err:
            degrade(face, bad)
        assert word in one_line(err)


# ------------------------------------------------------------------------------------------ paired folders
def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, np.uint8)).save(path)
    return path


def rgb(value, size=64):
    return np.full((size, size, 3), value, np.uint8)


@pytest.fixture
def pairs(tmp_path):
    """Sources named unlike their targets, in nested folders: pairs go by sorted path order."""
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    for k, (s_name, t_name) in enumerate([("a/0_edges.png", "p.jpg"), ("a/1_edges.png", "q.png"),
                                          ("b/2_edges.png", "r/s.png")]):
        save(src / s_name, rgb((10 + 40 * k, 200, 30)))
        save(tgt / t_name, rgb(20 + 80 * k))
    return src, tgt


def test_paired_folders_pairs_by_sorted_order(pairs):
    src, tgt = pairs
    ds = PairedFolders(src, tgt, size=SIZE, val_fraction=0.0, test_fraction=0.0)
    assert len(ds) == 3 and ds.input_nc == 3
    for k, name in enumerate(["p.jpg", "q.png", "r/s.png"]):
        s = ds[k]
        assert s["name"] == name and s["source_name"].startswith(f"{'ab'[k // 2]}/{k}_")
        assert s["image"].shape == (3, SIZE, SIZE) and s["target"].shape == (3, SIZE, SIZE)
        assert torch.allclose(s["image"][:, 5, 5], torch.tensor([10 + 40 * k, 200, 30]) / 127.5 - 1, atol=1e-6)
        assert abs(float(s["target"][:, 5, 5].mean()) - ((20 + 80 * k) / 127.5 - 1)) < 0.02   # JPEG, q.png
    grey = PairedFolders(src, tgt, size=SIZE, source_channels=1, val_fraction=0.0, test_fraction=0.0)[1]["image"]
    expected = Image.fromarray(rgb((50, 200, 30), 2)).convert("L").getpixel((0, 0))         # official convert("L")
    assert grey.shape == (1, SIZE, SIZE) and torch.allclose(grey, torch.full_like(grey, expected / 127.5 - 1))


def test_paired_folders_resize_and_center_crop(tmp_path):
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    wide = np.zeros((64, 128, 3), np.uint8)
    wide[:, 32:96] = 255                                             # the central square is white
    save(src / "0.png", wide)
    save(tgt / "0.png", wide)
    s = PairedFolders(src, tgt, size=SIZE, val_fraction=0.0, test_fraction=0.0)[0]
    assert s["target"].shape == (3, SIZE, SIZE) and s["target"][:, 2:-2, 2:-2].min() > 0.95


def test_paired_folders_label_maps(tmp_path):
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    fp = FACE_PARSING_PYTORCH.index
    ids = np.zeros((64, 64), np.uint8)
    ids[:, 32:] = fp("hair")                                         # 17 in face-parsing.PyTorch, 13 in CelebAMask-HQ
    ids[20:40, 20:40] = fp("nose")
    save(src / "0.png", ids)                                         # mode L
    palette = Image.fromarray(ids).convert("P")                 # palette indices are the ids
    palette.save(src / "1.png")
    for k in range(2):
        save(tgt / f"{k}.png", rgb(100))
    ds = PairedFolders(src, tgt, size=SIZE, source_channels=19, label_order="face_parsing_pytorch",
                       val_fraction=0.0, test_fraction=0.0)
    assert ds.input_nc == 19
    for k in range(2):
        s = ds[k]
        assert s["image"].shape == (19, SIZE, SIZE) and torch.equal(s["image"].sum(0), torch.ones(SIZE, SIZE))
        assert torch.equal(s["image"].argmax(0), s["mask"]) and s["mask"].dtype == torch.int64
        c = CELEBAMASK_HQ.index
        assert set(s["mask"].unique().tolist()) == {c("background"), c("hair"), c("nose")}   # nearest: no new ids
        assert int(s["mask"][5, 28]) == c("hair") and int(s["mask"][15, 15]) == c("nose")
    assert np.array_equal(read_label_map(src / "0.png", "celebamask_hq"), ids)               # same scheme: as is


def test_paired_folders_superres_factors(pairs):
    src, tgt = pairs
    ds = PairedFolders(tgt, tgt, size=SIZE, factors=[4], val_fraction=0.0, test_fraction=0.0)
    s = ds[0]
    assert int(s["factor"]) == 4 and torch.equal(s["image"], degrade(s["target"], 4))
    many = PairedFolders(tgt, tgt, size=SIZE, factors=[1, 2, 4, 8], val_fraction=0.0, test_fraction=0.0)
    assert [many.factor(i) for i in range(3)] == [many[i]["factor"].item() for i in range(3)]


def test_paired_folders_splits_partition_the_pairs(tmp_path):
    src, tgt = tmp_path / "src", tmp_path / "tgt"
    for k in range(12):
        save(src / f"{k:02d}.png", rgb(k))
        save(tgt / f"{k:02d}.png", rgb(k))
    names = []
    for split in ("train", "val", "test"):
        ds = PairedFolders(src, tgt, split=split, size=SIZE, val_fraction=0.3, test_fraction=0.3)
        names += [ds[i]["name"] for i in range(len(ds))]
        assert all(ds[i]["name"] == ds[i]["source_name"] for i in range(len(ds)))
    assert sorted(names) == [f"{k:02d}.png" for k in range(12)]


def test_paired_folders_errors_name_the_folder_or_file(tmp_path, pairs):
    src, tgt = pairs
    with pytest.raises(FacezooError) as err:
        PairedFolders(tmp_path / "nowhere", tgt)
    assert "nowhere" in one_line(err) and "source_root" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacezooError) as err:
        PairedFolders(src, tmp_path / "empty")
    assert str(tmp_path / "empty") in one_line(err) and "no images" in str(err.value)
    save(tgt / "t.png", rgb(0))
    with pytest.raises(FacezooError) as err:
        PairedFolders(src, tgt)
    assert str(src) in one_line(err) and "3 source images" in str(err.value) and "4 targets" in str(err.value)
    (tgt / "t.png").unlink()
    (src / "b" / "2_edges.png").write_bytes(b"not a png")
    ds = PairedFolders(src, tgt, size=SIZE, val_fraction=0.0, test_fraction=0.0)
    with pytest.raises(FacezooError) as err:
        ds[2]
    assert "2_edges.png" in one_line(err)
    bad = np.zeros((64, 64), np.uint8)
    bad[0, 0] = 19                                                   # CelebAMask-HQ has ids 0..18
    save(src / "b" / "2_edges.png", bad)
    ds = PairedFolders(src, tgt, size=SIZE, source_channels=19, val_fraction=0.0, test_fraction=0.0)
    with pytest.raises(FacezooError) as err:
        ds[2]
    assert "2_edges.png" in one_line(err) and "celebamask_hq" in str(err.value)
    with pytest.raises(FacezooError) as err:                         # a colour picture is not a label map
        ds[0]
    assert "0_edges.png" in one_line(err) and "colour" in str(err.value)
    with pytest.raises(ValueError) as err:
        PairedFolders(src, tgt, source_channels=2)
    assert "source_channels" in one_line(err)
    with pytest.raises(ValueError) as err:
        PairedFolders(src, tgt, label_order="lapa")
    assert "lapa" in one_line(err)


# --------------------------------------------------------------------------------------------- configs
def first_batch(overrides):
    cfg = compose("train", overrides)
    dm = instantiate(cfg.data, _convert_="all")
    assert isinstance(dm, FaceDataModule) and isinstance(dm, PSPDataModule)
    return dm, next(iter(dm.train_dataloader()))


TINY_SYNTHETIC = [f"data.size={SIZE}", "data.batch_size=2", "data.num_workers=0", "data.splits.train.length=4",
                  "data.splits.train.num_identities=2", "data.splits.val.length=2", "data.splits.val.num_identities=2"]


@pytest.mark.parametrize(("overrides", "task"), [
    (["model=stylegan2", "data=synthetic_psp", "data.task=sketch2face"], "sketch2face"),
    (["model=psp_seg2face"], "seg2face"),                            # data.task follows model.task
    (["model=psp", "data.task=superres", "data.dataset.factors=[2,4]"], "superres"),
])
def test_synthetic_psp_config_yields_a_batch(overrides, task):
    dm, batch = first_batch([*overrides, *TINY_SYNTHETIC])
    assert dm.task == task and dm.input_nc == TASK_CHANNELS[task]
    assert batch["image"].shape == (2, TASK_CHANNELS[task], SIZE, SIZE)
    assert batch["target"].shape == (2, 3, SIZE, SIZE)


def test_paired_folders_config_yields_a_batch(pairs, tmp_path):
    src, tgt = pairs
    tiny = [f"data.size={SIZE}", "data.batch_size=2", "data.num_workers=0", "data.dataset.val_fraction=0",
            "data.dataset.test_fraction=0", f"data.source_root={src}", f"data.target_root={tgt}"]
    dm, batch = first_batch(["model=psp_sketch2face", "data=paired_folders", *tiny])   # source_channels from input_nc
    assert batch["image"].shape == (2, 1, SIZE, SIZE) and batch["target"].shape == (2, 3, SIZE, SIZE)
    assert len(batch["name"]) == 2
    dm, batch = first_batch(["model=stylegan2", "data=paired_folders", *tiny])
    assert dm.task == "encode" and batch["image"].shape == (2, 3, SIZE, SIZE)
    cfg = compose("train", ["model=psp_sketch2face", "data=paired_folders", *tiny, "data.dataset.source_channels=3"])
    with pytest.raises(ValueError) as err:
        instantiate(cfg.data, _convert_="all").dataset("train")
    assert "sketch2face" in one_line(err) and "source_channels" in str(err.value)
