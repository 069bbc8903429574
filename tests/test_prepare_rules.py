"""What `prepare` keeps and drops: the split without --val (row by row for tables), exact repeats
within each training source, and language weights matched by canonical name."""

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import synthetic_code, synthetic_prose

from datamodules.pool import PoolError, TokenPool
from datamodules.prepare import PrepareSpec, prepare
from datamodules.sources import is_validation


def train_texts(pool: TokenPool, source: str = "code") -> list[str]:
    starts, stream = pool.documents(source), pool.stream(source)
    return [
        pool.tokenizer.decode(stream[a + 1 : b].tolist())
        for a, b in zip(starts[:-1], starts[1:], strict=True)
    ]


def val_texts(pool: TokenPool) -> list[str]:
    starts, stream = pool.documents("val"), pool.val_tokens
    return [
        pool.tokenizer.decode(stream[a + 1 : b].tolist())
        for a, b in zip(starts[:-1], starts[1:], strict=True)
    ]


def unique_code(rng: random.Random, tag: str) -> str:
    return synthetic_code(rng, rng.randint(2, 5)) + f"\n# {tag}\n"


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """8 parquet shards of 25 rows (one shard stores bytes, with one row not UTF-8) and a jsonl
    shard of 25 lines; every text distinct. Returns the folder and text by document name."""
    root = Path(tmp_path_factory.mktemp("tables"))
    rng = random.Random(11)
    texts = {}
    for shard in range(8):
        rows = [unique_code(rng, f"s{shard} r{row}") for row in range(25)]
        texts.update({f"s{shard}.parquet#row={row}": t for row, t in enumerate(rows)})
        column = pa.array(rows)
        if shard == 5:
            column = pa.array([t.encode() for t in rows[:-1]] + [b"caf\xe9"], pa.binary())
            del texts["s5.parquet#row=24"]
        pq.write_table(pa.table({"content": column}), root / f"s{shard}.parquet")
    with open(root / "t.jsonl", "w") as out:
        for line in range(1, 26):
            text = unique_code(rng, f"line {line}")
            texts[f"t.jsonl#line={line}"] = text
            out.write(json.dumps({"content": text}) + "\n")
    return root, texts


def test_split_without_val_is_row_by_row(tables, tmp_path):
    root, texts = tables
    spec = PrepareSpec(code=(str(root),), val_fraction=0.2, vocab_size=300)
    pool = prepare(spec, tmp_path / "pool", workers=1, progress=False)
    expected_val = {t for name, t in texts.items() if is_validation(name, 0.2)}
    val, train = val_texts(pool), train_texts(pool)
    assert set(val) == expected_val and len(val) == len(expected_val)
    assert set(train) == set(texts.values()) - expected_val
    assert len(val) + len(train) == len(texts) == 224  # every readable row, exactly once
    removed = pool.meta["removed"]
    assert removed["held_out_for_validation"] == len(val)
    assert removed["exact_duplicates_of_validation"] == 0
    assert removed["near_duplicates_of_validation"] == 0
    assert sum(n for _, _, n in pool.meta["skipped"]["counts"]) == 1  # counted once, not twice
    # The validation set is read in parallel; the pool does not depend on the worker count.
    parallel = prepare(spec, tmp_path / "parallel", workers=2, progress=False)
    for name in ("code.bin", "code_docs.npy", "val.bin", "unigram_code.npy"):
        assert (parallel.path / name).read_bytes() == (pool.path / name).read_bytes(), name
    assert parallel.meta["removed"] == removed and parallel.meta["skipped"] == pool.meta["skipped"]


def write_rows(path: Path, rows: list[tuple[str, str]]) -> None:
    table = pa.table({"content": [t for t, _ in rows], "lang": [lang for _, lang in rows]})
    pq.write_table(table, path)


@pytest.fixture(scope="module")
def with_repeats(tmp_path_factory) -> dict:
    """Code in 4 parquet shards (Python, Java, and HTML labelled `html`) with planted repeats:
    text A in shards 0 and 3 (the second copy re-indented, labelled Java), text B twice in
    shard 2, text C three times in shard 1; prose in jsonl with one line repeated; a jsonl
    validation set sharing nothing with them."""
    root = Path(tmp_path_factory.mktemp("repeats"))
    rng = random.Random(5)
    langs = ["Python", "Java", "html"]
    shards = [[(unique_code(rng, f"{s}-{i}"), langs[i % 3]) for i in range(30)] for s in range(4)]
    a, b, c = (unique_code(rng, name) for name in "ABC")
    shards[0].insert(4, (a, "Python"))
    shards[3].insert(20, (a.replace("\n", "\n  \n"), "Java"))
    shards[2][7:7] = [(b, "Python")]
    shards[2].append((b, "Python"))
    shards[1] += [(c, "html"), (c, "html"), (c, "html")]
    for s, rows in enumerate(shards):
        write_rows(root / f"code-{s}.parquet", rows)
    prose = [synthetic_prose(rng, 6) + f" {i}" for i in range(40)]
    with open(root / "nl.jsonl", "w") as out:
        for text in [*prose, prose[3]]:
            out.write(json.dumps({"text": text}) + "\n")
    with open(root / "val.jsonl", "w") as out:
        for i in range(5):
            out.write(json.dumps({"content": unique_code(rng, f"val {i}")}) + "\n")
    return {"root": root, "a": a, "shards": shards}


