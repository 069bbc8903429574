"""Training order as a function of the global step, and the embedded default pool builder."""

import numpy as np
import pytest

from datamodules.datamodule import GlobalStepSampler, TrainSequences
from datamodules.pool import TokenPool, build_stdlib_pool, unigram_bits_per_char
from datamodules.sources import is_validation, stdlib_code_documents


def global_batches(global_batch, micro, world, start, total):
    """Sequence indices of each global step, gathered over ranks and micro-batches."""
    per_step = {}
    for rank in range(world):
        sampler = GlobalStepSampler(global_batch, micro, rank, world, start, total)
        batches = list(sampler)
        assert len(batches) == len(sampler)
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


def test_train_sequences_overlap_by_one_token():
    seqs = TrainSequences(np.arange(100, dtype=np.uint16), seq_len=10)
    assert len(seqs) == 9
    assert seqs[0].tolist() == list(range(11)) and seqs[1][0].item() == 10
    assert seqs[0].dtype.is_floating_point is False


@pytest.fixture
def fake_stdlib(tmp_path):
    root = tmp_path / "lib"
    for i in range(60):
        (root / "pkg").mkdir(parents=True, exist_ok=True)
        (root / "pkg" / f"mod{i}.py").write_text(
            f"def f{i}(x):\n    return x * {i} + {i % 7}\n" * 20
        )
    (root / "pkg" / "copy.py").write_text((root / "pkg" / "mod1.py").read_text())
    (root / "latin.py").write_bytes("# caf\xe9\n".encode("latin-1"))
    (root / "site-packages").mkdir()
    (root / "site-packages" / "third_party.py").write_text("x = 1\n")
    return root


def test_stdlib_source_skips_installed_packages_and_names_bad_files(fake_stdlib):
    with pytest.warns(UserWarning, match="latin.py"):
        paths = [d.path for d in stdlib_code_documents(fake_stdlib)]
    assert "site-packages/third_party.py" not in paths and len(paths) == 61


def test_stdlib_pool(fake_stdlib, tmp_path):
    with pytest.warns(UserWarning):
        pool = build_stdlib_pool(tmp_path / "pool", 300, 0.2, seed=0, root=fake_stdlib)
    reopened = TokenPool(tmp_path / "pool")
    n_val = sum(is_validation(f"pkg/mod{i}.py", 0.2) for i in range(60))
    n_val += is_validation("pkg/copy.py", 0.2)
    assert reopened.meta["val"]["documents"] == n_val
    # mod1.py and copy.py are identical: at most one copy reaches train, none if one is held out
    both_held_out = is_validation("pkg/mod1.py", 0.2) and is_validation("pkg/copy.py", 0.2)
    removed = 0 if both_held_out else 1
    assert reopened.meta["train"]["documents"] == 61 - n_val - removed
    assert reopened.meta["train_exact_duplicates_removed"] == removed
    assert int((pool.train_tokens == pool.eos_id).sum()) == reopened.meta["train"]["documents"]
    assert 0 < unigram_bits_per_char(pool) < 8
    with pytest.raises(FileExistsError, match="never rewritten"):
        build_stdlib_pool(tmp_path / "pool", 300, 0.2, seed=0, root=fake_stdlib)
