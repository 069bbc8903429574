"""Fig. 4 (right), Fig. 1: compute-optimal D/N and loss, with published reference models."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from laws.analysis.optimal import Allocation, TrustRegion, compute_optimal
from laws.errors import LawsError, RunawayWarning
from laws.fit.forms import Chinchilla, Law
from laws.present.figures.common import (
    CHINCHILLA_RATIO,
    PAGE_WIDTH,
    Palette,
    Plot,
    _log_axes,
    _plain,
    _styled,
)
from laws.present.figures.inputs import LabelledLaw
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN, Runs
from laws.units import human

CURVE_POINTS = 61  # budgets along an optimal-allocation curve
REFERENCE_MARKERS = ("*", "P", "X", "v", "^", "s", "h", "<", ">")


@dataclass(frozen=True)
class Reference:
    """A published model placed on the loss-vs-compute panel at C = k N D."""

    n: float
    d: float
    loss: float

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) and v > 0 for v in (self.n, self.d, self.loss)):
            raise LawsError(
                f"reference model N={self.n:g}, D={self.d:g}, loss={self.loss:g}: all three must "
                "be positive numbers (e.g. --reference 2.27B 341B 0.2538)"
            )

    def label(self) -> str:
        return f"{human(self.n)} / {human(self.d)}"


@_styled
def optimal(
    laws: Sequence[LabelledLaw],
    computes: ArrayLike,
    budgets: Sequence[float] = (),
    references: Sequence[Reference] = (),
    runs: Runs | None = None,
    flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN,
    palette: Palette | None = None,
) -> Plot:
    """Fig. 4 (right), Fig. 1: optimal D/N and optimal loss vs compute for each law.

    Each law's optimum is searched in its fit's trust region (like `laws optimal`); a budget
    with no interior optimum is left out of the curve and named in the notes, and the runaway
    warnings are kept as notes. Bootstrap intervals of D/N in a fit file are drawn as a band.
    """
    if not laws:
        raise LawsError("an optimal-allocation plot needs at least one law (--fit)")
    palette = palette or Palette(labels=[entry.label for entry in laws])
    computes = np.sort(np.asarray(computes, dtype=float))
    if not (np.all(computes > 0) and all(b > 0 for b in budgets)):
        raise LawsError(f"compute budgets must be positive FLOPs, got {[*computes, *budgets]}")
    figure = Figure(figsize=(PAGE_WIDTH, 2.5), layout="constrained")
    ratio_ax, loss_ax = figure.subplots(1, 2)
    data: dict[str, Any] = {"laws": {}, "budgets": {}, "bootstrap": {}}
    for entry in laws:
        colour = palette.label(entry.label)
        curve, notes = _allocations(entry, computes, flops_per_token)
        marked, budget_notes = _allocations(entry, budgets, flops_per_token)
        ratio = np.array([np.nan if a is None else a.d_over_n for a in curve])
        loss = np.array([np.nan if a is None else a.loss for a in curve])
        ratio_ax.plot(computes, ratio, color=colour, label=entry.label)
        loss_ax.plot(computes, loss, color=colour, label=entry.label)
        found = [a for a in marked if a is not None]
        ratio_ax.plot([a.compute for a in found], [a.d_over_n for a in found], "o", color=colour)
        loss_ax.plot([a.compute for a in found], [a.loss for a in found], "o", color=colour)
        data["laws"][entry.label] = {
            "compute": computes.tolist(),
            **{
                key: [None if a is None else getattr(a, key) for a in curve]
                for key in ("n_opt", "d_opt", "d_over_n", "loss")
            },
            "left_out": [float(c) for c, a in zip(computes, curve, strict=True) if a is None],
            "notes": len(notes + budget_notes),
            "first_note": (notes + budget_notes or [None])[0],
        }
        data["budgets"][entry.label] = [a.to_json() for a in found]
        band = _bootstrap_ratio(entry.fit.get("bootstrap"))
        if band:
            ratio_ax.fill_between(
                band["compute"],
                band["low"],
                band["high"],
                color=colour,
                alpha=0.2,
                lw=0,
                label=f"{entry.label} {band['level']:.0%} CI",
            )
            ratio_ax.errorbar(
                band["compute"],
                band["estimate"],
                capsize=2,
                fmt="none",
                ecolor=colour,
                yerr=[
                    np.subtract(band["estimate"], band["low"]),
                    np.subtract(band["high"], band["estimate"]),
                ],
            )
            data["bootstrap"][entry.label] = band
    ratio_ax.axhline(CHINCHILLA_RATIO, color="0.4", ls="--", lw=0.8, label="Chinchilla 20")
    ratio_ax.set_xscale("log")
    _log_axes(ratio_ax, None, _plain)
    ratio_ax.set(xlabel="compute C (FLOPs)", ylabel="optimal D/N")
    ratio_ax.set_title("compute-optimal tokens per parameter")
    ratio_ax.legend(loc="best")
    data["chinchilla_ratio"] = CHINCHILLA_RATIO
    if runs is not None and len(runs):
        loss_ax.scatter(runs.c, runs.loss, s=6, color="0.7", label="runs", zorder=1)
    data["references"] = []
    for ref, marker in zip(references, itertools.cycle(REFERENCE_MARKERS)):
        compute = flops_per_token * ref.n * ref.d
        loss_ax.plot(compute, ref.loss, marker, color="k", mfc="none", ms=6, label=ref.label())
        data["references"].append({**vars(ref), "compute": compute})
    loss_ax.set_xscale("log")
    _log_axes(loss_ax, None, _plain)
    loss_ax.set(xlabel="compute C (FLOPs)", ylabel="optimal loss")
    loss_ax.set_title("loss at the compute-optimal allocation")
    loss_ax.legend(loc="best")
    return Plot(figure, data)


def _allocations(
    entry: LabelledLaw, computes: ArrayLike, flops_per_token: float
) -> tuple[list[Allocation | None], list[str]]:
    """Compute-optimal points (None where the law has no interior optimum) and their notes."""
    region, points, notes = entry.region, [], []
    for compute in np.ravel(computes):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RunawayWarning)
                found = compute_optimal(entry.law, float(compute), flops_per_token, region)
        except LawsError as error:
            points.append(None)
            notes.append(str(error))
            continue
        if found.note:
            notes.append(found.note)
        points.append(None if _at_edge(found, entry.law, region, flops_per_token) else found)
    return points, notes


def _at_edge(found: Allocation, law: Law, region: TrustRegion, flops_per_token: float) -> bool:
    """True when a searched optimum sits on the trust region's edge (no interior minimum)."""
    if isinstance(law, Chinchilla):
        return False
    low, high = region.log_n_bounds(found.compute, flops_per_token)
    ln_n = math.log(found.n_opt)
    return math.isclose(ln_n, low, abs_tol=1e-9) or math.isclose(ln_n, high, abs_tol=1e-9)


def _bootstrap_ratio(boot: dict[str, Any] | None) -> dict[str, Any] | None:
    """The bootstrap's D/N intervals per budget (quantities named d_over_n@C=...)."""
    rows = []
    for name, q in ((boot or {}).get("quantities") or {}).items():
        if name.startswith("d_over_n@C="):
            rows.append((float(name.split("=", 1)[1]), q["estimate"], q["low"], q["high"]))
    if not rows:
        return None
    compute, estimate, low, high = (list(column) for column in zip(*sorted(rows), strict=True))
    return {
        "compute": compute,
        "estimate": estimate,
        "low": low,
        "high": high,
        "level": boot.get("level", 0.95),
    }
