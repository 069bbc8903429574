"""Data pipeline throughput: how fast `prepare` turns text into a pool, and how fast the
training dataloader serves tokens, on this machine.

    python bench/data_throughput.py [--mb 64] [--workers N] [--seq-len 2048] [--micro-batch 8]

The corpus is this Python's standard library written into parquet shards (real code, ~30 MB,
repeated to reach --mb). The loader target: one H100 training the fastest Table 2 shape (201M)
at 45% MFU consumes about 0.45 * 989e12 / flops_per_token tokens/s; the loader must serve at
least 10x that.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from datamodules.datamodule import PoolDataModule
from datamodules.prepare import PrepareSpec, prepare
from datamodules.sources import stdlib_code_documents
from lightning_modules.shape import shape_for_target

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


def h100_tokens_per_second(seq_len: int, vocab: int = 65536) -> float:
    shape = shape_for_target(2e8)
    flops = (
        6 * (shape.n_params + vocab * shape.d_model) + 12 * shape.n_layer * seq_len * shape.d_model
    )
    return 0.45 * H100_BF16_PEAK / flops


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args.add_argument("--mb", type=float, default=64)
    args.add_argument("--workers", type=int, default=os.cpu_count())
    args.add_argument("--seq-len", type=int, default=2048)
    args.add_argument("--micro-batch", type=int, default=8)
    args.add_argument("--batches", type=int, default=2000)
    a = args.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        megabytes = write_corpus(tmp / "corpus", a.mb)
        base = dict(code=(str(tmp / "corpus"),), val_fraction=0.01, tokenizer_sample_bytes=16 << 20)
        started = time.perf_counter()
        first = prepare(PrepareSpec(**base, vocab_size=32768), tmp / "pool-a", a.workers, False)
        rows.append(
            (
                "prepare (BPE training + tokenize)",
                megabytes / (time.perf_counter() - started),
                "MB/s",
            )
        )
        started = time.perf_counter()
        spec = PrepareSpec(**base, vocab_size=None, tokenizer=str(first.path / "tokenizer.json"))
        pool = prepare(spec, tmp / "pool-b", a.workers, False)
        rows.append(
            ("prepare (given tokenizer)", megabytes / (time.perf_counter() - started), "MB/s")
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
            loader = dm.train_dataloader()
            count, started = 0, time.perf_counter()
            for i, batch in enumerate(loader):
                count += batch[:, :-1].numel()
                if i == a.batches:
                    break
            rows.append(
                (
                    f"loader, num_workers={workers}",
                    count / (time.perf_counter() - started),
                    "tokens/s",
                )
            )
    need = h100_tokens_per_second(a.seq_len)
    print(
        f"corpus {megabytes:.0f} MB of stdlib code; {a.workers} prepare workers; "
        f"{os.cpu_count()} cores"
    )
    print(f"{'what':40s} {'rate':>14s}")
    for what, rate, unit in rows:
        print(f"{what:40s} {rate:14,.1f} {unit}")
    print(f"H100 at 45% MFU on 201M, seq {a.seq_len}: {need:,.0f} tokens/s; 10x = {10 * need:,.0f}")


if __name__ == "__main__":
    main()
