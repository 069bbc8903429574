"""Exact BPC: character accounting, uniform-logit values, and independence from batch and ranks."""

import math

import lightning as L
import numpy as np
import pytest
import torch

from datamodules.datamodule import PoolDataModule, RankWindows, ValidationWindows
from datamodules.tokenizer import chars_per_token, token_byte_lengths
from lightning_modules.bpc import BitsPerCharacter, ValidationBPC
from lightning_modules.model import DecoderConfig
from lightning_modules.module import DecoderLM, OptimSettings
from lightning_modules.shape import ModelShape

OPTIM = OptimSettings(1e-3, 1e-5, 1, 10, 0.1, 0.9, 0.95, 1e-8)


def make_module(vocab: int, seq_len: int, uniform: bool) -> DecoderLM:
    torch.manual_seed(0)
    module = DecoderLM.create(DecoderConfig(ModelShape(64, 1, 176, 1), vocab, seq_len), OPTIM)
    if uniform:
        torch.nn.init.zeros_(module.model.head.weight)  # every logit 0: p = 1/V everywhere
    return module


def validate(module, pool, seq_len: int, batch: int) -> dict:
    dm = PoolDataModule(
        lambda: pool,
        lambda: None,
        code_fraction=1.0,
        seq_len=seq_len,
        global_batch=1,
        micro_batch=1,
        total_steps=1,
        val_batch_size=batch,
    )
    bpc = ValidationBPC()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[bpc],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.validate(module, datamodule=dm, verbose=False)
    return bpc.result


def test_chars_per_token_splits_multibyte_characters(small_pool):
    tok = small_pool.tokenizer
    lengths = token_byte_lengths(tok)
    text = "x = 'naïve café — 世界 🎉'\n"
    ids = np.array(tok.encode(text).ids)
    chars = chars_per_token(text, ids, lengths)
    assert chars.sum() == len(text)
    assert lengths[ids].sum() == len(text.encode("utf-8"))
    assert tok.decode(ids.tolist()) == text


def test_pool_character_counts_are_exact(small_pool):
    """The pool's per-token counts add up to the raw validation files' own characters, bytes and
    token count (the fixture's 20 files, read and tokenized here, separators excluded)."""
    files = sorted((small_pool.path.parent / "val").iterdir())
    texts = [path.read_text(encoding="utf-8") for path in files]
    assert len(texts) == 20 and any(not t.isascii() for t in texts)
    assert int(small_pool.val_chars.sum()) == sum(len(t) for t in texts)
    assert int(small_pool.val_bytes.sum()) == sum(len(t.encode("utf-8")) for t in texts)
    scored = int((small_pool.val_tokens != small_pool.eos_id).sum())
    assert scored == sum(len(small_pool.tokenizer.encode(t).ids) for t in texts)


def test_validation_logits_and_loss_are_fp32_under_bf16_autocast(small_pool):
    """The blocks may run in bf16; the output layer and the loss must not: validation's nats
    match a float64 head on the same hidden states, while a bf16 head is visibly off."""
    module = make_module(small_pool.vocab_size, 32, uniform=False)
    torch.manual_seed(1)
    batch = {
        "input": torch.randint(0, small_pool.vocab_size, (4, 32)),
        "target": torch.randint(0, small_pool.vocab_size, (4, 32)),
    }
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nats = module.validation_step(batch, 0)["nats"]
        hidden = module.model.hidden(batch["input"])
        bf16_logits = module.model(batch["input"])
    model = module.model
    normed = torch.nn.functional.rms_norm(
        hidden.double(), (hidden.shape[-1],), model.norm.weight.double(), model.norm.eps
    )
    logits = normed @ model.head.weight.double().T
    exact = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), batch["target"].flatten(), reduction="none"
    )
    assert torch.allclose(nats.double(), exact, rtol=1e-6, atol=0)
    old = torch.nn.functional.cross_entropy(
        bf16_logits.flatten(0, 1).float(), batch["target"].flatten(), reduction="none"
    )
    assert (old.double() / exact - 1).abs().max() > 1e-4  # what bf16 logits cost


@pytest.mark.parametrize("seq_len", [7, 32, 100])
def test_uniform_logits_give_log2_vocab_per_token(small_pool, seq_len):
    vocab = small_pool.vocab_size
    result = validate(make_module(vocab, seq_len, uniform=True), small_pool, seq_len, batch=3)
    meta = small_pool.meta["val"]
    assert result["tokens"] == meta["tokens"] and result["chars"] == meta["chars"]
    expected = math.log2(vocab) * meta["tokens"] / meta["chars"]
    assert result["bpc"] == pytest.approx(expected, rel=1e-6)
    assert result["bpb"] == pytest.approx(
        math.log2(vocab) * meta["tokens"] / meta["bytes"], rel=1e-6
    )


def test_eval_batch_size_does_not_change_bpc(small_pool):
    module = make_module(small_pool.vocab_size, 32, uniform=False)
    results = [validate(module, small_pool, 32, batch)["bpc"] for batch in (1, 5, 64)]
    assert results[0] == pytest.approx(results[1], rel=1e-6)
    assert results[0] == pytest.approx(results[2], rel=1e-6)


def test_every_token_is_scored_once_across_ranks_in_equal_batch_counts(small_pool):
    """Shares differ by one window when the count does not divide; padding windows make every
    rank's length (so its number of forward passes) the same, and score nothing."""
    windows = ValidationWindows(
        small_pool.val_tokens,
        small_pool.val_chars,
        small_pool.val_bytes,
        small_pool.val_token_languages,
        small_pool.eos_id,
        seq_len=14,
    )
    assert len(windows) % 3 and len(windows) % 4  # uneven shares for 3 and 4 ranks
    for world in (1, 2, 3, 4):
        shares = [RankWindows(windows, rank, world) for rank in range(world)]
        assert len({len(share) for share in shares}) == 1
        assert len(shares[0]) == -(-len(windows) // world)
        real = [j for share in shares for j in share.indices if j is not None]
        assert sorted(real) == list(range(len(windows)))
        tokens = chars = 0
        for share in shares:
            for i in range(len(share)):
                w = share[i]
                tokens += int(w["scored"].sum())
                chars += int(w["chars"][w["scored"]].sum())
        assert tokens == small_pool.meta["val"]["tokens"]
        assert chars == small_pool.meta["val"]["chars"]


def test_metric_sums_before_dividing():
    """Two 'devices' with different amounts of text: the merged value is the pooled ratio."""
    a, b = BitsPerCharacter(2), BitsPerCharacter(2)
    # Per target: nats, scored, chars, bytes, language (0 or 1); unscored targets count nothing.
    a.update(*map(torch.tensor, ([6.0, 4.0, 9.0], [1, 1, 0], [12, 8, 5], [13, 9, 5], [0, 1, 1])))
    b.update(*map(torch.tensor, ([1.0], [1], [2], [2], [1])))
    a.merge_state(b)
    values = a.compute()
    assert values["bpc"].item() == pytest.approx(11.0 / math.log(2) / 22)
    assert values["bpb"].item() == pytest.approx(11.0 / math.log(2) / 24)
    assert values["loss"].item() == pytest.approx(11.0 / 3)
    assert values["by_language_bpc"].tolist() == pytest.approx(
        [6.0 / math.log(2) / 12, 5.0 / math.log(2) / 10]
    )
