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
from functools import cache

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
    c = np.asarray(clip)
    e = np.concatenate([c[1:], c[:1]]) - c
    s = np.asarray(subject)
    cross = e[None, :, 0] * (s[:, None, 1] - c[None, :, 1]) - e[None, :, 1] * (s[:, None, 0] - c[None, :, 0])
    return bool((cross > 0).all() or (cross < 0).all())


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
        prev = inp[-1]
        dprev = sign * (ex * (prev[1] - y1) - ey * (prev[0] - x1))
        for cur in inp:
            dcur = sign * (ex * (cur[1] - y1) - ey * (cur[0] - x1))
            if dcur >= 0:
                if dprev < 0:
                    t = dprev / (dprev - dcur)
                    out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
                out.append(cur)
            elif dprev >= 0:
                t = dprev / (dprev - dcur)
                out.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
            prev, dprev = cur, dcur
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
    """Point of the skin at height ``y`` seen from the vertical axis ``(0, y, z0)`` at azimuth ``phi``."""
    sx, sz = np.sin(phi), np.cos(phi)
    best_t = np.zeros(y.shape)
    normal = np.zeros(y.shape + (3,))
    for e in ellipsoids:
        (cx, cy, cz), (a, b, c) = e.centre, e.axes
        k = np.clip(1.0 - ((y - cy) / b) ** 2, 1e-4, None)
        a2, c2 = a * a * k, c * c * k
        qa = sx * sx / a2 + sz * sz / c2
        qb = 2 * ((-cx) * sx / a2 + (z0 - cz) * sz / c2)
        qc = cx * cx / a2 + (z0 - cz) ** 2 / c2 - 1
        t = (-qb + np.sqrt(np.clip(qb * qb - 4 * qa * qc, 0, None))) / (2 * qa)
        better = t > best_t
        p = np.stack([t * sx, y, z0 + t * sz], -1)
        n = np.stack([(p[:, 0] - cx) / a**2, (p[:, 1] - cy) / b**2, (p[:, 2] - cz) / c**2], -1)
        normal = np.where(better[:, None], n, normal)
        best_t = np.where(better, t, best_t)
    pts = np.stack([best_t * sx, y, z0 + best_t * sz], -1)
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


