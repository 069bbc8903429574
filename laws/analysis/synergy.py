"""Language synergy: how much a target language's loss gains from another language's tokens.

For a target language i at one model size, the design (`synergy_design`) trains
  base      D_i tokens of i alone,                      (repeated with seeds: the noise)
  self      D_i + D_a tokens of i alone,                (what D_a more of i itself is worth)
  add j     D_i of i plus D_a of j,
  replace j (1 - q) D_i of i plus q D_i of j            (same budget, part of i swapped for j).
Base and self give i's local data curve, L_i(D) = L_base + (L_self - L_base) g(D) with
g(D) = (D_base^-b - D^-b) / (D_base^-b - D_self^-b), the power law of exponent b (i's data
exponent from its per-language law; b -> 0 is the log-linear limit, the default). A run with
t_i tokens of i and t_j of j and loss L_i is then worth D_eff = g^-1((L_i - L_base) /
(L_self - L_base)) tokens of i, and the transfer is T_ij = (D_eff - t_i) / t_j: the tokens of i
one token of j stands for (1: as good as i itself, 0: no help, < 0: interference). T_ii = 1 by
construction. T's interval propagates the seed noise of all three losses it is read from (the
base, the self-add and the run itself; `measured_cell`).

Every run that holds i and one other language j is a cell of the pair (i, j), whichever target
it was designed for, so a pair is measured at several native shares t_i / (t_i + t_j). The law's
T_ij (`pair_transfer`) is the one constant that best explains all of them: least squares in BPC
over the pair's cells, with its interval from the same noise draws and an F test of
whether one constant fits (when it does not, the transfer depends on the mix; said in `notes`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from scipy.stats import f as f_dist

from laws.errors import LawsError
from laws.runs.language_runs import LanguageRun

ADD_SHARE = 0.99  # a run with at least this share of the base's target tokens added to them
T_BOUNDS = (-5.0, 5.0)  # a pair's fitted transfer is searched here; a fit on a bound is reported
MISFIT_P = 0.01  # a pair whose cells reject one constant T at this level gets a note


def effective_tokens(g: float, base: float, self_d: float, b: float) -> float:
    """The D with g(D) = `g` (module docstring); inf when the gain exceeds what any amount of i
    gives."""
    if b == 0:
        return float(base * (self_d / base) ** g)
    inner = base**-b - g * (base**-b - self_d**-b)
    return float(inner ** (-1 / b)) if inner > 0 else float("inf")


def transfer_from_change(
    change: float, slope: float, base: float, self_d: float, b: float, t_i: float, t_j: float
) -> float:
    """T_ij of a run with t_i tokens of i and t_j of j whose i-BPC is `change` above the base's,
    on the local curve whose base-to-self-add change is `slope`."""
    return (effective_tokens(change / slope, base, self_d, b) - t_i) / t_j


def _mean(values: list[float]) -> float:
    return float(np.mean(values))


def _only(run: LanguageRun, languages: set[str]) -> bool:
    return {k for k, v in run.tokens.items() if v > 0} == languages


def _group_by_size(runs: list[LanguageRun]) -> dict[float, list[LanguageRun]]:
    groups: dict[float, list[LanguageRun]] = defaultdict(list)
    for run in runs:
        groups[run.n].append(run)
    return dict(groups)


@dataclass(frozen=True)
class TargetCurve:
    """A target language's base and self-add runs: its local data curve and its seed noise."""

    language: str
    base_tokens: float
    self_tokens: float
    base_bpc: list[float]
    self_bpc: float
    exponent: float

    @property
    def slope(self) -> float:
        return self.self_bpc - float(np.mean(self.base_bpc))

    @property
    def sigma(self) -> float:
        """Run-to-run sd of the base (nan with one seed)."""
        return float(np.std(self.base_bpc, ddof=1)) if len(self.base_bpc) > 1 else float("nan")

    def shape(self, tokens: np.ndarray) -> np.ndarray:
        """g(D) of the module docstring (0 at the base, 1 at the self-add); D <= 0 is taken
        as one token, so a transfer that leaves i no tokens predicts a very high loss."""
        d = np.maximum(np.asarray(tokens, dtype=float), 1.0)
        b, base, top = self.exponent, self.base_tokens, self.self_tokens
        if b == 0:
            return np.log(d / base) / np.log(top / base)
        return (base**-b - d**-b) / (base**-b - top**-b)


