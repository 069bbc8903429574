"""Training throughput and model FLOPs utilisation (MFU), from the analytic FLOP count.

MFU = achieved model FLOP/s / the device's dense bf16 peak. Model FLOPs per token come from
`shape.training_flops_with_attention` (6N, the LM-head matmul and the attention scores), never
from a profiler, so MFU does not credit recomputation (activation checkpointing) as useful work.

The peaks are kept here rather than taken from Lightning's table, which has no entry for a plain
"NVIDIA H200" and lists the 2:4-sparse figures for its H200 variants.
"""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn

from lightning_modules.shape import ModelShape, training_flops_with_attention

# Dense (not 2:4 sparse) bf16 tensor-core peaks, FLOP/s, from NVIDIA's datasheets. First match
# wins: each row lists substrings that must all occur in the lower-cased device name. NVL parts
# are listed without a peak (their datasheet revisions disagree): no MFU rather than a wrong one.
PEAK_BF16_FLOPS: tuple[tuple[str, tuple[str, ...], float | None], ...] = (
    ("H100 NVL", ("h100", "nvl"), None),
    ("H200 NVL", ("h200", "nvl"), None),
    ("H100 PCIe", ("h100", "pcie"), 756e12),
    ("H100 SXM", ("h100",), 989e12),  # reports itself as "NVIDIA H100 80GB HBM3"
    ("GH200", ("gh200",), 989e12),
    ("H200", ("h200",), 989e12),
    ("A100", ("a100",), 312e12),  # SXM and PCIe alike
)

# Precisions whose matmuls run on the bf16/fp16 tensor cores the table describes.
TENSOR_CORE_PRECISIONS = ("bf16-mixed", "bf16-true", "16-mixed", "16-true")


def peak_flops_for(device_name: str) -> float | None:
    """Dense bf16 peak of a CUDA device, by name; None if the table has no figure for it."""
    name = device_name.lower()
    for _, needles, peak in PEAK_BF16_FLOPS:
        if all(needle in name for needle in needles):
            return peak
    return None


def device_peak_flops(device: torch.device, precision: str) -> float | None:
    """The peak MFU is measured against; None on CPU, unknown GPUs and fp32 training."""
    if device.type != "cuda" or precision not in TENSOR_CORE_PRECISIONS:
        return None
    return peak_flops_for(torch.cuda.get_device_name(device))


def flops_per_token(shape: ModelShape, seq_len: int, vocab_size: int) -> int:
    """Model FLOPs to train on one token (forward and backward)."""
    return training_flops_with_attention(shape, 1, seq_len, vocab_size)


def throughput(
    tokens: int, seconds: float, flops_per_token: int, peak_flops: float | None
) -> dict[str, float | None]:
    """tokens/s, achieved TFLOP/s and MFU (None without a peak) for one device."""
    tokens_per_s = tokens / seconds
    flops_per_s = tokens_per_s * flops_per_token
    mfu = None if peak_flops is None else flops_per_s / peak_flops
    return {"tokens_per_s": tokens_per_s, "tflops": flops_per_s / 1e12, "mfu": mfu}


class ThroughputLogger(Callback):
    """Logs perf/tokens_per_s, perf/tflops and perf/mfu (per device) every logging step.

    The clock is read only at logging steps (after a `cuda.synchronize`), so training steps in
    between are not serialised against the host as they are with Lightning's ThroughputMonitor,
    which synchronises after every batch. The first optimizer step (compilation, allocator
    warm-up) and validation are left out of the timed windows. Token counts come from batch
    shapes, never from device values.
    """

    def __init__(self, flops_per_token: int, peak_flops: float | None | str = "auto"):
        """`peak_flops="auto"` looks the device up in PEAK_BF16_FLOPS at setup."""
        super().__init__()
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self.last: dict[str, float | None] = {}
        self._step = 0
        self._reset_window(None)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.peak_flops != "auto":
            return
        device = trainer.strategy.root_device
        self.peak_flops = device_peak_flops(device, trainer.precision)
        if self.peak_flops is None and device.type == "cuda":
            rank_zero_warn(
                f"no dense bf16 peak for {torch.cuda.get_device_name(device)} at precision "
                f"{trainer.precision} in PEAK_BF16_FLOPS: perf/mfu is not logged"
            )

    def _reset_window(self, start: float | None) -> None:
        self._start, self._seconds, self._tokens = start, 0.0, 0

    def _now(self, trainer: L.Trainer) -> float:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize(trainer.strategy.root_device)
        return time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._reset_window(None)
        self._step = trainer.global_step

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: torch.Tensor,
        batch_idx: int,
    ) -> None:
        self._tokens += batch.shape[0] * (batch.shape[1] - 1)  # inputs of S+1-token sequences
        if trainer.global_step == self._step:
            return  # still accumulating gradients
        self._step = trainer.global_step
        if self._start is None:  # the first optimizer step is warm-up
            self._reset_window(self._now(trainer))
            return
        if self._step % trainer.log_every_n_steps:
            return
        now = self._now(trainer)
        self.last = throughput(
            self._tokens, self._seconds + now - self._start, self.flops_per_token, self.peak_flops
        )
        metrics = {f"perf/{k}": v for k, v in self.last.items() if v is not None}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=self._step)
        self._reset_window(now)

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self._start is not None:
            self._seconds += self._now(trainer) - self._start

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.FITTING and self._start is not None:
            self._start = self._now(trainer)