def build_geometry(shape, smile: float, mouth_open: float, brow_raise: float, eye_close: float,
                   style: HairStyle) -> Geometry:
    """3D face of an identity (``shape`` coefficients, see :data:`SHAPE_NAMES`) under an expression.

    Returns:
        :class:`Geometry` whose first 68 points are the iBUG-68 landmarks.
    """
    k = dict(zip(SHAPE_NAMES, (float(v) for v in shape)))
    fw, fl = 1 + 0.06 * k["face_width"], 1 + 0.06 * k["face_length"]
    hh = 1.22 * (1 + 0.05 * k["head_height"])
    cranium = Ellipsoid((0.0, -2.05 + hh, -0.42), (1.04 * fw, hh, 1.32))
    jaw_axes = (0.80 * fw * (1 + 0.09 * k["jaw_width"]), 1.0 * fl, 0.78)
    jaw = Ellipsoid((0.0, 0.06 + 0.10 * mouth_open, 0.02 + 0.05 * k["chin_depth"]), jaw_axes)
    skin = (cranium, jaw)

    lm = TEMPLATE_2D.copy()
    # --- eyes
    for sgn, idx in ((-1, slice(36, 42)), (1, slice(42, 48))):
        eye = lm[idx]
        centre = eye.mean(0) + np.array([sgn * 0.05 * k["eye_spacing"], 0.0])
        lm[idx] = centre + (eye - eye.mean(0)) * (1 + 0.15 * k["eye_size"])
    lm[[36, 45], 1] -= 0.03 * k["eye_tilt"]
    lm[[40, 41, 46, 47], 1] -= 0.02 * smile
    for up, low in _LOWER_TO_UPPER.items():
        lm[up, 1] += (lm[low, 1] - lm[up, 1]) * 0.92 * eye_close
    # --- brows
    lm[17:27, 1] -= 0.05 * k["brow_height"] + 0.10 * brow_raise
    lm[[19, 20, 21, 22, 23, 24], 1] -= 0.02 * brow_raise
    # --- nose
    lm[28:36, 1] += 0.07 * k["nose_length"] * np.array([0.33, 0.66, 1, 1, 1, 1, 1, 1])
    lm[31:36, 0] *= 1 + 0.2 * k["nose_width"]
    # --- mouth
    mouth = lm[48:68]
    mouth[:, 0] *= 1 + 0.12 * k["mouth_width"]
    lt = 1 + 0.3 * k["lip_thickness"]
    mouth[1:6, 1] = 0.54 - (0.54 - mouth[1:6, 1]) * lt                 # upper lip grows upwards
    mouth[7:12, 1] = 0.54 + (mouth[7:12, 1] - 0.54) * lt
    corners = [0, 6, 12, 16]                              # 48, 54, 60, 64
    mouth[corners, 0] += np.array([-1, 1, -1, 1]) * 0.07 * smile
    mouth[corners, 1] -= 0.07 * smile
    mouth[[1, 11], 0] -= 0.03 * smile
    mouth[[5, 7], 0] += 0.03 * smile
    mouth[[1, 5, 7, 11], 1] -= 0.03 * smile
    lower = {7: 0.5, 8: 0.85, 9: 1.0, 10: 0.85, 11: 0.5, 17: 0.85, 18: 1.0, 19: 0.85}
    for i, w in lower.items():
        mouth[i, 1] += 0.30 * mouth_open * w
    mouth[corners, 1] += 0.05 * mouth_open
    mouth[[13, 14, 15], 1] -= 0.02 * mouth_open
    lm[48:68] = mouth

    # --- depth of the landmarks from the surface, with per-part relief
    z, nrm = _front_surface(lm[:, 0], lm[:, 1], skin)
    nh = 1 + 0.25 * k["nose_height"]
    relief = np.zeros(68)
    relief[17:27] = 0.02
    relief[27:31] = np.array([0.03, 0.10, 0.18, 0.30]) * nh
    relief[31:36] = np.array([0.06, 0.12, 0.16, 0.12, 0.06]) * nh
    relief[36:48] = -0.03
    relief[[36, 39, 42, 45]] = -0.05
    relief[48:60] = 0.06
    relief[[50, 51, 52, 56, 57, 58]] = 0.085
    relief[60:68] = 0.04
    pts = np.concatenate([lm, (z + relief)[:, None]], 1)

    # --- jaw contour 0-16 on the surface (3D landmarks, like 300W-LP)
    top, bottom = -0.46, jaw.centre[1] + jaw.axes[1] - 0.07
    ty = (TEMPLATE_2D[:17, 1] - TEMPLATE_2D[0, 1]) / (TEMPLATE_2D[8, 1] - TEMPLATE_2D[0, 1])
    jy = top + ty * (bottom - top)
    phi = np.radians(86.0) * (np.arange(17) - 8) / 8
    jaw_pts, jaw_n = _slice_surface(jy, phi, skin)
    pts[:17] = jaw_pts
    nrm[:17] = jaw_n

    groups: dict[str, np.ndarray] = {}
    gnorm: dict[str, np.ndarray] = {}

    pending: list[tuple[str, np.ndarray, float]] = []

    def surface_points(name, xy, lift=0.0):          # resolved below in one vectorised call
        pending.append((name, np.asarray(xy, np.float64), lift))
        groups[name] = gnorm[name] = None

    # brows: lower edge below the landmark (upper) edge, thinner at the tail
    th = 0.055 * (1 + 0.4 * k["brow_thickness"]) * np.array([0.45, 0.85, 1.0, 1.0, 0.9])
    surface_points("brow_l_low", lm[17:22] + np.stack([np.zeros(5), th], 1), 0.02)
    surface_points("brow_r_low", lm[22:27] + np.stack([np.zeros(5), th[::-1]], 1), 0.02)
    # nose wings and sides
    nw = 1 + 0.2 * k["nose_width"]
    base_y = lm[33, 1]
    surface_points("nose_wings", np.array([[-0.22 * nw, base_y - 0.12], [0.22 * nw, base_y - 0.12],
                                           [-0.11 * nw, lm[28, 1]], [0.11 * nw, lm[28, 1]]]), 0.06 * nh)
    # eye shadow: from the upper lid up to 55% of the way to the brow
    for side, eye, brow in (("l", [36, 37, 38, 39], [17, 18, 20, 21]),
                            ("r", [42, 43, 44, 45], [22, 23, 25, 26])):
        up = lm[eye] + 0.55 * (np.array([lm[b] for b in brow]) - lm[eye])
        surface_points(f"shadow_{side}", np.concatenate([lm[eye], up[::-1]]), 0.0)
    # cheeks (blush) and iris discs
    for side, sgn in (("l", -1), ("r", 1)):
        ring = _ellipse3d([sgn * 0.52, 0.02, 0], [0.21, 0, 0], [0, 0.15, 0], 12)[:, :2]
        surface_points(f"blush_{side}", ring, 0.005)
    eye_r = 0.072 * (1 + 0.15 * k["eye_size"])
    for side, idx in (("l", slice(36, 42)), ("r", slice(42, 48))):
        c = pts[idx].mean(0) + np.array([0, 0.004, 0.03])
        groups[f"iris_{side}"] = _ellipse3d(c, [eye_r, 0, 0], [0, eye_r, 0], 12)
        groups[f"pupil_{side}"] = _ellipse3d(c + [0, 0, 0.002], [eye_r * 0.45, 0, 0], [0, eye_r * 0.45, 0], 8)
        groups[f"glint_{side}"] = _ellipse3d(c + [-0.025, -0.022, 0.004], [eye_r * 0.22, 0, 0],
                                             [0, eye_r * 0.22, 0], 6)
        for g in ("iris", "pupil", "glint"):
            gnorm[f"{g}_{side}"] = np.tile([0.0, 0.0, 1.0], (len(groups[f"{g}_{side}"]), 1))
    # teeth: the upper teeth fill the top of the open mouth
    if mouth_open > 0.04:
        upper_inner = pts[60:65]
        lower_inner = pts[[60, 67, 66, 65, 64]]
        edge = upper_inner + 0.42 * (lower_inner - upper_inner)
        groups["teeth"] = np.concatenate([upper_inner, edge[::-1]])
        gnorm["teeth"] = np.concatenate([nrm[60:65], nrm[60:65]])
    # ears: an ellipse in a plane tilted back from the side of the head
    es = 1 + 0.15 * k["ear_size"]
    for side, sgn in (("l", -1), ("r", 1)):
        y_c, z_c = -0.30, -0.50
        kk = (1 - ((y_c - cranium.centre[1]) / cranium.axes[1]) ** 2
              - ((z_c - cranium.centre[2]) / cranium.axes[2]) ** 2)
        x_c = sgn * cranium.axes[0] * math.sqrt(max(kk, 0.05))
        h = np.array([sgn * 0.45, 0, -0.89])
        n = np.array([sgn * 0.89, 0, 0.45])
        centre = np.array([x_c, y_c, z_c]) + 0.17 * es * h
        groups[f"ear_{side}"] = _ellipse3d(centre, 0.19 * es * h, [0, 0.36 * es, 0], 14)
        groups[f"concha_{side}"] = _ellipse3d(centre - 0.03 * h + [0, 0.06, 0] + 0.01 * n,
                                              0.09 * es * h, [0, 0.16 * es, 0], 10)
        # the ear is seen when the head surface it grows from faces the camera (else the head hides it)
        root = np.array([x_c / cranium.axes[0] ** 2, 0.0, (z_c - cranium.centre[2]) / cranium.axes[2] ** 2])
        root /= np.linalg.norm(root)
        gnorm[f"ear_{side}"] = np.tile(root, (14, 1))
        gnorm[f"concha_{side}"] = np.tile(n, (10, 1))
    # long hair falling behind the neck (a box whose projected hull is drawn)
    if style.drape > 0:
        w = cranium.axes[0] * (1 + style.thickness[0])
        rings = [(-0.9, 0.95), (0.2, 1.0), (0.7 + style.drape, 1.15)]     # (height, width factor)
        drape = np.concatenate([_ellipse3d([0.0, y, -0.95], [w * f, 0, 0], [0, 0, 0.62], 10)
                                for y, f in rings])
        groups["drape"] = drape
        gnorm["drape"] = np.tile([0.0, 0.0, -1.0], (len(drape), 1))
    xy = np.concatenate([p[1] for p in pending])
    zz, nn = _front_surface(xy[:, 0], xy[:, 1], skin)
    start = 0
    for name, g, lift in pending:
        stop = start + len(g)
        groups[name] = np.concatenate([g, (zz[start:stop] + lift)[:, None]], 1)
        gnorm[name] = nn[start:stop]
        start = stop

    names = ["landmarks"] + list(groups)
    arrays = [pts] + [groups[g] for g in groups]
    normals = [nrm] + [gnorm[g] for g in groups]
    parts, start = {}, 0
    for name, arr in zip(names, arrays):
        parts[name] = slice(start, start + len(arr))
        start += len(arr)
    hair = None
    if style.thickness[0] > 0:
        t = style.thickness
        hair = Ellipsoid((0.0, cranium.centre[1] - style.lift, cranium.centre[2] - 0.02),
                         tuple(a * (1 + ti) for a, ti in zip(cranium.axes, t)))
    part_normals = np.stack([n.mean(0) for n in normals])
    part_normals /= np.linalg.norm(part_normals, axis=1, keepdims=True)
    return Geometry(np.concatenate(arrays).astype(np.float64), np.concatenate(normals).astype(np.float64),
                    parts, skin, hair, style, float(mouth_open), part_normals)


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
        self.pixel = math.sqrt(abs(np.linalg.det(camera[:, :2])))          # pixels per head unit

    def cast(self, e: Ellipsoid):
        """Intersect with an ellipsoid.

        Returns:
            ``(cover, t_in, t_out, q0, qu, qv, qd)``: anti-aliased coverage in [0, 1] (S, S), entry and
            exit ray parameters, and the affine map to unit-sphere coordinates ``q``.
        """
        c, a = np.asarray(e.centre), np.asarray(e.axes)
        q0, qu, qv, qd = (self.p0 - c) / a, self.pu / a, self.pv / a, self.d / a
        aa = float(qd @ qd)
        u, v = self.u, self.v
        b = (2 * float(qd @ q0) + (2 * float(qd @ qv)) * v) + (2 * float(qd @ qu)) * u
        cu = u * (2 * float(q0 @ qu) + float(qu @ qu) * u)
        cv = (float(q0 @ q0) - 1) + v * (2 * float(q0 @ qv) + float(qv @ qv) * v)
        cc = (cv + cu) + (2 * float(qu @ qv)) * (v * u)
        disc = b * b * (0.25 / aa) - cc                  # = 1 − E(u, v), 0 on the silhouette
        # distance to the silhouette ≈ r (1 − E) / 2 for a silhouette of radius r pixels
        radius = self.pixel * math.sqrt(math.prod(a) * math.sqrt(float(((self.d / a**2) * self.d).sum())))
        cover = np.clip(disc * (0.5 * radius) + 0.5, 0.0, 1.0)
        root = np.sqrt(np.maximum(disc, 0.0) * (1.0 / aa))
        mid = b * (-0.5 / aa)
        return cover, mid - root, mid + root, (q0, qu, qv, qd)

    def at(self, t, q):
        """Unit-sphere coordinates ``(qx, qy, qz)`` of the ray points at parameter ``t``."""
        q0, qu, qv, qd = q
        return [(float(q0[i]) + float(qv[i]) * self.v) + float(qu[i]) * self.u + float(qd[i]) * t
                for i in range(3)]


