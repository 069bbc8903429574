"""Do WSD decay branches measure the same scaling law as cosine runs from scratch? (issue 15)

    python sweep.py configs/sweeps/wsd_check_cosine.yaml     # 9 runs, each from scratch
    python sweep.py configs/sweeps/wsd_check_wsd.yaml        # 3 parents + 6 decay branches
    python bench/wsd_equivalence.py [--runs runs] [--budget 1e13]

Pairs the two sweeps' runs by (N, D) and prints both validation BPCs, their ratio and the tokens
each protocol trained for the point, then fits Chinchilla (Approach 3, 4500 starts) to each set
of 9 and compares the exponents and the compute-optimal D/N at --budget.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from laws import (  # noqa: E402
    LawsError,
    RunawayWarning,
    TrustRegion,
    compute_optimal,
    fit_law,
    read_runs,
)
from laws.fit.chinchilla import GRIDS  # noqa: E402
from laws.units import human  # noqa: E402

SWEEPS = {"cosine": "wsd_check_cosine", "wsd": "wsd_check_wsd"}


def results(folder: Path) -> dict[tuple[int, int], dict]:
    found = {}
    for file in sorted(folder.glob("*/result.json")):
        result = json.loads(file.read_text())
        if result.get("status") == "completed":
            found[(result["n_params"], result["plan"]["tokens_requested"])] = result
    return found


def trained_tokens(result: dict) -> int:
    return (result.get("family") or {}).get("trained_tokens", result["tokens"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--budget", type=float, default=1e13, help="FLOPs for the D/N compared")
    args = parser.parse_args()
    found = {k: results(args.runs / v) for k, v in SWEEPS.items()}
    points = sorted(set(found["cosine"]) & set(found["wsd"]))
    if not points:
        sys.exit(f"no (N, D) completed in both {', '.join(SWEEPS.values())} under {args.runs}")
    print(f"{'N':>6} {'D':>6}  {'cosine':>7} {'wsd':>7} {'ratio':>7}  {'tokens trained':>22}")
    spent = {"cosine": 0.0, "wsd": 0.0}
    for n, d in points:
        cos, wsd = found["cosine"][(n, d)], found["wsd"][(n, d)]
        role = (wsd.get("family") or {}).get("role") or "-"
        spent["cosine"] += 6.0 * n * trained_tokens(cos)
        spent["wsd"] += 6.0 * n * trained_tokens(wsd)
        print(
            f"{human(n):>6} {human(d):>6}  {cos['val_bpc']:7.4f} {wsd['val_bpc']:7.4f} "
            f"{wsd['val_bpc'] / cos['val_bpc']:7.4f}  {human(trained_tokens(cos)):>9} vs "
            f"{human(trained_tokens(wsd)):>6} ({role})"
        )
    print(
        f"compute (6N x tokens trained): cosine {spent['cosine']:.3g}, wsd {spent['wsd']:.3g} "
        f"FLOPs ({1 - spent['wsd'] / spent['cosine']:.0%} saved)\n"
    )
    for name, sweep in SWEEPS.items():
        runs = read_runs(args.runs / sweep).select()
        fit = fit_law(runs, "chinchilla", starts=GRIDS["hoffmann"](), workers=None)
        p = fit.law.params
        region = TrustRegion.around({"n": [float(runs.n.min()), float(runs.n.max())]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunawayWarning)
            try:
                opt = compute_optimal(fit.law, args.budget, region=region)
            except LawsError as error:
                opt = error
        print(
            f"{name:6s} Chinchilla on {len(runs)} runs: E={p['E']:.4f} A={p['A']:.4g} "
            f"alpha={p['alpha']:.4f} B={p['B']:.4g} beta={p['beta']:.4f}; "
            f"mean error {fit.errors['mean_rel_error']:.3%}; status {fit.status}"
            + (f" ({'; '.join(fit.problems)})" if fit.problems else "")
        )
        if isinstance(opt, LawsError):
            print(f"       at C={args.budget:.3g}: {opt}")
        else:
            print(
                f"       at C={args.budget:.3g}: N_opt {human(opt.n_opt)}, D/N {opt.d_over_n:.1f}"
            )


if __name__ == "__main__":
    main()
