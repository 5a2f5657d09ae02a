"""Procedural synthetic faces with ground truth: facezoo's built-in data for every method.

A face is a small set of frozen parameter dataclasses (:class:`FaceParams`), and :func:`render` turns it into
an anti-aliased image, its 68 iBUG landmarks and its CelebAMask-HQ parsing mask. Every sample of every view
is a pure function of ``(seed, split, index)``: the parameters are drawn from
``np.random.default_rng([seed, split_id, view_id, index, stream])`` and identities from
``np.random.default_rng([seed, split_id, 0, identity_id, 0])``, so splits (fixed integer ids,
:data:`SPLITS`) never share an identity and the pixels are identical on every call and machine.

Views (torch ``Dataset`` s returning the sample dicts of :mod:`facezoo.data`):

* :class:`SyntheticFaces` — plain faces (pSp);
* :class:`SyntheticFrontalization` — profile → frontal pairs in the Multi-PIE crop (TP-GAN);
* :class:`SyntheticReposing` — triplets of one identity in different poses/expressions (GANnotation);
* :class:`SyntheticMakeup` — source, makeup reference of another identity, source wearing it (PSGAN);
* :class:`SyntheticMaskEdit` — image/mask, edited mask and the image rendered with the edit (MaskGAN).

Example:
    >>> params = sample_face(np.random.default_rng(0), sample_identity(np.random.default_rng(1), 0))
    >>> out = render(params, size=64)
    >>> out.image.shape, out.image.dtype, out.landmarks.shape, out.mask.shape
    ((64, 64, 3), dtype('uint8'), (68, 2), (64, 64))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch.utils.data import Dataset

from facezoo.data import _render
from facezoo.data._render import HAIR_STYLES, SHAPE_NAMES, HairStyle
from facezoo.face.align import multipie_alignment
from facezoo.face.labels import CELEBAMASK_HQ, IBUG68_HFLIP, landmarks_68_to_5

__all__ = [
    "SPLITS", "SHAPE_NAMES", "HAIR_STYLES", "HairStyle", "MASK_EDITS",
    "Identity", "Expression", "Pose", "Lighting", "Makeup", "Background", "FaceParams", "Rendered",
    "sample_identity", "sample_expression", "sample_pose", "sample_lighting", "sample_makeup",
    "sample_background", "sample_face", "identity_params", "sample_rng",
    "render", "default_camera", "face_camera", "aligned_camera", "mirror", "project_landmarks",
    "SyntheticFaces", "SyntheticFrontalization", "SyntheticReposing", "SyntheticMakeup", "SyntheticMaskEdit",
]

#: Fixed integer ids of the splits (part of every seed; never ``hash()`` of a string).
SPLITS: dict[str, int] = {"train": 0, "val": 1, "test": 2}

RGB = tuple[int, int, int]


# ------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Identity:
    """What stays fixed for a person.

    Args:
        id: identity id, contiguous within its split (the classification label).
        split: the split id (:data:`SPLITS`) the identity belongs to.
        shape: coefficients in [-1, 1] named by :data:`SHAPE_NAMES` (0 = mean face).
        skin, hair_color, eye_color, brow_color, lip_color: RGB in 0..255.
        hair_style: index into :data:`HAIR_STYLES`.
    """

    id: int
    split: int
    shape: tuple[float, ...]
    skin: RGB
    hair_style: int
    hair_color: RGB
    eye_color: RGB
    brow_color: RGB
    lip_color: RGB


@dataclass(frozen=True)
class Expression:
    """Expression intensities, each in [0, 1] (all 0 = neutral)."""

    smile: float = 0.0
    mouth_open: float = 0.0
    brow_raise: float = 0.0
    eye_close: float = 0.0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.smile, self.mouth_open, self.brow_raise, self.eye_close)


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees: ``yaw > 0`` turns the face to the image right, ``pitch > 0`` looks up,
    ``roll > 0`` tilts the head clockwise in the image."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.yaw, self.pitch, self.roll)


@dataclass(frozen=True)
class Lighting:
    """A directional light fixed to the camera plus ambient light.

    Args:
        azimuth: degrees, > 0 lights the face from the image right.
        elevation: degrees, > 0 from above.
        ambient, diffuse: Lambert weights (the skin colour is scaled by ``ambient + diffuse·max(0, n·l)``).
        tint: per-channel multipliers of the light colour (≈ 1).
    """

    azimuth: float = 0.0
    elevation: float = 20.0
    ambient: float = 0.55
    diffuse: float = 0.55
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Makeup:
    """Makeup as colours (RGB 0..255) and strengths in [0, 1]: lipstick, eye shadow, blush and foundation.

    Foundation tints the face skin (the ``skin`` and ``nose`` labels; not ears or neck) towards
    ``foundation_color`` before lighting: ``skin + (foundation_color − skin) · foundation_strength``.
    """

    lip_color: RGB = (0, 0, 0)
    lip_strength: float = 0.0
    shadow_color: RGB = (0, 0, 0)
    shadow_strength: float = 0.0
    blush_color: RGB = (0, 0, 0)
    blush_strength: float = 0.0
    foundation_color: RGB = (0, 0, 0)
    foundation_strength: float = 0.0

    @classmethod
    def none(cls) -> Makeup:
        """No makeup (all strengths 0)."""
        return cls()

    def as_vector(self) -> np.ndarray:
        """``(16,)`` float32 in [0, 1]: lip, shadow, blush and foundation, each RGB/255 then strength."""
        parts = [*(c / 255 for c in self.lip_color), self.lip_strength,
                 *(c / 255 for c in self.shadow_color), self.shadow_strength,
                 *(c / 255 for c in self.blush_color), self.blush_strength,
                 *(c / 255 for c in self.foundation_color), self.foundation_strength]
        return np.asarray(parts, np.float32)


@dataclass(frozen=True)
class Background:
    """The scene behind the face: a vertical gradient ``top`` → ``bottom`` and the clothes' colour (RGB)."""

    top: RGB = (128, 128, 128)
    bottom: RGB = (96, 96, 96)
    cloth: RGB = (60, 70, 90)