def _lambert(q, axes, light_head, ambient: float, diffuse: float, half=None):
    """``ambient + diffuse · max(0, n·l)`` with the ellipsoid normal ``n ∝ q / axes``.

    With a ``half`` vector (light + view), adds a Blinn highlight ``0.3 · max(0, n·h)^16`` (for hair).
    """
    ax, ay, az = axes
    nx, ny, nz = q[0] * (1 / ax), q[1] * (1 / ay), q[2] * (1 / az)
    inv = 1.0 / np.maximum(np.sqrt(nx * nx + ny * ny + nz * nz), 1e-6)
    dot = (nx * float(light_head[0]) + ny * float(light_head[1]) + nz * float(light_head[2])) * inv
    shade = ambient + diffuse * np.maximum(dot, 0.0)
    if half is not None:
        spec = np.maximum((nx * float(half[0]) + ny * float(half[1]) + nz * float(half[2])) * inv, 0.0)
        for _ in range(4):
            spec = spec * spec
        shade = shade + 0.3 * spec
    return shade


def _cap(q, style: HairStyle, sharp: float):
    """Soft membership (0..1) of unit-sphere points ``q`` in the hair cap of ``style``."""
    sx, sy, y0 = style.opening
    qx, qy, qz = q
    ex = qx * (1 / sx)
    ey = (qy - y0) * (1 / sy)
    outside = ex * ex + ey * ey - 1 + 4 * np.maximum(-qz, 0.0)
    above = (style.nape - qy) * 2.5
    return np.clip(np.minimum(outside * 0.7, above) * sharp + 0.5, 0.0, 1.0)


