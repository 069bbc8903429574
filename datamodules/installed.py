"""The embedded corpus: every source file this Python installation holds, the standard library
and each installed distribution, labelled by language and named by distribution and path.

A file's document name is `<distribution>/<path>` (`python/json/decoder.py`,
`numpy/numpy/linalg/_linalg.py`): it does not depend on where the installation sits, so the
validation split (a hash of the name) is the same on every machine with the same packages. The
manifest (`corpus.py`) records each file's distribution, version, path and content hash, so a
study says exactly what it trained on.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from datamodules.languages import language_of_path
from datamodules.sources import SKIPPED_DIRS, stdlib_root

STDLIB_DISTRIBUTION = "python"  # the standard library's name in document names and manifests
# Not part of the corpus: this project itself (its files change with every commit; an editable
# install's records point into the checkout).
EXCLUDED_DISTRIBUTIONS = {"codescale"}
# Languages read as documentation (the NL source), not as code.
DOC_LANGUAGES = {"Markdown", "reStructuredText", "Text"}
# Languages that are data or configuration, neither code nor prose: left out of both.
DATA_LANGUAGES = {"JSON", "YAML", "TOML", "XML", "TeX", "English"}


@dataclass(frozen=True)
class InstalledFile:
    """One source file of the installation. `root` is machine-specific; `name` is not."""

    distribution: str
    version: str
    root: str  # absolute folder `path` is relative to
    path: str  # POSIX, relative to root
    language: str

    @property
    def name(self) -> str:
        return f"{self.distribution}/{self.path}"

    @property
    def file(self) -> str:
        return os.path.join(self.root, self.path)

    @property
    def is_doc(self) -> bool:
        return self.language in DOC_LANGUAGES


def _normalized(name: str) -> str:
    """PEP 503's normal form: `Foo_Bar.baz` and `foo-bar-baz` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def stdlib_files(root: Path | None = None) -> list[InstalledFile]:
    """The standard library's `.py` files (installed packages and caches excluded)."""
    root = root or stdlib_root()
    version = sys.version.split()[0]
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if not SKIPPED_DIRS.intersection(relative.parts) and path.is_file():
            posix = relative.as_posix()
            found.append(InstalledFile(STDLIB_DISTRIBUTION, version, str(root), posix, "Python"))
    return found


def _distribution_files(dist: importlib.metadata.Distribution) -> list[InstalledFile]:
    """The files a distribution's RECORD lists that exist inside its install folder and have a
    known code or documentation language."""
    name, version = dist.metadata["Name"], dist.version
    root = Path(dist.locate_file("")).resolve()
    found = []
    for record in dist.files or []:
        relative = Path(str(record))
        language = language_of_path(relative.name)
        if (
            language is None
            or language in DATA_LANGUAGES
            or ".." in relative.parts
            or relative.parts[0].endswith((".dist-info", ".egg-info"))
            or "__pycache__" in relative.parts
        ):
            continue
        if (root / relative).is_file():
            found.append(
                InstalledFile(_normalized(name), version, str(root), relative.as_posix(), language)
            )
    return found


def distributions() -> list[importlib.metadata.Distribution]:
    """Installed distributions, each once (the first on sys.path, as imports resolve), sorted
    by normalised name; this project excluded."""
    chosen: dict[str, importlib.metadata.Distribution] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name and _normalized(name) not in chosen:
            chosen[_normalized(name)] = dist
    return [chosen[k] for k in sorted(chosen) if k not in EXCLUDED_DISTRIBUTIONS]


def installed_files(
    stdlib: Path | None = None, dists: list[importlib.metadata.Distribution] | None = None
) -> list[InstalledFile]:
    """The standard library's files, then every distribution's, in a fixed order; a file that
    two records name (one real path) is listed once, under the first."""
    listed = stdlib_files(stdlib)
    for dist in distributions() if dists is None else dists:
        listed += _distribution_files(dist)
    seen: set[str] = set()
    unique = []
    for item in listed:
        real = os.path.realpath(item.file)
        if real not in seen:
            seen.add(real)
            unique.append(item)
    return unique
