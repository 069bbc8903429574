"""The code stream of a run at chosen language proportions, nested in D like the code/NL mix.

A pool's code stream holds every language in one shuffled order, at the proportions the corpus
happens to have. `data.languages=Python=0.5,C=0.3,C++=0.2` serves another mixture from the same
pool without preparing it again: each language's documents, in pool order, form that language's
own stream, cut into chunks of `seq_len` tokens, and the chunks are dealt out by the Webster
(Sainte-Lague) divisor method: the j-th chunk of language l has the key (j + 1/2) / p_l, and the
mixed code stream is all chunks in increasing key order (ties by language name). So:
  - the order depends only on the weights, never on the budget: `tokens=X` is an exact prefix of
    `tokens=2X` (divisor methods are house-monotone);
  - after any k chunks, language l holds within (1 + L p_l) / 2 chunks of k p_l (L languages);
  - each language's tokens are a prefix of its own stream, so the supply each budget needs is
    known before training and a shortfall names the language.
"""

from __future__ import annotations

import numpy as np

from configs.sizes import ConfigError, parse_weights
from datamodules.languages import canonical_language
from datamodules.mixture import BudgetError, MixedStream
from datamodules.pool import TokenPool


class LanguageMixError(ConfigError):
    """A language mixture that is malformed or names a language the pool does not hold."""


def parse_languages(value: str) -> dict[str, float]:
    """`Python=0.5,C=0.3,C++=0.2` -> canonical names and weights normalised to sum 1."""
    weights: dict[str, float] = {}
    for name, weight in parse_weights(value, "data.languages").items():
        language = canonical_language(name)
        if language in weights:
            raise LanguageMixError(f"data.languages names {language} twice; give each once")
        weights[language] = weight
    total = sum(weights.values())
    return {name: w / total for name, w in sorted(weights.items()) if w > 0}


def chunk_order(weights: dict[str, float], chunks: int) -> np.ndarray:
    """Language index (into sorted(weights)) of each of the first `chunks` code chunks."""
    names = sorted(weights)
    keys, owners = [], []
    for i, name in enumerate(names):
        # more keys than language i can own among the first `chunks` (the bound above)
        count = int(np.ceil(chunks * weights[name] + (1 + len(names) * weights[name]) / 2)) + 1
        keys.append((np.arange(count) + 0.5) / weights[name])
        owners.append(np.full(count, i, dtype=np.int64))
    keys_all, owners_all = np.concatenate(keys), np.concatenate(owners)
    order = np.lexsort((owners_all, keys_all))[:chunks]
    return owners_all[order]


class LanguageMix:
    """The language-weighted code stream of one pool."""

    def __init__(self, pool: TokenPool, weights: dict[str, float], seq_len: int):
        self.pool, self.weights, self.seq_len = pool, weights, seq_len
        self.names = sorted(weights)
        missing = [name for name in self.names if name not in pool.languages]
        if missing:
            raise LanguageMixError(
                f"data.languages names {', '.join(missing)}, which the pool {pool.path} does not "
                f"hold; its languages: {', '.join(pool.languages)}"
            )
        starts = pool.documents("code")
        self._lengths = np.diff(np.asarray(starts, dtype=np.int64))
        self._starts = np.asarray(starts[:-1], dtype=np.int64)
        self._doc_lang = np.asarray(pool.document_languages("code"), dtype=np.int64)

    def _documents(self, name: str) -> np.ndarray:
        return np.flatnonzero(self._doc_lang == self.pool.languages.index(name))

    def tokens_by_language(self) -> dict[str, int]:
        """Training tokens each named language has in the pool (its supply)."""
        return {name: int(self._lengths[self._documents(name)].sum()) for name in self.names}

    def needs(self, tokens: int) -> dict[str, int]:
        """Tokens of each language in the first `tokens` code tokens."""
        chunks = -(-tokens // self.seq_len)
        owners = chunk_order(self.weights, chunks)
        counts = np.bincount(owners, minlength=len(self.names)) * self.seq_len
        if chunks:
            counts[owners[-1]] -= chunks * self.seq_len - tokens  # the last chunk is partial
        return {name: int(c) for name, c in zip(self.names, counts, strict=True)}

    def check_supply(self, tokens: int) -> None:
        have = self.tokens_by_language()
        for name, need in self.needs(tokens).items():
            if need > have[name]:
                raise BudgetError(
                    f"{tokens:,} code tokens at data.languages weight {self.weights[name]:.3g} "
                    f"for {name} need {need:,} {name} tokens but the pool has {have[name]:,}; "
                    f"lower data.tokens or that language's weight, or prepare a larger pool"
                )

    def language_stream(self, name: str, tokens: int) -> np.ndarray:
        """The first `tokens` tokens of language `name`'s own stream (its documents in order)."""
        docs = self._documents(name)
        ends = np.cumsum(self._lengths[docs])
        docs = docs[: int(np.searchsorted(ends, tokens)) + 1]
        code = self.pool.stream("code")
        pieces = [
            code[s : s + n] for s, n in zip(self._starts[docs], self._lengths[docs], strict=True)
        ]
        return np.concatenate(pieces)[:tokens] if pieces else np.zeros(0, self.pool.dtype)

    def stream(self, tokens: int) -> np.ndarray:
        """The first `tokens` tokens of the mixed code stream, in memory."""
        self.check_supply(tokens)
        chunks = -(-tokens // self.seq_len)
        owners = chunk_order(self.weights, chunks)
        out = np.empty(chunks * self.seq_len, dtype=self.pool.dtype)
        for i, name in enumerate(self.names):
            slots = np.flatnonzero(owners == i)
            own = self.language_stream(name, len(slots) * self.seq_len)
            own = np.pad(own, (0, len(slots) * self.seq_len - len(own)))
            out.reshape(chunks, self.seq_len)[slots] = own.reshape(len(slots), self.seq_len)
        return out[:tokens]


def mixed_stream(
    pool: TokenPool,
    code_fraction: float,
    seq_len: int,
    languages: dict[str, float] | None = None,
    tokens: int | None = None,
) -> MixedStream:
    """The run's stream; with `languages`, its code part is the language mix of the first
    `tokens` training tokens' code share (`LanguageMix`), built in memory."""
    if not languages:
        return MixedStream(pool.stream("code"), pool.stream("nl"), code_fraction, seq_len)
    if tokens is None:
        raise ValueError("a language mix is built for a budget: give `tokens`")
    shape = MixedStream(np.zeros(0, pool.dtype), pool.stream("nl"), code_fraction, seq_len)
    code = LanguageMix(pool, languages, seq_len).stream(shape.needs(tokens)["code"])
    return MixedStream(code, pool.stream("nl"), code_fraction, seq_len)


def trained_languages(
    pool: TokenPool, code_fraction: float, seq_len: int, languages: dict[str, float], tokens: int
) -> dict:
    """What a run records of its language mix: the weights and the code tokens per language."""
    shape = MixedStream(np.zeros(0, pool.dtype), pool.stream("nl"), code_fraction, seq_len)
    mix = LanguageMix(pool, languages, seq_len)
    return {"weights": languages, "tokens": mix.needs(shape.needs(tokens)["code"])}
