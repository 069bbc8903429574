"""`python -m laws COMMAND ...`: the command-line face of the package.

Commands are the modules of `laws/cli/commands/`, found at start-up: each defines NAME, HELP,
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
from collections.abc import Sequence
from types import ModuleType
from typing import Any, NoReturn

import numpy as np

from laws.cli import commands
from laws.errors import LawsError, RunawayWarning


def command_modules() -> list[ModuleType]:
    names = sorted(m.name for m in pkgutil.iter_modules(commands.__path__))
    return [importlib.import_module(f"{commands.__name__}.{name}") for name in names]


class _Parser(argparse.ArgumentParser):
    """Usage mistakes reported like every other error: one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m laws",
        description="Fit, validate and use scaling-law surfaces L(N, D). See docs/laws.md.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in command_modules():
        sub = subparsers.add_parser(module.NAME, help=module.HELP, description=module.__doc__)
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
