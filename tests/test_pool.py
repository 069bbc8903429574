"""Pool building end to end on generated corpora: languages and weights, decontamination,
mixtures through the CLI, resumable prepare, bad shards, and rank slicing."""

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import synthetic_code, synthetic_prose

from datamodules import pool as pool_module
from datamodules import prepare as prepare_module
from datamodules.datamodule import GlobalStepSampler, TrainSequences, mixed_stream
from datamodules.pool import PoolError, TokenPool, unigram_bits_per_char
from datamodules.prepare import PrepareSpec, prepare
from datamodules.sources import SourceError

LANGS = ["Python", "Java", "HTML"]


def corpus(root: Path) -> dict:
    """Code in 3 parquet shards (Python/Java/HTML), prose in jsonl, a jsonl validation set, and
    planted copies of validation documents among the training code."""
    rng = random.Random(7)
    val = [synthetic_code(rng, 8) + f"\n# validation file {i}\n" for i in range(12)]
    exact = [v.replace("\n", "\n\n  ") for v in val[:3]]  # same text up to whitespace
    near = []
    for v in val[3:6]:  # ~2% of the lines changed
        lines = v.split("\n")
        lines[len(lines) // 2] = "x = 'edited line'"
        near.append("\n".join(lines))
    rows = [(synthetic_code(rng, rng.randint(2, 10)), LANGS[i % 3]) for i in range(600)]
    rows += [(t, "Python") for t in exact + near]
    rng.shuffle(rows)
    root.mkdir(parents=True, exist_ok=True)
    for shard in range(3):
        part = rows[shard::3]
        table = pa.table({"content": [t for t, _ in part], "lang": [lang for _, lang in part]})
        pq.write_table(table, root / f"code-{shard}.parquet")
    with open(root / "nl.jsonl", "w") as out:
        for _ in range(300):
            out.write(json.dumps({"text": synthetic_prose(rng, rng.randint(3, 30))}) + "\n")
    with open(root / "val.jsonl", "w") as out:
        for text in val:
            out.write(json.dumps({"content": text, "lang": "Python"}) + "\n")
    return {"rows": rows, "val": val}


def spec_for(root: Path, **changes) -> PrepareSpec:
    fields = dict(
        code=(str(root / "code-*.parquet"),),
        nl=(str(root / "nl.jsonl"),),
        val=(str(root / "val.jsonl"),),
        vocab_size=512,
        lang_weights={"HTML": 0.3, "Java": 0.5},
    )
    return PrepareSpec(**{**fields, **changes})


@pytest.fixture(scope="module")
def mixed_pool(tmp_path_factory):
    root = Path(tmp_path_factory.mktemp("corpus"))
    data = corpus(root)
    return prepare(spec_for(root), root / "pool", workers=2, progress=False), data, root


def test_counts_weights_and_decontamination(mixed_pool):
    pool, data, _ = mixed_pool
    removed = pool.meta["removed"]
    assert removed["exact_duplicates_of_validation"] == 3
    assert removed["near_duplicates_of_validation"] == 3
    by_lang = pool.meta["train"]["code"]["by_language"]
    planted = {lang: sum(1 for _, x in data["rows"] if x == lang) for lang in LANGS}
    assert by_lang["Python"]["documents"] == planted["Python"] - 6
    # Weights keep a deterministic share of each language: about 30% of HTML, 50% of Java.
    assert abs(by_lang["HTML"]["documents"] / planted["HTML"] - 0.3) < 0.1
    assert abs(by_lang["Java"]["documents"] / planted["Java"] - 0.5) < 0.1
    assert (
        removed["dropped_by_language_weight"]
        == sum(planted.values()) - sum(v["documents"] for v in by_lang.values()) - 6
    )
    # Token counts agree with the streams and the document index.
    code = pool.stream("code")
    assert len(code) == pool.meta["train"]["code"]["tokens"] == pool.documents("code")[-1]
    assert sum(v["tokens"] for v in by_lang.values()) == len(code)
    assert pool.meta["train"]["nl"]["documents"] == 300


def test_no_validation_text_survives_in_training(mixed_pool):
    pool, data, _ = mixed_pool
    tok = pool.tokenizer
    starts = pool.documents("code")
    code = pool.stream("code")
    train_texts = {
        tok.decode(code[a + 1 : b].tolist()) for a, b in zip(starts[:-1], starts[1:], strict=True)
    }
    assert not train_texts & set(data["val"])
    assert len(train_texts) == pool.meta["train"]["code"]["documents"]


def test_validation_accounting_is_exact(mixed_pool):
    pool, data, _ = mixed_pool
    val = pool.meta["val"]
    assert val["documents"] == len(data["val"])
    assert val["chars"] == sum(len(t) for t in data["val"]) == int(pool.val_chars.sum())
    assert val["bytes"] == sum(len(t.encode()) for t in data["val"])
    assert val["by_language"]["Python"]["chars"] == val["chars"]
    assert pool.val_languages == ["Python"]


def test_unigram_counts_are_written_with_the_pool(mixed_pool, tmp_path, monkeypatch):
    """The counts prepare stores equal a count of the stream, the BPC is the one a count of the
    whole stream gives, and a pool made before the file existed is counted in bounded chunks."""
    pool, _, _ = mixed_pool
    direct = np.bincount(np.asarray(pool.stream("code"), np.int64), minlength=pool.vocab_size)
    assert np.array_equal(np.load(pool.path / pool.meta["unigram_counts"]), direct)
    log_p = np.log((direct + 1) / (direct + 1).sum())
    scored = pool.val_tokens[pool.val_tokens != pool.eos_id]
    expected = -log_p[scored].sum() / np.log(2) / pool.val_chars.sum(dtype=np.int64)
    assert unigram_bits_per_char(pool) == expected

    older = tmp_path / "older"
    shutil.copytree(pool.path, older)
    (older / "unigram_code.npy").unlink()
    meta = json.loads((older / "meta.json").read_text())
    del meta["unigram_counts"]
    (older / "meta.json").write_text(json.dumps(meta))
    counted, bincount = [], np.bincount
    monkeypatch.setattr(pool_module, "COUNT_CHUNK", 1000)
    monkeypatch.setattr(
        np, "bincount", lambda x, **k: (counted.append(len(x)), bincount(x, **k))[1]
    )
    assert unigram_bits_per_char(TokenPool(older)) == expected
    assert max(counted) == 1000 and sum(counted) == len(pool.stream("code"))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datamodules", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("r", [1.0, 0.7, 0.3])
def test_stream_cli_budgets_are_nested_and_mixed(mixed_pool, tmp_path, r):
    pool, _, _ = mixed_pool
    seq = 32
    heads = {}
    for tokens in (64 * seq, 128 * seq):
        out = tmp_path / f"s{tokens}.npz"
        done = cli(
            "stream",
            "--pool",
            str(pool.path),
            "--tokens",
            str(tokens),
            "--code-fraction",
            str(r),
            "--seq-len",
            str(seq),
            "--out",
            str(out),
        )
        assert done.returncode == 0, done.stderr
        heads[tokens] = np.load(out)
    small, large = heads[64 * seq], heads[128 * seq]
    assert len(small["tokens"]) == 64 * seq + 1
    assert np.array_equal(large["tokens"][: 64 * seq + 1], small["tokens"])
    realised = np.cumsum(large["source"]) - r * np.arange(1, len(large["source"]) + 1)
    assert np.abs(realised).max() < seq
    # What the run's dataloader serves is the same stream.
    sequences = TrainSequences(mixed_stream(pool, r, seq), 128)
    assert np.array_equal(sequences[5].numpy(), large["tokens"][5 * seq : 6 * seq + 1])


def test_info_cli_and_budget_error(mixed_pool, tmp_path):
    pool, _, _ = mixed_pool
    info = json.loads(cli("info", "--pool", str(pool.path)).stdout)
    assert info["removed"]["near_duplicates_of_validation"] == 3
    assert info["removed"]["train_exact_duplicates"] == {"code": 0, "nl": 0}
    assert info["val"]["tokens"] == pool.meta["val"]["tokens"]
    assert set(info["train"]) == {"code", "nl"}
    too_big = cli(
        "stream",
        "--pool",
        str(pool.path),
        "--tokens",
        "10M",
        "--seq-len",
        "32",
        "--out",
        str(tmp_path / "x.npz"),
    )
    assert too_big.returncode == 2 and "CODE tokens but the pool has" in too_big.stderr


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [("--code-fraction", "1.5", "between 0 and 1"), ("--seq-len", "0", "at least 1 token")],
)
def test_stream_cli_bad_numbers_are_one_line_errors(mixed_pool, tmp_path, option, value, says):
    pool, _, _ = mixed_pool
    args = {"--pool": str(pool.path), "--tokens": "64", "--seq-len": "32", option: value}
    done = cli("stream", *[x for pair in args.items() for x in pair], "--out", str(tmp_path / "x"))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith(f"error: {option} {value}") and says in done.stderr


