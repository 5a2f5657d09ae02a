"""Drawing core of the procedural face renderer (:mod:`facezoo.data.synthetic` is the public API).

The head lives in a right-handed *head frame* in *head units* (one unit ≈ 7 cm; the eye-centre to
mouth-centre distance is ≈ 1): ``x`` to the image right, ``y`` down, ``z`` towards the camera. It is built
from three quadrics and a handful of polygons:

* **cranium** and **jaw** ellipsoids whose union is the skin surface, ray-cast per pixel (orthographic
  camera) with an analytic anti-aliased silhouette and a Lambert term from the ellipsoid normals;
* a **hair shell** ellipsoid around the cranium; a pixel shows hair where the shell's entry point (front
  hair) or exit point (hair behind the head) lies in the style's *cap* region;
* the 68 iBUG landmarks and the facial parts (brows, eyes, nose, lips, ears, makeup) as 3D points on the
  surface, rotated, projected and drawn with PIL polygons on a ``supersample``-times larger canvas in
  depth order, clipped at the horizon (where the surface normal turns away from the camera).

All per-pixel arithmetic uses only ``+ - * / sqrt min max`` in float32 (exactly rounded in IEEE 754) and
the per-sample trigonometry uses :mod:`math`, so a sample's pixels are the same on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
from PIL import Image, ImageDraw

from facezoo.face.labels import CELEBAMASK_HQ

LABEL = {name: CELEBAMASK_HQ.index(name) for name in CELEBAMASK_HQ.names}

#: Names of the identity shape coefficients (each in [-1, 1]; 0 is the mean face).
SHAPE_NAMES: tuple[str, ...] = (
    "face_width", "face_length", "jaw_width", "chin_depth", "head_height",
    "eye_spacing", "eye_size", "eye_tilt", "nose_length", "nose_width", "nose_height",
    "mouth_width", "lip_thickness", "brow_height", "brow_thickness", "ear_size",
)

# --------------------------------------------------------------------------------------- template
# Mean 68-point face in a unit box (x: jaw 0 → jaw 16, y: brow top → chin), iBUG order. The numbers are
# hand-set proportions (eyes a fifth of the face width, mouth at 0.72, etc.), converted to head units below.
_TEMPLATE_BOX = np.array([
    # jaw 0-16 (replaced by points on the head surface; kept for the heights)
    [0.00, 0.22], [0.01, 0.35], [0.03, 0.48], [0.06, 0.60], [0.11, 0.72], [0.19, 0.82], [0.28, 0.90],
    [0.39, 0.96], [0.50, 0.98], [0.61, 0.96], [0.72, 0.90], [0.81, 0.82], [0.89, 0.72], [0.94, 0.60],
    [0.97, 0.48], [0.99, 0.35], [1.00, 0.22],
    # brows 17-21 (image left, outer → inner), 22-26 (inner → outer)
    [0.09, 0.10], [0.15, 0.06], [0.22, 0.05], [0.30, 0.06], [0.39, 0.09],
    [0.61, 0.09], [0.70, 0.06], [0.78, 0.05], [0.85, 0.06], [0.91, 0.10],
    # nose bridge 27-30, nostrils 31-35
    [0.50, 0.20], [0.50, 0.29], [0.50, 0.38], [0.50, 0.465],
    [0.41, 0.53], [0.455, 0.545], [0.50, 0.55], [0.545, 0.545], [0.59, 0.53],
    # eyes 36-41 (image left: outer corner 36, inner corner 39), 42-47
    [0.175, 0.225], [0.22, 0.19], [0.285, 0.19], [0.33, 0.225], [0.285, 0.25], [0.22, 0.25],
    [0.67, 0.225], [0.715, 0.19], [0.78, 0.19], [0.825, 0.225], [0.78, 0.25], [0.715, 0.25],
    # outer lip 48-59
    [0.355, 0.72], [0.40, 0.69], [0.46, 0.675], [0.50, 0.682], [0.54, 0.675], [0.60, 0.69],
    [0.645, 0.72], [0.60, 0.755], [0.55, 0.772], [0.50, 0.776], [0.45, 0.772], [0.40, 0.755],
    # inner lip 60-67 (closed mouth: upper and lower inner lines meet)
    [0.37, 0.72], [0.45, 0.718], [0.50, 0.72], [0.55, 0.718], [0.63, 0.72], [0.55, 0.721],
    [0.50, 0.723], [0.45, 0.721],
], dtype=np.float64)

TEMPLATE_2D = (_TEMPLATE_BOX - np.array([0.5, 0.45])) * 2.0     # head units, (x, y)

_LOWER_TO_UPPER = {37: 41, 38: 40, 43: 47, 44: 46}             # eyelid closure pairs (upper → lower)
PIVOT = np.array([0.0, 0.2, -0.5])                              # the neck joint the head turns about


@dataclass(frozen=True)
class HairStyle:
    """Geometry of a hair style (all in the hair shell's unit-sphere coordinates ``q``).

    Args:
        name: style name.
        thickness: shell scale over the cranium ``(x, y, z)`` (0 = no hair).
        lift: upward shift of the shell (volume on top), head units.
        opening: ``(sx, sy, y0)``: the face opening is the ellipse ``(qx/sx)² + ((qy−y0)/sy)² < 1`` on the
            front of the shell.
        nape: hair only where ``qy < nape`` (lower = longer hair at the back and sides).
        drape: length (head units) of long hair falling behind the neck; 0 for none.
        covers_ears: ears are drawn behind the hair.
    """

    name: str
    thickness: tuple[float, float, float]
    lift: float
    opening: tuple[float, float, float]
    nape: float
    drape: float = 0.0
    covers_ears: bool = False


HAIR_STYLES: tuple[HairStyle, ...] = (
    HairStyle("bald", (0.0, 0.0, 0.0), 0.0, (1.0, 1.0, 0.0), -2.0),
    HairStyle("buzz", (0.025, 0.025, 0.025), 0.0, (0.80, 0.86, 0.25), 0.30),
    HairStyle("short", (0.07, 0.10, 0.07), 0.06, (0.76, 0.80, 0.28), 0.36),
    HairStyle("fringe", (0.08, 0.11, 0.08), 0.07, (0.74, 0.66, 0.42), 0.40),
    HairStyle("bob", (0.13, 0.12, 0.10), 0.08, (0.62, 0.78, 0.30), 0.80, 0.0, True),
    HairStyle("long", (0.10, 0.10, 0.09), 0.06, (0.64, 0.80, 0.28), 0.85, 1.6, True),
    HairStyle("curly", (0.22, 0.20, 0.18), 0.16, (0.70, 0.74, 0.32), 0.45),
)


# ----------------------------------------------------------------------------------------- helpers
def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation ``R = Rz(roll) · Ry(yaw) · Rx(pitch)`` (degrees) in the camera frame.

    Positive yaw turns the face towards the image right, positive pitch looks up, positive roll tilts the
    head clockwise in the image (y points down).

    Returns:
        ``(3, 3)`` float64 rotation matrix.
    """
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    cy, sy, cp, sp, cr, sr = math.cos(y), math.sin(y), math.cos(p), math.sin(p), math.cos(r), math.sin(r)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _chaikin(points: np.ndarray, iterations: int = 1) -> np.ndarray:
    """Corner-cutting smoothing of a closed polygon ``(N, D)`` → ``(N·2^k, D)``."""
    for _ in range(iterations):
        nxt = np.concatenate([points[1:], points[:1]])
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], 1)
        points = points.reshape(-1, points.shape[-1])
    return points


