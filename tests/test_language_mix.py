"""Language-controlled pools (issue 20 item 1): any mixture served from one pool, nested in D,
per-language validation shares, and decontamination across languages."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from configs import ConfigError, load_config
from datamodules.language_mix import (
    LanguageMix,
    LanguageMixError,
    chunk_order,
    mixed_stream,
    parse_languages,
    trained_languages,
)
from datamodules.mixture import BudgetError
from datamodules.pool import TokenPool
from datamodules.prepare import PrepareSpec, prepare
from lightning_modules.run_identity import run_identity
from tests.conftest import synthetic_code, write_tree

SEQ = 16


@pytest.fixture(scope="module")
def three_languages(tmp_path_factory) -> TokenPool:
    """Python (300 files), C (120) and C++ (40) training files; validation held out by name."""
    base = Path(tmp_path_factory.mktemp("langs"))
    write_tree(base / "train", 300, 11, ".py")
    write_tree(base / "train", 120, 12, ".c")
    write_tree(base / "train", 40, 13, ".cpp")
    spec = PrepareSpec(code=(str(base / "train"),), val_fraction=0.1, vocab_size=300)
    return prepare(spec, base / "pool", workers=1, progress=False)


def test_weights_are_read_canonicalised_and_normalised():
    assert parse_languages("python=2, c=1,cpp=1") == {"C": 0.25, "C++": 0.25, "Python": 0.5}
    with pytest.raises(ConfigError, match="NAME=WEIGHT"):
        parse_languages("Python=0.5,C")
    with pytest.raises(LanguageMixError, match="C\\+\\+ twice"):
        parse_languages("cpp=1,C++=1")


def test_chunk_order_by_hand():
    # keys (j + 1/2) / p: A 1, 3, 5, 7, 9; B 1.67, 5, 8.33; C 2.5, 7.5; the tie at 5 goes to A
    order = chunk_order({"A": 0.5, "B": 0.3, "C": 0.2}, 10)
    assert "".join("ABC"[i] for i in order) == "ABCAABACBA"


@pytest.mark.parametrize("seed", range(5))
def test_every_prefix_keeps_each_language_near_its_share(seed):
    rng = np.random.default_rng(seed)
    raw = rng.dirichlet(np.ones(rng.integers(2, 7)))
    weights = {f"L{i}": float(w) for i, w in enumerate(raw)}
    owners = chunk_order(weights, 3000)
    counts = np.cumsum(np.eye(len(weights))[owners], axis=0)  # counts after each prefix
    k = np.arange(1, 3001)[:, None]
    p = np.asarray([weights[name] for name in sorted(weights)])
    bound = (1 + len(p) * p) / 2  # the divisor method's deviation bound (module docstring)
    assert (np.abs(counts - k * p) <= bound + 1e-9).all()
    assert np.array_equal(chunk_order(weights, 1000), owners[:1000])  # nested


def _documents_of(pool: TokenPool, name: str) -> np.ndarray:
    """The language's documents, concatenated, found one document at a time."""
    code, starts, langs = (
        pool.stream("code"),
        pool.documents("code"),
        pool.document_languages("code"),
    )
    wanted = pool.languages.index(name)
    pieces = [code[starts[i] : starts[i + 1]] for i in range(len(langs)) if langs[i] == wanted]
    return np.concatenate(pieces)


