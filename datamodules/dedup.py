"""Decontamination: find training documents that duplicate a validation document; and the
exact deduplication of the training set itself (`first_occurrences` over `normalized_hash`es).

Two checks against validation, as in OpenCoder's near-deduplication:
  - exact, modulo whitespace: a hash of the text with every whitespace run made one space;
  - near: MinHash over 5-gram shingles of tokens, LSH banding for candidates, and each
    candidate verified by the Jaccard similarity estimated from the full signatures.

Tokens are runs of word characters or single punctuation characters, found on the UTF-8 bytes
with numpy (see `_token_hashes`): code's meaning lives in its punctuation, and re-indenting a
file should not hide a copy. Every constant is derived from blake2b, never Python's salted
`hash()`, so signatures are identical across processes, machines and numpy versions. On one
core `Decontaminator.check` runs at about 13 MB/s of Python source, well above tokenization.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

import numpy as np

NUM_PERM = 128
NGRAM = 5
THRESHOLD = 0.8
LSH_RECALL = 0.99  # chance that a pair exactly at the threshold becomes a candidate
SEED = 0
PIECE = 2**18  # bytes tokenized at once: bounds memory on huge documents
SPACE, WORD, PUNCT = 0, 1, 2
CHUNK = 4096  # shingles hashed at once: NUM_PERM x CHUNK x 8 bytes (4 MiB) of scratch


def normalized_hash(text: str) -> bytes:
    """16-byte hash of the text with whitespace runs collapsed to one space (and ends trimmed)."""
    normalized = " ".join(text.split())
    return hashlib.blake2b(normalized.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def first_occurrences(digests: np.ndarray) -> np.ndarray:
    """True for each row of `digests` (documents x 2 uint64, a `normalized_hash` each) that no
    earlier row repeats. lexsort is stable, so of equal digests the earliest sorts first."""
    order = np.lexsort((digests[:, 1], digests[:, 0]))
    ordered = digests[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    keep = np.zeros(len(order), dtype=bool)
    keep[order[first]] = True
    return keep


def _random_u64(label: str, count: int) -> np.ndarray:
    """`count` reproducible 64-bit integers derived from blake2b (stable everywhere)."""
    values = [
        int.from_bytes(hashlib.blake2b(f"{label}:{i}".encode(), digest_size=8).digest(), "little")
        for i in range(count)
    ]
    return np.array(values, dtype=np.uint64)


@lru_cache(maxsize=8)
def _shingle_multipliers(ngram: int, seed: int) -> np.ndarray:
    return _random_u64(f"codescale-shingle-{seed}", ngram) | np.uint64(1)


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers a and offsets b of the permutations, as (num_perm, 1) columns."""
    a = _random_u64(f"codescale-perm-a-{seed}", num_perm)
    b = _random_u64(f"codescale-perm-b-{seed}", num_perm)
    return a[:, None], b[:, None]


def _byte_classes() -> np.ndarray:
    classes = np.full(256, WORD, dtype=np.uint8)  # bytes >= 0x80 (non-ASCII text) join words
    for byte in range(128):
        char = chr(byte)
        if char in " \t\n\r\v\f":
            classes[byte] = SPACE
        elif not (char.isalnum() or char == "_"):
            classes[byte] = PUNCT
    return classes


_BYTE_CLASS = _byte_classes()


@lru_cache(maxsize=1)
def _powers() -> tuple[np.ndarray, np.ndarray]:
    """BASE^j and BASE^-j mod 2^64 for j < PIECE + 1 (BASE is odd, hence invertible)."""
    base = int(_random_u64("codescale-token-base", 1)[0]) | 1
    powers = np.cumprod(np.full(PIECE + 1, base, dtype=np.uint64))
    inverses = np.cumprod(np.full(PIECE + 1, pow(base, -1, 2**64), dtype=np.uint64))
    one = np.ones(1, dtype=np.uint64)
    return np.concatenate([one, powers[:-1]]), np.concatenate([one, inverses[:-1]])


