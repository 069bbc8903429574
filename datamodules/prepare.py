"""Build a token pool: read sources, train or load the tokenizer, decontaminate, tokenize in
parallel, shuffle once, and rename the finished folder into place.

Work happens in `<out>.partial/`. Every step leaves a file behind (the tokenizer, the encoded
validation set, one part per input shard), so an interrupted prepare started again with the same
arguments continues where it stopped; different arguments are refused rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from datamodules.dedup import Decontaminator
from datamodules.pool import POOL_FORMAT, PoolError, TokenPool, token_dtype
from datamodules.sources import (
    Columns,
    Document,
    Shard,
    SkipLog,
    is_validation,
    list_shards_many,
    read_shard,
    stdlib_prose_documents,
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

STDLIB = "stdlib"  # the embedded default: this Python installation's sources and prose
STDLIB_SHARD_FILES = 500
GATHER_BLOCK = 1 << 24  # tokens per block when writing the shuffled stream


@dataclass(frozen=True)
class PrepareSpec:
    """Everything that shapes a pool; a resumed prepare must be given the same."""

    code: tuple[str, ...]
    nl: tuple[str, ...] = ()
    val: tuple[str, ...] = ()  # empty: hold out `val_fraction` of the code files by path hash
    val_fraction: float = 0.02
    vocab_size: int | None = 65536
    tokenizer: str | None = None  # a tokenizer.json to use instead of training one
    tokenizer_sample_bytes: int = 1 << 30
    lang_weights: dict[str, float] = field(default_factory=dict)
    near_dup_threshold: float = 0.8
    seed: int = 1234
    text_columns: tuple[str, ...] = Columns().text
    language_columns: tuple[str, ...] = Columns().language
    path_columns: tuple[str, ...] = Columns().path

    def __post_init__(self) -> None:
        if not self.code:
            raise PoolError(
                "no code sources given (--code PATH; `stdlib` for the embedded default)"
            )
        if (self.vocab_size is None) == (self.tokenizer is None):
            raise PoolError("give exactly one of --vocab-size (train a BPE) or --tokenizer FILE")
        for language, weight in self.lang_weights.items():
            if not 0.0 <= weight <= 1.0:
                raise PoolError(
                    f"language weight {language}={weight}: weights are the kept share of a "
                    "language's documents, between 0 and 1"
                )
        if not self.val and not 0.0 < self.val_fraction < 1.0:
            raise PoolError(
                f"val_fraction={self.val_fraction}: with no --val set it must be in (0, 1)"
            )

    @property
    def columns(self) -> Columns:
        return Columns(self.text_columns, self.language_columns, self.path_columns)

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))


# ---- reading ---------------------------------------------------------------------------------


def shards_for(specs: tuple[str, ...], source: str) -> list[Shard]:
    """Input shards of one source. `stdlib` names the embedded default's code or prose."""
    if specs == (STDLIB,):
        if source == "nl":
            return [Shard(kind="stdlib-prose", paths=(), root=str(stdlib_root()))]
        return stdlib_code_shards()
    if STDLIB in specs:
        raise PoolError("`stdlib` cannot be combined with other sources")
    return list_shards_many(list(specs))


def stdlib_code_shards() -> list[Shard]:
    root = stdlib_root()
    skipped = {"site-packages", "dist-packages", "__pycache__"}
    files = [
        p.relative_to(root).as_posix()
        for p in sorted(root.rglob("*.py"))
        if not skipped.intersection(p.relative_to(root).parts)
    ]
    return [
        Shard(kind="files", paths=tuple(files[i : i + STDLIB_SHARD_FILES]), root=str(root))
        for i in range(0, len(files), STDLIB_SHARD_FILES)
    ]


def read_documents(
    shard: Shard, spec: PrepareSpec, skips: SkipLog, source: str
) -> Iterator[Document]:
    if shard.kind == "stdlib-prose":
        yield from stdlib_prose_documents(Path(shard.root), skips)
        return
    default_language = "English" if source == "nl" else "unknown"
    yield from read_shard(shard, spec.columns, skips, default_language=default_language)


