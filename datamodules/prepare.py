"""Build a token pool: read sources, train or load the tokenizer, decontaminate, tokenize in
parallel, drop exact repeats within each training source, shuffle once, and rename the finished
folder into place.

Work happens in `<out>.partial/`. Every step leaves a file behind (the tokenizer, the encoded
validation set, one part per input shard), so an interrupted prepare started again with the same
arguments continues where it stopped; different arguments are refused rather than mixed in.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import sys
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from datamodules.corpus import (
    CleanCorpus,
    clean_corpus,
    code_shards,
    prose_shards,
    read_corpus_shard,
)
from datamodules.dedup import Decontaminator, normalized_hash
from datamodules.installed import installed_files
from datamodules.languages import canonical_language, known_language, language_of_path
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
from datamodules.streams import validation_meta, write_shuffled_stream
from datamodules.tokenizer import (
    EOS,
    MIN_VOCAB,
    chars_per_token,
    load_tokenizer,
    token_byte_lengths,
    tokenizer_hash,
    train_bpe,
    vocab_size,
)
from datamodules.workers import in_processes

STDLIB = "stdlib"  # this Python installation's standard library: its sources and prose
INSTALLED = "installed"  # the embedded default: the standard library and every distribution
EMBEDDED = (STDLIB, INSTALLED)
# Bump when the same spec makes a different pool: it names the embedded default's cache and
# keeps a prepare from resuming a build an older version started.
PREPARE_VERSION = 5
STDLIB_SHARD_FILES = 500
# Fewer validation documents get a warning: n documents fix BPC to about DOCUMENT_SPREAD /
# sqrt(n) of itself, 5% at 25 (docs/data.md says why).
MIN_VAL_DOCUMENTS = 25
DOCUMENT_SPREAD = 0.25  # relative spread of bits per character from file to file


@dataclass(frozen=True)
class PrepareSpec:
    """Everything that shapes a pool; a resumed prepare must be given the same."""

    code: tuple[str, ...]
    nl: tuple[str, ...] = ()
    val: tuple[str, ...] = ()  # empty: hold out `val_fraction` of the code documents by name
    val_fraction: float = 0.02
    val_fraction_by_language: dict[str, float] = field(
        default_factory=dict
    )  # overrides, e.g. C=0.1
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
        if self.vocab_size is not None and self.vocab_size < MIN_VOCAB:
            raise PoolError(
                f"vocab_size={self.vocab_size}: a byte-level BPE needs at least {MIN_VOCAB} "
                "entries (the paper's is 65536)"
            )
        for language, weight in self.lang_weights.items():
            if not 0.0 <= weight <= 1.0:
                raise PoolError(
                    f"language weight {language}={weight}: weights are the kept share of a "
                    "language's documents, between 0 and 1"
                )
        if len(self.weights) < len(self.lang_weights):
            raise PoolError(
                f"--lang-weights {', '.join(self.lang_weights)}: some of these name the same "
                "language (names are compared as canonical languages, in any case); give each once"
            )
        if not 0.0 < self.near_dup_threshold <= 1.0:
            raise PoolError(
                f"near_dup_threshold={self.near_dup_threshold}: a Jaccard similarity in (0, 1]"
            )
        for language, share in self.val_fraction_by_language.items():
            if self.val or not 0.0 < share < 1.0 or not known_language(language):
                raise PoolError(
                    f"--val-fraction-by-language {language}={share}: a known language name and "
                    "a share in (0, 1), and only without --val (a --val set is used whole)"
                )
        if not self.val and not 0.0 < self.val_fraction < 1.0:
            raise PoolError(
                f"val_fraction={self.val_fraction}: with no --val set it must be in (0, 1)"
            )

    @cached_property
    def weights(self) -> dict[str, float]:
        """Language weights by lower-cased canonical name, the way documents' languages are
        matched: `html`, `htm` and `HTML` are one language."""
        return {canonical_language(k).lower(): v for k, v in self.lang_weights.items()}

    def val_fraction_for(self, language: str | None) -> float:
        """The share of `language`'s documents held out (small languages need a larger one to
        get a validation set that measures them)."""
        shares = {canonical_language(k): v for k, v in self.val_fraction_by_language.items()}
        return shares.get(canonical_language(language or ""), self.val_fraction)

    @property
    def columns(self) -> Columns:
        return Columns(self.text_columns, self.language_columns, self.path_columns)

    def to_json(self) -> dict:
        """The spec as recorded; a field added later is left out at its default, so the pools
        (and embedded cache keys) made before it keep their records."""
        record = json.loads(json.dumps(asdict(self)))
        if not record["val_fraction_by_language"]:
            del record["val_fraction_by_language"]
        return record


# ---- reading ---------------------------------------------------------------------------------


def shards_for(
    specs: tuple[str, ...], source: str, corpus: CleanCorpus | None = None
) -> list[Shard]:
    """Input shards of one source. `stdlib` names the standard library's code or prose,
    `installed` the cleaned corpus of everything installed (`corpus`)."""
    if specs == (STDLIB,):
        if source == "nl":
            return [Shard(kind="stdlib-prose", paths=(), root=str(stdlib_root()))]
        return stdlib_code_shards()
    if specs == (INSTALLED,):
        assert corpus is not None
        return prose_shards(corpus) if source == "nl" else code_shards(corpus)
    if set(EMBEDDED) & set(specs):
        raise PoolError("`stdlib` and `installed` cannot be combined with other sources")
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
    if (documents := read_corpus_shard(shard, skips)) is not None:
        yield from documents
        return
    default_language = "English" if source == "nl" else "unknown"
    yield from read_shard(shard, spec.columns, skips, default_language=default_language)


def stable_fraction(text: str) -> float:
    """A document's fixed point in [0, 1): the same text always gets the same draw."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def language_weight(spec: PrepareSpec, language: str) -> float:
    return spec.weights.get(language.lower(), 1.0)


