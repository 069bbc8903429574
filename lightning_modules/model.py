"""Llama-style decoder: pre-norm RMSNorm, RoPE, SwiGLU, causal attention of four types
(MHA, GQA/MQA, MFA, MFA-KR).

No biases and untied input/output embeddings, so the non-embedding parameters are exactly the
paper's N (for MHA n_layer * d_model * (4 * d_model + 3 * d_ff); ModelShape.n_params for each type).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_modules.attention import causal_attention, check_backend, check_head_dim
from lightning_modules.shape import ModelShape


@dataclass(frozen=True)
class DecoderConfig:
    shape: ModelShape
    vocab_size: int
    seq_len: int
    rope_theta: float = 10000.0
    init_std: float = 0.02
    attn_backend: str = "auto"
    norm_eps: float = 1e-5
    activation_checkpointing: bool = False


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (rotate-half form) for (B, S, H, D) tensors."""

    def __init__(self, head_dim: int, max_len: int, theta: float):
        super().__init__()
        inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)
        angles = torch.cat([angles, angles], dim=-1)[None, :, None, :]  # (1, S, 1, D)
        self.register_buffer("cos", angles.cos().float(), persistent=False)
        self.register_buffer("sin", angles.sin().float(), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """x at positions offset .. offset + S - 1."""
        seq = x.shape[1]
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        positions = slice(offset, offset + seq)
        cos, sin = self.cos[:, positions].to(x.dtype), self.sin[:, positions].to(x.dtype)
        return x * cos + rotated * sin


@dataclass
class LayerCache:
    """What one layer keeps between decoding steps: rotated keys and values, (B, T, G, h); for
    MFA-KR its pre-RoPE keys alone (the value is re-derived from them, which is its saving)."""

    keys: torch.Tensor | None = None
    values: torch.Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.keys is None else self.keys.shape[1]

    def extend(self, keys: torch.Tensor, values: torch.Tensor | None = None):
        """Append this step's entries; returns everything cached (keys, values)."""
        self.keys = keys if self.keys is None else torch.cat([self.keys, keys], dim=1)
        if values is not None:
            self.values = values if self.values is None else torch.cat([self.values, values], dim=1)
        return self.keys, self.values


class Attention(nn.Module):
    """MHA, and GQA / MQA with fewer key/value heads: q, k and v from one fused product whose
    output rows are [q; k; v] (for MHA the (3d, d) matrix of earlier checkpoints)."""

    def __init__(self, cfg: DecoderConfig, rope: RotaryEmbedding):
        super().__init__()
        s = cfg.shape
        self.heads, self.kv_heads, self.head_dim = s.n_head, s.n_kv_head, s.head_dim
        kv_width = s.n_kv_head * s.head_dim
        self.qkv = nn.Linear(s.d_model, s.d_model + 2 * kv_width, bias=False)
        self.proj = nn.Linear(s.d_model, s.d_model, bias=False)
        self.rope = rope
        self.backend = cfg.attn_backend

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        b, s, d = x.shape
        kv_width = self.kv_heads * self.head_dim
        q, k, v = self.qkv(x).split([d, kv_width, kv_width], dim=-1)
        q = q.view(b, s, self.heads, self.head_dim)
        k = k.view(b, s, self.kv_heads, self.head_dim)
        v = v.view(b, s, self.kv_heads, self.head_dim)
        offset = cache.length if cache is not None else 0
        q, k = self.rope(q, offset), self.rope(k, offset)
        if cache is not None:
            k, v = cache.extend(k, v)
        return self.proj(causal_attention(q, k, v, self.backend).reshape(b, s, d))


class FactorizedAttention(nn.Module):
    """MFA (seed 000, as in Step-3): low-rank queries q = W_q RMSNorm(W_qdown x) over n heads,
    one key head and one value head shared by all of them. MFA-KR re-uses the key as the value,
    v = k + (k M) * alpha on the pre-RoPE key, with alpha starting at 0, and caches keys only."""

    def __init__(self, cfg: DecoderConfig, rope: RotaryEmbedding):
        super().__init__()
        s = cfg.shape
        self.heads, self.head_dim = s.n_head, s.head_dim
        self.q_down = nn.Linear(s.d_model, s.q_rank, bias=False)
        self.q_norm = nn.RMSNorm(s.q_rank, eps=cfg.norm_eps)
        self.q_up = nn.Linear(s.q_rank, s.d_model, bias=False)
        self.key_reuse = s.attention == "mfa_kr"
        if self.key_reuse:
            self.k = nn.Linear(s.d_model, s.head_dim, bias=False)
            self.reuse = nn.Linear(s.head_dim, s.head_dim, bias=False)  # M (as its transpose)
            self.reuse_gain = nn.Parameter(torch.zeros(s.head_dim))  # alpha
        else:
            self.kv = nn.Linear(s.d_model, 2 * s.head_dim, bias=False)
        self.proj = nn.Linear(s.d_model, s.d_model, bias=False)
        self.rope = rope
        self.backend = cfg.attn_backend

    def value_of(self, k: torch.Tensor) -> torch.Tensor:
        """MFA-KR's value from the pre-RoPE key: k + (k M) * alpha."""
        return k + self.reuse(k) * self.reuse_gain

    def key_value(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared key (before RoPE) and value, (B, S, 1, h) each."""
        b, s, _ = x.shape
        if self.key_reuse:
            k = self.k(x).view(b, s, 1, self.head_dim)
            return k, self.value_of(k)
        k, v = self.kv(x).view(b, s, 2, 1, self.head_dim).unbind(dim=2)
        return k, v

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        b, s, d = x.shape
        q = self.q_up(self.q_norm(self.q_down(x))).view(b, s, self.heads, self.head_dim)
        offset = cache.length if cache is not None else 0
        k, v = self.key_value(x)
        if cache is None:
            k = self.rope(k)
        elif self.key_reuse:  # only pre-RoPE keys are kept: rotate them and derive the values
            k_pre, _ = cache.extend(k)
            k, v = self.rope(k_pre), self.value_of(k_pre)
        else:
            k, v = cache.extend(self.rope(k, offset), v)
        y = causal_attention(self.rope(q, offset), k, v, self.backend)
        return self.proj(y.reshape(b, s, d))


class SwiGLU(nn.Module):
    """The gate and up projections are stored as one matrix but applied as two products over
    its row blocks: the fused product's output splits into strided halves whose backward
    concatenates (B, S, 2 d_ff) gradients, 16% slower on CPU (bench/throughput.py)."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.d_ff = d_ff
        self.gate_up = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.gate_up.weight
        gate, up = F.linear(x, weight[: self.d_ff]), F.linear(x, weight[self.d_ff :])
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    """One pre-norm layer; also the unit of compilation, FSDP sharding and checkpointing."""

    def __init__(self, cfg: DecoderConfig, rope: RotaryEmbedding):
        super().__init__()
        d = cfg.shape.d_model
        self.attn_norm = nn.RMSNorm(d, eps=cfg.norm_eps)
        factorized = cfg.shape.attention in ("mfa", "mfa_kr")
        self.attn = (FactorizedAttention if factorized else Attention)(cfg, rope)
        self.mlp_norm = nn.RMSNorm(d, eps=cfg.norm_eps)
        self.mlp = SwiGLU(d, cfg.shape.d_ff)
        self.activation_checkpointing = cfg.activation_checkpointing

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        # Checkpointing inside the block (not around it) keeps the recomputation within the
        # block's FSDP unit, whose parameters FSDP gathers again before the block's backward.
        if self.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(self._layer, x, use_reentrant=False)
        return self._layer(x, cache)

    def _layer(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cache)
        return x + self.mlp(self.mlp_norm(x))


class Decoder(nn.Module):
    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        check_backend(cfg.attn_backend)
        check_head_dim(cfg.attn_backend, cfg.shape.head_dim)
        self.cfg = cfg
        shape = cfg.shape
        rope = RotaryEmbedding(shape.head_dim, cfg.seq_len, cfg.rope_theta)
        self.embed = nn.Embedding(cfg.vocab_size, shape.d_model)
        self.blocks = nn.ModuleList(Block(cfg, rope) for _ in range(shape.n_layer))
        self.norm = nn.RMSNorm(shape.d_model, eps=cfg.norm_eps)
        self.head = nn.Linear(shape.d_model, cfg.vocab_size, bias=False)
        self.apply(self._init_weights)
        # GPT-2 style: scale the residual-branch outputs so the stream's variance stays O(1).
        for block in self.blocks:
            for out in (block.attn.proj, block.mlp.down):
                nn.init.normal_(out.weight, std=cfg.init_std / math.sqrt(2 * shape.n_layer))

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=self.cfg.init_std)

    def hidden(self, tokens: torch.Tensor, cache: list[LayerCache] | None = None) -> torch.Tensor:
        """The residual stream after the last block (B, S, d), before the final norm."""
        x = self.embed(tokens)
        for i, block in enumerate(self.blocks):
            x = block(x, None if cache is None else cache[i])
        return x

    def forward(self, tokens: torch.Tensor, cache: list[LayerCache] | None = None) -> torch.Tensor:
        """Logits (B, S, V) for token ids (B, S). With a cache (one LayerCache per layer, from
        `new_cache`), the tokens continue the cached ones and are appended to it: decoding."""
        return self.head(self.norm(self.hidden(tokens, cache)))

    def new_cache(self) -> list[LayerCache]:
        return [LayerCache() for _ in self.blocks]

    def parameter_counts(self) -> dict[str, int]:
        """Counts by role, from the tensors themselves (checked against the shape's formulas)."""
        counts = {"non_embedding": 0, "embedding": 0, "norm": 0}
        for name, p in self.named_parameters():
            if name.startswith(("embed.", "head.")):
                counts["embedding"] += p.numel()
            elif "norm" in name:
                counts["norm"] += p.numel()
            else:
                counts["non_embedding"] += p.numel()
        return counts
