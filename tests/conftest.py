"""Shared fixtures: small token pools built by the real `prepare` from generated code, so tests
never touch the network and do not depend on this machine's standard library."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from datamodules.pool import TokenPool
from datamodules.prepare import PrepareSpec, prepare
from laws.fit.paper import EQ1_CHINCHILLA, EQ2_FARSEER

NAMES = ["alpha", "beta", "gamma", "delta", "total", "count", "items", "value", "result", "node"]
WORDS = "the a model reads data from which each value returns when list of code and text".split()


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


def synthetic_prose(rng: random.Random, n_sentences: int) -> str:
    sentences = [
        " ".join(rng.choices(WORDS, k=rng.randint(5, 14))).capitalize() + "."
        for _ in range(n_sentences)
    ]
    return " ".join(sentences)


def write_tree(root: Path, count: int, seed: int, suffix: str = ".py") -> Path:
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"{seed}-{i:04d}{suffix}").write_text(
            synthetic_code(rng, rng.randint(2, 12)), encoding="utf-8"
        )
    return root


@pytest.fixture(scope="session")
def small_pool(tmp_path_factory) -> TokenPool:
    """Pure code: 400 training files; 20 validation files, 14 `.py` and 6 `.java` (two languages
    for per-language BPC); vocabulary 384."""
    base = Path(tmp_path_factory.mktemp("pool"))
    write_tree(base / "val", 14, 1)
    write_tree(base / "val", 6, 2, suffix=".java")
    spec = PrepareSpec(
        code=(str(write_tree(base / "train", 400, 0)),),
        val=(str(base / "val"),),
        vocab_size=384,
    )
    return prepare(spec, base / "pool", workers=1, progress=False)


@pytest.fixture(scope="session")
def one_language_pool(tmp_path_factory) -> TokenPool:
    """What a user with a Python-only subset of The Stack has: code only, one language (Python)
    in training and validation, no NL; vocabulary 384."""
    base = Path(tmp_path_factory.mktemp("python_pool"))
    spec = PrepareSpec(
        code=(str(write_tree(base / "train", 300, 5)),),
        val=(str(write_tree(base / "val", 30, 6)),),
        vocab_size=384,
    )
    return prepare(spec, base / "pool", workers=1, progress=False)


@pytest.fixture
def paper_fits(tmp_path):
    """The paper's Eq. 1 (Chinchilla) and Eq. 2 (Farseer) typed in as law files."""
    eq1, eq2 = tmp_path / "eq1.json", tmp_path / "eq2.json"
    eq1.write_text(json.dumps(EQ1_CHINCHILLA.to_json()))
    eq2.write_text(json.dumps(EQ2_FARSEER.to_json()))
    return eq1, eq2
