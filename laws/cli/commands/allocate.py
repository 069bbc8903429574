"""The language proportions that minimise the weighted sum of per-language losses at a token
budget, under each language's supply, from per-language laws and the measured transfer
(laws/analysis/allocation.py; docs/laws.md "Allocating tokens across languages"). Prints the
optimum beside the uniform and the natural (supply-proportional) mixes, each with its predicted
per-language losses, and with --sweep-out writes the runs that check the prediction. With a
synergy file the optimum keeps every language at or above the least native share its transfer
was measured at (--min-share), and any mix below it is labelled an extrapolation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import yaml

from configs import ConfigError, parse_weights
from laws.analysis.allocation import allocate, losses, own_token_laws
from laws.analysis.synergy import matrix_array
from laws.cli.common import Output, format_table, quantity
from laws.errors import LawsError
from laws.fit.forms import read_json

NAME = "allocate"
HELP = "optimal token proportions across languages, from per-language laws and synergy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fits", required=True, help="a `laws fit --per-language` file")
    parser.add_argument("--synergy", help="a `laws synergy` file (default: no transfer, T = I)")
    parser.add_argument("--tokens", type=quantity, required=True, help="the total budget D")
    parser.add_argument("--n", type=quantity, required=True, help="the model size N")
    parser.add_argument(
        "--supply", required=True, help="tokens per language, e.g. Python=124M,C=13M"
    )
    parser.add_argument("--weights", help="importance per language (default: 1 each)")
    parser.add_argument(
        "--fit-mix",
        required=True,
        help="the language mix the fitted runs trained on, e.g. C=0.5,Python=0.5",
    )
    parser.add_argument(
        "--min-share",
        default="measured",
        help="least share of each language in the optimum: `measured` (default: the lowest "
        "native share of its synergy runs; 0 without --synergy), a number, or lang=share,...",
    )
    parser.add_argument(
        "--mix",
        action="append",
        default=[],
        metavar="LANG=W,...",
        help="also predict this mix (repeatable; rows mix1, mix2, ...), e.g. a mix trained before",
    )
    parser.add_argument("--sweep-out", help="write a sweep of the optimum and the uniform mix")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--seeds", type=int, default=1, help="--sweep-out: seeds of each mix")


def _mapping(text: str, what: str, sizes: bool = False) -> dict[str, float]:
    try:
        if sizes:
            return {k: quantity(v) for k, v in (p.split("=") for p in text.split(",") if p)}
        return parse_weights(text, what)
    except (ConfigError, ValueError, argparse.ArgumentTypeError) as err:
        raise LawsError(f"{what}={text!r}: {err}") from None


def run(args: argparse.Namespace) -> Output:
    fits = read_json(args.fits)
    if fits.get("law") != "per_language":
        raise LawsError(f"--fits {args.fits}: expected a `laws fit --per-language` file")
    supply = _mapping(args.supply, "--supply", sizes=True)
    names = sorted(supply)
    missing = [k for k in names if k not in fits["languages"]]
    if missing:
        raise LawsError(
            f"--fits has no law for {', '.join(missing)} (it has {', '.join(fits['languages'])})"
        )
    params = {k: fits["languages"][k]["params"] for k in names}
    if any("beta" not in p for p in params.values()):
        raise LawsError("allocation needs Chinchilla per-language laws (E, A, alpha, B, beta)")
    weights = _mapping(args.weights, "--weights") if args.weights else dict.fromkeys(names, 1.0)
    fit_mix = _mapping(args.fit_mix, "--fit-mix")
    transfer, measured = np.eye(len(names)), np.zeros(len(names))
    if args.synergy:
        analysis = read_json(args.synergy)
        transfer = matrix_array(analysis["matrix"], names)
        measured = measured_shares(analysis, names)
    floor = _floors(args.min_share, names, measured)
    p0 = np.asarray([fit_mix.get(k, 0.0) for k in names]) / sum(fit_mix.values())
    laws = own_token_laws(params, transfer, p0, names)
    w = np.asarray([weights.get(k, 0.0) for k in names])
    caps = np.asarray([supply[k] for k in names])
    best = allocate(laws, transfer, w, args.n, args.tokens, caps, floor, names)
    mixes = {
        "optimum": best["proportions"],
        "uniform": np.full(len(names), 1 / len(names)),
        "natural": caps / caps.sum(),
    }
    for k, text in enumerate(args.mix, 1):
        p = _by_name(text, "--mix", names)
        mixes[f"mix{k}"] = p / p.sum()
    data = {"languages": names, "n": args.n, "tokens": args.tokens, "solver": best}
    data["min_share"] = dict(zip(names, floor.tolist(), strict=True))
    data["measured_share"] = dict(zip(names, measured.tolist(), strict=True))
    rows = []
    for label, p in mixes.items():
        per = losses(laws, transfer, args.n, args.tokens, p)
        feasible = bool((p * args.tokens <= caps * (1 + 1e-9)).all())
        below = {k: float(v) for k, v, m in zip(names, p, measured, strict=True) if v < m - 1e-6}
        data[label] = {
            "proportions": dict(zip(names, p.tolist(), strict=True)),
            "losses": dict(zip(names, per.tolist(), strict=True)),
            "weighted": float(w @ per / w.sum()),
            "within_supply": feasible,
            "below_measured_share": below,
        }
        rows.append(
            {
                "mix": label,
                **{f"p_{k}": v for k, v in zip(names, p, strict=True)},
                **{f"L_{k}": v for k, v in zip(names, per, strict=True)},
                "weighted": float(w @ per / w.sum()),
                "supply": "ok" if feasible else "exceeds",
                "note": "extrapolation: " + ", ".join(f"{k} {v:.3f}" for k, v in below.items())
                if below
                else "",
            }
        )
    columns = (
        [("mix", "mix", "")]
        + [(f"p_{k}", f"p {k}", ".3f") for k in names]
        + [(f"L_{k}", f"L {k}", ".4f") for k in names]
        + [("weighted", "weighted L", ".4f"), ("supply", "supply", ""), ("note", "note", "")]
    )
    capped = [k for k, c in zip(names, best["at_supply_cap"], strict=True) if c]
    floored = [k for k, c in zip(names, best["at_floor"], strict=True) if c]
    text = [
        f"N={args.n:.3g}, D={args.tokens:.3g}; transfer from {args.synergy or 'none (T = I)'}; "
        f"solver: {'converged' if best['converged'] else 'NOT converged: ' + best['message']}"
        + (f"; at their supply: {', '.join(capped)}" if capped else "")
        + (f"; at their floor: {', '.join(floored)}" if floored else ""),
        format_table(rows, columns),
    ]
    if args.synergy:
        unmeasured = [k for k, m in zip(names, measured, strict=True) if m == 0]
        if unmeasured:
            text.append(
                f"no transfer into {', '.join(unmeasured)} was measured (see the synergy file's "
                "notes): it learns from its own tokens only (T = 0 from the others)"
            )
    if measured.any():
        text.append(
            "extrapolation: a share below the least native share the language's transfer was "
            "measured at ("
            + ", ".join(f"{k} {m:.3g}" for k, m in zip(names, measured, strict=True))
            + "); the optimum's floors: "
            + ", ".join(f"{k} {f:.3g}" for k, f in zip(names, floor, strict=True))
            + (" (--min-share)" if args.min_share != "measured" else "")
        )
    if args.sweep_out:
        text.append(_write_check(args, names, mixes))
    return Output(data, "\n\n".join(text))


def measured_shares(analysis: dict, names: list[str]) -> np.ndarray:
    """Each language's lowest native share over its synergy runs (0 where none measured it)."""
    lowest = analysis.get("lowest_share", {})
    return np.asarray([float(lowest.get(k, 0.0)) for k in names])


