"""Runs that survive failures: SIGKILL and resume to the same numbers, SIGTERM saves a
checkpoint, a non-finite loss is recorded as a failure, and 2-process DDP matches one process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from configs import load_config
from datamodules.datamodule import PoolDataModule
from lightning_modules import run as runner
from lightning_modules.bpc import ValidationBPC
from lightning_modules.guards import WallClock
from lightning_modules.module import DecoderLM

ROOT = Path(__file__).resolve().parent.parent
TINY = [
    "model.n=60K",
    "data.seq_len=64",
    "optim.micro_batch=4",
    "trainer.progress_bar=false",
    "trainer.val_every_steps=0",
    "trainer.accelerator=cpu",
]


# "Bit-identical on CPU with deterministic settings": one math thread per process. With two,
# MKL/OpenMP may split a reduction differently from run to run (dynamic threading, a signal
# landing mid-kernel), which was measured to change the final BPC in the 4th digit in 2 of 6
# SIGTERM resumes; with one thread, 6 of 6 matched bit for bit.
DETERMINISTIC = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


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
    done = subprocess.run(
        cmd, cwd=ROOT, env=DETERMINISTIC, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def result(run_dir, name):
    return json.loads((Path(run_dir) / name / "result.json").read_text())


def start_and_signal(cmd, checkpoint: Path, sig: int) -> subprocess.Popen:
    """Start a run, wait for its first periodic checkpoint, then send `sig`."""
    process = subprocess.Popen(
        cmd, cwd=ROOT, env=DETERMINISTIC, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
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
    # Two sessions, one curve: what the killed one logged after its checkpoint is purged.
    steps = logged_steps(tmp_path / "killed" / "tb", "train/loss")
    assert steps == sorted(set(steps)) and steps[-1] >= resumed["steps"] - 10
    assert logged_steps(tmp_path / "killed" / "tb", "train/lr") == steps  # one lr curve


def logged_steps(tb_dir: Path, tag: str) -> list[int]:
    """The steps TensorBoard shows for `tag`, read the way TensorBoard reads a run folder."""
    events = EventAccumulator(str(tb_dir))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def assert_quiet(output: str) -> None:
    """Lightning's messages that do not apply to these runs stay out of what the user reads."""
    for noise in ("litlogger", "not resumable", "weights_only", "LeafSpec", "Total Flops"):
        assert noise not in output, noise


