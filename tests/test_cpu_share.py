"""CPU trainings on one machine queue for its cores instead of sharing them."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest
import torch

from lightning_modules import cpu_share


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(cpu_share.REGISTRY_ENV, str(tmp_path / "claims"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(cpu_share, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(cpu_share, "usable_cores", lambda: 4)
    before = torch.get_num_threads()
    yield cpu_share.registry()
    torch.set_num_threads(before)


def claim_of(folder, pid: int, threads: int) -> None:
    (folder / f"{pid}.json").write_text(json.dumps({"pid": pid, "threads": threads, "run": "a"}))


def test_auto_claims_every_free_core_and_releases_them(folder):
    with cpu_share.cpu_threads("auto", 1, "run-b") as threads:
        assert threads == 4 == torch.get_num_threads()
        assert json.loads(next(folder.glob("*.json")).read_text())["threads"] == 4
    assert not list(folder.glob("*.json"))


def test_a_run_waits_while_another_holds_every_core(folder):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.0)"])
    claim_of(folder, holder.pid, 4)
    said, started = [], time.monotonic()
    with cpu_share.cpu_threads("auto", 1, "run-b", say=said.append) as threads:
        waited = time.monotonic() - started
    holder.wait()
    assert waited >= 0.8 and threads == 4
    assert f"a (pid {holder.pid}) holds this machine's 4" in said[0]
    assert "14x" in said[0] and "trainer.threads=N" in said[0] and said[1].startswith("waited")


def test_partly_free_cores_are_shared_and_dead_claims_ignored(folder):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        claim_of(folder, live.pid, 1)
        claim_of(folder, dead.pid, 4)  # a run killed without cleaning up blocks nothing
        with cpu_share.cpu_threads("auto", 1, "run-b") as threads:
            assert threads == 3
        assert not (folder / f"{dead.pid}.json").exists()
        with cpu_share.cpu_threads("auto", 3, "ddp-run") as threads:
            assert threads == 1  # 3 ranks share the 3 free cores
    finally:
        live.kill()
        live.wait()


def test_explicit_threads_and_other_ranks_claim_nothing(folder, monkeypatch):
    with cpu_share.cpu_threads(2, 1, "run-b") as threads:
        assert threads == 2 == torch.get_num_threads()
        assert not list(folder.glob("*.json"))
    monkeypatch.setenv("LOCAL_RANK", "2")
    with cpu_share.cpu_threads("auto", 2, "run-b") as threads:
        assert threads == 2  # its rank 0 claimed for all of them
    monkeypatch.delenv("LOCAL_RANK")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    with cpu_share.cpu_threads("auto", 1, "run-b") as threads:
        assert threads == 1  # the user's OMP_NUM_THREADS is kept


def test_waiting_runs_start_one_after_another(folder, monkeypatch):
    """Two runs of this process's threads: the second starts only once the first is done."""
    monkeypatch.setattr(cpu_share.os, "getpid", lambda: threading.get_ident() % 2**22 + 2)
    monkeypatch.setattr(cpu_share, "_alive", lambda pid: True)
    events = []

    def run(name: str, seconds: float) -> None:
        with cpu_share.cpu_threads("auto", 1, name, say=lambda _: None):
            events.append((name, "start"))
            time.sleep(seconds)
            events.append((name, "end"))

    first = threading.Thread(target=run, args=("first", 0.5))
    first.start()
    time.sleep(0.1)
    second = threading.Thread(target=run, args=("second", 0.0))
    second.start()
    first.join()
    second.join()
    assert events == [("first", "start"), ("first", "end"), ("second", "start"), ("second", "end")]
