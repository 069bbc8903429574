"""WSD decay branches: a branch started from its parent's checkpoint ends with the weights of a
from-scratch WSD run of its budget; a killed branch resumes; a branch is refused (never trained
from step 0) before its checkpoint exists, and when its plan differs from its parent's."""

import json
import signal
from pathlib import Path

import pytest
import torch
from test_fault_tolerance import TINY, result, run_to_end, start_and_signal, train_cmd

from configs import ConfigError, load_config
from lightning_modules import run as runner
from lightning_modules.plan import make_plan
from lightning_modules.schedule import decay_start
from lightning_modules.steplaw import step_law_batch_tokens, step_law_lr

# 512-token batches: the parent's 32768 tokens are 64 steps, the branch's 16384 are 32, whose
# decay (20%: 6 steps) starts at step 26.
FAMILY = [
    "optim.schedule=wsd",
    "optim.batch_tokens=512",
    "optim.lr=3e-3",
    "optim.warmup_steps=4",
    "trainer.checkpoint_every_steps=8",
]
PARENT, BRANCH = 32768, 16384
START = decay_start(BRANCH // 512, 0.2)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["state_dict"], checkpoint["global_step"]


@pytest.fixture(scope="module")
def family(small_pool, tmp_path_factory):
    runs = tmp_path_factory.mktemp("family")
    run_to_end(
        train_cmd(
            small_pool,
            runs,
            "parent",
            *FAMILY,
            f"data.tokens={PARENT}",
            f"family.branches=[{BRANCH}]",
        )
    )
    run_to_end(
        train_cmd(
            small_pool,
            runs,
            "branch",
            *FAMILY,
            f"data.tokens={BRANCH}",
            f"family.parent={runs / 'parent'}",
        )
    )
    run_to_end(train_cmd(small_pool, runs, "scratch", *FAMILY, f"data.tokens={BRANCH}"))
    return runs


def test_the_parent_keeps_its_branch_point(family):
    assert START == 26
    saved = family / "parent" / "checkpoints" / f"branch_step{START}.ckpt"
    assert torch.load(saved, weights_only=False)["global_step"] == START
    parent = result(family, "parent")
    assert parent["family"]["role"] == "parent" and parent["family"]["branches"] == {
        str(START): BRANCH
    }
    assert parent["schedule"] == "wsd" and parent["steps"] == 64


def test_a_branch_equals_a_from_scratch_run_of_its_budget(family):
    branch, scratch = result(family, "branch"), result(family, "scratch")
    assert branch["family"]["role"] == "branch" and branch["family"]["start_step"] == START
    assert branch["family"]["parent_checkpoint"].endswith(f"branch_step{START}.ckpt")
    assert branch["family"]["trained_tokens"] == (32 - START) * 512  # the decay alone
    assert 0 < branch["family"]["parent_seconds"] < branch["wall_seconds"]  # the prefix's time
    assert branch["steps"] == scratch["steps"] == 32
    assert branch["tokens"] == scratch["tokens"] == BRANCH
    assert branch["val_bpc"] == scratch["val_bpc"]  # bit-identical on CPU, one math thread
    (mine, step), (theirs, other) = weights(family / "branch"), weights(family / "scratch")
    assert step == other == 32
    assert all(torch.equal(mine[k], theirs[k]) for k in theirs)
    # and it is not the parent: the parent was still at the peak rate there
    assert result(family, "parent")["val_bpc"] != branch["val_bpc"]


def test_a_killed_branch_resumes(small_pool, family, tmp_path):
    cmd = train_cmd(
        small_pool,
        tmp_path,
        "killed",
        *FAMILY[:-1],
        "trainer.checkpoint_every_steps=2",
        f"data.tokens={BRANCH}",
        f"family.parent={family / 'parent'}",
    )
    process = start_and_signal(
        cmd, tmp_path / "killed" / "checkpoints" / "last.ckpt", signal.SIGKILL
    )
    assert process.returncode == -signal.SIGKILL
    done = run_to_end(cmd)
    assert "resuming from" in done.stdout and "killed/checkpoints" in done.stdout
    resumed = result(tmp_path, "killed")
    assert resumed["val_bpc"] == result(family, "scratch")["val_bpc"]
    assert resumed["family"]["parent_checkpoint"].endswith(f"branch_step{START}.ckpt")


def branch_config(pool, runs, parent, *extra):
    return load_config(
        [
            f"data.pool={pool.path}",
            f"run.dir={runs}",
            "run.name=early",
            *TINY,
            *FAMILY,
            f"data.tokens={BRANCH}",
            f"family.parent={parent}",
            *extra,
        ]
    )


def test_a_branch_before_its_checkpoint_is_refused(small_pool, family, tmp_path):
    with pytest.raises(ConfigError, match="has not started"):
        runner.train(branch_config(small_pool, tmp_path, tmp_path / "no-parent"))
    # a parent that was not asked for this branch point: never trains from step 0
    with pytest.raises(ConfigError, match=rf"branch_step{START - 1}\.ckpt does not exist yet"):
        runner.train(
            branch_config(small_pool, tmp_path, family / "parent", f"data.tokens={BRANCH - 512}")
        )
    assert not (tmp_path / "early" / "checkpoints").exists()


def test_a_branch_whose_plan_differs_from_its_parent_is_refused(small_pool, family, tmp_path):
    with pytest.raises(ConfigError) as refused:
        runner.train(branch_config(small_pool, tmp_path, family / "parent", "optim.lr=2e-3"))
    assert "lr: 0.003 -> 0.002" in str(refused.value)
    with pytest.raises(ConfigError, match="optim.decay_shape: 1-sqrt -> linear"):
        runner.train(
            branch_config(small_pool, tmp_path, family / "parent", "optim.decay_shape=linear")
        )


def test_a_family_shares_the_reference_budgets_step_law():
    """lr and batch from optim.reference_tokens, so every member of a family trains alike."""
    base = ["model.n=200K", "data.seq_len=256", "optim.micro_batch=1", "optim.schedule=wsd"]
    plan = make_plan(load_config([*base, "data.tokens=4M", "optim.reference_tokens=8M"]), 1, 4096)
    longest = make_plan(load_config([*base, "data.tokens=8M"]), 1, 4096)
    assert plan.lr == longest.lr == pytest.approx(step_law_lr(plan.shape.n_params, 8e6))
    assert plan.global_batch_tokens == longest.global_batch_tokens
    assert abs(plan.global_batch_tokens - step_law_batch_tokens(8e6)) <= 128  # whole sequences
    assert plan.warmup_steps == longest.warmup_steps == 312  # 20% of the reference's 1562 steps
    assert plan.steps == 781
    # the family's smallest budget needs a shorter, explicit warm-up (laws design writes one)
    with pytest.raises(ConfigError, match="smaller than the warm-up"):
        make_plan(load_config([*base, "data.tokens=1M", "optim.reference_tokens=8M"]), 1, 4096)
    assert plan.as_dict()["reference_tokens"] == 8_000_000


def test_a_budget_smaller_than_the_warmup_is_a_named_error():
    cfg = load_config(
        ["model.n=60K", "data.tokens=4096", "optim.batch_tokens=512", "optim.schedule=wsd"]
        + ["optim.warmup_steps=7", "data.seq_len=64", "optim.micro_batch=4"]
    )
    with pytest.raises(ConfigError, match="smaller than the warm-up"):
        make_plan(cfg, 1, 4096)  # 8 steps: the decay would start at step 6, inside the warm-up


def test_plan_json_records_the_schedule(family):
    plan = json.loads((family / "branch" / "plan.json").read_text())
    assert plan["schedule"] == "wsd" and plan["decay_start_step"] == START
    assert plan["decay_shape"] == "1-sqrt" and plan["decay_fraction"] == 0.2
    assert plan["family"]["role"] == "branch"
