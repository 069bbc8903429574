"""Design power before any run: draw synthetic studies from a known law on a design's (N, D)
with multiplicative lognormal noise, fit each with each law, and report how widely the answers
spread (median and 5-95% range of D/N and N_opt at a budget, of each exponent, and of the
extrapolation error), beside the truth, with the coverage implied and the counts of unreliable
and failed fits.

    python -m laws power --design configs/sweeps/paper.yaml --law paper-eq2 --replicas 200
"""

from __future__ import annotations

import argparse
from typing import Any

from laws.analysis.power import Study, largest_size_out, power, read_design
from laws.cli.common import Output, cutoff, format_table, quantity
from laws.errors import LawsError
from laws.fit.chinchilla import GRIDS
from laws.fit.dispatch import FITTERS
from laws.fit.forms import Law, PerLanguage, load_law
from laws.fit.paper import EQ1_CHINCHILLA, EQ2_FARSEER
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN
from laws.units import human

NAME = "power"
HELP = "how precisely a design pins a law down: synthetic studies, fitted, before any run"
PAPER_LAWS = {"paper-eq1": EQ1_CHINCHILLA, "paper-eq2": EQ2_FARSEER}
PROGRESS_FROM = 20  # replicas: fewer finish too soon to need a progress bar
LABELS = {
    "d_over_n": "D/N at C",
    "n_opt": "N_opt at C",
    "target_error": "error at target",
    "holdout_error": "held-out error",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--design", required=True, help="sweep file of `laws design`, or CSV N,D")
    parser.add_argument(
        "--mixture",
        type=float,
        help="the sweep's code fraction (e.g. 1) when mixtures differ in (N, D)",
    )
    parser.add_argument(
        "--law", required=True, help="generating law: fit/law JSON, paper-eq1 or paper-eq2"
    )
    parser.add_argument("--noise", type=float, default=0.008, help="relative sd of the losses")
    parser.add_argument("--replicas", type=int, default=200)
    parser.add_argument("--budget", type=quantity, default=5.36e21, help="FLOPs (C = k N D)")
    parser.add_argument(
        "--target", type=_point, metavar="N:D", help="also score each fit's loss at this point"
    )
    parser.add_argument(
        "--holdout",
        type=cutoff,
        metavar="CUT",
        help="refit below n<N or c<C, scored on the rest (default without --target: the "
        "largest size held out)",
    )
    parser.add_argument(
        "--fit-laws", default=",".join(FITTERS), help="laws fitted to each replica, comma-separated"
    )
    parser.add_argument(
        "--grid", choices=sorted(GRIDS), default="hoffmann", help="Chinchilla starting grid"
    )
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flops-per-token", type=float, default=DEFAULT_FLOPS_PER_TOKEN)


def _point(text: str) -> tuple[float, float]:
    parts = text.split(":")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r}: expected N:D, e.g. 6.37B:127B")
    return quantity(parts[0]), quantity(parts[1])


def generating_law(text: str) -> Law:
    law = PAPER_LAWS.get(text.lower()) or load_law(text)
    if isinstance(law, PerLanguage):
        raise LawsError(f"{text} holds one law per language; pass one language's law")
    return law


def run(args: argparse.Namespace) -> Output:
    laws = tuple(x.strip() for x in args.fit_laws.split(",") if x.strip())
    unknown = [x for x in laws if x not in FITTERS]
    if unknown or not laws:
        raise LawsError(f"--fit-laws {args.fit_laws!r}: choose from {', '.join(FITTERS)}")
    design = read_design(args.design, args.mixture)
    holdout = args.holdout
    if holdout is None and args.target is None:
        holdout = largest_size_out(design)
    study = Study(
        truth=generating_law(args.law),
        design=design,
        noise=args.noise,
        budget=args.budget,
        laws=laws,
        holdout=holdout,
        target=args.target,
        flops_per_token=args.flops_per_token,
        options={"chinchilla": {"starts": GRIDS[args.grid]()}},
    )
    progress = args.replicas >= PROGRESS_FROM
    data = power(study, args.replicas, args.seed, args.workers, progress)
    data["truth"]["source"] = args.law
    return Output(data, report_text(data))


