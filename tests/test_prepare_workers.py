"""`kill -9` of prepare: its worker processes end with it instead of tokenizing on."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import synthetic_code

REPO = Path(__file__).resolve().parents[1]


def children(parent: int) -> dict[int, str]:
    """Processes whose parent is `parent`, with their command lines, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == parent:
            found[int(entry.name)] = cmdline
    return found


def alive(pid: int, cmdline: str) -> bool:
    """Still running as that command (exited, reaped or a zombie is not alive)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        now = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return state != "Z" and now == cmdline


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """24 JSON lines shards of 300 documents (about 11 MB), many seconds of tokenizing on two
    workers, and a validation file of 30 documents."""
    root = Path(tmp_path_factory.mktemp("kill"))
    rng = random.Random(0)
    texts = [synthetic_code(rng, 6) for _ in range(50)]
    (root / "code").mkdir()
    for shard in range(24):
        lines = [json.dumps({"text": f"{texts[i % 50]}\n# {shard} {i}\n"}) for i in range(300)]
        (root / "code" / f"{shard:02d}.jsonl").write_text("\n".join(lines) + "\n")
    val = [json.dumps({"text": synthetic_code(rng, 4)}) for _ in range(30)]
    (root / "val.jsonl").write_text("\n".join(val) + "\n")
    return root


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killed_prepare_takes_its_workers_with_it(corpus, tmp_path):
    out = tmp_path / "pool"
    command = [sys.executable, "-m", "datamodules", "prepare", "--code", str(corpus / "code")]
    command += ["--val", str(corpus / "val.jsonl"), "--out", str(out), "--vocab-size", "300"]
    command += ["--tokenizer-sample", "256K", "--workers", "2", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    prepare = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    parts = out.with_name("pool.partial") / "parts"
    workers: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 60
        while not list(parts.glob("*.json")):  # mid-work: a first part is finished
            assert prepare.poll() is None, "prepare ended before any part was written"
            assert time.monotonic() < deadline, "no part written within 60 s"
            workers.update(children(prepare.pid))
            time.sleep(0.02)
        workers.update(children(prepare.pid))
        assert sum("multiprocessing" in c for c in workers.values()) >= 2, workers
        prepare.send_signal(signal.SIGKILL)
        prepare.wait()
        finished = len(list(parts.glob("*.json")))
        deadline = time.monotonic() + 5
        while any(alive(pid, c) for pid, c in workers.items()) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {pid: c for pid, c in workers.items() if alive(pid, c)}
        assert not left, f"processes outlived the killed prepare: {left}"
        assert len(list(parts.glob("*.json"))) == finished < 24  # nothing wrote on
    finally:
        prepare.kill()
        for pid, cmdline in workers.items():
            if alive(pid, cmdline):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_without_the_kernel_signal_a_worker_still_ends_with_its_parent():
    """The fallback for systems without PR_SET_PDEATHSIG: the worker's thread sees its parent
    change and ends it."""
    worker = (
        "import os, sys, time; sys.platform = 'darwin'; "
        "from datamodules.workers import die_with_parent; "
        "die_with_parent(os.getppid()); print('ready', flush=True); time.sleep(60)"
    )
    parent = (
        "import subprocess, sys, time; "
        f"w = subprocess.Popen([sys.executable, '-c', {worker!r}], stdout=subprocess.PIPE); "
        "w.stdout.readline(); print(w.pid, flush=True); time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = subprocess.Popen(
        [sys.executable, "-c", parent], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    pid = int(started.stdout.readline())
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    try:
        started.kill()
        started.wait()
        deadline = time.monotonic() + 5
        while alive(pid, cmdline) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid, cmdline)
    finally:
        if alive(pid, cmdline):
            os.kill(pid, signal.SIGKILL)
