"""How long the laws package takes on study-sized inputs, and how robust its fits are (CPU only).

    python bench/fit_speed.py                 # timings, then the robustness table (30 replicas)
    python bench/fit_speed.py --scipy         # also Approach 3 through scipy, start by start
    python bench/fit_speed.py --replicas 0    # timings only
    taskset -c 0,1 python bench/fit_speed.py  # as on a 2-core machine

Timings use synthetic data: Eq. 1 (Chinchilla) on 250 log-uniform (N, D) and Eq. 2 (Farseer) on
a 20 x 20 grid of N and D, with 0.3% / 0.1% multiplicative noise. The robustness table fits the
paper's 117-run design (`paper_design()`) with losses from Eq. 2 (and Eq. 1) times log-normal
noise (0.8% by default, the paper's own fit error), replica i drawing its noise from seed i.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from laws import LawsError, Runs, bootstrap, fit_law  # noqa: E402
from laws.fit.chinchilla import hoffmann_grid  # noqa: E402
from laws.fit.forms import Law  # noqa: E402
from laws.fit.paper import EQ1_CHINCHILLA, EQ2_FARSEER, paper_design  # noqa: E402
from laws.parallel import available_cores  # noqa: E402

SILENT_ERROR = 0.015  # an "ok" fit above this in-sample error (or non-finite) failed silently


def chinchilla_runs(count: int = 250) -> Runs:
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e8), np.log(4e9), count))
    d = np.exp(rng.uniform(np.log(2e9), np.log(2e11), count))
    loss = EQ1_CHINCHILLA.predict(n, d) * np.exp(rng.normal(0, 0.003, count))
    return Runs.from_arrays(n, d, loss)


def farseer_runs(side: int = 20) -> Runs:
    rng = np.random.default_rng(1)
    grid_n, grid_d = np.meshgrid(np.geomspace(2e8, 4e9, side), np.geomspace(2e9, 2e11, side))
    n, d = grid_n.ravel(), grid_d.ravel()
    loss = EQ2_FARSEER.predict(n, d) * np.exp(rng.normal(0, 0.001, len(n)))
    return Runs.from_arrays(n, d, loss)


def cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(task: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds): on a shared machine the CPU time is the steadier number."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    task()
    return time.perf_counter() - wall, cpu_seconds() - cpu


def mean_error(law: Law, runs: Runs) -> float:
    return float(np.mean(np.abs(law.predict(runs.n, runs.d) / runs.loss - 1)))


def replica(truth: Law, seed: int, noise: float) -> tuple[Runs, Runs]:
    """The paper's design with noisy losses, and the same runs at their true losses."""
    n, d = paper_design()
    true = truth.predict(n, d)
    loss = true * np.exp(np.random.default_rng(seed).normal(0, noise, len(n)))
    return Runs.from_arrays(n, d, loss), Runs.from_arrays(n, d, true)


def one_replica(form: str, truth: Law, seed: int, noise: float, workers: int) -> dict:
    """In-sample and held-out errors of one replica beside their noise floors (the true law's
    error on the same noisy runs). Held out: fitted below the largest N, tested on it."""
    runs, exact = replica(truth, seed, noise)
    big = runs.n == runs.n.max()
    options = {"workers": workers} if form == "chinchilla" else {}
    row = {
        "seed": seed,
        "floor": mean_error(truth, runs),
        "held_floor": mean_error(truth, runs.subset(big)),
    }
    try:
        fit = fit_law(runs, form, **options)
        held = fit_law(runs.subset(~big), form, **options)
    except LawsError as error:
        return {**row, "raised": str(error)}
    finite = bool(np.all(np.isfinite(fit.law.vector())))
    in_sample = fit.errors["mean_rel_error"]
    held_out = mean_error(held.law, runs.subset(big))
    bad = not finite or not in_sample <= SILENT_ERROR or "violates" in " ".join(fit.problems)
    return {
        **row,
        "in_sample": in_sample,
        "held_out": held_out,
        "status": fit.status,
        "held_status": held.status,
        "method": fit.method,
        "problems": fit.problems,
        "silent": bad and fit.status == "ok",
        "truth_error": mean_error(fit.law, exact),
    }


def percentile(rows: list[dict], key: str, q: float) -> float:
    return float(np.percentile([r[key] for r in rows], q)) if rows else float("nan")


