"""Trivial re-posing baselines that GANnotation must beat: image warps driven by the same landmarks.

* ``unchanged`` — the source A itself (no re-posing at all);
* ``similarity`` — A moved by the similarity transform (rotation, uniform scale, translation) that best
  aligns A's landmarks to B's in the least-squares sense (:func:`facezoo.face.align.umeyama`);
* ``piecewise`` — a piecewise-affine warp of A that moves each of A's landmarks exactly onto B's (Delaunay
  triangles of B's landmarks plus the image corners and edge midpoints, which stay fixed; the map of
  ``skimage.transform.PiecewiseAffineTransform``, vectorised with ``scipy.spatial.Delaunay``).

All take a batch's ``image`` (A, ``(B, 3, H, W)`` in [-1, 1]), ``landmarks`` (A's) and ``target_landmarks``
(B's), ``(B, N, 2)`` (x, y) pixels, and return ``(B, 3, H, W)`` in [-1, 1]. Pixels are sampled bilinearly with
pixel centres at integer coordinates; outside A the border is replicated.

Example:
    >>> img = torch.zeros(1, 3, 16, 16)
    >>> pts = torch.tensor([[[4.0, 4.0], [11.0, 4.0], [8.0, 11.0]]])
    >>> similarity_warp(img, pts, pts + 1.0).shape
    torch.Size([1, 3, 16, 16])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from facezoo.face.align import invert_affine, umeyama

__all__ = ["unchanged", "similarity_matrices", "similarity_warp", "piecewise_affine_map", "piecewise_affine_warp",
           "BASELINES", "reposing_baselines"]


def _check(image: torch.Tensor, landmarks: torch.Tensor, target_landmarks: torch.Tensor) -> None:
    if image.ndim != 4:
        raise ValueError(f"image must be (B, C, H, W), got {tuple(image.shape)}")
    for name, pts in (("landmarks", landmarks), ("target_landmarks", target_landmarks)):
        if pts.ndim != 3 or pts.shape[-1] != 2 or pts.shape[0] != image.shape[0]:
            raise ValueError(f"{name} must be (B, N, 2) with B = {image.shape[0]}, got {tuple(pts.shape)}")
    if landmarks.shape != target_landmarks.shape:
        raise ValueError(f"landmarks {tuple(landmarks.shape)} and target_landmarks "
                         f"{tuple(target_landmarks.shape)} differ")


def _sample(image: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear sampling of ``image (B, C, H, W)`` at source pixel coordinates ``coords (B, H', W', 2)``."""
    height, width = image.shape[-2:]
    scale = coords.new_tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)])
    grid = coords * scale - 1.0
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def _pixel_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                            indexing="ij")
    return torch.stack([xs, ys], -1).to(like.device)          # (H, W, 2) as (x, y)


def unchanged(image: torch.Tensor, landmarks: torch.Tensor, target_landmarks: torch.Tensor) -> torch.Tensor:
    """The source itself: what a re-posing model scores by doing nothing."""
    _check(image, landmarks, target_landmarks)
    return image


