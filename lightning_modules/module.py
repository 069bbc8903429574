"""The LightningModule: next-token training of the decoder and the validation sums for BPC."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.strategies import FSDPStrategy, Strategy
from torch.distributed.fsdp import FullyShardedDataParallel

from lightning_modules.model import Block, Decoder, DecoderConfig
from lightning_modules.schedule import Schedule
from lightning_modules.shape import ModelShape


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
    schedule: str = "cosine"  # or "wsd" (lightning_modules.schedule)
    decay_fraction: float = 0.2
    decay_shape: str = "1-sqrt"

    def lr_schedule(self) -> Schedule:
        return Schedule(
            self.schedule,
            self.peak_lr,
            self.min_lr,
            self.warmup_steps,
            self.total_steps,
            self.decay_fraction,
            self.decay_shape,
        )


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy in fp32; compiled, the upcast fuses into the softmax instead of
    materialising a float copy of the (tokens x vocab) logits."""
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


def is_gain(name: str) -> bool:
    """Norm gains and MFA-KR's alpha: vectors that scale, kept out of weight decay."""
    return "norm" in name or name.endswith("_gain")


class DecoderLM(L.LightningModule):
    def __init__(self, decoder: dict, optim: dict, compile_model: bool = False):
        """Plain dicts (DecoderConfig and OptimSettings fields) so checkpoints reload anywhere."""
        super().__init__()
        self.save_hyperparameters()
        shape = ModelShape(**decoder["shape"])
        self.model = Decoder(DecoderConfig(**{**decoder, "shape": shape}))
        self.optim = OptimSettings(**optim)
        self.schedule = self.optim.lr_schedule()
        self.compile_model = compile_model
        self._compiled = False
        self._loss = next_token_loss

    @classmethod
    def create(
        cls, decoder: DecoderConfig, optim: OptimSettings, compile_model: bool = False
    ) -> DecoderLM:
        return cls(asdict(decoder), asdict(optim), compile_model)

    def configure_model(self) -> None:
        """Compile each block, and the loss, before the strategy wraps the module.

        Lightning calls this hook under every strategy before DDP or FSDP wrap the module, which
        is where PyTorch advises compiling. `Module.compile` works in place, so parameter names
        (and checkpoints) carry no `_orig_mod.`; a block is also the FSDP unit, and the blocks
        share one compiled graph, so compile time does not grow with depth.
        """
        if not self.compile_model or self._compiled:
            return  # the hook runs again for `validate` after `fit`
        for block in self.model.blocks:
            block.compile(dynamic=False)  # training shapes are fixed: specialise to them
        self._loss = torch.compile(next_token_loss, dynamic=False)
        self._compiled = True

    def loss(self, batch: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy of (B, S+1) token sequences (also what bench/ times)."""
        return self._loss(self.model(batch[:, :-1]), batch[:, 1:])

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train/loss", loss, prog_bar=True)  # a tensor: no host-device sync here
        self.log("train/lr", self.learning_rate(self.trainer.global_step))  # one curve, a float
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict:
        """Per-target cross-entropy in nats; the BPC callback selects, groups and sums it.

        The blocks run under the trainer's precision; the final norm, the output layer and the
        loss run in fp32 (in bf16 they bias each token's loss by 5e-5 to 3e-4 relative)."""
        hidden = self.model.hidden(batch["input"])
        with torch.autocast(hidden.device.type, enabled=False):
            logits = self.model.head(self.model.norm(hidden.float()))
            targets = batch["target"].flatten()
            nats = F.cross_entropy(logits.flatten(0, 1), targets, reduction="none")
        return {"nats": nats}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["grad_accumulation"] = self.trainer.accumulate_grad_batches

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Re-count the micro-batches already seen for this run's accumulation.

        A run resumed on another device count keeps its global batch but may accumulate over a
        different number of micro-batches. Lightning counts micro-batches, both to place the
        optimizer steps and to end the epoch, so the count is rescaled to what this layout would
        have seen after the same optimizer steps.
        """
        saved = checkpoint.get("grad_accumulation")
        now = self.trainer.accumulate_grad_batches
        if saved is None or saved == now:
            return
        shift = checkpoint["global_step"] * (now - saved)
        progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]
        for counts in (progress["total"], progress["current"]):
            for key in counts:
                counts[key] += shift

    def configure_optimizers(self):
        """AdamW (fused on CUDA) with decay on matrices only (norm gains and MFA-KR's alpha are
        not decayed); the schedule (warm-up, then cosine or WSD) is applied in `optimizer_step`."""
        o = self.optim
        # By name, not by p.ndim: FSDP presents its shards as flat 1-d views.
        params = list(self.named_parameters())
        matrices = [p for name, p in params if not is_gain(name)]
        vectors = [p for name, p in params if is_gain(name)]
        optimizer = torch.optim.AdamW(
            [
                {"params": matrices, "weight_decay": o.weight_decay},
                {"params": vectors, "weight_decay": 0.0},
            ],
            lr=o.peak_lr,
            betas=(o.beta1, o.beta2),
            eps=o.eps,
            fused=all(p.is_cuda for _, p in params) or None,  # fused kernels: CUDA tensors only
        )
        return optimizer

    def learning_rate(self, step: int) -> float:
        return self.schedule(step)

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        """Set the lr from the global step itself, not from a scheduler's own counter: a run
        resumed from any checkpoint then follows exactly the schedule of an uninterrupted one."""
        for group in optimizer.param_groups:
            group["lr"] = self.learning_rate(self.trainer.global_step)
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Under FSDP the norm must span every shard, which only the root module can compute
        (Lightning's default refuses norm clipping there)."""
        if isinstance(self.trainer.model, FullyShardedDataParallel):
            if gradient_clip_val:
                self.trainer.model.clip_grad_norm_(gradient_clip_val)
            return
        self.clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)


def training_strategy(name: str) -> str | Strategy:
    """The Lightning strategy for `trainer.strategy`; `fsdp` shards one block per unit.

    Lightning's plain "fsdp" makes the whole model a single unit, which gathers every parameter
    at once; one unit per block gathers one layer at a time, which is what lets the 3B shapes fit.
    """
    if name != "fsdp":
        return name
    return FSDPStrategy(auto_wrap_policy={Block})
