"""Training throughput of the decoder family: tokens/s, TFLOP/s, MFU, peak memory, micro-batch.

    python bench/throughput.py                           # CPU: 500K, 1.5M, 5M at seq 256, + litgpt
    python bench/throughput.py --shapes table2 --compile # GPU: every Table 2 shape at seq 2048
    python bench/throughput.py --shapes 201M,1.13B --compile --json results.json
    python bench/throughput.py --shapes laptop --precision bf16-mixed --reference-precision 32-true

Each shape trains `--warmup` untimed steps, then `--steps` timed ones; its speed is the median
step. The step is train.py's: DecoderLM.loss, gradient clipping and the module's own AdamW (fused
on CUDA), under bf16 autocast on CUDA (fp32 on CPU; `--precision` sets it for both models, and
`--reference-precision` litgpt's alone). `--shapes laptop` is the laptop study's five sizes at
vocabulary 512, sequences of 128, micro-batch 32 (docs/studies/laptop/). FLOPs are the analytic
count of `lightning_modules/throughput.py`; MFU is against the dense bf16 peak kept there.
`--reference litgpt` (the default on CPU) times litgpt's Llama-style GPT configured to the same
shape, with the same loss, optimizer and loop, after checking that the parameter counts agree;
it needs `pip install -e ".[bench]"` (litgpt is not a runtime dependency).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from configs import format_size, parse_size
from lightning_modules.attention import flash_available
from lightning_modules.model import DecoderConfig
from lightning_modules.module import DecoderLM, OptimSettings
from lightning_modules.shape import ModelShape, shape_for_target
from lightning_modules.throughput import (
    device_peak_flops,
    flops_per_token,
    throughput,
)

TABLE2_TARGETS = [2e8 * 2 ** (k / 2) for k in range(9)]  # reproduce Table 2's nine rows exactly
CPU_TARGETS = [5e5, 1.5e6, 5e6]
LAPTOP_TARGETS = [1e5, 2e5, 4e5, 8e5, 1.6e6]  # configs/sweeps/laptop.yaml's sizes
OPTIM = OptimSettings(
    peak_lr=3e-4,
    min_lr=1e-5,
    warmup_steps=1,
    total_steps=1000,
    weight_decay=0.1,
    beta1=0.9,
    beta2=0.95,
    eps=1e-8,
)
LITGPT_MISSING = 'litgpt is not installed: pip install -e ".[bench]" (or pip install litgpt)'


def parse_shapes(spec: str) -> list[ModelShape]:
    """`table2`, `cpu`, or comma-separated sizes; a size naming a Table 2 row gives that row."""
    named = {"table2": TABLE2_TARGETS, "cpu": CPU_TARGETS, "laptop": LAPTOP_TARGETS}
    if spec in named:
        return [shape_for_target(t) for t in named[spec]]
    rows = {format_size(s.n_params): s for s in map(shape_for_target, TABLE2_TARGETS)}
    return [rows.get(item) or shape_for_target(parse_size(item)) for item in spec.split(",")]


def ours(shape: ModelShape, args: argparse.Namespace) -> tuple[nn.Module, Callable, Callable]:
    """(module, loss of a batch, optimizer factory) for the project's decoder."""
    decoder = DecoderConfig(
        shape=shape,
        vocab_size=args.vocab,
        seq_len=args.seq_len,
        attn_backend=args.backend,
        activation_checkpointing=args.activation_checkpointing,
    )
    module = DecoderLM.create(decoder, OPTIM, compile_model=args.compile)
    module.configure_model()
    return module, module.loss, lambda: module.configure_optimizers()


def litgpt_model(shape: ModelShape, vocab: int, seq_len: int) -> nn.Module:
    """litgpt's GPT with our shape: pre-norm RMSNorm, full RoPE, SwiGLU, MHA, no bias, untied."""
    from litgpt.config import Config
    from litgpt.model import GPT

    config = Config(
        block_size=seq_len,
        vocab_size=vocab,
        padded_vocab_size=vocab,
        n_layer=shape.n_layer,
        n_embd=shape.d_model,
        n_head=shape.n_head,
        n_query_groups=shape.n_head,
        head_size=shape.head_dim,
        intermediate_size=shape.d_ff,
        rotary_percentage=1.0,
        rope_base=10000,
        parallel_residual=False,
        bias=False,
        norm_class_name="RMSNorm",
        norm_eps=1e-5,
        mlp_class_name="LLaMAMLP",
    )
    return GPT(config)