def _piece_hashes(data: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Hash of each token of a piece: sum_j (byte_j + 1) BASE^j over its bytes, from one prefix
    sum over the whole piece (each token's sum rescaled by BASE^-start)."""
    word = kind == WORD
    single = kind == PUNCT
    starts = np.flatnonzero(single | (word & ~np.concatenate([[False], word[:-1]])))
    ends = np.flatnonzero(single | (word & ~np.concatenate([word[1:], [False]]))) + 1
    powers, inverses = _powers()
    prefix = np.zeros(len(data) + 1, dtype=np.uint64)
    np.cumsum((data.astype(np.uint64) + 1) * powers[: len(data)], out=prefix[1:])
    return (prefix[ends] - prefix[starts]) * inverses[starts]


def _token_hashes(text: str) -> np.ndarray:
    """64-bit hash of each token, vectorised over the UTF-8 bytes.

    Tokens: runs of word bytes (ASCII letters, digits, `_`, and every non-ASCII byte) and single
    ASCII punctuation bytes; ASCII whitespace separates. The text is cut at whitespace into
    pieces of at most PIECE bytes, so memory stays bounded on huge documents.
    """
    data = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    kind = _BYTE_CLASS[data]
    pieces = [np.empty(0, dtype=np.uint64)]
    start = 0
    while start < len(data):
        end = min(start + PIECE, len(data))
        if end < len(data):
            spaces = np.flatnonzero(kind[start:end] == SPACE)
            end = start + int(spaces[-1]) + 1 if len(spaces) else end
        pieces.append(_piece_hashes(data[start:end], kind[start:end]))
        start = end
    return np.concatenate(pieces)


def shingle_keys(text: str, ngram: int = NGRAM, seed: int = SEED) -> np.ndarray:
    """Sorted distinct uint32 keys of the text's token n-grams (one n-gram of all tokens when
    there are fewer than n).

    The key is the top half of sum_k(m_k * t_k) mod 2^64 over the n token hashes t_k with random
    odd m_k: a multiply-shift hash of the n-gram, so distinct n-grams rarely share a key.
    """
    tokens = _token_hashes(text)
    multipliers = _shingle_multipliers(ngram, seed)
    width = min(ngram, len(tokens))
    count = len(tokens) - width + 1
    combined = np.zeros(count, dtype=np.uint64)
    term = np.empty(count, dtype=np.uint64)
    for k in range(width):
        combined += np.multiply(tokens[k : k + count], multipliers[k], out=term)
    keys = (combined >> np.uint64(32)).astype(np.uint32)
    keys.sort()  # distinct by sort and compare: several times faster than np.unique here
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])]


def minhash(
    text: str, num_perm: int = NUM_PERM, ngram: int = NGRAM, seed: int = SEED
) -> np.ndarray:
    """MinHash signature (num_perm uint32) of the text's n-gram shingles.

    Permutation i maps a 32-bit key x to ((a_i x + b_i) mod 2^64) >> 32, Dietzfelbinger's
    multiply-add-shift family (pairwise independent for 32-bit keys). The shift is monotone, so
    the minimum is taken over the 64-bit values and shifted once. Shingles are processed in
    chunks so a very long document needs bounded memory.
    """
    keys = shingle_keys(text, ngram, seed)
    a, b = _permutations(num_perm, seed)
    signature = np.full(num_perm, np.iinfo(np.uint64).max, dtype=np.uint64)
    scratch = np.empty((num_perm, min(CHUNK, len(keys))), dtype=np.uint64)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        values = scratch[:, : len(chunk)]
        np.multiply(a, chunk, out=values)
        values += b
        np.minimum(signature, values.min(axis=1), out=signature)
    return (signature >> np.uint64(32)).astype(np.uint32)


def estimated_jaccard(x: np.ndarray, y: np.ndarray) -> float:
    """Fraction of permutations whose minima agree: an unbiased estimate of the Jaccard index."""
    return float(np.mean(x == y))


