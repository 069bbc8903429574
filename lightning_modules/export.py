"""Export a run to a Hugging Face `transformers` folder: LlamaConfig, safetensors, tokenizer, card.

    python -m lightning_modules.export RUN_DIR --out DIR [--checkpoint last|PATH]
        [--dtype bf16|fp32]

The decoder is a Llama (rotate-half RoPE, RMSNorm, SwiGLU, untied embeddings, no biases), so MHA
and GQA / MQA runs map onto `LlamaForCausalLM` exactly: the fused q/k/v and gate/up matrices are
split by rows, nothing is re-computed. MFA and MFA-KR have no `transformers` class (Llama has no
low-rank query nor shared re-derived value) and are refused rather than exported approximately.
`safetensors` and `transformers` are the optional extra `pip install -e ".[hf]"`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from datamodules.pool import TokenPool
from lightning_modules.shape import ModelShape
from lightning_modules.trained import TrainedRunError, load_checkpoint, run_pool

MAX_SHARD_BYTES = 2 * 1024**3  # shards as transformers writes them by default (index above it)
DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


class ExportError(TrainedRunError):
    """The run cannot be exported as asked; the message names the fix."""


def llama_state_dict(state: dict[str, torch.Tensor], shape: ModelShape) -> dict:
    """Our parameter names and fused matrices -> LlamaForCausalLM's (rows split, not copied)."""
    q, kv = shape.d_model, shape.n_kv_head * shape.head_dim
    out = {
        "model.embed_tokens.weight": state["model.embed.weight"],
        "model.norm.weight": state["model.norm.weight"],
        "lm_head.weight": state["model.head.weight"],
    }
    for i in range(shape.n_layer):
        ours, theirs = f"model.blocks.{i}.", f"model.layers.{i}."
        wq, wk, wv = state[ours + "attn.qkv.weight"].split([q, kv, kv])
        gate, up = state[ours + "mlp.gate_up.weight"].split(shape.d_ff)
        out |= {
            theirs + "input_layernorm.weight": state[ours + "attn_norm.weight"],
            theirs + "self_attn.q_proj.weight": wq,
            theirs + "self_attn.k_proj.weight": wk,
            theirs + "self_attn.v_proj.weight": wv,
            theirs + "self_attn.o_proj.weight": state[ours + "attn.proj.weight"],
            theirs + "post_attention_layernorm.weight": state[ours + "mlp_norm.weight"],
            theirs + "mlp.gate_proj.weight": gate,
            theirs + "mlp.up_proj.weight": up,
            theirs + "mlp.down_proj.weight": state[ours + "mlp.down.weight"],
        }
    return out


def save_shards(tensors: dict[str, torch.Tensor], out: Path, max_bytes: int) -> list[str]:
    """model.safetensors, or model-0000k-of-0000n.safetensors and their index above max_bytes."""
    from safetensors.torch import save_file

    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor.contiguous()
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], out / "model.safetensors", metadata={"format": "pt"})
        return ["model.safetensors"]
    names = [f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors" for k in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards, strict=True):
        save_file(shard, out / name, metadata={"format": "pt"})
        weight_map |= dict.fromkeys(shard, name)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return names


def model_card(run_dir: Path, shape: ModelShape, pool: TokenPool, files: list[str]) -> str:
    result = (
        json.loads((run_dir / "result.json").read_text())
        if (run_dir / "result.json").exists()
        else {}
    )
    corpus = pool.meta.get("corpus") or {}
    lines = [
        f"# {run_dir.name}",
        "",
        "A Llama-style code model trained by codescale (scaling-law run), exported with",
        "`python -m lightning_modules.export`.",
        "",
        f"- N (non-embedding parameters): {shape.n_params:,}; d_model {shape.d_model}, "
        f"{shape.n_layer} layers, d_ff {shape.d_ff}, {shape.n_head} heads "
        f"({shape.n_kv_head} key/value heads)",
        f"- D (training tokens): {result.get('tokens', 'unknown')}",
        f"- code fraction of the training mixture: {result.get('code_fraction', 'unknown')}",
        f"- validation BPC: {result.get('val_bpc', 'unknown')}",
        f"- pool: {pool.path.name}; tokenizer {pool.meta['tokenizer_hash']}; corpus manifest "
        f"sha256 {corpus.get('manifest_sha256', 'not recorded')}",
        f"- weights: {', '.join(files)}",
    ]
    return "\n".join(lines) + "\n"


def export(
    run_dir: str | Path,
    out: str | Path,
    checkpoint: str = "last",
    dtype: str = "fp32",
    max_shard_bytes: int = MAX_SHARD_BYTES,
) -> Path:
    """Write the transformers folder; returns it."""
    try:
        from transformers import LlamaConfig, PreTrainedTokenizerFast
    except ImportError as err:
        raise ExportError(
            f"the exporter needs the hf extra: pip install -e '.[hf]' ({err})"
        ) from err
    run_dir, out = Path(run_dir), Path(out)
    saved = load_checkpoint(run_dir, checkpoint)
    decoder = saved["hyper_parameters"]["decoder"]
    shape = ModelShape(**decoder["shape"])
    if shape.attention not in ("mha", "gqa"):
        raise ExportError(
            f"model.attention={shape.attention} has no transformers equivalent (LlamaForCausalLM "
            "has neither MFA's low-rank queries nor MFA-KR's value re-derived from the key); "
            "only mha and gqa runs are exported"
        )
    pool = run_pool(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    eos = pool.tokenizer.id_to_token(pool.eos_id)
    LlamaConfig(
        vocab_size=decoder["vocab_size"],
        hidden_size=shape.d_model,
        intermediate_size=shape.d_ff,
        num_hidden_layers=shape.n_layer,
        num_attention_heads=shape.n_head,
        num_key_value_heads=shape.n_kv_head,
        head_dim=shape.head_dim,
        max_position_embeddings=decoder["seq_len"],
        rms_norm_eps=decoder["norm_eps"],
        rope_theta=decoder["rope_theta"],
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        bos_token_id=pool.eos_id,  # documents are separated, not begun, by the one special token
        eos_token_id=pool.eos_id,
        architectures=["LlamaForCausalLM"],
        dtype=dtype.replace("fp32", "float32").replace("bf16", "bfloat16"),
    ).save_pretrained(out)
    state = {
        k: v.to(DTYPES[dtype]) for k, v in llama_state_dict(saved["state_dict"], shape).items()
    }
    files = save_shards(state, out, max_shard_bytes)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=pool.tokenizer, eos_token=eos, bos_token=eos
    )
    tokenizer.model_max_length = decoder["seq_len"]
    tokenizer.save_pretrained(out)
    (out / "README.md").write_text(model_card(run_dir, shape, pool, files))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightning_modules.export", description=__doc__)
    parser.add_argument("run_dir")
    parser.add_argument("--out", required=True)
    parser.add_argument(
        "--checkpoint", default="last", help="last (RUN_DIR/checkpoints/last.ckpt) or a path"
    )
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32")
    args = parser.parse_args(argv)
    try:
        folder = export(args.run_dir, args.out, args.checkpoint, args.dtype)
    except TrainedRunError as err:
        print(f"export error: {err}", file=sys.stderr)
        return 2
    print(f"written: {folder} (load with transformers.AutoModelForCausalLM.from_pretrained)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
