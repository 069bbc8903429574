"""Spread independent fits over CPU cores with processes (the GIL rules out threads)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from laws._blas import single_threaded_blas

T = TypeVar("T")
R = TypeVar("R")


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
