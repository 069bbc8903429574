"""Lay out a language-synergy measurement and write its sweep file: for every target language i,
D_i tokens of i alone (repeated with --seeds, for the noise), D_i + D_a of i alone, D_i of i plus
D_a of each other language j, and D_i with a share q of it replaced by j (laws/analysis/synergy.py).
Every run shares one learning rate and batch (those of the largest budget, by
optim.reference_tokens), so only the data differ between runs. Analyse with `laws synergy`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from configs import ConfigError, load_config
from laws.analysis.synergy import synergy_design
from laws.cli.common import Output, format_table, quantity
from laws.errors import LawsError
from laws.runs.design import Estimate, design_runs, shape_rule, sweep_document

NAME = "synergy-design"
HELP = "lay out the runs that measure how one language's tokens help another's loss"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--languages", required=True, help="e.g. Python,C,C++ (the pool's names)")
    parser.add_argument("--n", type=quantity, required=True, help="the one model size")
    parser.add_argument("--base", type=quantity, required=True, help="D_i: the target's tokens")
    parser.add_argument("--added", type=quantity, required=True, help="D_a: tokens added")
    parser.add_argument("--replace", type=float, default=0.25, help="q: share of D_i replaced")
    parser.add_argument("--seeds", type=int, default=2, help="seeds of each base run (noise)")
    parser.add_argument("--vocab-size", type=int, default=65536)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", required=True, help="sweep YAML to write")
    parser.add_argument("--name", help="sweep name (default: the file's stem)")
    parser.add_argument("--description", default="")


def run(args: argparse.Namespace) -> Output:
    languages = [x.strip() for x in args.languages.split(",") if x.strip()]
    planned = synergy_design(languages, args.n, args.base, args.added, args.replace, args.seeds)
    reference = round(args.base + args.added)
    overrides = [
        f"data.vocab_size={args.vocab_size}",
        f"data.seq_len={args.seq_len}",
        f"optim.reference_tokens={reference}",
        *args.set,
    ]
    try:
        config = load_config(overrides)
    except ConfigError as err:
        raise LawsError(f"--set: {err}") from err
    estimate = Estimate(args.vocab_size, args.seq_len)
    runs = []
    for spec in planned:
        (cost,) = design_runs(
            np.asarray([spec["n"]]),
            np.asarray([spec["tokens"]]),
            estimate=estimate,
            shape_of=shape_rule(config.model),
        )
        own = [f"data.languages={spec['languages']}", f"run.seed={spec['seed']}"]
        runs.append({**cost, "name": spec["name"], "overrides": own})
    out = Path(args.out)
    document = sweep_document(args.name or out.stem, runs, overrides, estimate, args.description)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(document, sort_keys=False, width=100))
    rows = [{**r, "languages": r["overrides"][0].partition("=")[2]} for r in runs]
    table = format_table(
        rows,
        [("name", "run", ""), ("tokens", "D", "size"), ("languages", "languages", "")],
    )
    return Output(document, f"{table}\n\n{len(runs)} runs at N={args.n:.3g}; written: {out}")
