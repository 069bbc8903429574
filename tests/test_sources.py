"""Document sources on small generated corpora: parquet, JSON lines, source trees, stdlib prose."""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from datamodules import sources
from datamodules.sources import (
    Columns,
    Document,
    Shard,
    SkipLog,
    SourceError,
    canonical_language,
    language_of_path,
    list_shards,
    list_shards_many,
    read_shard,
    stdlib_prose_documents,
    stdlib_root,
)

TEXTS = ["def f(x):\n    return x\n", "class A {}\n", "<p>café — ünïcode</p>\n", "SELECT 1;"]
LANGS = ["python", "Java", "html", "weird-lang"]
CANONICAL = ["Python", "Java", "HTML", "weird-lang"]


def read_all(spec: str, **kwargs) -> list[Document]:
    return [doc for shard in list_shards_many(spec) for doc in read_shard(shard, **kwargs)]


def write_parquet(path: Path, columns: dict, row_group_size: int = 2) -> Path:
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def write_jsonl(path: Path, records: list, blank_line_after: int | None = None) -> Path:
    lines = [json.dumps(r).encode() + b"\n" for r in records]
    if blank_line_after is not None:
        lines.insert(blank_line_after, b"\n")
    data = b"".join(lines)
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def test_parquet_with_language_column_reads_back_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "PARQUET_BATCH_ROWS", 3)  # several batches and row groups
    texts, langs = TEXTS * 3, LANGS * 3
    write_parquet(
        tmp_path / "code.parquet", {"content": texts, "lang": langs, "n": list(range(12))}
    )
    docs = read_all(str(tmp_path / "code.parquet"))
    assert docs == [
        Document(text, f"code.parquet#row={i}", lang)
        for i, (text, lang) in enumerate(zip(texts, CANONICAL * 3, strict=True))
    ]


def test_parquet_text_only_path_column_and_custom_names(tmp_path):
    write_parquet(tmp_path / "web.parquet", {"text": ["Hello there.", "", "Bye."]})
    skips = SkipLog()
    docs = read_all(str(tmp_path / "web.parquet"), skips=skips, default_language="English")
    assert [(d.text, d.path, d.language) for d in docs] == [
        ("Hello there.", "web.parquet#row=0", "English"),
        ("Bye.", "web.parquet#row=2", "English"),
    ]
    assert skips.total(sources.EMPTY) == 1

    write_parquet(tmp_path / "stack.parquet", {"content": TEXTS[:2], "path": ["a/b.py", "X.java"]})
    assert [d.language for d in read_all(str(tmp_path / "stack.parquet"))] == ["Python", "Java"]

    write_parquet(tmp_path / "own.parquet", {"body": ["x = 1"], "lng": ["cpp"]})
    columns = Columns(text=("body",), language=("lng",))
    assert read_all(str(tmp_path / "own.parquet"), columns=columns) == [
        Document("x = 1", "own.parquet#row=0", "C++")
    ]


def test_missing_text_column_names_file_flag_and_fields(tmp_path):
    """The message names the file's own fields and the flag, no internal object."""
    write_parquet(tmp_path / "odd.parquet", {"body": ["x"], "stars": [3]})
    with pytest.raises(SourceError) as raised:
        read_all(str(tmp_path / "odd.parquet"))
    assert str(raised.value) == (
        f"{tmp_path / 'odd.parquet'}: no text column; looked for content, text, it has "
        "body, stars; name the text column with --text-column"
    )
    write_jsonl(tmp_path / "odd.jsonl", [{"body": "x", "id": 4}])
    with pytest.raises(SourceError) as raised:
        read_all(str(tmp_path / "odd.jsonl"))
    assert str(raised.value) == (
        f"{tmp_path / 'odd.jsonl'} line 1: no text field; looked for content, text, it has "
        "body, id; name the text field with --text-column"
    )


