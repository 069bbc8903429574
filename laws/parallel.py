"""Spread independent fits over CPU cores with processes (the GIL rules out threads), each with
scipy's bundled OpenBLAS kept on one thread.

Since scipy 1.15, L-BFGS-B makes LAPACK calls on tiny (5x5) systems; a multi-threaded OpenBLAS
then spends far longer waking and synchronising threads than computing, 10-50x slower on a busy
2-core machine (scipy issue #22438). Fits are parallelised across processes instead, so BLAS
threads only get in the way. Where no scipy-bundled OpenBLAS is found `single_threaded_blas`
does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TypeVar

import scipy

T = TypeVar("T")
R = TypeVar("R")

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


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _call(func: Callable[[T], R], item: T) -> R:
    with single_threaded_blas():
        return func(item)


def parallel_map(func: Callable[[T], R], items: Sequence[T], workers: int | None = None) -> list[R]:
    """[func(item) for item in items], in order, on up to `workers` processes (None: all cores).

    `func` must be a module-level function and items picklable; one worker runs inline, which
    keeps small jobs free of process start-up cost.
    """
    workers = min(available_cores() if workers is None else max(1, workers), len(items))
    if workers <= 1:
        return [_call(func, item) for item in items]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(_call, [func] * len(items), items))
