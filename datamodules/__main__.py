"""Command line for token pools.

    python -m datamodules prepare --code SPEC [--nl SPEC] [--val SPEC] --out DIR
                                  [--vocab-size V | --tokenizer FILE] [--lang-weights HTML=0.05,...]
    python -m datamodules info --pool DIR
    python -m datamodules stream --pool DIR --tokens D --code-fraction r --seq-len S --out FILE.npz

A SPEC is a file, a directory or a glob (parquet, jsonl[.gz|.zst], or a tree of source files);
join several with commas. `installed` is the embedded default's corpus (this Python's standard
library and installed distributions, cleaned; docs/data.md), `stdlib` the standard library alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import numpy as np

from configs import ConfigError, parse_size
from datamodules.language_mix import mixed_stream, parse_languages
from datamodules.mixture import BudgetError
from datamodules.pool import PoolError, TokenPool
from datamodules.prepare import PrepareSpec, prepare
from datamodules.sources import SourceError


def specs(value: str | None) -> tuple[str, ...]:
    return tuple(part for part in (value or "").split(",") if part)


def lang_weights(value: str) -> dict[str, float]:
    weights = {}
    for item in specs(value):
        name, sep, weight = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{item!r}: expected LANGUAGE=WEIGHT, e.g. HTML=0.05")
        weights[name.strip()] = float(weight)
    return weights


def columns(value: str) -> tuple[str, ...]:
    return specs(value)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m datamodules", description=__doc__.split("\n")[0])
    sub = top.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="build a token pool (resumable)")
    p.add_argument(
        "--code", required=True, help="code sources: SPEC[,SPEC...], `installed`, `stdlib`"
    )
    p.add_argument("--nl", default="", help="natural-language sources, for mixtures")
    p.add_argument(
        "--val",
        default="",
        help="code validation set; default: hold out by a hash of each document's name",
    )
    p.add_argument("--val-fraction", type=float, default=0.02, help="share held out without --val")
    p.add_argument(
        "--val-fraction-by-language",
        type=lang_weights,
        default={},
        help="per-language shares held out instead, e.g. C=0.03,C++=0.12",
    )
    p.add_argument("--out", required=True, help="pool folder to create")
    vocab = p.add_mutually_exclusive_group()
    vocab.add_argument("--vocab-size", type=int, help="train a byte-level BPE (default 65536)")
    vocab.add_argument("--tokenizer", help="use this tokenizer.json instead")
    p.add_argument("--tokenizer-sample", default="1G", help="text to train the BPE on (bytes)")
    p.add_argument("--lang-weights", type=lang_weights, default={}, help="e.g. HTML=0.05,Java=0.5")
    p.add_argument("--near-dup-threshold", type=float, default=0.8, help="MinHash Jaccard")
    p.add_argument("--seed", type=int, default=1234, help="the pool's one shuffle")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--text-column", type=columns, default="content,text")
    p.add_argument("--language-column", type=columns, default="language,lang")
    p.add_argument("--path-column", type=columns, default="path,max_stars_repo_path,file_path")
    p.add_argument("--no-progress", action="store_true")

    i = sub.add_parser("info", help="print a pool's counts as JSON")
    i.add_argument("--pool", required=True)

    s = sub.add_parser("stream", help="write the exact token ids a run trains on")
    s.add_argument("--pool", required=True)
    s.add_argument("--tokens", required=True, help="budget D, e.g. 2M (a multiple of --seq-len)")
    s.add_argument("--code-fraction", type=float, default=1.0)
    s.add_argument("--languages", help="the run's data.languages, e.g. Python=0.5,C=0.5")
    s.add_argument("--seq-len", type=int, required=True)
    s.add_argument("--out", required=True, help="FILE.npz with arrays `tokens` and `source`")
    return top


def run_prepare(args: argparse.Namespace) -> None:
    spec = PrepareSpec(
        code=specs(args.code),
        nl=specs(args.nl),
        val=specs(args.val),
        val_fraction=args.val_fraction,
        val_fraction_by_language=args.val_fraction_by_language,
        vocab_size=None if args.tokenizer else (args.vocab_size or 65536),
        tokenizer=args.tokenizer,
        tokenizer_sample_bytes=int(parse_size(args.tokenizer_sample, "--tokenizer-sample")),
        lang_weights=args.lang_weights,
        near_dup_threshold=args.near_dup_threshold,
        seed=args.seed,
        text_columns=args.text_column,
        language_columns=args.language_column,
        path_columns=args.path_column,
    )
    pool = prepare(spec, args.out, workers=args.workers, progress=not args.no_progress)
    print(json.dumps(pool_info(pool), indent=2))


def pool_info(pool: TokenPool) -> dict:
    meta = pool.meta
    return {
        "pool": str(pool.path),
        "vocab_size": meta["vocab_size"],
        "dtype": meta["dtype"],
        "tokenizer_hash": meta["tokenizer_hash"],
        "train": meta["train"],
        "val": meta["val"],
        "removed": meta["removed"],
        "skipped": meta["skipped"],
        **({"corpus": meta["corpus"]} if "corpus" in meta else {}),
    }


def run_stream(args: argparse.Namespace) -> None:
    if not 0.0 <= args.code_fraction <= 1.0:
        raise ConfigError(
            f"--code-fraction {args.code_fraction}: the share of code tokens, between 0 and 1 "
            "(1.0 pure code; the paper's mixtures are 0.7 and 0.3)"
        )
    if args.seq_len < 1:
        raise ConfigError(f"--seq-len {args.seq_len}: a sequence holds at least 1 token")
    tokens = int(parse_size(args.tokens, "--tokens"))
    if tokens % args.seq_len:
        raise BudgetError(
            f"--tokens {tokens} is not a multiple of --seq-len {args.seq_len}; a run trains whole "
            "sequences (use the `tokens` of its plan.json)"
        )
    pool = TokenPool(args.pool)
    languages = parse_languages(args.languages) if args.languages else None
    stream = mixed_stream(pool, args.code_fraction, args.seq_len, languages, tokens)
    ids, source = stream.head(tokens)
    np.savez(args.out, tokens=ids, source=source)
    print(
        json.dumps(
            {"out": args.out, "tokens": int(len(ids)), "code_tokens": int(source.sum())}, indent=2
        )
    )


_FORMAT_WARNING = warnings.formatwarning


def format_warning(message, category, filename, lineno, line=None) -> str:
    """This code's warnings (about the user's data and flags) as one `warning: ...` line next to
    the errors; others, such as a library's deprecations, keep their source location."""
    if category is UserWarning:
        return f"warning: {message}\n"
    return _FORMAT_WARNING(message, category, filename, lineno, line)


def main(argv: list[str]) -> int:
    warnings.formatwarning = format_warning
    args = parser().parse_args(argv)
    try:
        if args.command == "prepare":
            run_prepare(args)
        elif args.command == "info":
            print(json.dumps(pool_info(TokenPool(args.pool)), indent=2))
        else:
            run_stream(args)
    except (PoolError, SourceError, BudgetError, ConfigError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
