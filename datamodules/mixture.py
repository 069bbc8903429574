"""The training stream of a run: code and NL interleaved at a fixed fraction, nested in D.

The stream is cut into chunks of `seq_len` tokens. Chunk k comes from code when the number of
code chunks among the first k+1 chunks, round(r * (k+1)), grows, else from NL; each source's
chunks are consecutive slices of that source's shuffled stream. So:
  - the source of every chunk depends only on r, never on the budget: `tokens=X` is an exact
    prefix of `tokens=2X`;
  - after any prefix of P tokens the code tokens differ from r * P by less than one sequence;
  - r = 1 is the plain code stream and r = 0 the plain NL stream.
Training sequence i is chunk i plus the first token of chunk i+1 (inputs and shifted targets), so
the run trains on exactly the first D + 1 tokens of the stream.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

CODE, NL = 1, 0


class BudgetError(ValueError):
    """A budget needs more tokens of a source than the pool holds."""


def as_fraction(code_fraction: float) -> Fraction:
    if not 0.0 <= code_fraction <= 1.0:
        raise ValueError(f"code_fraction={code_fraction} must be between 0 and 1")
    return Fraction(str(code_fraction)).limit_denominator(10_000)


def code_chunks_before(k: np.ndarray | int, r: Fraction) -> np.ndarray:
    """Code chunks among chunks 0..k-1: round(r * k), exact integer arithmetic."""
    k = np.asarray(k, dtype=np.int64)
    return (2 * k * r.numerator + r.denominator) // (2 * r.denominator)


class MixedStream:
    """Token-level view of the interleaved stream; `code` or `nl` may be None when r excludes it."""

    def __init__(
        self,
        code: np.ndarray | None,
        nl: np.ndarray | None,
        code_fraction: float,
        seq_len: int,
    ):
        self.r = as_fraction(code_fraction)
        self.code, self.nl, self.seq_len = code, nl, seq_len
        if self.r > 0 and code is None:
            raise BudgetError("the pool has no code stream but code_fraction > 0")
        if self.r < 1 and nl is None:
            raise BudgetError(
                f"code_fraction={code_fraction} needs natural-language text but the pool has "
                "none; prepare it with --nl"
            )

    def chunk_sources(self, chunks: np.ndarray) -> np.ndarray:
        """CODE or NL for each chunk index."""
        chunks = np.asarray(chunks, dtype=np.int64)
        return code_chunks_before(chunks + 1, self.r) - code_chunks_before(chunks, self.r)

    def _chunk(self, k: int, length: int) -> np.ndarray:
        before_code = int(code_chunks_before(k, self.r))
        if self.chunk_sources(k) == CODE:
            source, index = self.code, before_code
        else:
            source, index = self.nl, k - before_code
        start = index * self.seq_len
        return source[start : start + length]

    def sequence(self, i: int) -> np.ndarray:
        """Training sequence i: seq_len + 1 tokens (chunk i and the next chunk's first token)."""
        return np.concatenate([self._chunk(i, self.seq_len), self._chunk(i + 1, 1)])

    def needs(self, tokens: int) -> dict[str, int]:
        """Tokens of each source in the first `tokens` + 1 stream tokens (a multiple of seq_len)."""
        chunks = tokens // self.seq_len
        code_full = int(code_chunks_before(chunks, self.r))
        next_is_code = int(self.chunk_sources(chunks)) == CODE
        return {
            "code": code_full * self.seq_len + int(next_is_code),
            "nl": (chunks - code_full) * self.seq_len + int(not next_is_code),
        }

    def check_budget(self, tokens: int) -> None:
        """Fail before training, with the numbers, if a source is too short for the budget."""
        for name, need in self.needs(tokens).items():
            have = len(getattr(self, name)) if getattr(self, name) is not None else 0
            if need > have:
                raise BudgetError(
                    f"{tokens:,} training tokens at code_fraction={float(self.r):g} need "
                    f"{need:,} {name.upper()} tokens but the pool has {have:,}; lower "
                    "data.tokens, change data.code_fraction, or prepare a larger pool"
                )

    def head(self, tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """The first `tokens` + 1 stream tokens and each one's source (CODE/NL): what a run with
        budget `tokens` trains on, inputs and targets."""
        self.check_budget(tokens)
        chunks = tokens // self.seq_len
        pieces = [self._chunk(k, self.seq_len) for k in range(chunks)] + [self._chunk(chunks, 1)]
        sources = np.repeat(self.chunk_sources(np.arange(chunks + 1)), [len(p) for p in pieces])
        return np.concatenate(pieces), sources.astype(np.uint8)
