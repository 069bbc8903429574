"""Step Law values and the run plan built from them (schedules: tests/test_schedule.py)."""

import pytest

from configs import load_config
from lightning_modules.plan import batch_layout, make_plan
from lightning_modules.steplaw import step_law_batch_tokens, step_law_lr


@pytest.mark.parametrize("tokens, sequences", [(127e9, 620.0), (341e9, 1089.7), (567e9, 1456.8)])
def test_batch_matches_facts_table_1(tokens, sequences):
    assert step_law_batch_tokens(tokens) / 2048 == pytest.approx(sequences, abs=0.05)


def test_lr_by_hand():
    # 1.79 * (1e9)^-0.713 * (1e11)^0.307 = 1.79 * 10^(-6.417 + 3.377)
    assert step_law_lr(1e9, 1e11) == pytest.approx(
        1.79 * 10 ** (-9 * 0.713 + 11 * 0.307), rel=1e-12
    )
    assert step_law_lr(1e9, 1e11) == pytest.approx(1.6309e-3, rel=1e-3)


def test_plan_for_the_2_27b_run():
    cfg = load_config(
        [
            "model.n=2.27B",
            "data.tokens=341B",
            "data.vocab_size=65536",
            "data.seq_len=2048",
            "optim.micro_batch=9",
        ]
    )
    plan = make_plan(cfg, world_size=120, vocab_size=65536).as_dict()
    # Table 2's row: 2.27B is the rule's target 2e8 * 2**3.5, not 2.27e9 (which gives d_ff 6096).
    assert (plan["d_model"], plan["d_ff"], plan["n_head"], plan["n_layer"]) == (2304, 6064, 36, 36)
    assert plan["global_batch_sequences"] == 1080  # the paper's 120 GPUs x 9
    assert (plan["micro_batch"], plan["grad_accumulation"]) == (9, 1)
    single = make_plan(cfg, world_size=1, vocab_size=65536).as_dict()
    assert abs(single["global_batch_sequences"] - 1089.7) < 5
    assert single["steps"] == round(341e9 / single["global_batch_tokens"])
    assert single["flops"] == 6 * single["n_params"] * single["tokens"]
    assert single["lr"] == pytest.approx(step_law_lr(single["n_params"], 341e9))


def test_batch_layout():
    cfg = load_config([])  # trainer.num_nodes=1, cluster.max_nodes=null: devices as given
    shape = lambda layout: (layout.micro_batch, layout.grad_accumulation)  # noqa: E731
    assert shape(batch_layout(cfg, 1089.7, 9, 1)) == (9, 121)
    assert shape(batch_layout(cfg, 3.6, 16, 1)) == (4, 1)  # micro-batch <= the whole batch
    assert shape(batch_layout(cfg, 1456.8, 13, 112)) == (13, 1)


def test_explicit_lr_and_batch():
    cfg = load_config(
        ["optim.lr=0.001", "optim.batch_tokens=8K", "data.seq_len=256", "optim.micro_batch=8"]
    )
    plan = make_plan(cfg, world_size=1, vocab_size=4096)
    assert plan.lr == 0.001
    assert (plan.micro_batch, plan.grad_accumulation, plan.global_batch_tokens) == (8, 4, 8192)
