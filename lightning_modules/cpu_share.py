"""CPU threads for a training on the CPU: the run claims cores no other codescale training on
the machine holds, and waits while none are free, instead of oversubscribing them.

Two trainings with default threads on the same 2 cores slow each other about 14x (measured:
0.43 it/s each against about 6 it/s alone): OpenMP's threads spin at every barrier while their
partners are descheduled. Claims are small files in a registry folder (the system's temp folder,
or $CODESCALE_CPU_REGISTRY), one per training, naming its process and threads; a claim of a
process that has died is ignored, so a killed run blocks nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

REGISTRY_ENV = "CODESCALE_CPU_REGISTRY"
POLL_SECONDS = 2.0


def registry() -> Path:
    path = Path(os.environ.get(REGISTRY_ENV) or Path(tempfile.gettempdir()) / "codescale-cpu")
    path.mkdir(parents=True, exist_ok=True)
    return path


def usable_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie (ended, not yet reaped by its parent)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc: existence is all we can tell


def claims(folder: Path) -> dict[int, dict]:
    """Live claims by process id; the files of dead processes are removed."""
    found = {}
    for file in folder.glob("*.json"):
        try:
            claim = json.loads(file.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(claim["pid"])):
            found[int(claim["pid"])] = claim
        else:
            file.unlink(missing_ok=True)
    return found


def threads_per_process(cores: int, processes: int) -> int:
    """OMP_NUM_THREADS when the user set it, else an equal share of the cores (at least 1)."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(int(os.environ["OMP_NUM_THREADS"]), 1)
    return max(cores // processes, 1)


@contextmanager
def cpu_threads(
    setting: int | str, processes: int, label: str, say: Callable[[str], None] = print
) -> Iterator[int]:
    """Set torch's threads for this process for the block; yields the number.

    An integer is used as given, without a claim. `auto` claims threads for the run's
    `processes` (its ranks on this machine) from the cores other trainings leave free, waiting
    (with one message) while fewer than one per process are free; ranks other than local rank 0
    take the share their rank 0 claimed.
    """
    if setting != "auto":
        torch.set_num_threads(int(setting))
        yield int(setting)
        return
    cores = usable_cores()
    share = threads_per_process(cores, processes)
    if int(os.environ.get("LOCAL_RANK", "0")) > 0:
        torch.set_num_threads(share)
        yield share
        return
    folder = registry()
    mine = folder / f"{os.getpid()}.json"
    waiting_since = None
    while True:
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            others = claims(folder)
            free = cores - sum(c["threads"] for c in others.values())
            if free >= processes or not others:
                share = min(share, max(free // processes, 1))
                claim = {"pid": os.getpid(), "threads": share * processes, "run": label}
                mine.write_text(json.dumps(claim))
                break
        if waiting_since is None:
            waiting_since = time.monotonic()
            holders = ", ".join(f"{c['run']} (pid {pid})" for pid, c in sorted(others.items()))
            say(
                f"waiting for a free CPU core: {holders} holds this machine's {cores}; two "
                "trainings on the same cores slow each other about 14x, so this one starts when "
                "they finish (trainer.threads=N runs it now with N threads regardless)"
            )
        time.sleep(POLL_SECONDS)
    if waiting_since is not None:
        say(f"waited {time.monotonic() - waiting_since:.0f} s for CPU cores")
    try:
        torch.set_num_threads(share)
        yield share
    finally:
        mine.unlink(missing_ok=True)
