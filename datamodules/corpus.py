"""The cleaned embedded corpus: the installation's files (`installed.py`) scanned in parallel,
filtered and deduplicated (`cleaning.py`), and the kept ones served to `prepare` as shards.

Three streams come out of it: code (the kept code files), documentation prose (the kept
Markdown, reStructuredText and text files) and docstring prose (the docstrings of the kept
Python files, held apart from the code as one document per module, plus pydoc's topics). The
manifest has one JSON line per installed file (distribution, version, path, language, bytes,
sha256, and why it was removed, if it was); its hash goes into the pool's meta.json.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from datamodules.cleaning import KeepFirst, Scan, scan_texts
from datamodules.installed import InstalledFile
from datamodules.sources import Document, Shard, SkipLog, module_prose, pydoc_topic_documents
from datamodules.workers import in_processes

SCAN_BATCH = 400  # files per scanning task
SHARD_FILES = 500  # files per tokenizing shard
DOCSTRINGS = "installed-docstrings"  # shard kind: the docstrings of a shard's Python files
TOPICS = "pydoc-topics"  # shard kind: pydoc's topic texts


def _scan_batch(files: list[InstalledFile]) -> list[Scan]:
    return scan_texts([Path(f.file).read_bytes() for f in files], [f.is_doc for f in files])


@dataclass
class CleanCorpus:
    """Every listed file with its scan and its fate: `removed[i]` is None for a kept file, else
    (reason, index of the file it duplicates or None)."""

    files: list[InstalledFile]
    scans: list[Scan]
    removed: list[tuple[str, int | None] | None]

    def kept(self, docs: bool) -> list[InstalledFile]:
        pairs = zip(self.files, self.removed, strict=True)
        return [f for f, fate in pairs if fate is None and f.is_doc == docs]

    def manifest_lines(self) -> Iterator[str]:
        for f, scan, fate in zip(self.files, self.scans, self.removed, strict=True):
            reason, twin = fate if fate else (None, None)
            entry = {
                "name": f.name,
                "distribution": f.distribution,
                "version": f.version,
                "path": f.path,
                "language": f.language,
                "bytes": scan.nbytes,
                "sha256": scan.sha256,
                "removed": reason,
                "duplicate_of": None if twin is None else self.files[twin].name,
            }
            yield json.dumps(entry, sort_keys=True)

    def write_manifest(self, path: Path) -> str:
        """Writes manifest.jsonl; returns its sha256 (what a study cites)."""
        text = "".join(line + "\n" for line in self.manifest_lines())
        path.write_text(text)
        return hashlib.sha256(text.encode()).hexdigest()

    def summary(self) -> dict:
        """Files and bytes removed per rule, and kept per stream and language."""
        removed: dict[str, list[int]] = {}
        kept: dict[str, list[int]] = {}
        for f, scan, fate in zip(self.files, self.scans, self.removed, strict=True):
            key, table = (fate[0], removed) if fate else (f.language, kept)
            counts = table.setdefault(key, [0, 0])
            counts[0] += 1
            counts[1] += scan.nbytes
        as_dict = lambda t: {k: {"files": v[0], "bytes": v[1]} for k, v in sorted(t.items())}  # noqa: E731
        dists = Counter(f.distribution for f in self.files)
        return {
            "files": len(self.files),
            "bytes": sum(s.nbytes for s in self.scans),
            "distributions": len(dists),
            "removed": as_dict(removed),
            "kept": as_dict(kept),
        }


def clean_corpus(files: list[InstalledFile], workers: int, progress: bool = True) -> CleanCorpus:
    """Scan the files in parallel, then deduplicate in corpus order: code against earlier code,
    documentation against earlier documentation."""
    batches = [files[i : i + SCAN_BATCH] for i in range(0, len(files), SCAN_BATCH)]
    scans: list[Scan] = []
    for batch in tqdm(
        in_processes(_scan_batch, [(b,) for b in batches], workers),
        total=len(batches),
        desc="cleaning the installed corpus",
        disable=not progress,
    ):
        scans += batch
    keepers = {False: KeepFirst(), True: KeepFirst()}
    removed: list[tuple[str, int | None] | None] = []
    for index, (f, scan) in enumerate(zip(files, scans, strict=True)):
        if scan.problem:
            removed.append((scan.problem, None))
        else:
            removed.append(keepers[f.is_doc].check(index, scan.digest, scan.signature))
    slim = [Scan(s.sha256, s.nbytes, s.problem) for s in scans]  # signatures are done with
    return CleanCorpus(files, slim, removed)


def _shards(files: list[InstalledFile], kind: str) -> list[Shard]:
    """Runs of at most SHARD_FILES files sharing a root, in corpus order."""
    shards: list[Shard] = []
    group: list[InstalledFile] = []
    for f in files + [None]:
        if group and (f is None or f.root != group[0].root or len(group) == SHARD_FILES):
            paths = tuple(g.path for g in group)
            shards.append(Shard(kind, paths, group[0].root, tuple(g.name for g in group)))
            group = []
        if f is not None:
            group.append(f)
    return shards


def code_shards(corpus: CleanCorpus) -> list[Shard]:
    return _shards(corpus.kept(docs=False), "files")


def prose_shards(corpus: CleanCorpus) -> list[Shard]:
    """Documentation files, the docstrings of the kept Python files, and pydoc's topics."""
    python = [f for f in corpus.kept(docs=False) if f.language == "Python"]
    return (
        _shards(corpus.kept(docs=True), "files")
        + _shards(python, DOCSTRINGS)
        + [Shard(TOPICS, (), "")]
    )


def read_docstrings(shard: Shard, skips: SkipLog) -> Iterator[Document]:
    """One English document per module with enough docstring prose, named like its code."""
    for path, name in zip(shard.paths, shard.names, strict=True):
        if (prose := module_prose(Path(shard.root) / path, skips)) is not None:
            yield Document(prose, name, "English")


def read_corpus_shard(shard: Shard, skips: SkipLog) -> Iterator[Document] | None:
    """The documents of the corpus's own shard kinds; None for an ordinary shard."""
    if shard.kind == DOCSTRINGS:
        return read_docstrings(shard, skips)
    if shard.kind == TOPICS:
        return pydoc_topic_documents()
    return None
