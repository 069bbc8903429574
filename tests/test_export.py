"""Export to transformers: the exported model loads offline, gives the run's logits, and a BPC
computed with transformers alone (a plain loop over the validation text) equals the run's."""

import json
import math

import numpy as np
import pytest
import torch

from configs import load_config
from lightning_modules import run as runner
from lightning_modules.export import ExportError, export, main

transformers = pytest.importorskip(
    "transformers", reason="the hf extra is not installed: pip install -e '.[hf]'"
)
pytest.importorskip("safetensors", reason="the hf extra is not installed: pip install -e '.[hf]'")


def train_tiny(pool, run_dir, *extra):
    cfg = load_config(
        [
            f"data.pool={pool.path}",
            f"run.dir={run_dir}",
            "run.name=tiny",
            "model.n=60K",
            "model.head_dim=16",
            "data.tokens=60K",
            "data.seq_len=64",
            "optim.micro_batch=4",
            "trainer.val_every_steps=0",
            "trainer.progress_bar=false",
            "trainer.precision=32-true",
            "trainer.threads=1",  # no queue behind another training (not what is tested)
            *extra,
        ]
    )
    return runner.train(cfg), run_dir / "tiny"


def bpc_with_transformers(model, tokenizer, pool, seq_len: int) -> tuple[float, int]:
    """Decode the validation stream into its documents, encode each text with the exported
    tokenizer, and score non-overlapping windows of seq_len (separators are never targets)."""
    eos = pool.eos_id
    stream = pool.val_tokens.tolist()
    docs, start = [], 0
    for i, token in enumerate(stream + [eos]):
        if token == eos:
            if i > start:
                docs.append(pool.tokenizer.decode(stream[start:i], skip_special_tokens=False))
            start = i + 1
    ids = []
    for text in docs:
        ids += [eos] + tokenizer(text, add_special_tokens=False)["input_ids"]
    ids = ids[1:] if stream[0] != eos else ids
    assert ids[: len(stream)] == stream  # the exported tokenizer reproduces the pool's tokens
    chars = sum(len(text) for text in docs)
    nats = 0.0
    with torch.no_grad():
        for j in range(0, len(ids) - 1, seq_len):
            window = torch.tensor(ids[j : j + seq_len + 1])
            logits = model(window[None, :-1]).logits[0].double()
            targets = window[1:]
            losses = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
            nats += losses[targets != eos].sum().item()
    return nats / math.log(2) / chars, chars


@pytest.mark.parametrize("attention", [[], ["model.attention=gqa", "model.n_kv_head=2"]])
def test_export_loads_in_transformers_with_the_runs_logits_and_bpc(small_pool, tmp_path, attention):
    result, run_dir = train_tiny(small_pool, tmp_path, *attention)
    folder = export(run_dir, tmp_path / "hf")
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    config = json.loads((folder / "config.json").read_text())
    heads = result["plan"]["n_head"]
    assert config["num_key_value_heads"] == (2 if attention else heads)
    assert config["tie_word_embeddings"] is False
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    assert tokenizer.eos_token_id == small_pool.eos_id

    ours = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    from lightning_modules.module import DecoderLM

    module = DecoderLM(**ours["hyper_parameters"]).eval()
    module.load_state_dict(ours["state_dict"])
    window = torch.from_numpy(small_pool.val_tokens[:64].astype(np.int64))[None]
    with torch.no_grad():
        torch.testing.assert_close(model(window).logits, module.model(window), rtol=0, atol=1e-5)

    bpc, chars = bpc_with_transformers(model, tokenizer, small_pool, seq_len=64)
    assert chars == int(small_pool.val_chars.sum())  # the project's character counts
    assert bpc == pytest.approx(result["val_bpc"], rel=1e-6)
    card = (folder / "README.md").read_text()
    assert f"{result['n_params']:,}" in card and str(result["val_bpc"]) in card


def test_shards_above_the_limit_have_an_index(small_pool, tmp_path):
    _, run_dir = train_tiny(small_pool, tmp_path)
    folder = export(run_dir, tmp_path / "hf", dtype="bf16", max_shard_bytes=40_000)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shards = sorted({*index["weight_map"].values()})
    assert len(shards) > 1 and all((folder / s).exists() for s in shards)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder)
    assert model.dtype == torch.bfloat16


def test_mfa_is_refused_with_the_reason(small_pool, tmp_path, capsys):
    _, run_dir = train_tiny(small_pool, tmp_path, "model.attention=mfa", "model.q_rank=32")
    with pytest.raises(ExportError, match="no transformers equivalent"):
        export(run_dir, tmp_path / "hf")
    assert main([str(run_dir), "--out", str(tmp_path / "hf")]) == 2
    assert "model.attention=mfa has no transformers equivalent" in capsys.readouterr().err
    assert not (tmp_path / "hf").exists()  # nothing half-written