@dataclass(frozen=True)
class FaceParams:
    """Everything :func:`render` needs for one image."""

    identity: Identity
    expression: Expression = Expression()
    pose: Pose = Pose()
    lighting: Lighting = Lighting()
    makeup: Makeup = Makeup()
    background: Background = Background()

    def replace(self, **changes) -> FaceParams:
        """A copy with some fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Rendered:
    """Output of :func:`render`.

    Args:
        image: ``(S, S, 3)`` uint8 RGB.
        landmarks: ``(68, 2)`` float32 (x, y) pixels, iBUG order, all 68 (also the self-occluded ones).
        mask: ``(S, S)`` uint8 CelebAMask-HQ ids (image-left eye = ``l_eye``).
        camera: ``(2, 3)`` map from rotated head-frame (x, y) to pixels that was used.
    """

    image: np.ndarray
    landmarks: np.ndarray
    mask: np.ndarray
    camera: np.ndarray


# --------------------------------------------------------------------------------------- sampling
_SKIN_TONES = np.array([[250, 222, 200], [240, 200, 170], [225, 178, 140], [198, 145, 105],
                        [160, 108, 75], [118, 78, 54], [88, 58, 42]], np.float64)
_HAIR_COLORS = np.array([[28, 22, 20], [55, 38, 28], [95, 65, 42], [140, 70, 40], [190, 150, 95],
                         [225, 200, 140], [150, 145, 140], [80, 60, 50]], np.float64)
_EYE_COLORS = np.array([[70, 45, 28], [40, 26, 18], [110, 85, 45], [75, 105, 70], [70, 110, 155],
                        [105, 118, 128]], np.float64)
_LIPSTICKS = np.array([[190, 20, 45], [150, 25, 60], [215, 70, 90], [120, 30, 40], [230, 110, 120],
                       [170, 60, 50], [100, 20, 70]], np.float64)
_SHADOWS = np.array([[110, 70, 120], [140, 90, 60], [60, 80, 130], [90, 110, 70], [160, 100, 120],
                     [70, 50, 45]], np.float64)
_BLUSHES = np.array([[230, 110, 120], [220, 120, 100], [200, 90, 110], [240, 140, 130]], np.float64)
# foundation shades, porcelain to deep, slightly warmer than the bare skin tones
_FOUNDATIONS = np.array([[246, 214, 192], [236, 196, 164], [222, 176, 136], [200, 150, 108], [170, 118, 82],
                         [130, 88, 60]], np.float64)


def _rgb(v) -> RGB:
    return tuple(int(round(min(255.0, max(0.0, float(c))))) for c in v)


def _pick(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> RGB:
    base = palette[int(rng.integers(len(palette)))]
    return _rgb(base + rng.uniform(-jitter, jitter, 3))


def sample_rng(seed: int, split: str | int, view: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of one sample: ``default_rng([seed, split_id, view, index, stream])``.

    Args:
        seed: non-negative dataset seed.
        split: split name or id (:data:`SPLITS`).
        view: view id (0 is reserved for identities).
        index, stream: sample index and an independent stream within it.
    """
    split_id = SPLITS[split] if isinstance(split, str) else int(split)
    values = [int(seed), split_id, int(view), int(index), int(stream)]
    if min(values) < 0:
        raise ValueError(f"seed, split, view, index and stream must be non-negative, got {values}")
    return np.random.default_rng(values)


