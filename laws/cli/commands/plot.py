"""Draw one of the paper's figures as KIND.png and KIND.pdf: design (Fig. 2) from runs; scaling
(Fig. 3) and quality from runs and one fit; surface (Fig. 4, 5), optimal (Fig. 1, 4) and
mixtures (Fig. 6, 7) from fit files alone (runs are added where given), so laws typed in from a
paper can be drawn too."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from laws.analysis.hparams import fit_hparams, read_grid
from laws.cli.common import Output, add_no_average, add_references, cutoff, load_runs, quantity
from laws.errors import LawsError
from laws.fit.forms import read_json
from laws.present import figures
from laws.present.figures import KINDS, LabelledLaw, Palette, Plot, Reference
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN, Runs

NAME = "plot"
HELP = "draw a paper figure: " + ", ".join(KINDS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("results", nargs="?", help="runs/ directory, or .csv / .jsonl")
    parser.add_argument("--fit", nargs="+", default=[], metavar="F", help="fit or law files")
    parser.add_argument("--label", nargs="+", default=[], help="one per --fit (default: stems)")
    parser.add_argument("--out", required=True, help="directory for KIND.png and KIND.pdf")
    add_references(parser)
    parser.add_argument(
        "--holdout",
        type=cutoff,
        metavar="CUT",
        help="quality: the runs the fit did not see, n<N or c<C (default: the fit's holdout)",
    )
    parser.add_argument(
        "--budgets",
        type=quantity,
        nargs="+",
        default=[],
        metavar="C",
        help="optimal: budgets marked on the curves",
    )
    parser.add_argument(
        "--compute-range",
        type=quantity,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="optimal: budgets drawn (default: 6ND of the smallest run to 100x the largest)",
    )
    parser.add_argument(
        "--n-range",
        type=quantity,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="N to draw (default: the fits' data, else the runs', else the paper's 0.2B-3.8B)",
    )
    parser.add_argument(
        "--d-range", type=quantity, nargs=2, metavar=("LOW", "HIGH"), help="D to draw (likewise)"
    )
    parser.add_argument(
        "--sizes", type=quantity, nargs="+", metavar="N", help="mixtures: N of the D/N panels"
    )
    parser.add_argument(
        "--ratios",
        type=float,
        nargs="+",
        default=list(figures.DEFAULT_RATIOS),
        metavar="R",
        help="mixtures: D/N of the N panels",
    )
    parser.add_argument("--mixture", help="runs of this mixture (default: the fit's)")
    parser.add_argument(
        "--language", help="this language's loss, and its law in a per-language fit"
    )
    parser.add_argument("--synergy", help="synergy: a `laws synergy --out` file")
    parser.add_argument("--flops-per-token", type=float, default=DEFAULT_FLOPS_PER_TOKEN)
    add_no_average(parser)


def run(args: argparse.Namespace) -> Output:
    if args.kind in FROM_FILE:
        plot = FROM_FILE[args.kind](args)
        written = [str(path) for path in figures.save(plot.figure, args.out, args.kind)]
        data = {"kind": args.kind, "written": written, "data": figures.summarise(plot.data)}
        return Output(data, f"{args.kind}: written {', '.join(written)}")
    if args.kind == "hparams":
        plot = _hparams(args)
        written = [str(path) for path in figures.save(plot.figure, args.out, args.kind)]
        data = {"kind": args.kind, "written": written, "data": figures.summarise(plot.data)}
        return Output(data, f"{args.kind}: written {', '.join(written)}")
    laws = figures.read_fits(args.fit, args.label, args.language)
    runs = load_runs(args) if args.results else None
    palette = Palette.for_runs(runs, [entry.label for entry in laws])
    plot = DRAW[args.kind](args, runs, laws, palette)
    written = [str(path) for path in figures.save(plot.figure, args.out, args.kind)]
    data = {"kind": args.kind, "written": written, "data": figures.summarise(plot.data)}
    return Output(data, f"{args.kind}: written {', '.join(written)}")


def _runs_for(args: argparse.Namespace, runs: Runs, entry: LabelledLaw | None) -> Runs:
    """The runs a law describes: --mixture / --language, else the fit's own selection."""
    selection = (entry.fit.get("selection") or {}) if entry else {}
    mixture = args.mixture or selection.get("mixture")
    return runs.select(mixture, args.language or selection.get("language"))


def _need_runs(args: argparse.Namespace, runs: Runs | None) -> Runs:
    if runs is None:
        raise LawsError(f"plot {args.kind} needs RESULTS: a runs/ directory or a .csv / .jsonl")
    return runs


def _one_law(args: argparse.Namespace, laws: list[LabelledLaw]) -> LabelledLaw:
    if len(laws) != 1:
        raise LawsError(f"plot {args.kind} draws one law: give exactly one --fit (got {len(laws)})")
    return laws[0]