def _clip_visible(points: np.ndarray, f: np.ndarray) -> list[tuple[float, float]]:
    """Keep the part of the closed polygon ``points (N, 2)`` where the per-vertex value ``f > 0``.

    ``f`` is the camera-facing component of the surface normal; crossings are linearly interpolated.
    """
    if f.min() > 0:
        return [tuple(p) for p in points.tolist()]
    if f.max() <= 0:
        return []
    pts = points.tolist()
    fv = f.tolist()
    out = []
    n = len(pts)
    for i in range(n):
        j = (i + 1) % n
        a, b, fa, fb = pts[i], pts[j], fv[i], fv[j]
        if fa > 0:
            out.append((a[0], a[1]))
        if (fa > 0) != (fb > 0):
            t = fa / (fa - fb)
            out.append((a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])))
    return out


def _inside_convex(subject: list, clip: list) -> bool:
    """Whether every vertex of ``subject`` lies inside the convex polygon ``clip`` (either orientation)."""
    n = len(clip)
    edges = []
    for j in range(n):
        (cx, cy), (nx, ny) = clip[j], clip[(j + 1) % n]
        edges.append((cx, cy, nx - cx, ny - cy))
    pos = neg = True
    for sx, sy in subject:
        for cx, cy, ex, ey in edges:
            d = ex * (sy - cy) - ey * (sx - cx)        # cross product of the edge and the vertex
            if not d > 0:
                pos = False
            if not d < 0:
                neg = False
            if not (pos or neg):
                return False
    return True


def _clip_convex(subject: list, clip: list) -> list:
    """Sutherland–Hodgman: the part of polygon ``subject`` inside the convex polygon ``clip``."""
    if len(clip) < 3 or len(subject) < 3:
        return []
    if _inside_convex(subject, clip):
        return subject
    area = sum(clip[i][0] * clip[i - 1][1] - clip[i - 1][0] * clip[i][1] for i in range(len(clip)))
    sign = 1.0 if area < 0 else -1.0
    out = subject
    for i in range(len(clip)):
        (x1, y1), (x2, y2) = clip[i - 1], clip[i]
        ex, ey = x2 - x1, y2 - y1
        inp, out = out, []
        if not inp:
            break
        px, py = inp[-1]
        dprev = sign * (ex * (py - y1) - ey * (px - x1))
        for cur in inp:
            cx, cy = cur
            dcur = sign * (ex * (cy - y1) - ey * (cx - x1))
            if dcur >= 0:
                if dprev < 0:
                    t = dprev / (dprev - dcur)
                    out.append((px + t * (cx - px), py + t * (cy - py)))
                out.append(cur)
            elif dprev >= 0:
                t = dprev / (dprev - dcur)
                out.append((px + t * (cx - px), py + t * (cy - py)))
            px, py, dprev = cx, cy, dcur
    return out


def _hull(points: np.ndarray) -> list[tuple[float, float]]:
    """2D convex hull (Andrew's monotone chain) of ``(N, 2)`` points, counter-clockwise."""
    pts = sorted(map(tuple, points.tolist()))

    def half(seq):
        h = []
        for p in seq:
            while len(h) >= 2 and ((h[-1][0] - h[-2][0]) * (p[1] - h[-2][1])
                                   - (h[-1][1] - h[-2][1]) * (p[0] - h[-2][0])) <= 0:
                h.pop()
            h.append(p)
        return h

    lower, upper = half(pts), half(reversed(pts))
    return lower[:-1] + upper[:-1]


@cache
def _circle(n: int) -> tuple[np.ndarray, np.ndarray]:
    angles = [2 * math.pi * i / n for i in range(n)]
    return np.array([math.cos(a) for a in angles]), np.array([math.sin(a) for a in angles])


def _ellipse3d(centre, u, v, n: int) -> np.ndarray:
    """``n`` points of the 3D ellipse ``centre + cos(t)·u + sin(t)·v``."""
    c, s = _circle(n)
    return np.asarray(centre)[None] + c[:, None] * np.asarray(u)[None] + s[:, None] * np.asarray(v)[None]


# ---------------------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned ellipsoid ``Σ ((p − centre) / axes)² = 1`` in the head frame."""

    centre: tuple[float, float, float]
    axes: tuple[float, float, float]


def _front_surface(x: np.ndarray, y: np.ndarray, ellipsoids) -> tuple[np.ndarray, np.ndarray]:
    """Depth ``z`` and unit normal of the front-most skin surface at head-frame ``(x, y)`` (vectorised)."""
    best_z = np.full(x.shape, -np.inf)
    normal = np.zeros(x.shape + (3,))
    for e in ellipsoids:
        (cx, cy, cz), (a, b, c) = e.centre, e.axes
        r = 1.0 - ((x - cx) / a) ** 2 - ((y - cy) / b) ** 2
        z = cz + c * np.sqrt(np.clip(r, 1e-4, None))
        better = z > best_z
        n = np.stack([(x - cx) / a**2, (y - cy) / b**2, (z - cz) / c**2], -1)
        normal = np.where(better[..., None], n, normal)
        best_z = np.where(better, z, best_z)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    return best_z, normal


def _slice_surface(y: np.ndarray, phi: np.ndarray, ellipsoids, z0: float = -0.3):
    """Point of the skin at height ``y`` seen from the vertical axis ``(0, y, z0)`` at azimuth ``phi``.

    Scalar float64 arithmetic per point (a few dozen points: faster than numpy, and the same IEEE operations).
    """
    sx_arr, sz_arr = np.sin(phi), np.cos(phi)
    ys, sxs, szs = y.tolist(), sx_arr.tolist(), sz_arr.tolist()
    best_t = [0.0] * len(ys)
    normal = [(0.0, 0.0, 0.0)] * len(ys)
    for e in ellipsoids:
        (cx, cy, cz), (a, b, c) = e.centre, e.axes
        aa, cc, a_2, b_2, c_2 = a * a, c * c, a**2, b**2, c**2
        ncx, dz, cx2 = -cx, z0 - cz, cx * cx
        dz2 = dz**2
        for i, (yi, sx, sz) in enumerate(zip(ys, sxs, szs)):
            r = (yi - cy) / b
            k = 1.0 - r * r
            if k < 1e-4:
                k = 1e-4
            a2, c2 = aa * k, cc * k
            qa = sx * sx / a2 + sz * sz / c2
            qb = 2 * (ncx * sx / a2 + dz * sz / c2)
            qc = cx2 / a2 + dz2 / c2 - 1
            disc = qb * qb - 4 * qa * qc
            if disc < 0:
                disc = 0.0
            t = (-qb + math.sqrt(disc)) / (2 * qa)
            if t > best_t[i]:
                best_t[i] = t
                normal[i] = ((t * sx - cx) / a_2, (yi - cy) / b_2, ((z0 + t * sz) - cz) / c_2)
    bt = np.array(best_t)
    pts = np.stack([bt * sx_arr, y, z0 + bt * sz_arr], -1)
    normal = np.array(normal)
    return pts, normal / np.linalg.norm(normal, axis=-1, keepdims=True)


