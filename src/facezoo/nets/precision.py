"""Inference in bf16 for networks that need no fp32 island: weights in bf16, the inputs cast on the way in, the
outputs cast back to fp32 on the way out.

bf16 *weights*, not autocast: on the AVX512-BF16 CPUs of docs/benchmarks.md autocast re-casts every weight at every
call and converts fp32 ↔ bf16 around each elementwise op, which ate most of its gain for pSp (docs/benchmarks.md,
"pSp inference fast path"). Networks with an op that must stay in fp32 (PSGAN's AMM softmax) or with several
entry points (pSp, MaskGAN) have their own ``fast_path``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils._pytree import tree_map

__all__ = ["bf16_fast_path"]


def _cast(dtype: torch.dtype):
    def cast(value):
        return value.to(dtype) if isinstance(value, torch.Tensor) and value.is_floating_point() else value

    return cast


def _inputs_to_bf16(module, args, kwargs):
    return tree_map(_cast(torch.bfloat16), args), tree_map(_cast(torch.bfloat16), kwargs)


def _outputs_to_fp32(module, args, kwargs, output):
    return tree_map(_cast(torch.float32), output)


def bf16_fast_path(module: nn.Module) -> nn.Module:
    """Make ``module`` an inference fast path: its parameters and buffers in bf16, the floating-point tensors
    given to its ``forward`` (also inside tuples, lists and dicts) cast to bf16, and those it returns cast to fp32,
    so callers see the same dtypes as before. For inference, not training; irreversible (build or load the
    network again for fp32); calling it twice changes nothing.

    Returns:
        ``module``, in eval mode.

    Example:
        >>> net = bf16_fast_path(nn.Conv2d(3, 4, 3))
        >>> net.weight.dtype, net(torch.zeros(1, 3, 8, 8)).dtype
        (torch.bfloat16, torch.float32)
    """
    if not getattr(module, "bf16_fast_path", False):
        module.register_forward_pre_hook(_inputs_to_bf16, with_kwargs=True)
        module.register_forward_hook(_outputs_to_fp32, with_kwargs=True)
        module.bf16_fast_path = True
    return module.to(torch.bfloat16).eval()