def _floors(text: str, names: list[str], measured: np.ndarray) -> np.ndarray:
    if text == "measured":
        return measured.copy()
    try:
        return _checked(np.full(len(names), float(text)))
    except ValueError:
        return _checked(_by_name(text, "--min-share", names))


def _by_name(text: str, what: str, names: list[str]) -> np.ndarray:
    """`lang=value,...` as an array in `names` order (0 for a language not given)."""
    given = _mapping(text, what)
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise LawsError(f"{what} {text} names {', '.join(unknown)}, not in --supply")
    return np.asarray([given.get(k, 0.0) for k in names])


def _checked(floor: np.ndarray) -> np.ndarray:
    if not ((floor >= 0) & (floor < 1)).all():
        raise LawsError(f"--min-share: each share must be in [0, 1); got {floor.tolist()}")
    return floor


def _write_check(args: argparse.Namespace, names: list[str], mixes: dict) -> str:
    """A sweep training the optimum and the uniform mix at (N, D): the prediction's test."""
    runs = []
    for label in ("optimum", "uniform"):
        mix = ",".join(f"{k}={v:.6g}" for k, v in zip(names, mixes[label], strict=True) if v > 0)
        for seed in range(args.seeds):
            runs.append(
                {
                    "name": f"{label}_seed{seed}",
                    "n": round(args.n),
                    "tokens": round(args.tokens),
                    "code_fraction": 1.0,
                    "overrides": [f"data.languages={mix}", f"run.seed={seed}"],
                }
            )
    out = Path(args.sweep_out)
    document = {
        "name": out.stem,
        "description": "allocation check: the optimum vs the uniform mix "
        f"(python -m laws allocate --fits {args.fits} ...)",
        "overrides": list(args.set),
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(document, sort_keys=False, width=100))
    return f"written: {out} ({len(runs)} runs)"
