"""Measure language synergy from the runs of a `laws synergy-design` sweep: for each target
language i and auxiliary j, the change in i's validation BPC when j's tokens are added to (or
replace part of) i's, against the seed noise, and the transfer T_ij (the tokens of i one token of j
is worth; laws/analysis/synergy.py). Written as JSON for `laws allocate` and `laws plot synergy`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from laws.analysis.language_laws import exponents_by_language
from laws.analysis.synergy import synergy
from laws.cli.common import Output, format_table
from laws.fit.forms import read_json
from laws.runs.language_runs import read_language_runs

NAME = "synergy"
HELP = "the language transfer matrix of a synergy sweep's runs"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="runs/ directory of the synergy sweep, or a .jsonl")
    parser.add_argument(
        "--exponents",
        help="a `laws fit --per-language` file: each language's data exponent shapes its local "
        "curve (default: log-linear between the base and self-add runs)",
    )
    parser.add_argument("--level", type=float, default=0.95, help="interval level")
    parser.add_argument("--out", help="write the analysis here (JSON)")


def run(args: argparse.Namespace) -> Output:
    runs, left_out = read_language_runs(args.results)
    exponents = exponents_by_language(read_json(args.exponents)) if args.exponents else {}
    result = synergy(runs, exponents, args.level)
    result["left_out"] = left_out
    result["exponents_from"] = args.exponents
    languages = result["languages"]
    matrix = [
        {"target": i, **{j: result["matrix"][i].get(j) for j in languages}} for i in languages
    ]
    columns = [("target", "target \\ added", "")] + [(j, j, ".3f") for j in languages]
    text = [
        f"transfer T_ij at N={result['n']:.3g} (tokens of the target one added token is worth; "
        "1 on the diagonal by definition), one constant per pair fitted to all its runs:",
        format_table(matrix, columns),
        "pairs (runs: those holding the target and one other language; shares: the target's "
        f"share of their tokens; T's {args.level:.0%} interval; undefined: the share of noise "
        "draws whose self-add did not help, left out of it; p: does one constant fit, F test "
        "against the seed noise):",
        format_table(
            [{**p, "share_range": "{:.2f}-{:.2f}".format(*p["shares"])} for p in result["pairs"]],
            [
                ("target", "target", ""),
                ("auxiliary", "with", ""),
                ("cells", "runs", "d"),
                ("share_range", "shares", ""),
                ("transfer", "T", "+.3f"),
                ("transfer_low", "low", "+.3f"),
                ("transfer_high", "high", "+.3f"),
                ("undefined_draws", "undefined", ".1%"),
                ("p_one_constant", "p", ".2g"),
            ],
        ),
        "runs (change: target BPC minus its base mean; noise: its sd from the base's seeds; "
        f"T's {args.level:.0%} interval from the noise of the base, self-add and run):",
        format_table(
            result["cells"],
            [
                ("target", "target", ""),
                ("auxiliary", "with", ""),
                ("kind", "kind", ""),
                ("share", "share", ".2f"),
                ("change", "change", "+.4f"),
                ("noise", "noise", ".4f"),
                ("z", "z", "+.1f"),
                ("transfer", "T", "+.3f"),
                ("transfer_low", "low", "+.3f"),
                ("transfer_high", "high", "+.3f"),
            ],
        ),
    ]
    text += [f"note: {note}" for note in result["notes"]]
    text += [f"left out (not completed): {name}" for name in left_out]
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        text.append(f"written: {args.out}")
    return Output(result, "\n\n".join(text))