def test_resumed_prepare_is_identical(mixed_pool, tmp_path, monkeypatch):
    reference, _, root = mixed_pool
    spec = spec_for(root)
    out = tmp_path / "pool"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_module, "finalize", interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare(spec, out, workers=1, progress=False)
    monkeypatch.undo()
    parts = sorted((out.with_name("pool.partial") / "parts").glob("*.json"))
    assert len(parts) == 4
    parts[1].unlink()  # as if killed while writing the second part
    encoded = []
    original = prepare_module.encode_part
    monkeypatch.setattr(
        prepare_module, "encode_part", lambda *a: (encoded.append(a[2].name), original(*a))
    )
    pool = prepare(spec, out, workers=1, progress=False)
    assert encoded == [parts[1].with_suffix("").name]
    for name in (
        "code.bin",
        "nl.bin",
        "val.bin",
        "val_chars.bin",
        "code_docs.npy",
        "tokenizer.json",
    ):
        assert (pool.path / name).read_bytes() == (reference.path / name).read_bytes(), name
    with pytest.raises(PoolError, match="never rewritten"):
        prepare(spec, out, workers=1, progress=False)


def test_resume_with_other_arguments_is_refused(mixed_pool, tmp_path, monkeypatch):
    _, _, root = mixed_pool
    monkeypatch.setattr(prepare_module, "finalize", lambda *a, **k: None)
    prepare(spec_for(root), tmp_path / "p", workers=1, progress=False)
    with pytest.raises(PoolError, match="other arguments"):
        prepare(spec_for(root, seed=99), tmp_path / "p", workers=1, progress=False)