# ----------------------------------------------------------------------------------------- drawing
class _Canvas:
    """An RGB image drawn at ``ss``× (anti-aliased by box-downsampling) and a label map drawn at 1×."""

    def __init__(self, size: int, ss: int):
        self.size, self.ss = size, ss
        self.off = (ss - 1) / 2.0
        self.image: Image.Image | None = None
        self.mask: Image.Image | None = None

    def begin(self, rgb: np.ndarray, labels: np.ndarray):
        """Start a layer over the 1× ``rgb (S, S, 3) uint8`` and ``labels (S, S) uint8``."""
        img = rgb if isinstance(rgb, Image.Image) else Image.fromarray(rgb)
        if img.size[0] != self.size * self.ss:
            img = img.resize((self.size * self.ss,) * 2, Image.NEAREST)
        self.image, self.mask = img, Image.fromarray(labels)
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


def _shade(normal_cam: np.ndarray, light: np.ndarray, ambient: float, diffuse: float) -> float:
    return ambient + diffuse * max(0.0, float(normal_cam @ light))


def _rgb(colour, factor, tint) -> tuple[int, int, int]:
    return tuple(int(min(255.0, max(0.0, c * factor * t))) for c, t in zip(colour, tint))


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

    part_normals = geom.part_normals @ rot.T                     # mean normal of each part, camera frame
    part_index = {name: i for i, name in enumerate(geom.parts)}

    def part_shade(name):
        return _shade(part_normals[part_index[name]], light, amb, dif)

    canvas = _Canvas(size, supersample)
    # --- background layer: gradient, long hair, neck, clothes, hidden ears
    top, bottom = np.asarray(bg.top, np.float32), np.asarray(bg.bottom, np.float32)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    column = np.ascontiguousarray((top + (bottom - top) * ramp + 0.5).astype(np.uint8))      # (S, 1, 3)
    canvas.begin(Image.fromarray(column).resize((size * supersample,) * 2, Image.NEAREST),
                 np.zeros((size, size), np.uint8))
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
    col = base[win].astype(np.float32)
    labels = base_labels[win].copy()
    cran, jaw = geom.skin
    cov_c, tin_c, _, qc = rays.cast(cran)
    cov_j, tin_j, _, qj = rays.cast(jaw)
    shade_c = _lambert(rays.at(tin_c, qc), cran.axes, light_head, amb, dif)
    shade_j = _lambert(rays.at(tin_j, qj), jaw.axes, light_head, amb, dif)
    # soft union: blend the two shadings where the surfaces are within ~0.12 units (no crease)
    w_jaw = np.clip(((tin_c + (1 - cov_c) * 100) - (tin_j + (1 - cov_j) * 100)) * 4.0 + 0.5, 0.0, 1.0)
    shade = shade_c + (shade_j - shade_c) * w_jaw
    cover = np.maximum(cov_c, cov_j)
    skin_tint = (skin * np.asarray(tint)).astype(np.float32)
    hair_tint = (hair_rgb * np.asarray(tint)).astype(np.float32)
    if geom.hair is not None:
        cov_h, tin_h, tout_h, qh = rays.cast(geom.hair)
        sharp = rays.pixel * 0.3
        q_out = rays.at(tout_h, qh)
        back = cov_h * _cap(q_out, geom.style, sharp)
        back_col = hair_tint * (0.55 * amb)
        col += (back_col - col) * back[..., None]
        labels[back >= 0.5] = LABEL["hair"]
    col += (skin_tint * shade[..., None] - col) * cover[..., None]
    labels[cover >= 0.5] = LABEL["skin"]
    if geom.hair is not None:
        q_in = rays.at(tin_h, qh)
        front = cov_h * _cap(q_in, geom.style, sharp)
        hshade = _lambert(q_in, geom.hair.axes, light_head, amb, dif * 1.1, half_head)
        col += (hair_tint * hshade[..., None] - col) * front[..., None]
        labels[front >= 0.5] = LABEL["hair"]
    head_rgb, head_labels = base.copy(), base_labels.copy()
    head_rgb[win] = np.clip(col + 0.5, 0, 255).astype(np.uint8)
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
            c = ring.mean(0)
            for scale, a in ((1.0, 0.18), (0.72, 0.22), (0.45, 0.25)):
                pts = _clip_visible(c + (ring - c) * scale, f)
                canvas.poly(pts, _rgb(makeup.blush_color, part_shade(f"blush_{side}"), tint), None,
                            a * makeup.blush_strength)
    if makeup.shadow_strength > 0:
        for side in ("l", "r"):
            pts2, f = P[f"shadow_{side}"], F[f"shadow_{side}"]
            low = pts2[:4].mean(0)
            sh = part_shade(f"shadow_{side}")
            for scale, a in ((1.0, 0.35), (0.65, 0.35)):
                q = pts2.copy()
                q[4:] = low + (q[4:] - low) * scale
                canvas.poly(_clip_visible(_chaikin(q, 1), _chaikin(f[:, None], 1)[:, 0]),
                            _rgb(makeup.shadow_color, sh, tint), None, a * makeup.shadow_strength)

    if painted:
        skin_px = Image.fromarray(((head_labels == LABEL["skin"]) * 255).astype(np.uint8))
        if supersample > 1:
            skin_px = skin_px.resize(canvas.image.size, Image.NEAREST)
        canvas.image.paste(unpainted, (0, 0), Image.eval(skin_px, lambda v: 255 - v))

    parts = []
    for side, brow in (("l", slice(17, 22)), ("r", slice(22, 27))):
        parts.append((depth[geom.parts["landmarks"]][brow].mean(), "brow", side))
    for side, eye in (("l", slice(36, 42)), ("r", slice(42, 48))):
        parts.append((depth[geom.parts["landmarks"]][eye].mean(), "eye", side))
    parts.append((depth[48:68].mean(), "mouth", ""))
    parts.append((depth[27:36].mean(), "nose", ""))
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
            _draw_nose(canvas, geom, P, lm, world, skin, light, amb, dif, tint, rot)
    image, mask = canvas.end()
    return image, mask, lm.astype(np.float32)


