"""A study on one page: the fitted laws, their status and errors (held out first), the
compute-optimal allocation, the runs left out and every figure, as `report.html` and a Markdown
twin `report.md` (tables in `laws.present.report_tables`, the page in `laws.present.report_page`).

Laws come from fit files, or are fitted here on the runs (every form the data allow; a form that
cannot be fitted is listed with the reason). A law fitted here without --holdout is fitted to
every run and refitted without the largest model size for its held-out error.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from laws.analysis.hparams import GridRuns, fit_hparams, read_grid
from laws.analysis.validate import HOLDOUT_KEYS, Cutoff, extrapolation, split
from laws.errors import LawsError
from laws.fit.chinchilla import GRIDS
from laws.fit.dispatch import fit_law
from laws.fit.forms import Law
from laws.present import figures
from laws.present.figures import LabelledLaw, Palette, Plot, Reference
from laws.present.report_page import render_html, render_markdown
from laws.present.report_parts import Entry, Report, Section
from laws.present.report_tables import tables
from laws.runs.read import left_out_summary, read_runs
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN, Runs, repeat_summary

FORMS = ("chinchilla", "farseer")  # fitted here when no fit files are given


def build_report(
    results: str | Path,
    out_dir: str | Path,
    fits: Sequence[str | Path] = (),
    labels: Sequence[str] = (),
    cut: Cutoff | None = None,
    budgets: Sequence[float] = (),
    references: Sequence[Reference] = (),
    grid: str = "hoffmann",
    mixture: str | None = None,
    language: str | None = None,
    workers: int | None = None,
    flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN,
    average: bool = True,
) -> Report:
    """Fit (or read) the laws, draw every figure into out_dir and write report.html / .md;
    repeated runs are averaged (`read_runs`), or refused with average=False."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    every = read_runs(results, flops_per_token, average)
    runs = every.subset(np.array([lang == language for lang in every.language], dtype=bool))
    if not len(runs):
        raise LawsError(f"{results}: no runs with {_language_name(language)}")
    if fits:
        entries, skipped = _read_entries(runs, fits, labels, cut, mixture, language), []
    else:
        entries, skipped = _fit_entries(
            runs, out, str(results), cut, grid, mixture, language, workers
        )
    grid = _hparam_grid(results)
    if not entries and grid is None:
        reasons = "; ".join(f"{label}: {reason}" for label, reason in skipped)
        raise LawsError(f"no law could be fitted to {results} ({reasons}); add runs or give --fits")
    chosen_budgets = list(budgets) or default_budgets(runs)
    palette = Palette.for_runs(runs, [e.label for e in entries])
    if entries:
        sections = _draw(runs, entries, chosen_budgets, references, palette, flops_per_token, out)
    else:  # a hyperparameter grid alone: its cells, and its landscapes below
        figures.save(figures.design(runs).figure, out, "design")
        sections = [Section("design", "Design", "The grid's (N, D) cells (paper Fig. 2).")]
    if grid is not None:
        _add_hparams(grid, out, sections, skipped)
    left_out = left_out_summary(runs)["runs"]
    report = Report(
        out=out,
        results=str(results),
        n_runs=len(runs),
        entries=entries,
        skipped=skipped,
        budgets=chosen_budgets,
        tables=tables(entries, left_out, chosen_budgets, flops_per_token),
        sections=sections,
        holdout=str(cut) if cut else None,
        repeats=repeat_summary(runs),
        left_out=left_out,
    )
    (out / "report.html").write_text(render_html(report))
    (out / "report.md").write_text(render_markdown(report))
    return report


def _hparam_grid(results: str | Path) -> GridRuns | None:
    """The results' lr x batch grid, if they hold one (a cell run at two or more lr)."""
    if not Path(results).is_dir():
        return None
    try:
        grid = read_grid(results)
    except LawsError:
        return None
    varied = any(len(np.unique(grid.lr[rows])) > 1 for rows in grid.cells())
    return grid if varied else None