@dataclass
class Geometry:
    """A face in the head frame (unrotated): named 3D point sets with their surface normals."""

    points: np.ndarray                 # (N, 3)
    normals: np.ndarray                # (N, 3) unit surface normals (for horizon clipping and shading)
    parts: dict[str, slice]            # name → rows of ``points``
    skin: tuple[Ellipsoid, Ellipsoid]  # cranium, jaw
    hair: Ellipsoid | None
    style: HairStyle
    mouth_open: float
    part_normals: np.ndarray           # (len(parts), 3) unit mean normal of each part

    def part(self, name: str) -> np.ndarray:
        return self.points[self.parts[name]]


# constants of build_geometry that depend on nothing
_JAW_TY = (TEMPLATE_2D[:17, 1] - TEMPLATE_2D[0, 1]) / (TEMPLATE_2D[8, 1] - TEMPLATE_2D[0, 1])
_JAW_PHI = np.radians(86.0) * (np.arange(17) - 8) / 8
_BLUSH_RING = {side: _ellipse3d([sgn * 0.52, 0.02, 0], [0.21, 0, 0], [0, 0.15, 0], 12)[:, :2]
               for side, sgn in (("l", -1), ("r", 1))}
_FACING = {n: np.tile([0.0, 0.0, 1.0], (n, 1)) for n in (6, 8, 12)}     # iris, pupil, glint normals
#: the parts whose points lie on the skin, after the 68 landmarks: (name, number of points)
_SKIN_PARTS = (("brow_l_low", 5), ("brow_r_low", 5), ("nose_wings", 4), ("shadow_l", 8), ("shadow_r", 8),
               ("blush_l", 12), ("blush_r", 12))
_MOUTH_CORNERS = [0, 6, 12, 16]                                          # 48, 54, 60, 64
_MOUTH_OPEN_W = {7: 0.5, 8: 0.85, 9: 1.0, 10: 0.85, 11: 0.5, 17: 0.85, 18: 1.0, 19: 0.85}


def _mean0(x: np.ndarray):
    """``x.mean(0)`` without its Python overhead (the same sum and division as numpy's ``mean``)."""
    return np.add.reduce(x, 0) / x.shape[0]


