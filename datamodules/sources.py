"""Where documents come from: parquet shards, JSON lines, directories of source files, and the
embedded default, this Python installation's standard library (its code, and its English prose).

A source spec (a file, a directory or a glob; several joined by commas) becomes a list of
`Shard`s: small picklable units that worker processes read independently with `read_shard`.
Whatever cannot be read is either a `SourceError` naming the file, or a counted skip in a
`SkipLog`; nothing is dropped silently.
"""

from __future__ import annotations

import ast
import glob
import gzip
import hashlib
import json
import os
import sysconfig
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from datamodules.languages import canonical_language, language_of_path

SKIPPED_DIRS = {"site-packages", "dist-packages", "__pycache__"}
KINDS = ("auto", "parquet", "jsonl", "files")
PARQUET_SUFFIXES = (".parquet",)
# `.json` counts as JSON lines only when named explicitly: source trees are full of .json configs.
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
SHARD_FILES = 1000  # a "files" shard holds at most this many files ...
SHARD_BYTES = 64 * 2**20  # ... or about this many bytes, so work spreads over processes
PARQUET_BATCH_ROWS = 256  # code files can be megabytes each: keep record batches small
READ_BYTES = 2**20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MIN_PROSE_CHARS = 200

SUMMARY_FILES = 5  # files named per reason in a skip summary; the rest are counted

# Why a document was skipped.
NOT_UTF8 = "not UTF-8"
EMPTY = "empty"
NOT_TEXT = "not a string"  # a JSON null, number, list ... where the text should be
BINARY = "binary (NUL bytes)"  # git's rule: text has no NUL byte
UNPARSABLE = "not parsable Python"


class SourceError(ValueError):
    """A source cannot be read as asked; the message names the file and what to change."""


@dataclass(frozen=True)
class Document:
    text: str
    path: str  # where it came from: "pkg/mod.py", "x.parquet#row=12", "x.jsonl#line=7"
    language: str = "Python"  # canonical language name; "English" for natural-language prose


@dataclass(frozen=True)
class Columns:
    """Field names to look for in parquet / JSON lines records; the first one present is used."""

    text: tuple[str, ...] = ("content", "text")
    language: tuple[str, ...] = ("language", "lang")
    path: tuple[str, ...] = ("path", "max_stars_repo_path", "file_path")


DEFAULT_COLUMNS = Columns()


@dataclass(frozen=True)
class Shard:
    """A unit of parallel work: one parquet or JSON lines file, or a group of source files.

    `paths` are relative to `root` (POSIX separators); they name the documents, so the names do
    not depend on where the data sits on a machine.
    """

    kind: str  # "parquet" | "jsonl" | "files" (or an embedded corpus's own kinds)
    paths: tuple[str, ...]
    root: str
    names: tuple[str, ...] = ()  # the documents' names where they are not `paths`

    def file(self, path: str) -> str:
        return os.path.join(self.root, path)