def sample_identity(rng: np.random.Generator, identity_id: int, split: int = 0) -> Identity:
    """Draw an identity: shape coefficients, skin tone, hair style/colour, eye and brow colours.

    Args:
        rng: the identity's generator (see :func:`identity_params`).
        identity_id: the contiguous id stored in the result.
        split: split id stored in the result.
    """
    shape = tuple(float(v) for v in rng.uniform(-1.0, 1.0, len(SHAPE_NAMES)))
    tone = rng.uniform(0, len(_SKIN_TONES) - 1)
    lo = int(tone)
    skin = _SKIN_TONES[lo] + (tone - lo) * (_SKIN_TONES[min(lo + 1, len(_SKIN_TONES) - 1)] - _SKIN_TONES[lo])
    skin = skin + rng.uniform(-6, 6, 3)
    style = int(rng.choice(len(HAIR_STYLES), p=[0.06, 0.12, 0.24, 0.14, 0.14, 0.18, 0.12]))
    dark = tone > 3.5
    hair = _pick(rng, _HAIR_COLORS[:3] if dark else _HAIR_COLORS, 10)
    brow = _rgb(np.asarray(hair, np.float64) * 0.7 + 8)
    eye = _pick(rng, _EYE_COLORS[:3] if dark else _EYE_COLORS, 12)
    lip = _rgb(skin * 0.72 + np.array([180, 70, 75]) * 0.28 + rng.uniform(-8, 8, 3))
    return Identity(int(identity_id), int(split), shape, _rgb(skin), style, hair, eye, brow, lip)


def identity_params(seed: int, split: str | int, identity_id: int) -> Identity:
    """The parameters of identity ``identity_id`` of ``split``: a pure function of its arguments (cached)."""
    split_id = SPLITS[split] if isinstance(split, str) else int(split)
    return _identity_params(int(seed), split_id, int(identity_id))


@lru_cache(maxsize=4096)
def _identity_params(seed: int, split_id: int, identity_id: int) -> Identity:
    return sample_identity(sample_rng(seed, split_id, 0, identity_id, 0), identity_id, split_id)


def sample_expression(rng: np.random.Generator, neutral: float = 0.3) -> Expression:
    """Random expression; neutral with probability ``neutral``, otherwise a random mix."""
    u = rng.uniform(0, 1, 6)
    if u[0] < neutral:
        return Expression()
    smile = float(u[1]) if u[2] < 0.6 else 0.0
    mouth = float(rng.uniform(0.2, 1.0)) if u[3] < 0.35 else 0.0
    brow = float(u[4]) * 0.8 if u[5] < 0.4 else 0.0
    eye = float(rng.uniform(0.5, 1.0)) if rng.uniform() < 0.1 else float(rng.uniform(0, 0.3))
    return Expression(smile, mouth, brow, eye)


def sample_pose(rng: np.random.Generator, yaw: Sequence[float] = (-40.0, 40.0), pitch: float = 10.0,
                roll: float = 8.0) -> Pose:
    """Pose with yaw uniform in ``yaw = (low, high)`` and pitch/roll uniform in ``±pitch`` / ``±roll``."""
    return Pose(float(rng.uniform(*yaw)), float(rng.uniform(-pitch, pitch)), float(rng.uniform(-roll, roll)))


def sample_lighting(rng: np.random.Generator) -> Lighting:
    """A light from the front half-space with a slightly coloured tint."""
    return Lighting(float(rng.uniform(-60, 60)), float(rng.uniform(-10, 50)), float(rng.uniform(0.55, 0.72)),
                    float(rng.uniform(0.3, 0.5)), tuple(float(v) for v in 1 + rng.uniform(-0.06, 0.06, 3)))


def sample_makeup(rng: np.random.Generator, foundation: bool = False) -> Makeup:
    """Makeup with lipstick, eye shadow and blush present (strengths in [0.5, 1]) and, with ``foundation``,
    a foundation shade at strength in [0.5, 0.9] (drawn after the other parts, so the other views' streams,
    which use no foundation, are unchanged)."""
    s = rng.uniform(0.5, 1.0, 3)
    makeup = Makeup(_pick(rng, _LIPSTICKS, 15), float(s[0]), _pick(rng, _SHADOWS, 15), float(s[1]),
                    _pick(rng, _BLUSHES, 10), float(s[2]))
    if foundation:
        makeup = dataclasses.replace(makeup, foundation_color=_pick(rng, _FOUNDATIONS, 8),
                                     foundation_strength=float(rng.uniform(0.5, 0.9)))
    return makeup


