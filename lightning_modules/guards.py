"""What keeps a run trustworthy through failures: atomic checkpoints taken only at whole optimizer
steps, a checkpoint on preemption
(SIGTERM), a stop with a recorded failure when the loss stops being finite, and a wall clock that
adds up the sessions of a resumed run."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file and rename: a kill mid-save leaves the previous checkpoint."""

    def save_checkpoint(self, checkpoint: dict, path: str | Path, storage_options: Any = None):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        super().save_checkpoint(checkpoint, tmp, storage_options)
        os.replace(tmp, path)


class NonFiniteLoss(RuntimeError):
    def __init__(self, step: int, loss: float):
        super().__init__(f"the training loss became {loss} at step {step}")
        self.step, self.loss = step, loss


def at_step_boundary(trainer: L.Trainer) -> bool:
    """True after the last micro-batch of an optimizer step (nothing half-accumulated)."""
    ready = trainer.fit_loop.epoch_loop.batch_progress.current.ready
    return ready % trainer.accumulate_grad_batches == 0


class StepCheckpoint(ModelCheckpoint):
    """Lightning's periodic checkpoint, taken only after a whole optimizer step.

    ModelCheckpoint decides by the global step, which stays put through an accumulation; its
    record of the last step saved stops a second save mid-step. A run started from another run's
    checkpoint (a WSD branch from its parent's) does not inherit that record, and saved one
    micro-batch into its first step: a state that did not resume to the same numbers.
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if at_step_boundary(trainer):
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)


class FiniteLossGuard(L.Callback):
    """Checks the loss every `every` optimizer steps (one host sync per check, not per step); a
    NaN or infinity persists once it appears, so it is caught at the next check."""

    def __init__(self, every: int):
        self.every = max(1, every)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not at_step_boundary(trainer) or trainer.global_step % self.every:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not torch.isfinite(loss.detach()).item():
            raise NonFiniteLoss(trainer.global_step, float(loss))


class PreemptionCheckpoint(L.Callback):
    """On SIGTERM, finish the optimizer step in progress, save `path`, then let Lightning stop.

    Lightning stops at the next micro-batch after SIGTERM; a checkpoint taken mid-accumulation
    would not resume to the same numbers, so the stop is held until the step boundary.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.preempted = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        connector = trainer._signal_connector  # Lightning keeps the SIGTERM flag here
        if not (connector.received_sigterm or self.preempted):
            return
        self.preempted = True
        if not at_step_boundary(trainer):
            connector.received_sigterm = False  # hold Lightning's stop until the step is whole
            return
        trainer.save_checkpoint(self.path, weights_only=False)  # the whole state, to resume
        connector.received_sigterm = True


class WallClock(L.Callback):
    """Wall seconds of a run over all its sessions: the seconds a checkpoint had accumulated,
    plus this session's. Time lost after the last checkpoint of a killed session is not counted:
    that work is redone, and the redone part is counted."""

    def __init__(self):
        self.started = time.time()
        self.before = 0.0

    def seconds(self) -> float:
        return self.before + time.time() - self.started

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds()}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.before = state_dict["seconds"]
