"""Lay out the (N, D) runs of a study and write the sweep file `python sweep.py` launches.

With no bounds, the paper's design: N = 0.2B..3.2B (9 sizes, sqrt(2) apart), D = 2B..128B
(13, sqrt(2) apart). Bounds are LOW:HIGH:COUNT, log-uniform, e.g. --n 100K:400K:3.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from laws.cli import Output, format_table, quantity
from laws.design import PAPER_D, PAPER_N, Estimate, design_runs, log_grid, sweep_document
from laws.errors import LawsError

NAME = "design"
HELP = "lay out (N, D) runs and write a sweep file"


def grid(text: str) -> tuple[float, float, int]:
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW:HIGH:COUNT, e.g. 100K:400K:3")
    return quantity(parts[0]), quantity(parts[1]), int(parts[2])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="sweep YAML to write (configs/sweeps/X.yaml)")
    parser.add_argument(
        "--name", help="sweep name (default: the file's stem); runs go to runs/NAME"
    )
    parser.add_argument("--n", type=grid, default=PAPER_N, help="N bounds LOW:HIGH:COUNT")
    parser.add_argument("--d", type=grid, default=PAPER_D, help="D bounds LOW:HIGH:COUNT")
    parser.add_argument("--mixtures", default="1.0", help="code fractions, e.g. 1.0,0.7,0.3")
    parser.add_argument("--min-d-over-n", type=float, help="drop runs with fewer tokens per param")
    parser.add_argument("--max-d-over-n", type=float, help="drop runs with more tokens per param")
    parser.add_argument("--max-flops", type=quantity, help="drop runs above this 6ND budget")
    parser.add_argument("--vocab-size", type=int, default=65536)
    parser.add_argument("--seq-len", type=int, default=2048)
    parser.add_argument("--mfu", type=float, default=0.4, help="for the GPU-hour estimate")
    parser.add_argument("--peak-flops", type=quantity, default=Estimate.peak_flops)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="train.py override for every run (repeatable), e.g. --set cluster.max_nodes=16",
    )
    parser.add_argument("--description", default="")


def run(args: argparse.Namespace) -> Output:
    try:
        mixtures = tuple(float(x) for x in args.mixtures.split(","))
    except ValueError as err:
        raise LawsError(f"--mixtures {args.mixtures!r}: expected numbers like 1.0,0.7,0.3") from err
    estimate = Estimate(args.vocab_size, args.seq_len, args.peak_flops, args.mfu)
    runs = design_runs(
        log_grid(*args.n),
        log_grid(*args.d),
        mixtures,
        args.min_d_over_n,
        args.max_d_over_n,
        args.max_flops,
        estimate,
    )
    out = Path(args.out)
    name = args.name or out.stem
    overrides = [f"data.vocab_size={args.vocab_size}", f"data.seq_len={args.seq_len}", *args.set]
    document = sweep_document(name, runs, overrides, estimate, args.description)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(document, sort_keys=False, width=100))
    columns = [
        ("name", "run", ""),
        ("n_params", "N", "size"),
        ("tokens", "D", "size"),
        ("d_over_n", "D/N", ".1f"),
        ("flops", "6ND", ".3g"),
        ("gpu_hours", "GPU-h", ".1f"),
    ]
    total = document["estimate"]
    text = format_table(runs, columns) + (
        f"\n{len(runs)} runs, {total['total_flops']:.3g} FLOPs, about {total['total_gpu_hours']:,} "
        f"GPU-hours at {total['gpu_hours_at']}; written to {out}"
    )
    return Output({"out": str(out), **document}, text)