def sample_background(rng: np.random.Generator) -> Background:
    """A muted vertical gradient and a clothes colour."""
    top = rng.uniform(40, 220, 3)
    bottom = top * rng.uniform(0.6, 1.0) + rng.uniform(-15, 15, 3)
    return Background(_rgb(top), _rgb(bottom), _rgb(rng.uniform(20, 200, 3)))


def sample_face(rng: np.random.Generator, identity: Identity, yaw: Sequence[float] = (-40.0, 40.0),
                makeup: float = 0.0) -> FaceParams:
    """All the non-identity parameters of one image; makeup with probability ``makeup``."""
    expression = sample_expression(rng)
    pose = sample_pose(rng, yaw)
    lighting = sample_lighting(rng)
    background = sample_background(rng)
    mk = sample_makeup(rng) if rng.uniform() < makeup else Makeup.none()
    return FaceParams(identity, expression, pose, lighting, mk, background)


# ---------------------------------------------------------------------------------------- render
@lru_cache(maxsize=256)
def _geometry(identity: Identity, expression: Expression) -> _render.Geometry:
    return _render.build_geometry(identity.shape, *expression.as_tuple(), HAIR_STYLES[identity.hair_style])


def project_landmarks(params: FaceParams) -> np.ndarray:
    """The 68 landmarks of ``params`` rotated by its pose, in head units ``(68, 2)`` (before the camera)."""
    geom = _geometry(params.identity, params.expression)
    rot = _render.rotation_matrix(*params.pose.as_tuple())
    return ((geom.points[:68] - _render.PIVOT) @ rot.T + _render.PIVOT)[:, :2]


@lru_cache(maxsize=32)
def _default_camera(size: int, zoom: float) -> np.ndarray:
    cam = multipie_alignment(landmarks_68_to_5(_render.mean_landmarks_frontal()), size)
    c = (size - 1) / 2.0
    cam = cam * zoom
    cam[:, 2] += c * (1 - zoom)
    return cam


def default_camera(size: int = 128, zoom: float = 1.0) -> np.ndarray:
    """The camera that puts the mean frontal face in the Multi-PIE crop, zoomed by ``zoom`` about the centre.

    Returns:
        ``(2, 3)`` float64 map from rotated head-frame ``(x, y)`` to pixels.
    """
    if size < 8:
        raise ValueError(f"size must be >= 8, got {size}")
    return _default_camera(int(size), float(zoom)).copy()


def face_camera(params: FaceParams, size: int = 128, zoom: float = 1.0) -> np.ndarray:
    """:func:`default_camera` shifted so that the face follows its pose (like a detector's face box).

    The centroid of the posed 68 landmarks lands where the mean frontal face's centroid does.

    Returns:
        ``(2, 3)`` float64 camera.
    """
    cam = default_camera(size, zoom)
    shift = project_landmarks(params).mean(0) - _render.mean_landmarks_frontal().mean(0)
    cam[:, 2] -= cam[:, :2] @ shift
    return cam


