"""Which sweep design pins the compute-optimal D/N down best, for no more compute than the
paper's? `laws power` on the paper's design and on alternatives of equal or lower compute.

    python bench/power_designs.py                          # 200 replicas per design, all cores
    python bench/power_designs.py --replicas 50 --grid coarse --designs paper,sizes
    python bench/power_designs.py --out runs/power_designs # also the design CSVs and JSON

Every design is fitted under the same study: losses from the paper's Eq. 2 with 0.8% log-normal
noise, Chinchilla (the --grid starts) and Farseer fitted to each replica, D/N and N_opt at
C = 5.36e21, and the loss predicted at Table 1's model (2.27B, 341B), which lies beyond every
design's D. The alternatives (N nominal, not from the shape rule):

    sizes  13 sizes 0.2-3.2B at 2^(1/3) x 7 budgets 2-128B at 2x     (more sizes, fewer budgets)
    wide    9 sizes 0.1-6.4B at 2^(3/4) x 7 budgets 2-128B at 2x     (a wider N range)
    seeds   the paper's 9 sizes x 6 budgets 2-64B at 2x, two seeds   (repeated seeds)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from laws.analysis.power import Design, Study, power, read_design  # noqa: E402
from laws.fit.chinchilla import GRIDS  # noqa: E402
from laws.fit.paper import EQ2_FARSEER, TABLE_1_COMPUTE  # noqa: E402
from laws.units import human  # noqa: E402

PAPER_SWEEP = ROOT / "configs" / "sweeps" / "paper.yaml"
TARGET = (2.27e9, 341e9)  # Table 1's model
BUDGETS_2X = 2e9 * 2.0 ** np.arange(7)  # 2B .. 128B


def grid(n: np.ndarray, d: np.ndarray, seeds: int = 1) -> tuple[np.ndarray, np.ndarray]:
    nn, dd = np.meshgrid(n, d, indexing="ij")
    return np.tile(nn.ravel(), seeds), np.tile(dd.ravel(), seeds)


def designs() -> dict[str, Design]:
    paper = read_design(PAPER_SWEEP, mixture=1.0)
    paper_sizes = np.unique(paper.n)
    layouts = {
        "sizes": grid(2e8 * 2.0 ** (np.arange(13) / 3), BUDGETS_2X),
        "wide": grid(1e8 * 2.0 ** (np.arange(9) * 0.75), BUDGETS_2X),
        "seeds": grid(paper_sizes, BUDGETS_2X[:6], seeds=2),
    }
    found = {"paper": Design(paper.n, paper.d, "the paper's 9 x 13 (configs/sweeps/paper.yaml)")}
    for name, (n, d) in layouts.items():
        found[name] = Design(n, d, name)
    return found


def study(design: Design, noise: float, grid_name: str) -> Study:
    return Study(
        truth=EQ2_FARSEER,
        design=design,
        noise=noise,
        budget=TABLE_1_COMPUTE,
        laws=("chinchilla", "farseer"),
        target=TARGET,
        options={"chinchilla": {"starts": GRIDS[grid_name]()}},
    )


def log_width(q: dict) -> float | None:
    """ln(high / low) of a 5-95% range: a width that compares across medians."""
    if q.get("low") is None or not q["low"] > 0:
        return None
    return float(np.log(q["high"] / q["low"]))


def rows(name: str, result: dict, paper: dict | None) -> list[str]:
    summary = result["design"]
    seeds = summary["runs"] // summary["points"]
    shape = f"{summary['sizes']} N x {summary['budgets']} D" + (f" x {seeds}" if seeds > 1 else "")
    shape += f", {summary['runs']} runs"
    lines = []
    for law, found in result["laws"].items():
        if not found.get("supported"):
            lines.append(f"{name:6s} {law:10s} not supported: {found.get('reason')}")
            continue
        q = found["quantities"]
        ratio, n_opt, err = q["d_over_n"], q["n_opt"], q["target_error"]
        err_range = 100 * max(abs(err["low"]), abs(err["high"]))
        width = log_width(ratio)
        narrower = "-"
        if paper is not None and width is not None:
            base = log_width(paper["laws"][law]["quantities"]["d_over_n"])
            narrower = f"{width / base:.2f}x" if base else "-"
        lines.append(
            f"{name:6s} {law:10s} {shape:24s} {summary['compute']:8.3g} "
            f"{ratio['median']:6.0f} [{ratio['low']:4.0f}, {ratio['high']:4.0f}] {narrower:>7s} "
            f"{human(n_opt['median']):>6s} [{human(n_opt['low'])}, {human(n_opt['high'])}] "
            f"{ratio.get('coverage', float('nan')):5.2f} "
            f"{100 * abs(err['median']):5.2f}% {err_range:5.2f}% "
            f"{found['unreliable']:3d}/{found['fits']} {found['failed']:3d}"
        )
    return lines


HEADER = (
    f"{'design':6s} {'law':10s} {'shape':24s} {'6ND':>8s} "
    f"{'D/N':>6s} {'[5%, 95%]':>12s} {'width':>7s} {'N_opt':>6s} {'[5%, 95%]':14s} "
    f"{'cover':>5s} {'|err|':>6s} {'90%':>6s} {'unrel':>7s} {'fail':>4s}"
)


def write_csv(design: Design, path: Path) -> None:
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["N", "D"])
        out.writerows(zip(design.n.tolist(), design.d.tolist(), strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.008)
    parser.add_argument("--grid", choices=sorted(GRIDS), default="hoffmann")
    parser.add_argument("--designs", default="paper,sizes,wide,seeds")
    parser.add_argument("--workers", type=int, help="default: every core")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write each design's CSV and power JSON here")
    args = parser.parse_args()
    available = designs()
    chosen = [x.strip() for x in args.designs.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in available]
    if unknown:
        parser.error(f"unknown design(s) {unknown}; choose from {', '.join(available)}")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in chosen:
        started = time.perf_counter()
        print(f"{name}: {available[name].source}", file=sys.stderr, flush=True)
        results[name] = power(
            study(available[name], args.noise, args.grid),
            args.replicas,
            seed=args.seed,
            workers=args.workers,
            progress=True,
        )
        print(f"{name}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
        if args.out:
            write_csv(available[name], args.out / f"{name}.csv")
            (args.out / f"{name}.json").write_text(json.dumps(results[name], indent=2) + "\n")
    truth = next(iter(results.values()))["truth"]
    print(
        f"Eq. 2 truth: D/N {truth['d_over_n']:.1f}, N_opt {human(truth['n_opt'])} at "
        f"C = {TABLE_1_COMPUTE:.3g}; noise {args.noise:.1%}; {args.replicas} replicas; "
        f"Chinchilla grid {args.grid}; target {human(TARGET[0])}:{human(TARGET[1])}"
    )
    print("width: the 5-95% range of D/N (on a log scale) relative to the paper's design")
    print("cover: share of replicas whose range, centred on them, holds the truth (0.90 ideal)")
    print("|err|, 90%: the median and 90th-percentile-range relative error at the target\n")
    print(HEADER)
    for name, result in results.items():
        for line in rows(name, result, results.get("paper") if name != "paper" else None):
            print(line)


if __name__ == "__main__":
    main()
