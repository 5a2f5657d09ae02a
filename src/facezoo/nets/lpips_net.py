"""LPIPS (Zhang et al. 2018) with its backbone loaded through the facezoo weight resolver.

The ``lpips`` package ships the linear heads (``weights/v0.1/{alex,vgg,squeeze}.pth``) but downloads the
torchvision backbone itself. :func:`lpips_network` builds the network with a random backbone
(``pnet_rand=True``, no network access) and then loads the backbone from a torchvision state dict that
:func:`~facezoo.nets.weights.resolve_weights` finds.

The ``lpips`` backbones keep torchvision's ``features`` indices inside their slices
(``net.slice2.3.weight`` is ``features.3.weight``), which is how the keys are mapped.

Example:
    >>> net = lpips_network("alex", backbone_weights=None)  # random backbone, warns once
    >>> x = torch.zeros(1, 3, 32, 32)
    >>> float(net(x, x).sum())
    0.0
"""

from __future__ import annotations

import logging
import os
import warnings

import lpips as _lpips
import torch

from facezoo.nets.weights import Freezable, load_state_dict_file, resolve_weights

__all__ = ["LPIPSNetwork", "lpips_network", "LPIPS_BACKBONES"]

log = logging.getLogger(__name__)

#: LPIPS ``net`` name -> weight-registry name of its torchvision backbone.
LPIPS_BACKBONES = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}

_warned_random = False


class LPIPSNetwork(Freezable, _lpips.LPIPS):
    """``lpips.LPIPS`` that can be frozen (a frozen one keeps its dropout off under ``.train()``).

    ``forward(in0, in1)`` takes two :math:`(B, 3, H, W)` batches in [-1, 1] and returns distances of
    shape :math:`(B, 1, 1, 1)`.
    """


def _load_backbone(net: LPIPSNetwork, state: dict[str, torch.Tensor]) -> None:
    """Copy ``features.<i>.*`` of a torchvision state dict into ``net.net.slice*.<i>.*`` (strict)."""
    backbone = net.net
    mapped = {}
    for key in backbone.state_dict():
        slice_name, index, param = key.split(".", 2)
        source = f"features.{index}.{param}"
        if source not in state:
            raise RuntimeError(
                f"backbone file misses {source!r} (needed for LPIPS {slice_name}.{index}.{param})"
            )
        mapped[key] = state[source]
    backbone.load_state_dict(mapped, strict=True)


def lpips_network(
    net: str = "alex",
    backbone_weights: str | os.PathLike | None = "imagenet",
    download: bool | None = None,
) -> LPIPSNetwork:
    """A frozen LPIPS network (v0.1 linear heads from the ``lpips`` wheel).

    Args:
        net: ``"alex"`` (pSp, the usual choice), ``"vgg"`` or ``"squeeze"``.
        backbone_weights: ``"imagenet"`` resolves the torchvision backbone file (``alexnet``, ``vgg16``
            or ``squeezenet1_1`` in :data:`~facezoo.nets.weights.WEIGHTS`), a path loads that file,
            ``None`` keeps a random backbone and logs a one-time warning that the values are not
            comparable to published LPIPS numbers (tests only).
        download: passed to :func:`~facezoo.nets.weights.resolve_weights`.

    Returns:
        A frozen :class:`LPIPSNetwork` in eval mode.

    Raises:
        ValueError: unknown ``net``.
        WeightsNotFoundError: the backbone file cannot be found.
    """
    global _warned_random
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"net must be one of {sorted(LPIPS_BACKBONES)}, got {net!r}")
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        model = LPIPSNetwork(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if backbone_weights is None:
        if not _warned_random:
            log.warning(
                "LPIPS(%s) has a random backbone: its values are not comparable to published LPIPS numbers",
                net,
            )
            _warned_random = True
    else:
        path = resolve_weights(
            LPIPS_BACKBONES[net],
            path=None if backbone_weights == "imagenet" else backbone_weights,
            download=download,
            path_arg="backbone_weights",
        )
        _load_backbone(model, load_state_dict_file(path))
    return model.freeze()