def reference(
    shape: ModelShape, args: argparse.Namespace, our_module: nn.Module
) -> tuple[nn.Module, Callable, Callable]:
    """litgpt configured to `shape`, with our loss and our optimizer settings."""
    model = litgpt_model(shape, args.vocab, args.seq_len)
    theirs, mine = sum(p.numel() for p in model.parameters()), our_module.model.parameter_counts()
    if theirs != sum(mine.values()):
        raise SystemExit(f"litgpt has {theirs} parameters for {shape}, ours {mine}: not the same")
    if args.compile:
        model.compile(dynamic=False)

    def loss(batch: torch.Tensor) -> torch.Tensor:
        logits = model(batch[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())

    def optimizer() -> torch.optim.Optimizer:
        groups = [
            {"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": 0.1},
            {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0},
        ]
        fused = next(model.parameters()).is_cuda or None
        return torch.optim.AdamW(groups, lr=3e-4, betas=(0.9, 0.95), eps=1e-8, fused=fused)

    return model, loss, optimizer


class Trainee:
    """One model on the device with its optimizer and its (fixed) batch."""

    def __init__(
        self, model: nn.Module, loss: Callable, make_optimizer: Callable, batch, bf16: bool
    ):
        self.model, self.loss, self.batch = model, loss, batch
        self.optimizer = make_optimizer()
        self.device = batch.device
        self.bf16 = bf16

    def step(self) -> float:
        """One training step; returns its wall time in seconds."""
        sync(self.device)
        started = time.perf_counter()
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
            loss = self.loss(self.batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        sync(self.device)
        return time.perf_counter() - started


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(shape, args, device, micro_batch, with_reference):
    """Our trainee and, if asked, litgpt's, initialised on the device, sharing one batch."""
    torch.manual_seed(0)
    with device:  # initialise on the device: a 3B model is slow to initialise on the host
        batch = torch.randint(0, args.vocab, (micro_batch, args.seq_len + 1))
        module, loss, optimizer = ours(shape, args)
        bf16 = args.precision == "bf16-mixed"
        trainees = {"ours": Trainee(module, loss, optimizer, batch, bf16)}
        if with_reference:
            model, loss, optimizer = reference(shape, args, module)
            theirs_bf16 = (args.reference_precision or args.precision) == "bf16-mixed"
            trainees["litgpt"] = Trainee(model, loss, optimizer, batch, theirs_bf16)
    return trainees


def measure(shape, args, device, micro_batch, with_reference) -> dict:
    """Warm up, then time `--steps` steps of each trainee, alternating step by step so that both
    see the same machine load; a trainee's speed is its median step."""
    trainees = build(shape, args, device, micro_batch, with_reference)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for trainee in trainees.values():
        for _ in range(args.warmup):
            trainee.step()
    times = {name: [] for name in trainees}
    for _ in range(args.steps):
        for name, trainee in trainees.items():
            times[name].append(trainee.step())
    step_s = {name: statistics.median(t) for name, t in times.items()}
    tokens = micro_batch * args.seq_len
    per_token = flops_per_token(shape, args.seq_len, args.vocab)
    peak = device_peak_flops(device, args.precision)
    row = {
        "n_params": shape.n_params,
        **shape.as_dict(),
        "seq_len": args.seq_len,
        "vocab_size": args.vocab,
        "micro_batch": micro_batch,
        "flops_per_token": per_token,
        **throughput(tokens, step_s["ours"], per_token, peak),
        "peak_memory_gib": (
            torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        ),
    }
    if "litgpt" in step_s:
        theirs = throughput(tokens, step_s["litgpt"], per_token, peak)
        row["litgpt_tokens_per_s"] = theirs["tokens_per_s"]
        row["ratio_vs_litgpt"] = row["tokens_per_s"] / theirs["tokens_per_s"]
    return row


def measure_fitting(shape, args, device, with_reference) -> dict:
    """`measure` at the given micro-batch, or on CUDA the largest power of two (<= 64) that
    fits; an out-of-memory attempt is dropped and the next half tried."""
    if args.micro_batch != "auto":
        return measure(shape, args, device, int(args.micro_batch), with_reference)
    if device.type != "cuda":
        return measure(shape, args, device, 8, with_reference)
    for micro_batch in (64, 32, 16, 8, 4, 2, 1):
        try:
            return measure(shape, args, device, micro_batch, with_reference)
        except torch.OutOfMemoryError:
            pass  # the frames holding the failed attempt's tensors are gone once we leave here
        gc.collect()
        torch.cuda.empty_cache()
    raise SystemExit(f"{shape} does not fit at micro-batch 1; try --activation-checkpointing")


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(rows: list[dict]) -> str:
    reference_cols = any("ratio_vs_litgpt" in r for r in rows)
    head = ["N", "d_model", "n_layer", "d_ff", "micro_batch", "tokens/s", "TFLOP/s", "MFU"]
    head += ["peak GiB"] + (["litgpt tokens/s", "ours/litgpt"] if reference_cols else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            format_size(r["n_params"]),
            str(r["d_model"]),
            str(r["n_layer"]),
            str(r["d_ff"]),
            str(r["micro_batch"]),
            fmt(r["tokens_per_s"], ",.0f"),
            fmt(r["tflops"], ".3f"),
            fmt(r["mfu"], ".1%"),
            fmt(r["peak_memory_gib"], ".1f"),
        ]
        if reference_cols:
            cells += [
                fmt(r.get("litgpt_tokens_per_s"), ",.0f"),
                fmt(r.get("ratio_vs_litgpt"), ".2f"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes",
        default="table2" if cuda else "cpu",
        help="table2 | cpu | laptop | comma-separated sizes (201M,1.13B,5M)",
    )
    parser.add_argument("--seq-len", type=int, default=2048 if cuda else 256)
    parser.add_argument("--vocab", type=int, default=65536 if cuda else 4096)
    parser.add_argument(
        "--micro-batch",
        default="auto",
        help="sequences per step; auto: largest power of two that fits (CPU: 8)",
    )
    parser.add_argument("--warmup", type=int, default=3 if cuda else 2)
    parser.add_argument("--steps", type=int, default=20 if cuda else 9, help="timed steps")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--compile", action="store_true", help="as model.compile=true")
    parser.add_argument(
        "--precision",
        choices=("32-true", "bf16-mixed"),
        help="both models' step; default: bf16-mixed on CUDA, 32-true on CPU (as train.py)",
    )
    parser.add_argument(
        "--reference-precision",
        choices=("32-true", "bf16-mixed"),
        help="litgpt's step when it differs from --precision (e.g. litgpt as run by default)",
    )
    parser.add_argument("--activation-checkpointing", action="store_true")
    parser.add_argument("--backend", default="auto", choices=("auto", "flash", "sdpa"))
    parser.add_argument(
        "--reference", choices=("litgpt", "none"), default="none" if cuda else "litgpt"
    )
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="also write the rows as JSON to PATH (no PATH: stdout)",
    )
    args = parser.parse_args(argv)
    if args.shapes == "laptop":  # the study's own vocabulary, sequence and micro-batch
        args.vocab, args.seq_len = 512, 128
        args.micro_batch = "32" if args.micro_batch == "auto" else args.micro_batch

    device = torch.device("cuda" if cuda else "cpu")
    args.precision = args.precision or ("bf16-mixed" if cuda else "32-true")
    if args.threads:
        torch.set_num_threads(args.threads)
    with_reference = args.reference == "litgpt"
    if with_reference:
        try:
            import litgpt  # noqa: F401
        except ImportError:
            print(f"no side-by-side reference: {LITGPT_MISSING}", file=sys.stderr)
            with_reference = False
    meta = {
        "device": torch.cuda.get_device_name(device) if cuda else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "load_average_1m": os.getloadavg()[0],
        "torch": torch.__version__,
        "flash_attn": flash_available(),
        "command": "python bench/throughput.py " + " ".join(argv),
        **{k: v for k, v in vars(args).items() if k != "json"},
    }
    print(", ".join(f"{k}={v}" for k, v in meta.items()), flush=True)
    rows = []
    for shape in parse_shapes(args.shapes):
        rows.append(measure_fitting(shape, args, device, with_reference))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print("\n" + table(rows))
    if args.json:
        payload = json.dumps({"meta": meta, "rows": rows}, indent=2)
        if args.json == "-":
            print(payload)
        else:
            Path(args.json).write_text(payload + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
