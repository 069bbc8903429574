"""The runs a law is fitted to, and the checks that reject data no fit can use.

Every fit goes through `check_fittable`, so a degenerate table fails with a message naming the
problem and the fix instead of an optimiser silently returning nonsense. Repeated runs of one
(N, D, mixture, language), e.g. seeds, are one row to a law: `average_repeats` merges them.
What was read but is not a row of its own (failed, unusable, averaged runs) is kept as `LeftOut`
so a fit can list it: a run dropped without a word would bias the fit unseen.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from laws.errors import LawsError

DEFAULT_FLOPS_PER_TOKEN = 6.0


@dataclass(frozen=True)
class LeftOut:
    """A run (or one language row of it) that is not a row of its own in the fit, and why.

    kind: "failed", "interrupted" or "missing" (the run has no usable result), "unusable" (a
    value no law can use), "averaged" (a repeat merged into another row's mean). mixture and
    language say which fits it concerns (None: every fit of the table)."""

    run: str
    kind: str
    reason: str
    mixture: str | None = None
    language: str | None = None

    def concerns(self, mixture: str | None, language: str | None) -> bool:
        same_mixture = mixture is None or self.mixture in (None, mixture)
        return same_mixture and (self.language is None or self.language == language)

    def to_json(self) -> dict[str, str]:
        return {"run": self.run, "kind": self.kind, "reason": self.reason}


@dataclass
class Runs:
    """One row per run: model size N, tokens D, loss, compute C and where the row came from.

    `mixture` and `language` are labels (None when absent); `source` names the file (and line)
    each row was read from so errors can point at it; `repeats` holds the losses a row is the
    mean of (empty for a single run), so the seed spread is kept after averaging; `left_out`
    lists what was read but is not a row (kept through subset and filtered by select).
    """

    n: np.ndarray
    d: np.ndarray
    loss: np.ndarray
    c: np.ndarray
    mixture: list[str | None] = field(default_factory=list)
    language: list[str | None] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    repeats: list[tuple[float, ...]] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.repeats:
            self.repeats = [()] * len(self.n)

    @classmethod
    def from_arrays(
        cls,
        n: ArrayLike,
        d: ArrayLike,
        loss: ArrayLike,
        c: ArrayLike | None = None,
        flops_per_token: float = DEFAULT_FLOPS_PER_TOKEN,
        mixture: Sequence[str | None] | None = None,
        language: Sequence[str | None] | None = None,
        source: Sequence[str] | None = None,
    ) -> Runs:
        """Runs from arrays; C defaults to flops_per_token * N * D."""
        n, d, loss = (np.asarray(v, dtype=float).ravel() for v in (n, d, loss))
        if not len(n) == len(d) == len(loss):
            raise LawsError(f"N, D and loss differ in length ({len(n)}, {len(d)}, {len(loss)})")
        c = flops_per_token * n * d if c is None else np.asarray(c, dtype=float).ravel()
        rows = len(n)
        return cls(
            n=n,
            d=d,
            loss=loss,
            c=c,
            mixture=list(mixture) if mixture is not None else [None] * rows,
            language=list(language) if language is not None else [None] * rows,
            source=list(source) if source is not None else [f"row {i + 1}" for i in range(rows)],
        )

    def __len__(self) -> int:
        return len(self.n)

    def subset(self, mask_or_index: np.ndarray) -> Runs:
        index = np.flatnonzero(mask_or_index) if mask_or_index.dtype == bool else mask_or_index
        return Runs(
            n=self.n[index],
            d=self.d[index],
            loss=self.loss[index],
            c=self.c[index],
            mixture=[self.mixture[i] for i in index],
            language=[self.language[i] for i in index],
            source=[self.source[i] for i in index],
            repeats=[self.repeats[i] for i in index],
            left_out=self.left_out,
        )

    def select(self, mixture: str | None = None, language: str | None = None) -> Runs:
        """The runs of one mixture and one language (None: the overall loss).

        Several mixtures in one fit would mix different surfaces, so they must be told apart.
        """
        keep = np.array([lang == language for lang in self.language], dtype=bool)
        if not keep.any():
            found = sorted({str(lang) for lang in self.language})
            what = "the overall loss" if language is None else f"language {language!r}"
            raise LawsError(f"no rows for {what}; the table has languages {', '.join(found)}")
        if mixture is not None:
            keep &= np.array([m == mixture for m in self.mixture], dtype=bool)
            if not keep.any():
                found = sorted({str(m) for m in self.mixture})
                raise LawsError(f"no runs of mixture {mixture!r}; the table has {', '.join(found)}")
        chosen = self.subset(keep)
        chosen.left_out = [x for x in self.left_out if x.concerns(mixture, language)]
        mixtures = sorted({str(m) for m in chosen.mixture})
        if len(mixtures) > 1:
            raise LawsError(
                f"the runs mix {len(mixtures)} data mixtures ({', '.join(mixtures)}); "
                "fit one at a time with --mixture"
            )
        return chosen

    def languages(self) -> list[str]:
        return sorted({lang for lang in self.language if lang is not None})

    def domain(self) -> dict[str, list[float]]:
        """The range of N and D the data cover, kept with a fit to bound extrapolation."""
        return {
            "n": [float(self.n.min()), float(self.n.max())],
            "d": [float(self.d.min()), float(self.d.max())],
        }


def check_fittable(runs: Runs, law: str, n_params: int, min_sizes: int = 2) -> None:
    """Raise LawsError if no fit of `law` (with `n_params` parameters) can use these runs."""
    if len(runs) == 0:
        raise LawsError(f"no runs to fit the {law} law to")
    for name, values in (("N", runs.n), ("D", runs.d), ("loss", runs.loss)):
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if bad.size:
            i = bad[0]
            raise LawsError(
                f"{runs.source[i]}: {name}={float(values[i])!r} is not a positive finite number "
                f"({bad.size} such row(s)); fix or drop those runs"
            )
    refuse_repeats(runs, labels=False)
    sizes = np.unique(runs.n)
    if sizes.size < min_sizes:
        listed = ", ".join(f"{s:.4g}" for s in sizes)
        raise LawsError(
            f"the runs cover {sizes.size} model size(s) (N={listed}); "
            f"the {law} law needs at least {min_sizes} distinct N"
        )
    if np.unique(runs.d).size < 2:
        raise LawsError(
            f"every run has D={runs.d[0]:.4g}; the {law} law needs at least 2 distinct D"
        )
    if len(runs) <= n_params:
        raise LawsError(
            f"{len(runs)} runs for the {law} law's {n_params} parameters; "
            f"a fit needs more runs than parameters (add runs or fit a smaller law)"
        )


def _keys(runs: Runs, labels: bool = True) -> list[tuple]:
    """Each row's (N, D, mixture, language), or (N, D) alone."""
    pairs = zip(runs.n.tolist(), runs.d.tolist(), strict=True)
    if not labels:
        return list(pairs)
    rows = zip(pairs, runs.mixture, runs.language, strict=True)
    return [(*pair, m, lang) for pair, m, lang in rows]


def refuse_repeats(runs: Runs, labels: bool = True) -> None:
    """Raise LawsError if two rows share (N, D, mixture, language), or with labels=False (a
    fit, which sees one surface) (N, D): a law has one loss there."""
    groups = Counter(_keys(runs, labels))
    repeated = [(key, count) for key, count in groups.items() if count > 1]
    if repeated:
        (n, d, *_), count = repeated[0]
        raise LawsError(
            f"duplicate runs: N={n:.4g}, D={d:.4g} appears {count} times "
            f"({len(repeated)} repeated pair(s)); average repeated seeds into one row "
            "(the laws commands do unless --no-average)"
        )


def average_repeats(runs: Runs) -> Runs:
    """One row per (N, D, mixture, language): the arithmetic mean of the repeats' loss and C.

    The mean of the loss, not of ln L: a law predicts the expected loss, and BPC over one
    validation set is nats / characters, so the mean BPC is the BPC of the pooled nats. (The
    geometric mean would sit below it by about half the squared relative spread.)
    """
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(_keys(runs)):
        groups.setdefault(key, []).append(i)
    if all(len(rows) == 1 for rows in groups.values()):
        return runs
    first = runs.subset(np.array([rows[0] for rows in groups.values()]))
    first.left_out = list(runs.left_out)
    for j, (key, rows) in enumerate(groups.items()):
        if len(rows) > 1:
            first.left_out += [
                LeftOut(
                    runs.source[i],
                    "averaged",
                    f"repeat of N={key[0]:.4g}, D={key[1]:.4g}: averaged with "
                    f"{runs.source[rows[0]]} into one row",
                    key[2],
                    key[3],
                )
                for i in rows[1:]
            ]
            losses = tuple(x for i in rows for x in runs.repeats[i] or (float(runs.loss[i]),))
            first.loss[j] = np.mean(losses)
            first.c[j] = np.mean(runs.c[rows])
            first.repeats[j] = losses
            first.source[j] = f"{runs.source[rows[0]]} and {len(rows) - 1} repeat(s)"
    return first


def repeat_summary(runs: Runs) -> dict[str, float | int | None]:
    """How many rows are means of repeats, of how many runs, and the runs' spread around their
    row's mean: the largest relative deviation and the pooled relative standard deviation."""
    merged = [np.asarray(r) for r in runs.repeats if len(r) > 1]
    if not merged:
        return {"rows_averaged": 0, "runs_merged": 0, "max_rel_deviation": None, "rel_std": None}
    deviations = [r / r.mean() - 1 for r in merged]
    squares = sum(float(np.sum(dev**2)) for dev in deviations)
    return {
        "rows_averaged": len(merged),
        "runs_merged": int(sum(len(r) for r in merged)),
        "max_rel_deviation": float(max(np.abs(dev).max() for dev in deviations)),
        "rel_std": float(np.sqrt(squares / sum(len(r) - 1 for r in merged))),
    }


def repeat_note(summary: dict[str, float | int | None]) -> str | None:
    """The summary as one line for a person, or None when nothing was averaged."""
    if not summary["rows_averaged"]:
        return None
    return (
        f"averaged {summary['runs_merged']} repeated runs into {summary['rows_averaged']} "
        f"row{'s' if summary['rows_averaged'] > 1 else ''} "
        f"(same N, D, mixture, language; spread around each row's mean: max "
        f"{summary['max_rel_deviation']:.3%}, std {summary['rel_std']:.3%}); "
        "--no-average refuses repeats instead"
    )
