"""Shared fixtures: a small token pool built from generated code, so tests never touch the network
and do not depend on the size of this machine's standard library."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from datamodules.pool import TokenPool, write_pool
from datamodules.sources import Document
from datamodules.tokenizer import train_bpe

NAMES = ["alpha", "beta", "gamma", "delta", "total", "count", "items", "value", "result", "node"]


def synthetic_code(rng: random.Random, n_functions: int) -> str:
    """Python-like text with real structure (and some non-ASCII), for tokenizer and model tests."""
    lines = []
    for _ in range(n_functions):
        a, b, c = rng.sample(NAMES, 3)
        lines += [
            f"def {a}_{b}({c}, scale={rng.randint(1, 9)}):",
            f'    """Return the {b} of {c} — naïve café version."""',
            f"    {a} = [{c} * scale for {c} in range({rng.randint(2, 50)})]",
            f"    if len({a}) > {rng.randint(1, 20)}:",
            f"        return sum({a}) / len({a})",
            f"    return {a}[-1]",
            "",
        ]
    return "\n".join(lines)


def make_docs(count: int, seed: int, prefix: str) -> list[Document]:
    rng = random.Random(seed)
    return [
        Document(text=synthetic_code(rng, rng.randint(2, 12)), path=f"{prefix}/{i}.py")
        for i in range(count)
    ]


@pytest.fixture(scope="session")
def small_pool(tmp_path_factory) -> TokenPool:
    train_docs, val_docs = make_docs(400, 0, "train"), make_docs(20, 1, "val")
    tokenizer = train_bpe((d.text for d in train_docs), vocab_size=384)
    out = Path(tmp_path_factory.mktemp("pool")) / "pool"
    return write_pool(out, tokenizer, train_docs, val_docs, {"source": "synthetic"})
