"""A short real run through train.py: it trains, validates and writes a valid result.json."""

import json
import math
from collections import Counter

import pytest

from configs import load_config
from lightning_modules import run as runner


def tiny_run(pool, run_dir, *extra):
    return load_config(
        [
            f"data.pool={pool.path}",
            f"run.dir={run_dir}",
            "run.name=tiny",
            "model.n=60K",
            "data.tokens=120K",
            "data.seq_len=64",
            "optim.micro_batch=4",
            "trainer.val_every_steps=40",
            "trainer.progress_bar=false",
            *extra,
        ]
    )


def unigram_bpc_by_hand(pool) -> float:
    """Add-one smoothed unigram of the code training tokens, scored on every validation token
    but the separators, in bits per character: counted in plain Python, not with the pool's
    stored counts."""
    code = pool.stream("code").tolist()
    counts, total = Counter(code), len(code) + pool.vocab_size
    bits = sum(
        -math.log2((counts[t] + 1) / total) for t in pool.val_tokens.tolist() if t != pool.eos_id
    )
    return bits / int(pool.val_chars.sum())


def test_end_to_end_run_writes_result(small_pool, tmp_path):
    cfg = tiny_run(small_pool, tmp_path)
    result = runner.train(cfg)
    run_dir = tmp_path / "tiny"
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["status"] == "completed"
    for key in (
        "n_params",
        "n_params_with_embedding",
        "tokens",
        "code_fraction",
        "flops",
        "val_bpc",
        "val_bpb",
        "val_loss",
        "steps",
        "wall_seconds",
        "config",
    ):
        assert key in saved
    assert saved["flops"] == 6 * saved["n_params"] * saved["tokens"]
    assert saved["tokens"] == saved["steps"] * saved["plan"]["global_batch_tokens"]
    assert saved["val_chars"] == small_pool.meta["val"]["chars"]
    assert saved["val_bpc_unigram"] == pytest.approx(unigram_bpc_by_hand(small_pool), rel=1e-9)
    assert saved["val_bpc"] < 0.8 * saved["val_bpc_unigram"]  # it learned something real
    assert (run_dir / "config.yaml").exists() and (run_dir / "checkpoints" / "last.ckpt").exists()
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    # A completed run is not trained again.
    assert runner.train(cfg)["finished_at"] == saved["finished_at"]


def test_budget_larger_than_pool_fails_with_numbers(small_pool, tmp_path):
    cfg = tiny_run(small_pool, tmp_path, "data.tokens=50M")
    with pytest.raises(ValueError, match="lower data.tokens"):
        runner.train(cfg)


def test_per_language_bpc_is_reported(small_pool, tmp_path):
    saved = runner.train(tiny_run(small_pool, tmp_path, "data.tokens=20K"))
    by_language = saved["val_bpc_by_language"]
    chars = {k: v["chars"] for k, v in small_pool.meta["val"]["by_language"].items()}
    assert set(by_language) == set(chars) == {"Python", "Java"}
    # The total is the character-weighted mean of the languages, and they differ.
    pooled = sum(by_language[k] * chars[k] for k in chars) / sum(chars.values())
    assert saved["val_bpc"] == pytest.approx(pooled, rel=1e-9)
    assert by_language["Python"] != pytest.approx(by_language["Java"], rel=1e-3)


def test_a_corrupt_result_is_named_and_kept(small_pool, tmp_path):
    result = tmp_path / "tiny" / "result.json"
    result.parent.mkdir()
    result.write_text('{"status": "compl')
    with pytest.raises(runner.RunFailed, match="result.json is not valid JSON"):
        runner.train(tiny_run(small_pool, tmp_path))
    assert result.read_text() == '{"status": "compl'