def report_text(data: dict[str, Any]) -> str:
    """The power report for a person: the design, the truth, then one table per law."""
    design, truth = data["design"], data["truth"]
    lines = [
        f"design {design['source']}: {design['runs']} runs at {design['points']} (N, D) points, "
        f"{design['sizes']} sizes {human(design['n_range'][0])}-{human(design['n_range'][1])}, "
        f"{design['budgets']} budgets {human(design['d_range'][0])}-"
        f"{human(design['d_range'][1])}; 6ND compute {design['compute']:.3g} FLOPs",
        f"truth: {truth['law']} law {truth.get('source', '')}; noise {data['noise']:.2%} "
        f"(lognormal); {data['replicas']} replicas, seed {data['seed']}; budget C = "
        f"{data['budget']:.3g}: true N_opt {human(truth['n_opt'])}, D/N {truth['d_over_n']:.1f}",
    ]
    if data["holdout"]:
        held = data["holdout"]
        lines.append(
            f"held-out error: fit on {held['train_points']} points below {held['cutoff']}, mean "
            f"|predicted / true - 1| on the other {held['test_points']} (noise-free losses)"
        )
    if data["target"]:
        n, d = data["target"]
        lines.append(f"error at target: predicted / true - 1 at N={human(n)}, D={human(d)}")
    for law, summary in data["laws"].items():
        lines += ["", _law_text(law, summary, held_out=data["holdout"] is not None)]
    lines += [
        "",
        "5%-95%: range of the replicas' estimates; coverage: how often a range this wide around "
        "one study's estimate holds the truth (90% if unbiased); missing: fits with no value "
        "(no interior optimum, ...)",
        f"{data['wall_seconds']:.1f} s on {data['workers']} worker(s)",
    ]
    return "\n".join(lines)


def _law_text(law: str, summary: dict[str, Any], held_out: bool) -> str:
    head = (
        f"{law}: {summary['fits']} fits, {summary['failed']} failed, "
        f"{summary['unreliable']} unreliable"
        + (f" (held-out refits: {summary['holdout_unreliable']})" if held_out else "")
    )
    examples = [f"  failed {m}" for m in summary["failures"]]
    examples += [f"  unreliable {m}" for m in summary["problems"]]
    if not summary["supported"]:
        return "\n".join([head, f"  not supported by this design: {summary['reason']}", *examples])
    rows = []
    for name, q in summary["quantities"].items():
        size = name == "n_opt"
        rows.append(
            {
                "name": LABELS.get(name, name),
                **{k: _cell(q[k], name, size) for k in ("true", "noise_free", "median", "low")},
                "high": _cell(q["high"], name, size),
                "coverage": None if q.get("coverage") is None else f"{q['coverage']:.0%}",
                "count": q["count"],
                "missing": q["missing"],
            }
        )
    table = format_table(
        rows,
        [
            ("name", "quantity", ""),
            ("true", "true", "s"),
            ("noise_free", "noise-free", "s"),
            ("median", "median", "s"),
            ("low", "5%", "s"),
            ("high", "95%", "s"),
            ("coverage", "coverage", "s"),
            ("count", "n", "d"),
            ("missing", "missing", "d"),
        ],
    )
    return "\n".join([head, *examples, table])


def _cell(value: float | str | None, name: str, size: bool) -> str | None:
    if value is None or isinstance(value, str):
        return None if value is None else "none"
    if size:
        return human(value)
    if name.endswith("_error"):
        return f"{value:+.3%}" if name == "target_error" else f"{value:.3%}"
    return f"{value:.1f}" if name == "d_over_n" else f"{value:.4g}"
