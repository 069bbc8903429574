"""Decontamination: exact (whitespace-normalised) and near (MinHash LSH) duplicates; exact
repeats within a training set."""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datamodules import dedup
from datamodules.dedup import (
    Decontaminator,
    NearDuplicateIndex,
    estimated_jaccard,
    first_occurrences,
    lsh_bands,
    minhash,
    normalized_hash,
    shingle_keys,
)

WORDS = [f"name{i}" for i in range(300)] + list("()[]{}:=+-*/.,<>") + ["def", "return", "if"]
REPO = Path(__file__).resolve().parents[1]


def code_like(rng: random.Random, n_tokens: int) -> list[str]:
    return rng.choices(WORDS, k=n_tokens)


def render(tokens: list[str]) -> str:
    return " ".join(tokens).replace(" :", ":\n   ")


def scattered_edit(tokens: list[str], fraction: float, rng: random.Random) -> list[str]:
    edited = list(tokens)
    for i in rng.sample(range(len(tokens)), round(fraction * len(tokens))):
        edited[i] = f"edit{rng.randrange(10**6)}"
    return edited


def exact_jaccard(a: str, b: str, n: int = 5) -> float:
    """Reference Jaccard of token 5-gram sets (the regex tokenizer agrees with dedup on ASCII)."""

    def shingles(text: str) -> set[tuple[str, ...]]:
        tokens = re.findall(r"\w+|[^\w\s]", text)
        return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}

    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


@pytest.fixture(scope="module")
def corpus():
    rng = random.Random(7)
    validation = [code_like(rng, 1500) for _ in range(30)]
    return rng, validation, Decontaminator(render(t) for t in validation)


def test_whitespace_variant_is_exact(corpus):
    _, validation, decontaminator = corpus
    text = render(validation[3])
    variant = "\n\n  " + text.replace(" ", "\t ").replace("\n", "\r\n") + "  \n"
    assert normalized_hash(variant) == normalized_hash(text) != normalized_hash(text + " x")
    assert decontaminator.check(variant) == "exact"


def test_small_edits_are_near_and_heavy_edits_or_unrelated_are_not(corpus):
    rng, validation, decontaminator = corpus
    original = validation[5]
    scattered = scattered_edit(original, 0.01, rng)  # touches ~5% of the 5-grams
    block = original[:600] + [f"new{i}" for i in range(75)] + original[675:]  # 5% rewritten
    for tokens in [scattered, block]:
        # >= 0.85, not just 0.8: within a few points of the threshold the 128-permutation
        # estimate (standard deviation ~0.035) decides either way
        assert exact_jaccard(render(tokens), render(original)) >= 0.85
        assert decontaminator.check(render(tokens)) == "near"
    assert decontaminator.index.query(decontaminator.signature(render(block))) == 5
    heavy = scattered_edit(original, 0.3, rng)
    assert exact_jaccard(render(heavy), render(original)) < 0.5
    assert decontaminator.check(render(heavy)) is None
    for _ in range(20):
        assert decontaminator.check(render(code_like(rng, 1500))) is None


def test_minhash_estimates_jaccard():
    rng = random.Random(3)
    errors = []
    for fraction in [0.0, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 1.0]:
        tokens = code_like(rng, 2000)
        a, b = render(tokens), render(scattered_edit(tokens, fraction, rng))
        errors.append(estimated_jaccard(minhash(a), minhash(b)) - exact_jaccard(a, b))
    assert max(map(abs, errors)) < 0.15  # a binomial estimate: std <= 0.044 at 128 permutations
    assert np.mean(np.abs(errors)) < 0.05


def test_tokens_ignore_whitespace_but_keep_punctuation():
    assert np.array_equal(shingle_keys("f(a,b)\n\treturn  x"), shingle_keys("f ( a , b ) return x"))
    assert not np.array_equal(shingle_keys("ab c d e f"), shingle_keys("a bc d e f"))
    assert len(shingle_keys("x = 1")) == 1  # shorter than 5 tokens: one shingle of all of it
    # non-ASCII bytes join words: naïve_café = f ( x ) —y
    assert len(dedup._token_hashes("naïve_café = f(x)—y")) == 7


def test_long_documents_are_chunked_without_changing_the_result(monkeypatch):
    text = render(code_like(random.Random(1), 60_000))
    reference = minhash(text)
    monkeypatch.setattr(dedup, "PIECE", 1000)
    monkeypatch.setattr(dedup, "CHUNK", 100)
    dedup._powers.cache_clear()
    try:
        assert np.array_equal(minhash(text), reference)
    finally:
        dedup._powers.cache_clear()


def test_signatures_are_the_same_in_another_process():
    text = "def f(x):\n    return x + 1  # naïve\n" * 20
    script = (
        "import json, sys; from datamodules.dedup import minhash; "
        "print(json.dumps(minhash(sys.stdin.read()).tolist()))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", script], input=text, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == minhash(text).tolist()
    # pinned, so a change of hashing (or a numpy that computes differently) cannot go unnoticed
    pinned = [1944795812, 3055289785, 1143733139, 125524466]
    assert minhash("def f(x):\n    return x\n")[:4].tolist() == pinned


def test_index_is_picklable_and_compact(corpus):
    _, validation, decontaminator = corpus
    copy = pickle.loads(pickle.dumps(decontaminator))
    near = render(validation[0][:-10])
    assert copy.check(near) == decontaminator.check(near) == "near"
    assert len(pickle.dumps(decontaminator.index)) < 30 * (4 * 128 + 12 * 21) + 2000
    assert Decontaminator([]).check("anything") is None


def test_band_choice():
    assert lsh_bands(0.8) == 6  # 21 bands of 6 rows
    assert lsh_bands(0.9) == 10
    with pytest.raises(ValueError, match="threshold"):
        NearDuplicateIndex(np.zeros((1, 128), np.uint32), threshold=0.0)


def test_first_occurrences_keep_the_earliest_of_each_text():
    texts = ["a b", "c", "a  b", "d", "c", "a\nb", "e"]
    digests = np.frombuffer(b"".join(normalized_hash(t) for t in texts), np.uint64).reshape(-1, 2)
    assert first_occurrences(digests).tolist() == [True, True, False, True, False, False, True]
    assert first_occurrences(digests[:0]).tolist() == []