def similarity_matrices(landmarks: torch.Tensor, target_landmarks: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity transforms A → B of each pair (Umeyama).

    Args:
        landmarks, target_landmarks: ``(B, N, 2)`` (x, y) pixels, N ≥ 2.

    Returns:
        ``(B, 2, 3)`` float64 matrices ``M`` minimising ``Σ‖M·a_i − b_i‖²``.
    """
    src = landmarks.detach().double().cpu().numpy()
    dst = target_landmarks.detach().double().cpu().numpy()
    return torch.from_numpy(np.stack([umeyama(s, d) for s, d in zip(src, dst)]))


def similarity_warp(image: torch.Tensor, landmarks: torch.Tensor, target_landmarks: torch.Tensor) -> torch.Tensor:
    """Warp A by the similarity transform that best aligns its landmarks to B's (:func:`similarity_matrices`).

    Output pixel ``p`` takes A's value at ``M⁻¹·p``.
    """
    _check(image, landmarks, target_landmarks)
    height, width = image.shape[-2:]
    inverse = torch.from_numpy(np.stack([invert_affine(m) for m in similarity_matrices(landmarks,
                                                                                       target_landmarks).numpy()]))
    grid = _pixel_grid(height, width, image)
    inverse = inverse.to(image.device)
    coords = torch.einsum("hwj,bij->bhwi", grid, inverse[:, :, :2]) + inverse[:, None, None, :, 2]
    return _sample(image, coords)


def _anchor_points(height: int, width: int) -> np.ndarray:
    """Image corners and edge midpoints (x, y), pinned in place by the piecewise warp."""
    xs, ys = (0.0, (width - 1) / 2, width - 1.0), (0.0, (height - 1) / 2, height - 1.0)
    return np.array([(x, y) for y in ys for x in xs if not (x == xs[1] and y == ys[1])])


def piecewise_affine_map(src: np.ndarray, dst: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The piecewise-affine map of the Delaunay mesh of ``src`` onto ``dst``, evaluated at ``points``.

    Inside triangle ``t`` of ``src``'s Delaunay triangulation the map is the affine transform taking the
    triangle's vertices onto the corresponding ``dst`` vertices, i.e. the barycentric interpolation of ``dst``
    (the same map as ``skimage.transform.PiecewiseAffineTransform`` estimated from ``src`` to ``dst``, vectorised).

    Args:
        src, dst: ``(K, 2)`` corresponding vertices (distinct ``src`` points, not all collinear).
        points: ``(P, 2)`` where to evaluate.

    Returns:
        ``(P, 2)`` float64; points outside the mesh's convex hull map to themselves.
    """
    from scipy.spatial import Delaunay

    src, dst, points = (np.asarray(v, np.float64) for v in (src, dst, points))
    mesh = Delaunay(src)
    simplex = mesh.find_simplex(points)
    inside = simplex >= 0
    out = points.copy()
    t = mesh.transform[simplex[inside]]                               # (P', 3, 2): barycentric transforms
    bary = np.einsum("pij,pj->pi", t[:, :2], points[inside] - t[:, 2])
    weights = np.concatenate([bary, 1.0 - bary.sum(1, keepdims=True)], 1)        # (P', 3)
    out[inside] = np.einsum("pk,pkj->pj", weights, dst[mesh.simplices[simplex[inside]]])
    return out


def piecewise_affine_warp(image: torch.Tensor, landmarks: torch.Tensor,
                          target_landmarks: torch.Tensor) -> torch.Tensor:
    """Warp A so that each of its landmarks lands exactly on B's: one affine map per Delaunay triangle of B's
    landmarks plus the pinned image corners and edge midpoints (:func:`piecewise_affine_map`).

    Output pixel ``p`` inside triangle ``t`` of B's mesh takes A's value at ``T_t(p)``, where ``T_t`` maps the
    triangle's B vertices onto the corresponding A vertices (so ``b_i ↦ a_i`` exactly). B's points outside the
    image are clipped to it and repeated points are used once, so the mesh stays valid.
    """
    _check(image, landmarks, target_landmarks)
    height, width = image.shape[-2:]
    anchors = _anchor_points(height, width)
    grid = _pixel_grid(height, width, image).cpu().numpy().reshape(-1, 2)
    coords = []
    for a, b in zip(landmarks.detach().double().cpu().numpy(), target_landmarks.detach().double().cpu().numpy()):
        b = np.clip(b, 0.0, [width - 1.0, height - 1.0])
        _, keep = np.unique(np.round(b, 6), axis=0, return_index=True)     # a mesh needs distinct vertices
        keep = np.sort(keep)
        mapped = piecewise_affine_map(np.vstack([b[keep], anchors]), np.vstack([a[keep], anchors]), grid)
        coords.append(mapped.reshape(height, width, 2))
    return _sample(image, torch.from_numpy(np.stack(coords)).to(image.device))


#: Baseline name → ``fn(image, landmarks, target_landmarks) -> image``.
BASELINES: dict[str, Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "unchanged": unchanged,
    "similarity": similarity_warp,
    "piecewise": piecewise_affine_warp,
}


def reposing_baselines(names=tuple(BASELINES)) -> dict[str, Callable[[Mapping], torch.Tensor]]:
    """``{name: fn(batch) -> (B, 3, H, W)}`` for :meth:`GANModule.evaluation_baselines` (keys become
    ``baseline_<name>/…`` in ``facezoo.evaluate``'s JSON)."""
    unknown = set(names) - set(BASELINES)
    if unknown:
        raise ValueError(f"unknown baselines {sorted(unknown)}; known: {sorted(BASELINES)}")

    def bind(fn):
        return lambda batch: fn(batch["image"], batch["landmarks"], batch["target_landmarks"])

    return {name: bind(BASELINES[name]) for name in names}
