"""Hyperparameter laws: peak learning rate lr(N, D) and global batch B(D) in tokens.

The default is Step Law's (seed 003), with its published (rounded) coefficients: they give the
batch sizes the paper's Table 1 starts from (620.0, 1089.7 and 1456.8 sequences of 2048); the
unrounded fit (1.7973, -0.71292, 0.30749; 0.58069, 0.57094) differs by under 0.1% in batch and
under 2% in learning rate over the study's range. `optim.hparam_law=FILE` takes a law measured
with `python -m laws hparams` instead (the same JSON format; configs/hparam_laws/).
N is the non-embedding parameter count, D the training tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from configs import ConfigError

LR_COEF, LR_N_EXP, LR_D_EXP = 1.79, -0.713, 0.307
BATCH_COEF, BATCH_D_EXP = 0.58, 0.571


@dataclass(frozen=True)
class HparamLaw:
    """lr = lr_coef N^lr_n D^lr_d and batch_tokens = batch_coef D^batch_d (N^batch_n, if fitted)."""

    lr_coef: float = LR_COEF
    lr_n: float = LR_N_EXP
    lr_d: float = LR_D_EXP
    batch_coef: float = BATCH_COEF
    batch_d: float = BATCH_D_EXP
    batch_n: float = 0.0
    source: str = "step-law"

    def lr(self, n_params: float, tokens: float) -> float:
        return self.lr_coef * n_params**self.lr_n * tokens**self.lr_d

    def batch_tokens(self, tokens: float, n_params: float = 1.0) -> float:
        return self.batch_coef * tokens**self.batch_d * n_params**self.batch_n

    def to_json(self) -> dict:
        return {
            "lr": {"coef": self.lr_coef, "n_exponent": self.lr_n, "d_exponent": self.lr_d},
            "batch_tokens": {
                "coef": self.batch_coef,
                "d_exponent": self.batch_d,
                **({"n_exponent": self.batch_n} if self.batch_n else {}),
            },
        }

    @classmethod
    def from_json(cls, data: dict, source: str) -> HparamLaw:
        try:
            lr, batch = data["lr"], data["batch_tokens"]
            if batch is None:  # measured lr law, no batch law: Step Law's batch
                batch = {"coef": BATCH_COEF, "d_exponent": BATCH_D_EXP}
                source += " (batch: Step Law's)"
            return cls(
                float(lr["coef"]),
                float(lr["n_exponent"]),
                float(lr["d_exponent"]),
                float(batch["coef"]),
                float(batch["d_exponent"]),
                float(batch.get("n_exponent", 0.0)),
                source,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(
                f"optim.hparam_law={source}: not a hyperparameter law ({err!r} missing or not a "
                'number); expected {"lr": {"coef", "n_exponent", "d_exponent"}, '
                '"batch_tokens": {"coef", "d_exponent"}}, as `python -m laws hparams` writes'
            ) from None


STEP_LAW = HparamLaw()


def load_hparam_law(path: str | None) -> HparamLaw:
    """Step Law's published law, or the one in `path` (a `laws hparams` law file)."""
    if path is None:
        return STEP_LAW
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except OSError as err:
        raise ConfigError(f"optim.hparam_law={path}: cannot read it ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"optim.hparam_law={path}: not valid JSON ({err})") from None
    return HparamLaw.from_json(data, str(file))


def step_law_lr(n_params: float, tokens: float) -> float:
    """Peak learning rate: 1.79 * N^-0.713 * D^0.307."""
    return STEP_LAW.lr(n_params, tokens)


def step_law_batch_tokens(tokens: float) -> float:
    """Global batch in tokens: 0.58 * D^0.571 (independent of N)."""
    return STEP_LAW.batch_tokens(tokens)
