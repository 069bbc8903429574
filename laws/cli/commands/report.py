"""A study on one page: report.html (self-contained, opens offline) and report.md beside the
figures' PNG and PDF files. Laws come from --fits, or are fitted here (Chinchilla and, where
the runs allow, Farseer; a form that cannot be fitted is listed with the reason). Each law's
status, its held-out error (by default: refitted without the largest model size) before its
in-sample error, and the runs left out are printed here and shown on the page."""

from __future__ import annotations

import argparse

from laws.cli.common import (
    Output,
    add_no_average,
    add_references,
    cutoff,
    format_table,
    note_repeats,
    quantity,
)
from laws.fit.chinchilla import GRIDS
from laws.present.figures import Reference
from laws.present.report import build_report
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN

NAME = "report"
HELP = "one self-contained HTML page (and Markdown) with the laws, errors, allocation, figures"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="runs/ directory, or .csv / .jsonl")
    parser.add_argument(
        "--out", required=True, help="directory for report.html, report.md, figures"
    )
    parser.add_argument("--fits", nargs="+", default=[], metavar="F", help="fit or law files")
    parser.add_argument("--label", nargs="+", default=[], help="one per --fits (default: stems)")
    parser.add_argument(
        "--holdout",
        type=cutoff,
        metavar="CUT",
        help="fit below n<N or c<C and report the error on the rest (with --fits: the runs "
        "those fits did not see; default: laws fitted here are refitted without the largest "
        "model size, fit files show their own holdout or extrapolation check)",
    )
    parser.add_argument(
        "--budgets",
        type=quantity,
        nargs="+",
        default=[],
        metavar="C",
        help="budgets of the allocation table (default: the largest run's decade and two above)",
    )
    add_references(parser)
    parser.add_argument(
        "--grid", choices=sorted(GRIDS), default="hoffmann", help="Chinchilla starting grid"
    )
    parser.add_argument("--mixture", help="only this mixture (default: every mixture)")
    parser.add_argument("--language", help="this language's loss instead of the overall one")
    parser.add_argument("--workers", type=int, help="processes for the Chinchilla fits")
    parser.add_argument("--flops-per-token", type=float, default=DEFAULT_FLOPS_PER_TOKEN)
    add_no_average(parser)


def run(args: argparse.Namespace) -> Output:
    report = build_report(
        args.results,
        args.out,
        fits=args.fits,
        labels=args.label,
        cut=args.holdout,
        budgets=args.budgets,
        references=[Reference(n, d, loss) for n, d, loss in args.reference],
        grid=args.grid,
        mixture=args.mixture,
        language=args.language,
        workers=args.workers,
        flops_per_token=args.flops_per_token,
        average=not args.no_average,
    )
    data = report.to_json()
    note_repeats(data["repeats"])
    errors = report.tables["errors"]
    rows = [dict(zip(errors.headers, row, strict=True)) for row in errors.rows]
    columns = [(h, h, "") for h in errors.headers]
    lines = [f"{law['label']}: status {law['status'] or '-'}" for law in data["laws"]]
    lines += [f"  problem: {p}" for law in data["laws"] for p in law["problems"] or []]
    lines.append(format_table(rows, columns))
    lines += [f"not fitted: {s['label']}: {s['reason']}" for s in data["skipped"]]
    if data["left_out"]:
        lines.append(f"left out of the fits: {len(data['left_out'])} (listed in the report)")
    lines.append(f"written: {data['html']}, {data['markdown']} and {len(data['figures'])} figures")
    return Output(data, "\n".join(lines))
