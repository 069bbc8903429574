"""A study on one page: the fitted laws, their errors, the compute-optimal allocation and every
figure, as `report.html` and a Markdown twin `report.md`.

The HTML is self-contained (figures inlined as base64 PNG, inline style, no fonts or scripts
from the network) so it opens offline and survives being mailed; the Markdown references the
PNG files written beside it. Laws come from fit files, or are fitted here on the runs (every
form the data allow; a form that cannot be fitted is listed with the reason).
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from laws import figures
from laws.cli import human
from laws.data import DEFAULT_FLOPS_PER_TOKEN, Runs, repeat_summary
from laws.errors import LawsError, RunawayWarning
from laws.figures import LabelledLaw, Palette, Plot, Reference
from laws.fit_chinchilla import GRIDS
from laws.fit_result import error_summary
from laws.fitting import fit_law
from laws.forms import Law
from laws.optimal import compute_optimal
from laws.results import read_runs
from laws.validate import Cutoff, holdout, split

FORMS = ("chinchilla", "farseer")  # fitted here when no fit files are given


@dataclass
class Entry:
    """One law in the report, with the runs it is judged on."""

    law: LabelledLaw
    runs: Runs  # the runs of its mixture and language
    held: np.ndarray  # which of them the law did not see
    origin: str  # "fitted here" or the fit file
    mixture: str | None = None

    @property
    def label(self) -> str:
        return self.law.label


@dataclass
class Section:
    """A figure in the report: the file stem of its PNG / PDF, a title and a caption."""

    stem: str
    title: str
    caption: str


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Report:
    out: Path
    results: str
    n_runs: int
    entries: list[Entry]
    skipped: list[tuple[str, str]]
    budgets: list[float]
    tables: dict[str, Table]
    sections: list[Section]
    holdout: str | None
    repeats: dict[str, Any]  # `laws.data.repeat_summary` of the runs read

    def to_json(self) -> dict[str, Any]:
        return {
            "html": str(self.out / "report.html"),
            "markdown": str(self.out / "report.md"),
            "figures": [str(self.out / f"{s.stem}.png") for s in self.sections],
            "laws": [
                {"label": e.label, "law": e.law.law.name, "origin": e.origin} for e in self.entries
            ],
            "skipped": [{"label": label, "reason": reason} for label, reason in self.skipped],
            "budgets": self.budgets,
            "repeats": self.repeats,
            "tables": {
                name: {"headers": t.headers, "rows": t.rows} for name, t in self.tables.items()
            },
        }


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
    if not entries:
        reasons = "; ".join(f"{label}: {reason}" for label, reason in skipped)
        raise LawsError(f"no law could be fitted to {results} ({reasons}); add runs or give --fits")
    chosen_budgets = list(budgets) or default_budgets(runs)
    palette = Palette.for_runs(runs, [e.label for e in entries])
    sections = _draw(runs, entries, chosen_budgets, references, palette, flops_per_token, out)
    report = Report(
        out=out,
        results=str(results),
        n_runs=len(runs),
        entries=entries,
        skipped=skipped,
        budgets=chosen_budgets,
        tables={
            "parameters": _parameter_table(entries),
            "errors": _error_table(entries),
            "allocation": _allocation_table(entries, chosen_budgets, flops_per_token),
        },
        sections=sections,
        holdout=str(cut) if cut else None,
        repeats=repeat_summary(runs),
    )
    (out / "report.html").write_text(render_html(report))
    (out / "report.md").write_text(render_markdown(report))
    return report


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
        entries.append(Entry(law, chosen, held, str(path), own))
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
                    fit, held_rows = holdout(chosen, form, cut, **options)
                else:
                    fit, held_rows = fit_law(chosen, form, **options), None
            except LawsError as error:
                skipped.append((label, str(error)))
                continue
            data = fit.to_json()
            data["selection"] = {"results": results, "mixture": mix, "language": language}
            if held_rows:
                data["holdout"] = held_rows
            path = out / "fits" / f"{_slug(label)}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2) + "\n")
            law = LabelledLaw(label, fit.law, data)
            entries.append(Entry(law, chosen, held, "fitted here", mix))
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


def _parameter_table(entries: list[Entry]) -> Table:
    rows = []
    for entry in entries:
        boot = (entry.law.fit.get("bootstrap") or {}).get("quantities") or {}
        level = (entry.law.fit.get("bootstrap") or {}).get("level")
        for name, value in entry.law.law.params.items():
            interval = boot.get(name)
            shown = f"{interval['low']:.6g} to {interval['high']:.6g}" if interval else "-"
            rows.append(
                [entry.label, name, f"{value:.6g}", f"{shown} ({level:.0%})" if interval else shown]
            )
        rows.append([entry.label, "irreducible", f"{entry.law.law.irreducible():.4g}", "-"])
    return Table(["law", "parameter", "value", "bootstrap interval"], rows)


def _error_table(entries: list[Entry]) -> Table:
    """Mean / max / signed relative error on the runs a law saw and on the held-out ones."""
    rows = []
    for entry in entries:
        for side, mask in (("in-sample", ~entry.held), ("held out", entry.held)):
            if not mask.any():
                continue
            e = error_summary(entry.law.law, entry.runs.subset(mask))
            rows.append(
                [
                    entry.label,
                    side,
                    str(int(mask.sum())),
                    f"{e['mean_rel_error']:.3%}",
                    f"{e['max_rel_error']:.3%}",
                    f"{e['signed_rel_error']:+.3%}",
                ]
            )
    return Table(["law", "runs", "count", "mean", "max", "signed"], rows)


def _allocation_table(entries: list[Entry], budgets: list[float], k: float) -> Table:
    rows = []
    for entry in entries:
        boot = (entry.law.fit.get("bootstrap") or {}).get("quantities") or {}
        for budget in budgets:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RunawayWarning)
                    a = compute_optimal(entry.law.law, budget, k, entry.law.region)
            except LawsError as error:
                rows.append([entry.label, f"{budget:.3g}", "-", "-", "-", "-", "-", str(error)])
                continue
            interval = boot.get(f"d_over_n@C={budget:.3g}")
            spread = f"{interval['low']:.1f} to {interval['high']:.1f}" if interval else "-"
            rows.append(
                [
                    entry.label,
                    f"{budget:.3g}",
                    human(a.n_opt),
                    human(a.d_opt),
                    f"{a.d_over_n:.1f}",
                    spread,
                    f"{a.loss:.5f}",
                    a.note or "",
                ]
            )
    headers = ["law", "C", "N_opt", "D_opt", "D/N", "D/N interval", "loss", "note"]
    return Table(headers, rows)


TABLE_TITLES = {
    "parameters": "Fitted parameters",
    "errors": "Relative errors (predicted / measured - 1)",
    "allocation": "Compute-optimal allocation",
}


def _summary_lines(report: Report) -> list[str]:
    lines = [f"{report.n_runs} runs from {report.results}."]
    for entry in report.entries:
        lines.append(f"{entry.label}: {entry.law.law.name} law, {entry.origin}.")
    for label, reason in report.skipped:
        lines.append(f"{label}: not fitted: {reason}")
    if report.holdout:
        lines.append(f"Holdout {report.holdout}: the runs beyond the cut are held out.")
    if any(e.origin != "fitted here" for e in report.entries):
        lines.append(
            "For laws read from files, in-sample means the runs not held out (whether the file's "
            "law was fitted to them is not recorded here)."
        )
    return lines


def render_markdown(report: Report) -> str:
    parts = ["# Scaling-law report", "", *(f"- {line}" for line in _summary_lines(report)), ""]
    for name, table in report.tables.items():
        parts += [f"## {TABLE_TITLES[name]}", "", _markdown_table(table), ""]
    parts += ["## Figures", ""]
    for s in report.sections:
        parts += [
            f"### {s.title}",
            "",
            f"![{s.title}]({s.stem}.png)",
            "",
            f"{s.caption} (PDF: [{s.stem}.pdf]({s.stem}.pdf))",
            "",
        ]
    return "\n".join(parts)


def _markdown_table(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join(
        [
            line(table.headers),
            line(["---"] * len(table.headers)),
            *(line(row) for row in table.rows),
        ]
    )


STYLE_CSS = """
body { font: 15px/1.45 system-ui, sans-serif; max-width: 1000px; margin: 2em auto;
       padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 10px; text-align: right; }
