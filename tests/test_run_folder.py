"""One folder, one run: a completed result or a checkpoint is reused only by the config that made
it, and default names never put two different runs in one folder."""

import pytest

from configs import ConfigError, load_config
from datamodules.config_pool import pool_source
from lightning_modules import run as runner
from lightning_modules.plan import make_plan
from lightning_modules.run_identity import default_run_name, pool_fingerprint, run_identity

TINY = [
    "model.n=60K",
    "data.tokens=20K",
    "data.seq_len=64",
    "optim.micro_batch=4",
    "trainer.val_every_steps=0",
    "trainer.progress_bar=false",
    "trainer.accelerator=cpu",
]


def config(pool, run_dir, *extra, name="same"):
    return load_config(
        [f"data.pool={pool.path}", f"run.dir={run_dir}", f"run.name={name}", *TINY, *extra]
    )


def name_of(*overrides) -> str:
    cfg = load_config(list(overrides))
    source = pool_source(cfg)
    plan = make_plan(cfg, 1, source.vocab_size)
    return default_run_name(cfg, plan.shape.n_params, run_identity(cfg, pool_fingerprint(source)))


def test_a_completed_run_is_reused_only_by_its_own_config(small_pool, one_language_pool, tmp_path):
    first = runner.train(config(small_pool, tmp_path))
    # What only changes how it runs keeps the result.
    again = runner.train(
        config(small_pool, tmp_path, "trainer.log_every_steps=3", "data.tokens=2e4")
    )
    assert again["finished_at"] == first["finished_at"]
    with pytest.raises(ConfigError, match=r"optim\.lr: auto -> 0\.01"):
        runner.train(config(small_pool, tmp_path, "optim.lr=0.01"))
    with pytest.raises(ConfigError, match="data.seq_len: 64 -> 32"):
        runner.train(config(small_pool, tmp_path, "data.seq_len=32"))
    with pytest.raises(ConfigError) as other_pool:
        runner.train(config(one_language_pool, tmp_path))
    message = str(other_pool.value)
    assert "pool: " in message and "tokenizer: " in message and "completed result" in message


def test_default_names_differ_for_runs_that_train_differently(
    small_pool, one_language_pool, tmp_path
):
    base = [f"data.pool={small_pool.path}", "model.n=200K", "data.tokens=300K"]
    names = {
        "base": name_of(*base),
        "pool": name_of(f"data.pool={one_language_pool.path}", *base[1:]),
        "lr": name_of(*base, "optim.lr=3e-3"),
        "batch": name_of(*base, "optim.batch_tokens=8K"),
        "warmup": name_of(*base, "optim.warmup_steps=10"),
        "floor": name_of(*base, "optim.min_lr=1e-6"),
        "seq_len": name_of(*base, "data.seq_len=128"),
        "shape": name_of(*base, "model.head_dim=32"),
        "mixture": name_of(*base, "data.code_fraction=0.7"),
        "seed": name_of(*base, "run.seed=1"),
        "vocabulary": name_of("model.n=200K", "data.tokens=300K", "data.vocab_size=2048"),
        "embedded": name_of("model.n=200K", "data.tokens=300K"),
    }
    assert len(set(names.values())) == len(names), names
    assert names["base"].startswith("n200K_d300K_code100_")
    # Layout and logging are not what a run trains: the same folder, so a moved run resumes.
    assert (
        name_of(*base, "trainer.devices=2", "optim.micro_batch=2", "trainer.log_every_steps=1")
        == names["base"]
    )
    assert (
        name_of(f"data.pool={small_pool.path}", "model.n=2e5", "data.tokens=0.3M") == names["base"]
    )


def test_one_language_code_only_pool_trains_and_reports_its_language(one_language_pool, tmp_path):
    """torchmetrics squeezes one-element results to 0-d; a Python-only pool crashed here."""
    saved = runner.train(config(one_language_pool, tmp_path, "data.tokens=40K"))
    assert saved["val_bpc_by_language"] == {"Python": pytest.approx(saved["val_bpc"], rel=1e-12)}
    assert saved["val_chars"] == sum(
        len(p.read_text(encoding="utf-8"))
        for p in (one_language_pool.path.parent / "val").iterdir()
    )
    assert saved["val_bpc"] < saved["val_bpc_unigram"]
