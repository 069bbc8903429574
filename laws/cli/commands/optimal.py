"""Compute-optimal allocation from a fit: N_opt, D_opt, D/N and the loss for each budget C
(closed form for Chinchilla, a trust-region search for Farseer), or the compute-optimal D for
given model sizes with --n."""

from __future__ import annotations

import argparse

from laws.analysis.optimal import TrustRegion, compute_optimal, optimal_tokens
from laws.cli.common import Output, format_table, quantity, read_fit
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN

NAME = "optimal"
HELP = "compute-optimal N, D for budgets (or D for model sizes)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fit", required=True, help="fit or law JSON")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--compute", type=quantity, nargs="+", metavar="C", help="FLOPs budgets")
    target.add_argument("--n", type=quantity, nargs="+", metavar="N", help="model sizes")
    parser.add_argument("--flops-per-token", type=float, default=DEFAULT_FLOPS_PER_TOKEN)
    parser.add_argument(
        "--n-range",
        type=quantity,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="trust region for N (default: the fit's data range widened by --extrapolation)",
    )
    parser.add_argument("--extrapolation", type=float, default=100.0, help="widening factor")
    parser.add_argument("--min-d-over-n", type=float, default=1.0)
    parser.add_argument("--max-d-over-n", type=float, default=1e5)
    parser.add_argument("--language", help="for a per-language fit")


def run(args: argparse.Namespace) -> Output:
    law, domain = read_fit(args.fit, args.language)
    around = TrustRegion.around(domain, args.extrapolation)
    low, high = args.n_range or (around.n_min, around.n_max)
    region = TrustRegion(low, high, args.min_d_over_n, args.max_d_over_n, around.fitted_n)
    k = args.flops_per_token
    if args.compute:
        points = [compute_optimal(law, c, k, region) for c in args.compute]
    else:
        points = [optimal_tokens(law, n, k, region) for n in args.n]
    rows = [p.to_json() for p in points]
    shown = [
        {**r, "note": "; ".join(filter(None, (p.note, p.extrapolation)))}
        for r, p in zip(rows, points, strict=True)
    ]
    text = format_table(
        shown,
        [
            ("compute", "C", ".3g"),
            ("n_opt", "N_opt", "size"),
            ("d_opt", "D_opt", "size"),
            ("d_over_n", "D/N", ".1f"),
            ("loss", "loss", ".6f"),
            ("note", "note", ""),
        ],
    )
    return Output(rows, f"{text}\nirreducible loss of this {law.name} law: {law.irreducible():.4g}")
