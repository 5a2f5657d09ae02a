#!/usr/bin/env python
"""Write facezoo's built-in synthetic faces in a real dataset's on-disk format.

The real loaders (``facezoo.data.<format>``) are then tested, and a whole training run can be tried, on
real files without the licensed dataset::

    python scripts/make_synthetic.py --format multipie --out data/mp_synthetic --identities 20 --size 128
    python -m facezoo.train model=tpgan data=multipie data.root=data/mp_synthetic data.num_classes=20

Formats (``--format``, the :data:`EXPORTERS` registry; add one function per new format):

* ``multipie`` — TP-GAN's Multi-PIE crops (layout in :mod:`facezoo.data.multipie`, docs/data/multipie.md):
  every identity seen by the 13 Multi-PIE cameras (yaw −90…90 in 15° steps, pitch 0) for each session,
  recording (recording 1 neutral, the others an expression) and illumination, rendered by
  :func:`facezoo.data.synthetic.render` and cropped exactly as Multi-PIE is prepared
  (:func:`facezoo.face.align.align_multipie` of the face's landmarks), with the ``.5pt`` file of the crop
  and the split lists. ``--split all`` (default) divides the identities into train/val/test subjects
  (``--fractions``, disjoint, numbered from ``--first-subject``); ``--split train|val|test`` writes that one
  list. Identities of list ``s`` are identities ``0, 1, …`` of
  ``SyntheticFrontalization(split=s, seed=seed)``.

* ``mt`` — PSGAN's MT makeup layout (:mod:`facezoo.data.mt`): ``images/``, ``segs/`` (MT 14-label maps,
  converted from CelebAMask-HQ with :func:`facezoo.face.labels.convert_labels`) and ``landmarks/`` (pickled
  ``(68, 2)`` arrays in (y, x) order, ``.png`` names) for ``makeup/`` and ``non-makeup/``, plus the lists.
  Sample ``i`` of ``SyntheticMakeup(split=s, seed=seed)`` gives the non-makeup image ``<s>_<i>.png`` (its
  source) and the makeup image ``<s>_<i>.png`` (its reference, another identity). The train identities are
  listed in ``makeup.txt`` / ``non-makeup.txt`` (what PSGAN trains on); ``--split all`` also writes the
  held-out identities' lists ``makeup_val.txt`` … ``non-makeup_test.txt``. ``--identities`` is divided as for
  multipie (each list needs at least 2 identities); ``--samples-per-identity`` pairs per identity.

* ``300vw`` — GANnotation's 300VW layout (:mod:`facezoo.data.video300w`): one video ``<NNN>/`` per identity
  (numbered from ``--first-subject``) of ``--frames`` frames in which pose and expression vary smoothly,
  ``frames/000001.jpg …`` (JPEG: lossy), ``pts.pt`` (the per-frame ``(68, 2)`` points) and, with
  ``--pts-files``, ``annot/*.pts``; the lists ``train.txt``/``val.txt``/``test.txt`` name the videos
  (identities divided as for multipie).

* ``celebamask-hq`` — the CelebAMask-HQ release as downloaded, the ``raw`` layout of :mod:`facezoo.data.celebamask`:
  ``CelebA-HQ-img/{i}.jpg`` (JPEG, ``--size``), the per-part binary masks
  ``CelebAMask-HQ-mask-anno/{i // 2000}/{i:05d}_{part}.png`` (0/255, ``--mask-size``, default half of ``--size``
  as the release's 1024/512) and ``CelebA-HQ-to-CelebA-mapping.txt``. Face ``k`` of split ``s`` is
  ``SyntheticFaces(split=s, seed=seed)[k]`` with MaskVAE's settings (``conf/data/synthetic_masks.yaml``: yaw within
  ±25°, no makeup), ``--samples-per-identity`` faces per identity, identities divided as for multipie. The
  CelebA-HQ indices ``i`` interleave the splits (a seeded shuffle); the mapping gives face ``k`` the original
  CelebA index 162770 − k (train), 162771 + k (val) or 182638 + k (test), at the edges of the official ranges.
  The parts are drawn as the release's annotators draw them (:func:`annotation_parts`): they overlap, and only
  ``g_mask.py``'s merge order gives back the rendered mask exactly.

Every file is a pure function of the arguments and is written atomically (temporary name + rename); the
lists are written last, so a list never names a missing file.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from facezoo.data import celebamask
from facezoo.data.mt import format_mt_landmarks
from facezoo.data.multipie import (
    CAMERA_YAW,
    FIVE_POINT_DIR,
    IMAGE_DIR,
    MultiPIEName,
    format_five_points,
    parse_name,
)
from facezoo.data.synthetic import (
    SPLITS,
    Background,
    Expression,
    FaceParams,
    Identity,
    Lighting,
    Makeup,
    Pose,
    SyntheticFaces,
    SyntheticMakeup,
    identity_params,
    render,
    sample_background,
    sample_expression,
    sample_lighting,
    sample_makeup,
    sample_rng,
)
from facezoo.data.video300w import ANNOT_DIR, FRAME_DIR, POINTS_FILE, format_pts
from facezoo.face.align import align_multipie
from facezoo.face.labels import CELEBAMASK_HQ, convert_labels, landmarks_68_to_5
from facezoo.face.photo import tensor_to_uint8
from facezoo.utils import FacezooError, atomic_write_text

#: View id of the Multi-PIE export in :func:`facezoo.data.synthetic.sample_rng` (the views use 1-5).
MULTIPIE_VIEW_ID = 16
#: Multi-PIE's 20 illumination codes 00-19, modelled as a light sweeping from the image left to the right.
ILLUMINATION_AZIMUTH: tuple[float, ...] = tuple(float(a) for a in np.linspace(-60.0, 60.0, 20))
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


# ------------------------------------------------------------------------------------ file helpers
def atomic_save_png(path: Path, image: np.ndarray) -> None:
    """Save an ``(H, W, 3)`` (RGB) or ``(H, W)`` (8-bit grey / label map) uint8 array as PNG, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def split_counts(n: int, fractions: Sequence[float]) -> dict[str, int]:
    """Subjects per split for ``n`` identities: val and test ``round(n·f)`` but at least 1, train the rest.

    Example:
        >>> split_counts(20, (0.7, 0.15, 0.15))
        {'train': 14, 'val': 3, 'test': 3}
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise FacezooError(f"--fractions needs three non-negative numbers (train val test) summing to 1, "
                           f"got {list(fractions)}")
    if n < 3:
        raise FacezooError(f"--split all needs at least 3 identities (one per split), got --identities {n}")
    val = max(1, round(n * fractions[1]))
    test = max(1, round(n * fractions[2]))
    if n - val - test < 1:
        raise FacezooError(f"--fractions {list(fractions)} leave no training subject out of {n} identities")
    return {"train": n - val - test, "val": val, "test": test}


def identities_per_split(n: int, split: str, fractions: Sequence[float]) -> dict[str, int]:
    """Identities per written split: :func:`split_counts` for ``split="all"``, else all ``n`` in that one split."""
    if split == "all":
        return split_counts(n, fractions)
    if split in SPLIT_NAMES:
        return {split: n}
    raise FacezooError(f"--split must be all, train, val or test, got {split!r}")


def illumination_codes(count: int) -> list[int]:
    """``count`` Multi-PIE illumination codes spread over 00-19 (07, the frontal flash, if ``count == 1``)."""
    if not 1 <= count <= 20:
        raise FacezooError(f"--illuminations must be in 1..20 (Multi-PIE has 20 flashes), got {count}")
    if count == 1:
        return [7]
    return sorted({int(round(v)) for v in np.linspace(0, 19, count)})


# ------------------------------------------------------------------------------------- multipie
def multipie_view(identity: Identity, yaw: float, expression: Expression, lighting: Lighting,
                  background: Background, size: int, supersample: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """One Multi-PIE crop of a synthetic face and its 5 points.

    The face is rendered at twice ``size`` with half the zoom (a wider "camera" shot, face at the crop's
    scale) and then cropped by :func:`~facezoo.face.align.align_multipie`, as real Multi-PIE is prepared.

    Returns:
        ``(size, size, 3)`` uint8 crop and its ``(5, 2)`` float32 five points (x, y pixels).
    """
    params = FaceParams(identity, expression, Pose(float(yaw), 0.0, 0.0), lighting, Makeup.none(), background)
    shot = render(params, size=2 * size, supersample=supersample, zoom=0.5)
    crop, landmarks, _, _ = align_multipie(shot.image, shot.landmarks, size)
    return crop, landmarks_68_to_5(landmarks).astype(np.float32)


def _existing_subjects(out: Path, skip: str) -> dict[str, set[str]]:
    found = {}
    for split in SPLIT_NAMES:
        path = out / f"{split}.csv"
        if split != skip and path.is_file():
            names = [ln.split(",")[0] for ln in path.read_text().splitlines() if ln.strip()]
            found[split] = {parse_name(n, where=str(path)).subject for n in names}
    return found


def export_multipie(out: str | Path, identities: int = 20, size: int = 128, seed: int = 0, split: str = "all",
                    sessions: int = 1, recordings: int = 1, illuminations: int = 2,
                    fractions: Sequence[float] = (0.7, 0.15, 0.15), first_subject: int = 1,
                    supersample: int = 2) -> dict[str, list[str]]:
    """Write synthetic faces as a Multi-PIE tree (``out/images``, ``out/5pt``, ``out/<split>.csv``).

    Args:
        out: output root.
        identities: number of subjects written.
        size: crop side (128 = Multi-PIE's).
        seed: the synthetic data seed.
        split: ``"all"`` (divide the subjects by ``fractions``) or one of train/val/test (one list).
        sessions, recordings, illuminations: Multi-PIE fields written per subject (recording 1 is neutral,
            recording r > 1 an expression; a session changes the background and clothes).
        fractions: train/val/test shares of the subjects for ``split="all"``.
        first_subject: number of the first subject (``SSS``); subjects are numbered contiguously.
        supersample: the renderer's anti-aliasing factor.

    Returns:
        ``{split: [image file names of its list]}``.
    """
    out = Path(out)
    if identities < 1 or size < 8 or sessions < 1 or recordings < 1 or first_subject < 1:
        raise FacezooError(f"need identities >= 1, size >= 8, sessions/recordings >= 1, first subject >= 1; "
                           f"got {identities}, {size}, {sessions}/{recordings}, {first_subject}")
    if sessions > 99 or recordings > 99 or first_subject + identities - 1 > 999:
        raise FacezooError("Multi-PIE names hold at most 99 sessions/recordings and subjects up to 999")
    codes = illumination_codes(illuminations)
    counts = identities_per_split(identities, split, fractions)

    subject = first_subject
    plan: list[tuple[str, int, int]] = []            # (list, identity id within the synthetic split, subject)
    for name in SPLIT_NAMES:
        for local in range(counts.get(name, 0)):
            plan.append((name, local, subject))
            subject += 1
    if split != "all":
        mine = {f"{s:03d}" for _, _, s in plan}
        for other, subjects in _existing_subjects(out, split).items():
            if mine & subjects:
                taken = sorted(mine & subjects)[:5]
                raise FacezooError(f"{out / (other + '.csv')}: subjects {taken} are already "
                                   f"used; pass --first-subject {max(int(s) for s in subjects) + 1}")

    lists: dict[str, list[str]] = {name: [] for name in counts}
    for list_name, local, subj in plan:
        identity = identity_params(seed, list_name, local)
        for session in range(1, sessions + 1):
            rng = sample_rng(seed, SPLITS[list_name], MULTIPIE_VIEW_ID, local, session)
            background = sample_background(rng)
            expressions = [Expression()]
            expressions += [sample_expression(rng, neutral=0.0) for _ in range(recordings - 1)]
            for recording, expression in enumerate(expressions, start=1):
                for yaw in sorted(CAMERA_YAW.values(), reverse=True):
                    for k, code in enumerate(codes):
                        name = MultiPIEName.make(subj, session, recording, yaw, code)
                        crop, five = multipie_view(identity, yaw, expression,
                                                   Lighting(azimuth=ILLUMINATION_AZIMUTH[code]), background,
                                                   size, supersample)
                        atomic_save_png(out / IMAGE_DIR / name.image_name, crop)
                        if k == 0:  # the points do not depend on the light
                            atomic_write_text(out / FIVE_POINT_DIR / name.five_point_name,
                                              format_five_points(five))
                        lists[list_name].append(name.image_name)
    for list_name, names in lists.items():
        atomic_write_text(out / f"{list_name}.csv", "".join(n + "\n" for n in sorted(names)))
    return lists


# ------------------------------------------------------------------------------------------- mt
#: List files of each split in the MT export: train keeps the official names (what PSGAN trains on).
MT_LISTS: dict[str, dict[str, str]] = {
    "train": {"makeup": "makeup.txt", "non-makeup": "non-makeup.txt"},
    "val": {"makeup": "makeup_val.txt", "non-makeup": "non-makeup_val.txt"},
    "test": {"makeup": "makeup_test.txt", "non-makeup": "non-makeup_test.txt"},
}


def export_mt(out: str | Path, identities: int = 20, size: int = 128, seed: int = 0, split: str = "all",
              samples_per_identity: int = 2, fractions: Sequence[float] = (0.7, 0.15, 0.15),
              supersample: int = 2) -> dict[str, list[str]]:
    """Write synthetic makeup sources and references as an MT tree (layout in :mod:`facezoo.data.mt`).

    Args:
        out: output root.
        identities: identities written, divided into train/val/test by ``fractions`` with ``split="all"``.
        size: image side (MT's images are 361², PSGAN trains at 256²).
        seed: the synthetic data seed (``SyntheticMakeup(seed=seed)``).
        split: ``"all"`` or one of train/val/test (only that split's lists).
        samples_per_identity: source/reference pairs per identity (``SyntheticMakeup`` samples per split =
            identities × this).
        fractions: train/val/test shares of the identities for ``split="all"``.
        supersample: the renderer's anti-aliasing factor.

    Returns:
        ``{list file name: [entries]}``, e.g. ``{"makeup.txt": ["makeup/train_00000.png", …], …}``.
    """
    out = Path(out)
    if identities < 2 or size < 8 or samples_per_identity < 1:
        raise FacezooError(f"need identities >= 2, size >= 8, samples per identity >= 1; got {identities}, "
                           f"{size}, {samples_per_identity}")
    counts = identities_per_split(identities, split, fractions)
    small = {k: v for k, v in counts.items() if v < 2}
    if small:
        raise FacezooError(f"each MT list needs >= 2 identities (the reference is another identity); "
                           f"got {small} from --identities {identities}; pass more identities")

    lists: dict[str, list[str]] = {}
    for split_name, n_ids in counts.items():
        view = SyntheticMakeup(split=split_name, size=size, length=n_ids * samples_per_identity,
                               num_identities=n_ids, seed=seed, supersample=supersample)
        entries: dict[str, list[str]] = {"makeup": [], "non-makeup": []}
        for index in range(len(view)):
            sample = view[index]
            name = f"{split_name}_{index:05d}.png"
            for domain, key, prefix in (("non-makeup", "image", ""), ("makeup", "reference", "reference_")):
                mask = convert_labels(sample[f"{prefix}mask"].numpy(), "celebamask_hq", "mt").astype(np.uint8)
                atomic_save_png(out / "images" / domain / name, tensor_to_uint8(sample[key]))
                atomic_save_png(out / "segs" / domain / name, mask)
                atomic_write_bytes(out / "landmarks" / domain / name,
                                   format_mt_landmarks(sample[f"{prefix}landmarks"].numpy()))
                entries[domain].append(f"{domain}/{name}")
        for domain, names in entries.items():
            lists[MT_LISTS[split_name][domain]] = names
    for list_name, names in lists.items():
        atomic_write_text(out / list_name, "".join(n + "\n" for n in names))
    return lists


# ---------------------------------------------------------------------------------------- 300vw
#: View id of the 300VW export in :func:`facezoo.data.synthetic.sample_rng` (multipie uses 16).
VIDEO_VIEW_ID = 17


def video_params(identity: Identity, rng: np.random.Generator, frames: int) -> list[FaceParams]:
    """The per-frame parameters of one synthetic video: pose and expression vary smoothly.

    Yaw, pitch and roll follow sines (amplitudes up to 45°/10°/8°, 0.5-2 cycles per video, random phases);
    smile, mouth opening and brow raise follow rectified sines; light, makeup and background stay.

    Returns:
        ``frames`` :class:`~facezoo.data.synthetic.FaceParams`.
    """
    background, lighting = sample_background(rng), sample_lighting(rng)
    makeup = sample_makeup(rng) if rng.uniform() < 0.2 else Makeup.none()
    amp = rng.uniform([25.0, 3.0, 2.0, 0.5, 0.3, 0.3], [45.0, 10.0, 8.0, 1.0, 1.0, 0.8])
    cycles = rng.uniform(0.5, 2.0, 6)
    phase = rng.uniform(0.0, 2 * np.pi, 6)
    t = np.arange(frames)[:, None] / max(frames - 1, 1)
    wave = np.sin(2 * np.pi * cycles * t + phase)                              # (frames, 6) in [-1, 1]
    out = []
    for w in wave:
        pose = Pose(float(amp[0] * w[0]), float(amp[1] * w[1]), float(amp[2] * w[2]))
        smile, mouth, brow = (float(round(max(0.0, a * v), 3)) for a, v in zip(amp[3:], w[3:]))
        out.append(FaceParams(identity, Expression(smile, mouth, brow, 0.0), pose, lighting, makeup, background))
    return out


def export_300vw(out: str | Path, identities: int = 20, size: int = 128, seed: int = 0, split: str = "all",
                 frames: int = 240, fractions: Sequence[float] = (0.7, 0.15, 0.15), first_subject: int = 1,
                 supersample: int = 2, pts_files: bool = False, jpeg_quality: int = 95,
                 zoom: float = 0.6) -> dict[str, list[str]]:
    """Write synthetic face videos as a 300VW-style tree (layout in :mod:`facezoo.data.video300w`).

    Each identity is one video ``out/<NNN>/`` of ``frames`` frames (:func:`video_params`, rendered by
    :func:`~facezoo.data.synthetic.render` at ``size × size`` with the face-following camera at ``zoom``):
    ``frames/000001.jpg …`` (JPEG, lossy, ``jpeg_quality``), ``pts.pt`` (``torch.save`` d list of ``(68, 2)``
    float32 tensors, the official format) and, with ``pts_files``, ``annot/000001.pts …`` (300-W text).
    Identities of list ``s`` are identities ``0, 1, …`` of the synthetic split ``s``; the lists
    ``<s>.txt`` name the video ids and are written last.

    Returns:
        ``{split: [video ids]}``.
    """
    import io

    import torch

    out = Path(out)
    if identities < 1 or size < 8 or frames < 1 or first_subject < 1 or not 1 <= jpeg_quality <= 100:
        raise FacezooError(f"need identities >= 1, size >= 8, frames >= 1, first subject >= 1, jpeg quality "
                           f"1..100; got {identities}, {size}, {frames}, {first_subject}, {jpeg_quality}")
    counts = identities_per_split(identities, split, fractions)
    lists: dict[str, list[str]] = {name: [] for name in counts}
    number = first_subject
    for list_name in SPLIT_NAMES:
        for local in range(counts.get(list_name, 0)):
            video = f"{number:03d}"
            number += 1
            rng = sample_rng(seed, SPLITS[list_name], VIDEO_VIEW_ID, local, 0)
            points = []
            for t, params in enumerate(video_params(identity_params(seed, list_name, local), rng, frames)):
                shot = render(params, size=size, supersample=supersample, zoom=zoom)
                buf = io.BytesIO()
                Image.fromarray(shot.image).save(buf, format="JPEG", quality=jpeg_quality)
                atomic_write_bytes(out / video / FRAME_DIR / f"{t + 1:06d}.jpg", buf.getvalue())
                if pts_files:
                    atomic_write_text(out / video / ANNOT_DIR / f"{t + 1:06d}.pts", format_pts(shot.landmarks))
                points.append(torch.from_numpy(shot.landmarks.astype(np.float32)))
            buf = io.BytesIO()
            torch.save(points, buf)
            atomic_write_bytes(out / video / POINTS_FILE, buf.getvalue())
            lists[list_name].append(video)
    for list_name, videos in lists.items():
        atomic_write_text(out / f"{list_name}.txt", "".join(v + "\n" for v in videos))
    return lists


# ------------------------------------------------------------------------------------ celebamask-hq
#: View id of the CelebAMask-HQ export's index shuffle in :func:`numpy.random.default_rng` (300vw uses 17).
CELEBAMASK_VIEW_ID = 18
#: First original CelebA index of each split in the export, and the direction in which the faces are numbered.
CELEBAMASK_ORIGINAL_INDEX: dict[str, tuple[int, int]] = {"train": (162770, -1), "val": (162771, 1),
                                                          "test": (182638, 1)}
#: Facial features the skin annotation covers (they are painted after it, so the merge shows them).
SKIN_COVERS: tuple[str, ...] = ("nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "mouth", "u_lip", "l_lip")


def _dilate(on: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation of an ``(H, W)`` bool array by a ``(2r + 1)²`` square."""
    if radius <= 0:
        return on
    h, w = on.shape
    padded = np.pad(on, radius)
    out = np.zeros_like(on)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def annotation_parts(mask: np.ndarray, overlap: int = 2) -> dict[str, np.ndarray]:
    """Per-part binary masks of an id map, drawn as CelebAMask-HQ's annotators draw them.

    The skin covers the facial features (:data:`SKIN_COVERS`), and every part reaches ``overlap`` pixels under
    the parts that come after it in :data:`~facezoo.data.celebamask.PART_ORDER`. Parts therefore overlap, and
    painting them in ``g_mask.py``'s order (later over earlier) gives back ``mask`` exactly; an order that paints
    an earlier part over a later one does not.

    Args:
        mask: ``(H, W)`` CelebAMask-HQ ids.
        overlap: pixels a part reaches under the parts painted after it.

    Returns:
        ``{part: (H, W) bool}`` for the parts present in ``mask``, in ``g_mask.py``'s order.
    """
    mask = np.asarray(mask)
    parts = {}
    for k, part in enumerate(celebamask.PART_ORDER):
        own = mask == CELEBAMASK_HQ.index(part)
        if not own.any():
            continue
        later = np.isin(mask, [CELEBAMASK_HQ.index(p) for p in celebamask.PART_ORDER[k + 1:]])
        drawn = own | (_dilate(own, overlap) & later)
        if part == "skin":
            drawn |= np.isin(mask, [CELEBAMASK_HQ.index(p) for p in SKIN_COVERS])
        parts[part] = drawn
    return parts


def export_celebamask_hq(out: str | Path, identities: int = 20, size: int = 128, seed: int = 0, split: str = "all",
                         samples_per_identity: int = 2, fractions: Sequence[float] = (0.7, 0.15, 0.15),
                         supersample: int = 2, mask_size: int | None = None, jpeg_quality: int = 95,
                         overlap: int = 2) -> dict[str, list[str]]:
    """Write synthetic faces as the CelebAMask-HQ release (the ``raw`` layout of :mod:`facezoo.data.celebamask`).

    Args:
        out: output root.
        identities: identities written, divided into train/val/test by ``fractions`` with ``split="all"``.
        size: image side (the release's is 1024).
        seed: the synthetic data seed (``SyntheticFaces(seed=seed)``) and of the index shuffle.
        split: ``"all"`` or one of train/val/test (only that split's faces).
        samples_per_identity: faces per identity (face ``k`` shows identity ``k % identities of the split``).
        fractions: train/val/test shares of the identities for ``split="all"``.
        supersample: the renderer's anti-aliasing factor.
        mask_size: side of the part masks; None = ``size // 2`` (the release's 512 for 1024).
        jpeg_quality: JPEG quality of the images.
        overlap: pixels a part reaches under the parts painted after it (:func:`annotation_parts`).

    Returns:
        ``{split: [image file names]}``.
    """
    import io

    out = Path(out)
    mask_size = size // 2 if mask_size is None else mask_size
    if identities < 1 or size < 8 or mask_size < 8 or samples_per_identity < 1 or overlap < 0 \
            or not 1 <= jpeg_quality <= 100:
        raise FacezooError(f"need identities >= 1, size and mask size >= 8, samples per identity >= 1, overlap >= 0, "
                           f"jpeg quality 1..100; got {identities}, {size}/{mask_size}, {samples_per_identity}, "
                           f"{overlap}, {jpeg_quality}")
    counts = identities_per_split(identities, split, fractions)
    faces = [(name, k) for name in SPLIT_NAMES for k in range(counts.get(name, 0) * samples_per_identity)]
    if len(faces) > 100000:
        raise FacezooError(f"CelebAMask-HQ names hold at most 100000 images ({{i:05d}}), asked for {len(faces)}")
    views = {name: SyntheticFaces(split=name, size=size, length=n * samples_per_identity, num_identities=n, seed=seed,
                                  supersample=supersample, yaw_range=(-25.0, 25.0), makeup=0.0)
             for name, n in counts.items()}
    order = np.random.default_rng([seed, CELEBAMASK_VIEW_ID]).permutation(len(faces))
    rows, lists = [], {name: [] for name in counts}
    for index, face in enumerate(order):
        name, k = faces[face]
        view = views[name]
        params = view.params(k)
        buf = io.BytesIO()
        Image.fromarray(render(params, size, supersample, zoom=view.zoom).image).save(buf, format="JPEG",
                                                                                      quality=jpeg_quality)
        atomic_write_bytes(out / celebamask.IMAGE_DIR / f"{index}.jpg", buf.getvalue())
        mask = render(params, mask_size, supersample, zoom=view.zoom).mask
        for part, on in annotation_parts(mask, overlap).items():
            atomic_save_png(celebamask.part_path(out / celebamask.ANNO_DIR, index, part), on.astype(np.uint8) * 255)
        start, step = CELEBAMASK_ORIGINAL_INDEX[name]
        original = start + step * k
        rows.append(f"{index} {original} {original + 1:06d}.jpg\n")
        lists[name].append(f"{index}.jpg")
    atomic_write_text(out / celebamask.MAPPING_FILE, "idx orig_idx orig_file\n" + "".join(rows))
    return lists


#: ``--format`` name → exporter; each takes the parsed arguments and returns ``{split: [file names]}``.
EXPORTERS: dict[str, Callable[[argparse.Namespace], dict[str, list[str]]]] = {
    "multipie": lambda a: export_multipie(a.out, a.identities, a.size, a.seed, a.split, a.sessions,
                                          a.recordings, a.illuminations, a.fractions, a.first_subject,
                                          a.supersample),
    "300vw": lambda a: export_300vw(a.out, a.identities, a.size, a.seed, a.split, a.frames, a.fractions,
                                    a.first_subject, a.supersample, a.pts_files, a.jpeg_quality),
    "mt": lambda a: export_mt(a.out, a.identities, a.size, a.seed, a.split, a.samples_per_identity, a.fractions,
                              a.supersample),
    "celebamask-hq": lambda a: export_celebamask_hq(a.out, a.identities, a.size, a.seed, a.split,
                                                    a.samples_per_identity, a.fractions, a.supersample, a.mask_size,
                                                    a.jpeg_quality),
}


# ------------------------------------------------------------------------------------------ CLI
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", required=True, choices=sorted(EXPORTERS), help="on-disk format to write")
    parser.add_argument("--out", required=True, type=Path, help="output root directory")
    parser.add_argument("--split", default="all", choices=["all", *SPLIT_NAMES],
                        help="all: divide the identities into train/val/test lists; else write that list")
    parser.add_argument("--identities", type=int, default=20, help="number of subjects (default 20)")
    parser.add_argument("--size", type=int, default=128, help="image side (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic data seed (default 0)")
    parser.add_argument("--sessions", type=int, default=1, help="sessions per subject (default 1)")
    parser.add_argument("--recordings", type=int, default=1,
                        help="recordings per session; 1 is neutral, the others expressions (default 1)")
    parser.add_argument("--illuminations", type=int, default=2,
                        help="illuminations per view, 1-20 (default 2)")
    parser.add_argument("--fractions", type=float, nargs=3, default=[0.7, 0.15, 0.15],
                        metavar=("TRAIN", "VAL", "TEST"),
                        help="subject shares of the lists with --split all (default 0.7 0.15 0.15)")
    parser.add_argument("--first-subject", type=int, default=1,
                        help="number of the first subject (default 1)")
    parser.add_argument("--samples-per-identity", type=int, default=2,
                        help="mt: source/reference pairs written per identity; celebamask-hq: faces per identity "
                             "(default 2)")
    parser.add_argument("--frames", type=int, default=240, help="300vw: frames per video (default 240)")
    parser.add_argument("--pts-files", action="store_true",
                        help="300vw: also write annot/<frame>.pts (300-W text) next to pts.pt")
    parser.add_argument("--jpeg-quality", type=int, default=95,
                        help="300vw, celebamask-hq: JPEG quality of the frames / images (default 95)")
    parser.add_argument("--mask-size", type=int, default=None,
                        help="celebamask-hq: side of the part masks (default: half of --size, as the release)")
    parser.add_argument("--supersample", type=int, default=2,
                        help="renderer anti-aliasing factor (default 2)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        lists = EXPORTERS[args.format](args)
    except FacezooError as err:
        print(f"make_synthetic: error: {err}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{k}: {len(v)} images" for k, v in lists.items())
    print(f"wrote {args.format} data to {args.out} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
