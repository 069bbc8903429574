"""How long a design-power run takes: `laws power` on the paper's design (CPU only).

    python bench/power_speed.py                          # 200 replicas, every core
    python bench/power_speed.py --replicas 50 --out p.json
    taskset -c 0,1 python bench/power_speed.py           # as on a 2-core machine

The run is the one docs/laws.md reports: the paper's 117 pure-code runs (configs/sweeps/paper.yaml),
losses from Eq. 2 with 0.8% log-normal noise, each replica fitted with Chinchilla (4500 starts)
and Farseer on all runs and again without the largest size, optima at C = 5.36e21.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from laws.analysis.power import Study, largest_size_out, power, read_design  # noqa: E402
from laws.cli.commands.power import report_text  # noqa: E402
from laws.fit.chinchilla import GRIDS  # noqa: E402
from laws.fit.paper import EQ2_FARSEER, TABLE_1_COMPUTE  # noqa: E402
from laws.parallel import available_cores  # noqa: E402

PAPER_SWEEP = ROOT / "configs" / "sweeps" / "paper.yaml"


def cpu_seconds() -> float:
    """CPU time of this process and its finished worker processes."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def power_timing(
    replicas: int = 200, workers: int | None = None, noise: float = 0.008, seed: int = 0
) -> dict:
    """The power run's result with its wall and CPU seconds and the cores it had."""
    design = read_design(PAPER_SWEEP, mixture=1.0)
    study = Study(
        truth=EQ2_FARSEER,
        design=design,
        noise=noise,
        budget=TABLE_1_COMPUTE,
        laws=("chinchilla", "farseer"),
        holdout=largest_size_out(design),
        options={"chinchilla": {"starts": GRIDS["hoffmann"]()}},
    )
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = power(study, replicas, seed=seed, workers=workers, progress=True)
    result["truth"]["source"] = "paper-eq2"
    return {
        "replicas": replicas,
        "workers": result["workers"],
        "cores": available_cores(),
        "wall_seconds": time.perf_counter() - wall,
        "cpu_seconds": cpu_seconds() - cpu,
        "result": result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=200)
    parser.add_argument("--workers", type=int, help="default: every core")
    parser.add_argument("--noise", type=float, default=0.008)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the power result and its timing here (JSON)")
    args = parser.parse_args()
    timing = power_timing(args.replicas, args.workers, args.noise, args.seed)
    print(report_text(timing["result"]))
    print(
        f"\npower run, {timing['replicas']} replicas x 2 laws x 2 fits on the paper's 117 runs: "
        f"{timing['wall_seconds']:.0f} s wall, {timing['cpu_seconds']:.0f} CPU s, "
        f"{timing['workers']} worker process(es) on {timing['cores']} core(s)"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(timing, indent=2) + "\n")


if __name__ == "__main__":
    main()
