"""Lay out the (N, D) runs of a study and write the sweep file `python sweep.py` launches.

With no bounds, the paper's design: N = 0.2B..3.2B (9 sizes, sqrt(2) apart), D = 2B..128B
(13, sqrt(2) apart). Bounds are LOW:HIGH:COUNT, log-uniform, e.g. --n 100K:400K:3.

With --max-nodes (or --set cluster.max_nodes=N) each run also gets the layout train.py will use
(whole nodes, devices per node, micro-batch, accumulation, global batch) and its wall-clock hours.
The shipped paper design is made by
    python -m laws design --out configs/sweeps/paper.yaml --mixtures 1.0,0.7,0.3 --max-nodes 16 \
        --description "(the file's description)"
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from configs import ConfigError, load_config
from laws.cli.common import Output, format_table, quantity
from laws.errors import LawsError
from laws.runs.design import (
    PAPER_D,
    PAPER_N,
    Estimate,
    add_layouts,
    design_runs,
    log_grid,
    shape_rule,
    sweep_document,
)
from laws.runs.families import add_families, protocol_costs
from laws.runs.hparam_grid import grid_runs
from lightning_modules.shape import in_config_names
from lightning_modules.steplaw import load_hparam_law

NAME = "design"
HELP = "lay out (N, D) runs and write a sweep file"


def grid(text: str) -> tuple[float, float, int]:
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW:HIGH:COUNT, e.g. 100K:400K:3")
    return quantity(parts[0]), quantity(parts[1]), int(parts[2])


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number >= 1")
    return int(text)


def micro_batch(text: str) -> int | str:
    return text if text == "auto" else positive_int(text)


def cluster_overrides(args: argparse.Namespace) -> list[str]:
    """--max-nodes and the settings the layout needs, as train.py overrides. Without --max-nodes
    the others would change nothing the design shows, so they are refused rather than ignored."""
    if args.max_nodes is None:
        given = [
            option
            for option, value in (
                ("--gpus-per-node", args.gpus_per_node),
                ("--micro-batch", args.micro_batch),
                ("--gpu-memory-gb", args.gpu_memory_gb),
            )
            if value is not None
        ]
        if given:
            raise LawsError(
                f"{', '.join(given)} without --max-nodes: the cluster layout needs --max-nodes N "
                "(the most whole nodes a run may use); add it, or pass train.py keys with --set"
            )
        return []
    gpus = 8 if args.gpus_per_node is None else args.gpus_per_node
    micro = "auto" if args.micro_batch is None else args.micro_batch
    memory = 80.0 if args.gpu_memory_gb is None else args.gpu_memory_gb
    return [
        f"cluster.max_nodes={args.max_nodes}",
        f"cluster.gpus_per_node={gpus}",
        f"cluster.gpu_memory_gb={memory:g}",
        f"optim.micro_batch={micro}",
    ]


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
        "--max-nodes",
        type=positive_int,
        help="plan each run on 1..N whole nodes (paper A.3) and show its layout",
    )
    parser.add_argument(
        "--gpus-per-node", type=positive_int, help="with --max-nodes (default 8, as the paper)"
    )
    parser.add_argument(
        "--micro-batch",
        type=micro_batch,
        help="sequences per GPU, or auto (memory model); with --max-nodes (default auto)",
    )
    parser.add_argument(
        "--gpu-memory-gb", type=float, help="for --micro-batch auto; with --max-nodes (default 80)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="train.py override for every run (repeatable), e.g. --set trainer.strategy=fsdp",
    )
    parser.add_argument(
        "--schedule",
        choices=("cosine", "wsd"),
        default="cosine",
        help="cosine: every run from scratch (the paper's); wsd: per size one parent at the "
        "longest budget and decay branches off it (docs/sweeps.md)",
    )
    parser.add_argument("--decay-fraction", type=float, default=0.2, help="wsd: decay share")
    parser.add_argument(
        "--decay-shape", choices=("1-sqrt", "linear", "cosine"), default="1-sqrt", help="wsd"
    )
    parser.add_argument(
        "--wsd-reference",
        choices=("longest", "shortest"),
        default="longest",
        help="wsd: the budget whose Step Law lr and batch a family shares",
    )
    parser.add_argument(
        "--hparam-grid",
        action="store_true",
        help="an lr x batch grid at each of --cells (Step Law's method; fit with laws hparams)",
    )
    parser.add_argument("--cells", type=cells, help='--hparam-grid: "N:D,N:D,..." e.g. 100K:1M')
    parser.add_argument("--lr-steps", type=positive_int, default=9, help="lr values, sqrt(2) apart")
    parser.add_argument("--batch-steps", type=positive_int, default=5, help="batches, 2x apart")
    parser.add_argument(
        "--hparam-law", help="the law whose lr and batch centre the grid (default: Step Law's)"
    )
    parser.add_argument("--description", default="")


def cells(text: str) -> list[tuple[float, float]]:
    found = []
    for part in text.split(","):
        pieces = part.strip().split(":")
        if len(pieces) != 2:
            raise argparse.ArgumentTypeError(f"{part!r}: expected N:D, e.g. 100K:1M")
        found.append((quantity(pieces[0]), quantity(pieces[1])))
    return found


def run(args: argparse.Namespace) -> Output:
    try:
        mixtures = tuple(float(x) for x in args.mixtures.split(","))
    except ValueError as err:
        raise LawsError(f"--mixtures {args.mixtures!r}: expected numbers like 1.0,0.7,0.3") from err
    estimate = Estimate(args.vocab_size, args.seq_len, args.peak_flops, args.mfu)
    if args.hparam_grid:
        if not args.cells:
            raise LawsError('--hparam-grid needs --cells "N:D,N:D,...", e.g. 100K:1M,400K:1M')
        if args.schedule != "cosine" or len(mixtures) > 1:
            raise LawsError("--hparam-grid takes one mixture and the cosine schedule")
        try:
            law = load_hparam_law(args.hparam_law)
        except ConfigError as err:
            raise LawsError(str(err)) from err
        steps = (args.lr_steps, args.batch_steps)
        runs = grid_runs(args.cells, law, *steps, estimate, mixtures[0])
    overrides = [
        f"data.vocab_size={args.vocab_size}",
        f"data.seq_len={args.seq_len}",
        *cluster_overrides(args),
        *args.set,
    ]
    try:
        config = load_config(overrides)
    except ConfigError as err:
        raise LawsError(f"--set: {err}") from err
    planned = config.cluster.max_nodes is not None
    if not args.hparam_grid:
        try:
            runs = design_runs(
                log_grid(*args.n),
                log_grid(*args.d),
                mixtures,
                args.min_d_over_n,
                args.max_d_over_n,
                args.max_flops,
                estimate,
                shape_rule(config.model),
            )
        except ValueError as err:  # the shape rule refuses the attention settings
            raise LawsError(f"--set: {in_config_names(err)}") from err
    out = Path(args.out)
    name = args.name or out.stem
    if planned:
        add_layouts(runs, overrides, args.vocab_size)
    if args.schedule == "wsd":
        if not 0 < args.decay_fraction < 1:
            raise LawsError(f"--decay-fraction {args.decay_fraction}: a share in (0, 1), e.g. 0.2")
        wsd = [f"optim.decay_shape={args.decay_shape}"]
        add_families(
            runs, [*overrides, *wsd], args.vocab_size, args.decay_fraction, args.wsd_reference
        )
        overrides += [
            "optim.schedule=wsd",
            f"optim.decay_fraction={args.decay_fraction}",
            *wsd,
        ]
    document = sweep_document(name, runs, overrides, estimate, args.description)
    costs = protocol_costs(runs)
    if args.schedule == "wsd":
        document["estimate"] = {**document["estimate"], **costs}
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
    rows = runs
    if args.hparam_grid:
        columns[3:3] = [("lr", "lr", ".3g"), ("batch_tokens", "batch", "size")]
    if planned:
        columns += [("layout_text", "nodes x GPUs x micro x acc", ""), ("wall_hours", "h", ".1f")]
        rows = [{**r, "layout_text": layout_text(r["layout"])} for r in runs]
    if config.model.attention != "mha":
        columns.append(("kv_cache_values_per_token", "KV/token", ","))
    if args.schedule == "wsd":
        columns[1:1] = [("role", "role", "")]
        columns.append(("trained_flops", "trained", ".3g"))
    total = document["estimate"]
    text = format_table(rows, columns) + (
        f"\n{len(runs)} runs, {total['total_flops']:.3g} FLOPs, about {total['total_gpu_hours']:,} "
        f"GPU-hours at {total['gpu_hours_at']}; written to {out}"
    )
    if args.schedule == "wsd":
        text += (
            f"\ncompute: cosine from scratch {costs['cosine_flops']:.3g} FLOPs, WSD families "
            f"{costs['wsd_flops']:.3g} FLOPs: {costs['saving']:.0%} saved"
        )
    return Output({"out": str(out), **document}, text)


def layout_text(layout: dict) -> str:
    return (
        f"{layout['num_nodes']} x {layout['devices']} x {layout['micro_batch']} x "
        f"{layout['grad_accumulation']} = {layout['global_batch_sequences']}"
    )
