"""LightningDataModule over a token pool.

Training order is a pure function of the global step: global batch g holds sequences
[g*B, (g+1)*B) of the run's mixed stream (`datamodules.mixture`), rank r of W takes the
r-th contiguous share, and each share is cut into micro-batches. The batches a run sees do not
depend on the world size, the workers or the micro-batch, and a resumed run starts at the step
it stopped at. Validation covers every scored token exactly once across ranks, and every rank
runs the same number of forward passes (under FSDP each one is a collective).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from datamodules.language_mix import mixed_stream, trained_languages
from datamodules.mixture import MixedStream
from datamodules.pool import TokenPool


class TrainSequences(Dataset):
    """Sequence i of the mixed stream: S+1 tokens (inputs and shifted targets)."""

    def __init__(self, stream: MixedStream, count: int):
        self.stream, self.count = stream, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.stream.sequence(i).astype(np.int64))


class GlobalStepSampler(Sampler[list[int]]):
    """Micro-batches of sequence indices for one rank, from `start_step` to `total_steps`."""

    def __init__(
        self,
        global_batch: int,
        micro_batch: int,
        rank: int,
        world_size: int,
        start_step: int,
        total_steps: int,
    ):
        per_rank, rest = divmod(global_batch, world_size)
        if rest or per_rank % micro_batch:
            raise ValueError(
                f"global batch {global_batch} is not micro_batch {micro_batch} x accumulation x "
                f"world size {world_size}"
            )
        self.global_batch, self.micro_batch, self.per_rank = global_batch, micro_batch, per_rank
        self.rank, self.start_step, self.total_steps = rank, start_step, total_steps

    def __len__(self) -> int:
        """The whole run's micro-batches, also when resuming: Lightning restores its count of
        batches already seen and ends the epoch when that count reaches this length."""
        return self.total_steps * (self.per_rank // self.micro_batch)

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.total_steps):
            first = step * self.global_batch + self.rank * self.per_rank
            for offset in range(0, self.per_rank, self.micro_batch):
                yield list(range(first + offset, first + offset + self.micro_batch))


class ValidationWindows(Dataset):
    """Non-overlapping windows over the validation stream; each token is a target exactly once.

    Window j predicts tokens j*S+1 .. j*S+S from the S tokens before them. Separators are
    inputs only (their `scored` flag is False); the last window is padded with unscored slots.
    `language` is each target's language id, for per-language BPC.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        chars: np.ndarray,
        nbytes: np.ndarray,
        languages: np.ndarray,
        eos_id: int,
        seq_len: int,
    ):
        self.tokens, self.chars, self.nbytes, self.languages = tokens, chars, nbytes, languages
        self.eos_id, self.seq_len = eos_id, seq_len

    def __len__(self) -> int:
        return -(-(len(self.tokens) - 1) // self.seq_len)

    def __getitem__(self, j: int | None) -> dict[str, torch.Tensor]:
        """Window j; None is a padding window that scores nothing (see `rank_windows`)."""
        if j is None:
            zeros = torch.zeros(self.seq_len, dtype=torch.int64)
            fields = ("input", "target", "chars", "bytes", "language")
            return {**dict.fromkeys(fields, zeros), "scored": zeros.bool()}
        s = self.seq_len
        window = self.tokens[j * s : j * s + s + 1].astype(np.int64)
        targets = slice(j * s + 1, j * s + 1 + len(window) - 1)
        pad = s + 1 - len(window)
        scored = np.pad(window[1:] != self.eos_id, (0, pad))
        return {
            "input": torch.from_numpy(np.pad(window[:-1], (0, pad))),
            "target": torch.from_numpy(np.pad(window[1:], (0, pad))),
            "scored": torch.from_numpy(scored),
            "chars": torch.from_numpy(np.pad(self.chars[targets].astype(np.int64), (0, pad))),
            "bytes": torch.from_numpy(np.pad(self.nbytes[targets].astype(np.int64), (0, pad))),
            "language": torch.from_numpy(np.pad(self.languages[targets], (0, pad))),
        }


def rank_share(n: int, rank: int, world_size: int) -> range:
    """Contiguous, disjoint, covering shares of range(n); no padding, so nothing counts twice."""
    return range(n * rank // world_size, n * (rank + 1) // world_size)


class RankWindows(Dataset):
    """One rank's validation windows, padded with scoring-free windows (None) to the largest
    share, so that every rank runs the same number of batches."""

    def __init__(self, windows: ValidationWindows, rank: int, world_size: int):
        share = list(rank_share(len(windows), rank, world_size))
        longest = -(-len(windows) // world_size)
        self.windows, self.indices = windows, share + [None] * (longest - len(share))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.windows[self.indices[i]]


class PoolDataModule(L.LightningDataModule):
    """Serves one run's budget of a pool: `total_steps` global batches of the stream mixed at
    `code_fraction` (its code at the `languages` weights, when given), and the whole code
    validation set."""

    def __init__(
        self,
        open_pool: Callable[[], TokenPool],
        build_pool: Callable[[], None],
        code_fraction: float,
        seq_len: int,
        global_batch: int,
        micro_batch: int,
        total_steps: int,
        val_batch_size: int,
        num_workers: int = 0,
        languages: dict[str, float] | None = None,
    ):
        super().__init__()
        self.open_pool, self.build_pool, self.code_fraction = open_pool, build_pool, code_fraction
        self.seq_len, self.global_batch, self.micro_batch = seq_len, global_batch, micro_batch
        self.total_steps, self.val_batch_size, self.num_workers = (
            total_steps,
            val_batch_size,
            num_workers,
        )
        self.languages = languages
        self.pool: TokenPool | None = None
        self.stream: MixedStream | None = None

    def prepare_data(self) -> None:
        self.build_pool()  # once per node, before any rank reads

    def setup(self, stage: str | None = None) -> None:
        self.pool = self.open_pool()
        tokens = self.sequences * self.seq_len
        self.stream = mixed_stream(
            self.pool, self.code_fraction, self.seq_len, self.languages, tokens
        )
        self.stream.check_budget(self.sequences * self.seq_len)

    def trained_languages(self) -> dict | None:
        """The language weights and code tokens per language this run trains on (None: the
        pool's own proportions)."""
        if not self.languages:
            return None
        return trained_languages(
            self.pool,
            self.code_fraction,
            self.seq_len,
            self.languages,
            self.sequences * self.seq_len,
        )

    @property
    def sequences(self) -> int:
        return self.total_steps * self.global_batch

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer else (0, 1)

    def train_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        start = self.trainer.global_step if self.trainer else 0
        sampler = GlobalStepSampler(
            self.global_batch, self.micro_batch, rank, world, start, self.total_steps
        )
        return DataLoader(
            TrainSequences(self.stream, self.sequences),
            batch_sampler=sampler,
            num_workers=self.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        rank, world = self._rank()
        pool = self.pool
        windows = ValidationWindows(
            pool.val_tokens,
            pool.val_chars,
            pool.val_bytes,
            pool.val_token_languages,
            pool.eos_id,
            self.seq_len,
        )
        return DataLoader(
            RankWindows(windows, rank, world),
            batch_size=self.val_batch_size,
            shuffle=False,
            num_workers=self.num_workers,
        )
