"""The report's page: a summary, the tables and the figures, as self-contained HTML and as
Markdown beside the PNG files.

The HTML inlines every figure as a base64 PNG with inline style and no network resources, so it
opens offline and survives being mailed; the Markdown links the PNG files written beside it.
"""

from __future__ import annotations

import base64
import html
from collections import Counter

from laws.present.report_parts import Report, Table
from laws.present.report_tables import TITLES


def summary_lines(report: Report) -> list[str]:
    """What the page is about, and what to read it with: the split, what was left out, and
    why in-sample error does not rank laws of different sizes."""
    lines = [f"{report.n_runs} runs from {report.results}."]
    for entry in report.entries:
        status = (entry.law.fit.get("fit") or {}).get("status")
        said = f", status {status}" if status else ""
        lines.append(f"{entry.label}: {entry.law.law.name} law, {entry.origin}{said}.")
    for label, reason in report.skipped:
        lines.append(f"{label}: not fitted: {reason}")
    if report.holdout:
        lines.append(f"Holdout {report.holdout}: the runs beyond the cut are held out.")
    elif any(e.origin == "fitted here" for e in report.entries):
        lines.append(
            "Held-out error: each law fitted here is refitted without the largest model size "
            "and scored on it (the default split; --holdout chooses another); the laws shown "
            "are fitted to every run."
        )
    sizes = sorted({len(e.law.law.params) for e in report.entries})
    if len(sizes) > 1:
        lines.append(
            f"In-sample, a law with more parameters ({sizes[-1]} against {sizes[0]}) fits better "
            "by construction: rank the laws by held-out error."
        )
    if report.left_out:
        kinds = Counter(x["kind"] for x in report.left_out)
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        runs = "run" if len(report.left_out) == 1 else "runs"
        lines.append(
            f"Left out of the fits: {len(report.left_out)} {runs} ({counts}), listed below."
        )
    if any(e.origin != "fitted here" for e in report.entries):
        lines.append(
            "For laws read from files, in-sample means the runs not held out (whether the file's "
            "law was fitted to them is not recorded here)."
        )
    return lines


def render_markdown(report: Report) -> str:
    parts = ["# Scaling-law report", "", *(f"- {line}" for line in summary_lines(report)), ""]
    for name, table in report.tables.items():
        parts += [f"## {TITLES[name]}", "", _markdown_table(table), ""]
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
    body += [f"<li>{esc(line)}</li>" for line in summary_lines(report)]
    body.append("</ul>")
    for name, table in report.tables.items():
        body += [f"<h2>{esc(TITLES[name])}</h2>", _html_table(table)]
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