def _draw_ear(canvas, P, F, side, skin, shade, tint):
    canvas.poly([tuple(p) for p in P[f"ear_{side}"].tolist()], _rgb(skin, shade * 0.97, tint),
                LABEL[f"{side}_ear"])
    if F[f"concha_{side}"][0] > 0.0:
        canvas.poly([tuple(p) for p in P[f"concha_{side}"].tolist()], _rgb(skin, shade * 0.72, tint))


def _draw_eye(canvas, geom, P, F, lm, fl, side, ident, makeup, part_shade, tint):
    sl = slice(36, 42) if side == "l" else slice(42, 48)
    opening = _chaikin(lm[sl], 1)
    f = _chaikin(fl[sl][:, None], 1)[:, 0]
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
    vis = [tuple(p) for p, ok in zip(upper.tolist(), fu > 0) if ok]
    canvas.line(vis, (30, 22, 20), 0.9 + 0.8 * makeup.shadow_strength)


def _draw_mouth(canvas, geom, P, lm, fl, ident, makeup, ncam, light, amb, dif, tint):
    lip = np.asarray(ident.lip_color, np.float64)
    if makeup.lip_strength > 0:
        lip = lip + (np.asarray(makeup.lip_color, np.float64) - lip) * makeup.lip_strength
    n_up = ncam[[50, 51, 52]].mean(0)
    n_lo = ncam[[56, 57, 58]].mean(0)
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
    seam = [tuple(p) for p, ok in zip(lm[[60, 61, 62, 63, 64]].tolist(), fl[[60, 61, 62, 63, 64]] > 0) if ok]
    canvas.line(seam, _rgb(lip, 0.45, tint), 0.6)


