"""Writing a pool's streams: the training documents of every part concatenated, exact repeats
dropped, shuffled once at document level; and the validation counts meta.json records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from datamodules.dedup import first_occurrences

GATHER_BLOCK = 1 << 24  # tokens per block when writing the shuffled stream


def gathered(
    tokens: np.ndarray, starts: np.ndarray, lengths: np.ndarray, docs: np.ndarray
) -> Iterator[np.ndarray]:
    """The tokens of documents `docs`, in that order, in blocks of about GATHER_BLOCK tokens."""
    for block in np.array_split(docs, max(1, int(lengths[docs].sum() // GATHER_BLOCK))):
        index = np.repeat(
            starts[block] - np.cumsum(np.concatenate([[0], lengths[block][:-1]])),
            lengths[block],
        )
        yield tokens[index + np.arange(len(index))]


def write_shuffled_stream(
    source: str,
    parts: list[Path],
    stats: list[dict],
    lang_id: dict[str, int],
    languages: list[str],
    dtype: np.dtype,
    vocab_size: int,
    work: Path,
    rng: np.random.Generator,
) -> tuple[dict, np.ndarray, int]:
    """Concatenate the parts, drop documents whose normalised text an earlier one (in part
    order, so whatever the number of workers) already has, and write the rest in one seeded
    random order. Returns the stream's counts, its unigram counts and the repeats dropped."""
    lengths, doc_langs, digests = [], [], []
    unigram = np.zeros(vocab_size, dtype=np.int64)
    unshuffled = work / f"{source}.unshuffled"
    with open(unshuffled, "wb") as raw:
        for part, part_stats in zip(parts, stats, strict=True):
            with np.load(part.with_suffix(".npz")) as arrays:
                arrays["tokens"].astype(dtype).tofile(raw)
                lengths.append(arrays["lengths"])
                digests.append(arrays["digests"])
                unigram += arrays["unigram"]
                names = part_stats["languages"]
                doc_langs.append(
                    np.asarray([lang_id[names[i]] for i in arrays["languages"]], dtype=np.uint16)
                )
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    doc_langs = np.concatenate(doc_langs) if doc_langs else np.zeros(0, np.uint16)
    if not len(lengths):
        unshuffled.unlink()
        return {"documents": 0, "tokens": 0, "by_language": {}}, unigram, 0
    keep = first_occurrences(np.concatenate(digests))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    tokens = np.memmap(unshuffled, dtype=dtype, mode="r")
    for block in gathered(tokens, starts, lengths, np.flatnonzero(~keep)):
        unigram -= np.bincount(block, minlength=vocab_size)
    # Drawn over every document, then filtered: a repeat's removal does not reorder the others.
    order = rng.permutation(len(lengths))
    order = order[keep[order]]
    with open(work / f"{source}.bin", "wb") as stream:
        for block in gathered(tokens, starts, lengths, order):
            stream.write(block.tobytes())
    del tokens
    unshuffled.unlink()
    lengths, doc_langs = lengths[order], doc_langs[order]
    np.save(work / f"{source}_docs.npy", np.concatenate([[0], np.cumsum(lengths)]))
    np.save(work / f"{source}_lang.npy", doc_langs)
    by_language = defaultdict(lambda: {"documents": 0, "tokens": 0})
    per_lang_tokens = np.bincount(doc_langs, weights=lengths, minlength=len(languages))
    per_lang_docs = np.bincount(doc_langs, minlength=len(languages))
    for i, name in enumerate(languages):
        if per_lang_docs[i]:
            by_language[name] = {
                "documents": int(per_lang_docs[i]),
                "tokens": int(per_lang_tokens[i]),
            }
    meta = {
        "documents": int(len(lengths)),
        "tokens": int(lengths.sum()),
        "by_language": dict(by_language),
    }
    return meta, unigram, int((~keep).sum())


def validation_meta(val, languages: list[str], val_lang: np.ndarray) -> dict:
    """Validation counts; `tokens` are the scored ones (document separators excluded)."""
    lengths = val["lengths"]
    doc_of_token = np.repeat(np.arange(len(lengths)), lengths)
    lang_of_token = val_lang[doc_of_token]
    scored = val["bytes"] > 0  # every text token covers at least one byte, separators none
    by_language = {}
    for i, name in enumerate(languages):
        mine = lang_of_token == i
        if not mine.any():
            continue
        by_language[name] = {
            "documents": int((val_lang == i).sum()),
            "tokens": int((mine & scored).sum()),
            "chars": int(val["chars"][mine].sum(dtype=np.int64)),
            "bytes": int(val["bytes"][mine].sum(dtype=np.int64)),
        }
    return {
        "documents": int(len(lengths)),
        "tokens": int(scored.sum()),
        "chars": int(val["chars"].sum(dtype=np.int64)),
        "bytes": int(val["bytes"].sum(dtype=np.int64)),
        "by_language": by_language,
    }