@dataclass
class SkipLog:
    """Documents left out and why: counts per (file, reason), and where in the file (a line, a
    row) the first few of them were.

    Picklable, mergeable and JSON-serialisable, so each worker process keeps one, the parent
    merges them and a resumable job can store them.
    """

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    places: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    max_places: int = 3

    def add(self, file: str, reason: str, where: str | None = None) -> None:
        """Count one document of `file`; `where` is its place inside the file ("line 7"), None
        when the document is the whole file."""
        self.counts[file, reason] += 1
        if where is not None:
            shown = self.places.setdefault((file, reason), [])
            if len(shown) < self.max_places:
                shown.append(where)

    def merge(self, other: SkipLog) -> None:
        self.counts.update(other.counts)
        for key, places in other.places.items():
            shown = self.places.setdefault(key, [])
            shown.extend(places[: self.max_places - len(shown)])

    def to_json(self) -> dict:
        return {
            "counts": [[f, r, n] for (f, r), n in sorted(self.counts.items())],
            "places": [[f, r, places] for (f, r), places in sorted(self.places.items())],
        }

    @classmethod
    def from_json(cls, data: dict) -> SkipLog:
        counts = Counter({(f, r): n for f, r, n in data["counts"]})
        return cls(counts, {(f, r): list(places) for f, r, places in data["places"]})

    def total(self, reason: str | None = None) -> int:
        return sum(n for (_, r), n in self.counts.items() if reason in (None, r))

    def files(self, reason: str) -> dict[str, int]:
        return {f: n for (f, r), n in sorted(self.counts.items()) if r == reason}

    def summary(self) -> str:
        """One line per reason naming each file once, the SUMMARY_FILES with most skips first."""
        if not self.counts:
            return "skipped nothing while reading"
        lines = [f"skipped {self.total()} documents while reading:"]
        for reason in sorted({r for _, r in self.counts}):
            per_file = Counter(self.files(reason))
            listed = [
                self._file_entry(f, reason, n) for f, n in per_file.most_common(SUMMARY_FILES)
            ]
            if len(per_file) > SUMMARY_FILES:
                listed.append(f"and {len(per_file) - SUMMARY_FILES} more files")
            files = "file" if len(per_file) == 1 else "files"
            lines.append(
                f"  {reason}: {self.total(reason)} in {len(per_file)} {files}: {', '.join(listed)}"
            )
        return "\n".join(lines)

    def _file_entry(self, file: str, reason: str, count: int) -> str:
        places = self.places.get((file, reason), [])
        if not places:
            return file if count == 1 else f"{file} ({count})"
        more = ", ..." if count > len(places) else ""
        return f"{file} ({count}: {', '.join(places)}{more})"


# ---------------------------------------------------------------------------------------------
# Listing shards


def _data_kind(path: str, explicit: bool) -> str | None:
    name = path.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(JSONL_SUFFIXES) or (explicit and name.endswith(".json")):
        return "jsonl"
    return None


def _posix(path: str) -> str:
    return Path(path).as_posix()


def _group_files(root: str, paths: list[str]) -> list[Shard]:
    """Consecutive runs of at most SHARD_FILES files or about SHARD_BYTES bytes."""
    shards: list[Shard] = []
    group: list[str] = []
    size = 0
    for path in paths:
        nbytes = os.path.getsize(os.path.join(root, path))
        if group and (len(group) == SHARD_FILES or size + nbytes > SHARD_BYTES):
            shards.append(Shard("files", tuple(group), root))
            group, size = [], 0
        group.append(path)
        size += nbytes
    if group:
        shards.append(Shard("files", tuple(group), root))
    return shards


def _shards_of_files(root: str, paths: list[str], kind: str, explicit: bool) -> list[Shard]:
    """Each parquet / JSON lines file is a shard; the remaining (source) files are grouped."""
    shards, sources = [], []
    for path in paths:
        file_kind = kind if kind != "auto" else _data_kind(path, explicit) or "files"
        if file_kind == "files":
            sources.append(path)
        else:
            shards.append(Shard(file_kind, (path,), root))
    return shards + _group_files(root, sources)


def _walk(directory: str) -> list[str]:
    """Files under a directory, relative and sorted; hidden entries and installed packages and
    caches skipped."""
    found = []
    for parent, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS]
        relative = os.path.relpath(parent, directory)
        found += [
            _posix(os.path.normpath(os.path.join(relative, f)))
            for f in files
            if not f.startswith(".")
        ]
    return sorted(found)


def _directory_shards(directory: str, kind: str) -> list[Shard]:
    files = _walk(directory)
    wanted = ("parquet", "jsonl") if kind == "auto" else (kind,)
    data = [f for f in files if _data_kind(f, explicit=kind == "jsonl") in wanted]
    if data:
        return [Shard(_data_kind(f, explicit=True) or kind, (f,), directory) for f in data]
    if kind != "auto" and kind != "files":
        raise SourceError(f"source {directory!r} contains no {kind} files")
    sources = [f for f in files if language_of_path(f)]
    ignored = Counter(os.path.splitext(f)[1] or f for f in files if not language_of_path(f))
    if ignored:
        common = ", ".join(f"{ext} {n}" for ext, n in ignored.most_common(5))
        warnings.warn(
            f"ignored {ignored.total()} files of no known language under {directory} ({common}); "
            "name them explicitly to read them",
            stacklevel=3,
        )
    if not sources:
        raise SourceError(f"source {directory!r} contains no data or source files")
    return _group_files(directory, sources)


