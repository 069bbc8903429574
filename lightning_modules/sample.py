"""Completions from a trained run, decoded with a KV cache: what a model of a given (N, D) writes.

    python -m lightning_modules.sample RUN_DIR --prompt "def fibonacci(n):" --max-new-tokens 64 \\
        [--temperature T] [--top-p P] [--seed S] [--samples K] [--checkpoint last|PATH]

The prompt starts a document (the separator token goes before it, as in training). Temperature 0
is greedy decoding. A model knows positions up to its training sequence length: when prompt and
completion reach it, the last half is kept and re-read (a sliding window), so any length can be
asked for.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from lightning_modules.model import Decoder
from lightning_modules.trained import TrainedRunError, decoder_of, load_checkpoint, run_pool


def next_token(logits: torch.Tensor, temperature: float, top_p: float, generator) -> int:
    """Greedy at temperature 0; else a draw from the smallest set of tokens whose probability
    reaches top_p (nucleus sampling), at the given temperature."""
    logits = logits.double().cpu()  # the generator lives on the CPU, whatever the model's device
    if temperature == 0:
        return int(logits.argmax())
    probs = torch.softmax(logits / temperature, dim=-1)
    ordered, order = probs.sort(descending=True)
    keep = ordered.cumsum(0) - ordered < top_p  # the first token always stays
    ordered = ordered * keep
    choice = torch.multinomial(ordered / ordered.sum(), 1, generator=generator)
    return int(order[choice])


@torch.no_grad()
def generate(
    decoder: Decoder,
    prompt: list[int],
    max_new_tokens: int,
    stop: int | None = None,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
) -> list[int]:
    """The tokens after `prompt` (up to `stop`, excluded, or max_new_tokens)."""
    window, device = decoder.cfg.seq_len, decoder.head.weight.device
    generator = torch.Generator().manual_seed(seed)
    context, out = list(prompt[-window:]), []
    cache = decoder.new_cache()
    logits = decoder(torch.tensor([context], device=device), cache)[0, -1]
    while len(out) < max_new_tokens:
        token = next_token(logits, temperature, top_p, generator)
        if token == stop:
            break
        out.append(token)
        context.append(token)
        if len(context) > window:  # positions run out: keep the last half, read it again
            context = context[-(window // 2) :]
            cache = decoder.new_cache()
            logits = decoder(torch.tensor([context], device=device), cache)[0, -1]
        else:
            logits = decoder(torch.tensor([[token]], device=device), cache)[0, -1]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lightning_modules.sample",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dir")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--checkpoint", default="last")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if args.temperature < 0 or not 0 < args.top_p <= 1:
        parser.error("--temperature must be >= 0 and --top-p in (0, 1]")
    try:
        run_dir = Path(args.run_dir)
        decoder = decoder_of(load_checkpoint(run_dir, args.checkpoint)).to(args.device)
        pool = run_pool(run_dir)
    except TrainedRunError as err:
        print(f"sample error: {err}", file=sys.stderr)
        return 2
    tokenizer = pool.tokenizer
    prompt = [pool.eos_id] + tokenizer.encode(args.prompt).ids
    for k in range(args.samples):
        ids = generate(
            decoder,
            prompt,
            args.max_new_tokens,
            pool.eos_id,
            args.temperature,
            args.top_p,
            args.seed + k,
        )
        print(f"--- sample {k + 1} ({len(ids)} tokens)")
        print(args.prompt + tokenizer.decode(ids, skip_special_tokens=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
