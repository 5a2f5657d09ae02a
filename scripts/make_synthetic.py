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
    identity_params,
    render,
    sample_background,
    sample_expression,
    sample_rng,
)
from facezoo.face.align import align_multipie
from facezoo.face.labels import landmarks_68_to_5
from facezoo.utils import FacezooError, atomic_write_text

#: View id of the Multi-PIE export in :func:`facezoo.data.synthetic.sample_rng` (the views use 1-5).
MULTIPIE_VIEW_ID = 16
#: Multi-PIE's 20 illumination codes 00-19, modelled as a light sweeping from the image left to the right.
ILLUMINATION_AZIMUTH: tuple[float, ...] = tuple(float(a) for a in np.linspace(-60.0, 60.0, 20))
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


# ------------------------------------------------------------------------------------ file helpers
def atomic_save_png(path: Path, image: np.ndarray) -> None:
    """Save an ``(H, W, 3)`` uint8 array as PNG through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(f, format="PNG")
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
    if split == "all":
        counts = split_counts(identities, fractions)
    elif split in SPLIT_NAMES:
        counts = {split: identities}
    else:
        raise FacezooError(f"--split must be all, train, val or test, got {split!r}")

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


#: ``--format`` name → exporter; each takes the parsed arguments and returns ``{split: [file names]}``.
EXPORTERS: dict[str, Callable[[argparse.Namespace], dict[str, list[str]]]] = {
    "multipie": lambda a: export_multipie(a.out, a.identities, a.size, a.seed, a.split, a.sessions,
                                          a.recordings, a.illuminations, a.fractions, a.first_subject,
                                          a.supersample),
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
