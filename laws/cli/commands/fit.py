"""Fit a law to runs, optionally with held-out extrapolation, leave-one-size-out and a
bootstrap, and write it as JSON ({"law", "params", "domain", "fit", ...})."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from laws.analysis.bootstrap import REFITS, bootstrap
from laws.analysis.language_laws import exponent_rows
from laws.analysis.validate import HOLDOUT_KEYS, extrapolation, leave_one_size_out, split
from laws.cli.common import Output, add_no_average, cutoff, format_table, load_runs, quantity
from laws.errors import LawsError
from laws.fit.chinchilla import GRIDS
from laws.fit.dispatch import FITTERS, fit_law, fit_per_language, per_language_json
from laws.fit.result import Fit
from laws.runs.read import left_out_summary, left_out_text
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN, repeat_note

NAME = "fit"
HELP = "fit a Chinchilla or Farseer law to runs and write it as JSON"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("results", help="runs/ directory of result.json files, or .csv / .jsonl")
    parser.add_argument("--law", required=True, choices=sorted(FITTERS))
    parser.add_argument("--out", help="write the fit here (JSON)")
    parser.add_argument("--mixture", help="fit only this mixture (e.g. 1, 0.7)")
    parser.add_argument("--language", help="fit this language's loss instead of the overall one")
    parser.add_argument("--per-language", action="store_true", help="one law per language")
    parser.add_argument(
        "--languages", help="with --per-language: only these, e.g. C,C++,Python (default: all)"
    )
    parser.add_argument(
        "--holdout", type=cutoff, metavar="CUT", help="fit below n<N or c<C, test the rest"
    )
    parser.add_argument(
        "--leave-one-size-out", action="store_true", help="refit without each model size"
    )
    parser.add_argument("--bootstrap", type=int, default=0, metavar="K", help="K resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--level", type=float, default=0.95, help="bootstrap interval level")
    parser.add_argument(
        "--bootstrap-refit",
        choices=REFITS,
        default="warm",
        help="refits start at the full-data optimum (warm) or rerun the whole fit (full)",
    )
    parser.add_argument(
        "--budget",
        type=quantity,
        nargs="+",
        default=[5.36e21],
        metavar="C",
        help="budgets for bootstrapped N_opt, D_opt, D/N",
    )
    parser.add_argument(
        "--point",
        type=quantity,
        nargs=2,
        action="append",
        default=[],
        metavar=("N", "D"),
        help="bootstrap the loss at (N, D); repeatable",
    )
    parser.add_argument("--workers", type=int, help="processes (default: all cores)")
    parser.add_argument("--huber-delta", type=float, default=1e-3, help="Chinchilla Huber delta")
    parser.add_argument("--engine", choices=("batched", "scipy"), default="batched")
    parser.add_argument(
        "--grid", choices=sorted(GRIDS), default="hoffmann", help="Chinchilla starting grid"
    )
    parser.add_argument(
        "--min-differences", type=int, default=5, help="Farseer: differences per model size"
    )
    parser.add_argument("--flops-per-token", type=float, default=DEFAULT_FLOPS_PER_TOKEN)
    add_no_average(parser)


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """Per-fit options; the parallelism (--workers) is added where a fit runs alone."""
    if args.law == "chinchilla":
        return {"delta": args.huber_delta, "engine": args.engine, "starts": GRIDS[args.grid]()}
    return {"min_differences": args.min_differences}


def run(args: argparse.Namespace) -> Output:
    runs = load_runs(args)
    options = _options(args)
    alone = {**options, "workers": args.workers} if args.law == "chinchilla" else options
    if args.per_language:
        if args.holdout or args.leave_one_size_out or args.language:
            raise LawsError(
                "--per-language fits every language at once; use --language L for a holdout "
                "or leave-one-size-out on one language"
            )
        chosen_languages = args.languages.split(",") if args.languages else None
        fits = fit_per_language(runs, args.law, args.mixture, chosen_languages, **alone)
        data = per_language_json(fits)
        text = []
        for lang, fit in fits.items():
            chosen = runs.select(args.mixture, lang)
            check = extrapolation(chosen, args.law, **alone)[1]
            record = data["languages"][lang]
            record["extrapolation"] = check
            record["fit"]["left_out"] = left = left_out_summary(chosen)
            parts = [f"[{lang}]", _report(fit, check, left)]
            if args.bootstrap:
                record["bootstrap"] = boot = _bootstrap(args, chosen, fit, options)
                parts.append(_bootstrap_text(boot))
            text.append("\n".join(parts))
        text.append(_exponents_text(data))
        return _finish(args, data, "\n\n".join(text))

    chosen = runs.select(args.mixture, args.language)
    if args.holdout:
        fit, check = extrapolation(chosen, args.law, args.holdout, **alone)
        train = split(chosen, args.holdout)[0]
    else:
        fit, check = fit_law(chosen, args.law, **alone), extrapolation(chosen, args.law, **alone)[1]
        train = chosen
    data = fit.to_json()
    data["fit"]["left_out"] = left = left_out_summary(chosen)
    data["selection"] = {
        "results": str(args.results),
        "mixture": args.mixture,
        "language": args.language,
    }
    data["extrapolation"] = check
    if args.holdout:
        data["holdout"] = {k: check[k] for k in HOLDOUT_KEYS}
    text = [_report(fit, check, left)]
    if args.leave_one_size_out:
        data["leave_one_size_out"] = rows = leave_one_size_out(
            train, args.law, workers=args.workers, **options
        )
        text.append(
            "leave one size out (fit without that N, error on it):\n"
            + format_table(
                rows,
                [
                    ("n", "N", "size"),
                    ("n_runs", "runs", "d"),
                    ("mean_rel_error", "mean", ".3%"),
                    ("max_rel_error", "max", ".3%"),
                    ("signed_rel_error", "signed", "+.3%"),
                ],
            )
        )
    if args.bootstrap:
        data["bootstrap"] = boot = _bootstrap(args, train, fit, options)
        text.append(_bootstrap_text(boot))
    return _finish(args, data, "\n\n".join(text))


def _bootstrap(args: argparse.Namespace, train, fit: Fit, options: dict[str, Any]) -> dict:
    try:
        return bootstrap(
            train,
            args.law,
            args.bootstrap,
            seed=args.seed,
            workers=args.workers,
            budgets=args.budget,
            points=[tuple(p) for p in args.point],
            level=args.level,
            refit_from=args.bootstrap_refit,
            base=fit,
            flops_per_token=args.flops_per_token,
            **options,
        ).to_json()
    except LawsError as error:  # every draw failed: the fit stands, without intervals
        return {"resamples": args.bootstrap, "succeeded": 0, "error": str(error)}


def _exponents_text(data: dict[str, Any]) -> str:
    """The languages side by side: status, held-out error, E and the exponents [interval]."""
    rows = exponent_rows(data)

    def value(row: dict, name: str) -> str:
        if row[name] is None:
            return "-"
        low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
        span = f" [{low:.3g}, {high:.3g}]" if low is not None and high is not None else ""
        return f"{row[name]:.4g}{span}"

    table = [
        {
            "language": r["language"],
            "status": r["status"],
            "held_out": r["held_out_mean_error"],
            "E": value(r, "E"),
            "alpha": value(r, "alpha"),
            "beta": value(r, "beta"),
        }
        for r in rows
    ]
    return (
        "exponents per language (N: alpha, D: beta; [bootstrap interval] with --bootstrap):\n"
        + (
            format_table(
                table,
                [
                    ("language", "language", ""),
                    ("status", "status", ""),
                    ("held_out", "held-out mean", ".3%"),
                    ("E", "E", ""),
                    ("alpha", "alpha", ""),
                    ("beta", "beta", ""),
                ],
            )
        )
    )


def _finish(args: argparse.Namespace, data: dict[str, Any], text: str) -> Output:
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=2) + "\n")
        text += f"\n\nwritten: {out}"
    return Output(data, text)


def _report(fit: Fit, check: dict[str, Any], left: dict[str, Any]) -> str:
    """Status, then the held-out error (the headline), then in-sample, then what was left out."""
    parts = [_status_text(fit), _extrapolation_text(check, fit.n_runs)]
    parts.append(
        "in-sample error (second: it flatters a law with more parameters, so judge a law by its "
        "held-out error):\n" + _fit_text(fit)
    )
    left_text = left_out_text(left)
    return "\n\n".join(parts + ([left_text] if left_text else []))


def _status_text(fit: Fit) -> str:
    return f"status: {fit.status}" + "".join(f"\n  problem: {p}" for p in fit.problems)


def _extrapolation_text(check: dict[str, Any], n_fitted: int) -> str:
    if check["default"]:
        how = (
            f"split {check['split']}: by default the largest model size is held out "
            "(--holdout chooses another split)"
        )
    else:
        how = f"split {check['split']} (--holdout)"
    if "error" in check:
        return f"held-out error: none: {check['error']}\n  {how}"
    if check["default"]:
        fitted = (
            f"fitted on the {check['n_train']} runs below it (a refit, status {check['status']}"
            f"{''.join(f'; problem: {p}' for p in check['problems'])}); the law below is "
            f"fitted to all {n_fitted} runs"
        )
    else:
        fitted = f"the law below is fitted on the {check['n_train']} runs below it"
    return "\n".join(
        [
            f"held-out error: mean {check['mean_rel_error']:.3%}, max "
            f"{check['max_rel_error']:.3%}, signed {check['signed_rel_error']:+.3%} on the "
            f"{check['n_runs']} runs with {check['held_out']}",
            f"  {how}",
            f"  {fitted}",
            format_table(
                check["runs"],
                [
                    ("n", "N", "size"),
                    ("d", "D", "size"),
                    ("loss", "loss", ".5f"),
                    ("predicted", "predicted", ".5f"),
                    ("rel_error", "error", "+.3%"),
                ],
            ),
        ]
    )


def _fit_text(fit: Fit) -> str:
    params = ", ".join(f"{k}={v:.6g}" for k, v in fit.law.params.items())
    e = fit.errors
    lines = [
        f"{fit.law.name} ({fit.method}) on {fit.n_runs} runs: {params}",
        f"relative error: mean {e['mean_rel_error']:.3%}, max {e['max_rel_error']:.3%}, "
        f"signed {e['signed_rel_error']:+.3%}; objective {fit.objective:.6g}; "
        f"irreducible {fit.law.irreducible():.4g}",
    ]
    note = repeat_note(fit.details["repeats"])
    if note:
        lines.append(note)
    if "candidates" in fit.details:
        for name, c in fit.details["candidates"].items():
            lines.append(f"  {name}: mean relative error {c['mean_rel_error']:.3%}")
    return "\n".join(lines)


def _bootstrap_text(boot: dict[str, Any]) -> str:
    """The intervals, each with the draws it is taken over and the draws that failed."""
    if "error" in boot:
        return f"bootstrap: no intervals: {boot['error']}"
    head = (
        f"bootstrap: {boot['resamples']} resamples of whole runs, each refitted "
        f"({boot['refit_from']}, seed {boot['seed']}); {boot['succeeded']} refitted, "
        f"{boot['failed']} failed"
    )
    if boot["failed"]:
        kinds = ", ".join(f"{n} {kind}" for kind, n in boot["failures"].items() if n)
        head += f" ({kinds}; first: {boot['first_failure']})"
    head += f"; {boot['level']:.0%} percentile intervals over the draws that gave each quantity"
    rows = [{"name": k, **v} for k, v in boot["quantities"].items()]
    return (
        head
        + "\n"
        + format_table(
            rows,
            [
                ("name", "quantity", ""),
                ("estimate", "estimate", ".6g"),
                ("low", "low", ".6g"),
                ("high", "high", ".6g"),
                ("draws", "draws", "d"),
                ("failed", "failed", "d"),
            ],
        )
    )
