"""A token pool on disk: the shuffled training stream and the validation set, memory-mapped.

Layout of a pool folder (written to a temporary folder, then renamed, so a pool is complete or
absent, never half-written):
  meta.json          counts, dtype, tokenizer hash, how the pool was made
  tokenizer.json
  train_tokens.bin   one stream: <eos> doc <eos> doc ... in the pool's one shuffled order
  val_tokens.bin     the same for validation documents (unshuffled)
  val_chars.bin      Unicode characters each validation token covers (0 for <eos>)
  val_bytes.bin      UTF-8 bytes each validation token covers (0 for <eos>)
A run with budget D trains on a prefix of train_tokens.bin, so budgets are nested.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from datamodules.sources import (
    Document,
    content_hash,
    is_validation,
    stdlib_code_documents,
    stdlib_root,
)
from datamodules.tokenizer import (
    EOS,
    chars_per_token,
    load_tokenizer,
    token_byte_lengths,
    tokenizer_hash,
    train_bpe,
)

POOL_FORMAT = 1
ENCODE_CHUNK = 512  # documents per encode_batch call (tokenizers parallelises inside it)


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


class TokenPool:
    """Read-only view of a pool folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_file = self.path / "meta.json"
        if not meta_file.exists():
            raise FileNotFoundError(f"{self.path} is not a token pool (no meta.json)")
        self.meta = json.loads(meta_file.read_text())
        if self.meta.get("format") != POOL_FORMAT:
            raise ValueError(
                f"{self.path} has pool format {self.meta.get('format')}, this code reads "
                f"{POOL_FORMAT}; rebuild the pool"
            )
        self.dtype = np.dtype(self.meta["dtype"])

    def _array(self, name: str, dtype: np.dtype) -> np.ndarray:
        return np.memmap(self.path / name, dtype=dtype, mode="r")

    @cached_property
    def train_tokens(self) -> np.ndarray:
        return self._array("train_tokens.bin", self.dtype)

    @cached_property
    def val_tokens(self) -> np.ndarray:
        return self._array("val_tokens.bin", self.dtype)

    @cached_property
    def val_chars(self) -> np.ndarray:
        return self._array("val_chars.bin", np.dtype(np.uint16))

    @cached_property
    def val_bytes(self) -> np.ndarray:
        return self._array("val_bytes.bin", np.dtype(np.uint16))

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return load_tokenizer(self.path / "tokenizer.json")

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def eos_id(self) -> int:
        return int(self.meta["eos_id"])


def write_pool(
    out_dir: str | Path,
    tokenizer: Tokenizer,
    train_docs: Sequence[Document],
    val_docs: Sequence[Document],
    info: dict,
) -> TokenPool:
    """Tokenize documents into a new pool folder; `train_docs` must already be in pool order."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists; a finished pool is never rewritten in place")
    tmp = out_dir.with_name(f"{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    vocab_size = tokenizer.get_vocab_size()
    dtype = token_dtype(vocab_size)
    eos_id = tokenizer.token_to_id(EOS)
    byte_lengths = token_byte_lengths(tokenizer)

    with open(tmp / "train_tokens.bin", "wb") as out:
        train_count = _write_stream(out, tokenizer, train_docs, eos_id, dtype)

    val_ids, val_chars, val_bytes = [], [], []
    for start in range(0, len(val_docs), ENCODE_CHUNK):
        chunk = val_docs[start : start + ENCODE_CHUNK]
        for doc, enc in zip(chunk, tokenizer.encode_batch([d.text for d in chunk]), strict=True):
            ids = np.asarray(enc.ids, dtype=np.int64)
            val_ids += [[eos_id], ids]
            val_chars += [[0], chars_per_token(doc.text, ids, byte_lengths)]
            val_bytes += [[0], byte_lengths[ids]]
    val_tokens = np.concatenate(val_ids).astype(dtype)
    val_tokens.tofile(tmp / "val_tokens.bin")
    np.concatenate(val_chars).astype(np.uint16).tofile(tmp / "val_chars.bin")
    np.concatenate(val_bytes).astype(np.uint16).tofile(tmp / "val_bytes.bin")
    tokenizer.save(str(tmp / "tokenizer.json"))

    meta = {
        "format": POOL_FORMAT,
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "eos_id": eos_id,
        "tokenizer_hash": tokenizer_hash(tokenizer),
        "train": {"documents": len(train_docs), "tokens": train_count},
        "val": {
            "documents": len(val_docs),
            "tokens": int(len(val_tokens) - len(val_docs)),  # scored tokens: separators excluded
            "chars": sum(len(d.text) for d in val_docs),
            "bytes": sum(len(d.text.encode("utf-8")) for d in val_docs),
        },
        **info,
    }
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out_dir)
    return TokenPool(out_dir)


def _write_stream(out, tokenizer: Tokenizer, docs: Sequence[Document], eos_id: int, dtype) -> int:
    count = 0
    for start in range(0, len(docs), ENCODE_CHUNK):
        encodings = tokenizer.encode_batch([d.text for d in docs[start : start + ENCODE_CHUNK]])
        pieces = [np.array([eos_id] + enc.ids, dtype=dtype) for enc in encodings]
        block = np.concatenate(pieces)
        block.tofile(out)
        count += len(block)
    return count


def stdlib_pool_dir(cache_dir: str | Path, vocab_size: int, val_fraction: float, seed: int) -> Path:
    """Cache folder of the embedded default pool; the name changes with anything that shapes it."""
    key = json.dumps([POOL_FORMAT, sys.version, sys.prefix, vocab_size, val_fraction, seed])
    return Path(cache_dir) / f"stdlib-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def build_stdlib_pool(
    out_dir: str | Path, vocab_size: int, val_fraction: float, seed: int, root: Path | None = None
) -> TokenPool:
    """The embedded default: standard-library code, split by path hash, train deduplicated."""
    root = root or stdlib_root()
    docs = list(stdlib_code_documents(root))
    val = [d for d in docs if is_validation(d.path, val_fraction)]
    seen = {content_hash(d.text) for d in val}  # also drops train copies of validation files
    train = []
    for doc in docs:
        digest = content_hash(doc.text)
        if digest not in seen and not is_validation(doc.path, val_fraction):
            seen.add(digest)
            train.append(doc)
    duplicates = len(docs) - len(val) - len(train)
    order = np.random.default_rng(seed).permutation(len(train))
    train = [train[i] for i in order]
    tokenizer = train_bpe((d.text for d in train), vocab_size)
    info = {
        "source": "python-stdlib",
        "root": str(root),
        "seed": seed,
        "val_fraction": val_fraction,
        "train_exact_duplicates_removed": duplicates,
    }
    return write_pool(out_dir, tokenizer, train, val, info)


def unigram_bits_per_char(pool: TokenPool) -> float:
    """BPC of a unigram model of the training tokens (add-one smoothed): the bar a run must beat."""
    counts = np.bincount(pool.train_tokens, minlength=pool.vocab_size).astype(np.float64) + 1
    log_p = np.log(counts / counts.sum())
    scored = pool.val_tokens[pool.val_tokens != pool.eos_id]
    return float(-log_p[scored].sum() / np.log(2) / pool.val_chars.sum(dtype=np.int64))