def _flip_px(size: int) -> np.ndarray:
    return np.array([[-1.0, 0.0, size - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])


def aligned_camera(params: FaceParams, size: int = 128, mirror: bool = False) -> np.ndarray:
    """Camera that renders ``params`` directly into its Multi-PIE crop.

    The crop is :func:`facezoo.face.align.multipie_alignment` of the face's own five points (eye centre at
    ``(size/2, 40/128·size)``, mouth centre 48/128·size below), i.e. what
    :func:`~facezoo.face.align.align_multipie` computes, but rendered without resampling and without empty
    borders. With ``mirror=True`` the camera is the one whose render, flipped by :func:`mirror`, is aligned.

    Returns:
        ``(2, 3)`` float64 camera.
    """
    pts = project_landmarks(params)
    if not mirror:
        return multipie_alignment(landmarks_68_to_5(pts), size)
    flip_units = np.diag([-1.0, 1.0, 1.0])
    mirrored = (pts * np.array([-1.0, 1.0]))[list(IBUG68_HFLIP)]
    a = np.vstack([multipie_alignment(landmarks_68_to_5(mirrored), size), [0, 0, 1]])
    return (_flip_px(size) @ a @ flip_units)[:2]


def render(params: FaceParams, size: int = 128, supersample: int = 2, camera: np.ndarray | None = None,
           zoom: float = 1.0) -> Rendered:
    """Render a face.

    Args:
        params: the face.
        size: side of the square output in pixels.
        supersample: polygon anti-aliasing factor (1 = none, 2 = default); the head outline, hair and
            shading are anti-aliased analytically at any factor.
        camera: ``(2, 3)`` map from rotated head units to pixels; default :func:`face_camera` ``(params, size,
            zoom)`` (the face centred whatever its pose); :func:`default_camera` keeps the neck fixed instead.
        zoom: zoom of the default camera (ignored when ``camera`` is given).

    Returns:
        :class:`Rendered` with ``image (S, S, 3) uint8``, ``landmarks (68, 2) float32`` pixels,
        ``mask (S, S) uint8`` CelebAMask-HQ ids and the camera.
    """
    if supersample < 1 or int(supersample) != supersample:
        raise ValueError(f"supersample must be a positive integer, got {supersample}")
    cam = face_camera(params, size, zoom) if camera is None else np.asarray(camera, np.float64)
    if cam.shape != (2, 3):
        raise ValueError(f"camera must be a (2, 3) matrix, got shape {cam.shape}")
    geom = _geometry(params.identity, params.expression)
    image, mask, landmarks = _render.draw_face(geom, params, int(size), cam, int(supersample))
    return Rendered(image, landmarks, mask, cam)


_LR_PAIRS = [("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")]
_LABEL_SWAP = np.arange(len(CELEBAMASK_HQ), dtype=np.uint8)
for _a, _b in _LR_PAIRS:
    _LABEL_SWAP[CELEBAMASK_HQ.index(_a)], _LABEL_SWAP[CELEBAMASK_HQ.index(_b)] = (
        CELEBAMASK_HQ.index(_b), CELEBAMASK_HQ.index(_a))


def mirror(rendered: Rendered) -> Rendered:
    """Horizontal flip as Multi-PIE's ``MIRROR_TO_ONE_SIDE``: pixels, left/right labels and landmark indices.

    Landmarks become ``x' = S − 1 − x`` and are permuted with
    :data:`~facezoo.face.labels.IBUG68_HFLIP`, so
    index 36 is still the image-left eye's outer corner; ``l_*``/``r_*`` labels are swapped.
    """
    size = rendered.image.shape[1]
    lm = rendered.landmarks.copy()
    lm[:, 0] = size - 1 - lm[:, 0]
    cam = (_flip_px(size) @ np.vstack([rendered.camera, [0, 0, 1]]))[:2]
    return Rendered(np.ascontiguousarray(rendered.image[:, ::-1]), lm[list(IBUG68_HFLIP)],
                    _LABEL_SWAP[rendered.mask[:, ::-1]], cam)


# ------------------------------------------------------------------------------------------ views
def _image_tensor(image: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.array(image, dtype=np.float32))
    x.div_(127.5).sub_(1.0)                      # on the contiguous (H, W, 3) tensor: faster, same values
    return x.permute(2, 0, 1)


def _add(sample: dict, prefix: str, out: Rendered, pose: Pose | None = None) -> None:
    key = prefix or "image"
    pre = f"{prefix}_" if prefix else ""
    sample[key] = _image_tensor(out.image)
    sample[f"{pre}landmarks"] = torch.from_numpy(out.landmarks.astype(np.float32))
    sample[f"{pre}mask"] = torch.from_numpy(out.mask.astype(np.int64))
    if pose is not None:
        sample[f"{pre}pose"] = torch.tensor(pose.as_tuple(), dtype=torch.float32)


class _SyntheticView(Dataset):
    """Common constructor, seeding and identity cache of the views."""

    view_id = 1

    def __init__(self, split: str = "train", size: int = 128, length: int = 10000, num_identities: int = 200,
                 seed: int = 0, supersample: int = 2):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        if size < 8:
            raise ValueError(f"size must be >= 8, got {size}")
        if length < 1 or num_identities < 1:
            raise ValueError(f"length and num_identities must be positive, got {length}, {num_identities}")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.split, self.split_id = split, SPLITS[split]
        self.size, self.length, self.num_identities = int(size), int(length), int(num_identities)
        self.seed, self.supersample = int(seed), int(supersample)

    def __len__(self) -> int:
        return self.length

    def _check(self, index: int) -> int:
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for a dataset of length {self.length}")
        return index % self.length

    def rng(self, index: int, stream: int = 0) -> np.random.Generator:
        """The generator of sample ``index`` (see :func:`sample_rng`)."""
        return sample_rng(self.seed, self.split_id, self.view_id, index, stream)

    def identity(self, identity_id: int) -> Identity:
        """Parameters of identity ``identity_id`` (``0 ≤ id < num_identities``) of this split."""
        if not 0 <= identity_id < self.num_identities:
            raise IndexError(f"identity {identity_id} out of range [0, {self.num_identities})")
        return identity_params(self.seed, self.split_id, identity_id)

    def _render(self, params: FaceParams, camera=None, zoom: float = 1.0) -> Rendered:
        return render(params, self.size, self.supersample, camera, zoom)


class SyntheticFaces(_SyntheticView):
    """Plain faces (pSp): random identity-cycling faces with random pose, expression, light and makeup.

    Args:
        split, size, length, num_identities, seed, supersample: see the module docstring; sample ``i``
            shows identity ``i % num_identities``.
        yaw_range: yaw interval in degrees.
        makeup: probability that a face wears makeup.
        zoom: zoom of the default (Multi-PIE-like) camera; < 1 shows more of the head.

    Sample keys: ``image``, ``landmarks``, ``mask``, ``identity``, ``pose``.
    """

    view_id = 1

    def __init__(self, split: str = "train", size: int = 128, length: int = 10000, num_identities: int = 200,
                 seed: int = 0, supersample: int = 2, yaw_range: Sequence[float] = (-30.0, 30.0),
                 makeup: float = 0.3, zoom: float = 0.85):
        super().__init__(split, size, length, num_identities, seed, supersample)
        self.yaw_range = (float(yaw_range[0]), float(yaw_range[1]))
        self.makeup_prob, self.zoom = float(makeup), float(zoom)

    def params(self, index: int) -> FaceParams:
        """The :class:`FaceParams` of sample ``index``."""
        index = self._check(index)
        return sample_face(self.rng(index), self.identity(index % self.num_identities), self.yaw_range,
                           self.makeup_prob)

    def __getitem__(self, index: int) -> dict:
        p = self.params(index)
        sample = {"identity": torch.tensor(p.identity.id, dtype=torch.int64)}
        _add(sample, "", self._render(p, zoom=self.zoom), p.pose)
        return sample


class SyntheticFrontalization(_SyntheticView):
    """Profile → frontal pairs in the Multi-PIE crop (TP-GAN).

    ``image`` is the face at yaw ``θ`` (``|θ|`` uniform in ``yaw_range`` or drawn from ``yaws``, random
    sign; pitch/roll jitter of ``±pitch``/``±roll``); ``target`` is the frontal face (yaw = pitch = roll = 0)
    of the same identity, expression, lighting and background. Both are in the crop of
    :func:`facezoo.face.align.align_multipie` (eye centre at (64, 40), mouth centre at (64, 88) for size
    128), rendered straight into it (:func:`aligned_camera`). With ``mirror_negative`` (Multi-PIE's
    ``MIRROR_TO_ONE_SIDE``) negative yaws are mirrored, image and target alike, so every profile turns
    towards the image right (``pose[0] > 0``).

    Sample keys: ``image``, ``landmarks``, ``mask``, ``pose``, ``target``, ``target_landmarks``,
    ``target_mask``, ``target_pose``, ``identity``.
    """

    view_id = 2

    def __init__(self, split: str = "train", size: int = 128, length: int = 10000, num_identities: int = 200,
                 seed: int = 0, supersample: int = 2, yaw_range: Sequence[float] = (15.0, 75.0),
                 yaws: Sequence[float] | None = None, mirror_negative: bool = True, pitch: float = 5.0,
                 roll: float = 5.0, expression: bool = True):
        super().__init__(split, size, length, num_identities, seed, supersample)
        lo, hi = float(yaw_range[0]), float(yaw_range[1])
        if not 0 <= lo <= hi <= 90:
            raise ValueError(f"yaw_range must satisfy 0 <= low <= high <= 90, got {yaw_range}")
        self.yaw_range = (lo, hi)
        self.yaws = tuple(float(y) for y in yaws) if yaws is not None else None
        self.mirror_negative, self.pitch, self.roll = bool(mirror_negative), float(pitch), float(roll)
        self.expression = bool(expression)

    def params(self, index: int) -> dict[str, FaceParams]:
        """``{"image": profile params, "target": frontal params}`` of sample ``index`` (before mirroring)."""
        index = self._check(index)
        rng = self.rng(index)
        ident = self.identity(index % self.num_identities)
        mag = float(rng.choice(self.yaws)) if self.yaws else float(rng.uniform(*self.yaw_range))
        yaw = mag if rng.uniform() < 0.5 else -mag
        pitch, roll = float(rng.uniform(-self.pitch, self.pitch)), float(rng.uniform(-self.roll, self.roll))
        pose = Pose(yaw, pitch, roll)
        expr = sample_expression(rng, neutral=0.5) if self.expression else Expression()
        frontal = FaceParams(ident, expr, Pose(), sample_lighting(rng), Makeup.none(), sample_background(rng))
        return {"image": frontal.replace(pose=pose), "target": frontal}

    def __getitem__(self, index: int) -> dict:
        p = self.params(index)
        flip = self.mirror_negative and p["image"].pose.yaw < 0
        outs, poses = {}, {}
        for key, par in p.items():
            out = self._render(par, aligned_camera(par, self.size, mirror=flip))
            pose = par.pose
            if flip:
                out, pose = mirror(out), Pose(-pose.yaw, pose.pitch, -pose.roll)
            outs[key], poses[key] = out, pose
        sample = {"identity": torch.tensor(p["image"].identity.id, dtype=torch.int64)}
        _add(sample, "", outs["image"], poses["image"])
        _add(sample, "target", outs["target"], poses["target"])
        return sample


class SyntheticReposing(_SyntheticView):
    """Triplets of one identity in three poses/expressions (GANnotation's A → B → C cycle).

    The three faces share identity, lighting, makeup, background and camera; pose (yaw in ``yaw_range``)
    and expression vary.

    Sample keys: ``image`` (A) / ``landmarks`` / ``mask`` / ``pose``; ``target`` (B) / ``target_landmarks`` /
    ``target_mask`` / ``target_pose``; ``third`` (C) / ``third_landmarks`` / ``third_mask`` / ``third_pose``;
    ``identity``.
    """

    view_id = 3

    def __init__(self, split: str = "train", size: int = 128, length: int = 10000, num_identities: int = 200,
                 seed: int = 0, supersample: int = 2, yaw_range: Sequence[float] = (-45.0, 45.0),
                 makeup: float = 0.2, zoom: float = 0.85):
        super().__init__(split, size, length, num_identities, seed, supersample)
        self.yaw_range = (float(yaw_range[0]), float(yaw_range[1]))
        self.makeup_prob, self.zoom = float(makeup), float(zoom)

    def params(self, index: int) -> dict[str, FaceParams]:
        """``{"image": A, "target": B, "third": C}`` of sample ``index``."""
        index = self._check(index)
        rng = self.rng(index)
        base = sample_face(rng, self.identity(index % self.num_identities), self.yaw_range, self.makeup_prob)
        out = {"image": base}
        for key in ("target", "third"):
            out[key] = base.replace(pose=sample_pose(rng, self.yaw_range), expression=sample_expression(rng))
        return out

    def __getitem__(self, index: int) -> dict:
        p = self.params(index)
        sample = {"identity": torch.tensor(p["image"].identity.id, dtype=torch.int64)}
        for key, par in p.items():
            _add(sample, "" if key == "image" else key, self._render(par, zoom=self.zoom), par.pose)
        return sample


class SyntheticMakeup(_SyntheticView):
    """Makeup transfer triples (PSGAN): source, reference and the ground-truth transfer.

    ``image`` is identity ``i`` without makeup; ``reference`` another identity in another pose and
    expression wearing makeup ``m``; ``target`` is the source (same pose, expression, lighting, pixels
    outside the makeup regions) wearing ``m``. ``makeup`` is ``m.as_vector()``.

    With ``foundation`` (the default) ``m`` includes a foundation shade that tints the whole face skin, as
    the makeup of MT's references does; the lipstick, eye shadow and blush alone leave "the source unchanged"
    an almost perfect makeup transfer (L1 0.0074 at 64 px, docs/results.md).

    Sample keys: ``image``, ``landmarks``, ``mask``, ``pose``, ``identity``; ``reference``,
    ``reference_landmarks``, ``reference_mask``, ``reference_pose``, ``reference_identity``; ``target``,
    ``target_landmarks``, ``target_mask``; ``makeup`` (16,) float32.
    """

    view_id = 4

    def __init__(self, split: str = "train", size: int = 128, length: int = 10000, num_identities: int = 200,
                 seed: int = 0, supersample: int = 2, yaw_range: Sequence[float] = (-30.0, 30.0),
                 zoom: float = 0.85, foundation: bool = True):
        super().__init__(split, size, length, num_identities, seed, supersample)
        if self.num_identities < 2:
            raise ValueError("SyntheticMakeup needs num_identities >= 2 (the reference is another identity)")
        self.yaw_range, self.zoom = (float(yaw_range[0]), float(yaw_range[1])), float(zoom)
        self.foundation = bool(foundation)

    def params(self, index: int) -> dict[str, FaceParams]:
        """``{"image": source, "reference": reference, "target": source with the reference's makeup}``."""
        index = self._check(index)
        rng = self.rng(index)
        i = index % self.num_identities
        j = (i + 1 + int(rng.integers(self.num_identities - 1))) % self.num_identities
        source = sample_face(rng, self.identity(i), self.yaw_range, 0.0)
        reference = sample_face(rng, self.identity(j), self.yaw_range, 0.0)
        reference = reference.replace(makeup=sample_makeup(rng, self.foundation))
        return {"image": source, "reference": reference, "target": source.replace(makeup=reference.makeup)}

    def __getitem__(self, index: int) -> dict:
        p = self.params(index)
        sample = {"identity": torch.tensor(p["image"].identity.id, dtype=torch.int64),
                  "reference_identity": torch.tensor(p["reference"].identity.id, dtype=torch.int64),
                  "makeup": torch.from_numpy(p["reference"].makeup.as_vector())}
        for key, par in p.items():
            _add(sample, "" if key == "image" else key, self._render(par, zoom=self.zoom),
                 None if key == "target" else par.pose)
        return sample


#: Edits of :class:`SyntheticMaskEdit`, by the id stored in the sample's ``edit`` key.
MASK_EDITS: tuple[str, ...] = ("smile", "mouth_open", "brow_raise", "eye_close", "hair_style")


class SyntheticMaskEdit(_SyntheticView):
    """Mask-guided editing pairs (MaskGAN): an image, an edited mask and the image rendered with the edit.

    The edit (``edit`` = index into :data:`MASK_EDITS`) changes one expression intensity by at least 0.5 or
    the hair style; pose, lighting, background and camera stay, so only the edited parts move.

    Sample keys: ``image``, ``mask``, ``landmarks``, ``pose``, ``identity``; ``target``, ``target_mask``,
    ``target_landmarks``; ``edit`` int64.
    """

    view_id = 5

    def __init__(self, split: str = "train", size: int = 128, length: int = 10000, num_identities: int = 200,
                 seed: int = 0, supersample: int = 2, yaw_range: Sequence[float] = (-25.0, 25.0),
                 edits: Sequence[str] = MASK_EDITS, zoom: float = 0.85):
        super().__init__(split, size, length, num_identities, seed, supersample)
        unknown = set(edits) - set(MASK_EDITS)
        if unknown or not edits:
            raise ValueError(f"edits must be a non-empty subset of {MASK_EDITS}, got {tuple(edits)}")
        self.edits = tuple(edits)
        self.yaw_range, self.zoom = (float(yaw_range[0]), float(yaw_range[1])), float(zoom)

    def params(self, index: int) -> dict[str, FaceParams]:
        """``{"image": original, "target": edited}`` of sample ``index``."""
        index = self._check(index)
        rng = self.rng(index)
        src = sample_face(rng, self.identity(index % self.num_identities), self.yaw_range, 0.2)
        edit = self.edits[int(rng.integers(len(self.edits)))]
        if edit == "hair_style":
            style = (src.identity.hair_style + 1 + int(rng.integers(len(HAIR_STYLES) - 1))) % len(HAIR_STYLES)
            tgt = src.replace(identity=dataclasses.replace(src.identity, hair_style=style))
        else:
            old = getattr(src.expression, edit)
            low = max(old + 0.5, 0.75)
            new = float(rng.uniform(0.0, 0.15)) if old > 0.5 else float(rng.uniform(low, 1.0))
            tgt = src.replace(expression=dataclasses.replace(src.expression, **{edit: new}))
        return {"image": src, "target": tgt}

    def edit_of(self, index: int) -> str:
        """Name of the edit of sample ``index``."""
        p = self.params(index)
        a, b = p["image"], p["target"]
        if a.identity.hair_style != b.identity.hair_style:
            return "hair_style"
        return next(n for n in MASK_EDITS[:4] if getattr(a.expression, n) != getattr(b.expression, n))

    def __getitem__(self, index: int) -> dict:
        p = self.params(index)
        sample = {"identity": torch.tensor(p["image"].identity.id, dtype=torch.int64),
                  "edit": torch.tensor(MASK_EDITS.index(self.edit_of(index)), dtype=torch.int64)}
        for key, par in p.items():
            _add(sample, "" if key == "image" else key, self._render(par, zoom=self.zoom),
                 par.pose if key == "image" else None)
        return sample