def split_key(doc: Document, source: str) -> str:
    """What the split without --val hashes. A code document's own name: a source file's path,
    or `file#row=N` / `file#line=N` for a table row, so each row goes to validation or training,
    never both and never lost. Embedded prose by the module it came from (`pkg/mod.py`; pydoc
    topics `pydoc_data/topics.py#name` by that file), so held-out modules' docstrings leave
    training with their code."""
    return doc.path if source == "code" else doc.path.partition("#")[0]


def held_out(doc: Document, spec: PrepareSpec, source: str) -> bool:
    """In split mode (no --val), whether the document belongs to validation (code) or goes with
    a validation module (the embedded prose)."""
    if spec.val or (source == "nl" and spec.nl not in ((STDLIB,), (INSTALLED,))):
        return False
    key = split_key(doc, source)
    language = doc.language if source == "code" else language_of_path(key)
    return is_validation(key, spec.val_fraction_for(language))


# ---- steps -----------------------------------------------------------------------------------


def shard_validation(spec: PrepareSpec, shard: Shard) -> tuple[list[Document], SkipLog]:
    """One shard's validation documents: all of a --val shard; of a code shard (no --val), the
    ones `held_out` assigns to validation."""
    skips = SkipLog()
    docs = [
        d
        for d in read_documents(shard, spec, skips, "code")
        if spec.val or held_out(d, spec, "code")
    ]
    return docs, skips


def collect_validation(
    spec: PrepareSpec,
    shards: dict[str, list[Shard]],
    skips: SkipLog,
    workers: int,
    progress: bool,
) -> list[Document]:
    """The validation documents in shard order, shards read in parallel. Without --val these
    are the code shards, whose skipped documents the tokenizing workers count."""
    val_shards = shards_for(spec.val, "val") if spec.val else shards["code"]
    docs: list[Document] = []
    results = in_processes(shard_validation, [(spec, s) for s in val_shards], workers)
    for shard_docs, shard_skips in tqdm(
        results, total=len(val_shards), desc="reading validation", disable=not progress
    ):
        docs += shard_docs
        if spec.val:
            skips.merge(shard_skips)
    return docs


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
        print(f"training a byte-level BPE of up to {spec.vocab_size} entries on a sample")
        tokenizer = train_bpe(tokenizer_sample(spec, shards), spec.vocab_size)
        print(f"trained the BPE: {vocab_size(tokenizer)} entries")
    tokenizer.save(str(path.with_suffix(".tmp")))
    os.replace(path.with_suffix(".tmp"), path)
    return tokenizer


def check_vocabulary(spec: PrepareSpec, tokenizer: Tokenizer) -> None:
    """Warn when the BPE stopped short of --vocab-size: its sample ran out of pairs to merge.
    The pool (its ids, meta.json) has the real size, and a run's embeddings follow it."""
    size = vocab_size(tokenizer)
    if spec.vocab_size is not None and size < spec.vocab_size:
        warnings.warn(
            f"--vocab-size {spec.vocab_size}: the tokenizer has only {size} entries, as its "
            "sample held no more pairs to merge; the pool uses vocabulary size "
            f"{size} (more text, or a larger --tokenizer-sample, gives more entries)",
            stacklevel=3,
        )


