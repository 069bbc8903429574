"""The mixed training stream: nested budgets, the code fraction at every prefix, exact sources."""

import numpy as np
import pytest

from datamodules.mixture import BudgetError, MixedStream

S = 16
CODE = np.arange(0, 50_000, dtype=np.int64)  # distinct values, so every token's origin is known
NL = np.arange(100_000, 150_000, dtype=np.int64)


@pytest.mark.parametrize("r", [1.0, 0.7, 0.3, 0.5, 0.0, 0.123])
def test_budgets_are_nested_prefixes(r):
    stream = MixedStream(CODE, NL, r, S)
    small, small_src = stream.head(40 * S)
    large, large_src = stream.head(80 * S)
    assert np.array_equal(large[: len(small) - 1], small[:-1])  # the last target also agrees:
    assert large[len(small) - 1] == small[-1]
    assert np.array_equal(large_src[: len(small)], small_src)


@pytest.mark.parametrize("r", [0.7, 0.3, 0.5, 0.123, 0.999])
def test_code_fraction_holds_at_every_prefix(r):
    _, source = MixedStream(CODE, NL, r, S).head(500 * S)
    prefix = np.arange(1, len(source) + 1)
    code_so_far = np.cumsum(source)
    assert np.abs(code_so_far - r * prefix).max() < S  # within one sequence, everywhere


@pytest.mark.parametrize("r", [1.0, 0.7, 0.3, 0.0])
def test_each_source_is_read_in_order_from_its_start(r):
    tokens, source = MixedStream(CODE, NL, r, S).head(300 * S)
    code, nl = tokens[source == 1], tokens[source == 0]
    assert np.array_equal(code, CODE[: len(code)])
    assert np.array_equal(nl, NL[: len(nl)])
    if r == 1.0:
        assert np.array_equal(tokens, CODE[: 300 * S + 1])


def test_sequences_are_the_stream_cut_into_overlapping_windows():
    stream = MixedStream(CODE, NL, 0.7, S)
    tokens, _ = stream.head(100 * S)
    for i in range(100):
        assert np.array_equal(stream.sequence(i), tokens[i * S : i * S + S + 1])


def test_needs_match_the_head():
    stream = MixedStream(CODE, NL, 0.3, S)
    _, source = stream.head(77 * S)
    assert stream.needs(77 * S) == {"code": int(source.sum()), "nl": int((source == 0).sum())}


def test_budget_beyond_a_source_fails_with_the_numbers():
    stream = MixedStream(CODE[:1000], NL, 0.7, S)
    with pytest.raises(BudgetError, match=r"CODE tokens but the pool has 1,000"):
        stream.check_budget(200 * S)
    with pytest.raises(BudgetError, match="natural-language"):
        MixedStream(CODE, None, 0.7, S)
