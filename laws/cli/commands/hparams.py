"""Fit hyperparameter laws lr = c N^alpha D^beta and batch = d D^gamma to a grid of runs
(Step Law's method): each (N, D) cell's optimum and its near-optimal runs (loss within
--tolerance of the best), least squares in logs, bootstrap intervals, and what the fitted law's
own choice loses in each cell. Cells whose best run is on the grid's edge are listed and left out.
The law file is what `optim.hparam_law=FILE` reads."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from laws.analysis.hparams import TOLERANCE, fit_hparams, read_grid
from laws.cli.common import Output, format_table

NAME = "hparams"
HELP = "fit lr(N, D) and batch(D) laws to an lr x batch grid of runs (Step Law's method)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="runs/ directory of a --hparam-grid sweep, or CSV")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="near-optimal margin")
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples for intervals")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the law file (JSON) here")


def run(args: argparse.Namespace) -> Output:
    law = fit_hparams(read_grid(args.results), args.tolerance, args.bootstrap, args.seed)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(law, indent=2) + "\n")
    return Output(law, report_text(law, args.out))


def _span(interval: list[float] | None, spec: str) -> str:
    return "no bootstrap" if interval is None else f"{interval[0]:{spec}}..{interval[1]:{spec}}"


def report_text(law: dict, out: str | None) -> str:
    lr, batch, test = law["lr"], law["batch_tokens"], law["batch_n_test"]
    iv = lr["interval"]
    supported = {True: "supported by the data", False: "not supported (interval holds 0)"}
    lines = [
        f"lr = {lr['coef']:.4g} N^{lr['n_exponent']:.3f} D^{lr['d_exponent']:.3f}   "
        f"({law['bootstrap']['level']:.0%}: coef {_span(iv['coef'], '.3g')}, "
        f"N {_span(iv['n_exponent'], '.3f')}, D {_span(iv['d_exponent'], '.3f')})",
    ]
    if batch is None:
        lines.append("batch: no law (see the problems below); train.py keeps Step Law's batch")
    else:
        lines.append(
            f"batch = {batch['coef']:.4g} D^{batch['d_exponent']:.3f} tokens   "
            f"(D {_span(batch['interval']['d_exponent'], '.3f')})"
        )
    if test["n_exponent"] is not None:
        lines.append(
            f"an N term in the batch law: exponent {test['n_exponent']:+.3f} "
            f"({_span(test['interval'], '+.3f')}): {supported.get(test['supported'], 'untested')}"
        )
    near = law["near_optimal_runs"]
    lines += [
        f"fitted on {near['lr']} (lr) and {near['batch']} (batch) near-optimal runs, loss within "
        f"{law['tolerance']:.2%} of their cell's best; bootstrap {law['bootstrap']['resamples']} "
        f"resamples, {law['bootstrap']['failed']} failed",
        *(f"problem: {p}" for p in law["problems"]),
        "",
    ]
    rows = [
        {
            **c,
            "best_lr": c["best"]["lr"],
            "best_batch": c["best"]["batch_tokens"],
            "law_lr": c["predicted"]["lr"],
            "law_batch": c["predicted"]["batch_tokens"],
            "lost": None if c["loss_lost"] is None else 100 * c["loss_lost"],
            "status": ", ".join(k for k, v in c["used"].items() if v) or "-",
        }
        for c in law["cells"]
    ]
    columns = [
        ("n", "N", "size"),
        ("d", "D", "size"),
        ("runs", "runs", "d"),
        ("near_optimal", "near", "d"),
        ("best_lr", "best lr", ".3g"),
        ("best_batch", "best batch", "size"),
        ("law_lr", "law lr", ".3g"),
        ("law_batch", "law batch", "size"),
        ("lost", "loss lost %", ".3f"),
        ("status", "used in", ""),
    ]
    lines.append(format_table(rows, columns))
    lines.append("loss lost: the landscape (linear in log lr, log batch) at the law's point, vs")
    lines.append("the cell's best run")
    if out:
        lines.append(f"written: {out}")
    return "\n".join(lines)
