"""Runs that survive failures: SIGKILL and resume to the same numbers, SIGTERM saves a
checkpoint, a non-finite loss is recorded as a failure, and 2-process DDP matches one process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import train
from configs import load_config

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "model.n=60K",
    "data.seq_len=64",
    "optim.micro_batch=4",
    "trainer.progress_bar=false",
    "trainer.val_every_steps=0",
    "trainer.accelerator=cpu",
]


def train_cmd(pool, run_dir, name, *extra):
    return [
        sys.executable,
        "train.py",
        f"data.pool={pool.path}",
        f"run.dir={run_dir}",
        f"run.name={name}",
        *TINY,
        *extra,
    ]


def run_to_end(cmd):
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def result(run_dir, name):
    return json.loads((Path(run_dir) / name / "result.json").read_text())


def start_and_signal(cmd, checkpoint: Path, sig: int) -> subprocess.Popen:
    """Start a run, wait for its first periodic checkpoint, then send `sig`."""
    process = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while not checkpoint.exists():
        assert process.poll() is None, process.stdout.read().decode()[-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    os.kill(process.pid, sig)
    process.wait(timeout=120)
    return process


@pytest.fixture(scope="module")
def uninterrupted(small_pool, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs")
    run_to_end(
        train_cmd(
            small_pool, run_dir, "whole", "data.tokens=60K", "trainer.checkpoint_every_steps=10"
        )
    )
    return result(run_dir, "whole")


def test_sigkill_then_resume_matches_the_uninterrupted_run(small_pool, tmp_path, uninterrupted):
    cmd = train_cmd(
        small_pool, tmp_path, "killed", "data.tokens=60K", "trainer.checkpoint_every_steps=10"
    )
    process = start_and_signal(
        cmd, tmp_path / "killed" / "checkpoints" / "last.ckpt", signal.SIGKILL
    )
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed" / "result.json").exists()
    done = run_to_end(cmd)
    assert "resuming from" in done.stdout
    resumed = result(tmp_path, "killed")
    assert resumed["steps"] == uninterrupted["steps"]
    assert resumed["val_bpc"] == uninterrupted["val_bpc"]  # bit-identical on CPU
    # TensorBoard keeps writing into the same run folder: one more event file per process.
    events = list((tmp_path / "killed" / "tb").glob("events.out.tfevents.*"))
    assert len({path.name.split(".")[-2] for path in events}) == 2


def test_sigterm_saves_a_checkpoint_and_exits(small_pool, tmp_path, uninterrupted):
    cmd = train_cmd(
        small_pool, tmp_path, "preempted", "data.tokens=60K", "trainer.checkpoint_every_steps=10"
    )
    process = start_and_signal(
        cmd, tmp_path / "preempted" / "checkpoints" / "last.ckpt", signal.SIGTERM
    )
    output = process.stdout.read().decode()
    assert process.returncode == 143, output[-3000:]
    assert "stopped by SIGTERM" in output
    run_to_end(cmd)
    assert result(tmp_path, "preempted")["val_bpc"] == uninterrupted["val_bpc"]


def test_non_finite_loss_is_a_recorded_failure(small_pool, tmp_path):
    cfg = load_config(
        [
            f"data.pool={small_pool.path}",
            f"run.dir={tmp_path}",
            "run.name=nan",
            *TINY,
            "data.tokens=40K",
            "optim.lr=1e12",
            "trainer.log_every_steps=2",
        ]
    )
    with pytest.raises(train.RunFailed, match="loss became"):
        train.train(cfg)
    failed = result(tmp_path, "nan")
    assert failed["status"] == "failed" and failed["step"] > 0
    with pytest.raises(train.RunFailed, match="failed before"):
        train.train(cfg)  # never resumed silently


def test_two_process_ddp_matches_one_process(small_pool, tmp_path):
    same = ["data.tokens=60K", "optim.batch_tokens=512"]  # 8 sequences per optimizer step
    run_to_end(train_cmd(small_pool, tmp_path, "one", *same, "trainer.devices=1"))
    run_to_end(
        train_cmd(small_pool, tmp_path, "two", *same, "trainer.devices=2", "trainer.strategy=ddp")
    )
    one, two = result(tmp_path, "one"), result(tmp_path, "two")
    assert one["plan"]["global_batch_sequences"] == two["plan"]["global_batch_sequences"] == 8
    assert (one["plan"]["grad_accumulation"], two["plan"]["grad_accumulation"]) == (2, 1)
    assert two["plan"]["world_size"] == 2 and one["steps"] == two["steps"]
    assert two["val_chars"] == one["val_chars"]  # every validation token once across ranks
    assert two["val_bpc"] == pytest.approx(one["val_bpc"], rel=0.01)
