"""Worker processes for `prepare`, which never outlive it.

A `kill -9` of prepare gives it no chance to stop its workers: they would go on reading and
tokenizing into the partial folder and hold the cores. So each worker is told by the kernel
when its parent dies (Linux's PR_SET_PDEATHSIG, a SIGKILL), and, where that is missing or the
parent died before it was set, a thread of the worker ends it once its parent has changed.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
PARENT_POLL_SECONDS = 0.5


def in_processes(
    function: Callable, jobs: list[tuple], workers: int, initializer=None, initargs=()
) -> Iterator:
    """function(*job) for each job, in job order, in up to `workers` spawned processes (in this
    one when a single worker is enough). A failing job cancels the ones not started, so its error
    (a bad shard) is reported at once, not after every other shard."""
    workers = min(workers, len(jobs))
    if workers <= 1:
        if initializer is not None:
            initializer(*initargs)
        yield from (function(*job) for job in jobs)
        return
    context = multiprocessing.get_context("spawn")
    start_args = (os.getpid(), initializer, initargs)
    with ProcessPoolExecutor(workers, context, _start_worker, start_args) as pool:
        futures = [pool.submit(function, *job) for job in jobs]
        try:
            for future in futures:
                yield future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise


def _start_worker(parent: int, initializer: Callable | None, initargs: tuple) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent: int) -> None:
    """End this process (at once, with no cleanup to run) when process `parent` ends."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        except (OSError, AttributeError):
            pass  # the watch below still ends us, within PARENT_POLL_SECONDS
    if os.getppid() != parent:  # it died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)
