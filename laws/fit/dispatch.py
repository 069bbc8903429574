"""One entry point for fitting any law form, alone or once per validation language."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from laws.errors import LawsError
from laws.fit import chinchilla as fit_chinchilla
from laws.fit import farseer as fit_farseer
from laws.fit.forms import PerLanguage
from laws.fit.result import Fit
from laws.runs.table import Runs, repeat_summary

FITTERS: dict[str, Callable[..., Fit]] = {
    "chinchilla": fit_chinchilla.fit,
    "farseer": fit_farseer.fit,
}


def fit_law(runs: Runs, law: str, weights: np.ndarray | None = None, **options: Any) -> Fit:
    """Fit `law` ("chinchilla" or "farseer") to runs; options go to that law's fitter. The fit's
    details say how many rows are means of repeated runs, and their spread."""
    if law not in FITTERS:
        raise LawsError(f"unknown law {law!r}; choose one of {', '.join(FITTERS)}")
    fit = FITTERS[law](runs, weights=weights, **options)
    fit.details["repeats"] = repeat_summary(runs)
    return fit


def fit_per_language(
    runs: Runs,
    law: str,
    mixture: str | None = None,
    languages: list[str] | None = None,
    **options: Any,
) -> dict[str, Fit]:
    """One fit per language found in the runs (rows with a language label), or per one of
    `languages` (a validation language the runs did not train on is noise to a law)."""
    found = runs.languages()
    if languages:
        missing = [x for x in languages if x not in found]
        if missing:
            raise LawsError(
                f"--languages {', '.join(missing)}: no per-language losses for it; the runs have "
                f"{', '.join(found) or 'none'}"
            )
        found = list(languages)
    languages = found
    if not languages:
        raise LawsError(
            "no per-language losses in these runs (result.json 'val_bpc_by_language' or a "
            "'language' column); fit the overall loss without --per-language"
        )
    fits = {}
    for language in languages:
        try:
            fits[language] = fit_law(runs.select(mixture, language), law, **options)
        except LawsError as error:
            raise LawsError(f"language {language!r}: {error}") from None
    return fits


def per_language_json(fits: dict[str, Fit]) -> dict[str, Any]:
    """{"law": "per_language", "languages": {lang: fit JSON}}, loadable by `load_law`."""
    return {"law": PerLanguage.name, "languages": {k: f.to_json() for k, f in fits.items()}}