th:first-child, td:first-child, td:last-child { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #555; font-size: 13px; }
"""

# Nothing may be fetched: images are data URIs, style and script are inline.
OFFLINE_POLICY = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
)

# Marks the page once every figure has decoded (read by the headless-browser test).
LOADED_SCRIPT = """
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  images.forEach(i => { i.dataset.natural = i.naturalWidth + "x" + i.naturalHeight; });
  const ok = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.dataset.imagesLoaded = ok + "/" + images.length;
});
"""


def render_html(report: Report) -> str:
    esc = html.escape
    body = ["<h1>Scaling-law report</h1>", "<ul>"]
    body += [f"<li>{esc(line)}</li>" for line in _summary_lines(report)]
    body.append("</ul>")
    for name, table in report.tables.items():
        body += [f"<h2>{esc(TABLE_TITLES[name])}</h2>", _html_table(table)]
    body.append("<h2>Figures</h2>")
    for s in report.sections:
        encoded = base64.b64encode((report.out / f"{s.stem}.png").read_bytes()).decode("ascii")
        body.append(
            f'<figure id="{esc(s.stem)}"><h3>{esc(s.title)}</h3>'
            f'<img alt="{esc(s.title)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{esc(s.caption)}</figcaption></figure>"
        )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{OFFLINE_POLICY}">'
        "<title>Scaling-law report</title>"
        f"<style>{STYLE_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{LOADED_SCRIPT}</script>\n</body></html>\n"
    )


def _html_table(table: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in table.headers)
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
