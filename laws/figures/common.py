"""The paper's figures, drawn from plain data: a `Runs` table and/or laws (fitted or typed in).

Each function returns a `Plot`: the matplotlib Figure and the numbers it draws, so a test can
check what is on the page, not only that a file exists. Figures are built on `Figure` objects
(never pyplot's global state) at paper size (6.5 in wide, 8 pt text) and share one `Palette`, so
a model size, a token budget or a mixture has the same colour in every figure of a study.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, LogNorm, to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import Formatter, Locator, LogLocator, MaxNLocator
from numpy.typing import ArrayLike

from laws.cli import human
from laws.data import DEFAULT_FLOPS_PER_TOKEN, Runs
from laws.errors import LawsError, RunawayWarning
from laws.fit_result import error_summary
from laws.forms import Chinchilla, Law, PerLanguage, law_from_json, read_json
from laws.optimal import Allocation, TrustRegion, compute_optimal, crossovers
from laws.validate import Cutoff

PAGE_WIDTH = 6.5  # inches: a paper's text width
CHINCHILLA_RATIO = 20.0  # Hoffmann et al.'s tokens per parameter
PAPER_N_RANGE = (2e8, 3.8e9)  # docs/reference.md §1: the study's design, for laws without data
PAPER_D_RANGE = (2e9, 128e9)
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.2,
    "lines.markersize": 4,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "legend.frameon": False,
    "savefig.dpi": 200,
    "pdf.fonttype": 42,  # text stays text in the PDF
}
CURVE_POINTS = 61  # budgets along an optimal-allocation curve
DEFAULT_RATIOS = (5.0, 20.0, 100.0, 500.0)  # D/N of the loss-vs-N mixture panels
REFERENCE_MARKERS = ("*", "P", "X", "v", "^", "s", "h", "<", ">")
KINDS = ("design", "scaling", "surface", "optimal", "mixtures", "quality")


@dataclass
class Plot:
    """A drawn figure and the numbers it shows (what tests and `plot --json` check)."""

    figure: Figure
    data: dict[str, Any]


def _styled(draw: Callable[..., Plot]) -> Callable[..., Plot]:
    """Build a figure under the paper style (text sizes are fixed when artists are created)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> Plot:
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def save(figure: Figure, out_dir: str | Path, stem: str) -> list[Path]:
    """Write STEM.png and STEM.pdf into out_dir; returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    with matplotlib.rc_context(STYLE):  # ticks are created at draw time
        for path in paths:
            figure.savefig(path)
    return paths


class Palette:
    """Colours shared across a study's figures.

    N and D are coloured on sequential maps by log value over the study's range, so the same
    size is the same colour everywhere; laws and mixtures get qualitative colours in the order
    they are first asked for (pass the labels up front to fix that order).
    """

    N_MAP, D_MAP, RATIO_MAP = "viridis", "plasma", "cividis"

    def __init__(self, n: ArrayLike = (), d: ArrayLike = (), labels: Sequence[str] = ()) -> None:
        self.n_norm = _log_norm(n)
        self.d_norm = _log_norm(d)
        self._labels: dict[str, str] = {}
        for label in labels:
            self.label(label)

    @classmethod
    def for_runs(cls, runs: Runs | None, labels: Sequence[str] = ()) -> Palette:
        return cls(runs.n, runs.d, labels) if runs is not None and len(runs) else cls(labels=labels)

    def n(self, value: float) -> str:
        return _on_map(self.N_MAP, self.n_norm, value, 0.9)

    def d(self, value: float) -> str:
        return _on_map(self.D_MAP, self.d_norm, value, 0.85)

    def label(self, name: str) -> str:
        if name not in self._labels:
            cycle = colormaps["tab10"].colors
            self._labels[name] = to_hex(cycle[len(self._labels) % len(cycle)])
        return self._labels[name]

    def n_bar(self) -> ScalarMappable:
        return _bar(self.N_MAP, self.n_norm, 0.9)

    def d_bar(self) -> ScalarMappable:
        return _bar(self.D_MAP, self.d_norm, 0.85)


def _log_norm(values: ArrayLike) -> LogNorm:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return LogNorm(1.0, 10.0)
    low, high = float(values.min()), float(values.max())
    return LogNorm(low, high) if high > low else LogNorm(low / 2, low * 2)


def _on_map(name: str, norm: LogNorm, value: float, top: float) -> str:
    """A colour on the map's first `top` fraction (the lightest end is hard to see)."""
    position = float(np.clip(norm(value), 0.0, 1.0))
    return to_hex(colormaps[name](top * position))


