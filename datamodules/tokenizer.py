"""Byte-level BPE tokenizer and the exact character/byte accounting BPC needs.

Byte-level with no prefix space, so decode(encode(text)) == text for any string. The one
special token separates documents; it is never produced from text (a literal "<|endoftext|>"
inside a file is encoded as ordinary bytes), so every occurrence of its id is a boundary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from datamodules.sources import SourceError

EOS = "<|endoftext|>"
MIN_VOCAB = 258  # the 256 bytes, the separator and at least one merge


def train_bpe(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE with `vocab_size` entries (256 bytes + merges + the separator)."""
    if vocab_size < MIN_VOCAB:
        raise ValueError(
            f"vocab_size={vocab_size} is too small: byte-level BPE needs at least {MIN_VOCAB}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return prepare(tokenizer)


def prepare(tokenizer: Tokenizer) -> Tokenizer:
    """Settings every tokenizer here must have, also one loaded from a user's file."""
    if tokenizer.token_to_id(EOS) is None:
        raise ValueError(f"the tokenizer has no {EOS!r} token, which separates documents")
    tokenizer.encode_special_tokens = True
    return tokenizer


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A user's tokenizer.json; a missing or unreadable file, or one without the document
    separator, is a SourceError naming the file."""
    try:
        return prepare(Tokenizer.from_file(str(path)))
    except Exception as err:  # tokenizers raises bare Exceptions for unreadable files
        raise SourceError(
            f"{path}: cannot use it as the tokenizer ({err}); give a tokenizers-library "
            f"tokenizer.json that has the {EOS!r} token, or drop --tokenizer to train one"
        ) from err


def tokenizer_hash(tokenizer: Tokenizer) -> str:
    return hashlib.sha256(tokenizer.to_str().encode()).hexdigest()[:16]


def vocab_size(tokenizer: Tokenizer) -> int:
    """How many ids its tokens take: one more than the largest. A given tokenizer.json may leave
    ids unused, so this can exceed its number of entries; embeddings need this many rows."""
    return max(tokenizer.get_vocab(with_added_tokens=True).values()) + 1


def token_byte_lengths(tokenizer: Tokenizer) -> np.ndarray:
    """UTF-8 bytes each id stands for (0 for the separator and unused ids), indexed by id."""
    byte_of = {ch: b for b, ch in _byte_level_alphabet().items()}
    lengths = np.zeros(vocab_size(tokenizer), dtype=np.int64)
    for piece, idx in tokenizer.get_vocab().items():
        lengths[idx] = 0 if piece == EOS else sum(1 for ch in piece if ch in byte_of)
    return lengths


def _byte_level_alphabet() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character map used by ByteLevel pre-tokenization."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def chars_per_token(text: str, ids: np.ndarray, byte_lengths: np.ndarray) -> np.ndarray:
    """Unicode characters each token covers: a character belongs to the token holding its first
    byte, so the counts sum to len(text) exactly even where a token splits a character."""
    data = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    starts = np.concatenate([[0], np.cumsum((data & 0xC0) != 0x80)])  # chars begun before byte i
    ends = np.cumsum(byte_lengths[np.asarray(ids, dtype=np.int64)])
    if len(ends) and ends[-1] != len(data):
        raise ValueError(
            "token bytes do not add up to the text's bytes: tokenizer is not byte-level"
        )
    return np.diff(np.concatenate([[0], starts[ends]]))
