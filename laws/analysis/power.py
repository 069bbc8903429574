"""Design power: how precisely a sweep design pins a law down, learned before any run.

A known law (a fit, or the paper's Eq. 1 / Eq. 2) generates synthetic studies on the design's
(N, D): each replica multiplies the true losses by exp(noise * e), e standard normal, one draw per
run, averages repeated runs of one (N, D) the way `laws fit` does, and is fitted with each law.
The spread of the fitted answers over replicas (D/N and N_opt at a budget, the exponents, the
extrapolation error) is what one real study of that design could conclude; the noise-free study
(replica -1) separates the fit's own bias from the noise's. Noise is drawn up front from the
seed, so results do not depend on the number of workers, and the first K replicas of a longer
run are those of a K-replica run.
"""

from __future__ import annotations

import csv
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from laws.analysis.optimal import TrustRegion, compute_optimal
from laws.analysis.validate import Cutoff, split
from laws.errors import LawsError, RunawayWarning
from laws.fit.dispatch import fit_law
from laws.fit.forms import Chinchilla, Law
from laws.parallel import available_cores, single_threaded_blas
from laws.runs.table import DEFAULT_FLOPS_PER_TOKEN, Runs, average_repeats
from laws.units import parse_quantity

EXPONENTS = {"chinchilla": ("alpha", "beta"), "farseer": ("q", "b", "a")}
TAILS = (5.0, 95.0)  # the reported range, percent
POSITIVE = ("d_over_n", "n_opt")  # compared on a log scale
CAUGHT = (ValueError, ArithmeticError)  # LawsError and numerical failures: counted, not raised
EXAMPLES = 3  # failure and problem messages kept per law


@dataclass(frozen=True)
class Design:
    """The runs of a study: one (N, D) per run; a repeated pair is a repeated seed."""

    n: np.ndarray
    d: np.ndarray
    source: str

    def summary(self, flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN) -> dict[str, Any]:
        points = {(float(n), float(d)) for n, d in zip(self.n, self.d, strict=True)}
        return {
            "source": self.source,
            "runs": len(self.n),
            "points": len(points),
            "sizes": int(np.unique(self.n).size),
            "budgets": int(np.unique(self.d).size),
            "n_range": [float(self.n.min()), float(self.n.max())],
            "d_range": [float(self.d.min()), float(self.d.max())],
            "compute": float(np.sum(flops_per_token * self.n * self.d)),
        }


def read_design(path: str | Path, mixture: float | None = None) -> Design:
    """A design from a sweep file of `laws design` (its runs' exact non-embedding N) or a CSV
    with columns N and D (any case; 2.27B and 341e9 both read)."""
    path = Path(path)
    if not path.is_file():
        raise LawsError(f"{path}: no such design file (a sweep .yaml or a .csv of N, D)")
    if path.suffix.lower() in (".yaml", ".yml"):
        return _sweep_design(path, mixture)
    if path.suffix.lower() != ".csv":
        raise LawsError(f"{path}: a design is a sweep file (.yaml) or a CSV of N, D")
    if mixture is not None:
        raise LawsError(f"{path}: a CSV design has no mixtures; drop --mixture")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = {k.strip().lower(): k for k in (rows[0] if rows else {})}
    if "n" not in columns or "d" not in columns:
        raise LawsError(f"{path}: a design CSV needs columns N and D, found {list(columns)}")
    n = [parse_quantity(r[columns["n"]], f"{path} N") for r in rows]
    d = [parse_quantity(r[columns["d"]], f"{path} D") for r in rows]
    return _checked(n, d, str(path))


def _sweep_design(path: Path, mixture: float | None) -> Design:
    """The runs of one mixture. A sweep's mixtures usually share their (N, D) (the paper's
    three do), and then any one of them is the design; otherwise --mixture must pick."""
    try:
        runs = (yaml.safe_load(path.read_text()) or {}).get("runs")
    except yaml.YAMLError as error:
        raise LawsError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(runs, list) or not runs:
        raise LawsError(f"{path}: no 'runs' list; write one with python -m laws design")
    by_mixture: dict[float, list[tuple[float, float]]] = {}
    try:
        for r in runs:
            point = (float(r.get("n_params", r.get("n"))), float(r["tokens"]))
            by_mixture.setdefault(float(r.get("code_fraction", 1.0)), []).append(point)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise LawsError(f"{path}: every run needs n_params (or n) and tokens") from None
    mixtures = sorted(by_mixture, reverse=True)
    if mixture is None:
        if len({tuple(sorted(points)) for points in by_mixture.values()}) > 1:
            raise LawsError(
                f"{path} holds {len(mixtures)} mixtures ({', '.join(f'{m:g}' for m in mixtures)}) "
                "with different (N, D); pick one with --mixture"
            )
        mixture = mixtures[0]
    if mixture not in by_mixture:
        raise LawsError(f"{path}: no runs of mixture {mixture:g}; it has {mixtures}")
    n, d = zip(*by_mixture[mixture], strict=True)
    shared = f", as each of its {len(mixtures)}" if len(mixtures) > 1 else ""
    return _checked(n, d, f"{path} (mixture {mixture:g}{shared})")


