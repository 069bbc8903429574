"""Config loading: sizes, overrides, files, and errors that say what to fix."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from configs import ConfigError, load_config, parse_size
from lightning_modules.plan import make_plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "text, value",
    [
        ("201M", 201_000_000),
        ("1.13B", 1_130_000_000),
        ("2e9", 2_000_000_000),
        ("4K", 4000),
        (12345, 12345),
        ("341B", 341_000_000_000),
        ("1.5t", 1_500_000_000_000),
    ],
)
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("bad", ["12Q", "abc", "-5M", "0"])
def test_bad_size(bad):
    with pytest.raises(ConfigError):
        parse_size(bad, "model.n")


def test_unknown_key_names_it_and_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        load_config(["model.d_modle=512"])
    message = str(err.value)
    assert "model.d_modle" in message and "Did you mean 'd_model'" in message
    assert "n_layer" in message and "attn_backend" in message


def test_unknown_section():
    with pytest.raises(ConfigError, match="Did you mean 'optim'"):
        load_config(["optm.lr=1"])


def test_wrong_type():
    with pytest.raises(ConfigError, match="data.seq_len"):
        load_config(["data.seq_len=long"])


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  n: 3M\ndata:\n  seq_len: 64\n")
    cfg = load_config([f"config={path}", "data.seq_len=32"])
    assert (cfg.model.n, cfg.data.seq_len) == ("3M", 32)
    path.write_text("model:\n  nn: 3M\n")
    with pytest.raises(ConfigError, match="model.nn"):
        load_config([f"config={path}"])


def test_partial_explicit_shape_is_refused():
    cfg = load_config(["model.d_model=128"])
    with pytest.raises(ConfigError, match="set all four shape keys"):
        make_plan(cfg, 1, 4096)


def test_explicit_shape_overrides_n():
    cfg = load_config(["model.d_model=128", "model.n_layer=2", "model.d_ff=344", "model.n_head=2"])
    plan = make_plan(cfg, 1, 4096)
    assert plan.shape.n_params == 2 * 128 * (4 * 128 + 3 * 344)


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_cli_plan_json():
    out = run_cli(
        "--plan", "model.n=2.27B", "data.tokens=341B", "data.vocab_size=65536", "data.seq_len=2048"
    )
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    required = {
        "d_model",
        "d_ff",
        "n_head",
        "n_layer",
        "n_params",
        "n_params_with_embedding",
        "vocab_size",
        "seq_len",
        "tokens",
        "lr",
        "global_batch_tokens",
        "global_batch_sequences",
        "micro_batch",
        "grad_accumulation",
        "steps",
        "flops",
        "flops_with_attention",
    }
    assert required <= plan.keys()
    assert abs(plan["global_batch_sequences"] - 1090) <= 5
    assert plan["d_model"] == 2304 and plan["n_layer"] == 36


def test_cli_help_and_errors():
    out = run_cli("--help")
    assert out.returncode == 0 and "attn_backend" in out.stdout and "--plan" in out.stdout
    out = run_cli("--plan", "trainer.devcies=2")
    assert out.returncode == 2 and "Did you mean 'devices'" in out.stderr


def test_flash_is_planned_anywhere_but_trained_only_where_it_imports(tmp_path):
    """A login node without flash-attn can plan a flash run (and write its SLURM script);
    training there fails at once with the reason, before any data is built."""
    from lightning_modules.attention import flash_available

    out = run_cli("--plan", "model.attn_backend=flash")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["n_params"] > 0
    if not flash_available():
        out = run_cli("model.attn_backend=flash", f"run.dir={tmp_path}")
        assert out.returncode == 2 and "flash-attn cannot be imported" in out.stderr
        assert not any(tmp_path.iterdir())
    out = run_cli("--plan", "model.attn_backend=xformers")
    assert out.returncode == 2 and "must be one of auto, flash, sdpa" in out.stderr


@pytest.mark.parametrize(
    "override, named",
    [
        ("optim.lr=-1", "optim.lr=-1: must be a positive number or auto"),
        ("optim.lr=0", "optim.lr=0: must be a positive number or auto"),
        ("optim.lr=abc", "optim.lr='abc': must be a positive number or auto"),
        ("optim.min_lr=0", "optim.min_lr=0.0: must be a positive number"),
        ("optim.warmup_steps=abc", "optim.warmup_steps='abc': must be an integer >= 0 or auto"),
        ("optim.micro_batch=0", "optim.micro_batch=0: must be an integer >= 1 or auto"),
        ("optim.beta2=1", "optim.beta2=1.0: must be a number in [0, 1)"),
        ("data.seq_len=long", "data.seq_len='long': must be an integer"),
        ("data.code_fraction=1.5", "data.code_fraction=1.5: must be a number in [0, 1]"),
        ("trainer.devices=0", "trainer.devices=0: must be a positive integer, -1 or auto"),
        ("trainer.precision=fp8", "trainer.precision='fp8': must be one of auto, 32-true"),
        ("model.compile=maybe", "model.compile='maybe': must be true or false"),
        ("cluster.max_nodes=x", "cluster.max_nodes='x': must be an integer or null"),
        ("config=missing.yaml", "config=missing.yaml: no such file"),
    ],
)
def test_a_value_that_cannot_train_is_one_line_naming_the_key(override, named):
    with pytest.raises(ConfigError) as err:
        load_config([override])
    assert str(err.value).startswith(named) and "\n" not in str(err.value)


def test_a_floor_above_the_peak_is_refused():
    with pytest.raises(ConfigError, match="optim.min_lr=0.01 is above optim.lr=0.001"):
        load_config(["optim.lr=1e-3", "optim.min_lr=1e-2"])
    # With lr=auto the peak is Step Law's, known once N and D are: 5.0e-4 for N=49.7M, D=2M.
    with pytest.raises(ConfigError, match="below optim.min_lr=0.001"):
        make_plan(load_config(["optim.min_lr=1e-3", "model.n=50M"]), 1, 4096)


def test_a_warmup_as_long_as_the_run_is_refused():
    cfg = load_config(["optim.warmup_steps=500", "optim.batch_tokens=4096", "data.tokens=2M"])
    with pytest.raises(ConfigError, match="optim.warmup_steps=500 is not shorter than the run"):
        make_plan(cfg, 1, 4096)  # 2M / 4096 = 488 steps


def test_config_errors_answer_before_torch_is_imported():
    """Torch and Lightning take 5-50 s to import on a loaded machine; a config error or --help
    must not wait for them."""
    probe = (
        "import sys, train\n"
        "codes = [train.main(a) for a in (['optim.lr=abc'], ['model.n=12Q'], ['--help'],"
        " ['config=missing.yaml'], ['optm.lr=1'])]\n"
        "assert codes == [2, 2, 0, 2, 2], codes\n"
        "assert 'torch' not in sys.modules and 'lightning' not in sys.modules\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "config error: optim.lr='abc'" in out.stderr
