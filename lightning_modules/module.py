"""The LightningModule: next-token training of the decoder and the validation sums for BPC."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial

import lightning as L
import torch
import torch.nn.functional as F

from lightning_modules.model import Decoder, DecoderConfig
from lightning_modules.shape import ModelShape
from lightning_modules.steplaw import warmup_cosine


@dataclass(frozen=True)
class OptimSettings:
    peak_lr: float
    min_lr: float
    warmup_steps: int
    total_steps: int
    weight_decay: float
    beta1: float
    beta2: float
    eps: float


class DecoderLM(L.LightningModule):
    def __init__(self, decoder: dict, optim: dict):
        """Plain dicts (DecoderConfig and OptimSettings fields) so checkpoints reload anywhere."""
        super().__init__()
        self.save_hyperparameters()
        shape = ModelShape(**decoder["shape"])
        self.model = Decoder(DecoderConfig(**{**decoder, "shape": shape}))
        self.optim = OptimSettings(**optim)

    @classmethod
    def create(cls, decoder: DecoderConfig, optim: OptimSettings) -> DecoderLM:
        return cls(asdict(decoder), asdict(optim))

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        logits = self.model(batch[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch[:, 1:].flatten())
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict:
        logits = self.model(batch["input"])
        nats = F.cross_entropy(
            logits.flatten(0, 1).float(), batch["target"].flatten(), reduction="none"
        )
        scored = batch["scored"].flatten()
        return {
            "nats": nats[scored].to(torch.float64).sum(),
            "tokens": scored.sum(),
            "chars": batch["chars"].sum(),
            "bytes": batch["bytes"].sum(),
        }

    def configure_optimizers(self):
        """AdamW with decay on matrices only (norm gains are not decayed), warm-up + cosine."""
        o = self.optim
        matrices = [p for p in self.parameters() if p.ndim >= 2]
        vectors = [p for p in self.parameters() if p.ndim < 2]
        optimizer = torch.optim.AdamW(
            [
                {"params": matrices, "weight_decay": o.weight_decay},
                {"params": vectors, "weight_decay": 0.0},
            ],
            lr=o.peak_lr,
            betas=(o.beta1, o.beta2),
            eps=o.eps,
            fused=self.device.type == "cuda" or None,
        )
        schedule = partial(
            warmup_cosine,
            peak_lr=1.0,
            min_lr=o.min_lr / o.peak_lr,
            warmup=o.warmup_steps,
            total=o.total_steps,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