def _bar(name: str, norm: LogNorm, top: float) -> ScalarMappable:
    """A colorbar source for the same truncated map as `_on_map`."""
    truncated = ListedColormap(colormaps[name](np.linspace(0, top, 256)))
    return ScalarMappable(norm=norm, cmap=truncated)


NARROW_DECADES = 0.8  # a log axis spanning less than this gets evenly spaced ticks


def _decades(axis: Any) -> float:
    low, high = sorted(axis.get_view_interval())
    return math.log10(high / low) if low > 0 else math.inf


class _LogTicks(Locator):
    """Decade ticks on a wide log axis; evenly spaced round values on a narrow one (a loss
    axis from 0.26 to 0.35 would otherwise carry a single tick)."""

    def __init__(self) -> None:
        self._wide, self._narrow = LogLocator(), MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10])

    def set_axis(self, axis: Any) -> None:
        super().set_axis(axis)
        self._wide.set_axis(axis)
        self._narrow.set_axis(axis)

    def __call__(self) -> Sequence[float]:
        return self.tick_values(*self.axis.get_view_interval())

    def tick_values(self, vmin: float, vmax: float) -> Sequence[float]:
        narrow = vmin > 0 and vmax > 0 and abs(math.log10(vmax / vmin)) < NARROW_DECADES
        ticks = np.asarray((self._narrow if narrow else self._wide).tick_values(vmin, vmax))
        return ticks[ticks > 0]  # evenly spaced values can include 0, which a log axis cannot show


class _LogLabels(Formatter):
    """Tick labels written by `text` (200M, 0.3, 20) instead of 3x10^-1, which is hard to
    read at 7 pt: powers of ten where two or more are in view, else 1-2-5, and the round values
    of `_LogTicks` on a narrow axis (where minor ticks stay unlabelled)."""

    def __init__(self, text: Callable[[float], str], minor: bool) -> None:
        self.text, self.minor = text, minor

    def __call__(self, x: float, pos: int | None = None) -> str:
        if not x > 0:
            return ""
        decades = _decades(self.axis)
        if decades < NARROW_DECADES:
            return "" if self.minor else self.text(x)
        low, high = sorted(self.axis.get_view_interval())
        powers = math.floor(math.log10(high)) - math.ceil(math.log10(low)) + 1
        mantissa = x / 10 ** math.floor(math.log10(x) + 1e-9)
        shown = (1,) if powers >= 2 else (1, 2, 5)
        return self.text(x) if any(math.isclose(mantissa, m) for m in shown) else ""


def _plain(value: float) -> str:
    """20, 0.35, 1e14: short enough for a crowded log axis."""
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:g}"
    exponent = math.floor(math.log10(abs(value)) + 1e-9)
    mantissa = round(value / 10**exponent, 2)
    return f"1e{exponent}" if mantissa == 1 else f"{mantissa:g}e{exponent}"


def _log_axes(ax: Any, x: Callable[[float], str] | None, y: Callable[[float], str] | None) -> None:
    """Log scales with readable labels on the axes given a label writer (None: linear)."""
    for axis, text, scale in ((ax.xaxis, x, ax.set_xscale), (ax.yaxis, y, ax.set_yscale)):
        if text is not None:
            scale("log")
            _log_ticks(axis, text)


def _log_ticks(axis: Any, text: Callable[[float], str]) -> None:
    axis.set_major_locator(_LogTicks())
    axis.set_major_formatter(_LogLabels(text, minor=False))
    axis.set_minor_formatter(_LogLabels(text, minor=True))


# Inputs shared by `plot` and `report`.


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


# The figures.