def check_validation_size(docs: list[Document]) -> None:
    if len(docs) < MIN_VAL_DOCUMENTS:
        warnings.warn(
            f"the validation set has only {len(docs)} documents: BPC measured on it has a "
            f"sampling error of about {DOCUMENT_SPREAD / math.sqrt(len(docs)):.0%} (it shrinks "
            "as 1/sqrt(documents), not tokens); give a --val of at least "
            f"{MIN_VAL_DOCUMENTS} documents, or a larger --val-fraction",
            stacklevel=3,
        )


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
    dtype = token_dtype(vocab_size(tokenizer))
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
    """Tokenize one shard's kept training documents into a part file (tokens, and per document
    its length, language and whitespace-normalised digest; the part's unigram counts) plus its
    counts (JSON, the done-marker, written last)."""
    spec, tokenizer = _WORKER["spec"], _WORKER["tokenizer"]
    decontaminator: Decontaminator = _WORKER["decontaminator"]
    skips = SkipLog()
    counts: Counter = Counter()
    read: Counter = Counter()  # documents per language, before any is left out
    kept: list[Document] = []
    for doc in read_documents(shard, spec, skips, source):
        read[doc.language] += 1
        if held_out(doc, spec, source):
            counts["held_out_for_validation"] += 1
        elif stable_fraction(doc.text) >= language_weight(spec, doc.language):
            counts["dropped_by_language_weight"] += 1
        elif (match := decontaminator.check(doc.text)) is not None:
            counts[f"{match}_duplicates_of_validation"] += 1
        else:
            kept.append(doc)
    eos, size = tokenizer.token_to_id(EOS), vocab_size(tokenizer)
    dtype = token_dtype(size)
    encodings = tokenizer.encode_batch([d.text for d in kept])
    pieces = [np.asarray([eos] + enc.ids, dtype=dtype) for enc in encodings]
    tokens = np.concatenate(pieces) if pieces else np.zeros(0, dtype)
    digests = b"".join(normalized_hash(d.text) for d in kept)
    languages = sorted({d.language for d in kept})
    with open(part.with_suffix(".tmp"), "wb") as out:
        np.savez(
            out,
            tokens=tokens,
            lengths=np.asarray([len(p) for p in pieces], dtype=np.int64),
            languages=np.asarray([languages.index(d.language) for d in kept], dtype=np.int64),
            digests=np.frombuffer(digests, dtype=np.uint64).reshape(-1, 2),
            unigram=np.bincount(tokens, minlength=size),
        )
    os.replace(part.with_suffix(".tmp"), part.with_suffix(".npz"))
    stats = {
        "languages": languages,
        "read_languages": dict(read),
        "counts": dict(counts),
        "skips": skips.to_json(),
    }
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
    if workers is not None and workers < 1:
        raise PoolError(f"workers={workers}: give at least 1 (default: all cores)")
    workers = workers or os.cpu_count() or 1
    unknown = [name for name in spec.lang_weights if not known_language(name)]
    if unknown:
        warnings.warn(
            f"--lang-weights {', '.join(unknown)}: not a language name this code knows; each must "
            "match a language in the data (any case), or prepare fails once it has read it all",
            stacklevel=2,
        )
    corpus = None
    if INSTALLED in spec.code + spec.nl:
        corpus = clean_corpus(installed_files(), workers, progress)
    # Listed before anything is written: a mistyped source leaves no partial folder behind.
    shards = {
        source: shards_for(specs, source, corpus) if specs else []
        for source, specs in (("code", spec.code), ("nl", spec.nl))
    }
    work = out.with_name(out.name + ".partial")
    check_partial(spec, work)
    skips = SkipLog()
    val_docs = collect_validation(spec, shards, skips, workers, progress)
    if not val_docs:
        raise PoolError("the validation set is empty: give --val, or a larger --val-fraction")
    check_validation_size(val_docs)
    start_partial(spec, work)
    tokenizer = make_tokenizer(spec, shards, work)
    check_vocabulary(spec, tokenizer)
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
    init_args = (spec, tokenizer.to_str(), decontaminator)
    with tqdm(
        total=total, initial=total - len(jobs), desc="tokenizing shards", disable=not progress
    ) as bar:
        for _ in in_processes(encode_part, jobs, workers, _init_worker, init_args):
            bar.update()
    return finalize(spec, shards, tokenizer, work, out, skips, corpus)


def recorded_spec(spec: PrepareSpec) -> dict:
    return {"prepare_version": PREPARE_VERSION, **spec.to_json()}


def check_partial(spec: PrepareSpec, work: Path) -> None:
    """Resume `work` if it was started with these arguments. Started with others (or by an older
    version), it is refused once it holds a finished part, and replaced while it holds none: its
    tokenizer and validation set, if any, are the other arguments' and serve no new build."""
    recorded = work / "spec.json"
    if not recorded.exists():
        return
    found = json.loads(recorded.read_text())
    if found == recorded_spec(spec):
        return
    if not any((work / "parts").glob("*.json")):
        print(
            f"replacing {work}: an interrupted prepare with other arguments, no part finished",
            file=sys.stderr,
        )
        shutil.rmtree(work)
    elif found.get("prepare_version") != PREPARE_VERSION:
        raise PoolError(
            f"{work} holds an interrupted prepare started by an older version of this code; "
            f"delete {work} to start over"
        )
    else:
        raise PoolError(
            f"{work} holds an interrupted prepare with other arguments; run it again with the "
            f"arguments in {recorded}, or delete {work} to start over"
        )