def test_bad_shard_is_named(mixed_pool, tmp_path):
    _, _, root = mixed_pool
    bad = tmp_path / "code"
    bad.mkdir()
    (bad / "good.parquet").write_bytes((root / "code-0.parquet").read_bytes())
    (bad / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    spec = spec_for(root, code=(str(bad),), vocab_size=300)
    with pytest.raises(SourceError, match="broken.parquet"):
        prepare(spec, tmp_path / "pool", workers=1, progress=False)


def test_two_ranks_cover_each_global_batch_once(mixed_pool):
    pool, _, _ = mixed_pool
    sequences = TrainSequences(mixed_stream(pool, 0.7, 32), 8 * 6)
    whole = [sequences[i] for batch in GlobalStepSampler(8, 8, 0, 1, 0, 6) for i in batch]
    per_rank = [
        [sequences[i] for batch in GlobalStepSampler(8, 2, rank, 2, 0, 6) for i in batch]
        for rank in range(2)
    ]
    for step in range(6):
        joined = per_rank[0][step * 4 : step * 4 + 4] + per_rank[1][step * 4 : step * 4 + 4]
        assert all(
            np.array_equal(a, b)
            for a, b in zip(joined, whole[step * 8 : step * 8 + 8], strict=True)
        )


def test_pool_refuses_another_tokenizer(mixed_pool, small_pool):
    pool, _, _ = mixed_pool
    pool.check_tokenizer(pool.path / "tokenizer.json")
    with pytest.raises(PoolError, match="was tokenized with tokenizer"):
        pool.check_tokenizer(small_pool.path / "tokenizer.json")


def test_a_mixture_run_trains_on_its_stream(mixed_pool, tmp_path):
    """train.py with data.code_fraction=0.3 on a pool with NL: completes, records the fraction."""
    from configs import load_config
    from lightning_modules import run as runner

    pool, _, _ = mixed_pool
    cfg = load_config(
        [
            f"data.pool={pool.path}",
            f"run.dir={tmp_path}",
            "data.code_fraction=0.3",
            "model.n=60K",
            "data.tokens=16K",
            "data.seq_len=64",
            "optim.micro_batch=4",
            "trainer.progress_bar=false",
        ]
    )
    result = runner.train(cfg)
    assert result["status"] == "completed" and result["code_fraction"] == 0.3
    assert result["val_chars"] == pool.meta["val"]["chars"]
    assert [p.name[:-8] for p in tmp_path.iterdir()] == ["n60K_d16K_code30_"]  # and a hash