def _ellipse_terms(u, v, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``cos(t)·u`` and ``sin(t)·v`` terms of :func:`_ellipse3d` (add ``centre`` first, then these)."""
    c, s = _circle(n)
    return c[:, None] * np.asarray(u)[None], s[:, None] * np.asarray(v)[None]


class _IdentityGeometry:
    """Everything of :func:`build_geometry` that depends only on the shape coefficients and hair style."""

    def __init__(self, shape: tuple[float, ...], style: HairStyle):
        k = dict(zip(SHAPE_NAMES, shape))
        self.k = k
        fw, fl = 1 + 0.06 * k["face_width"], 1 + 0.06 * k["face_length"]
        hh = 1.22 * (1 + 0.05 * k["head_height"])
        cranium = Ellipsoid((0.0, -2.05 + hh, -0.42), (1.04 * fw, hh, 1.32))
        self.cranium = cranium
        self.jaw_axes = (0.80 * fw * (1 + 0.09 * k["jaw_width"]), 1.0 * fl, 0.78)
        self.chin_z = 0.02 + 0.05 * k["chin_depth"]

        # landmarks moved by the identity only (the expression moves them further in build_geometry)
        lm = TEMPLATE_2D.copy()
        for sgn, idx in ((-1, slice(36, 42)), (1, slice(42, 48))):
            eye = lm[idx]
            centre = eye.mean(0) + np.array([sgn * 0.05 * k["eye_spacing"], 0.0])
            lm[idx] = centre + (eye - eye.mean(0)) * (1 + 0.15 * k["eye_size"])
        lm[[36, 45], 1] -= 0.03 * k["eye_tilt"]
        lm[28:36, 1] += 0.07 * k["nose_length"] * np.array([0.33, 0.66, 1, 1, 1, 1, 1, 1])
        lm[31:36, 0] *= 1 + 0.2 * k["nose_width"]
        mouth = lm[48:68]
        mouth[:, 0] *= 1 + 0.12 * k["mouth_width"]
        lt = 1 + 0.3 * k["lip_thickness"]
        mouth[1:6, 1] = 0.54 - (0.54 - mouth[1:6, 1]) * lt                 # upper lip grows upwards
        mouth[7:12, 1] = 0.54 + (mouth[7:12, 1] - 0.54) * lt
        self.lm = lm

        nh = 1 + 0.25 * k["nose_height"]
        self.nh = nh
        relief = np.zeros(68)
        relief[17:27] = 0.02
        relief[27:31] = np.array([0.03, 0.10, 0.18, 0.30]) * nh
        relief[31:36] = np.array([0.06, 0.12, 0.16, 0.12, 0.06]) * nh
        relief[36:48] = -0.03
        relief[[36, 39, 42, 45]] = -0.05
        relief[48:60] = 0.06
        relief[[50, 51, 52, 56, 57, 58]] = 0.085
        relief[60:68] = 0.04
        # z offsets of the skin points: the landmarks' relief, then each part's lift (see _SKIN_PARTS)
        lifts = {"brow_l_low": 0.02, "brow_r_low": 0.02, "nose_wings": 0.06 * nh, "shadow_l": 0.0, "shadow_r": 0.0,
                 "blush_l": 0.005, "blush_r": 0.005}
        self.lifts = np.concatenate([relief] + [np.full(n, lifts[name]) for name, n in _SKIN_PARTS])

        # brows: lower edge below the landmark (upper) edge, thinner at the tail
        th = 0.055 * (1 + 0.4 * k["brow_thickness"]) * np.array([0.45, 0.85, 1.0, 1.0, 0.9])
        self.brow_offset = (np.stack([np.zeros(5), th], 1), np.stack([np.zeros(5), th[::-1]], 1))
        # nose wings and sides (the landmarks 28 and 33 do not move with the expression)
        nw = 1 + 0.2 * k["nose_width"]
        base_y = lm[33, 1]
        self.nose_wings = np.array([[-0.22 * nw, base_y - 0.12], [0.22 * nw, base_y - 0.12],
                                    [-0.11 * nw, lm[28, 1]], [0.11 * nw, lm[28, 1]]])
        eye_r = 0.072 * (1 + 0.15 * k["eye_size"])
        self.eye_terms = (_ellipse_terms([eye_r, 0, 0], [0, eye_r, 0], 12),
                          _ellipse_terms([eye_r * 0.45, 0, 0], [0, eye_r * 0.45, 0], 8),
                          _ellipse_terms([eye_r * 0.22, 0, 0], [0, eye_r * 0.22, 0], 6))

        # ears: an ellipse in a plane tilted back from the side of the head
        tail: dict[str, tuple[np.ndarray, np.ndarray]] = {}      # name → (points, normals), after the teeth
        es = 1 + 0.15 * k["ear_size"]
        for side, sgn in (("l", -1), ("r", 1)):
            y_c, z_c = -0.30, -0.50
            kk = (1 - ((y_c - cranium.centre[1]) / cranium.axes[1]) ** 2
                  - ((z_c - cranium.centre[2]) / cranium.axes[2]) ** 2)
            x_c = sgn * cranium.axes[0] * math.sqrt(max(kk, 0.05))
            h = np.array([sgn * 0.45, 0, -0.89])
            n = np.array([sgn * 0.89, 0, 0.45])
            centre = np.array([x_c, y_c, z_c]) + 0.17 * es * h
            ear = _ellipse3d(centre, 0.19 * es * h, [0, 0.36 * es, 0], 14)
            concha = _ellipse3d(centre - 0.03 * h + [0, 0.06, 0] + 0.01 * n, 0.09 * es * h, [0, 0.16 * es, 0], 10)
            # the ear is seen when the head surface it grows from faces the camera (else the head hides it)
            root = np.array([x_c / cranium.axes[0] ** 2, 0.0, (z_c - cranium.centre[2]) / cranium.axes[2] ** 2])
            root /= np.linalg.norm(root)
            tail[f"ear_{side}"] = (ear, np.tile(root, (14, 1)))
            tail[f"concha_{side}"] = (concha, np.tile(n, (10, 1)))
        # long hair falling behind the neck (a box whose projected hull is drawn)
        if style.drape > 0:
            w = cranium.axes[0] * (1 + style.thickness[0])
            rings = [(-0.9, 0.95), (0.2, 1.0), (0.7 + style.drape, 1.15)]     # (height, width factor)
            drape = np.concatenate([_ellipse3d([0.0, y, -0.95], [w * f, 0, 0], [0, 0, 0.62], 10)
                                    for y, f in rings])
            tail["drape"] = (drape, np.tile([0.0, 0.0, -1.0], (len(drape), 1)))
        self.tail = tail
        self.tail_means = {name: n.mean(0) for name, (_, n) in tail.items()}
        self.hair = None
        if style.thickness[0] > 0:
            t = style.thickness
            self.hair = Ellipsoid((0.0, cranium.centre[1] - style.lift, cranium.centre[2] - 0.02),
                                  tuple(a * (1 + ti) for a, ti in zip(cranium.axes, t)))


@lru_cache(maxsize=1024)
def _identity_geometry(shape: tuple[float, ...], style: HairStyle) -> _IdentityGeometry:
    return _IdentityGeometry(shape, style)


_FACING_MEAN = {n: f.mean(0) for n, f in _FACING.items()}


def build_geometry(shape, smile: float, mouth_open: float, brow_raise: float, eye_close: float,
                   style: HairStyle) -> Geometry:
    """3D face of an identity (``shape`` coefficients, see :data:`SHAPE_NAMES`) under an expression.

    What depends only on ``(shape, style)`` is computed once per identity (cached).

    Returns:
        :class:`Geometry` whose first 68 points are the iBUG-68 landmarks.
    """
    ig = _identity_geometry(tuple(float(v) for v in shape), style)
    k, cranium = ig.k, ig.cranium
    jaw = Ellipsoid((0.0, 0.06 + 0.10 * mouth_open, ig.chin_z), ig.jaw_axes)
    skin = (cranium, jaw)

    lm = ig.lm.copy()
    # --- eyes
    lm[[40, 41, 46, 47], 1] -= 0.02 * smile
    for up, low in _LOWER_TO_UPPER.items():
        lm[up, 1] += (lm[low, 1] - lm[up, 1]) * 0.92 * eye_close
    # --- brows
    lm[17:27, 1] -= 0.05 * k["brow_height"] + 0.10 * brow_raise
    lm[[19, 20, 21, 22, 23, 24], 1] -= 0.02 * brow_raise
    # --- mouth
    mouth = lm[48:68]
    corners = _MOUTH_CORNERS
    mouth[corners, 0] += np.array([-1, 1, -1, 1]) * 0.07 * smile
    mouth[corners, 1] -= 0.07 * smile
    mouth[[1, 11], 0] -= 0.03 * smile
    mouth[[5, 7], 0] += 0.03 * smile
    mouth[[1, 5, 7, 11], 1] -= 0.03 * smile
    for i, w in _MOUTH_OPEN_W.items():
        mouth[i, 1] += 0.30 * mouth_open * w
    mouth[corners, 1] += 0.05 * mouth_open
    mouth[[13, 14, 15], 1] -= 0.02 * mouth_open

    # --- points on the skin: the landmarks, then the parts of _SKIN_PARTS, in one vectorised call
    shadows = []
    for eye, brow in (([36, 37, 38, 39], [17, 18, 20, 21]), ([42, 43, 44, 45], [22, 23, 25, 26])):
        up = lm[eye] + 0.55 * (lm[brow] - lm[eye])       # eye shadow: up to 55% of the way to the brow
        shadows += [lm[eye], up[::-1]]
    xy = np.concatenate([lm, lm[17:22] + ig.brow_offset[0], lm[22:27] + ig.brow_offset[1], ig.nose_wings,
                         *shadows, _BLUSH_RING["l"], _BLUSH_RING["r"]])
    zz, surf_n = _front_surface(xy[:, 0], xy[:, 1], skin)
    surf = np.concatenate([xy, (zz + ig.lifts)[:, None]], 1)       # landmark relief, part lifts

    # --- jaw contour 0-16 on the surface (3D landmarks, like 300W-LP)
    top, bottom = -0.46, jaw.centre[1] + jaw.axes[1] - 0.07
    jy = top + _JAW_TY * (bottom - top)
    jaw_pts, jaw_n = _slice_surface(jy, _JAW_PHI, skin)
    surf[:17] = jaw_pts
    surf_n[:17] = jaw_n
    pts, nrm = surf[:68], surf_n[:68]

    parts = {"landmarks": slice(0, 68)}
    means = [_mean0(nrm)]
    start = 68
    for name, n in _SKIN_PARTS:
        parts[name] = slice(start, start + n)
        means.append(_mean0(surf_n[start:start + n]))
        start += n
    arrays, normals = [surf], [surf_n]

    def add(name, points, normal, mean=None):
        nonlocal start
        parts[name] = slice(start, start + len(points))
        start += len(points)
        arrays.append(points)
        normals.append(normal)
        means.append(_mean0(normal) if mean is None else mean)

    # iris discs
    for side, idx in (("l", slice(36, 42)), ("r", slice(42, 48))):
        c = _mean0(pts[idx]) + np.array([0, 0.004, 0.03])
        for g, centre, (cu, sv) in zip(("iris", "pupil", "glint"),
                                       (c, c + [0, 0, 0.002], c + [-0.025, -0.022, 0.004]), ig.eye_terms):
            add(f"{g}_{side}", centre[None] + cu + sv, _FACING[len(cu)], _FACING_MEAN[len(cu)])
    # teeth: the upper teeth fill the top of the open mouth
    if mouth_open > 0.04:
        upper_inner = pts[60:65]
        lower_inner = pts[[60, 67, 66, 65, 64]]
        edge = upper_inner + 0.42 * (lower_inner - upper_inner)
        add("teeth", np.concatenate([upper_inner, edge[::-1]]), np.concatenate([nrm[60:65], nrm[60:65]]))
    for name, (g, n) in ig.tail.items():             # ears, concha, drape
        add(name, g, n, ig.tail_means[name])

    part_normals = np.stack(means)
    part_normals /= np.linalg.norm(part_normals, axis=1, keepdims=True)
    return Geometry(np.concatenate(arrays), np.concatenate(normals), parts, skin, ig.hair, style,
                    float(mouth_open), part_normals)


# ---------------------------------------------------------------------------------------- ray-cast
class _Rays:
    """Orthographic rays through the pixel centres, expressed in the head frame.

    A pixel ``(u, v)`` (column, row) sees the head-frame points ``P0 + u·Pu + v·Pv + t·d``.
    """

    def __init__(self, rot: np.ndarray, camera: np.ndarray, size: int, window=None):
        inv = np.linalg.inv(np.vstack([camera, [0, 0, 1]]))[:2]          # pixel → rotated (x, y)
        rt = rot.T
        origin_cam = np.array([inv[0, 2], inv[1, 2], 10.0])                  # rotated frame, far in front
        self.p0 = rt @ (origin_cam - PIVOT) + PIVOT
        self.pu = rt @ np.array([inv[0, 0], inv[1, 0], 0.0])
        self.pv = rt @ np.array([inv[0, 1], inv[1, 1], 0.0])
        self.d = rt @ np.array([0.0, 0.0, -1.0])
        u0, u1, v0, v1 = window if window is not None else (0, size, 0, size)
        self.u = np.arange(u0, u1, dtype=np.float32)[None, :]
        self.v = np.arange(v0, v1, dtype=np.float32)[:, None]
        self.vu = self.v * self.u                                          # shared by every cast
        self.pixel = math.sqrt(abs(np.linalg.det(camera[:, :2])))          # pixels per head unit

    def cast(self, e: Ellipsoid, exit: bool = True):
        """Intersect with an ellipsoid.

        Args:
            e: the ellipsoid.
            exit: also compute the exit parameter (else ``t_out`` is ``None``).

        Returns:
            ``(cover, t_in, t_out, (q0, qu, qv, qd))``: anti-aliased coverage in [0, 1] (H, W) float32, entry
            and exit ray parameters, and the affine map to unit-sphere coordinates ``q``.
        """
        c, a = np.asarray(e.centre), np.asarray(e.axes)
        q0, qu, qv, qd = (self.p0 - c) / a, self.pu / a, self.pv / a, self.d / a
        aa = float(qd @ qd)
        u, v = self.u, self.v
        # every line below is one float32 operation (in place where possible; same order as the formulas)
        b = (2 * float(qd @ q0) + (2 * float(qd @ qv)) * v) + (2 * float(qd @ qu)) * u
        cu = u * (2 * float(q0 @ qu) + float(qu @ qu) * u)
        cv = (float(q0 @ q0) - 1) + v * (2 * float(q0 @ qv) + float(qv @ qv) * v)
        cc = cv + cu
        vu = self.vu * (2 * float(qu @ qv))
        cc += vu                                         # cc = (cv + cu) + 2 qu·qv · v u
        disc = b * b
        disc *= 0.25 / aa
        disc -= cc                                       # = 1 − E(u, v), 0 on the silhouette
        # distance to the silhouette ≈ r (1 − E) / 2 for a silhouette of radius r pixels
        radius = self.pixel * math.sqrt(math.prod(a) * math.sqrt(float(((self.d / a**2) * self.d).sum())))
        cover = disc * (0.5 * radius)
        cover += 0.5
        np.clip(cover, 0.0, 1.0, out=cover)
        root = np.maximum(disc, 0.0, out=cc)
        root *= 1.0 / aa
        np.sqrt(root, out=root)
        mid = b
        mid *= -0.5 / aa
        t_in = mid - root
        t_out = np.add(mid, root, out=root) if exit else None
        return cover, t_in, t_out, (q0, qu, qv, qd)

    def origin(self, q):
        """Unit-sphere coordinates of the ray points at ``t = 0`` (three ``(H, W)`` planes)."""
        q0, qu, qv, _ = q
        return [(float(q0[i]) + float(qv[i]) * self.v) + float(qu[i]) * self.u for i in range(3)]

    def at(self, t, q, origin=None):
        """Unit-sphere coordinates ``(qx, qy, qz)`` of the ray points at parameter ``t``.

        ``origin`` is :meth:`origin` ``(q)`` when already computed (it is not modified).
        """
        qd = q[3]
        out = []
        for i, p0 in enumerate(self.origin(q) if origin is None else origin):
            p = float(qd[i]) * t
            p += p0                                      # (q0 + qv·v + qu·u) + qd·t
            out.append(p)
        return out


def _lambert(q, axes, light_head, ambient: float, diffuse: float, half=None):
    """``ambient + diffuse · max(0, n·l)`` with the ellipsoid normal ``n ∝ q / axes``.

    With a ``half`` vector (light + view), adds a Blinn highlight ``0.3 · max(0, n·h)^16`` (for hair).
    """
    ax, ay, az = axes
    nx, ny, nz = q[0] * (1 / ax), q[1] * (1 / ay), q[2] * (1 / az)
    tmp = np.empty_like(nx)
    inv = nx * nx
    inv += np.multiply(ny, ny, out=tmp)
    inv += np.multiply(nz, nz, out=tmp)
    np.sqrt(inv, out=inv)
    np.maximum(inv, 1e-6, out=inv)
    np.divide(1.0, inv, out=inv)

    def dot(vec):                                        # (nx·v0 + ny·v1 + nz·v2) · inv
        d = nx * float(vec[0])
        d += np.multiply(ny, float(vec[1]), out=tmp)
        d += np.multiply(nz, float(vec[2]), out=tmp)
        d *= inv
        return d

    shade = dot(light_head)
    np.maximum(shade, 0.0, out=shade)
    shade *= diffuse
    shade += ambient
    if half is not None:
        spec = dot(half)
        np.maximum(spec, 0.0, out=spec)
        for _ in range(4):
            spec *= spec
        spec *= 0.3
        shade += spec
    return shade


def _cap(q, style: HairStyle, sharp: float):
    """Soft membership (0..1) of unit-sphere points ``q`` in the hair cap of ``style``."""
    sx, sy, y0 = style.opening
    qx, qy, qz = q
    ex = qx * (1 / sx)
    ey = qy - y0
    ey *= 1 / sy
    outside = ex * ex
    outside += np.multiply(ey, ey, out=ey)
    outside -= 1
    np.negative(qz, out=ex)
    np.maximum(ex, 0.0, out=ex)
    ex *= 4
    outside += ex                                        # ex² + ey² − 1 + 4 max(−qz, 0)
    outside *= 0.7
    above = np.subtract(style.nape, qy, out=ey)
    above *= 2.5
    np.minimum(outside, above, out=outside)
    outside *= sharp
    outside += 0.5
    return np.clip(outside, 0.0, 1.0, out=outside)


# ----------------------------------------------------------------------------------------- drawing
class _Canvas:
    """An RGB image drawn at ``ss``× (anti-aliased by box-downsampling) and a label map drawn at 1×."""

    def __init__(self, size: int, ss: int):
        self.size, self.ss = size, ss
        self.off = (ss - 1) / 2.0
        self.image: Image.Image | None = None
        self.mask: Image.Image | None = None

    def begin(self, rgb: np.ndarray, labels: np.ndarray | None = None):
        """Start a layer over the 1× ``rgb (S, S, 3) uint8`` and ``labels (S, S) uint8`` (``None``: all 0)."""
        img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
        if img.size[0] != self.size * self.ss:
            img = img.resize((self.size * self.ss,) * 2, Image.NEAREST)
        self.image = img
        self.mask = Image.new("L", (self.size,) * 2, 0) if labels is None else Image.fromarray(labels)
        # (a blending draw also for opaque fills: PIL rasterises blended polygons' edges differently)
        self.draw = ImageDraw.Draw(self.image, "RGBA")
        self.mdraw = ImageDraw.Draw(self.mask)

    def end(self) -> tuple[np.ndarray, np.ndarray]:
        img = self.image.reduce(self.ss) if self.ss > 1 else self.image
        return np.asarray(img), np.asarray(self.mask)

    def poly(self, pts, colour, label: int | None = None, alpha: float | None = None):
        """Fill a polygon given in 1× pixel coordinates (``label`` also goes into the mask)."""
        if len(pts) < 3:
            return
        s, o = self.ss, self.off
        big = [(x * s + o, y * s + o) for x, y in pts]
        fill = tuple(int(c) for c in colour)
        if alpha is not None:
            fill = fill + (int(round(255 * min(max(alpha, 0.0), 1.0))),)
        self.draw.polygon(big, fill=fill)
        if label is not None:
            self.mdraw.polygon(pts, fill=int(label))

    def line(self, pts, colour, width: float):
        if len(pts) < 2:
            return
        s, o = self.ss, self.off
        self.draw.line([(x * s + o, y * s + o) for x, y in pts], fill=tuple(int(c) for c in colour),
                       width=max(1, int(round(width * s))), joint="curve")


@lru_cache(maxsize=16)
def _ramp(size: int) -> np.ndarray:
    """``linspace(0, 1, size)`` as float32 ``(size, 1, 1)`` (the background gradient's weights)."""
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    ramp.setflags(write=False)
    return ramp


def _shade(normal_cam: np.ndarray, light: np.ndarray, ambient: float, diffuse: float) -> float:
    return ambient + diffuse * max(0.0, float(normal_cam @ light))


def _rgb(colour, factor, tint) -> tuple[int, int, int]:
    (c0, c1, c2), (t0, t1, t2) = colour, tint
    return (int(min(255.0, max(0.0, c0 * factor * t0))), int(min(255.0, max(0.0, c1 * factor * t1))),
            int(min(255.0, max(0.0, c2 * factor * t2))))


def light_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector towards the light in the camera frame.

    Args:
        azimuth: degrees, > 0 lights from the image right.
        elevation: degrees, > 0 lights from above.

    Returns:
        ``(3,)`` float64 unit vector (x right, y down, z towards the camera).
    """
    a, e = math.radians(azimuth), math.radians(elevation)
    return np.array([math.sin(a) * math.cos(e), -math.sin(e), math.cos(a) * math.cos(e)])


def draw_face(geom: Geometry, params, size: int, camera: np.ndarray, supersample: int = 2):
    """Render a posed :class:`Geometry` with the colours, lighting and makeup of ``params``.

    Args:
        geom: the face geometry (from :func:`build_geometry`).
        params: a :class:`facezoo.data.synthetic.FaceParams`.
        size: output side in pixels.
        camera: ``(2, 3)`` map from rotated head-frame ``(x, y)`` to pixel coordinates.
        supersample: polygon anti-aliasing factor (1 = none).

    Returns:
        ``(image (S, S, 3) uint8, mask (S, S) uint8 CelebAMask-HQ ids, landmarks (68, 2) float32)``.
    """
    ident, pose, lighting = params.identity, params.pose, params.lighting
    makeup, bg = params.makeup, params.background
    rot = rotation_matrix(pose.yaw, pose.pitch, pose.roll)
    cam = np.asarray(camera, np.float64)
    # --- project everything
    world = (geom.points - PIVOT) @ rot.T + PIVOT
    px = world[:, :2] @ cam[:, :2].T + cam[:, 2]
    depth = world[:, 2]
    ncam = geom.normals @ rot.T
    facing = ncam[:, 2]
    light = light_direction(lighting.azimuth, lighting.elevation)
    amb, dif, tint = lighting.ambient, lighting.diffuse, lighting.tint
    P = {name: px[sl] for name, sl in geom.parts.items()}
    F = {name: facing[sl] for name, sl in geom.parts.items()}
    lm = P["landmarks"]
    skin = np.asarray(ident.skin, np.float64)
    face_skin = skin                                     # the face's skin: foundation tints it, ears and neck keep skin
    if makeup.foundation_strength > 0:
        face_skin = skin + (np.asarray(makeup.foundation_color, np.float64) - skin) * makeup.foundation_strength

    part_normals = geom.part_normals @ rot.T                     # mean normal of each part, camera frame
    part_index = {name: i for i, name in enumerate(geom.parts)}

    def part_shade(name):
        return _shade(part_normals[part_index[name]], light, amb, dif)

    canvas = _Canvas(size, supersample)
    # --- background layer: gradient, long hair, neck, clothes, hidden ears
    top, bottom = np.asarray(bg.top, np.float32), np.asarray(bg.bottom, np.float32)
    ramp = _ramp(size)
    column = np.ascontiguousarray((top + (bottom - top) * ramp + 0.5).astype(np.uint8))      # (S, 1, 3)
    canvas.begin(Image.fromarray(column).resize((size * supersample,) * 2, Image.NEAREST))
    hair_rgb = np.asarray(ident.hair_color, np.float64)
    if "drape" in P:
        canvas.poly(_hull(P["drape"]), _rgb(hair_rgb, 0.75 * amb + 0.3 * dif, tint), LABEL["hair"])
    neck_w = 0.50 * (1 + 0.06 * ident.shape[0])
    neck = np.array([[-neck_w, 0.2, -0.45], [neck_w, 0.2, -0.45], [neck_w * 1.1, 2.3, -0.45],
                     [neck_w * 1.7, 3.0, -0.45], [-neck_w * 1.7, 3.0, -0.45], [-neck_w * 1.1, 2.3, -0.45]])
    to_px = lambda p: p[:, :2] @ cam[:, :2].T + cam[:, 2]  # noqa: E731  (world-fixed body)
    neck_shade = 0.8 * (amb + dif * max(0.0, float(light[2]) * 0.8 + 0.2 * float(-light[1])))
    canvas.poly([tuple(p) for p in to_px(neck).tolist()], _rgb(skin, neck_shade, tint), LABEL["neck"])
    cloth = np.array([[-3.0, 2.15, 0], [-neck_w * 1.15, 1.85, 0], [0, 2.25, 0], [neck_w * 1.15, 1.85, 0],
                      [3.0, 2.15, 0], [3.0, 6.0, 0], [-3.0, 6.0, 0]])
    canvas.poly([tuple(p) for p in to_px(cloth).tolist()], _rgb(bg.cloth, amb + 0.5 * dif, tint),
                LABEL["cloth"])
    ears_front = []
    for side in ("l", "r"):
        name = f"ear_{side}"
        if geom.style.covers_ears or F[name][0] < 0.05:
            _draw_ear(canvas, P, F, side, skin, part_shade(name), tint)
        else:
            ears_front.append(side)
    base, base_labels = canvas.end()

    # --- ray-cast head: back hair, skin, front hair
    # only the pixels inside the bounding box of the quadrics' silhouettes need rays
    lo, hi = np.full(2, np.inf), np.full(2, -np.inf)
    for e in geom.skin + ((geom.hair,) if geom.hair is not None else ()):
        m = cam[:, :2] @ (rot * np.asarray(e.axes)[None, :])[:2]              # unit ball → pixels
        c = cam[:, :2] @ ((rot @ (np.asarray(e.centre) - PIVOT) + PIVOT)[:2]) + cam[:, 2]
        r = np.sqrt((m * m).sum(1))
        lo, hi = np.minimum(lo, c - r), np.maximum(hi, c + r)
    u0, v0 = (int(max(0, math.floor(x) - 2)) for x in lo)
    u1, v1 = (int(min(size, math.ceil(x) + 3)) for x in hi)
    win = (slice(v0, v1), slice(u0, u1))
    rays = _Rays(rot, cam, size, (u0, u1, v0, v1))
    light_head = rot.T @ light
    half_head = rot.T @ ((light + [0.0, 0.0, 1.0]) / np.linalg.norm(light + [0.0, 0.0, 1.0]))
    # colours are processed channel-planar, (3, h, w): broadcasting over a last axis of 3 is slow in numpy
    col = np.empty((3, v1 - v0, u1 - u0), np.float32)
    for i in range(3):
        col[i] = base[v0:v1, u0:u1, i]
    labels = base_labels[win].copy()
    cran, jaw = geom.skin
    cov_c, tin_c, _, qc = rays.cast(cran, exit=False)
    cov_j, tin_j, _, qj = rays.cast(jaw, exit=False)
    shade_c = _lambert(rays.at(tin_c, qc), cran.axes, light_head, amb, dif)
    shade_j = _lambert(rays.at(tin_j, qj), jaw.axes, light_head, amb, dif)
    # soft union: blend the two shadings where the surfaces are within ~0.12 units (no crease)
    # w_jaw = clip(((t_c + (1 − cov_c)·100) − (t_j + (1 − cov_j)·100))·4 + 0.5, 0, 1), one op a line
    w_jaw = np.subtract(1, cov_c)
    w_jaw *= 100
    w_jaw += tin_c
    far_j = np.subtract(1, cov_j)
    far_j *= 100
    far_j += tin_j
    w_jaw -= far_j
    w_jaw *= 4.0
    w_jaw += 0.5
    np.clip(w_jaw, 0.0, 1.0, out=w_jaw)
    shade = np.subtract(shade_j, shade_c, out=shade_j)
    shade *= w_jaw
    shade += shade_c                                         # shade_c + (shade_j − shade_c)·w_jaw
    cover = np.maximum(cov_c, cov_j, out=cov_c)
    skin_tint = (face_skin * np.asarray(tint)).astype(np.float32)[:, None, None]
    hair_tint = (hair_rgb * np.asarray(tint)).astype(np.float32)[:, None, None]
    tmp = np.empty_like(col)
    if geom.hair is not None:
        cov_h, tin_h, tout_h, qh = rays.cast(geom.hair)
        sharp = rays.pixel * 0.3
        origin_h = rays.origin(qh)
        q_out = rays.at(tout_h, qh, origin_h)
        back = _cap(q_out, geom.style, sharp)
        back *= cov_h
        back_col = hair_tint * (0.55 * amb)
        np.subtract(back_col, col, out=tmp)
        tmp *= back
        col += tmp                                           # col += (back_col − col)·back
        np.putmask(labels, back >= 0.5, LABEL["hair"])
    np.multiply(skin_tint, shade, out=tmp)
    tmp -= col
    tmp *= cover
    col += tmp                                               # col += (skin·shade − col)·cover
    np.putmask(labels, cover >= 0.5, LABEL["skin"])
    if geom.hair is not None:
        q_in = rays.at(tin_h, qh, origin_h)
        front = _cap(q_in, geom.style, sharp)
        front *= cov_h
        hshade = _lambert(q_in, geom.hair.axes, light_head, amb, dif * 1.1, half_head)
        np.multiply(hair_tint, hshade, out=tmp)
        tmp -= col
        tmp *= front
        col += tmp                                           # col += (hair·hshade − col)·front
        np.putmask(labels, front >= 0.5, LABEL["hair"])
    head_rgb, head_labels = base.copy(), base_labels.copy()
    col += 0.5
    np.clip(col, 0, 255, out=col)
    col8 = col.astype(np.uint8)
    for i in range(3):
        head_rgb[v0:v1, u0:u1, i] = col8[i]
    head_labels[win] = labels

    # --- facial parts, far to near
    canvas.begin(head_rgb, head_labels)
    for side in ears_front:
        _draw_ear(canvas, P, F, side, skin, part_shade(f"ear_{side}"), tint)
    # makeup painted on the skin only (not on hair or ears; the mask stays skin)
    painted = makeup.blush_strength > 0 or makeup.shadow_strength > 0
    if painted:
        unpainted = canvas.image.copy()
    if makeup.blush_strength > 0:
        for side in ("l", "r"):
            ring, f = P[f"blush_{side}"], F[f"blush_{side}"]
            c = _mean0(ring)
            for scale, a in ((1.0, 0.18), (0.72, 0.22), (0.45, 0.25)):
                pts = _clip_visible(c + (ring - c) * scale, f)
                canvas.poly(pts, _rgb(makeup.blush_color, part_shade(f"blush_{side}"), tint), None,
                            a * makeup.blush_strength)
    if makeup.shadow_strength > 0:
        for side in ("l", "r"):
            pts2, f = P[f"shadow_{side}"], F[f"shadow_{side}"]
            low = _mean0(pts2[:4])
            sh = part_shade(f"shadow_{side}")
            for scale, a in ((1.0, 0.35), (0.65, 0.35)):
                q = pts2.copy()
                q[4:] = low + (q[4:] - low) * scale
                qf = _chaikin(np.concatenate([q, f[:, None]], 1), 1)       # outline and facing together
                canvas.poly(_clip_visible(qf[:, :2], qf[:, 2]),
                            _rgb(makeup.shadow_color, sh, tint), None, a * makeup.shadow_strength)

    if painted:
        not_skin = Image.fromarray((head_labels != LABEL["skin"]).astype(np.uint8) * 255)
        if supersample > 1:
            not_skin = not_skin.resize(canvas.image.size, Image.NEAREST)
        canvas.image.paste(unpainted, (0, 0), not_skin)

    parts = []
    for side, brow in (("l", slice(17, 22)), ("r", slice(22, 27))):
        parts.append((_mean0(depth[brow]), "brow", side))
    for side, eye in (("l", slice(36, 42)), ("r", slice(42, 48))):
        parts.append((_mean0(depth[eye]), "eye", side))
    parts.append((_mean0(depth[48:68]), "mouth", ""))
    parts.append((_mean0(depth[27:36]), "nose", ""))
    parts.sort(key=lambda p: p[0])
    fl = F["landmarks"]
    for _, kind, side in parts:
        if kind == "brow":
            sl = slice(17, 22) if side == "l" else slice(22, 27)
            low = "brow_l_low" if side == "l" else "brow_r_low"
            poly = np.concatenate([lm[sl], P[low][::-1]])
            f = np.concatenate([fl[sl], F[low][::-1]])
            canvas.poly(_clip_visible(poly, f), _rgb(ident.brow_color, amb + 0.6 * dif, tint),
                        LABEL[f"{side}_brow"])
        elif kind == "eye":
            _draw_eye(canvas, geom, P, F, lm, fl, side, ident, makeup, part_shade, tint)
        elif kind == "mouth":
            _draw_mouth(canvas, geom, P, lm, fl, ident, makeup, ncam, light, amb, dif, tint)
        else:
            _draw_nose(canvas, geom, lm, px, world, face_skin, light, amb, dif, tint, rot)
    image, mask = canvas.end()
    return image, mask, lm.astype(np.float32)


def _draw_ear(canvas, P, F, side, skin, shade, tint):
    canvas.poly([tuple(p) for p in P[f"ear_{side}"].tolist()], _rgb(skin, shade * 0.97, tint),
                LABEL[f"{side}_ear"])
    if F[f"concha_{side}"][0] > 0.0:
        canvas.poly([tuple(p) for p in P[f"concha_{side}"].tolist()], _rgb(skin, shade * 0.72, tint))


def _draw_eye(canvas, geom, P, F, lm, fl, side, ident, makeup, part_shade, tint):
    sl = slice(36, 42) if side == "l" else slice(42, 48)
    pf = _chaikin(np.concatenate([lm[sl], fl[sl][:, None]], 1), 1)     # outline and facing together
    opening, f = pf[:, :2], pf[:, 2]
    eye = _clip_visible(opening, f)
    if len(eye) < 3:
        return
    sh = part_shade(f"iris_{side}") * 0.5 + 0.5 * part_shade(f"shadow_{side}")
    canvas.poly(eye, _rgb((236, 232, 226), min(sh, 1.0), tint), LABEL[f"{side}_eye"])
    for name, colour in (("iris", ident.eye_color), ("pupil", (18, 14, 12)), ("glint", (250, 250, 250))):
        pts = _clip_convex([tuple(p) for p in P[f"{name}_{side}"].tolist()], eye)
        canvas.poly(pts, _rgb(colour, 1.0 if name == "glint" else sh, tint))
    # upper lid line (lashes), thicker with eye-liner-like shadow makeup
    upper = lm[[36, 37, 38, 39]] if side == "l" else lm[[42, 43, 44, 45]]
    fu = fl[[36, 37, 38, 39]] if side == "l" else fl[[42, 43, 44, 45]]
    vis = [tuple(p) for p, ok in zip(upper.tolist(), (fu > 0).tolist()) if ok]
    canvas.line(vis, (30, 22, 20), 0.9 + 0.8 * makeup.shadow_strength)


def _draw_mouth(canvas, geom, P, lm, fl, ident, makeup, ncam, light, amb, dif, tint):
    lip = np.asarray(ident.lip_color, np.float64)
    if makeup.lip_strength > 0:
        lip = lip + (np.asarray(makeup.lip_color, np.float64) - lip) * makeup.lip_strength
    n_up = _mean0(ncam[[50, 51, 52]])
    n_lo = _mean0(ncam[[56, 57, 58]])
    sh_up = _shade(n_up / np.linalg.norm(n_up), light, amb, dif) * 0.88
    sh_lo = _shade(n_lo / np.linalg.norm(n_lo), light, amb, dif) * 1.02
    inner = [60, 61, 62, 63, 64, 65, 66, 67]
    if geom.mouth_open > 0.04:
        pts = _clip_visible(lm[inner], fl[inner])
        canvas.poly(pts, _rgb((70, 22, 28), 1.0, tint), LABEL["mouth"])
        if "teeth" in P:
            teeth = _clip_convex([tuple(p) for p in P["teeth"].tolist()], pts) if len(pts) >= 3 else []
            canvas.poly(teeth, _rgb((238, 234, 222), min(1.0, amb + 0.5 * dif), tint), LABEL["mouth"])
    upper = [48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]
    lower = [54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64]
    canvas.poly(_clip_visible(lm[upper], fl[upper]), _rgb(lip, sh_up, tint), LABEL["u_lip"])
    canvas.poly(_clip_visible(lm[lower], fl[lower]), _rgb(lip, sh_lo, tint), LABEL["l_lip"])
    seam = [tuple(p) for p, ok in zip(lm[[60, 61, 62, 63, 64]].tolist(), (fl[[60, 61, 62, 63, 64]] > 0).tolist()) if ok]
    canvas.line(seam, _rgb(lip, 0.45, tint), 0.6)


def _draw_nose(canvas, geom, lm, px, world, skin, light, amb, dif, tint, rot):
    wl, wr, sl, sr = range(geom.parts["nose_wings"].start, geom.parts["nose_wings"].stop)
    faces = {
        "left": [27, 28, 29, 30, 32, 31, wl, sl],
        "right": [27, sr, wr, 35, 34, 30, 29, 28],
        "bottom": [31, 32, 33, 34, 35, 30],
    }
    head_centre = (np.array([0.0, 0.0, -0.3]) - PIVOT) @ rot.T + PIVOT
    polys = []
    for name, idx in faces.items():
        pts3 = world[idx]
        centre = _mean0(pts3)
        # Newell normal of the (non-planar) face, oriented away from the head centre
        nx = ny = nz = 0.0
        p = pts3.tolist()
        for (a0, a1, a2), (b0, b1, b2) in zip(p, p[1:] + p[:1]):
            nx += (a1 - b1) * (a2 + b2)
            ny += (a2 - b2) * (a0 + b0)
            nz += (a0 - b0) * (a1 + b1)
        nrm = np.array([nx, ny, nz])
        nrm /= max(np.linalg.norm(nrm), 1e-9)
        outward = centre - head_centre
        if nrm @ outward < 0:
            nrm = -nrm
        visible = nrm[2]
        soft = nrm + 1.2 * rot[:, 2]                 # soften the nose's facets towards the face direction
        nrm = soft / np.linalg.norm(soft)
        polys.append((centre[2], name, nrm, idx, visible))
    polys.sort(key=lambda p: p[0])
    for _, name, nrm, idx, visible in polys:
        if visible <= 0.02:
            continue
        sh = _shade(nrm, light, amb, dif)
        canvas.poly([tuple(p) for p in px[idx].tolist()], _rgb(skin, sh, tint), LABEL["nose"])
        if name == "bottom" and visible > 0.15:
            cs, sn = _circle(8)
            cs, sn = cs.tolist(), sn.tolist()
            for a, b in ((31, 32), (35, 34)):
                c = lm[a] * 0.45 + lm[b] * 0.55 + (lm[30] - lm[33]) * 0.18
                axis = (lm[b] - lm[a]) * 0.55
                perp = np.array([-axis[1], axis[0]]) * 0.45 * min(1.0, visible * 1.5)
                (c0, c1), (a0, a1), (p0, p1) = c.tolist(), axis.tolist(), perp.tolist()
                ring = [((c0 + ci * a0) + si * p0, (c1 + ci * a1) + si * p1) for ci, si in zip(cs, sn)]
                canvas.poly(ring, _rgb(skin, sh * 0.45, tint))


@cache
def mean_landmarks_frontal() -> np.ndarray:
    """The mean face's 68 landmarks at yaw 0, head units ``(68, 2)`` (for the default camera)."""
    geom = build_geometry(np.zeros(len(SHAPE_NAMES)), 0.0, 0.0, 0.0, 0.0, HAIR_STYLES[0])
    return geom.points[:68, :2].copy()