def start_partial(spec: PrepareSpec, work: Path) -> None:
    (work / "parts").mkdir(parents=True, exist_ok=True)
    recorded = work / "spec.json"
    if not recorded.exists():
        recorded.with_suffix(".tmp").write_text(json.dumps(recorded_spec(spec), indent=2))
        os.replace(recorded.with_suffix(".tmp"), recorded)


def finalize(
    spec: PrepareSpec,
    shards: dict[str, list[Shard]],
    tokenizer: Tokenizer,
    work: Path,
    out: Path,
    skips: SkipLog,
    corpus: CleanCorpus | None = None,
) -> TokenPool:
    """Drop repeated training documents, shuffle each source once at document level, write the
    streams, the code unigram counts, meta.json, and publish."""
    val = np.load(work / "val.npz")
    languages = set(val["languages"].tolist())
    parts = {s: [work / "parts" / f"{s}-{i:06d}" for i in range(len(shards[s]))] for s in shards}
    stats = {s: [json.loads(p.with_suffix(".json").read_text()) for p in parts[s]] for s in parts}
    read: Counter = Counter()
    for source_stats in stats.values():
        for part_stats in source_stats:
            languages.update(part_stats["languages"])
            read.update(part_stats["read_languages"])
            skips.merge(SkipLog.from_json(part_stats["skips"]))
    check_language_weights(spec, read, work)
    languages = sorted(languages)
    lang_id = {name: i for i, name in enumerate(languages)}
    size = vocab_size(tokenizer)
    dtype = token_dtype(size)

    train_meta, removed, repeats = {}, Counter(), {}
    for seed_offset, source in enumerate(("code", "nl")):
        for part_stats in stats[source]:
            removed.update(part_stats["counts"])
        train_meta[source], unigram, repeats[source] = write_shuffled_stream(
            source,
            parts[source],
            stats[source],
            lang_id,
            languages,
            dtype,
            size,
            work,
            np.random.default_rng([spec.seed, seed_offset]),
        )
        if source == "code":
            np.save(work / "unigram_code.npy", unigram)

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
        "vocab_size": size,
        "eos_id": tokenizer.token_to_id(EOS),
        "tokenizer_hash": tokenizer_hash(tokenizer),
        "prepare_version": PREPARE_VERSION,
        "languages": languages,
        "train": train_meta,
        "val": validation_meta(val, languages, val_lang),
        "unigram_counts": "unigram_code.npy",
        "removed": {
            "exact_duplicates_of_validation": removed["exact_duplicates_of_validation"],
            "near_duplicates_of_validation": removed["near_duplicates_of_validation"],
            "train_exact_duplicates": repeats,
            "dropped_by_language_weight": removed["dropped_by_language_weight"],
            "held_out_for_validation": removed["held_out_for_validation"],
            "near_dup_threshold": spec.near_dup_threshold,
        },
        "skipped": skips.to_json(),
        "spec": spec.to_json(),
        "python": sys.version.split()[0] if set(EMBEDDED) & set(spec.code) else None,
    }
    if corpus is not None:
        manifest_hash = corpus.write_manifest(work / "manifest.jsonl")
        meta["corpus"] = {**corpus.summary(), "manifest": "manifest.jsonl"}
        meta["corpus"]["manifest_sha256"] = manifest_hash
    for name in ("parts", "val.npz", "tokenizer.json", "spec.json"):
        target = work / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    os.replace(work / "final-tokenizer.json", work / "tokenizer.json")
    (work / "meta.json").write_text(json.dumps(meta, indent=2))
    os.replace(work, out)
    if skips.total():
        print(skips.summary(), file=sys.stderr)
    return TokenPool(out)


def check_language_weights(spec: PrepareSpec, read: Counter, work: Path) -> None:
    """Refuse to publish a pool whose --lang-weights name a language no document has: such a
    weight did nothing (a misspelling, or a language the data does not hold)."""
    found = {name.lower() for name in read}
    unmatched = [k for k in spec.lang_weights if canonical_language(k).lower() not in found]
    if unmatched:
        listing = ", ".join(f"{name} {n}" for name, n in read.most_common())
        raise PoolError(
            f"--lang-weights {', '.join(unmatched)}: no training document has that language "
            f"(documents read per language: {listing}); correct or drop the name and prepare "
            f"again from the start (delete {work})"
        )
