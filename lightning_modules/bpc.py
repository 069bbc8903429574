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
    """Sums per language (id = index into the pool's language list); totals are their sums."""

    full_state_update = False
    higher_is_better = False

    def __init__(self, num_languages: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        # float64: a 6M-token validation set sums ~1e6 nats; float32 would round the last digits.
        zeros = torch.zeros(num_languages, dtype=torch.float64)
        self.add_state("nats", zeros, dist_reduce_fx="sum")
        for name in ("tokens", "chars", "bytes"):
            self.add_state(
                name, torch.zeros(num_languages, dtype=torch.int64), dist_reduce_fx="sum"
            )

    def update(
        self,
        nats: torch.Tensor,
        scored: torch.Tensor,
        chars: torch.Tensor,
        nbytes: torch.Tensor,
        language: torch.Tensor,
    ) -> None:
        """Per-target values (any shape); only `scored` targets count."""
        scored = scored.flatten().bool()
        language = language.flatten()[scored].long()
        self.nats.index_add_(0, language, nats.flatten()[scored].to(torch.float64))
        self.tokens.index_add_(0, language, torch.ones_like(language))
        self.chars.index_add_(0, language, chars.flatten()[scored].long())
        self.bytes.index_add_(0, language, nbytes.flatten()[scored].long())

    def compute(self) -> dict[str, torch.Tensor]:
        """Totals (scalars) and the same per language (vectors, under `by_language_*`)."""
        ln2 = math.log(2)
        per_language = {
            "by_language_bpc": self.nats / ln2 / self.chars,
            "by_language_bpb": self.nats / ln2 / self.bytes,
            "by_language_chars": self.chars,
        }
        nats, tokens, chars, nbytes = (
            x.sum() for x in (self.nats, self.tokens, self.chars, self.bytes)
        )
        return {
            "bpc": nats / ln2 / chars,
            "bpb": nats / ln2 / nbytes,
            "loss": nats / tokens,
            "tokens": tokens,
            "chars": chars,
            "bytes": nbytes,
            **per_language,
        }


class ValidationBPC(L.Callback):
    """Accumulates what each validation_step returns; logs val/bpc, val/bpb, val/loss and
    val/bpc_<language> for each language of the validation set.

    The last computed values stay in `self.result` for the run's result.json. The language names
    come from the datamodule's pool (`trainer.datamodule.pool.languages`).
    """

    def __init__(self) -> None:
        self.metric: BitsPerCharacter | None = None
        self.languages: list[str] = ["all"]
        self.result: dict = {}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        pool = getattr(trainer.datamodule, "pool", None)
        self.languages = pool.languages if pool is not None else ["all"]
        self.metric = BitsPerCharacter(len(self.languages)).to(pl_module.device)

    def on_validation_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        language = batch.get("language", torch.zeros_like(batch["target"]))
        self.metric.update(
            outputs["nats"], batch["scored"], batch["chars"], batch["bytes"], language
        )

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        values = self.metric.compute()  # reduced across ranks by the metric: no further sync
        # torchmetrics squeezes one-element results to 0-d: a one-language pool's vectors too.
        values = {k: v.reshape(-1) if k.startswith("by_language") else v for k, v in values.items()}
        self.result = {k: v.item() for k, v in values.items() if not k.startswith("by_language")}
        self.result["step"] = trainer.global_step
        by_language = {
            name: float(bpc)
            for name, bpc, chars in zip(
                self.languages,
                values["by_language_bpc"].tolist(),
                values["by_language_chars"].tolist(),
                strict=True,
            )
            if chars > 0
        }
        self.result["by_language"] = by_language
        for key in ("bpc", "bpb", "loss"):
            pl_module.log(f"val/{key}", values[key].float(), prog_bar=key == "bpc", sync_dist=False)
        for name, value in by_language.items():
            pl_module.log(f"val/bpc_{name}", value, sync_dist=False)
