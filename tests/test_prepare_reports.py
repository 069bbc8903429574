"""What prepare tells its user: the real vocabulary size, a small validation set, and what it
skipped while reading (each file once, the list capped)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import synthetic_code, write_tree

from datamodules.prepare import PrepareSpec, prepare
from datamodules.tokenizer import EOS, train_bpe

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """60 training files and 30 validation files of generated code."""
    root = Path(tmp_path_factory.mktemp("reports"))
    write_tree(root / "code", 60, 0)
    write_tree(root / "val", 30, 1)
    return root


def test_a_vocabulary_smaller_than_asked_is_reported(small, tmp_path, capsys):
    spec = PrepareSpec(code=(str(small / "code"),), val=(str(small / "val"),), vocab_size=5000)
    with pytest.warns(UserWarning, match=r"--vocab-size 5000: the tokenizer has only \d+ entries"):
        pool = prepare(spec, tmp_path / "pool", workers=1, progress=False)
    size = len(pool.tokenizer.get_vocab())
    assert pool.meta["vocab_size"] == pool.vocab_size == size < 5000
    assert f"trained the BPE: {size} entries" in capsys.readouterr().out
    assert pool.stream("code").max() < size and len(np.load(pool.path / "unigram_code.npy")) == size


def test_the_vocabulary_size_covers_every_id_of_a_given_tokenizer(small, tmp_path):
    """A tokenizer.json may leave ids unused: the pool's vocabulary is its largest id + 1, the
    rows a model's embedding needs, not its number of entries."""
    texts = [p.read_text() for p in sorted((small / "code").iterdir())]
    data = json.loads(train_bpe(texts, 300).to_str())
    data["added_tokens"][0]["id"] = data["model"]["vocab"][EOS] = 1000
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    spec = PrepareSpec(
        code=(str(small / "code"),),
        val=(str(small / "val"),),
        vocab_size=None,
        tokenizer=str(tmp_path / "tokenizer.json"),
    )
    pool = prepare(spec, tmp_path / "pool", workers=1, progress=False)
    assert pool.meta["vocab_size"] == 1001 and pool.meta["eos_id"] == 1000
    assert pool.stream("code").max() == 1000 and pool.stream("code").dtype == np.uint16


def test_a_small_validation_set_is_warned_about(small, tmp_path):
    rng = random.Random(3)
    with open(tmp_path / "val.jsonl", "w") as out:
        for _ in range(3):
            out.write(json.dumps({"text": synthetic_code(rng, 3)}) + "\n")
    spec = PrepareSpec(
        code=(str(small / "code"),), val=(str(tmp_path / "val.jsonl"),), vocab_size=300
    )
    with pytest.warns(UserWarning, match=r"validation set has only 3 documents.* about 14%"):
        prepare(spec, tmp_path / "three", workers=1, progress=False)
    enough = PrepareSpec(code=(str(small / "code"),), val=(str(small / "val"),), vocab_size=300)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        prepare(enough, tmp_path / "thirty", workers=1, progress=False)
    assert not [w for w in seen if "validation set" in str(w.message)]


def test_the_command_reports_skips_once_per_file_and_the_real_vocabulary(small, tmp_path):
    """Numbers and nulls as text, NUL-byte files and non-UTF-8 files are skipped, counted and
    named once each in the summary on stderr; only the first files of a long list are named.
    The vocabulary the tokenizer got is the one stderr warns of and the summary shows."""
    code = tmp_path / "code"
    write_tree(code, 20, 0)
    (code / "blob.py").write_bytes(b"x = 1\n\x00\x00\x07")
    for i in range(8):
        (code / f"latin{i}.py").write_bytes(b"# caf\xe9\n")
    with open(tmp_path / "extra.jsonl", "w") as out:
        for text in [42, None, "print('kept')\n", ""]:
            out.write(json.dumps({"text": text}) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "datamodules", "prepare", "--no-progress", "--workers", "1"]
        + ["--code", f"{code},{tmp_path / 'extra.jsonl'}", "--val", str(small / "val")]
        + ["--out", str(tmp_path / "pool"), "--vocab-size", "5000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    start = lines.index("skipped 12 documents while reading:")
    assert lines[start + 1 : start + 5] == [
        f"  binary (NUL bytes): 1 in 1 file: {code / 'blob.py'}",
        f"  empty: 1 in 1 file: {tmp_path / 'extra.jsonl'} (1: line 4)",
        f"  not UTF-8: 8 in 8 files: {', '.join(str(code / f'latin{i}.py') for i in range(5))}, "
        "and 3 more files",
        f"  not a string: 2 in 1 file: {tmp_path / 'extra.jsonl'} (2: line 1, line 2)",
    ]
    meta = json.loads((tmp_path / "pool" / "meta.json").read_text())
    size = meta["vocab_size"]
    warned = f"warning: --vocab-size 5000: the tokenizer has only {size} entries,"
    assert any(line.startswith(warned) for line in lines)
    info = json.loads(done.stdout[done.stdout.index("\n{") :])
    assert info["vocab_size"] == size < 5000
    counts = {(Path(f).name, reason): n for f, reason, n in meta["skipped"]["counts"]}
    assert counts[("blob.py", "binary (NUL bytes)")] == 1
    assert counts[("extra.jsonl", "not a string")] == 2
    assert meta["train"]["code"]["documents"] == 21