def test_a_kill_before_the_first_checkpoint_starts_over_with_one_curve(small_pool, tmp_path):
    cmd = train_cmd(small_pool, tmp_path, "early", "data.tokens=60K")
    events = tmp_path / "early" / "tb"
    process = subprocess.Popen(cmd, cwd=ROOT, env=DETERMINISTIC, stdout=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list(events.glob("events.out.tfevents.*")):
        assert process.poll() is None and time.time() < deadline
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert not (tmp_path / "early" / "checkpoints").exists()
    done = run_to_end(cmd)
    assert "an earlier attempt left no checkpoint; the run starts over" in done.stdout
    writers = {path.name.split(".")[-2] for path in events.glob("events.out.tfevents.*")}
    assert len(writers) == 1  # only the new attempt's process wrote events
    steps = logged_steps(events, "train/loss")
    assert steps == sorted(set(steps))


def test_resume_refuses_other_data(small_pool, tmp_path):
    """Stopped on one pool and rerun without data.pool, a run would resume on the embedded pool
    (another tokenizer) and record a result of neither; so would another mixture."""
    cmd = train_cmd(
        small_pool, tmp_path, "moved", "data.tokens=60K", "trainer.checkpoint_every_steps=10"
    )
    start_and_signal(cmd, tmp_path / "moved" / "checkpoints" / "last.ckpt", signal.SIGKILL)
    without_pool = [arg for arg in cmd if not arg.startswith("data.pool=")]
    out = subprocess.run(without_pool, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "holds a checkpoint of a different run" in out.stderr
    assert "pool: " in out.stderr and "tokenizer: " in out.stderr
    out = subprocess.run(
        [*cmd, "run.seed=3"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 2 and "run.seed: 0 -> 3" in out.stderr
    assert not (tmp_path / "moved" / "result.json").exists()


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
    resumed = run_to_end(cmd)
    assert result(tmp_path, "preempted")["val_bpc"] == uninterrupted["val_bpc"]
    assert_quiet(output + resumed.stdout + resumed.stderr)


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
    with pytest.raises(runner.RunFailed, match="loss became"):
        runner.train(cfg)
    failed = result(tmp_path, "nan")
    assert failed["status"] == "failed" and failed["step"] > 0
    with pytest.raises(runner.RunFailed, match="failed before"):
        runner.train(cfg)  # never resumed silently


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


def test_three_ranks_validate_in_equal_batch_counts_exactly(small_pool, tmp_path):
    """Validation windows not divisible by 3, one window per batch: without padding the ranks'
    batch counts differ (a hang under FSDP). Padded, the three ranks' BPC is the one-process BPC
    of the same final weights, and every token is scored once."""
    seq_len = 48
    windows = -(-(len(small_pool.val_tokens) - 1) // seq_len)
    assert windows % 3  # shares of unequal size
    run_to_end(
        train_cmd(
            small_pool,
            tmp_path,
            "three",
            *("data.tokens=30K", "optim.batch_tokens=144", f"data.seq_len={seq_len}"),
            *("optim.micro_batch=1", "trainer.devices=3", "trainer.strategy=ddp"),
        )
    )
    three = result(tmp_path, "three")
    assert three["plan"]["world_size"] == 3
    assert three["val_chars"] == small_pool.meta["val"]["chars"]
    checkpoint = torch.load(tmp_path / "three" / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == three["steps"]
    module = DecoderLM(**checkpoint["hyper_parameters"])
    module.load_state_dict(checkpoint["state_dict"])
    bpc = ValidationBPC()
    datamodule = PoolDataModule(lambda: small_pool, lambda: None, 1.0, seq_len, 1, 1, 1, 7)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[bpc])
    trainer.validate(module, datamodule=datamodule, verbose=False)
    assert bpc.result["chars"] == three["val_chars"]
    assert bpc.result["bpc"] == pytest.approx(three["val_bpc"], rel=1e-6)


def test_resume_on_two_devices_keeps_the_global_batch(small_pool, tmp_path):
    """Killed on one device, resumed on two: Step Law's batch would be laid out as 6 sequences
    on one device and 4 on two, but the resumed run keeps its 6 (1 x 3 per device instead of
    3 x 2) and its step count, and ends where the uninterrupted run ends."""
    same = ["data.tokens=60K", "optim.micro_batch=3", "trainer.checkpoint_every_steps=10"]
    run_to_end(train_cmd(small_pool, tmp_path, "whole", *same))
    cmd = train_cmd(small_pool, tmp_path, "moved", *same)
    start_and_signal(cmd, tmp_path / "moved" / "checkpoints" / "last.ckpt", signal.SIGKILL)
    done = run_to_end([*cmd, "trainer.devices=2", "trainer.strategy=ddp"])
    assert "resuming from" in done.stdout
    whole, moved = result(tmp_path, "whole"), result(tmp_path, "moved")
    assert (whole["plan"]["micro_batch"], whole["plan"]["grad_accumulation"]) == (3, 2)
    assert moved["plan"]["world_size"] == 2
    assert (moved["plan"]["micro_batch"], moved["plan"]["grad_accumulation"]) == (1, 3)
    assert moved["plan"]["global_batch_sequences"] == whole["plan"]["global_batch_sequences"] == 6
    assert moved["steps"] == whole["steps"]
    assert moved["val_bpc"] == pytest.approx(whole["val_bpc"], rel=0.01)
    # Every optimizer step after the move took exactly one global batch (3 micro-batches per
    # device): Lightning's micro-batch count, which places the steps, stayed aligned.
    last = torch.load(tmp_path / "moved" / "checkpoints" / "last.ckpt", weights_only=False)
    seen = last["loops"]["fit_loop"]["epoch_loop.batch_progress"]["total"]["ready"]
    assert last["global_step"] > 10 and seen == 3 * last["global_step"]


def test_resume_refuses_a_changed_plan(small_pool, tmp_path):
    cmd = train_cmd(small_pool, tmp_path, "changed", "data.tokens=60K", "optim.micro_batch=3")
    cmd.append("trainer.checkpoint_every_steps=10")
    start_and_signal(cmd, tmp_path / "changed" / "checkpoints" / "last.ckpt", signal.SIGKILL)
    done = subprocess.run(
        [*cmd, "data.tokens=80K"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    assert "data.tokens: 60000 -> 80000" in done.stderr
    odd = subprocess.run(
        [*cmd, "trainer.devices=4", "trainer.strategy=ddp"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert odd.returncode == 2 and "cannot share evenly" in odd.stderr


def test_non_finite_loss_after_the_last_check_is_still_a_failure(small_pool, tmp_path):
    """The guard checks every log_every_steps; a loss that turns NaN after its last check still
    leaves a NaN model, which validation sees: the run is failed, never completed."""
    cfg = load_config(
        [
            f"data.pool={small_pool.path}",
            f"run.dir={tmp_path}",
            "run.name=late_nan",
            *TINY,
            "data.tokens=20K",
            "optim.lr=1e12",
            "trainer.log_every_steps=100000",
        ]
    )
    with pytest.raises(runner.RunFailed, match="validation BPC is nan"):
        runner.train(cfg)
    assert result(tmp_path, "late_nan")["status"] == "failed"


def test_wall_clock_adds_up_the_sessions_of_a_resumed_run():
    clock = WallClock()
    clock.load_state_dict({"seconds": 100.0})  # what the checkpoint had accumulated
    assert 100.0 <= clock.seconds() < 110.0
    assert clock.state_dict()["seconds"] >= 100.0
