"""What a report is made of: its laws (entries), tables and figure sections, and the whole
report as JSON. Shared by the modules that build, tabulate and render it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from laws.present.figures import LabelledLaw
from laws.runs.table import Runs


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Entry:
    """One law in the report, with the runs it is judged on."""

    law: LabelledLaw
    runs: Runs  # the runs of its mixture and language
    held: np.ndarray  # which of them the law did not see
    origin: str  # "fitted here" or the fit file
    mixture: str | None = None
    split: str | None = None  # the cut that defines `held`

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
    repeats: dict[str, Any]  # `laws.runs.table.repeat_summary` of the runs read
    left_out: list[dict[str, str]]  # the runs read but not fitted (`laws.runs.table.LeftOut`)

    def to_json(self) -> dict[str, Any]:
        return {
            "html": str(self.out / "report.html"),
            "markdown": str(self.out / "report.md"),
            "figures": [str(self.out / f"{s.stem}.png") for s in self.sections],
            "laws": [
                {
                    "label": e.label,
                    "law": e.law.law.name,
                    "origin": e.origin,
                    "status": (e.law.fit.get("fit") or {}).get("status"),
                    "problems": (e.law.fit.get("fit") or {}).get("problems"),
                }
                for e in self.entries
            ],
            "skipped": [{"label": label, "reason": reason} for label, reason in self.skipped],
            "budgets": self.budgets,
            "repeats": self.repeats,
            "left_out": self.left_out,
            "tables": {
                name: {"headers": t.headers, "rows": t.rows} for name, t in self.tables.items()
            },
        }
