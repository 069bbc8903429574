"""Decoding with the KV cache: the same logits as the full forward, for every attention type;
greedy continuation equal to recomputing from scratch; and the command on a trained run."""

import pytest
import torch

from configs import load_config
from lightning_modules import run as runner
from lightning_modules.model import Decoder, DecoderConfig
from lightning_modules.sample import generate, main, next_token
from lightning_modules.shape import ModelShape

TYPES = [
    {},
    {"attention": "gqa", "n_kv_head": 2},
    {"attention": "gqa", "n_kv_head": 1},
    {"attention": "mfa", "q_rank": 48},
    {"attention": "mfa_kr", "q_rank": 48},
]


def decoder(**kw) -> Decoder:
    torch.manual_seed(0)
    model = Decoder(
        DecoderConfig(shape=ModelShape(128, 2, 344, 8, **kw), vocab_size=300, seq_len=32)
    )
    if kw.get("attention") == "mfa_kr":
        with torch.no_grad():  # alpha starts at 0; a trained one is not
            for block in model.blocks:
                block.attn.reuse_gain.uniform_(-1, 1)
    return model.double().eval()


@pytest.mark.parametrize("kw", TYPES)
def test_cached_decoding_gives_the_full_forwards_logits(kw):
    model = decoder(**kw)
    tokens = torch.randint(0, 300, (1, 20), generator=torch.Generator().manual_seed(1))
    full = model(tokens)
    cache = model.new_cache()
    steps = [model(tokens[:, :12], cache)]  # a prompt, then one token at a time
    steps += [model(tokens[:, i : i + 1], cache) for i in range(12, 20)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-10, atol=1e-10)
    assert cache[0].length == 20
    if kw.get("attention") == "mfa_kr":
        assert cache[0].values is None  # MFA-KR keeps its keys alone


@pytest.mark.parametrize("kw", TYPES)
def test_greedy_equals_recomputing_from_scratch(kw):
    model = decoder(**kw)
    prompt = [5, 17, 42, 99]
    expected = list(prompt)
    with torch.no_grad():
        for _ in range(20):  # plain loop, no cache: argmax of the last position
            expected.append(int(model(torch.tensor([expected]))[0, -1].argmax()))
    assert generate(model, prompt, 20) == expected[len(prompt) :]


def test_generation_longer_than_the_context_slides():
    assert len(generate(decoder(), [1, 2, 3], 80)) == 80  # seq_len 32


def test_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    draws = {next_token(logits, 1.0, 0.8, torch.Generator().manual_seed(s)) for s in range(200)}
    assert draws == {0, 1}  # 0.5 + 0.3 reaches 0.8: the tail is never drawn
    assert next_token(logits, 0.0, 1.0, None) == 0


def test_the_command_prints_completions_of_a_trained_run(small_pool, tmp_path, capsys):
    cfg = load_config(
        [
            f"data.pool={small_pool.path}",
            f"run.dir={tmp_path}",
            "run.name=tiny",
            "model.n=60K",
            "data.tokens=60K",
            "data.seq_len=64",
            "optim.micro_batch=4",
            "trainer.val_every_steps=0",
            "trainer.progress_bar=false",
            "trainer.threads=1",
        ]
    )
    runner.train(cfg)
    capsys.readouterr()
    args = [
        str(tmp_path / "tiny"),
        "--prompt",
        "def alpha_beta(",
        "--max-new-tokens",
        "30",
        "--seed",
        "3",
        "--samples",
        "2",
    ]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert first.count("--- sample") == 2 and "def alpha_beta(" in first
    assert main(args) == 0 and capsys.readouterr().out == first  # seeded: the same text
    assert main([str(tmp_path / "nothing"), "--prompt", "x"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
