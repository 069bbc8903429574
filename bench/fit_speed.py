"""How long the laws package takes on study-sized inputs (CPU only).

    python bench/fit_speed.py                 # all tasks, 1000 bootstrap resamples
    python bench/fit_speed.py --scipy         # also Approach 3 through scipy, start by start
    taskset -c 0,1 python bench/fit_speed.py  # as on a 2-core machine

Data are synthetic: Eq. 1 (Chinchilla) on 250 log-uniform (N, D) and Eq. 2 (Farseer) on a
20 x 20 grid of N and D, both with 0.3% / 0.1% multiplicative noise.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from laws import Runs, bootstrap, fit_law  # noqa: E402
from laws.fit_chinchilla import hoffmann_grid  # noqa: E402
from laws.paper import EQ1_CHINCHILLA, EQ2_FARSEER  # noqa: E402
from laws.parallel import available_cores  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--workers", type=int, help="default: every core")
    parser.add_argument("--scipy", action="store_true", help="also time engine='scipy'")
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


if __name__ == "__main__":
    main()