@_styled
def design(runs: Runs) -> Plot:
    """Fig. 2: the (N, D) runs, log-log, coloured by tokens per parameter."""
    pairs = np.unique(np.stack([runs.n, runs.d], axis=1), axis=0)
    n, d = pairs[:, 0], pairs[:, 1]
    ratio = d / n
    figure = Figure(figsize=(PAGE_WIDTH / 2, 2.5), layout="constrained")
    ax = figure.add_subplot()
    norm = _log_norm(ratio)
    points = ax.scatter(
        n, d, c=ratio, cmap=Palette.RATIO_MAP, norm=norm, s=18, edgecolors="k", linewidths=0.3
    )
    guide = np.geomspace(n.min(), n.max(), 2)
    ax.plot(guide, CHINCHILLA_RATIO * guide, "--", color="0.5", lw=0.8)
    _log_axes(ax, human, human)
    ax.set(
        xlabel="parameters N",
        ylabel="tokens D",
        title=f"{len(pairs)} (N, D) pairs (dashed: D/N = 20)",
    )
    _log_ticks(figure.colorbar(points, ax=ax, label="D/N").ax.yaxis, _plain)
    data = {"n": n.tolist(), "d": d.tolist(), "d_over_n": ratio.tolist()}
    return Plot(figure, data)


def _groups(values: np.ndarray, tolerance: float = 0.02) -> list[np.ndarray]:
    """Indices of values that are equal within a relative tolerance (tokens rounded to whole
    batches differ slightly between runs of the same nominal budget)."""
    order = np.argsort(values)
    groups: list[list[int]] = []
    for i in order:
        if groups and values[i] <= values[groups[-1][0]] * (1 + tolerance):
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    return [np.array(g) for g in groups]


@_styled
def scaling(runs: Runs, law: Law, palette: Palette | None = None, points: int = 64) -> Plot:
    """Fig. 3: loss vs N at each D and loss vs D at each N, measured points and the law's curves."""
    palette = palette or Palette.for_runs(runs)
    figure = Figure(figsize=(PAGE_WIDTH, 2.5), layout="constrained")
    figure.get_layout_engine().set(wspace=0.08)  # keeps the left colorbar clear of the right
    by_n, by_d = figure.subplots(1, 2)
    data: dict[str, Any] = {}
    panels = (
        (by_n, "by_d", runs.d, runs.n, palette.d, palette.d_bar(), "D", "N"),
        (by_d, "by_n", runs.n, runs.d, palette.n, palette.n_bar(), "N", "D"),
    )
    for ax, key, fixed, moving, colour, bar, fixed_name, moving_name in panels:
        grid = np.geomspace(moving.min(), moving.max(), points)
        lines = []
        for index in _groups(fixed):
            value = float(np.median(fixed[index]))
            order = index[np.argsort(moving[index])]
            n, d = (grid, value) if key == "by_d" else (value, grid)
            with np.errstate(over="ignore", under="ignore"):
                curve = law.predict(n, d) * np.ones_like(grid)
            ax.plot(grid, curve, color=colour(value), lw=1.0)
            ax.plot(moving[order], runs.loss[order], "o", color=colour(value), mec="k", mew=0.3)
            lines.append(
                {
                    fixed_name.lower(): value,
                    "points": {
                        moving_name.lower(): moving[order].tolist(),
                        "loss": runs.loss[order].tolist(),
                    },
                    "curve": {moving_name.lower(): grid.tolist(), "loss": curve.tolist()},
                }
            )
        data[key] = lines
        _log_axes(ax, human, _plain)
        ax.set(xlabel=_axis_name(moving_name), ylabel="loss")
        ax.set_title(f"loss vs {moving_name} at fixed {fixed_name} ({len(lines)} lines)")
        _log_ticks(figure.colorbar(bar, ax=ax, label=fixed_name, pad=0.01).ax.yaxis, human)
    by_n.legend(handles=_measured_vs_law(law.name), loc="upper right")
    return Plot(figure, data)


def _axis_name(symbol: str) -> str:
    return {"N": "parameters N", "D": "tokens D"}[symbol]


def _measured_vs_law(name: str) -> list[Line2D]:
    return [
        Line2D([], [], marker="o", ls="", color="0.6", mec="k", mew=0.3, label="measured"),
        Line2D([], [], color="0.4", label=f"{name} law"),
    ]