def lsh_bands(threshold: float, num_perm: int = NUM_PERM, recall: float = LSH_RECALL) -> int:
    """Rows per band: the most (fewest false candidates) that still make a pair exactly at
    `threshold` a candidate with probability >= `recall`; bands = num_perm // rows.

    For threshold 0.8 and 128 permutations: 6 rows x 21 bands, a candidate with probability
    0.998 at Jaccard 0.8 and 0.28 at 0.5.
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return rows
    return 1


class NearDuplicateIndex:
    """MinHash LSH over a fixed set of signatures (the validation documents).

    Stored as numpy arrays only (signatures, and one sorted array of band keys with the document
    each came from), so it pickles quickly and stays small: about (4 * num_perm + 12 * bands)
    bytes per document.
    """

    def __init__(self, signatures: np.ndarray, threshold: float = THRESHOLD):
        signatures = np.ascontiguousarray(signatures, dtype=np.uint32)
        if signatures.ndim != 2:
            raise ValueError(f"signatures must be (documents, num_perm), got {signatures.shape}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold={threshold} must be in (0, 1]")
        self.signatures = signatures
        self.threshold = threshold
        self.rows = lsh_bands(threshold, signatures.shape[1])
        self.bands = signatures.shape[1] // self.rows
        self._multipliers = _random_u64("codescale-band", self.rows) | np.uint64(1)
        self._offsets = _random_u64("codescale-band-offset", self.bands)
        keys = self._band_keys(signatures)  # (documents, bands)
        order = np.argsort(keys, axis=None, kind="stable")
        self._keys = keys.ravel()[order]
        self._docs = (order // keys.shape[1]).astype(np.int32)

    def __len__(self) -> int:
        return len(self.signatures)

    def _band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """One 64-bit key per band: its rows mixed with random odd multipliers plus a per-band
        offset, so equal rows in different bands do not collide."""
        used = self.bands * self.rows
        rows = signatures[:, :used].reshape(len(signatures), self.bands, self.rows)
        mixed = (rows.astype(np.uint64) * self._multipliers).sum(axis=2, dtype=np.uint64)
        return mixed + self._offsets

    def query(self, signature: np.ndarray) -> int | None:
        """Index of the most similar indexed document with estimated Jaccard >= threshold."""
        keys = self._band_keys(np.asarray(signature, dtype=np.uint32)[None, :])[0]
        lo = np.searchsorted(self._keys, keys, side="left")
        hi = np.searchsorted(self._keys, keys, side="right")
        if not (hi > lo).any():
            return None
        candidates = np.unique(
            np.concatenate([self._docs[i:j] for i, j in zip(lo, hi, strict=True)])
        )
        similarity = (self.signatures[candidates] == signature).mean(axis=1)
        best = int(np.argmax(similarity))
        return int(candidates[best]) if similarity[best] >= self.threshold else None


class Decontaminator:
    """Flags a training document that duplicates a validation document, exactly (modulo
    whitespace) or nearly (estimated Jaccard of n-gram shingles >= threshold). Picklable."""

    def __init__(
        self,
        validation_texts: Iterable[str],
        threshold: float = THRESHOLD,
        num_perm: int = NUM_PERM,
        ngram: int = NGRAM,
        seed: int = SEED,
    ):
        self.num_perm, self.ngram, self.seed = num_perm, ngram, seed
        self.exact: set[bytes] = set()
        signatures = []
        for text in validation_texts:
            self.exact.add(normalized_hash(text))
            signatures.append(self.signature(text))
        self.index = NearDuplicateIndex(
            np.array(signatures, dtype=np.uint32).reshape(-1, num_perm), threshold
        )

    def signature(self, text: str) -> np.ndarray:
        return minhash(text, self.num_perm, self.ngram, self.seed)

    def check(self, text: str) -> Literal["exact", "near"] | None:
        if normalized_hash(text) in self.exact:
            return "exact"
        if len(self.index) and self.index.query(self.signature(text)) is not None:
            return "near"
        return None
