"""`python -m laws COMMAND ...`: the command-line face of the package.

Commands are the modules `laws/cmd_*.py`, found at start-up: each defines NAME, HELP,
`add_arguments(parser)` and `run(args) -> Output`, so a new command (design, collect, plot,
report, ...) is one new module and nothing here changes. Every command takes --json (the data
as JSON on stdout) and otherwise prints a readable table. Bad input is reported as one line
`error: ...` with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn

import numpy as np

import laws
from laws.data import Runs, parse_quantity, repeat_note, repeat_summary
from laws.errors import LawsError, RunawayWarning
from laws.forms import Law, PerLanguage, law_from_json, read_json
from laws.results import read_runs
from laws.validate import Cutoff

COMMAND_PREFIX = "cmd_"


@dataclass
class Output:
    data: Any  # what --json prints
    text: str  # what a person reads


def command_modules() -> list[ModuleType]:
    names = sorted(
        m.name for m in pkgutil.iter_modules(laws.__path__) if m.name.startswith(COMMAND_PREFIX)
    )
    return [importlib.import_module(f"laws.{name}") for name in names]


class _Parser(argparse.ArgumentParser):
    """Usage mistakes reported like every other error: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m laws",
        description="Fit, validate and use scaling-law surfaces L(N, D). See docs/laws.md.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.__doc__)
        sub.add_argument("--json", action="store_true", help="print JSON instead of a table")
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line
        warnings.simplefilter("always", RunawayWarning)
        try:
            output = args.handler(args)
        except LawsError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    print(json.dumps(output.data, indent=2, default=_plain) if args.json else output.text)
    return 0


def _one_line(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as `warning: ...` on stderr, like errors, without source lines."""
    print(f"warning: {message}", file=sys.stderr)


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# Helpers shared by the commands.


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


def human(value: float) -> str:
    """2.27B, 341B, 120M: the way sizes are written in the paper."""
    for suffix, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(float(f"{value:.3g}")) >= scale:  # 999,936 is 1M, not 1e+03K
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.4g}"


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
