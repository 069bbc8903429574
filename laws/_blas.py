"""Keep scipy's bundled OpenBLAS on one thread while fitting.

Since scipy 1.15, L-BFGS-B makes LAPACK calls on tiny (5x5) systems; a multi-threaded OpenBLAS
then spends far longer waking and synchronising threads than computing, 10-50x slower on a busy
2-core machine (scipy issue #22438). Fits are parallelised across processes instead, so BLAS
threads only get in the way. Where no scipy-bundled OpenBLAS is found this does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
from collections.abc import Iterator
from pathlib import Path

import scipy

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads")


@functools.cache
def _openblas() -> tuple[tuple[object, object], ...]:
    """(get, set) thread-count functions of each OpenBLAS shipped inside the scipy wheel."""
    found = []
    libs = Path(scipy.__file__).parent.parent / "scipy.libs"
    for path in sorted(libs.glob("*openblas*")) if libs.is_dir() else []:
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        getter = next((getattr(lib, n) for n in _GETTERS if hasattr(lib, n)), None)
        setter = next((getattr(lib, n) for n in _SETTERS if hasattr(lib, n)), None)
        if getter is not None and setter is not None:
            found.append((getter, setter))
    return tuple(found)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    libs = _openblas()
    before = [getter() for getter, _ in libs]
    for _, setter in libs:
        setter(1)
    try:
        yield
    finally:
        for (_, setter), threads in zip(libs, before, strict=True):
            setter(threads)
