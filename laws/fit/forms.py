"""Loss surfaces L(N, D): Chinchilla, Farseer and one surface per language.

All forms take N (non-embedding parameters) and D (training tokens) in raw units, broadcast over
numpy arrays, and give analytic derivatives: `gradient` (with respect to the parameters, for
fitting and its checks) and `log_slopes` (dL/dlnN, dL/dlnD, for compute-optimal allocation).
A law is stored as {"law": name, "params": {...}} so a law typed in from a paper is used exactly
like a fitted one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import ArrayLike

from laws.errors import LawsError


class Law(Protocol):
    name: ClassVar[str]
    keys: ClassVar[tuple[str, ...]]

    @property
    def params(self) -> dict[str, float]: ...

    def predict(self, n: ArrayLike, d: ArrayLike) -> np.ndarray: ...

    def gradient(self, n: ArrayLike, d: ArrayLike) -> np.ndarray: ...

    def log_slopes(self, n: ArrayLike, d: ArrayLike) -> tuple[np.ndarray, np.ndarray]: ...

    def irreducible(self) -> float: ...

    def to_json(self) -> dict[str, Any]: ...


class _Params:
    """Shared plumbing: parameter dict, vector form and JSON."""

    keys: ClassVar[tuple[str, ...]]
    name: ClassVar[str]

    @property
    def params(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}

    def vector(self) -> np.ndarray:
        return np.array([getattr(self, k) for k in self.keys], dtype=float)

    @classmethod
    def from_vector(cls, values: ArrayLike):
        return cls(*(float(v) for v in np.asarray(values, dtype=float)))

    def to_json(self) -> dict[str, Any]:
        return {"law": self.name, "params": self.params}


@dataclass(frozen=True)
class Chinchilla(_Params):
    """L = E + A / N^alpha + B / D^beta (Hoffmann et al.); E is the irreducible loss."""

    E: float
    A: float
    alpha: float
    B: float
    beta: float

    name: ClassVar[str] = "chinchilla"
    keys: ClassVar[tuple[str, ...]] = ("E", "A", "alpha", "B", "beta")

    def predict(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return self.E + self.A * n**-self.alpha + self.B * d**-self.beta

    def gradient(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        """dL/d(E, A, alpha, B, beta), stacked on the last axis."""
        n, d = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(d, dtype=float))
        n_term, d_term = n**-self.alpha, d**-self.beta
        return np.stack(
            [
                np.ones_like(n),
                n_term,
                -self.A * n_term * np.log(n),
                d_term,
                -self.B * d_term * np.log(d),
            ],
            axis=-1,
        )

    def log_slopes(self, n: ArrayLike, d: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        return -self.alpha * self.A * n**-self.alpha, -self.beta * self.B * d**-self.beta

    def irreducible(self) -> float:
        return self.E


def farseer_log_terms(
    theta: np.ndarray, ln_n: np.ndarray, ln_d: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """ln L and its Jacobian for Farseer parameters theta = (s, q, S, B, b, Q, A, a, E).

    ln_n may be ln(N / N0) for any reference N0: the fitter rescales the three power-law
    coefficients that way to keep the problem well conditioned. Working with ln L through
    logaddexp keeps both terms finite even where one of them underflows.
    """
    s, q, S, B, b, Q, A, a, E = theta
    nq, nb, na = np.exp(q * ln_n), np.exp(b * ln_n), np.exp(a * ln_n)
    first = s * nq + S
    k = np.exp(A * na + E)
    second = B * nb + Q - k * ln_d
    log_loss = np.logaddexp(first, second)
    p1, p2 = np.exp(first - log_loss), np.exp(second - log_loss)
    dk = -p2 * ln_d * k
    jac = np.stack(
        [
            p1 * nq,
            p1 * s * nq * ln_n,
            p1,
            p2 * nb,
            p2 * B * nb * ln_n,
            p2,
            dk * na,
            dk * A * na * ln_n,
            dk,
        ],
        axis=-1,
    )
    return log_loss, jac


@dataclass(frozen=True)
class Farseer(_Params):
    """L = exp(s N^q + S) + exp(B N^b + Q) * D^(-exp(A N^a + E)) (Farseer, no free constant)."""

    s: float
    q: float
    S: float
    B: float
    b: float
    Q: float
    A: float
    a: float
    E: float

    name: ClassVar[str] = "farseer"
    keys: ClassVar[tuple[str, ...]] = ("s", "q", "S", "B", "b", "Q", "A", "a", "E")

    def _terms(self, n: ArrayLike, d: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """First term, second term and the D exponent k(N)."""
        n, d = np.asarray(n, dtype=float), np.asarray(d, dtype=float)
        k = np.exp(self.A * n**self.a + self.E)
        first = np.exp(self.s * n**self.q + self.S)
        second = np.exp(self.B * n**self.b + self.Q - k * np.log(d))
        return first, second, k

    def predict(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        first, second, _ = self._terms(n, d)
        return first + second

    def gradient(self, n: ArrayLike, d: ArrayLike) -> np.ndarray:
        """dL/d(s, q, S, B, b, Q, A, a, E), stacked on the last axis."""
        n, d = np.broadcast_arrays(np.asarray(n, dtype=float), np.asarray(d, dtype=float))
        log_loss, jac = farseer_log_terms(self.vector(), np.log(n), np.log(d))
        return np.exp(log_loss)[..., None] * jac

    def log_slopes(self, n: ArrayLike, d: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        n = np.asarray(n, dtype=float)
        first, second, k = self._terms(n, d)
        ln_d = np.log(np.asarray(d, dtype=float))
        d_exponent = self.a * self.A * n**self.a * k  # dk/dlnN
        d_ln_n = first * self.q * self.s * n**self.q + second * (
            self.b * self.B * n**self.b - d_exponent * ln_d
        )
        return d_ln_n, -k * second

    def irreducible(self) -> float:
        """lim L as N -> inf, then D -> inf (the order the paper's Appendix A.4 takes)."""
        first = np.exp(_power_limit(self.s, self.q) + self.S)
        k = np.exp(_power_limit(self.A, self.a) + self.E)
        second = np.exp(_power_limit(self.B, self.b) + self.Q) if k == 0 else 0.0
        return float(first + second)


def _power_limit(coef: float, power: float) -> float:
    """lim coef * N^power as N -> inf."""
    if power < 0 or coef == 0:
        return 0.0
    return coef if power == 0 else float(np.sign(coef) * np.inf)


@dataclass(frozen=True)
class PerLanguage:
    """One surface per validation language (each usually a Chinchilla law)."""

    laws: dict[str, Law]

    name: ClassVar[str] = "per_language"

    def law_for(self, language: str | None) -> Law:
        if language not in self.laws:
            raise LawsError(
                f"this fit has one law per language ({', '.join(sorted(self.laws))}); "
                f"pick one with --language (got {language!r})"
            )
        return self.laws[language]

    def predict(self, n: ArrayLike, d: ArrayLike, language: str) -> np.ndarray:
        return self.law_for(language).predict(n, d)

    def to_json(self) -> dict[str, Any]:
        return {"law": self.name, "languages": {k: v.to_json() for k, v in self.laws.items()}}


FORMS: dict[str, type] = {"chinchilla": Chinchilla, "farseer": Farseer}


def law_from_json(data: dict[str, Any]) -> Law | PerLanguage:
    """A law from {"law": ..., "params": {...}}; other keys (fit diagnostics) are ignored."""
    if not isinstance(data, dict) or "law" not in data:
        raise LawsError('a law file needs a "law" key ("chinchilla", "farseer" or "per_language")')
    kind = data["law"]
    if kind == PerLanguage.name:
        return PerLanguage({k: law_from_json(v) for k, v in data.get("languages", {}).items()})
    if kind not in FORMS:
        raise LawsError(
            f"unknown law {kind!r}; expected one of {', '.join([*FORMS, 'per_language'])}"
        )
    form = FORMS[kind]
    params = data.get("params")
    if not isinstance(params, dict):
        raise LawsError(f'a {kind} law needs "params" with keys {", ".join(form.keys)}')
    missing = [k for k in form.keys if k not in params]
    extra = [k for k in params if k not in form.keys]
    if missing or extra:
        raise LawsError(
            f"{kind} params need exactly {', '.join(form.keys)}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unexpected {', '.join(extra)}" if extra else "")
        )
    values = [params[k] for k in form.keys]
    if not all(isinstance(v, (int, float)) and np.isfinite(v) for v in values):
        raise LawsError(f"{kind} params must be finite numbers, got {params}")
    return form(*(float(v) for v in values))


def load_law(source: str | Path | dict[str, Any]) -> Law | PerLanguage:
    """A law from a dict or a JSON file (a fit file written by `laws fit` works too)."""
    if isinstance(source, dict):
        return law_from_json(source)
    return law_from_json(read_json(source))


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise LawsError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise LawsError(f"{path}: not valid JSON ({error})") from None
