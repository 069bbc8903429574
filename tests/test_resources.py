"""Resource plan (paper Appendix A.3): whole nodes and accumulation nearest Step Law's batch."""

import json
import subprocess
import sys

import pytest

from lightning_modules.resources import choose_layout, estimate_micro_batch
from lightning_modules.shape import shape_for_target
from lightning_modules.steplaw import step_law_batch_tokens


@pytest.mark.parametrize(
    ("tokens", "micro", "gpus", "global_batch"),
    [(341e9, 9, 120, 1080), (567e9, 13, 112, 1456)],  # the paper's Table 1
)
def test_table1_layouts(tokens, micro, gpus, global_batch):
    target = step_law_batch_tokens(tokens) / 2048
    layout = choose_layout(target, micro, 8, range(1, 33))
    assert layout.world_size == gpus and layout.grad_accumulation == 1
    assert layout.global_batch_sequences == global_batch


def test_ties_prefer_fewer_accumulation_steps_then_fewer_nodes():
    # 96 sequences: 12 nodes x 1 GPU x 8 (no accumulation) beats 6 x 8 x 2 and 3 x 8 x 4.
    layout = choose_layout(96, 8, 1, range(1, 13))
    assert (layout.num_nodes, layout.grad_accumulation) == (12, 1)
    # At most 4 nodes: 4 x 8 x 3 = 96 exactly, fewer accumulation steps than 3 x 8 x 4.
    layout = choose_layout(96, 8, 1, range(1, 5))
    assert (layout.num_nodes, layout.grad_accumulation, layout.global_batch_sequences) == (4, 3, 96)


def test_single_machine_only_accumulates():
    layout = choose_layout(100.4, 4, 2, [1])
    assert (layout.num_nodes, layout.devices, layout.grad_accumulation) == (1, 2, 13)


def test_memory_estimate():
    big = shape_for_target(2e8 * 2**4)  # 3.18B
    plain = estimate_micro_batch(big, 65536, 2048, 80 * 2**30, activation_checkpointing=True)
    assert plain >= 1
    small = shape_for_target(2e8)
    assert estimate_micro_batch(small, 65536, 2048, 80 * 2**30) > estimate_micro_batch(
        shape_for_target(2e8 * 2**2), 65536, 2048, 80 * 2**30
    )
    with pytest.raises(ValueError, match="activation_checkpointing"):
        estimate_micro_batch(big, 65536, 2048, 16 * 2**30)


def test_plan_shows_the_layout():
    out = subprocess.run(
        [
            sys.executable,
            "train.py",
            "--plan",
            "model.n=2.27B",
            "data.tokens=341B",
            "data.vocab_size=65536",
            "data.seq_len=2048",
            "optim.micro_batch=9",
            "cluster.max_nodes=32",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    plan = json.loads(out.stdout)
    assert {k: plan[k] for k in ("num_nodes", "devices", "micro_batch", "grad_accumulation")} == {
        "num_nodes": 15,
        "devices": 8,
        "micro_batch": 9,
        "grad_accumulation": 1,
    }
    assert plan["global_batch_sequences"] == 1080