def _checked(n: Sequence[float], d: Sequence[float], source: str) -> Design:
    n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
    if not len(n) or not (np.all(np.isfinite(n) & (n > 0)) and np.all(np.isfinite(d) & (d > 0))):
        raise LawsError(f"{source}: a design needs runs with positive, finite N and D")
    return Design(n, d, source)


@dataclass(frozen=True)
class Study:
    """What is asked of a design: the generating law, the noise, and the answers wanted.

    `holdout` refits without the held-out runs to score extrapolation (None: no holdout fit);
    `target` is an (N, D) whose loss each full fit predicts. `options` go to each law's fitter.
    """

    truth: Law
    design: Design
    noise: float
    budget: float
    laws: tuple[str, ...]
    holdout: Cutoff | None = None
    target: tuple[float, float] | None = None
    flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def runs(self, noise: np.ndarray | None) -> Runs:
        """One synthetic study: the true losses times exp(noise * draws), repeats averaged."""
        loss = self.truth.predict(self.design.n, self.design.d)
        if noise is not None:
            loss = loss * np.exp(self.noise * noise)
        runs = Runs.from_arrays(
            self.design.n, self.design.d, loss, flops_per_token=self.flops_per_token
        )
        return average_repeats(runs)


def power(
    study: Study,
    replicas: int,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fit `replicas` synthetic studies (and the noise-free one) with each law; the spread of
    their answers, the truth and the counts of unreliable and failed fits, as JSON-ready data."""
    if replicas < 2:
        raise LawsError(f"a power study needs at least 2 replicas, got {replicas}")
    if not study.noise >= 0:
        raise LawsError(
            f"the noise must be a relative size >= 0 (0.008 is 0.8%), got {study.noise}"
        )
    if study.holdout is not None:
        split(study.runs(None), study.holdout)  # a cut outside the design fails here, once
    started = time.perf_counter()
    draws = np.random.default_rng(seed).standard_normal((replicas, len(study.design.n)))
    items = [(-1, None), *enumerate(draws)]
    results = _map(partial(_replica, study=study), items, workers, progress)
    truth = _true_values(study)
    return {
        "design": study.design.summary(study.flops_per_token),
        "truth": {**study.truth.to_json(), "d_over_n": truth["d_over_n"], "n_opt": truth["n_opt"]},
        "noise": study.noise,
        "replicas": replicas,
        "seed": seed,
        "budget": study.budget,
        "holdout": None if study.holdout is None else _holdout_json(study),
        "target": None if study.target is None else list(study.target),
        "laws": {law: _summarise([r[law] for r in results], truth) for law in study.laws},
        "workers": min(available_cores() if workers is None else max(1, workers), len(items)),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def largest_size_out(design: Design) -> Cutoff:
    """The default extrapolation check: fit without the design's largest model size."""
    return Cutoff("n", float(design.n.max()))


def _holdout_json(study: Study) -> dict[str, Any]:
    train, test = split(study.runs(None), study.holdout)
    return {"cutoff": str(study.holdout), "train_points": len(train), "test_points": len(test)}


def _map(
    func: Callable[[Any], Any], items: list[Any], workers: int | None, progress: bool
) -> list[Any]:
    """[func(item) for item in items] over processes with a progress bar (as
    `laws.parallel.parallel_map`, which has none; one worker runs inline)."""
    workers = min(available_cores() if workers is None else max(1, workers), len(items))
    bar = tqdm(total=len(items), desc="replicas", disable=not progress, file=sys.stderr)
    out = []
    with bar:
        if workers <= 1:
            for item in items:
                out.append(_call(func, item))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for result in pool.map(_call, repeat(func), items):
                    out.append(result)
                    bar.update()
    return out


def _call(func: Callable[[Any], Any], item: Any) -> Any:
    with single_threaded_blas(), warnings.catch_warnings():
        warnings.simplefilter("ignore", RunawayWarning)  # expected of Farseer: not a failure
        return func(item)


def _replica(item: tuple[int, np.ndarray | None], study: Study) -> dict[str, dict[str, Any]]:
    """Every law's answers on one synthetic study: values, the fit's status, and failures."""
    number, noise = item
    runs = study.runs(noise)
    return {law: {"replica": number, **_answers(runs, law, study)} for law in study.laws}


def _answers(runs: Runs, law: str, study: Study) -> dict[str, Any]:
    options = study.options.get(law, {})
    try:
        fit = fit_law(runs, law, **options)
    except CAUGHT as error:
        return {"failed": f"{type(error).__name__}: {error}"}
    values: dict[str, float | str] = {}
    values |= _optimum(fit.law, study, TrustRegion.around(fit.domain))
    values |= {name: fit.law.params[name] for name in EXPONENTS[law]}
    if study.target is not None:
        n, d = study.target
        values["target_error"] = float(fit.law.predict(n, d) / study.truth.predict(n, d) - 1)
    held_status = None
    if study.holdout is not None:
        train, test = split(runs, study.holdout)
        try:
            held = fit_law(train, law, **options)
        except CAUGHT as error:
            values["holdout_error"] = f"{type(error).__name__}: {error}"
        else:
            truth = study.truth.predict(test.n, test.d)
            values["holdout_error"] = float(
                np.mean(np.abs(held.law.predict(test.n, test.d) / truth - 1))
            )
            held_status = held.status
    for name, value in values.items():
        if not isinstance(value, str) and not math.isfinite(value):
            values[name] = "not finite"
    return {
        "status": fit.status,
        "problems": list(fit.problems),
        "holdout_status": held_status,
        "values": values,
    }


def _optimum(law: Law, study: Study, region: TrustRegion) -> dict[str, float | str]:
    """D/N and N_opt at the budget; an optimum on the trust region's edge is no answer."""
    try:
        opt = compute_optimal(law, study.budget, study.flops_per_token, region)
    except CAUGHT as error:
        return {"d_over_n": str(error), "n_opt": str(error)}
    if not isinstance(law, Chinchilla):
        edges = region.log_n_bounds(study.budget, study.flops_per_token)
        if np.isclose(math.log(opt.n_opt), edges, rtol=0, atol=1e-9).any():
            edge = f"no optimum inside the trust region (N={opt.n_opt:.3g} on its edge)"
            return {"d_over_n": edge, "n_opt": edge}
    return {"d_over_n": opt.d_over_n, "n_opt": opt.n_opt}


def _true_values(study: Study) -> dict[str, float]:
    """The generating law's own answers: its optimum inside the design's trust region, and its
    exponents (true only for fits of its own form)."""
    region = TrustRegion.around({"n": study.design.summary()["n_range"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunawayWarning)
        opt = compute_optimal(study.truth, study.budget, study.flops_per_token, region)
    exponents = {k: study.truth.params[k] for k in EXPONENTS.get(study.truth.name, ())}
    return {"d_over_n": opt.d_over_n, "n_opt": opt.n_opt, "target_error": 0.0, **exponents}


def _summarise(results: list[dict[str, Any]], truth: dict[str, float]) -> dict[str, Any]:
    noise_free, replicas = results[0], results[1:]
    fitted = [r for r in replicas if "failed" not in r]
    failed = [r for r in replicas if "failed" in r]
    unreliable = [r for r in fitted if r["status"] != "ok"]
    out: dict[str, Any] = {
        "fits": len(replicas),
        "failed": len(failed),
        "unreliable": len(unreliable),
        "holdout_unreliable": sum(r["holdout_status"] == "unreliable" for r in fitted),
        "failures": [f"replica {r['replica']}: {r['failed']}" for r in failed[:EXAMPLES]],
        "problems": [f"replica {r['replica']}: {r['problems'][0]}" for r in unreliable[:EXAMPLES]],
    }
    if "failed" in noise_free:
        return {**out, "supported": False, "reason": noise_free["failed"]}
    quantities = {
        name: _spread(name, truth.get(name), value, fitted)
        for name, value in noise_free["values"].items()
    }
    return {
        **out,
        "supported": True,
        "noise_free_status": noise_free["status"],
        "quantities": quantities,
    }


def _spread(
    name: str, true: float | None, noise_free: float | str, fitted: list[dict[str, Any]]
) -> dict[str, Any]:
    """Median and 5-95% range over the replicas that gave a value (and over the "ok" fits alone),
    with the implied coverage: how often a range this wide around one study's estimate holds the
    truth. That is the share of estimates inside the 5-95% range moved by (truth - median); 90%
    for a median-unbiased fit, less the more the fit is biased."""
    scale = np.log if name in POSITIVE else (lambda x: x)
    given = [r for r in fitted if not isinstance(r["values"][name], str)]
    missing = [r for r in fitted if isinstance(r["values"][name], str)]
    values = np.array([r["values"][name] for r in given], dtype=float)
    ok = np.array([r["values"][name] for r in given if r["status"] == "ok"], dtype=float)
    out: dict[str, Any] = {
        "true": true,
        "noise_free": noise_free,
        "count": len(values),
        "missing": len(missing),
        "first_missing": None
        if not missing
        else f"replica {missing[0]['replica']}: {missing[0]['values'][name]}",
        **_percentiles(values),
        "ok_only": {"count": len(ok), **_percentiles(ok)},
    }
    if true is not None and len(values):
        x, t = scale(values), scale(true)
        low, mid, high = np.percentile(x, [TAILS[0], 50, TAILS[1]])
        shift = t - mid
        out["coverage"] = float(np.mean((x >= low + shift) & (x <= high + shift)))
    return out


def _percentiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return {"median": None, "low": None, "high": None}
    low, mid, high = np.percentile(values, [TAILS[0], 50, TAILS[1]])
    return {"median": float(mid), "low": float(low), "high": float(high)}