def _draw_nose(canvas, geom, P, lm, world, skin, light, amb, dif, tint, rot):
    wl, wr, sl, sr = range(geom.parts["nose_wings"].start, geom.parts["nose_wings"].stop)
    lmw = world[:68]
    faces = {
        "left": [27, 28, 29, 30, 32, 31, wl, sl],
        "right": [27, sr, wr, 35, 34, 30, 29, 28],
        "bottom": [31, 32, 33, 34, 35, 30],
    }
    polys = []
    for name, idx in faces.items():
        pts3 = np.array([lmw[i] if i < 68 else world[i] for i in idx])
        centre = pts3.mean(0)
        # Newell normal of the (non-planar) face, oriented away from the head centre
        nrm = np.zeros(3)
        for a, b in zip(pts3, np.roll(pts3, -1, 0)):
            nrm += np.array([(a[1] - b[1]) * (a[2] + b[2]), (a[2] - b[2]) * (a[0] + b[0]),
                             (a[0] - b[0]) * (a[1] + b[1])])
        nrm /= max(np.linalg.norm(nrm), 1e-9)
        outward = centre - ((np.array([0.0, 0.0, -0.3]) - PIVOT) @ rot.T + PIVOT)
        if nrm @ outward < 0:
            nrm = -nrm
        visible = nrm[2]
        soft = nrm + 1.2 * rot[:, 2]                 # soften the nose's facets towards the face direction
        nrm = soft / np.linalg.norm(soft)
        p2 = np.array([P["landmarks"][i] if i < 68 else _px_of(P, geom, i) for i in idx])
        polys.append((centre[2], name, nrm, p2, visible))
    polys.sort(key=lambda p: p[0])
    for _, name, nrm, p2, visible in polys:
        if visible <= 0.02:
            continue
        sh = _shade(nrm, light, amb, dif)
        canvas.poly([tuple(p) for p in p2.tolist()], _rgb(skin, sh, tint), LABEL["nose"])
        if name == "bottom" and visible > 0.15:
            for a, b in ((31, 32), (35, 34)):
                c = lm[a] * 0.45 + lm[b] * 0.55 + (lm[30] - lm[33]) * 0.18
                axis = (lm[b] - lm[a]) * 0.55
                perp = np.array([-axis[1], axis[0]]) * 0.45 * min(1.0, visible * 1.5)
                cs, sn = _circle(8)
                ring = [tuple(c + ci * axis + si * perp) for ci, si in zip(cs.tolist(), sn.tolist())]
                canvas.poly(ring, _rgb(skin, sh * 0.45, tint))


def _px_of(P, geom, i):
    for name, sl in geom.parts.items():
        if sl.start <= i < sl.stop:
            return P[name][i - sl.start]
    raise IndexError(i)


@cache
def mean_landmarks_frontal() -> np.ndarray:
    """The mean face's 68 landmarks at yaw 0, head units ``(68, 2)`` (for the default camera)."""
    geom = build_geometry(np.zeros(len(SHAPE_NAMES)), 0.0, 0.0, 0.0, 0.0, HAIR_STYLES[0])
    return geom.points[:68, :2].copy()