@_styled
def surface(
    laws: dict[str, Law],
    n_range: tuple[float, float],
    d_range: tuple[float, float],
    runs: dict[str, Runs] | None = None,
    palette: Palette | None = None,
    points: int = 40,
) -> Plot:
    """Fig. 4 (left), Fig. 5: the laws' L(N, D) surfaces over log N, log D, with measured runs
    (keyed by a law's label: drawn in its colour; by any other label: in black)."""
    if not laws:
        raise LawsError("a surface plot needs at least one law (--fit)")
    palette = palette or Palette(labels=list(laws))
    runs = runs or {}
    log_n = np.linspace(math.log10(n_range[0]), math.log10(n_range[1]), points)
    log_d = np.linspace(math.log10(d_range[0]), math.log10(d_range[1]), points)
    grid_n, grid_d = np.meshgrid(log_n, log_d, indexing="ij")
    figure = Figure(figsize=(0.62 * PAGE_WIDTH, 3.4), layout="constrained")
    ax = figure.add_subplot(projection="3d")
    data: dict[str, Any] = {
        "log10_n": log_n.tolist(),
        "log10_d": log_d.tolist(),
        "loss": {},
        "runs": {},
    }
    handles = []
    for label, law in laws.items():
        colour = palette.label(label)
        with np.errstate(over="ignore", under="ignore"):
            loss = law.predict(10**grid_n, 10**grid_d)
        ax.plot_surface(grid_n, grid_d, loss, color=colour, alpha=0.45, linewidth=0, shade=True)
        data["loss"][label] = loss.tolist()
        handles.append(Patch(color=colour, alpha=0.6, label=label))
    for label, measured in runs.items():
        colour = palette.label(label) if label in laws else "k"
        ax.scatter(
            np.log10(measured.n),
            np.log10(measured.d),
            measured.loss,
            color=colour,
            edgecolors="k",
            linewidths=0.3,
            s=8,
            depthshade=False,
        )
        data["runs"][label] = {
            "n": measured.n.tolist(),
            "d": measured.d.tolist(),
            "loss": measured.loss.tolist(),
        }
        if label not in laws:
            handles.append(Line2D([], [], marker="o", ls="", color=colour, ms=3, label=label))
    ax.set_xlabel("log10 N", labelpad=-2)
    ax.set_ylabel("log10 D", labelpad=-2)
    ax.set_zlabel("loss", labelpad=-1)
    ax.tick_params(pad=-2)
    ax.view_init(elev=24, azim=-60)  # the high-loss corner (small N, D) in front
    ax.set_box_aspect(None, zoom=0.9)  # room for the axis labels inside the figure
    ax.legend(handles=handles, loc="upper left")
    return Plot(figure, data)


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