def _is_glob(spec: str) -> bool:
    return any(char in spec for char in "*?[")


def _glob_root(spec: str) -> str:
    """The leading part of a glob without wildcards: matched files are named relative to it."""
    parts = []
    for part in Path(spec).parts[:-1]:
        if _is_glob(part):
            break
        parts.append(part)
    return os.path.join(*parts) if parts else "."


def list_shards(spec: str, kind: str = "auto") -> list[Shard]:
    """The shards of one source: a file, a directory or a glob.

    auto: `.parquet` is parquet; `.jsonl`, `.jsonl.gz`, `.jsonl.zst` (and `.json` when named
    explicitly) are JSON lines; a directory holding such files gives those (recursively, sorted),
    else its source files of a known language, in groups. `kind` forces one reading.
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}, expected one of {', '.join(KINDS)}")
    if _is_glob(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            raise SourceError(f"source {spec!r} matches no files")
        root = _glob_root(spec)
        files = [_posix(os.path.relpath(m, root)) for m in matches if os.path.isfile(m)]
        shards = _shards_of_files(root, files, kind, explicit=True)
        for match in matches:
            if os.path.isdir(match):
                shards += _directory_shards(match, kind)
        return shards
    if os.path.isdir(spec):
        return _directory_shards(spec, kind)
    if os.path.isfile(spec):
        root, name = os.path.split(spec)
        return _shards_of_files(root or ".", [name], kind, explicit=True)
    raise SourceError(f"source {spec!r} does not exist")


def list_shards_many(specs: str | Iterable[str], kind: str = "auto") -> list[Shard]:
    """Shards of several specs ("a/,b/*.parquet" or a list); a file named twice is read once."""
    if isinstance(specs, str):
        specs = [specs]
    names = [s.strip() for spec in specs for s in spec.split(",") if s.strip()]
    if not names:
        raise SourceError("no source given")
    seen: set[str] = set()
    shards = []
    for name in names:
        for shard in list_shards(name, kind):
            fresh = []
            for path in shard.paths:
                real = os.path.realpath(shard.file(path))
                if real not in seen:
                    seen.add(real)
                    fresh.append(path)
            if fresh:
                shards.append(Shard(shard.kind, tuple(fresh), shard.root))
    return shards


# ---------------------------------------------------------------------------------------------
# Reading shards


def _first_present(candidates: tuple[str, ...], available: Iterable[str]) -> str | None:
    names = set(available)
    return next((c for c in candidates if c in names), None)


def _missing_text(file: str, text: tuple[str, ...], found: Iterable[str], noun: str) -> SourceError:
    """Names the flag and the fields the file has (a library caller's `Columns` is that flag)."""
    return SourceError(
        f"{file}: no text {noun}; looked for {', '.join(text)}, it has "
        f"{', '.join(found) or 'none'}; name the text {noun} with --text-column"
    )


def _language(language: object, path: object, default: str) -> str:
    if language:
        return canonical_language(str(language))
    if path:
        return language_of_path(str(path)) or default
    return default


def _skip_reason(text: object) -> str | None:
    """Why a record's text is no document, None when it is one."""
    if not isinstance(text, str):
        return NOT_TEXT
    if not text:
        return EMPTY
    if "\x00" in text:
        return BINARY
    if not _utf8_clean(text):
        return NOT_UTF8
    return None


def _utf8_clean(text: str) -> bool:
    """False for text with lone surrogates (from JSON escapes), which no tokenizer can encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_parquet(shard: Shard, columns: Columns, log: SkipLog, default: str) -> Iterator[Document]:
    name = shard.paths[0]
    file = shard.file(name)
    try:
        parquet = pq.ParquetFile(file)
        schema = parquet.schema_arrow
    except (OSError, pa.ArrowException) as error:
        raise SourceError(f"{file}: not a readable parquet file ({error})") from error
    text_col = _first_present(columns.text, schema.names)
    if text_col is None:
        raise _missing_text(file, columns.text, schema.names, "column")
    text_type = schema.field(text_col).type
    binary = pa.types.is_binary(text_type) or pa.types.is_large_binary(text_type)
    if not (binary or pa.types.is_string(text_type) or pa.types.is_large_string(text_type)):
        raise SourceError(f"{file}: text column {text_col!r} holds {text_type}, not text")
    lang_col = _first_present(columns.language, schema.names)
    path_col = _first_present(columns.path, schema.names)
    wanted = [c for c in (text_col, lang_col, path_col) if c]
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            texts = batch[text_col].to_pylist()
            langs = batch[lang_col].to_pylist() if lang_col else [None] * len(texts)
            paths = batch[path_col].to_pylist() if path_col else [None] * len(texts)
            for text, lang, path in zip(texts, langs, paths, strict=True):
                number, row = row, row + 1
                if binary and text is not None:
                    try:
                        text = text.decode("utf-8")
                    except UnicodeDecodeError:
                        log.add(file, NOT_UTF8, f"row {number}")
                        continue
                if reason := _skip_reason(text):
                    log.add(file, reason, f"row {number}")
                    continue
                yield Document(text, f"{name}#row={number}", _language(lang, path, default))
    except (OSError, pa.ArrowException) as error:
        raise SourceError(f"{file}: unreadable after row {row} ({error})") from error


def _zstd_chunks(stream: BinaryIO) -> Iterator[bytes]:
    """Every frame decompressed; zstandard's own readers stop silently at a truncated end."""
    decompressor = zstandard.ZstdDecompressor()
    frame, inside = decompressor.decompressobj(), False
    while data := stream.read(READ_BYTES):
        while data:
            inside = True
            yield frame.decompress(data)
            data = b""
            if frame.eof:
                data, frame, inside = frame.unused_data, decompressor.decompressobj(), False
    if inside:
        raise EOFError("zstd data ends inside a frame (truncated file?)")


def _decompressed_chunks(file: str) -> Iterator[bytes]:
    """The file's bytes, gunzipped or zstd-decompressed when its first bytes say so."""
    with open(file, "rb") as stream:
        magic = stream.read(4)
        stream.seek(0)
        if magic.startswith(GZIP_MAGIC):
            with gzip.GzipFile(fileobj=stream) as unzipped:
                yield from iter(lambda: unzipped.read(READ_BYTES), b"")
        elif magic == ZSTD_MAGIC:
            yield from _zstd_chunks(stream)
        else:
            yield from iter(lambda: stream.read(READ_BYTES), b"")


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    partial: list[bytes] = []
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        partial.append(pieces[0])
        if len(pieces) > 1:
            yield b"".join(partial)
            yield from pieces[1:-1]
            partial = [pieces[-1]]
    if any(partial):
        yield b"".join(partial)


def _read_jsonl(shard: Shard, columns: Columns, log: SkipLog, default: str) -> Iterator[Document]:
    name = shard.paths[0]
    file = shard.file(name)
    number = 0
    try:
        for number, raw in enumerate(_lines(_decompressed_chunks(file)), 1):
            where = f"line {number}"
            raw = raw.strip()
            if not raw:
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                log.add(file, NOT_UTF8, where)
                continue
            except json.JSONDecodeError as error:
                raise SourceError(f"{file} line {number}: invalid JSON ({error})") from None
            if not isinstance(record, dict):
                raise SourceError(f"{file} line {number}: a JSON object was expected")
            key = _first_present(columns.text, record)
            if key is None:
                raise _missing_text(f"{file} line {number}", columns.text, record, "field")
            text = record[key]
            if reason := _skip_reason(text):
                log.add(file, reason, where)
                continue
            language = record.get(_first_present(columns.language, record) or "")
            path = record.get(_first_present(columns.path, record) or "")
            yield Document(text, f"{name}#line={number}", _language(language, path, default))
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as error:
        raise SourceError(f"{file}: unreadable after line {number} ({error})") from error


def _read_files(shard: Shard, columns: Columns, log: SkipLog, default: str) -> Iterator[Document]:
    for path, name in zip(shard.paths, shard.names or shard.paths, strict=True):
        file = shard.file(path)
        try:
            data = Path(file).read_bytes()
        except OSError as error:
            raise SourceError(f"{file}: cannot be read ({error})") from error
        if b"\0" in data:
            log.add(file, BINARY)
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            log.add(file, NOT_UTF8)
            continue
        if not text:
            log.add(file, EMPTY)
            continue
        yield Document(text, name, language_of_path(path) or default)


_READERS = {"parquet": _read_parquet, "jsonl": _read_jsonl, "files": _read_files}


def read_shard(
    shard: Shard,
    columns: Columns = DEFAULT_COLUMNS,
    skips: SkipLog | None = None,
    default_language: str = "unknown",
) -> Iterator[Document]:
    """The documents of a shard, in order. Language: the record's language field (canonical
    name), else its path's extension, else `default_language`.

    Skipped documents (empty, not a string, binary, not UTF-8) are counted in `skips`; without
    one, any skip other than an empty text is reported in a warning at the end of the shard.
    """
    log = SkipLog() if skips is None else skips
    yield from _READERS[shard.kind](shard, columns, log, default_language)
    if skips is None and log.total() > log.total(EMPTY):
        warnings.warn(log.summary(), stacklevel=2)


# ---------------------------------------------------------------------------------------------
# The embedded default: this Python installation's standard library


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_files(root: Path) -> Iterator[tuple[Path, str]]:
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if not SKIPPED_DIRS.intersection(relative.parts):
            yield path, relative.as_posix()


def stdlib_code_documents(root: Path | None = None) -> Iterator[Document]:
    """Every `.py` file under the standard library (installed packages excluded), sorted by path.

    Files that are not UTF-8 (a few encoding tests ship latin-1 on purpose) are skipped and
    named in one warning, never dropped silently.
    """
    root = root or stdlib_root()
    skipped = []
    for path, relative in _stdlib_files(root):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            skipped.append(relative)
            continue
        if text:
            yield Document(text=text, path=relative)
    if skipped:
        names = ", ".join(skipped)
        warnings.warn(f"skipped {len(skipped)} non-UTF-8 files under {root}: {names}", stacklevel=2)


_DEFINITIONS = (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_BLOCKS = ("body", "orelse", "finalbody", "handlers", "cases")  # where statements nest


def _docstrings(statements: list[ast.stmt]) -> Iterator[str]:
    """Docstrings of every class and function among `statements` and the blocks nested in
    them, in source order; expressions are not visited (no docstring can hide there)."""
    for node in statements:
        if isinstance(node, _DEFINITIONS) and (doc := ast.get_docstring(node)):
            yield doc
        for block in _BLOCKS:
            yield from _docstrings(getattr(node, block, []))


def stdlib_prose_documents(
    root: Path | None = None, skips: SkipLog | None = None
) -> Iterator[Document]:
    """English prose shipped with Python, as the embedded natural-language source.

    One document per standard-library module (its module, class and function docstrings joined
    by blank lines; modules with under MIN_PROSE_CHARS characters of prose left out), named by
    the module's path like its code document, so a path-hash split holds out both together;
    then one per pydoc topic text of this installation. Modules that do not parse are counted in
    `skips` (reported in a warning without one).
    """
    root = root or stdlib_root()
    log = SkipLog() if skips is None else skips
    for path, relative in _stdlib_files(root):
        if (prose := module_prose(path, log)) is not None:
            yield Document(prose, relative, "English")
    yield from pydoc_topic_documents()
    if skips is None and log.total():
        warnings.warn(log.summary(), stacklevel=2)


def module_prose(path: Path, log: SkipLog) -> str | None:
    """A Python file's module, class and function docstrings joined by blank lines; None when
    they hold under MIN_PROSE_CHARS characters, or the file does not parse (counted in `log`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in old test data
            tree = ast.parse(path.read_bytes())
    except (SyntaxError, ValueError):
        log.add(str(path), UNPARSABLE)
        return None
    prose = "\n\n".join(d for d in (ast.get_docstring(tree), *_docstrings(tree.body)) if d)
    return prose if len(prose) >= MIN_PROSE_CHARS else None


def pydoc_topic_documents() -> Iterator[Document]:
    """The pydoc topic texts of this installation (the language reference in prose)."""
    from pydoc_data.topics import topics

    for name in sorted(topics):
        if topics[name].strip():
            yield Document(topics[name], f"pydoc_data/topics.py#{name}", "English")


def is_validation(name: str, val_fraction: float) -> bool:
    """Stable split of a document by its name: the first 8 bytes of sha256(name) as a fraction
    of 2^64."""
    digest = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")
    return digest < val_fraction * 2**64


def content_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
