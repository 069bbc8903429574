"""Train one scaling-law run: from a target size N and token budget D to a validation BPC.

    python train.py [--plan] [config=file.yaml] [key=value ...]

`--plan` prints the derived plan (shape, sizes, KV cache, learning rate, batch, steps, FLOPs) as
JSON and exits. `--help` shows every key with its default. The config is checked before torch and
Lightning are imported, so a config error answers at once.
"""

from __future__ import annotations

import json
import sys

from configs import ConfigError, load_config
from configs.schema import DEFAULT_YAML
from datamodules.config_pool import pool_source
from datamodules.mixture import BudgetError
from datamodules.pool import PoolError
from lightning_modules.plan import make_plan, world_size

USAGE = __doc__.strip()


def check_kernels(cfg, head_dim: int) -> None:
    """On a CUDA machine, what training would refuse (flash-attn's head sizes) --plan refuses."""
    from lightning_modules.attention import check_head_dim  # imports torch: only for --plan

    try:
        check_head_dim(cfg.model.attn_backend, head_dim)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(str(err)) from err


def main(argv: list[str]) -> int:
    if "-h" in argv or "--help" in argv:
        print(USAGE + "\n\nKeys and defaults (configs/default.yaml):\n")
        print(DEFAULT_YAML.read_text())
        return 0
    plan_only = "--plan" in argv
    overrides = [a for a in argv if a != "--plan"]
    try:
        cfg = load_config(overrides)
        if plan_only:
            plan = make_plan(cfg, world_size(cfg), pool_source(cfg).vocab_size)
            check_kernels(cfg, plan.shape.head_dim)
            for warning in plan.warnings:
                print(f"note: {warning}", file=sys.stderr)
            print(json.dumps(plan.as_dict(), indent=2))
            return 0
        # Lightning and torch load only now, after the config has been checked.
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        from lightning_modules.run import RunFailed, train

        try:
            train(cfg)
        except RunFailed as err:
            print(f"run failed: {err}", file=sys.stderr)
            return 1
        except SIGTERMException:
            print("stopped by SIGTERM after saving a checkpoint; run the same command to resume")
            return 143
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    except (PoolError, BudgetError) as err:
        print(f"data error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
