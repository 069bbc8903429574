"""What a run prints: a progress bar that shows BPC to 4 decimals, and Lightning's messages that
do not apply to these runs silenced, each for a stated reason."""

from __future__ import annotations

import logging
import warnings

from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf

# Training batches are a pure function of the global step (datamodules.datamodule), so a run
# resumed mid-epoch is exact (tested bit for bit); Lightning cannot know that and warns.
NOT_RESUMABLE = r"You're resuming from a checkpoint that ended before the epoch ended"
# Lightning 2.6 calls a pytree API that torch 2.13 deprecates; nothing a user can act on.
PYTREE = r"`isinstance\(treespec, LeafSpec\)` is deprecated"
# Lightning advertises its cloud logger on every run; runs here log to TensorBoard, offline.
CLOUD_TIP = "litlogger"


class _DropCloudTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return CLOUD_TIP not in record.getMessage()


def quiet_lightning() -> None:
    warnings.filterwarnings("ignore", message=NOT_RESUMABLE)
    warnings.filterwarnings("ignore", message=PYTREE)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropCloudTip) for f in logger.filters):
            logger.addFilter(_DropCloudTip())


class RunProgressBar(TQDMProgressBar):
    """BPC differences between runs are in the third decimal: the bar shows four (tqdm's own
    format rounds to three significant digits), and no empty logger version."""

    @property
    def total_train_batches(self) -> int | float:
        """The run's micro-batches: its one epoch (Lightning's own count mixes optimizer steps
        left with micro-batches, which differ under accumulation and after a resume)."""
        return self.trainer.num_training_batches

    def on_train_start(self, trainer, pl_module) -> None:
        super().on_train_start(trainer, pl_module)
        # A run resumed mid-epoch gets no on_train_epoch_start: its bar gets the total here.
        self.train_progress_bar.total = convert_inf(self.total_train_batches)
        self.train_progress_bar.set_description(f"Epoch {trainer.current_epoch}")

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return {
            key: f"{value:.4f}" if isinstance(value, float) and key.startswith("val/") else value
            for key, value in items.items()
        }
