"""`OUT.partial/` after a failed or interrupted prepare: a build that finished no part never
blocks a corrected command; one that finished parts resumes with its own arguments only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_tree

from datamodules import prepare as prepare_module
from datamodules.pool import PoolError
from datamodules.prepare import PrepareSpec, prepare

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trees(tmp_path_factory) -> Path:
    """Three code folders of 40 files (a part each) and a validation folder of 30 files."""
    root = Path(tmp_path_factory.mktemp("partial"))
    for i in range(3):
        write_tree(root / f"code{i}", 40, 10 + i)
    write_tree(root / "val", 30, 1)
    return root


def spec_for(root: Path, **changes) -> PrepareSpec:
    fields = dict(
        code=tuple(str(root / f"code{i}") for i in range(3)),
        val=(str(root / "val"),),
        vocab_size=300,
    )
    return PrepareSpec(**{**fields, **changes})


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datamodules", "prepare", "--no-progress", "--workers", "1", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_mistyped_or_empty_source_does_not_block_the_corrected_command(trees, tmp_path):
    out = tmp_path / "pool"
    base = ["--code", str(trees / "code0"), "--out", str(out), "--vocab-size", "300"]
    mistyped = cli(*base, "--val", str(trees / "vla"))
    assert mistyped.returncode == 2 and "does not exist" in mistyped.stderr
    (tmp_path / "empty.jsonl").write_text("")
    empty = cli(*base, "--val", str(tmp_path / "empty.jsonl"))
    assert empty.returncode == 2 and "validation set is empty" in empty.stderr
    assert not out.with_name("pool.partial").exists()
    corrected = cli(*base, "--val", str(trees / "val"))
    assert corrected.returncode == 0, corrected.stderr
    info = json.loads(corrected.stdout[corrected.stdout.index("\n{") :])
    assert info["val"]["documents"] == 30


class Interrupt(BaseException):
    """Stands for a kill: nothing catches it."""


def interrupt_after(monkeypatch, parts: int) -> None:
    """Make prepare stop, like a kill, once `parts` parts are finished."""
    original, done = prepare_module.encode_part, []

    def encode_part(*args):
        if len(done) == parts:
            raise Interrupt
        original(*args)
        done.append(args)

    monkeypatch.setattr(prepare_module, "encode_part", encode_part)


def test_a_partial_with_no_finished_part_is_replaced(trees, tmp_path, monkeypatch, capsys):
    """Killed while its first part was encoding: its tokenizer and validation set were made with
    the other arguments, so the new command starts over in their place."""
    out = tmp_path / "pool"
    interrupt_after(monkeypatch, 0)
    with pytest.raises(Interrupt):
        prepare(spec_for(trees, seed=1), out, workers=1, progress=False)
    monkeypatch.undo()
    partial = out.with_name("pool.partial")
    assert (partial / "tokenizer.json").exists() and not list(partial.glob("parts/*.json"))
    pool = prepare(spec_for(trees, seed=2), out, workers=1, progress=False)
    assert "replacing" in capsys.readouterr().err
    fresh = prepare(spec_for(trees, seed=2), tmp_path / "fresh", workers=1, progress=False)
    for name in ("code.bin", "val.bin", "tokenizer.json"):
        assert (pool.path / name).read_bytes() == (fresh.path / name).read_bytes(), name
    assert pool.meta["spec"]["seed"] == 2


def test_a_partial_with_finished_parts_resumes_only_with_its_arguments(
    trees, tmp_path, monkeypatch
):
    out = tmp_path / "pool"
    interrupt_after(monkeypatch, 1)
    with pytest.raises(Interrupt):
        prepare(spec_for(trees), out, workers=1, progress=False)
    monkeypatch.undo()
    assert len(list(out.with_name("pool.partial").glob("parts/*.json"))) == 1
    with pytest.raises(PoolError, match="holds an interrupted prepare with other arguments"):
        prepare(spec_for(trees, seed=99), out, workers=1, progress=False)
    encoded = []
    original = prepare_module.encode_part
    monkeypatch.setattr(
        prepare_module, "encode_part", lambda *a: (encoded.append(a[2].name), original(*a))
    )
    pool = prepare(spec_for(trees), out, workers=1, progress=False)
    assert encoded == ["code-000001", "code-000002"]  # the finished part is not redone
    assert pool.meta["train"]["code"]["documents"] == 120