def _add_hparams(
    grid: GridRuns, out: Path, sections: list[Section], skipped: list[tuple[str, str]]
) -> None:
    """The hyperparameter landscapes and the law fitted through them (`laws hparams`)."""
    try:
        law = fit_hparams(grid, resamples=200)
    except LawsError as error:
        skipped.append(("hyperparameter law", str(error)))
        return
    figures.save(figures.hparams(grid, law).figure, out, "hparams")
    lr, batch = law["lr"], law["batch_tokens"]
    batch_text = (
        "no batch law"
        if batch is None
        else f"batch = {batch['coef']:.3g} D^{batch['d_exponent']:.3f}"
    )
    flagged = f"; problems: {'; '.join(law['problems'])}" if law["problems"] else ""
    sections.append(
        Section(
            "hparams",
            "Hyperparameter landscapes",
            f"Loss over lr x batch per cell (white: +{law['tolerance']:.2%} contour; star: best "
            f"run; x: the law's choice), and the fitted lr = {lr['coef']:.3g} "
            f"N^{lr['n_exponent']:.3f} D^{lr['d_exponent']:.3f}, {batch_text}, against the "
            f"cells' optima{flagged} "
            "(`laws hparams` writes the law file).",
        )
    )


def default_budgets(runs: Runs) -> list[float]:
    """Three budgets: the decade of the largest run's compute and the two above it."""
    top = math.floor(math.log10(float(runs.c.max())))
    return [10.0**top, 10.0 ** (top + 1), 10.0 ** (top + 2)]


def _language_name(language: str | None) -> str:
    return "the overall loss" if language is None else f"language {language!r}"


def _mixtures(runs: Runs, mixture: str | None) -> list[str | None]:
    """The mixture asked for, else every mixture in the order the runs list them."""
    return [mixture] if mixture is not None else list(dict.fromkeys(runs.mixture))


def _read_entries(
    runs: Runs,
    fits: Sequence[str | Path],
    labels: Sequence[str],
    cut: Cutoff | None,
    mixture: str | None,
    language: str | None,
) -> list[Entry]:
    entries = []
    for path, law in zip(fits, figures.read_fits(fits, labels, language), strict=True):
        own = mixture or (law.fit.get("selection") or {}).get("mixture")
        chosen = runs.select(own, language)
        held = figures.held_out_mask(chosen, cut, law.fit)
        held = np.zeros(len(chosen), bool) if held is None else held
        split_text = str(cut) if cut else (law.fit.get("holdout") or {}).get("cutoff")
        entries.append(Entry(law, chosen, held, str(path), own, split_text))
    return entries


def _fit_entries(
    runs: Runs,
    out: Path,
    results: str,
    cut: Cutoff | None,
    grid: str,
    mixture: str | None,
    language: str | None,
    workers: int | None,
) -> tuple[list[Entry], list[tuple[str, str]]]:
    """Fit every form to every mixture's runs; write each fit to out/fits/LABEL.json."""
    entries, skipped = [], []
    mixtures = _mixtures(runs, mixture)
    for mix in mixtures:
        chosen = runs.select(mix, language)
        held = ~cut.train_mask(chosen) if cut else np.zeros(len(chosen), bool)
        if cut:
            split(chosen, cut)  # a cut with every run on one side is an error, not a skip
        for form in FORMS:
            label = form if len(mixtures) == 1 else f"{form} (mixture {mix})"
            options = {"starts": GRIDS[grid](), "workers": workers} if form == "chinchilla" else {}
            try:
                if cut:
                    fit, check = extrapolation(chosen, form, cut, **options)
                else:
                    fit = fit_law(chosen, form, **options)
                    check = extrapolation(chosen, form, **options)[1]
            except LawsError as error:
                skipped.append((label, str(error)))
                continue
            data = fit.to_json()
            data["fit"]["left_out"] = left_out_summary(chosen)
            data["selection"] = {"results": results, "mixture": mix, "language": language}
            data["extrapolation"] = check
            if cut:
                data["holdout"] = {k: check[k] for k in HOLDOUT_KEYS}
            path = out / "fits" / f"{_slug(label)}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2) + "\n")
            law = LabelledLaw(label, fit.law, data)
            entries.append(Entry(law, chosen, held, "fitted here", mix, str(cut) if cut else None))
    return entries, skipped


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", label.lower()).strip("-") or "law"


