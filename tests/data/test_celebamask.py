"""CelebAMask-HQ on files: the raw release written by `scripts/make_synthetic.py --format celebamask-hq`, and the
merged and aligned layouts built from it, read by facezoo.data.celebamask."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script, one_line_error
from PIL import Image

from facezoo.data import celebamask
from facezoo.data.celebamask import (
    ANNO_DIR,
    CACHE_DIR,
    IMAGE_DIR,
    MAPPING_FILE,
    PART_ORDER,
    CelebAMaskHQ,
    detect_layout,
    merge_parts,
    part_path,
    read_mapping,
    read_part,
    split_of,
)
from facezoo.data.synthetic import SyntheticFaces
from facezoo.face.labels import CELEBAMASK_HQ, FACE_PARSING_PYTORCH, convert_labels

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "make_synthetic.py"
SIZE = 64            # image side of the export
MASK = SIZE // 2     # part masks: half the image side, as the release's 512 for 1024
FACES = 12           # 6 identities x 2 faces: 4 per split


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The raw release written by the real command line (read-only for the tests: they cache elsewhere)."""
    out = tmp_path_factory.mktemp("exported") / "CelebAMask-HQ"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--format", "celebamask-hq", "--out", str(out),
                           "--identities", "6", "--fractions", "0.34", "0.33", "0.33", "--samples-per-identity", "2",
                           "--size", str(SIZE), "--seed", "0"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train: 4 images, val: 4 images, test: 4 images" in proc.stdout
    return out


@pytest.fixture()
def tree(exported, tmp_path) -> Path:
    """A private copy of the export that a test may damage or cache into."""
    return Path(shutil.copytree(exported, tmp_path / "CelebAMask-HQ"))


