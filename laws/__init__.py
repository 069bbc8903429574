"""Scaling-law surfaces L(N, D) for the study: fit (Chinchilla, Farseer), validate, allocate.

Independent of training: it reads a table of runs (a runs/ directory or a CSV / JSON-lines
file). The command line is `python -m laws`; see docs/laws.md.
"""

from laws.data import Runs, parse_quantity
from laws.errors import LawsError, RunawayWarning
from laws.fit_result import Fit
from laws.fitting import fit_law, fit_per_language
from laws.forms import Chinchilla, Farseer, PerLanguage, load_law
from laws.optimal import (
    Allocation,
    TrustRegion,
    compute_optimal,
    crossovers,
    frontier,
    optimal_tokens,
)
from laws.results import read_runs
from laws.validate import Bootstrap, Cutoff, bootstrap, holdout, leave_one_size_out

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