@_styled
def mixtures(
    laws: dict[str, Law],
    sizes: Sequence[float],
    ratios: Sequence[float],
    ratio_range: tuple[float, float] = (1.0, 1e4),
    n_range: tuple[float, float] = PAPER_N_RANGE,
    palette: Palette | None = None,
    points: int = 96,
) -> Plot:
    """Fig. 6 and 7: loss vs D/N at fixed N with crossovers marked, loss vs N at fixed D/N."""
    if not laws or not sizes or not ratios:
        raise LawsError("a mixtures plot needs at least one law, one model size and one D/N")
    palette = palette or Palette(labels=list(laws))
    columns = max(len(sizes), len(ratios))
    figure = Figure(figsize=(PAGE_WIDTH, 4.4), layout="constrained")
    axes = figure.subplots(2, columns, squeeze=False)
    ratio_grid = np.geomspace(*ratio_range, points)
    n_grid = np.geomspace(*n_range, points)
    data: dict[str, Any] = {"by_n": [], "by_ratio": []}
    for ax, n in zip(axes[0], sizes, strict=False):
        curves = {}
        for label, law in laws.items():
            curves[label] = law.predict(n, n * ratio_grid)
            ax.plot(ratio_grid, curves[label], color=palette.label(label), label=label)
        crossings = []
        for (name_a, law_a), (name_b, _) in itertools.combinations(laws.items(), 2):
            for r in crossovers(law_a, laws[name_b], n, ratio_range):
                loss = float(law_a.predict(n, n * r))
                crossings.append({"between": [name_a, name_b], "d_over_n": r, "loss": loss})
        if crossings:
            r_cross = [c["d_over_n"] for c in crossings]
            l_cross = [c["loss"] for c in crossings]
            ax.plot(r_cross, l_cross, "x", color="k", ms=6, mew=1.2, gid="crossover", zorder=4)
            for r in r_cross:
                ax.axvline(r, color="k", lw=0.5, ls=":")
        _log_axes(ax, _plain, _plain)
        ax.set(xlabel="D/N", title=f"N = {human(n)}")
        data["by_n"].append(
            {
                "n": float(n),
                "d_over_n": ratio_grid.tolist(),
                "loss": {k: v.tolist() for k, v in curves.items()},
                "crossovers": crossings,
            }
        )
    for ax, ratio in zip(axes[1], ratios, strict=False):
        curves = {}
        for label, law in laws.items():
            curves[label] = law.predict(n_grid, ratio * n_grid)
            ax.plot(n_grid, curves[label], color=palette.label(label), label=label)
        _log_axes(ax, human, _plain)
        ax.set(xlabel="parameters N", title=f"D/N = {ratio:g}")
        data["by_ratio"].append(
            {
                "d_over_n": float(ratio),
                "n": n_grid.tolist(),
                "loss": {k: v.tolist() for k, v in curves.items()},
            }
        )
    for row, used in zip(axes, (len(sizes), len(ratios)), strict=True):
        row[0].set_ylabel("predicted loss")
        for ax in row[used:]:
            ax.set_visible(False)
    handles, _ = axes[0][0].get_legend_handles_labels()
    handles.append(Line2D([], [], marker="x", ls="", color="k", label="crossover"))
    axes[0][0].legend(handles=handles, loc="best")
    return Plot(figure, data)


@_styled
def quality(
    runs: Runs,
    law: Law,
    held_out: np.ndarray | None = None,
    bootstrap: dict[str, Any] | None = None,
    label: str = "",
    palette: Palette | None = None,
) -> Plot:
    """Fit quality: predicted vs measured (held-out runs marked), relative error vs N and D,
    and, when the fit ran a bootstrap, each quantity's interval relative to its estimate."""
    palette = palette or Palette.for_runs(runs)
    held = np.zeros(len(runs), bool) if held_out is None else np.asarray(held_out, bool)
    predicted = law.predict(runs.n, runs.d)
    rel = predicted / runs.loss - 1.0
    intervals = _intervals(bootstrap)
    shape = (2, 2) if intervals else (1, 3)
    figure = Figure(figsize=(PAGE_WIDTH, 4.6 if intervals else 2.3), layout="constrained")
    axes = figure.subplots(*shape).ravel()
    parity, by_n, by_d = axes[:3]
    colours_n = [palette.n(v) for v in runs.n]
    colours_d = [palette.d(v) for v in runs.d]
    for mask, marker, edge in ((~held, "o", 0.3), (held, "D", 1.0)):
        if not mask.any():
            continue
        style = {"marker": marker, "s": 16, "edgecolors": "k", "linewidths": edge, "zorder": 3}
        parity.scatter(runs.loss[mask], predicted[mask], c=np.array(colours_n)[mask], **style)
        by_n.scatter(runs.n[mask], 100 * rel[mask], c=np.array(colours_d)[mask], **style)
        by_d.scatter(runs.d[mask], 100 * rel[mask], c=np.array(colours_n)[mask], **style)
    span = [min(runs.loss.min(), predicted.min()), max(runs.loss.max(), predicted.max())]
    parity.plot(span, span, color="0.4", lw=0.8, ls="--", label="y = x")
    _log_axes(parity, _plain, _plain)
    parity.set(xlabel="measured loss", ylabel="predicted loss")
    parity.set_title(f"{label or law.name}: predicted vs measured")
    handles = [Line2D([], [], marker="o", ls="", color="0.7", mec="k", mew=0.3, label="fitted")]
    if held.any():
        handles.append(Line2D([], [], marker="D", ls="", color="0.7", mec="k", label="held out"))
    parity.legend(handles=[*handles, Line2D([], [], color="0.4", ls="--", label="y = x")])
    for ax, name in ((by_n, "N"), (by_d, "D")):
        ax.axhline(0, color="0.4", lw=0.8)
        _log_axes(ax, human, None)
        ax.set(xlabel=_axis_name(name), ylabel="relative error (%)")
        ax.set_title(f"error vs {name} (colour: {'D' if name == 'N' else 'N'})")
    data: dict[str, Any] = {
        "n": runs.n.tolist(),
        "d": runs.d.tolist(),
        "measured": runs.loss.tolist(),
        "predicted": predicted.tolist(),
        "rel_error": rel.tolist(),
        "held_out": held.tolist(),
        "errors": {
            "fitted": error_summary(law, runs.subset(~held)) if (~held).any() else None,
            "held_out": error_summary(law, runs.subset(held)) if held.any() else None,
        },
    }
    if intervals:
        _draw_intervals(axes[3], intervals)
        data["bootstrap"] = intervals
    return Plot(figure, data)