def stable_fraction(text: str) -> float:
    """A document's fixed point in [0, 1): the same text always gets the same draw."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def language_weight(spec: PrepareSpec, language: str) -> float:
    weights = {k.lower(): v for k, v in spec.lang_weights.items()}
    return weights.get(language.lower(), 1.0)


def held_out(doc: Document, spec: PrepareSpec, source: str) -> bool:
    """In split mode (no --val), the code files the path hash assigns to validation; the embedded
    NL prose of those same modules is held out too, so their docstrings never leak into training."""
    if spec.val:
        return False
    if source == "code" or spec.nl == (STDLIB,):
        return is_validation(doc.path.partition("#")[0], spec.val_fraction)
    return False


# ---- steps -----------------------------------------------------------------------------------


def collect_validation(spec: PrepareSpec, skips: SkipLog) -> list[Document]:
    if spec.val:
        return [
            d for s in shards_for(spec.val, "val") for d in read_documents(s, spec, skips, "code")
        ]
    return [
        d
        for s in shards_for(spec.code, "code")
        for d in read_documents(s, spec, skips, "code")
        if is_validation(d.path, spec.val_fraction)
    ]


def tokenizer_sample(spec: PrepareSpec, shards: dict[str, list[Shard]]) -> Iterator[str]:
    """Training texts for the BPE: spread over the shards (in a seeded order, so one language's
    shards do not fill it) and over code and NL equally, at most `tokenizer_sample_bytes`."""
    sources = [s for s in ("code", "nl") if shards[s]]
    rng = np.random.default_rng(spec.seed)
    skips = SkipLog()
    for source in sources:
        budget = spec.tokenizer_sample_bytes // len(sources)
        order = rng.permutation(len(shards[source]))
        per_shard = max(budget // len(order), 1 << 20)
        for index in order:
            taken = 0
            for doc in read_documents(shards[source][index], spec, skips, source):
                if held_out(doc, spec, source) or stable_fraction(doc.text) >= language_weight(
                    spec, doc.language
                ):
                    continue
                yield doc.text
                size = len(doc.text.encode("utf-8", "surrogatepass"))
                taken, budget = taken + size, budget - size
                if taken >= per_shard or budget <= 0:
                    break
            if budget <= 0:
                break


def make_tokenizer(spec: PrepareSpec, shards: dict[str, list[Shard]], work: Path) -> Tokenizer:
    path = work / "tokenizer.json"
    if path.exists():
        return load_tokenizer(path)
    if spec.tokenizer:
        tokenizer = load_tokenizer(spec.tokenizer)
    else:
        print(f"training a byte-level BPE with {spec.vocab_size} entries on a sample of the pool")
        tokenizer = train_bpe(tokenizer_sample(spec, shards), spec.vocab_size)
    tokenizer.save(str(path.with_suffix(".tmp")))
    os.replace(path.with_suffix(".tmp"), path)
    return tokenizer


def encode_validation(docs: list[Document], tokenizer: Tokenizer, work: Path) -> None:
    """The validation stream with the characters and bytes each token covers (for exact BPC)."""
    target = work / "val.npz"
    if target.exists():
        return
    eos = tokenizer.token_to_id(EOS)
    byte_lengths = token_byte_lengths(tokenizer)
    ids, chars, nbytes, lengths = [], [], [], []
    for doc, enc in zip(docs, tokenizer.encode_batch([d.text for d in docs]), strict=True):
        doc_ids = np.asarray(enc.ids, dtype=np.int64)
        ids += [[eos], doc_ids]
        chars += [[0], chars_per_token(doc.text, doc_ids, byte_lengths)]
        nbytes += [[0], byte_lengths[doc_ids]]
        lengths.append(len(doc_ids) + 1)
    dtype = token_dtype(tokenizer.get_vocab_size())
    arrays = {
        "tokens": np.concatenate(ids or [[]]).astype(dtype),
        "chars": np.concatenate(chars or [[]]).astype(np.uint16),
        "bytes": np.concatenate(nbytes or [[]]).astype(np.uint16),
        "lengths": np.asarray(lengths, dtype=np.int64),
        "languages": np.asarray([d.language for d in docs], dtype=object).astype(str),
    }
    with open(target.with_suffix(".tmp"), "wb") as out:
        np.savez(out, **arrays)
    os.replace(target.with_suffix(".tmp"), target)


# Per-process state of the tokenizing workers (set once by `_init_worker`).
_WORKER: dict = {}


def _init_worker(spec: PrepareSpec, tokenizer_json: str, decontaminator: Decontaminator) -> None:
    _WORKER.update(
        spec=spec, tokenizer=Tokenizer.from_str(tokenizer_json), decontaminator=decontaminator
    )
    _WORKER["tokenizer"].encode_special_tokens = True


def encode_part(source: str, shard: Shard, part: Path) -> None:
    """Tokenize one shard's kept training documents into a part file plus its counts (JSON, the
    done-marker, written last)."""
    spec, tokenizer = _WORKER["spec"], _WORKER["tokenizer"]
    decontaminator: Decontaminator = _WORKER["decontaminator"]
    skips = SkipLog()
    counts: Counter = Counter()
    kept: list[Document] = []
    for doc in read_documents(shard, spec, skips, source):
        if held_out(doc, spec, source):
            counts["held_out_for_validation"] += 1
        elif stable_fraction(doc.text) >= language_weight(spec, doc.language):
            counts["dropped_by_language_weight"] += 1
        elif (match := decontaminator.check(doc.text)) is not None:
            counts[f"{match}_duplicates_of_validation"] += 1
        else:
            kept.append(doc)
    eos = tokenizer.token_to_id(EOS)
    dtype = token_dtype(tokenizer.get_vocab_size())
    encodings = tokenizer.encode_batch([d.text for d in kept])
    pieces = [np.asarray([eos] + enc.ids, dtype=dtype) for enc in encodings]
    languages = sorted({d.language for d in kept})
    with open(part.with_suffix(".tmp"), "wb") as out:
        np.savez(
            out,
            tokens=np.concatenate(pieces) if pieces else np.zeros(0, dtype),
            lengths=np.asarray([len(p) for p in pieces], dtype=np.int64),
            languages=np.asarray([languages.index(d.language) for d in kept], dtype=np.int64),
        )
    os.replace(part.with_suffix(".tmp"), part.with_suffix(".npz"))
    stats = {"languages": languages, "counts": dict(counts), "skips": skips.to_json()}
    part.with_suffix(".json.tmp").write_text(json.dumps(stats))
    os.replace(part.with_suffix(".json.tmp"), part.with_suffix(".json"))


# ---- the whole build -------------------------------------------------------------------------


def prepare(
    spec: PrepareSpec, out: str | Path, workers: int | None = None, progress: bool = True
) -> TokenPool:
    """Build the pool described by `spec` into `out` (resuming `<out>.partial` if present)."""
    out = Path(out)
    if (out / "meta.json").exists():
        raise PoolError(
            f"{out} is a finished pool; it is never rewritten in place (choose another --out)"
        )
    if out.exists():
        raise PoolError(f"{out} exists and is not a pool; choose another --out")
    work = out.with_name(out.name + ".partial")
    (work / "parts").mkdir(parents=True, exist_ok=True)
    check_same_spec(spec, work)

    shards = {
        source: shards_for(specs, source) if specs else []
        for source, specs in (("code", spec.code), ("nl", spec.nl))
    }
    skips = SkipLog()
    val_docs = collect_validation(spec, skips)
    if not val_docs:
        raise PoolError("the validation set is empty: give --val, or a larger --val-fraction")
    tokenizer = make_tokenizer(spec, shards, work)
    encode_validation(val_docs, tokenizer, work)
    decontaminator = Decontaminator([d.text for d in val_docs], threshold=spec.near_dup_threshold)
    del val_docs

    jobs = [
        (source, shard, work / "parts" / f"{source}-{i:06d}")
        for source in ("code", "nl")
        for i, shard in enumerate(shards[source])
        if not (work / "parts" / f"{source}-{i:06d}.json").exists()
    ]
    total = len(shards["code"]) + len(shards["nl"])
    workers = min(workers or os.cpu_count() or 1, max(len(jobs), 1))
    init_args = (spec, tokenizer.to_str(), decontaminator)
    with tqdm(
        total=total, initial=total - len(jobs), desc="tokenizing shards", disable=not progress
    ) as bar:
        if workers == 1:
            _init_worker(*init_args)
            for job in jobs:
                encode_part(*job)
                bar.update()
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, context, _init_worker, init_args) as pool:
                for future in [pool.submit(encode_part, *job) for job in jobs]:
                    future.result()
                    bar.update()
    return finalize(spec, shards, tokenizer, work, out, skips)


def check_same_spec(spec: PrepareSpec, work: Path) -> None:
    recorded = work / "spec.json"
    wanted = spec.to_json()
    if recorded.exists():
        if json.loads(recorded.read_text()) != wanted:
            raise PoolError(
                f"{work} holds an interrupted prepare with other arguments; run it again with the "
                f"arguments in {recorded}, or delete {work} to start over"
            )
    else:
        recorded.write_text(json.dumps(wanted, indent=2))


def finalize(
    spec: PrepareSpec,
    shards: dict[str, list[Shard]],
    tokenizer: Tokenizer,
    work: Path,
    out: Path,
    skips: SkipLog,
) -> TokenPool:
    """Shuffle each source once at document level, write the streams, meta.json, and publish."""
    val = np.load(work / "val.npz")
    languages = set(val["languages"].tolist())
    parts = {s: [work / "parts" / f"{s}-{i:06d}" for i in range(len(shards[s]))] for s in shards}
    stats = {s: [json.loads(p.with_suffix(".json").read_text()) for p in parts[s]] for s in parts}
    for source_stats in stats.values():
        for part_stats in source_stats:
            languages.update(part_stats["languages"])
            skips.merge(SkipLog.from_json(part_stats["skips"]))
    languages = sorted(languages)
    lang_id = {name: i for i, name in enumerate(languages)}
    dtype = token_dtype(tokenizer.get_vocab_size())

    train_meta, removed = {}, Counter()
    for seed_offset, source in enumerate(("code", "nl")):
        for part_stats in stats[source]:
            removed.update(part_stats["counts"])
        train_meta[source] = write_shuffled_stream(
            source,
            parts[source],
            stats[source],
            lang_id,
            languages,
            dtype,
            work,
            np.random.default_rng([spec.seed, seed_offset]),
        )

    val_lengths = val["lengths"]
    np.asarray(val["tokens"], dtype=dtype).tofile(work / "val.bin")
    val["chars"].tofile(work / "val_chars.bin")
    val["bytes"].tofile(work / "val_bytes.bin")
    np.save(work / "val_docs.npy", np.concatenate([[0], np.cumsum(val_lengths)]))
    val_lang = np.asarray([lang_id[x] for x in val["languages"].tolist()], dtype=np.uint16)
    np.save(work / "val_lang.npy", val_lang)
    tokenizer.save(str(work / "final-tokenizer.json"))

    meta = {
        "format": POOL_FORMAT,
        "dtype": dtype.name,
        "vocab_size": tokenizer.get_vocab_size(),
        "eos_id": tokenizer.token_to_id(EOS),
        "tokenizer_hash": tokenizer_hash(tokenizer),
        "languages": languages,
        "train": train_meta,
        "val": validation_meta(val, languages, val_lang),
        "removed": {
            "exact_duplicates_of_validation": removed["exact_duplicates_of_validation"],
            "near_duplicates_of_validation": removed["near_duplicates_of_validation"],
            "dropped_by_language_weight": removed["dropped_by_language_weight"],
            "held_out_for_validation": removed["held_out_for_validation"],
            "near_dup_threshold": spec.near_dup_threshold,
        },
        "skipped": skips.to_json(),
        "spec": spec.to_json(),
        "python": sys.version.split()[0] if STDLIB in spec.code else None,
    }
    for name in ("parts", "val.npz", "tokenizer.json", "spec.json"):
        target = work / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    os.replace(work / "final-tokenizer.json", work / "tokenizer.json")
    (work / "meta.json").write_text(json.dumps(meta, indent=2))
    os.replace(work, out)
    if skips.total():
        print(f"skipped while reading: {skips.summary()}", file=sys.stderr)
    return TokenPool(out)


def write_shuffled_stream(
    source: str,
    parts: list[Path],
    stats: list[dict],
    lang_id: dict[str, int],
    languages: list[str],
    dtype: np.dtype,
    work: Path,
    rng: np.random.Generator,
) -> dict:
    """Concatenate the parts, then write their documents in one seeded random order."""
    lengths, doc_langs = [], []
    unshuffled = work / f"{source}.unshuffled"
    with open(unshuffled, "wb") as raw:
        for part, part_stats in zip(parts, stats, strict=True):
            with np.load(part.with_suffix(".npz")) as arrays:
                arrays["tokens"].astype(dtype).tofile(raw)
                lengths.append(arrays["lengths"])
                names = part_stats["languages"]
                doc_langs.append(
                    np.asarray([lang_id[names[i]] for i in arrays["languages"]], dtype=np.uint16)
                )
    lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
    doc_langs = np.concatenate(doc_langs) if doc_langs else np.zeros(0, np.uint16)
    if not len(lengths):
        unshuffled.unlink()
        return {"documents": 0, "tokens": 0, "by_language": {}}
    starts = np.concatenate([[0], np.cumsum(lengths)])
    order = rng.permutation(len(lengths))
    tokens = np.memmap(unshuffled, dtype=dtype, mode="r")
    with open(work / f"{source}.bin", "wb") as stream:
        for block in np.array_split(order, max(1, int(starts[-1] // GATHER_BLOCK))):
            index = np.repeat(
                starts[block] - np.cumsum(np.concatenate([[0], lengths[block][:-1]])),
                lengths[block],
            )
            stream.write(tokens[index + np.arange(len(index))].tobytes())
    del tokens
    unshuffled.unlink()
    np.save(work / f"{source}_docs.npy", np.concatenate([[0], np.cumsum(lengths[order])]))
    np.save(work / f"{source}_lang.npy", doc_langs[order])
    by_language = defaultdict(lambda: {"documents": 0, "tokens": 0})
    per_lang_tokens = np.bincount(doc_langs, weights=lengths, minlength=len(languages))
    per_lang_docs = np.bincount(doc_langs, minlength=len(languages))
    for i, name in enumerate(languages):
        if per_lang_docs[i]:
            by_language[name] = {
                "documents": int(per_lang_docs[i]),
                "tokens": int(per_lang_tokens[i]),
            }
    return {
        "documents": int(len(lengths)),
        "tokens": int(starts[-1]),
        "by_language": dict(by_language),
    }


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
