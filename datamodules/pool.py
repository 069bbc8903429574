"""A prepared token pool on disk, memory-mapped: what every run reads, from 6M to 128B tokens.

Layout of a pool folder (built by `datamodules.prepare`, renamed into place only when complete,
so a pool folder is always whole and never rewritten):
  meta.json                 counts per source and language, decontamination, tokenizer hash
  tokenizer.json
  code.bin, nl.bin          training streams `<eos> doc <eos> doc ...`, documents in the pool's
                            one shuffled order (nl.bin only when NL text was given)
  code_docs.npy, nl_docs.npy    document index: start offset of each document (+ the end)
  code_lang.npy, nl_lang.npy    language id of each document (names in meta["languages"])
  val.bin, val_docs.npy, val_lang.npy   the code validation stream, in source order
  val_chars.bin, val_bytes.bin  Unicode characters and UTF-8 bytes each validation token covers
                                (0 for the separators, which are never scored)
  unigram_code.npy          how often each token id occurs in code.bin (int64, one per id),
                            counted while the pool is written (pools made before it lack it)
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from datamodules.tokenizer import load_tokenizer, tokenizer_hash

POOL_FORMAT = 2
SOURCES = ("code", "nl")
COUNT_CHUNK = 1 << 24  # tokens counted at once when a pool has no unigram_code.npy


class PoolError(ValueError):
    """A pool folder is missing, incomplete, of another format, or used with another tokenizer."""


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


class TokenPool:
    """Read-only view of a pool folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.exists():
            raise PoolError(
                f"{self.path} is not a token pool (no meta.json); build one with "
                "`python -m datamodules prepare ... --out DIR`"
            )
        self.meta = json.loads(meta_file.read_text())
        if self.meta.get("format") != POOL_FORMAT:
            raise PoolError(
                f"{self.path} has pool format {self.meta.get('format')}; this code reads format "
                f"{POOL_FORMAT}: prepare the pool again"
            )
        self.dtype = np.dtype(self.meta["dtype"])

    def _memmap(self, name: str, dtype: np.dtype) -> np.ndarray:
        return np.memmap(self.path / name, dtype=dtype, mode="r")

    def stream(self, source: str) -> np.ndarray | None:
        """The training stream of `source` ("code" or "nl"), or None if the pool has none."""
        if source not in SOURCES:
            raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
        if not self.meta["train"].get(source, {}).get("tokens"):
            return None
        return self._memmap(f"{source}.bin", self.dtype)

    def documents(self, source: str) -> np.ndarray:
        """Start offsets of the documents of `source` ("code", "nl" or "val"), plus the end."""
        return np.load(self.path / f"{source}_docs.npy", mmap_mode="r")

    def document_languages(self, source: str) -> np.ndarray:
        return np.load(self.path / f"{source}_lang.npy", mmap_mode="r")

    @cached_property
    def val_tokens(self) -> np.ndarray:
        return self._memmap("val.bin", self.dtype)

    @cached_property
    def val_chars(self) -> np.ndarray:
        return self._memmap("val_chars.bin", np.dtype(np.uint16))

    @cached_property
    def val_bytes(self) -> np.ndarray:
        return self._memmap("val_bytes.bin", np.dtype(np.uint16))

    @cached_property
    def val_token_languages(self) -> np.ndarray:
        """Language id of each validation token (its document's language)."""
        starts = self.documents("val")
        return np.repeat(self.document_languages("val"), np.diff(starts)).astype(np.int64)

    @property
    def languages(self) -> list[str]:
        return list(self.meta["languages"])

    @property
    def val_languages(self) -> list[str]:
        """Languages present in the validation set, the ones per-language BPC is reported for."""
        return sorted(self.meta["val"]["by_language"])

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.path / "tokenizer.json")

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.meta["eos_id"])

    def check_tokenizer(self, tokenizer_file: str | Path) -> None:
        """Refuse a pool made with another tokenizer than the one the user names."""
        given = tokenizer_hash(load_tokenizer(tokenizer_file))
        if given != self.meta["tokenizer_hash"]:
            raise PoolError(
                f"the pool {self.path} was tokenized with tokenizer {self.meta['tokenizer_hash']}, "
                f"but {tokenizer_file} is {given}; prepare the pool with that tokenizer "
                "(--tokenizer) or drop data.tokenizer"
            )


def code_unigram_counts(pool: TokenPool) -> np.ndarray:
    """How often each token id occurs in the code training stream. Read from the file prepare
    writes; a pool made before it existed is counted here chunk by chunk, since a stream of
    billions of tokens cannot be copied into memory at once."""
    if "unigram_counts" in pool.meta:
        return np.load(pool.path / pool.meta["unigram_counts"])
    counts = np.zeros(pool.vocab_size, dtype=np.int64)
    code = pool.stream("code")
    for start in range(0, 0 if code is None else len(code), COUNT_CHUNK):
        counts += np.bincount(code[start : start + COUNT_CHUNK], minlength=pool.vocab_size)
    return counts


def unigram_bits_per_char(pool: TokenPool) -> float:
    """BPC of a unigram model of the code training tokens (add-one smoothed): the bar to beat."""
    counts = code_unigram_counts(pool).astype(np.float64) + 1
    log_p = np.log(counts / counts.sum())
    scored = pool.val_tokens[pool.val_tokens != pool.eos_id]
    return float(-log_p[scored].sum() / np.log(2) / pool.val_chars.sum(dtype=np.int64))