@functools.cache
def script_module():
    spec = importlib.util.spec_from_file_location("make_synthetic", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def face_of(original: int) -> tuple[str, int]:
    """(split, k) of the exported face with this original CelebA index (the exporter's numbering)."""
    split = split_of(original)
    start, step = script_module().CELEBAMASK_ORIGINAL_INDEX[split]
    return split, (original - start) * step


def truth(split: str, k: int, size: int) -> dict:
    """Face ``k`` of ``split`` as the exporter rendered it (MaskVAE's synthetic settings)."""
    return SyntheticFaces(split=split, size=size, length=4, num_identities=2, seed=0, yaw_range=(-25, 25),
                          makeup=0.0)[k]


@pytest.fixture(scope="module")
def truths(exported) -> dict[int, torch.Tensor]:
    """CelebA-HQ index → the rendered ``MASK``-side mask of that face."""
    mapping = read_mapping(exported / MAPPING_FILE)
    return {i: truth(*face_of(orig), MASK)["mask"] for i, orig in mapping.items()}


# --------------------------------------------------------------------------------------------------
# the export
# --------------------------------------------------------------------------------------------------


def test_export_writes_the_raw_release_layout(exported):
    assert sorted(p.name for p in (exported / IMAGE_DIR).iterdir()) == sorted(f"{i}.jpg" for i in range(FACES))
    with Image.open(exported / IMAGE_DIR / "0.jpg") as img:
        assert img.format == "JPEG" and img.size == (SIZE, SIZE)
    lines = (exported / MAPPING_FILE).read_text().splitlines()
    assert lines[0] == "idx orig_idx orig_file" and len(lines) == FACES + 1
    rows = [line.split() for line in lines[1:]]
    assert [int(r[0]) for r in rows] == list(range(FACES))
    assert all(r[2] == f"{int(r[1]) + 1:06d}.jpg" for r in rows)          # CelebA's files are numbered from 1
    originals = {int(r[1]) for r in rows}
    assert {162770, 162771, 182638} <= originals                          # the edges of the official ranges
    splits = [split_of(int(r[1])) for r in rows]
    assert sorted(splits) == sorted(["train", "val", "test"] * 4) and splits != sorted(splits)   # interleaved
    parts = sorted((exported / ANNO_DIR / "0").iterdir())
    assert {p.name.split("_", 1)[1][:-4] for p in parts} <= set(PART_ORDER)
    assert {p.name[:5] for p in parts} == {f"{i:05d}" for i in range(FACES)}
    for path in parts[:20]:
        arr = np.asarray(Image.open(path))
        assert arr.shape == (MASK, MASK) and set(np.unique(arr)) <= {0, 255}
    assert not list(exported.rglob("*.tmp")) and not list(exported.rglob(".*"))   # atomic writes left nothing


def test_exported_parts_overlap_as_annotations_do(exported, truths):
    """Every overlap is a part drawn under one painted after it: the skin under the features, each part 2 px
    under its later neighbours (hair under the neck, …)."""
    for i, mask in truths.items():
        parts = {p: read_part(part_path(exported / ANNO_DIR, i, p)) for p in PART_ORDER
                 if part_path(exported / ANNO_DIR, i, p).is_file()}
        covered = sum(on.astype(int) for on in parts.values())
        assert (covered > 1).sum() > 0.05 * MASK * MASK
        assert np.array_equal(parts["skin"] & (mask.numpy() == CELEBAMASK_HQ.index("nose")),
                              mask.numpy() == CELEBAMASK_HQ.index("nose"))  # the skin polygon covers the nose
        assert set(parts) == {CELEBAMASK_HQ.names[j] for j in mask.unique().tolist() if j}


# --------------------------------------------------------------------------------------------------
# raw: merging, caching, images
# --------------------------------------------------------------------------------------------------


def test_merge_parts_paints_in_the_official_order():
    assert [CELEBAMASK_HQ.index(p) for p in PART_ORDER] == list(range(1, 19))   # g_mask.py: id = position + 1
    skin, hair = np.array([[1, 1, 0, 0]]), np.array([[0, 255, 255, 0]])
    assert merge_parts({"hair": hair, "skin": skin}).tolist() == [[1, 13, 13, 0]]  # hair over skin, any dict order
    # the official order paints neck (17) after the necklace (16): a necklace drawn inside the neck disappears
    assert merge_parts({"neck_l": np.array([[0, 1]]), "neck": np.array([[1, 1]])}).tolist() == [[17, 17]]
    assert merge_parts({"neck_l": np.array([[0, 1]]), "neck": np.array([[1, 1]])},
                       order=("neck", "neck_l")).tolist() == [[17, 16]]           # ids by name in any order
    assert merge_parts({}).shape == (0, 0)
    with pytest.raises(ValueError, match="unknown CelebAMask-HQ parts"):
        merge_parts({"face": skin})
    with pytest.raises(ValueError, match="one shape"):
        merge_parts({"skin": skin, "hair": hair[:, :2]})


def test_read_part_uses_the_channel_opencv_calls_0(tmp_path):
    """g_mask.py: ``cv2.imread(f)[:, :, 0] != 0``, i.e. the blue channel of an RGB PNG."""
    arr = np.zeros((2, 2, 3), np.uint8)
    arr[0, 0, 0] = 255          # red only: off for OpenCV's channel 0
    arr[1, 1, 2] = 7            # blue: on
    Image.fromarray(arr).save(tmp_path / "rgb.png")
    assert read_part(tmp_path / "rgb.png").tolist() == [[False, False], [False, True]]
    Image.fromarray(np.array([[0, 3]], np.uint8)).save(tmp_path / "grey.png")
    assert read_part(tmp_path / "grey.png").tolist() == [[False, True]]


def test_raw_merge_gives_back_the_rendered_masks_only_in_the_official_order(exported, truths, tmp_path):
    """Every overlap of the export is a part drawn under a later part of g_mask.py's order, so the official merge
    equals the rendered mask on every pixel; painting the same files in face-parsing.PyTorch's order (hair after
    the neck) or in reverse (skin over the features) does not."""
    for split in ("train", "val", "test"):
        ds = CelebAMaskHQ(exported, split=split, size=MASK, cache_dir=tmp_path / "cache")
        assert ds.layout == "raw" and len(ds) == 4
        for j in range(len(ds)):
            sample = ds[j]
            i = int(sample["name"][:-4])
            assert sample["mask"].dtype == torch.int64 and torch.equal(sample["mask"], truths[i]), i
    other_orders = {"face_parsing_pytorch": FACE_PARSING_PYTORCH.names[1:], "reversed": PART_ORDER[::-1]}
    for name, order in other_orders.items():
        differs = 0
        for i, mask in truths.items():
            files = {p: part_path(exported / ANNO_DIR, i, p) for p in PART_ORDER}
            parts = {p: read_part(f) for p, f in files.items() if f.is_file()}
            differs += not np.array_equal(merge_parts(parts, order=order), mask.numpy())
        assert differs >= (FACES if name == "reversed" else 1), name


def test_images_are_the_rendered_faces_resized_with_their_masks(exported, truths, tmp_path):
    mapping = read_mapping(exported / MAPPING_FILE)
    full = CelebAMaskHQ(exported, split="train", size=SIZE, cache_dir=tmp_path / "cache")
    small = CelebAMaskHQ(exported, split="train", size=16, cache_dir=tmp_path / "cache")
    for j in range(len(full)):
        s, t = full[j], small[j]
        i = int(s["name"][:-4])
        rendered = truth(*face_of(mapping[i]), SIZE)["image"]
        assert s["image"].shape == (3, SIZE, SIZE) and s["image"].min() >= -1 and s["image"].max() <= 1
        assert (s["image"] - rendered).abs().mean() < 0.04                       # JPEG, quality 95
        assert s["mask"].shape == (SIZE, SIZE) and torch.equal(s["mask"][::2, ::2], truths[i])  # nearest 32 → 64
        assert t["image"].shape == (3, 16, 16) and t["mask"].shape == (16, 16)
        expected = Image.fromarray(truths[i].numpy().astype(np.uint8)).resize((16, 16), Image.Resampling.NEAREST)
        assert torch.equal(t["mask"], torch.from_numpy(np.asarray(expected).astype(np.int64)))   # no blended ids
        bilinear = torch.nn.functional.interpolate(s["image"][None], size=16, mode="bilinear", antialias=True)[0]
        assert (t["image"] - bilinear).abs().mean() < 0.02                       # antialiased, not sub-sampled


def test_merged_masks_are_cached_once_and_reused(tree, truths, monkeypatch):
    cache = tree / CACHE_DIR
    ds = CelebAMaskHQ(tree, split="train", size=MASK)
    assert not cache.exists()                                    # construction merges nothing
    first = ds[0]
    assert sorted(p.name for p in cache.iterdir()) == [first["name"].replace(".jpg", ".png")]   # lazily, one file
    assert ds.cache_masks() == 3 and ds.cache_masks() == 0
    assert sorted(p.name for p in cache.iterdir()) == sorted(f"{i}.png" for i in ds.indices)
    for i in ds.indices:
        with Image.open(cache / f"{i}.png") as img:
            assert img.mode == "L" and np.array_equal(np.asarray(img), truths[i].numpy())   # g_mask.py's output
    assert not list(cache.glob(".*"))

    def no_merging(*_):
        raise AssertionError("merged again")

    monkeypatch.setattr(celebamask, "merge_annotation", no_merging)
    again = CelebAMaskHQ(tree, split="train", size=MASK)
    assert all(torch.equal(again[j]["mask"], truths[i]) for j, i in enumerate(again.indices))
    with pytest.raises(AssertionError, match="merged again"):    # the val masks are not cached: they would merge
        CelebAMaskHQ(tree, split="val", size=MASK)[0]
    merged = CelebAMaskHQ(tree, split="train", size=MASK, layout="merged", mask_dir=CACHE_DIR)
    assert all(torch.equal(merged[j]["mask"], truths[i]) for j, i in enumerate(merged.indices))


# --------------------------------------------------------------------------------------------------
# merged and aligned layouts
# --------------------------------------------------------------------------------------------------


def test_merged_layout_converts_the_label_order(tree, truths):
    shutil.rmtree(tree / ANNO_DIR)
    folder = tree / "CelebAMask-HQ-label"
    folder.mkdir()
    for i, mask in truths.items():
        fp = convert_labels(mask.numpy(), "celebamask_hq", "face_parsing_pytorch").astype(np.uint8)
        Image.fromarray(fp).save(folder / f"{i}.png")
    assert detect_layout(tree) == "merged"
    for split in ("train", "val", "test"):
        ds = CelebAMaskHQ(tree, split=split, size=MASK, label_order="face_parsing_pytorch")
        assert ds.layout == "merged" and len(ds) == 4
        assert all(torch.equal(ds[j]["mask"], truths[i]) for j, i in enumerate(ds.indices))
    as_official = CelebAMaskHQ(tree, split="train", size=MASK)        # the same files read as CelebAMask-HQ ids
    assert not torch.equal(as_official[0]["mask"], truths[as_official.indices[0]])


def build_aligned(exported: Path, truths, out: Path) -> Path:
    """The MaskGAN demo's layout from the export: 12 training faces (inter masks = the next faces' masks) and 4 test
    faces whose label to render is another face's mask and whose labelref is their own."""
    def save(folder: str, name: str, mask: torch.Tensor) -> None:
        (out / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.numpy().astype(np.uint8)).save(out / folder / name)

    for n in range(FACES):
        (out / "train_img").mkdir(parents=True, exist_ok=True)
        shutil.copy(exported / IMAGE_DIR / f"{n}.jpg", out / "train_img" / f"{n}.jpg")
        save("train_label", f"{n}.png", truths[n])
        save("train_label_inter_1", f"{n}.png", truths[(n + 1) % FACES])
        save("train_label_inter_2", f"{n}.png", truths[(n + 2) % FACES])
    for n in range(4):
        (out / "test_img").mkdir(parents=True, exist_ok=True)
        shutil.copy(exported / IMAGE_DIR / f"{n}.jpg", out / "test_img" / f"{n}.jpg")
        save("test_labelref", f"{n}.png", truths[n])
        save("test_label", f"{n}.png", truths[n + 4])
    return out


def test_aligned_layout_pairs_the_folders_by_sorted_position(exported, truths, tmp_path):
    root = build_aligned(exported, truths, tmp_path / "aligned")
    assert detect_layout(root) == "aligned"
    train = CelebAMaskHQ(root, split="train", size=MASK)
    assert train.layout == "aligned" and len(train) == FACES
    assert [train.records[k]["image"].name for k in range(FACES)] == [f"{n}.jpg" for n in range(FACES)]  # 2 < 10
    sample = train[10]
    assert set(sample) == {"image", "mask", "inter_mask_1", "inter_mask_2", "name"} and sample["name"] == "10.jpg"
    assert torch.equal(sample["mask"], truths[10]) and torch.equal(sample["inter_mask_1"], truths[11])
    assert torch.equal(sample["inter_mask_2"], truths[0]) and sample["image"].shape == (3, MASK, MASK)
    reference = CelebAMaskHQ(exported, split="all", size=MASK, cache_dir=tmp_path / "cache")
    assert torch.equal(sample["image"], reference[10]["image"])
    test = CelebAMaskHQ(root, split="test", size=MASK)
    sample = test[3]
    assert set(sample) == {"image", "mask", "target_mask", "name"}               # labelref = mask of the image
    assert torch.equal(sample["mask"], truths[3]) and torch.equal(sample["target_mask"], truths[7])
    assert len(CelebAMaskHQ(root, split="val", phase="test", size=MASK)) == 4
    one_line_error(lambda: CelebAMaskHQ(root, split="val", size=MASK), str(root / "val_img"), "folder not found")


def test_aligned_layout_errors_are_one_line(exported, truths, tmp_path):
    root = build_aligned(exported, truths, tmp_path / "aligned")
    (root / "train_label_inter_2" / "11.png").unlink()
    one_line_error(lambda: CelebAMaskHQ(root, split="train"), str(root / "train_label_inter_2"),
                    "11 files but train_img/ has 12")
    shutil.rmtree(root / "train_label_inter_2")
    one_line_error(lambda: CelebAMaskHQ(root, split="train"), "train_label_inter_2", "both or neither")
    shutil.rmtree(root / "train_label_inter_1")
    (root / "train_label" / "5.png").rename(root / "train_label" / "x.png")
    one_line_error(lambda: CelebAMaskHQ(root, split="train"), str(root / "train_label" / "6.png"),
                    "train_img/'s is 5.jpg")
    Image.fromarray(np.full((4, 4), 19, np.uint8)).save(root / "test_label" / "0.png")
    one_line_error(lambda: CelebAMaskHQ(root, split="test")[0], str(root / "test_label" / "0.png"),
                    "label 19 is not a celebamask_hq id (0-18)")


# --------------------------------------------------------------------------------------------------
# splits and errors
# --------------------------------------------------------------------------------------------------


def test_split_by_the_original_celeba_index(tree):
    mapping = read_mapping(tree / MAPPING_FILE)
    seen = []
    for split in ("train", "val", "test"):
        ds = CelebAMaskHQ(tree, split=split, size=MASK)
        assert ds.indices == sorted(i for i, orig in mapping.items() if split_of(orig) == split)
        assert len(ds) == 4 and all(face_of(mapping[i])[0] == split for i in ds.indices)
        seen += ds.indices
    assert sorted(seen) == list(range(FACES))
    by_original = {orig: i for i, orig in mapping.items()}
    assert by_original[162770] in CelebAMaskHQ(tree, split="train").indices       # the last train index
    assert by_original[162771] in CelebAMaskHQ(tree, split="val").indices
    assert by_original[182638] in CelebAMaskHQ(tree, split="test").indices
    assert len(CelebAMaskHQ(tree, split="train", length=3)) == 3 and len(CelebAMaskHQ(tree, length=64)) == 4
    (tree / MAPPING_FILE).unlink()
    one_line_error(lambda: CelebAMaskHQ(tree, split="train"), str(tree / MAPPING_FILE), "mapping file not found",
                    "official train/val/test split")
    everything = CelebAMaskHQ(tree, split="all", size=MASK)
    assert everything.indices == list(range(FACES))


def test_bad_input_is_one_line_naming_the_file(tree, tmp_path):
    anno = tree / ANNO_DIR
    one_line_error(lambda: CelebAMaskHQ(tmp_path / "nowhere"), "nowhere", "root directory not found")
    (tmp_path / "empty").mkdir()
    one_line_error(lambda: CelebAMaskHQ(tmp_path / "empty"), "not a CelebAMask-HQ folder", ANNO_DIR)
    for kwargs, needle in (({"layout": "zip"}, "layout must be one of"), ({"size": 0}, "size must be"),
                           ({"label_order": "mt"}, "applies to the merged and aligned"),
                           ({"label_order": "ade20k"}, "label_order must be one of"),
                           ({"split": "dev"}, "split must be one of")):
        one_line_error(lambda kw=kwargs: CelebAMaskHQ(tree, **kw), needle, kind=ValueError)
    one_line_error(lambda: CelebAMaskHQ(tree, cache_dir=tree / MAPPING_FILE / "cache"), "cache_dir=",
                    "is a file, not a folder", "data.dataset.cache_dir=DIR")

    mapping = tree / MAPPING_FILE
    text = mapping.read_text()
    mapping.write_text(text + "12 abc 000000.jpg\n")
    one_line_error(lambda: CelebAMaskHQ(tree), f"{mapping} line 14", "expected 'idx orig_idx orig_file'")
    mapping.write_text(text)
    train = CelebAMaskHQ(tree, split="train", size=MASK)
    i, j = train.indices[0], train.indices[1]
    (tree / IMAGE_DIR / f"{j}.jpg").rename(tree / f"{j}.jpg")
    one_line_error(lambda: CelebAMaskHQ(tree), str(tree / IMAGE_DIR / f"{j}.jpg"), f"listed in {MAPPING_FILE}")
    (tree / f"{j}.jpg").rename(tree / IMAGE_DIR / f"{j}.jpg")
    (anno / "0").rename(anno / "7")
    one_line_error(lambda: CelebAMaskHQ(tree), str(anno / "0"), "part-mask folder of images 0-1999 not found")
    (anno / "7").rename(anno / "0")

    skin = part_path(anno, i, "skin")
    Image.fromarray(np.zeros((MASK // 2, MASK // 2), np.uint8)).save(part_path(anno, i, "hair"))
    one_line_error(lambda: train[0], str(part_path(anno, i, "hair")), f"is {MASK // 2}x{MASK // 2}",
                    f"{skin.name} is {MASK}x{MASK}")
    part_path(anno, i, "hair").write_bytes(b"\x89PNG garbage")
    one_line_error(lambda: train[0], str(part_path(anno, i, "hair")), "unreadable or truncated part mask")
    for part in PART_ORDER:
        if part_path(anno, i, part).is_file():
            Image.fromarray(np.zeros((MASK, MASK // 2), np.uint8)).save(part_path(anno, i, part))
    one_line_error(lambda: train[0], str(tree / IMAGE_DIR / f"{i}.jpg"), "another aspect ratio")
    (tree / IMAGE_DIR / f"{j}.jpg").write_bytes(b"\xff\xd8 truncated")
    one_line_error(lambda: train[1], str(tree / IMAGE_DIR / f"{j}.jpg"), "unreadable or truncated image")
    assert not (tree / CACHE_DIR / f"{i}.png").exists()                          # nothing cached from bad input

    (tree / "labels").mkdir()
    one_line_error(lambda: CelebAMaskHQ(tree, mask_dir="labels"), str(tree / "labels" / f"{i}.png"),
                    f"label map of {i}.jpg not found", "(and 3 more)")


# --------------------------------------------------------------------------------------------------
# the Hydra config, with both MaskGAN stages
# --------------------------------------------------------------------------------------------------


def test_the_hydra_config_feeds_maskvae_and_maskgan(exported, tmp_path):
    from facezoo.config import build_model, compose
    from facezoo.data.datamodule import FaceDataModule
    from facezoo.methods.maskgan import networks
    from facezoo.methods.maskgan.official import to_official_state_dict

    data = ["data=celebamask_hq", f"data.root={exported}", f"data.size={MASK}", "data.batch_size=2",
            "data.num_workers=0", f"data.dataset.cache_dir={tmp_path / 'cache'}", "paths.work_dir=.",
            f"paths.output_dir={tmp_path}"]
    torch.manual_seed(0)
    vae_arch = {"ngf": 4, "ndf": 4, "latent_dim": 16}
    vae_file = tmp_path / "vae.pth"
    torch.save(to_official_state_dict(networks.MaskVAE(resolution=MASK, **vae_arch)), vae_file)
    stage2 = [f"model.frozen.mask_vae.build.path={vae_file}", "model.frozen.perceptual_loss=null",
              *(f"model.frozen.mask_vae.build.{k}={v}" for k, v in vae_arch.items())]
    for model_name, extra in (("maskvae", []), ("maskgan", stage2)):
        from hydra.utils import instantiate

        cfg = compose("train", [f"model={model_name}", *data, *extra])
        assert cfg.model.image_size == MASK and cfg.data.dataset._target_ == "facezoo.data.celebamask.CelebAMaskHQ"
        dm = instantiate(cfg.data, _convert_="all")
        assert isinstance(dm, FaceDataModule) and [len(dm.dataset(s)) for s in ("train", "val", "test")] == [4, 4, 4]
        batch = next(iter(dm.train_dataloader()))
        assert batch["image"].shape == (2, 3, MASK, MASK) and batch["mask"].shape == (2, MASK, MASK)
        model = build_model(f"model={model_name}", *data, "model.width=0.125", *extra)
        if model_name == "maskvae":
            terms = model.vae_terms(batch)
        else:
            terms = model.g_terms(model.prepare_batch(batch))
        assert terms and all(torch.isfinite(v) for v in terms.values()), model_name

    aligned = build_aligned(exported, {i: torch.zeros(MASK, MASK, dtype=torch.int64) for i in range(FACES)},
                            tmp_path / "aligned")
    cfg = compose("train", ["model=maskgan", *data[:1], f"data.root={aligned}", *data[2:],
                            "data.splits.val.phase=test"])
    dm = instantiate(cfg.data, _convert_="all")
    assert dm.dataset("train").layout == "aligned" and len(dm.dataset("val")) == 4
    assert "target_mask" in dm.dataset("val")[0]


def test_inter_masks_written_once_in_the_demo_layout_feed_stage_2(exported, truths, tmp_path, monkeypatch, capsys):
    """scripts/make_inter_masks.py writes train_label_inter_1/2 with stage 2's own recipe; the loader reads them and
    MaskGAN's step uses them instead of calling its MaskVAE."""
    from facezoo.config import build_model
    from facezoo.methods.maskgan import module as maskgan_module
    from facezoo.methods.maskgan import networks
    from facezoo.methods.maskgan.official import to_official_state_dict

    root = build_aligned(exported, truths, tmp_path / "aligned")
    for k in (1, 2):
        shutil.rmtree(root / f"train_label_inter_{k}")
    torch.manual_seed(0)
    vae_file = tmp_path / "vae.pth"                                      # the demo's VAE(19, 32, 32, 1024) format
    torch.save(to_official_state_dict(networks.MaskVAE(resolution=MASK)), vae_file)
    script = load_script("make_inter_masks.py")
    assert script.main(["--vae", str(vae_file), "--root", str(root), "--batch-size", "5"]) == 0
    assert "wrote 12 masks" in capsys.readouterr().out
    train = CelebAMaskHQ(root, split="train", size=MASK)
    vae = maskgan_module.load_mask_vae(vae_file, MASK)
    for n in (0, 7):                                              # the reference is the previous file's mask
        expected = maskgan_module.interpolate_masks(vae, truths[n][None], truths[(n - 1) % FACES][None], (-0.4, 0.4))
        sample = train[n]
        assert torch.equal(sample["inter_mask_1"], expected[0][0]) and torch.equal(sample["inter_mask_2"],
                                                                                     expected[1][0])
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--vae", str(vae_file), "--root", str(tmp_path / "nothing")])
    assert exit_info.value.code == 2 and "train_label: no such folder" in capsys.readouterr().err

    model = build_model("model=maskgan", f"data.size={MASK}", "model.width=0.125", "model.frozen.perceptual_loss=null",
                        f"model.frozen.mask_vae.build.path={vae_file}")
    monkeypatch.setattr(maskgan_module, "ebst_masks", lambda *a, **k: pytest.fail("the VAE was called"))
    batch = {key: torch.stack([train[n][key] for n in (0, 7)]) for key in ("image", "mask", "inter_mask_1",
                                                                          "inter_mask_2")}
    step = model.prepare_batch(batch)
    assert torch.equal(step["inter"][0], batch["inter_mask_1"]) and torch.equal(step["inter"][1], batch["inter_mask_2"])