def _some_laws(args: argparse.Namespace, laws: list[LabelledLaw]) -> list[LabelledLaw]:
    if not laws:
        raise LawsError(
            f"plot {args.kind} needs at least one --fit: a file from `python -m laws fit` or a "
            'law typed in as {"law": "chinchilla", "params": {...}}'
        )
    return laws


def _ranges(
    args: argparse.Namespace, laws: list[LabelledLaw], runs: Runs | None
) -> tuple[tuple[float, float], tuple[float, float]]:
    n_range, d_range = figures.extent(laws, runs)
    n_low, n_high = args.n_range or n_range
    d_low, d_high = args.d_range or d_range
    return (n_low, n_high), (d_low, d_high)


def _design(
    args: argparse.Namespace, runs: Runs | None, laws: list[LabelledLaw], palette: Palette
) -> Plot:
    return figures.design(_need_runs(args, runs))


def _scaling(
    args: argparse.Namespace, runs: Runs | None, laws: list[LabelledLaw], palette: Palette
) -> Plot:
    entry = _one_law(args, laws)
    return figures.scaling(_runs_for(args, _need_runs(args, runs), entry), entry.law, palette)


def _quality(
    args: argparse.Namespace, runs: Runs | None, laws: list[LabelledLaw], palette: Palette
) -> Plot:
    entry = _one_law(args, laws)
    chosen = _runs_for(args, _need_runs(args, runs), entry)
    held = figures.held_out_mask(chosen, args.holdout, entry.fit)
    return figures.quality(
        chosen, entry.law, held, entry.fit.get("bootstrap"), entry.label, palette
    )


def _surface(
    args: argparse.Namespace, runs: Runs | None, laws: list[LabelledLaw], palette: Palette
) -> Plot:
    laws = _some_laws(args, laws)
    n_range, d_range = _ranges(args, laws, runs)
    shown: dict[str, Runs] = {}
    if runs is not None:
        matched = [e for e in laws if (e.fit.get("selection") or {}).get("mixture")]
        if matched:  # each fit's own mixture on its surface
            shown = {e.label: _runs_for(args, runs, e) for e in matched}
        else:
            shown = {"runs": _runs_for(args, runs, laws[0] if len(laws) == 1 else None)}
    plain = {entry.label: entry.law for entry in laws}
    return figures.surface(plain, n_range, d_range, shown, palette)


def _optimal(
    args: argparse.Namespace, runs: Runs | None, laws: list[LabelledLaw], palette: Palette
) -> Plot:
    laws = _some_laws(args, laws)
    k = args.flops_per_token
    low, high = args.compute_range or figures.compute_range(*_ranges(args, laws, runs), k)
    references = [Reference(n, d, loss) for n, d, loss in args.reference]
    one = laws[0] if len(laws) == 1 else None
    chosen = _runs_for(args, runs, one) if runs is not None else None
    computes = np.geomspace(low, high, figures.CURVE_POINTS)
    return figures.optimal(laws, computes, args.budgets, references, chosen, k, palette)


def _mixtures(
    args: argparse.Namespace, runs: Runs | None, laws: list[LabelledLaw], palette: Palette
) -> Plot:
    laws = _some_laws(args, laws)
    n_range, _ = _ranges(args, laws, runs)
    sizes = args.sizes or figures.default_sizes(n_range)
    plain = {entry.label: entry.law for entry in laws}
    return figures.mixtures(plain, sizes, args.ratios, n_range=n_range, palette=palette)


def _hparams(args: argparse.Namespace) -> Plot:
    """A grid of lr x batch runs and its hyperparameter law (--fit, or fitted here)."""
    if not args.results:
        raise LawsError("plot hparams needs RESULTS: the runs of a --hparam-grid sweep, or a CSV")
    grid = read_grid(args.results)
    if len(args.fit) > 1:
        raise LawsError("plot hparams draws one law: give at most one --fit (a laws hparams file)")
    law = json.loads(Path(args.fit[0]).read_text()) if args.fit else fit_hparams(grid, resamples=0)
    if law.get("law") != "hparams" or "cells" not in law:
        raise LawsError(f"{args.fit[0]}: not a law file of `python -m laws hparams`")
    return figures.hparams(grid, law)


def _exponents(args: argparse.Namespace) -> Plot:
    if len(args.fit) != 1:
        raise LawsError("plot exponents draws one `laws fit --per-language` file: give one --fit")
    return figures.exponents(read_json(args.fit[0]))


def _synergy(args: argparse.Namespace) -> Plot:
    if not args.synergy:
        raise LawsError("plot synergy needs --synergy FILE (from `laws synergy --out`)")
    return figures.synergy_matrix(read_json(args.synergy))


FROM_FILE: dict[str, Callable[[argparse.Namespace], Plot]] = {
    "exponents": _exponents,
    "synergy": _synergy,
}

DRAW: dict[str, Callable[..., Plot]] = {
    "design": _design,
    "scaling": _scaling,
    "surface": _surface,
    "optimal": _optimal,
    "mixtures": _mixtures,
    "quality": _quality,
}
