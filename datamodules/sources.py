"""Where documents come from. The embedded default: the Python standard library's sources.

Every Python installation carries ~30 MB of real, varied code, so a run works offline on any
machine. Files are assigned to train or validation by a stable hash of their path relative to
the standard library, so the split is the same on every machine with the same Python version.
"""

from __future__ import annotations

import hashlib
import sysconfig
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SKIPPED_DIRS = {"site-packages", "dist-packages", "__pycache__"}


@dataclass(frozen=True)
class Document:
    text: str
    path: str
    language: str = "Python"


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_code_documents(root: Path | None = None) -> Iterator[Document]:
    """Every `.py` file under the standard library (installed packages excluded), sorted by path.

    Files that are not UTF-8 (a few encoding tests ship latin-1 on purpose) are skipped and
    named in one warning, never dropped silently.
    """
    root = root or stdlib_root()
    skipped = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if SKIPPED_DIRS.intersection(relative.parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            skipped.append(str(relative))
            continue
        if text:
            yield Document(text=text, path=relative.as_posix())
    if skipped:
        names = ", ".join(skipped)
        warnings.warn(f"skipped {len(skipped)} non-UTF-8 files under {root}: {names}", stacklevel=2)


def is_validation(path: str, val_fraction: float) -> bool:
    """Stable split: the first 8 bytes of sha256(path) as a fraction of 2^64."""
    digest = int.from_bytes(hashlib.sha256(path.encode()).digest()[:8], "big")
    return digest < val_fraction * 2**64


def content_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()
