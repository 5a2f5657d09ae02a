"""Argument checks shared by the losses and the image operations (one-line ValueError / TypeError)."""

from __future__ import annotations

from torch import Tensor


def _check_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def _check_image(x: object, name: str, channels: int | None = None) -> Tensor:
    """Check that ``x`` is a ``(B, C, H, W)`` tensor (with ``C == channels`` when given)."""
    x = _check_tensor(x, name)
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels (B, {channels}, H, W), got {tuple(x.shape)}")
    return x


def _check_same_shape(x: Tensor, y: Tensor, names: str) -> None:
    if x.shape != y.shape:
        raise ValueError(f"{names} must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")


def _as_mask(mask: Tensor, name: str, batch: int, size: tuple[int, int]) -> Tensor:
    """Return ``mask`` as a float ``(B, 1, H, W)`` tensor; accepts (H,W), (1,H,W), (B,H,W), (B,1,H,W)."""
    mask = _check_tensor(mask, name)
    if mask.ndim == 2:
        mask = mask[None, None]
    elif mask.ndim == 3:
        mask = mask[:, None]
    elif mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"{name} must have shape (H, W), (B, H, W) or (B, 1, H, W), got {tuple(mask.shape)}")
    if tuple(mask.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} must be {tuple(size)} spatially, got {tuple(mask.shape[-2:])}")
    if mask.shape[0] not in (1, batch):
        raise ValueError(f"{name} has batch size {mask.shape[0]}, expected 1 or {batch}")
    return mask.expand(batch, 1, *size).float()


def _to_unit(img: Tensor) -> Tensor:
    """Map [-1, 1] to [0, 1] with clamping (PSGAN's ``de_norm``)."""
    return ((img + 1.0) * 0.5).clamp(0.0, 1.0)