def target_curve(i: str, runs: list[LanguageRun], exponent: float) -> TargetCurve | str:
    """i's curve from its runs alone, or why it cannot be read off."""
    alone = [r for r in runs if _only(r, {i})]
    budgets = sorted({r.tokens[i] for r in alone})
    if len(budgets) < 2:
        return f"{i}: needs runs of {i} alone at two budgets (base and self-add)"
    base_d, self_d = budgets[0], budgets[-1]
    curve = TargetCurve(
        i,
        base_d,
        self_d,
        [r.bpc[i] for r in alone if r.tokens[i] == base_d],
        _mean([r.bpc[i] for r in alone if r.tokens[i] == self_d]),
        exponent,
    )
    if not curve.slope < 0:
        return (
            f"{i}: {self_d:.3g} tokens of {i} did not lower its BPC below {base_d:.3g} tokens' "
            f"({curve.self_bpc:.4f} vs {np.mean(curve.base_bpc):.4f}); no transfer can be read off"
        )
    return curve


def measured_cell(
    curve: TargetCurve, run: LanguageRun, j: str, level: float, draws: int, seed: int
) -> dict:
    """One run's transfer, and its interval from the noise of all three losses it depends on
    (the base mean, the self-add run, this run), drawn from Student's t with the base's seeds - 1
    degrees of freedom (so two seeds give a wide interval, as they should)."""
    i = curve.language
    base = float(np.mean(curve.base_bpc))
    change = run.bpc[i] - base
    shape = (curve.base_tokens, curve.self_tokens, curve.exponent, run.tokens[i], run.tokens[j])
    sigma, seeds = curve.sigma, len(curve.base_bpc)
    noise = sigma * np.sqrt(1 + 1 / seeds)  # sd of (this run - base mean)
    cell = {
        "target": i,
        "auxiliary": j,
        "kind": "add" if run.tokens[i] >= ADD_SHARE * curve.base_tokens else "replace",
        "share": run.tokens[i] / (run.tokens[i] + run.tokens[j]),
        "run": run.name,
        "tokens_target": run.tokens[i],
        "tokens_auxiliary": run.tokens[j],
        "bpc": run.bpc[i],
        "change": change,
        "noise": noise,
        "z": change / noise if noise > 0 else float("nan"),
        "transfer": transfer_from_change(change, curve.slope, *shape),
        "transfer_low": float("nan"),
        "transfer_high": float("nan"),
        "undefined_draws": float("nan"),
        "data_exponent": curve.exponent,
    }
    if np.isfinite(sigma) and sigma > 0:
        rng = np.random.default_rng(seed)
        e = sigma * rng.standard_t(seeds - 1, size=(draws, 3))
        base_k = base + e[:, 0] / np.sqrt(seeds)
        slope_k = curve.self_bpc + e[:, 1] - base_k
        change_k = run.bpc[i] + e[:, 2] - base_k
        ok = slope_k < 0  # a draw whose self-add did not help defines no transfer
        t = [
            transfer_from_change(c, s, *shape)
            for c, s in zip(change_k[ok], slope_k[ok], strict=True)
        ]
        if t:
            tail = (1 - level) / 2 * 100
            cell["transfer_low"], cell["transfer_high"] = np.percentile(t, [tail, 100 - tail])
        cell["undefined_draws"] = float(1 - ok.mean())
    return cell


