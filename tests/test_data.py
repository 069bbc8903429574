"""Training order as a function of the global step, and the embedded default pool."""

import json

import pytest

from datamodules import prepare as prepare_module
from datamodules import sources
from datamodules.datamodule import GlobalStepSampler
from datamodules.embedded import ensure_embedded_pool
from datamodules.pool import unigram_bits_per_char
from datamodules.sources import is_validation


def global_batches(global_batch, micro, world, start, total):
    """Sequence indices of each global step, gathered over ranks and micro-batches."""
    per_step = {}
    for rank in range(world):
        sampler = GlobalStepSampler(global_batch, micro, rank, world, start, total)
        batches = list(sampler)
        assert len(batches) + start * global_batch // world // micro == len(sampler)
        accumulation = global_batch // world // micro
        for i, batch in enumerate(batches):
            per_step.setdefault(start + i // accumulation, []).extend(batch)
    return {step: sorted(ids) for step, ids in per_step.items()}


def test_order_does_not_depend_on_world_size_or_micro_batch():
    reference = global_batches(12, 12, 1, 0, 5)
    for micro, world in [(6, 1), (3, 2), (2, 3), (1, 4), (3, 4)]:
        assert global_batches(12, micro, world, 0, 5) == reference
    assert reference[2] == list(range(24, 36))


def test_resume_starts_at_the_step():
    assert global_batches(8, 2, 2, 3, 5) == {
        k: v for k, v in global_batches(8, 4, 1, 0, 5).items() if k >= 3
    }


def test_ranks_are_disjoint():
    a = {i for batch in GlobalStepSampler(8, 2, 0, 2, 0, 3) for i in batch}
    b = {i for batch in GlobalStepSampler(8, 2, 1, 2, 0, 3) for i in batch}
    assert not a & b and a | b == set(range(24))


def test_bad_layout_is_refused():
    with pytest.raises(ValueError, match="not micro_batch"):
        GlobalStepSampler(10, 3, 0, 2, 0, 1)


def test_embedded_pool_holds_out_whole_modules(tmp_path, monkeypatch):
    """The embedded default from a fake stdlib: held-out modules appear in neither training
    stream (their code nor their docstrings), non-UTF-8 files are named, not lost silently."""
    root = tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    for i in range(40):
        prose = f"Module {i} explains how the value of x is scaled and returned to callers. " * 4
        doc = f'"""{prose}"""\n'
        (root / "pkg" / f"mod{i}.py").write_text(doc + f"def f{i}(x):\n    return x * {i}\n" * 20)
    copies = ["twin/b.py", "twin/c.py"]  # one text twice, neither held out: one is trained on
    assert not any(is_validation(name, 0.2) for name in copies)
    (root / "twin").mkdir()
    for name in copies:
        (root / name).write_text("VALUE = 'the same small module'\n")
    (root / "latin.py").write_bytes("# caf\xe9\n".encode("latin-1"))
    (root / "site-packages").mkdir()
    (root / "site-packages" / "third_party.py").write_text("x = 1\n")
    monkeypatch.setattr(sources, "stdlib_root", lambda: root)
    monkeypatch.setattr(prepare_module, "stdlib_root", lambda: root)
    pool = ensure_embedded_pool(tmp_path / "cache", "stdlib", 300, 0.2, seed=0)
    held_out = [i for i in range(40) if is_validation(f"pkg/mod{i}.py", 0.2)]
    assert pool.meta["val"]["documents"] == len(held_out) > 0
    assert pool.meta["train"]["code"]["documents"] == 40 - len(held_out) + 1
    assert pool.meta["removed"]["train_exact_duplicates"] == {"code": 1, "nl": 0}
    assert (pool.path / pool.meta["unigram_counts"]).exists()
    assert "latin.py" in json.dumps(pool.meta["skipped"])
    nl = pool.tokenizer.decode(pool.stream("nl").tolist())
    assert "Module 3 explains" in nl or 3 in held_out
    for i in held_out:
        assert f"Module {i} explains" not in nl
    assert 0 < unigram_bits_per_char(pool) < 8
    again = ensure_embedded_pool(tmp_path / "cache", "stdlib", 300, 0.2, seed=0)
    assert again.path == pool.path  # cached
