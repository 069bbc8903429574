"""Exact bits per character as a torchmetrics Metric, and the callback that runs it.

BPC = (sum of next-token cross-entropy in nats over every scored token) / (ln 2 * characters
those tokens cover). The sums are reduced across devices before dividing, so the result is the
same for any evaluation batch size or number of devices.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torchmetrics import Metric


class BitsPerCharacter(Metric):
    full_state_update = False
    higher_is_better = False

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        # float64: a 6M-token validation set sums ~1e6 nats; float32 would round the last digits.
        self.add_state("nats", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("tokens", "chars", "bytes"):
            self.add_state(name, torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(
        self, nats: torch.Tensor, tokens: torch.Tensor, chars: torch.Tensor, nbytes: torch.Tensor
    ) -> None:
        self.nats += nats.to(torch.float64)
        self.tokens += tokens
        self.chars += chars
        self.bytes += nbytes

    def compute(self) -> dict[str, torch.Tensor]:
        return {
            "bpc": self.nats / math.log(2) / self.chars,
            "bpb": self.nats / math.log(2) / self.bytes,
            "loss": self.nats / self.tokens,
            "tokens": self.tokens,
            "chars": self.chars,
            "bytes": self.bytes,
        }


class ValidationBPC(L.Callback):
    """Accumulates the sums each validation_step returns and logs val/bpc, val/bpb, val/loss.

    The last computed values stay in `self.result` for the run's result.json.
    """

    def __init__(self) -> None:
        self.metric = BitsPerCharacter()
        self.result: dict[str, float] = {}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.metric = self.metric.to(pl_module.device)
        self.metric.reset()

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        self.metric.update(outputs["nats"], outputs["tokens"], outputs["chars"], outputs["bytes"])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values = self.metric.compute()
        self.result = {key: value.item() for key, value in values.items()}
        self.result["step"] = trainer.global_step
        for key in ("bpc", "bpb", "loss"):
            # Already reduced across ranks by the metric: no further sync.
            pl_module.log(f"val/{key}", values[key].float(), prog_bar=key == "bpc", sync_dist=False)