def synergy(
    runs: list[LanguageRun],
    exponents: dict[str, float] | None = None,
    level: float = 0.95,
    draws: int = 4000,
    seed: int = 0,
) -> dict:
    """The transfer matrix (and the raw loss changes) of one model size's synergy runs."""
    sizes = _group_by_size(runs)
    if len(sizes) != 1:
        raise LawsError(
            f"synergy runs of {len(sizes)} model sizes ({', '.join(f'{n:.3g}' for n in sizes)}); "
            "give one size's runs (the transfer is measured at one N)"
        )
    ((n, runs),) = sizes.items()
    exponents = exponents or {}
    targets = sorted({lang for run in runs for lang, t in run.tokens.items() if t > 0})
    cells, notes, noise, pairs = [], [], {}, []
    for i in targets:
        curve = target_curve(i, runs, float(exponents.get(i, 0.0)))
        if isinstance(curve, str):
            notes.append(curve)
            continue
        noise[i] = {"seeds": len(curve.base_bpc), "sd": curve.sigma, "base_bpc": curve.base_bpc}
        if len(curve.base_bpc) < 2:
            notes.append(f"{i}: one base run; repeat it with another seed to measure the noise")
        mine = []
        for run in runs:
            others = [j for j, t in run.tokens.items() if t > 0 and j != i]
            if len(others) == 1 and run.tokens.get(i, 0) > 0 and i in run.bpc:
                mine.append(measured_cell(curve, run, others[0], level, draws, seed))
        cells += mine
        for j in sorted({cell["auxiliary"] for cell in mine}):
            pair = pair_transfer(
                curve, [c for c in mine if c["auxiliary"] == j], level, draws, seed
            )
            pairs.append(pair)
            notes += pair["notes"]
    matrix: dict[str, dict[str, float]] = {i: {i: 1.0} for i in targets}
    for pair in pairs:
        matrix[pair["target"]][pair["auxiliary"]] = pair["transfer"]
    shares: dict[str, float] = {}
    for cell in cells:
        shares[cell["target"]] = min(shares.get(cell["target"], 1.0), cell["share"])
    return {
        "n": n,
        "languages": targets,
        "level": level,
        "matrix": matrix,
        "add_matrix": transfer_matrix(cells, targets, "add"),
        "replace_matrix": transfer_matrix(cells, targets, "replace"),
        "pairs": pairs,
        "lowest_share": shares,
        "cells": cells,
        "noise": noise,
        "notes": notes,
    }


