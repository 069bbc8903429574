"""Inputs shared by `plot` and `report`: labelled laws read from fit files, and the region,
budgets, sizes and held-out runs to draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from laws.analysis.optimal import TrustRegion
from laws.analysis.validate import Cutoff
from laws.errors import LawsError
from laws.fit.forms import Law, PerLanguage, law_from_json, read_json
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN, Runs

PAPER_N_RANGE = (2e8, 3.8e9)  # docs/reference.md §1: the study's design, for laws without data
PAPER_D_RANGE = (2e9, 128e9)


@dataclass
class LabelledLaw:
    """A law with the label it is drawn under and the fit file it came from ({} if typed in)."""

    label: str
    law: Law
    fit: dict[str, Any] = field(default_factory=dict)

    @property
    def region(self) -> TrustRegion:
        """Where its optimum may be searched: the fitted data's N range widened 100x."""
        return TrustRegion.around(self.fit.get("domain"))


def read_fits(
    paths: Sequence[str | Path], labels: Sequence[str] = (), language: str | None = None
) -> list[LabelledLaw]:
    """Laws from fit (or hand-written law) files, labelled by --label or the file's stem."""
    if labels and len(labels) != len(paths):
        raise LawsError(f"{len(labels)} labels for {len(paths)} fit files; give one per file")
    out = []
    for i, path in enumerate(paths):
        data = read_json(path)
        law = law_from_json(data)
        if isinstance(law, PerLanguage):
            law = law.law_for(language)
            data = data["languages"][language]
        out.append(LabelledLaw(labels[i] if labels else Path(path).stem, law, data))
    names = [entry.label for entry in out]
    if len(set(names)) < len(names):
        raise LawsError(f"two fits share a label ({', '.join(names)}); name them with --label")
    return out


def extent(
    laws: Sequence[LabelledLaw] = (), runs: Runs | None = None
) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (N, D) region to draw: the fitted data's, else the runs', else the paper's design."""
    domains = [entry.fit["domain"] for entry in laws if entry.fit.get("domain")]
    if domains:
        n = (min(x["n"][0] for x in domains), max(x["n"][1] for x in domains))
        d = (min(x["d"][0] for x in domains), max(x["d"][1] for x in domains))
        return n, d
    if runs is not None and len(runs):
        n, d = runs.domain()["n"], runs.domain()["d"]
        return (n[0], n[1]), (d[0], d[1])
    return PAPER_N_RANGE, PAPER_D_RANGE


def compute_range(
    n_range: tuple[float, float],
    d_range: tuple[float, float],
    flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN,
) -> tuple[float, float]:
    """Budgets to draw: from the smallest run to 100x the largest (extrapolation in view)."""
    return (
        flops_per_token * n_range[0] * d_range[0],
        100 * flops_per_token * n_range[1] * d_range[1],
    )


def default_sizes(n_range: tuple[float, float], count: int = 3) -> list[float]:
    """Model sizes for the loss-vs-D/N panels: spread log-uniformly over the range."""
    return np.geomspace(*n_range, count).tolist()


def held_out_mask(
    runs: Runs, cut: Cutoff | None = None, fit: dict[str, Any] | None = None
) -> np.ndarray | None:
    """Which runs a law did not see: below-the-cut split, else the fit file's holdout rows."""
    if cut is not None:
        return ~cut.train_mask(runs)
    rows = (fit or {}).get("holdout", {}).get("runs")
    if not rows:
        return None
    seen = np.array([[row["n"], row["d"]] for row in rows], dtype=float)
    pairs = np.stack([runs.n, runs.d], axis=1)
    return np.isclose(pairs[:, None, :], seen[None, :, :], rtol=1e-9).all(axis=2).any(axis=1)
