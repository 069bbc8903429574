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


FLASH_HEAD_DIMS = "multiples of 8 up to 256"  # flash-attn 2 and 3, forward and backward


def flash_head_dim_supported(head_dim: int) -> bool:
    return head_dim % 8 == 0 and head_dim <= 256


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


def check_head_dim(backend: str, head_dim: int, cuda: bool | None = None) -> None:
    """On CUDA, where flash-attn would run, refuse (at plan time) a head size it has no kernel
    for, rather than fail at the first step."""
    cuda = torch.cuda.is_available() if cuda is None else cuda
    flash = backend == "flash" or (backend == "auto" and flash_available())
    if cuda and flash and not flash_head_dim_supported(head_dim):
        raise ValueError(
            f"flash-attn has kernels for head sizes {FLASH_HEAD_DIMS}, not {head_dim} "
            f"(model.head_dim): choose one (64, 128, 256), or model.attn_backend=sdpa"
        )


def causal_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) + causal mask) v for q (B, S, H, D) and k, v (B, T, G, D), G
    dividing H (query head i reads key/value head i // (H / G)); returns (B, S, H, D). With
    T > S (a decoding cache) the queries are the last S positions (bottom-right causal mask,
    as flash-attn aligns it)."""
    if backend == "flash" or (backend == "auto" and flash_supports(q)):
        if not flash_supports(q):
            raise RuntimeError(
                f"flash-attn needs CUDA tensors in bf16/fp16, got {q.dtype} on {q.device}; "
                "set trainer.precision=bf16-mixed or model.attn_backend=sdpa"
            )
        out = _FLASH_FUNC(q, k, v, causal=True)  # fewer k/v heads: its native GQA / MQA path
        return out[0] if isinstance(out, tuple) else out  # flash-attn 3 also returns the LSE
    grouped = k.shape[2] != q.shape[2]  # GQA / MQA / MFA: heads share k and v, not repeated
    queries, keys = q.shape[1], k.shape[1]
    mask = None  # queries are the last positions of the keys (decoding continues a cache)
    if keys != queries and queries > 1:
        mask = torch.ones(queries, keys, dtype=torch.bool, device=q.device).tril(keys - queries)
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2),
        k.transpose(1, 2),
        v.transpose(1, 2),
        attn_mask=mask,
        is_causal=keys == queries,
        enable_gqa=grouped,
    )
    return out.transpose(1, 2)
