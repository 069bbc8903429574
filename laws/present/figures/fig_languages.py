"""The language figures of seed 004: per-language exponents side by side, and the synergy
matrix (the transfer T_ij with its interval, and whether one constant fits, in each cell)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from laws.analysis.language_laws import EXPONENTS, exponent_rows
from laws.analysis.synergy import MISFIT_P, matrix_array
from laws.present.figures.common import PAGE_WIDTH, Plot, _styled


@_styled
def exponents(per_language: dict) -> Plot:
    """alpha (N) and beta (D) of each language's law, with bootstrap intervals where fitted."""
    rows = [r for r in exponent_rows(per_language) if r["alpha"] is not None]
    figure = Figure(figsize=(PAGE_WIDTH, 2.4), layout="constrained")
    data = {"languages": [r["language"] for r in rows]}
    for k, name in enumerate(EXPONENTS):
        ax = figure.add_subplot(1, len(EXPONENTS), k + 1)
        x = np.arange(len(rows))
        values = np.asarray([r[name] for r in rows], dtype=float)
        low = np.asarray(
            [r[f"{name}_low"] if r[f"{name}_low"] is not None else np.nan for r in rows]
        )
        high = np.asarray(
            [r[f"{name}_high"] if r[f"{name}_high"] is not None else np.nan for r in rows]
        )
        errors = np.vstack([values - low, high - values])
        ax.errorbar(x, values, yerr=np.nan_to_num(errors), fmt="o", capsize=3, color="C0")
        for xi, row in zip(x, rows, strict=True):
            if row["status"] != "ok":
                ax.annotate(
                    row["status"],
                    (xi, values[xi]),
                    fontsize=6,
                    xytext=(4, 4),
                    textcoords="offset points",
                    color="C3",
                )
        ax.set_xticks(x, data["languages"])
        ax.set(title=f"{name} ({'model size' if name == 'alpha' else 'data'} exponent)")
        data[name] = values.tolist()
        data[f"{name}_low"], data[f"{name}_high"] = low.tolist(), high.tolist()
    return Plot(figure, data)


@_styled
def synergy_matrix(analysis: dict) -> Plot:
    """T_ij (one constant per pair, fitted to all its runs) as a heat map (rows: target,
    columns: added language); each cell also shows T's interval, and `varies` where the F test
    rejects one constant across the pair's native shares; a pair without runs is blank."""
    names = analysis["languages"]
    t = matrix_array(analysis["matrix"], names)
    low, high = np.full_like(t, np.nan), np.full_like(t, np.nan)
    varies = np.zeros(t.shape, dtype=bool)
    measured = np.eye(len(names), dtype=bool)
    for pair in analysis.get("pairs", []):
        i, j = names.index(pair["target"]), names.index(pair["auxiliary"])
        measured[i, j] = True
        low[i, j], high[i, j] = pair["transfer_low"], pair["transfer_high"]
        varies[i, j] = bool(pair["p_one_constant"] < MISFIT_P)
    figure = Figure(figsize=(PAGE_WIDTH / 2 + 0.6, 2.6), layout="constrained")
    ax = figure.add_subplot()
    span = max(1.0, float(np.nanmax(np.abs(t))))
    image = ax.imshow(np.where(measured, t, np.nan), cmap="RdBu", vmin=-span, vmax=span)
    ax.grid(False)
    for i in range(len(names)):
        for j in range(len(names)):
            label = f"{t[i, j]:+.2f}"
            if np.isfinite(low[i, j]):
                label += f"\n[{low[i, j]:.2f}, {high[i, j]:.2f}]"
            label += "\nvaries" if varies[i, j] else ""
            label = label if measured[i, j] else "not\nmeasured"
            dark = measured[i, j] and abs(t[i, j]) > 0.6 * span
            ax.text(
                j,
                i,
                label if i != j else "1",
                ha="center",
                va="center",
                fontsize=5.5,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(names)), names)
    ax.set_yticks(range(len(names)), names)
    ax.set(
        xlabel="added language j",
        ylabel="target language i",
        title=f"transfer T_ij at N={analysis['n']:.3g}",
    )
    figure.colorbar(image, ax=ax, label="tokens of i per token of j")
    data = {"languages": names, "transfer": t.tolist(), "low": low.tolist(), "high": high.tolist()}
    return Plot(figure, {**data, "varies_with_mix": varies.tolist()})
