"""What the `python -m laws` commands share: the Output they return, argparse types for sizes
and cut-offs, reading RESULTS as every command reads it (repeats averaged, left-out runs noted
on stderr), reading a fit file, and the text table.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

from laws.analysis.validate import Cutoff
from laws.errors import LawsError
from laws.fit.forms import Law, PerLanguage, law_from_json, read_json
from laws.runs.read import read_runs
from laws.runs.table import Runs, repeat_note, repeat_summary
from laws.units import human, parse_quantity


@dataclass
class Output:
    data: Any  # what --json prints
    text: str  # what a person reads


def quantity(text: str) -> float:
    """argparse type for sizes written 2.27B, 341e9 or 5.36e21."""
    try:
        return parse_quantity(text)
    except LawsError:
        raise argparse.ArgumentTypeError(
            f"cannot read {text!r} as a number; write e.g. 2.27B, 341e9, 5.36e21"
        ) from None


def cutoff(text: str) -> Cutoff:
    """argparse type for --holdout n<2.27B / c<1e20."""
    try:
        return Cutoff.parse(text)
    except LawsError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_no_average(parser: argparse.ArgumentParser) -> None:
    """--no-average: for the commands that read RESULTS (`load_runs`)."""
    parser.add_argument(
        "--no-average",
        action="store_true",
        help="refuse repeated runs of one (N, D, mixture, language) instead of averaging them",
    )


def load_runs(args: argparse.Namespace) -> Runs:
    """args.results read as every command reads it: repeats averaged (and said so on stderr)
    unless --no-average; runs left out for other reasons counted on stderr too."""
    runs = read_runs(args.results, args.flops_per_token, average=not args.no_average)
    note_repeats(repeat_summary(runs))
    note_left_out(runs)
    return runs


def note_left_out(runs: Runs) -> None:
    """One stderr line for the runs read but left out (failed, unusable); averaged repeats have
    their own note."""
    kinds = Counter(x.kind for x in runs.left_out if x.kind != "averaged")
    if kinds:
        counts = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
        print(
            f"note: left out {sum(kinds.values())} runs ({counts}); listed with the fit",
            file=sys.stderr,
        )


def note_repeats(summary: dict[str, Any]) -> None:
    note = repeat_note(summary)
    if note:
        print(f"note: {note}", file=sys.stderr)


def add_references(parser: argparse.ArgumentParser) -> None:
    """--reference N D LOSS (repeatable): known models placed on the optimal-loss panel."""
    parser.add_argument(
        "--reference",
        type=quantity,
        nargs=3,
        action="append",
        default=[],
        metavar=("N", "D", "LOSS"),
        help="a model placed on the optimal-loss panel at C = 6ND; repeatable",
    )


def read_fit(path: str, language: str | None = None) -> tuple[Law, dict[str, Any] | None]:
    """The law in a fit (or hand-written law) file, and the data domain if the file has one."""
    data = read_json(path)
    law = law_from_json(data)
    if isinstance(law, PerLanguage):
        chosen = law.law_for(language)
        return chosen, data["languages"][language].get("domain")
    if language is not None:
        raise LawsError(f"{path} holds one law for all languages; drop --language")
    return law, data.get("domain")


def format_table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """Aligned text table; columns are (key, header, format spec or 'size'); text columns
    (spec '') are left-aligned, numbers right-aligned."""

    def cell(value: Any, spec: str) -> str:
        if value is None:
            return "-"
        if spec == "size":
            return human(value)
        return format(value, spec) if spec else str(value)

    body = [[cell(row.get(key), spec) for key, _, spec in columns] for row in rows]
    headers = [header for _, header, _ in columns]
    widths = [max(len(x) for x in col) for col in zip(headers, *body, strict=True)]
    left = [spec == "" for _, _, spec in columns]

    def line(cells: list[str]) -> str:
        parts = zip(cells, widths, left, strict=True)
        return "  ".join(c.ljust(w) if lj else c.rjust(w) for c, w, lj in parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in body)])