def _intervals(boot: dict[str, Any] | None) -> dict[str, Any] | None:
    """Bootstrap intervals as multiples of each estimate (quantities with a non-zero one):
    comparable across parameters and derived quantities, and legible when an interval spans
    orders of magnitude, as it does on a handful of runs."""
    quantities = (boot or {}).get("quantities") or {}
    rows = {
        name: sorted((q["low"] / q["estimate"], q["high"] / q["estimate"]))
        for name, q in quantities.items()
        if q.get("estimate") and all(math.isfinite(q[k]) for k in ("estimate", "low", "high"))
    }
    if not rows:
        return None
    return {
        "names": list(rows),
        "low_ratio": [low for low, _ in rows.values()],
        "high_ratio": [high for _, high in rows.values()],
        "level": boot.get("level", 0.95),
        "resamples": boot.get("succeeded"),
    }


def _draw_intervals(ax: Any, intervals: dict[str, Any]) -> None:
    """One bar per quantity on a log axis around 1 (the estimate); an interval that reaches
    zero or the other sign is drawn in red from the axis's left edge."""
    y = np.arange(len(intervals["names"]))
    low, high = np.array(intervals["low_ratio"]), np.array(intervals["high_ratio"])
    positive = low[low > 0]
    floor = min(0.5, positive.min() if positive.size else 0.5) / 3
    crosses = low <= 0
    ax.hlines(
        y,
        np.maximum(low, floor),
        np.maximum(high, floor),
        color=np.where(crosses, "C3", "C0"),
        lw=2,
    )
    ax.axvline(1.0, color="k", lw=0.8)
    _log_axes(ax, _plain, None)
    ax.set_xlim(left=floor)
    ax.set_yticks(y, intervals["names"], fontsize=6)
    ax.invert_yaxis()
    ax.grid(False, axis="y")
    ax.set_xlabel("interval / estimate (red: reaches zero)")
    ax.set_title(f"bootstrap {intervals['level']:.0%} intervals ({intervals['resamples']} refits)")


def summarise(data: Any, keep: int = 8) -> Any:
    """The plotted data with long number lists shortened to count, min and max (for --json)."""
    if isinstance(data, list) and len(data) > keep and all(isinstance(v, bool) for v in data):
        return {"count": len(data), "true": sum(data)}
    if isinstance(data, dict):
        return {k: summarise(v, keep) for k, v in data.items()}
    if isinstance(data, list) and len(data) > keep and all(_number(v) for v in data):
        values = np.array([np.nan if v is None else v for v in data], dtype=float)
        finite = values[np.isfinite(values)]
        if not finite.size:
            return {"count": len(data)}
        return {"count": len(data), "min": float(finite.min()), "max": float(finite.max())}
    if isinstance(data, list) and len(data) > keep and all(isinstance(v, list) for v in data):
        return summarise([x for row in data for x in row], keep)
    if isinstance(data, list):
        return [summarise(v, keep) for v in data]
    return data


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
