"""What every fit reports: the law, how well it fits, the objective and the method's details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from laws.fit.forms import Law
from laws.runs.table import Runs


def relative_errors(law: Law, runs: Runs) -> np.ndarray:
    """(predicted - measured) / measured for each run."""
    return law.predict(runs.n, runs.d) / runs.loss - 1.0


def error_summary(law: Law, runs: Runs, weights: np.ndarray | None = None) -> dict[str, float]:
    """Mean and max absolute relative error, and the mean signed one (the bias)."""
    rel = relative_errors(law, runs)
    w = np.ones_like(rel) if weights is None else np.asarray(weights, dtype=float)
    return {
        "mean_rel_error": float(np.average(np.abs(rel), weights=w)),
        "max_rel_error": float(np.abs(rel).max()),
        "signed_rel_error": float(np.average(rel, weights=w)),
    }


@dataclass
class Fit:
    """A fitted law with its in-sample errors; `details` holds method-specific diagnostics.

    `problems` lists why the fit should not be trusted (an optimiser that did not converge, a
    parameter on a search bound, ...), in words a user can act on; none means status "ok".
    """

    law: Law
    method: str
    objective: float
    errors: dict[str, float]
    n_runs: int
    domain: dict[str, list[float]]
    details: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "unreliable" if self.problems else "ok"

    def to_json(self) -> dict[str, Any]:
        return {
            **self.law.to_json(),
            "domain": self.domain,
            "fit": {
                "status": self.status,
                "problems": list(self.problems),
                "method": self.method,
                "n_runs": self.n_runs,
                "objective": self.objective,
                **self.errors,
                "irreducible": self.law.irreducible(),
                **self.details,
            },
        }
