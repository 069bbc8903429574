"""A trained run read back from its folder: checkpoint, decoder, and the pool it trained on
(for its tokenizer). What the exporter and the sampler share."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from datamodules.pool import TokenPool
from lightning_modules.model import Decoder
from lightning_modules.module import DecoderLM


class TrainedRunError(Exception):
    """The run folder lacks what is asked of it; the message names the fix."""


def checkpoint_path(run_dir: Path, checkpoint: str = "last") -> Path:
    path = run_dir / "checkpoints" / "last.ckpt" if checkpoint == "last" else Path(checkpoint)
    if not path.exists():
        raise TrainedRunError(
            f"no checkpoint {path}: train the run first, or pass --checkpoint PATH"
        )
    return path


def load_checkpoint(run_dir: Path, checkpoint: str = "last") -> dict:
    return torch.load(checkpoint_path(run_dir, checkpoint), map_location="cpu", weights_only=False)


def decoder_of(saved: dict) -> Decoder:
    """The checkpoint's decoder in eval mode, with its weights (on the CPU)."""
    module = DecoderLM(**saved["hyper_parameters"])
    module.load_state_dict(saved["state_dict"])
    return module.model.eval()


def run_pool(run_dir: Path) -> TokenPool:
    """The pool the run trained on, as its result.json records it (else its config names it)."""
    result = run_dir / "result.json"
    if result.exists():
        path = Path(json.loads(result.read_text())["pool"]["path"])
    else:
        from configs import load_config
        from datamodules.config_pool import pool_source

        path = pool_source(load_config([f"config={run_dir / 'config.yaml'}"])).path
    if not (path / "tokenizer.json").exists():
        raise TrainedRunError(
            f"the run's pool {path} is not here (its tokenizer is needed): run this where the "
            "pool is, or rebuild it with the run's data settings"
        )
    return TokenPool(path)
