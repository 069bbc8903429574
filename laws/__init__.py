"""Scaling-law surfaces L(N, D) for the study: fit (Chinchilla, Farseer), validate, allocate.

Independent of training: it reads a table of runs (a runs/ directory or a CSV / JSON-lines
file). The command line is `python -m laws`; see docs/laws.md.
"""

from laws.analysis.bootstrap import Bootstrap, bootstrap
from laws.analysis.optimal import (
    Allocation,
    TrustRegion,
    compute_optimal,
    crossovers,
    frontier,
    optimal_tokens,
)
from laws.analysis.validate import Cutoff, holdout, leave_one_size_out
from laws.errors import LawsError, RunawayWarning
from laws.fit.dispatch import fit_law, fit_per_language
from laws.fit.forms import Chinchilla, Farseer, PerLanguage, load_law
from laws.fit.result import Fit
from laws.runs.read import read_runs
from laws.runs.table import Runs
from laws.units import parse_quantity

__all__ = [
    "Allocation",
    "Bootstrap",
    "Chinchilla",
    "Cutoff",
    "Farseer",
    "Fit",
    "LawsError",
    "PerLanguage",
    "RunawayWarning",
    "Runs",
    "TrustRegion",
    "bootstrap",
    "compute_optimal",
    "crossovers",
    "fit_law",
    "fit_per_language",
    "frontier",
    "holdout",
    "leave_one_size_out",
    "load_law",
    "optimal_tokens",
    "parse_quantity",
    "read_runs",
]
