"""Data pipeline throughput: how fast `prepare` turns text into a pool, and how fast the
training dataloader serves tokens, on this machine.

    python bench/data_throughput.py [--mb 64] [--workers N] [--seq-len 2048] [--micro-batch 8]
                                    [--seconds 3]

The corpus is this Python's standard library written into parquet shards (real code, ~30 MB,
repeated to reach --mb). Prepare rows give wall seconds and CPU seconds (this process and its
workers): on a machine shared with other jobs the CPU column is the steadier number. The loader
target: one H100 training the fastest Table 2 shape (201M) at 45% MFU consumes about
0.45 * 989e12 / flops_per_token tokens/s; the loader must serve at least 10x that.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datamodules.prepare import PrepareSpec, prepare
from datamodules.sources import stdlib_code_documents

H100_BF16_PEAK = 989e12


def write_corpus(root: Path, megabytes: float) -> float:
    """Stdlib sources as parquet shards of ~8 MB, repeated (with a marker) up to `megabytes`."""
    docs = [d.text for d in stdlib_code_documents()]
    root.mkdir(parents=True)
    written, shard, rows, size, copy = 0, 0, [], 0, 0
    while written < megabytes * 1e6:
        for text in docs:
            text = f"# copy {copy}\n{text}"
            rows.append(text)
            size += len(text.encode())
            if size > 8e6:
                pq.write_table(pa.table({"content": rows}), root / f"shard-{shard:04d}.parquet")
                written, shard, rows, size = written + size, shard + 1, [], 0
            if written >= megabytes * 1e6:
                break
        copy += 1
    if rows:
        pq.write_table(pa.table({"content": rows}), root / f"shard-{shard:04d}.parquet")
        written += size
    return written / 1e6


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (prepare's workers)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def flops_per_token(seq_len: int, vocab: int = 65536) -> float:
    """Training FLOPs per token of the 201M shape: 6 x (non-embedding + output-layer
    parameters) plus attention's 12 x layers x seq_len x d_model."""
    from lightning_modules.shape import shape_for_target  # torch: see main()

    shape = shape_for_target(2e8)
    return (
        6 * (shape.n_params + vocab * shape.d_model) + 12 * shape.n_layer * seq_len * shape.d_model
    )


def h100_tokens_per_second(seq_len: int) -> float:
    return 0.45 * H100_BF16_PEAK / flops_per_token(seq_len)


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--mb", type=float, default=64)
    args.add_argument("--workers", type=int, default=os.cpu_count())
    args.add_argument("--seq-len", type=int, default=2048)
    args.add_argument("--micro-batch", type=int, default=8)
    args.add_argument("--seconds", type=float, default=3.0, help="time each loader this long")
    a = args.parse_args()
    # Imported here, not at the top: prepare's spawned workers import this module again, and
    # torch would add seconds to each that `python -m datamodules prepare` does not pay.
    from datamodules.datamodule import PoolDataModule

    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        megabytes = write_corpus(tmp / "corpus", a.mb)
        base = dict(code=(str(tmp / "corpus"),), val_fraction=0.01, tokenizer_sample_bytes=16 << 20)
        started, cpu = time.perf_counter(), cpu_seconds()
        first = prepare(PrepareSpec(**base, vocab_size=32768), tmp / "pool-a", a.workers, False)
        wall = time.perf_counter() - started
        rows.append(
            (
                "prepare (BPE training + tokenize)",
                megabytes / wall,
                "MB/s",
                wall,
                cpu_seconds() - cpu,
            )
        )
        started, cpu = time.perf_counter(), cpu_seconds()
        spec = PrepareSpec(**base, vocab_size=None, tokenizer=str(first.path / "tokenizer.json"))
        pool = prepare(spec, tmp / "pool-b", a.workers, False)
        wall = time.perf_counter() - started
        rows.append(
            ("prepare (given tokenizer)", megabytes / wall, "MB/s", wall, cpu_seconds() - cpu)
        )

        tokens = pool.meta["train"]["code"]["tokens"]
        steps = tokens // (a.micro_batch * a.seq_len) - 1
        for workers in (0, 2):
            dm = PoolDataModule(
                lambda: pool,
                lambda: None,
                1.0,
                a.seq_len,
                a.micro_batch,
                a.micro_batch,
                steps,
                a.micro_batch,
                workers,
            )
            dm.setup("fit")
            # Whole passes over the pool until --seconds have passed; each pass starts the
            # loader's worker processes again, so the rate is a lower bound.
            count, started = 0, time.perf_counter()
            while time.perf_counter() - started < a.seconds:
                for batch in dm.train_dataloader():
                    count += batch[:, :-1].numel()
            wall = time.perf_counter() - started
            rows.append((f"loader, num_workers={workers}", count / wall, "tokens/s", wall, None))
    need = h100_tokens_per_second(a.seq_len)
    print(
        f"corpus {megabytes:.0f} MB of stdlib code; {a.workers} prepare workers; "
        f"{os.cpu_count()} cores; load average {load:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )
    print(f"{'what':36s} {'rate':>14s} {'unit':8s} {'wall s':>7s} {'CPU s':>7s}")
    for what, rate, unit, wall, cpu in rows:
        cpu_text = "-" if cpu is None else f"{cpu:.1f}"
        print(f"{what:36s} {rate:14,.1f} {unit:8s} {wall:7.1f} {cpu_text:>7s}")
    print(
        f"H100 at 45% MFU on 201M, seq {a.seq_len}: 0.45 x {H100_BF16_PEAK:.3g} / "
        f"{flops_per_token(a.seq_len):.4g} FLOPs per token = {need:,.0f} tokens/s; "
        f"10x = {10 * need:,.0f}"
    )


if __name__ == "__main__":
    main()