def repeats_spec(root: Path, **changes) -> PrepareSpec:
    fields = dict(
        code=(str(root / "code-*.parquet"),),
        nl=(str(root / "nl.jsonl"),),
        val=(str(root / "val.jsonl"),),
        vocab_size=300,
    )
    return PrepareSpec(**{**fields, **changes})


def test_exact_repeats_within_training_are_dropped(with_repeats, tmp_path):
    root = with_repeats["root"]
    pool = prepare(repeats_spec(root), tmp_path / "one", workers=1, progress=False)
    assert pool.meta["removed"]["train_exact_duplicates"] == {"code": 4, "nl": 1}
    code = train_texts(pool)
    assert len(code) == len(set(code)) == 4 * 30 + 3 == pool.meta["train"]["code"]["documents"]
    assert with_repeats["a"] in code  # the first occurrence stays, its later variant goes
    by_lang = pool.meta["train"]["code"]["by_language"]
    assert by_lang["Python"]["documents"] == 40 + 2 and by_lang["Java"]["documents"] == 40
    assert pool.meta["train"]["nl"]["documents"] == 40 == len(set(train_texts(pool, "nl")))
    tokens = pool.meta["train"]["code"]["tokens"]
    assert tokens == len(pool.stream("code")) == pool.documents("code")[-1]
    stored = np.load(pool.path / "unigram_code.npy")
    assert np.array_equal(stored, np.bincount(pool.stream("code"), minlength=pool.vocab_size))
    # Which copy is first follows the shard order, never the order workers finish in.
    parallel = prepare(repeats_spec(root), tmp_path / "two", workers=2, progress=False)
    for name in ("code.bin", "code_lang.npy", "nl.bin", "unigram_code.npy"):
        assert (parallel.path / name).read_bytes() == (pool.path / name).read_bytes(), name


def test_language_weights_match_canonical_names_in_any_case(with_repeats, tmp_path):
    """`htm` names the data's `html` (both HTML); `JAVA` names Java."""
    spec = repeats_spec(with_repeats["root"], lang_weights={"htm": 0.0, "JAVA": 0.0})
    pool = prepare(spec, tmp_path / "pool", workers=1, progress=False)
    assert set(pool.meta["train"]["code"]["by_language"]) == {"Python"}
    assert pool.meta["removed"]["dropped_by_language_weight"] == 2 * 40 + 3 + 1


def test_a_weight_naming_no_language_of_the_data_is_an_error(with_repeats, tmp_path):
    spec = repeats_spec(with_repeats["root"], lang_weights={"Htlm": 0.05, "Java": 0.5})
    with (
        pytest.warns(UserWarning, match="Htlm: not a language name"),
        pytest.raises(PoolError, match=r"--lang-weights Htlm: no training document .*HTML 43"),
    ):
        prepare(spec, tmp_path / "pool", workers=1, progress=False)
    assert not (tmp_path / "pool").exists()
    with pytest.raises(PoolError, match="name the same language"):
        repeats_spec(with_repeats["root"], lang_weights={"HTML": 0.05, "html": 0.1})


def test_an_older_partial_build_is_not_resumed(with_repeats, tmp_path):
    partial = tmp_path / "pool.partial"
    (partial / "parts").mkdir(parents=True)
    (partial / "spec.json").write_text(json.dumps(repeats_spec(with_repeats["root"]).to_json()))
    (partial / "parts" / "code-000000.json").write_text("{}")  # a finished part
    with pytest.raises(PoolError, match="older version"):
        prepare(repeats_spec(with_repeats["root"]), tmp_path / "pool", workers=1, progress=False)


@pytest.mark.parametrize("content", [None, "{}"])
def test_an_unusable_tokenizer_file_is_named(tmp_path, content):
    """A missing or malformed --tokenizer file is an error naming it, not a traceback."""
    from datamodules.sources import SourceError
    from datamodules.tokenizer import load_tokenizer

    path = tmp_path / "tokenizer.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SourceError, match=f"{path}: cannot use it as the tokenizer"):
        load_tokenizer(path)