def robustness(replicas: int, noise: float, workers: int, per_replica: bool) -> None:
    cases = [
        ("farseer", "Eq. 2", EQ2_FARSEER),
        ("chinchilla", "Eq. 1", EQ1_CHINCHILLA),
        ("chinchilla", "Eq. 2", EQ2_FARSEER),
    ]
    print(
        f"\nrobustness: {replicas} replicas of the paper's 117-run design, {noise:.1%} log-normal "
        f"noise (seeds 0-{replicas - 1}); held out: fitted on N < 3.2e9, tested on the 13 runs "
        "at N = 3.2e9; floor: the true law's own error on the same noisy runs"
    )
    head = (
        f"{'law':11} {'data':6} {'floor':>6} {'in-sample median':>17} {'p90':>6} {'worst':>6} | "
        f"{'floor':>6} {'held-out median':>16} {'p90':>6} {'worst':>6} | "
        f"{'unreliable':>10} {'raised':>6} {'silent':>6} {'seconds':>7}"
    )
    print(head)
    details = []
    for form, data, truth in cases:
        wall = time.perf_counter()
        rows = [one_replica(form, truth, seed, noise, workers) for seed in range(replicas)]
        wall = time.perf_counter() - wall
        fitted = [r for r in rows if "raised" not in r]
        pct = partial(percentile, fitted)
        unreliable = sum(r["status"] != "ok" for r in fitted)
        print(
            f"{form:11} {data:6} {np.median([r['floor'] for r in rows]):>6.3%} "
            f"{pct('in_sample', 50):>17.3%} {pct('in_sample', 90):>6.3%} "
            f"{pct('in_sample', 100):>6.3%} | {np.median([r['held_floor'] for r in rows]):>6.3%} "
            f"{pct('held_out', 50):>16.3%} {pct('held_out', 90):>6.3%} "
            f"{pct('held_out', 100):>6.3%} | {unreliable:>6}/{len(rows):<3} "
            f"{len(rows) - len(fitted):>6} {sum(r['silent'] for r in fitted):>6} {wall:>7.1f}",
            flush=True,
        )
        details.append((form, data, rows))
    if per_replica:
        for form, data, rows in details:
            print(f"\n{form} on {data} data, per replica")
            for r in rows:
                if "raised" in r:
                    print(f"  seed {r['seed']:>3}: raised: {r['raised']}")
                    continue
                print(
                    f"  seed {r['seed']:>3}: in-sample {r['in_sample']:.3%} "
                    f"(floor {r['floor']:.3%}), held out {r['held_out']:.3%} "
                    f"(floor {r['held_floor']:.3%}), "
                    f"{r['method']}, {r['status']}"
                    + "".join(f"\n      problem: {p}" for p in r["problems"])
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--workers", type=int, help="default: every core")
    parser.add_argument("--scipy", action="store_true", help="also time engine='scipy'")
    parser.add_argument("--replicas", type=int, default=30, help="robustness replicas (0: none)")
    parser.add_argument("--noise", type=float, default=0.008, help="log-normal sigma of the loss")
    parser.add_argument("--per-replica", action="store_true", help="print every replica's row")
    args = parser.parse_args()
    workers = args.workers or available_cores()
    small, large = chinchilla_runs(), farseer_runs()
    grid = len(hoffmann_grid())
    k = args.resamples
    tasks = [
        ("chinchilla fit (batched L-BFGS)", small, grid,
         lambda: fit_law(small, "chinchilla", workers=workers)),
        ("chinchilla fit (scipy L-BFGS-B)", small, grid,
         lambda: fit_law(small, "chinchilla", engine="scipy", workers=workers)),
        ("farseer fit (piecewise + joint)", large, 1, lambda: fit_law(large, "farseer")),
    ]  # fmt: skip
    if not args.scipy:
        del tasks[1]
    base_c, base_f = fit_law(small, "chinchilla", workers=workers), fit_law(large, "farseer")
    budgets = [5.36e21]
    tasks += [
        (f"chinchilla bootstrap x{k} (warm starts)", small, 1,
         lambda: bootstrap(small, "chinchilla", k, workers=workers, base=base_c, budgets=budgets)),
        (f"farseer bootstrap x{k} (warm starts)", large, 1,
         lambda: bootstrap(large, "farseer", k, workers=workers, base=base_f, budgets=budgets)),
    ]  # fmt: skip

    print(f"{workers} worker process(es)")
    print(f"{'task':42} {'runs':>5} {'starts':>7} {'seconds':>8} {'cpu s':>8}")
    for label, runs, starts, task in tasks:
        wall, cpu = timed(task)
        print(f"{label:42} {len(runs):>5} {starts:>7} {wall:>8.2f} {cpu:>8.2f}", flush=True)
    if args.replicas > 0:
        robustness(args.replicas, args.noise, workers, args.per_replica)


if __name__ == "__main__":
    main()
