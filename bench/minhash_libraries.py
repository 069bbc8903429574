"""MinHash near-deduplication: the project's numpy MinHash against datasketch and rensa, on the
installed corpus's own files, side by side in one run.

    python bench/minhash_libraries.py                       # 6 distributions + the stdlib
    python bench/minhash_libraries.py --dists all --limit 20000

For each implementation: signature speed (MB of source per second, one core; shingling included,
each library fed the same word/punctuation 5-grams), then the decisions of a keep-first
near-deduplication over the files in corpus order (LSH candidates verified by the estimated
Jaccard >= 0.8). Decisions are compared with each other and, where two disagree, with the exact
Jaccard of the shingle sets, so the table says which one was right.
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np

from datamodules.cleaning import KeepFirst
from datamodules.dedup import NGRAM, NUM_PERM, minhash, shingle_keys
from datamodules.installed import installed_files

THRESHOLD = 0.8
DEFAULT_DISTS = "lightning,pytorch-lightning,pip,setuptools,jedi,torchmetrics"
TOKEN = re.compile(rb"[A-Za-z0-9_\x80-\xff]+|[^\sA-Za-z0-9_\x80-\xff]")


def shingles(text: str) -> list[bytes]:
    """Word/punctuation 5-grams, the project's own tokenisation rule, as byte strings."""
    tokens = TOKEN.findall(text.encode("utf-8", "surrogatepass"))
    width = min(NGRAM, len(tokens))
    return [b" ".join(tokens[i : i + width]) for i in range(len(tokens) - width + 1)]


def project_signatures(texts: list[str]) -> list[np.ndarray]:
    return [minhash(t) for t in texts]


def datasketch_signatures(texts: list[str]) -> list[np.ndarray]:
    from datasketch import MinHash

    out = []
    for text in texts:
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch(shingles(text))
        out.append(m.hashvalues.copy())
    return out


def rensa_signatures(texts: list[str]) -> list[np.ndarray]:
    from rensa import RMinHash

    out = []
    for text in texts:
        m = RMinHash(num_perm=NUM_PERM, seed=1)
        m.update([s.decode("utf-8", "surrogatepass") for s in shingles(text)])
        out.append(np.asarray(m.digest(), dtype=np.uint64))
    return out


def rensa_hashed_signatures(texts: list[str]) -> list[np.ndarray]:
    """rensa fed the project's vectorised shingle keys (no Python-level shingling)."""
    from rensa import RMinHash

    keys = [shingle_keys(t).astype(np.uint64) for t in texts]
    offsets = np.concatenate([[0], np.cumsum([len(k) for k in keys])]).astype(np.uint64)
    matrix = RMinHash.digest_matrix_from_flat_token_hashes(
        np.concatenate(keys), offsets, NUM_PERM, 1
    )
    return [np.asarray(row, dtype=np.uint64) for row in matrix.to_rows()]


def keep_first(signatures: list[np.ndarray]) -> dict[int, int]:
    """Removed file -> the kept file it nearly duplicates, scanning in order with the cleaning's
    own KeepFirst (each file given a distinct digest, so only near duplicates are found): the
    same banding and verification for every implementation, so only the signatures differ."""
    keeper = KeepFirst(THRESHOLD, NUM_PERM)
    removed = {}
    for i, sig in enumerate(signatures):
        if (hit := keeper.check(i, i.to_bytes(8, "little"), sig)) is not None:
            removed[i] = hit[1]
    return removed


def exact_jaccard(a: str, b: str) -> float:
    x, y = set(shingles(a)), set(shingles(b))
    return len(x & y) / max(len(x | y), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dists", default=DEFAULT_DISTS, help="comma-separated, or `all`")
    parser.add_argument("--limit", type=int, default=6000, help="at most this many files")
    parser.add_argument("--max-bytes", type=int, default=1_000_000)
    args = parser.parse_args()
    wanted = None if args.dists == "all" else set(args.dists.split(","))
    files = [
        f
        for f in installed_files()
        if not f.is_doc and (wanted is None or f.distribution in wanted)
    ]
    texts, names = [], []
    for f in files:
        data = open(f.file, "rb").read()
        if len(data) <= args.max_bytes and data:
            try:
                texts.append(data.decode("utf-8"))
                names.append(f.name)
            except UnicodeDecodeError:
                continue
        if len(texts) == args.limit:
            break
    megabytes = sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / 1e6
    print(f"{len(texts)} files, {megabytes:.1f} MB, from {args.dists}")
    print(f"{'implementation':<12} {'MB/s':>7} {'removed':>8} {'agree w/ project':>17}")
    decisions = {}
    for label, compute in (
        ("project", project_signatures),
        ("datasketch", datasketch_signatures),
        ("rensa", rensa_signatures),
        ("rensa+keys", rensa_hashed_signatures),
    ):
        start = time.perf_counter()
        signatures = compute(texts)
        seconds = time.perf_counter() - start
        decisions[label] = keep_first(signatures)
        same = len(set(decisions[label]) & set(decisions.get("project", decisions[label])))
        print(f"{label:<12} {megabytes / seconds:7.2f} {len(decisions[label]):8d} {same:17d}")
    print("\nfiles removed by one implementation and not another: exact Jaccard to its match")
    for label in ("datasketch", "rensa", "rensa+keys"):
        for a, b in (("project", label), (label, "project")):
            only = sorted(set(decisions[a]) - set(decisions[b]))
            truth = [exact_jaccard(texts[i], texts[decisions[a][i]]) for i in only]
            right = sum(j >= THRESHOLD for j in truth)
            print(
                f"  only {a:<10} (vs {b:<10}): {len(only):4d} files; exact Jaccard >= "
                f"{THRESHOLD}: {right}, median {np.median(truth) if truth else float('nan'):.3f}"
            )


if __name__ == "__main__":
    main()