def test_each_language_is_read_in_order_and_budgets_nest(three_languages):
    weights = {"C": 0.3, "C++": 0.2, "Python": 0.5}
    mix = LanguageMix(three_languages, weights, SEQ)
    tokens = 40 * SEQ
    head = mix.stream(tokens)
    assert np.array_equal(mix.stream(tokens // 2), head[: tokens // 2])
    owners = chunk_order(weights, 40)
    chunks = head.reshape(40, SEQ)
    for i, name in enumerate(sorted(weights)):
        mine = chunks[owners == i].ravel()
        assert np.array_equal(mine, _documents_of(three_languages, name)[: len(mine)])
        assert abs(len(mine) / tokens - weights[name]) <= SEQ * 2 / tokens


def test_supply_and_unknown_languages_are_named(three_languages):
    mix = LanguageMix(three_languages, {"C++": 0.5, "Python": 0.5}, SEQ)
    supply = mix.tokens_by_language()["C++"]
    with pytest.raises(BudgetError, match="C\\+\\+ tokens but the pool has"):
        mix.stream(4 * supply)
    with pytest.raises(LanguageMixError, match="Rust.*its languages: C, C\\+\\+, Python"):
        LanguageMix(three_languages, {"Rust": 1.0}, SEQ)


def test_code_nl_mix_over_a_language_mix_counts_exactly(three_languages):
    weights = {"C": 0.5, "Python": 0.5}
    stream = mixed_stream(three_languages, 1.0, SEQ, weights, tokens=64 * SEQ)
    stream.check_budget(64 * SEQ)
    record = trained_languages(three_languages, 1.0, SEQ, weights, 64 * SEQ)
    assert record["weights"] == weights
    assert sum(record["tokens"].values()) == 64 * SEQ + 1  # inputs and the last target
    assert abs(record["tokens"]["C"] - 32 * SEQ) <= SEQ


def test_languages_key_is_checked_and_leaves_default_identities_alone():
    with pytest.raises(ConfigError, match="data.languages.*LANGUAGE=WEIGHT"):
        load_config(["data.languages=Python"])
    default = run_identity(load_config([]), {"pool": "x"})
    assert "data.languages" not in default
    mixed = run_identity(load_config(["data.languages=Python=1"]), {"pool": "x"})
    assert mixed["data.languages"] == "Python=1"


def test_small_languages_get_their_own_validation_share(tmp_path):
    write_tree(tmp_path / "train", 200, 21, ".py")
    write_tree(tmp_path / "train", 200, 22, ".c")
    spec = PrepareSpec(
        code=(str(tmp_path / "train"),),
        val_fraction=0.02,
        val_fraction_by_language={"C": 0.5},
        vocab_size=300,
    )
    val = prepare(spec, tmp_path / "pool", workers=1, progress=False).meta["val"]
    files = val["by_language"]
    assert 60 <= files["C"]["documents"] <= 140  # binomial(200, 0.5): mean 100, sd 7
    assert files.get("Python", {}).get("documents", 0) <= 12  # binomial(200, 0.02): mean 4
    with pytest.raises(Exception, match="val-fraction-by-language"):
        PrepareSpec(code=("x",), val_fraction_by_language={"C": 1.5})


@pytest.mark.filterwarnings("ignore:the validation set has only")
def test_validation_is_decontaminated_against_other_languages(tmp_path):
    """A C validation file copied into training as C++ (a header renamed, a vendored copy) is
    removed from training: decontamination compares text, whatever the language."""
    rng = random.Random(3)
    shared = synthetic_code(rng, 12)
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "kernel.c").write_text(shared)
    write_tree(tmp_path / "train", 60, 31, ".cpp")
    (tmp_path / "train" / "kernel_copy.cpp").write_text(shared)
    spec = PrepareSpec(
        code=(str(tmp_path / "train"),), val=(str(tmp_path / "val"),), vocab_size=300
    )
    pool = prepare(spec, tmp_path / "pool", workers=1, progress=False)
    assert pool.meta["removed"]["exact_duplicates_of_validation"] == 1
    assert pool.meta["train"]["code"]["documents"] == 60


def test_a_run_trains_on_its_language_mix_and_records_it(three_languages, tmp_path):
    from lightning_modules import run as runner
    from tests.test_train_e2e import tiny_run

    cfg = tiny_run(three_languages, tmp_path, "data.tokens=16K", "data.languages=python=1,C=3")
    result = runner.train(cfg)
    record = result["languages"]
    assert record["weights"] == {"C": 0.75, "Python": 0.25}
    trained = sum(record["tokens"].values())
    assert trained == result["tokens"] + 1
    assert abs(record["tokens"]["C"] - 0.75 * trained) <= 64  # within one sequence
    assert set(result["val_bpc_by_language"]) == {"C", "C++", "Python"}
    with pytest.raises(LanguageMixError, match="Rust"):
        runner.train(tiny_run(three_languages, tmp_path / "x", "data.languages=Rust=1"))