def test_binary_parquet_column_with_bad_utf8_is_a_counted_skip(tmp_path):
    write_parquet(tmp_path / "raw.parquet", {"content": [b"ok = 1", b"caf\xe9", b"fine = 2"]})
    skips = SkipLog()
    docs = read_all(str(tmp_path / "raw.parquet"), skips=skips)
    assert [d.text for d in docs] == ["ok = 1", "fine = 2"]
    assert skips.files(sources.NOT_UTF8) == {str(tmp_path / "raw.parquet"): 1}
    assert f"{tmp_path / 'raw.parquet'} (1: row 1)" in skips.summary()


def test_corrupt_parquet_is_named(tmp_path):
    good = write_parquet(tmp_path / "good.parquet", {"content": ["x" * 1000] * 50})
    data = good.read_bytes()
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2] + data[-200:])
    for name in ["bad.parquet", "cut.parquet"]:
        with pytest.raises(SourceError, match=name):
            read_all(str(tmp_path / name))


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz", "docs.jsonl.zst", "docs.json"])
def test_jsonl_formats_read_back_exactly(tmp_path, name):
    records = [{"text": t, "language": lang} for t, lang in zip(TEXTS, LANGS, strict=True)]
    records[1] = {"content": TEXTS[1], "path": "src/A.java"}  # language from the path
    write_jsonl(tmp_path / name, records, blank_line_after=2)
    docs = read_all(str(tmp_path / name))
    lines = [1, 2, 4, 5]  # the blank third line still counts
    assert docs == [
        Document(text, f"{name}#line={line}", lang)
        for text, line, lang in zip(TEXTS, lines, CANONICAL, strict=True)
    ]


@pytest.mark.parametrize("name", ["cut.jsonl.gz", "cut.jsonl.zst"])
def test_truncated_compressed_file_is_named(tmp_path, name):
    full = write_jsonl(tmp_path / name, [{"text": f"line {i} " * 50} for i in range(500)])
    data = full.read_bytes()
    full.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=name):
        read_all(str(full))