def _draw(
    runs: Runs,
    entries: list[Entry],
    budgets: list[float],
    references: Sequence[Reference],
    palette: Palette,
    flops_per_token: float,
    out: Path,
) -> list[Section]:
    """Every figure the laws and runs allow, saved as PNG and PDF into out."""
    sections: list[Section] = []

    def add(plot: Plot, stem: str, title: str, caption: str) -> None:
        figures.save(plot.figure, out, stem)
        sections.append(Section(stem, title, caption))

    laws = [e.law for e in entries]
    n_range, d_range = figures.extent(laws, runs)
    stems = _stems(entries)
    add(
        figures.design(runs),
        "design",
        "Design",
        "The runs' (N, D), coloured by D/N (paper Fig. 2); dashed: D/N = 20.",
    )
    for e in entries:
        add(
            figures.scaling(e.runs, e.law.law, palette),
            f"scaling-{stems[e.label]}",
            f"Scaling: {e.label}",
            f"Measured loss (points) and the {e.label} law (lines) vs N at each D and vs D at "
            "each N, log-log (paper Fig. 3).",
        )
    first = {e.mixture: e for e in reversed(entries)}  # each mixture's first law
    shown = (
        {"runs": entries[0].runs} if len(first) == 1 else {e.label: e.runs for e in first.values()}
    )
    add(
        figures.surface({e.label: e.law.law for e in entries}, n_range, d_range, shown, palette),
        "surface",
        "Loss surfaces",
        "The fitted L(N, D) surfaces over log N and log D, with the runs (paper Fig. 4 left, "
        "Fig. 5).",
    )
    low, high = figures.compute_range(n_range, d_range, flops_per_token)
    computes = np.geomspace(low, high, figures.CURVE_POINTS)
    add(
        figures.optimal(laws, computes, budgets, references, runs, flops_per_token, palette),
        "optimal",
        "Compute-optimal allocation",
        "Optimal D/N (dashed: Chinchilla's 20) and optimal loss vs compute C = 6ND; dots: the "
        "budgets of the allocation table; grey: the runs (paper Fig. 1, Fig. 4 right).",
    )
    mixed = _mixture_laws(entries)
    if mixed:
        sizes = figures.default_sizes(n_range)
        add(
            figures.mixtures(
                mixed, sizes, figures.DEFAULT_RATIOS, n_range=n_range, palette=palette
            ),
            "mixtures",
            "Mixtures",
            "Predicted loss vs D/N at fixed N, crossovers marked (paper Fig. 6), and vs N at "
            "fixed D/N (paper Fig. 7).",
        )
    for e in entries:
        boot = e.law.fit.get("bootstrap")
        add(
            figures.quality(e.runs, e.law.law, e.held, boot, e.label, palette),
            f"quality-{stems[e.label]}",
            f"Fit quality: {e.label}",
            "Predicted vs measured loss"
            + (" (diamonds: held out)" if e.held.any() else "")
            + ", relative error vs N and D"
            + ("; bootstrap intervals relative to the estimates." if boot else "."),
        )
    return sections


def _stems(entries: list[Entry]) -> dict[str, str]:
    """A distinct file-name part per label."""
    stems: dict[str, str] = {}
    for entry in entries:
        stem = _slug(entry.label)
        while stem in stems.values():
            stem += "-"
        stems[entry.label] = stem
    return stems


def _mixture_laws(entries: list[Entry]) -> dict[str, Law]:
    """One form's laws across mixtures (the first form fitted to two or more), else {}."""
    for form in dict.fromkeys(e.law.law.name for e in entries):
        same = {e.label: e.law.law for e in entries if e.law.law.name == form}
        if len({e.mixture for e in entries if e.label in same}) > 1:
            return same
    return {}
