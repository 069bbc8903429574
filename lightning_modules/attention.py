"""Causal multi-head attention kernels, chosen at run time.

Tensors are (batch, seq, heads, head_dim), the layout flash-attn consumes without copies.
`auto` uses flash-attn on CUDA in bf16/fp16 when the package imports, else PyTorch's SDPA
(which itself dispatches to fused kernels where it can).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from configs.checks import ATTN_BACKENDS as BACKENDS


def _load_flash() -> tuple[Callable | None, str]:
    """flash-attn 3 (Hopper) if present, else 2; any import failure means 'not available'."""
    errors = []
    for module, name in (("flash_attn_interface", "flash-attn 3"), ("flash_attn", "flash-attn 2")):
        try:
            mod = __import__(module)
            return mod.flash_attn_func, name
        except Exception as err:  # broken CUDA builds raise ImportError, OSError, RuntimeError...
            errors.append(f"{module}: {type(err).__name__}: {err}")
    return None, "; ".join(errors)


_FLASH_FUNC, _FLASH_INFO = _load_flash()


def flash_available() -> bool:
    return _FLASH_FUNC is not None


def flash_supports(q: torch.Tensor) -> bool:
    return flash_available() and q.is_cuda and q.dtype in (torch.float16, torch.bfloat16)


def check_backend(backend: str) -> None:
    """Fail early, at model construction, for an unknown or unavailable backend."""
    if backend not in BACKENDS:
        raise ValueError(f"model.attn_backend={backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "flash" and not flash_available():
        raise RuntimeError(
            "model.attn_backend=flash, but flash-attn cannot be imported "
            f"({_FLASH_INFO}). Install the extra (pip install -e '.[cuda]') on a CUDA machine, "
            "or use model.attn_backend=auto or sdpa."
        )


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + causal mask) v for (B, S, H, D) tensors; returns (B, S, H, D)."""
    if backend == "flash" or (backend == "auto" and flash_supports(q)):
        if not flash_supports(q):
            raise RuntimeError(
                f"flash-attn needs CUDA tensors in bf16/fp16, got {q.dtype} on {q.device}; "
                "set trainer.precision=bf16-mixed or model.attn_backend=sdpa"
            )
        out = _FLASH_FUNC(q, k, v, causal=True)
        return out[0] if isinstance(out, tuple) else out  # flash-attn 3 also returns the LSE
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
    )
    return out.transpose(1, 2)