def test_invalid_json_line_is_named_with_its_number(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n{"text": oops}\n')
    with pytest.raises(SourceError, match=r"broken\.jsonl line 3: invalid JSON"):
        read_all(str(path))


def test_non_utf8_lines_and_files_are_counted_with_the_file(tmp_path):
    (tmp_path / "mixed.jsonl").write_bytes(
        b'{"text": "good"}\n{"text": "caf\xe9"}\n{"text": "lone \\ud800"}\n{"text": "fine"}\n'
    )
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.py").write_text("x = 1\n")
    (tree / "latin.py").write_bytes(b"# caf\xe9\n")
    (tree / "empty.py").write_text("")
    skips = SkipLog()
    docs = read_all(f"{tmp_path / 'mixed.jsonl'},{tree}", skips=skips)
    assert [d.text for d in docs] == ["good", "fine", "x = 1\n"]
    assert skips.files(sources.NOT_UTF8) == {
        str(tmp_path / "mixed.jsonl"): 2,
        str(tree / "latin.py"): 1,
    }
    assert skips.files(sources.EMPTY) == {str(tree / "empty.py"): 1}
    assert skips.summary().splitlines() == [
        "skipped 4 documents while reading:",
        f"  empty: 1 in 1 file: {tree / 'empty.py'}",
        f"  not UTF-8: 3 in 2 files: {tmp_path / 'mixed.jsonl'} (2: line 2, line 3), "
        f"{tree / 'latin.py'}",
    ]
    with pytest.warns(UserWarning, match=r"mixed\.jsonl \(2: line 2, line 3\)"):
        read_all(str(tmp_path / "mixed.jsonl"))


def test_a_text_that_is_no_string_is_a_counted_skip(tmp_path):
    """A number, null or list where the text should be is skipped and counted per file, the
    same for each (a number used to stop the build, a null passed as an empty text)."""
    write_jsonl(
        tmp_path / "mixed.jsonl",
        [{"text": 42}, {"text": "kept"}, {"text": None}, {"text": ["a"]}, {"text": ""}],
    )
    write_parquet(tmp_path / "t.parquet", {"content": ["row", None]})
    skips = SkipLog()
    docs = read_all(f"{tmp_path / 'mixed.jsonl'},{tmp_path / 't.parquet'}", skips=skips)
    assert [d.text for d in docs] == ["kept", "row"]
    assert skips.files(sources.NOT_TEXT) == {
        str(tmp_path / "mixed.jsonl"): 3,
        str(tmp_path / "t.parquet"): 1,
    }
    assert skips.files(sources.EMPTY) == {str(tmp_path / "mixed.jsonl"): 1}
    assert (
        f"  not a string: 4 in 2 files: {tmp_path / 'mixed.jsonl'} (3: line 1, line 3, line 4), "
        f"{tmp_path / 't.parquet'} (1: row 1)"
    ) in skips.summary().splitlines()
    with pytest.warns(UserWarning, match=r"not a string: 3 in 1 file"):
        read_all(str(tmp_path / "mixed.jsonl"))


def test_nul_bytes_make_a_document_binary(tmp_path):
    """A `.py` file (or a record) holding a NUL byte is binary data, skipped and counted."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "real.py").write_text("x = 1\n")
    (tree / "blob.py").write_bytes(b"x = 1\n\x00\x00\x01\x02")
    write_jsonl(tmp_path / "r.jsonl", [{"text": "a\x00b"}, {"text": "fine"}])
    skips = SkipLog()
    docs = read_all(f"{tree},{tmp_path / 'r.jsonl'}", skips=skips)
    assert [d.text for d in docs] == ["x = 1\n", "fine"]
    assert skips.files(sources.BINARY) == {str(tree / "blob.py"): 1, str(tmp_path / "r.jsonl"): 1}


def test_source_tree_languages_paths_and_skipped_dirs(tmp_path):
    kept = {
        "app/main.py": "print('hi')\n",
        "app/util/helpers.py": "def h():\n    pass\n",
        "web/index.html": "<html></html>\n",
        "src/Main.java": "class Main {}\r\n",
        "README.md": "# readme\n",
    }
    skipped = ["app/__pycache__/main.py", "lib/site-packages/dep.py", ".hidden/x.py", ".x.py"]
    for name, text in [*kept.items(), *((name, "x = 1\n") for name in skipped)]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(text.encode())
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.warns(UserWarning, match=r"ignored 1 files.*\.png"):
        shards = list_shards(str(tmp_path))
    assert {s.kind for s in shards} == {"files"}
    docs = [d for s in shards for d in read_shard(s)]
    assert {d.path: d.text for d in docs} == kept  # bytes kept as they are (\r\n too)
    languages = {d.path: d.language for d in docs}
    assert languages == {
        "app/main.py": "Python",
        "app/util/helpers.py": "Python",
        "web/index.html": "HTML",
        "src/Main.java": "Java",
        "README.md": "Markdown",
    }


def test_directory_sharding_covers_every_file_once(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SHARD_FILES", 7)
    monkeypatch.setattr(sources, "SHARD_BYTES", 300)
    names = sorted(f"pkg{i % 3}/m{i:02d}.py" for i in range(50))
    for i, name in enumerate(names):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("x = 1\n" * (1 + i % 20))
    shards = list_shards(str(tmp_path))
    paths = [p for s in shards for p in s.paths]
    assert paths == names and len(shards) > 50 // 7
    assert all(len(s.paths) <= 7 for s in shards)
    assert all(sum((tmp_path / p).stat().st_size for p in s.paths) <= 300 for s in shards)
    assert pickle.loads(pickle.dumps(shards)) == shards


def test_directory_of_data_shards_glob_and_comma_specs(tmp_path):
    (tmp_path / "b").mkdir()
    write_parquet(tmp_path / "b" / "2.parquet", {"content": ["p"]})
    write_jsonl(tmp_path / "1.jsonl.gz", [{"text": "j"}])
    (tmp_path / "config.json").write_text('{"not": "lines"}')  # ignored in a directory
    shards = list_shards(str(tmp_path))
    assert shards == [
        Shard("jsonl", ("1.jsonl.gz",), str(tmp_path)),
        Shard("parquet", ("b/2.parquet",), str(tmp_path)),
    ]
    assert [d.text for d in read_all(str(tmp_path / "**" / "*.parquet"))] == ["p"]
    both = f"{tmp_path / '*.jsonl.gz'}, {tmp_path / 'b' / '2.parquet'},{tmp_path}"
    assert [d.text for d in read_all(both)] == ["j", "p"]  # named twice, read once
    with pytest.raises(SourceError, match=r"nothing\*\.parquet.*matches no files"):
        list_shards_many(f"{tmp_path},{tmp_path / 'nothing*.parquet'}")
    with pytest.raises(SourceError, match="missing.jsonl.*does not exist"):
        list_shards(str(tmp_path / "missing.jsonl"))


def test_skip_logs_merge_across_processes():
    a, b = SkipLog(), SkipLog()
    a.add("x.jsonl", sources.NOT_UTF8, "line 1")
    b.add("x.jsonl", sources.NOT_UTF8, "line 9")
    b.add("y.py", sources.EMPTY)
    a.merge(pickle.loads(pickle.dumps(b)))
    assert SkipLog.from_json(json.loads(json.dumps(a.to_json()))) == a
    assert a.files(sources.NOT_UTF8) == {"x.jsonl": 2} and a.total() == 3
    assert "x.jsonl (2: line 1, line 9)" in a.summary()


def test_skip_summary_names_each_file_once_and_caps_the_list(tmp_path):
    """Each skipped file is named once (not again as an example), and only the SUMMARY_FILES
    with most skips are named; a long jsonl gets its first few line numbers."""
    tree = tmp_path / "tree"
    tree.mkdir()
    for i in range(40):
        (tree / f"latin_{i:02d}.py").write_bytes(b"# caf\xe9\n")
    (tree / "ok.py").write_text("x = 1\n")
    write_jsonl(tmp_path / "nulls.jsonl", [{"text": None}] * 7 + [{"text": "kept"}])
    skips = SkipLog()
    docs = read_all(f"{tree},{tmp_path / 'nulls.jsonl'}", skips=skips)
    assert [d.text for d in docs] == ["x = 1\n", "kept"]
    summary = skips.summary()
    for i in range(40):
        assert summary.count(f"latin_{i:02d}.py") == (1 if i < 5 else 0)
    assert "and 35 more files" in summary
    assert f"{tmp_path / 'nulls.jsonl'} (7: line 1, line 2, line 3, ...)" in summary
    assert len(summary) < 800, summary


def test_language_names():
    assert [canonical_language(n) for n in ["PY", "c++", "cpp", "C#", "csharp", "c-sharp"]] == [
        "Python",
        "C++",
        "C++",
        "C#",
        "C#",
        "C#",
    ]
    assert canonical_language("Jupyter_Notebook") == "Jupyter Notebook"
    assert canonical_language(" Brainfuck ") == "Brainfuck"
    assert [language_of_path(p) for p in ["a/B.HPP", "x.tsx", "Makefile", "y.R", "z"]] == [
        "C++",
        "TypeScript",
        "Makefile",
        "R",
        None,
    ]


def test_stdlib_prose(tmp_path):
    long_doc = ("This module explains things in plain English words. " * 5).strip()
    (tmp_path / "talky.py").write_text(
        f'"""{long_doc}"""\n\nif True:\n    class K:\n        """Nested class prose."""\n'
        '        def m(self):\n            """Method prose."""\n'
    )
    (tmp_path / "terse.py").write_text('"""Short."""\n')
    (tmp_path / "py2.py").write_text("print 'old'\n")
    skips = SkipLog()
    docs = list(stdlib_prose_documents(tmp_path, skips=skips))
    assert docs[0] == Document(
        f"{long_doc}\n\nNested class prose.\n\nMethod prose.",
        "talky.py",
        "English",
    )
    assert skips.files(sources.UNPARSABLE) == {str(tmp_path / "py2.py"): 1}
    topics = [d for d in docs if d.path.startswith("pydoc_data/")]
    assert len(docs) == 1 + len(topics) and len(topics) > 50
    real = list(stdlib_prose_documents(stdlib_root() / "json"))
    assert real[0].path == "__init__.py" and "JSON" in real[0].text
    for doc in real + topics:
        assert doc.language == "English" and doc.text.strip()
    english = [" the " in doc.text for doc in real + topics]
    assert sum(english) >= 0.9 * len(english)
