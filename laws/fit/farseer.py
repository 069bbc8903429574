"""Farseer fit: the authors' piecewise method (`laws.fit.farseer_piecewise`), a joint refinement
(`laws.fit.farseer_joint`), and a choice between the two that predicts extrapolation.

Both candidates obey the procedure's constraints (B > 0, b < 0). The joint refinement always
lowers the in-sample error, since it minimises it, yet on real runs it can extrapolate worse
(issue 14: in-sample 0.20% -> 0.13%, error on the larger held-out models 0.77% -> 1.08%). So the
candidates are compared by leaving the largest model size of the training runs out: each
procedure is rerun on the smaller sizes and scored on the largest, and the lower error wins. Only
finite candidates whose optimiser converged can be chosen; every other one, every search on a
grid edge and every active constraint is a problem of the fit.

Internally N is divided by its geometric mean N0 (s, B, A rescaled by N0^q, N0^b, N0^a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from laws.errors import LawsError
from laws.fit.farseer_joint import refine as refine_jointly
from laws.fit.farseer_piecewise import piecewise
from laws.fit.forms import Farseer, farseer_log_terms
from laws.fit.result import Fit, error_summary
from laws.runs.table import Runs, check_fittable

CRITERION = "mean relative error on the largest training size, refitted without it"
ERROR_KEYS = ("mean_rel_error", "max_rel_error", "signed_rel_error")


@dataclass
class _Candidate:
    theta: np.ndarray  # N scaled by N0
    converged: bool
    problems: list[str]  # its own: stages on a grid edge, active constraints, ...
    report: dict  # for details["candidates"]


def fit(
    runs: Runs,
    *,
    weights: np.ndarray | None = None,
    min_differences: int = 5,
    refine: bool = True,
    start: Farseer | None = None,
) -> Fit:
    """Fit the 9-parameter Farseer law; weights (resampling counts) enter the joint step and the
    scores, not the piecewise stage.

    With `start` (the bootstrap's warm refits) the piecewise stage is skipped: the only
    candidate is the joint refinement from that law, never the start itself.
    """
    check_fittable(runs, "farseer", n_params=9, min_sizes=3)
    w = np.ones(len(runs)) if weights is None else np.asarray(weights, dtype=float)
    if start is not None and not refine:
        raise LawsError("the Farseer fit failed: a warm start is only a start (refine=False)")
    ln_n0 = float(np.mean(np.log(np.unique(runs.n))))
    candidates = _candidates(runs, w, ln_n0, min_differences, refine, start)
    names = list(candidates)
    usable = [k for k in names if candidates[k].converged and candidates[k].report["finite"]]
    if not usable:
        raise LawsError(
            "the Farseer fit failed: "
            + "; ".join(
                f"{k}: {'; '.join(c.problems) or 'not finite'}" for k, c in candidates.items()
            )
        )
    choice = _select(runs, w, usable, min_differences)
    chosen = choice["chosen"]
    law = _to_law(candidates[chosen].theta, ln_n0)
    problems = list(candidates[chosen].problems) + farseer_problems(law)
    problems += [
        f"candidate {k} not used: {'; '.join(candidates[k].problems) or 'not finite'}"
        for k in names
        if k not in usable
    ]
    joint = candidates.get("joint")
    return Fit(
        law=law,
        method=f"farseer-{chosen}",
        objective=candidates[chosen].report["objective"],
        errors=error_summary(law, runs, w),
        n_runs=len(runs),
        domain=runs.domain(),
        details={
            "chosen": chosen,
            **(
                {
                    "joint_converged": joint.converged,
                    "joint_evaluations": joint.report["evaluations"],
                }
                if joint
                else {}
            ),
            "choice": choice,
            "candidates": {k: c.report for k, c in candidates.items()},
        },
        problems=problems,
    )


def farseer_problems(law: Farseer) -> list[str]:
    """The procedure's constraints (B > 0, b < 0) checked on the returned law itself."""
    p = law.params
    if p["B"] > 0 and p["b"] < 0:
        return []
    return [
        f"violates the procedure's sign constraints B > 0, b < 0 (B = {p['B']:.3g}, "
        f"b = {p['b']:.3g})"
    ]


def _candidates(
    runs: Runs, w, ln_n0: float, min_differences: int, refine: bool, start: Farseer | None
) -> dict[str, _Candidate]:
    ln_n, ln_d, ln_loss = np.log(runs.n) - ln_n0, np.log(runs.d), np.log(runs.loss)
    out: dict[str, _Candidate] = {}
    if start is None:
        pieces = piecewise(runs, ln_n, min_differences)
        out["piecewise"] = _Candidate(
            pieces.theta,
            pieces.converged,
            pieces.problems(),
            {"stages": {k: [s.to_json() for s in v] for k, v in pieces.stages.items()}},
        )
        theta0 = pieces.theta
    else:
        theta0 = _from_law(start, ln_n0)
    if refine:
        joint = refine_jointly(theta0, ln_n, ln_d, ln_loss, w)
        out["joint"] = _Candidate(
            joint.theta,
            joint.converged,
            joint.problems(),
            {"evaluations": joint.evaluations, "at_bounds": dict(joint.at_bounds)},
        )
    for c in out.values():
        law = _to_law(c.theta, ln_n0)
        finite = bool(np.all(np.isfinite(law.vector())))
        if finite:
            errors = error_summary(law, runs, w)
            objective = _objective(c.theta, ln_n, ln_d, ln_loss, w)
            finite = bool(np.all(np.isfinite([objective, *errors.values()])))
        else:  # as numbers (NaN), so tables that format them still work
            errors, objective = dict.fromkeys(ERROR_KEYS, float("nan")), float("nan")
        c.report = {
            "params": law.params,
            "objective": objective,
            **errors,
            "converged": c.converged,
            "finite": finite,
            "problems": list(c.problems),
            **c.report,
        }
    return out


def _select(runs: Runs, w, usable: list[str], min_differences: int) -> dict:
    """Choose among the usable candidates by the leave-the-largest-size-out error; with one
    candidate, or when the smaller sizes cannot be fitted, say why no comparison was made."""
    if len(usable) == 1:
        return {"chosen": usable[0], "criterion": None, "note": "one usable candidate"}
    largest = runs.n == runs.n.max()
    train, test = runs.subset(~largest), runs.subset(largest)
    try:
        check_fittable(train, "farseer", n_params=9, min_sizes=3)
        ln_n0 = float(np.mean(np.log(np.unique(train.n))))
        refits = _candidates(train, w[~largest], ln_n0, min_differences, "joint" in usable, None)
    except LawsError as error:
        return {
            "chosen": usable[0],
            "criterion": None,
            "note": f"no comparison (the smaller sizes alone cannot be fitted: {error}); "
            f"kept the {usable[0]} solution, the authors' own",
        }
    values, statuses = {}, {}
    for name in usable:
        refit = refits[name]
        law = _to_law(refit.theta, ln_n0)
        rel = (
            error_summary(law, test, w[largest])["mean_rel_error"]
            if refit.report["finite"]
            else np.inf
        )
        values[name] = float(rel) if np.isfinite(rel) else float("inf")
        statuses[name] = "ok" if refit.converged and not refit.problems else "unreliable"
    chosen = min(usable, key=lambda k: values[k])  # ties keep the earlier: piecewise
    return {
        "chosen": chosen,
        "criterion": CRITERION,
        "held_out_n": float(runs.n.max()),
        "values": values,
        "refit_status": statuses,
    }


def _objective(theta: np.ndarray, ln_n, ln_d, ln_loss, w) -> float:
    log_pred, _ = farseer_log_terms(theta, ln_n, ln_d)
    return float(w @ (log_pred - ln_loss) ** 2)


def _to_law(theta: np.ndarray, ln_n0: float) -> Farseer:
    """Undo the N0 scaling: s N^q = (s N0^-q) (N)^q, likewise for B and A."""
    s, q, S, B, b, Q, A, a, E = theta
    with np.errstate(over="ignore", invalid="ignore"):
        scale = np.exp(-ln_n0 * np.array([q, b, a]))
    return Farseer.from_vector([s * scale[0], q, S, B * scale[1], b, Q, A * scale[2], a, E])


def _from_law(law: Farseer, ln_n0: float) -> np.ndarray:
    """The fitter's parameters (N divided by N0) of a law: the inverse of `_to_law`."""
    s, q, S, B, b, Q, A, a, E = law.vector()
    scale = np.exp(ln_n0 * np.array([q, b, a]))
    return np.array([s * scale[0], q, S, B * scale[1], b, Q, A * scale[2], a, E])