def _least_squares_transfer(
    curve: TargetCurve,
    base: np.ndarray,
    slope: np.ndarray,
    t_i: np.ndarray,
    t_j: np.ndarray,
    bpc: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For k noise draws at once (base, slope: (k,); bpc: (k, cells)): the T minimising the
    squared BPC misfit of a pair's cells on i's local curve, and that sum of squares. A grid over
    the search range, then golden-section refinement around each draw's best grid point."""
    low = max(T_BOUNDS[0], float(np.max(-t_i / t_j)))  # below it some cell has no tokens of i

    def misfit(t: np.ndarray) -> np.ndarray:  # (k, m) -> (k, m)
        shape = curve.shape(t_i + t[..., None] * t_j)
        return ((bpc[:, None, :] - base[:, None, None] - slope[:, None, None] * shape) ** 2).sum(-1)

    grid = np.linspace(low, T_BOUNDS[1], 201)
    best = misfit(np.broadcast_to(grid, (len(base), len(grid)))).argmin(1)
    step = grid[1] - grid[0]
    a, b = np.maximum(grid[best] - step, low), np.minimum(grid[best] + step, T_BOUNDS[1])
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        left = misfit(np.stack([c, d], 1))
        keep_left = left[:, 0] < left[:, 1]
        a, b = np.where(keep_left, a, c), np.where(keep_left, d, b)
    t = (a + b) / 2
    return t, misfit(t[:, None])[:, 0]


def pair_transfer(
    curve: TargetCurve, cells: list[dict], level: float, draws: int, seed: int
) -> dict:
    """The pair's one-constant T over all its cells (module docstring), its interval from the
    noise draws of `measured_cell`, and whether one constant fits: the residual variance over
    the seed variance, an F test on (cells - 1, seeds - 1) degrees of freedom."""
    i, j = curve.language, cells[0]["auxiliary"]
    t_i = np.asarray([c["tokens_target"] for c in cells])
    t_j = np.asarray([c["tokens_auxiliary"] for c in cells])
    bpc = np.asarray([c["bpc"] for c in cells])
    base = float(np.mean(curve.base_bpc))
    fit = _least_squares_transfer(
        curve, np.array([base]), np.array([curve.slope]), t_i, t_j, bpc[None]
    )
    t, sum_sq = float(fit[0][0]), float(fit[1][0])
    shares = [c["share"] for c in cells]
    pair = {
        "target": i,
        "auxiliary": j,
        "transfer": t,
        "transfer_low": float("nan"),
        "transfer_high": float("nan"),
        "cells": len(cells),
        "shares": [min(shares), max(shares)],
        "on_bound": bool(min(t - T_BOUNDS[0], T_BOUNDS[1] - t) < 1e-4),
        "misfit_ratio": float("nan"),
        "p_one_constant": float("nan"),
        "undefined_draws": float("nan"),
        "notes": [],
    }
    if pair["on_bound"]:
        pair["notes"].append(f"T({i} <- {j}) = {t:+.3g} is on its search bound {T_BOUNDS}")
    sigma, seeds = curve.sigma, len(curve.base_bpc)
    if not (np.isfinite(sigma) and sigma > 0):
        return pair
    if len(cells) > 1:
        ratio = sum_sq / (len(cells) - 1) / sigma**2  # F on (cells - 1, seeds - 1) dof
        pair["misfit_ratio"] = ratio
        pair["p_one_constant"] = float(f_dist.sf(ratio, len(cells) - 1, seeds - 1))
        if pair["p_one_constant"] < MISFIT_P:
            spread = [c["transfer"] for c in cells]
            pair["notes"].append(
                f"T({i} <- {j}): one constant does not fit its {len(cells)} runs (misfit "
                f"{ratio:.3g}x the seed variance, F test p = {pair['p_one_constant']:.2g}): "
                f"they give {min(spread):+.2f} to {max(spread):+.2f} at native shares "
                f"{min(shares):.2f}-{max(shares):.2f}; the transfer depends on the mix"
            )
    rng = np.random.default_rng(seed)
    e = sigma * rng.standard_t(seeds - 1, size=(draws, 2 + len(cells)))
    base_k = base + e[:, 0] / np.sqrt(seeds)
    slope_k = curve.self_bpc + e[:, 1] - base_k
    ok = slope_k < 0  # as in `measured_cell`: a draw whose self-add did not help defines no T
    pair["undefined_draws"] = float(1 - ok.mean())
    if ok.any():
        fits = _least_squares_transfer(curve, base_k[ok], slope_k[ok], t_i, t_j, bpc + e[ok, 2:])[0]
        tail = (1 - level) / 2 * 100
        pair["transfer_low"], pair["transfer_high"] = np.percentile(fits, [tail, 100 - tail])
    return pair


def transfer_matrix(cells: list[dict], languages: list[str], kind: str) -> dict:
    """{target: {auxiliary: T}}: the mean over repeated cells of one kind; T_ii = 1."""
    matrix: dict[str, dict[str, float]] = {i: {i: 1.0} for i in languages}
    grouped: dict[tuple[str, str], list[float]] = defaultdict(list)
    for cell in cells:
        if cell["kind"] == kind:
            grouped[(cell["target"], cell["auxiliary"])].append(cell["transfer"])
    for (i, j), values in grouped.items():
        matrix[i][j] = _mean(values)
    return matrix


def matrix_array(matrix: dict, languages: list[str]) -> np.ndarray:
    """T as an array in `languages` order; an unmeasured pair is 0 (no transfer assumed)."""
    return np.asarray([[matrix.get(i, {}).get(j, 0.0) for j in languages] for i in languages])


def synergy_design(
    languages: list[str], n: float, base: float, added: float, replace: float, seeds: int
) -> list[dict]:
    """The runs of a synergy measurement: name, N, D, language weights, seed."""
    if len(languages) < 2 or len(set(languages)) != len(languages):
        raise LawsError("--languages: name at least two different languages")
    if not 0 < replace < 1 or added <= 0 or base <= 0 or seeds < 1:
        raise LawsError("need base > 0, added > 0, 0 < replace < 1 and seeds >= 1")
    runs = []

    def run(name: str, tokens: float, weights: dict[str, float], seed: int = 0) -> None:
        mix = ",".join(f"{k}={v:.6g}" for k, v in weights.items())
        runs.append({"name": name, "n": n, "tokens": tokens, "languages": mix, "seed": seed})

    for i in languages:
        for seed in range(seeds):
            run(f"{slug(i)}_base" + (f"_seed{seed}" if seed else ""), base, {i: 1.0}, seed)
        run(f"{slug(i)}_self", base + added, {i: 1.0})
        for j in languages:
            if j != i:
                total = base + added
                run(f"{slug(i)}_add_{slug(j)}", total, {i: base / total, j: added / total})
                run(f"{slug(i)}_replace_{slug(j)}", base, {i: 1 - replace, j: replace})
    return runs


def slug(language: str) -> str:
    """A language name as a folder-name part: C++ -> Cpp, C# -> Csharp."""
    return language.replace("+", "p").replace("#", "sharp").replace(" ", "-")
