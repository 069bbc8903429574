"""How a run's global batch is laid out on hardware (the paper's Appendix A.3).

Given Step Law's optimal global batch in sequences, a micro-batch that fits in memory and a
cluster (`gpus_per_node`, at most `max_nodes`), choose whole nodes and an accumulation count so
that `nodes x gpus_per_node x micro_batch x accumulation` is as close as possible to the optimum;
ties go to the fewest accumulation steps (less idle time per optimizer step), then to fewer
nodes. This reproduces the paper's Table 1: 2.27B/341B with micro-batch 9 on 8-GPU nodes gives
15 nodes (120 GPUs) x 9 = 1080 sequences; 1.34B/567B with micro-batch 13 gives 14 nodes
(112 GPUs) x 13 = 1456.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_modules.shape import ModelShape

MAX_ACCUMULATION = 256
BYTES_PER_PARAM_ADAMW_MIXED = 16  # fp32 weights 4 + fp32 grads 4 + Adam moments 8
ACTIVATION_BYTES_PER_TOKEN_WIDTH = 34  # per layer, bf16, with a fused (flash) attention kernel
MEMORY_HEADROOM = 0.85  # share of device memory the estimate fills (allocator, buffers, spikes)


@dataclass(frozen=True)
class Layout:
    num_nodes: int
    devices: int  # per node
    micro_batch: int
    grad_accumulation: int

    @property
    def world_size(self) -> int:
        return self.num_nodes * self.devices

    @property
    def global_batch_sequences(self) -> int:
        return self.world_size * self.micro_batch * self.grad_accumulation


def choose_layout(
    target_sequences: float,
    micro_batch: int,
    devices_per_node: int,
    nodes: range | list[int],
) -> Layout:
    """The layout nearest `target_sequences`; ties: fewest accumulation steps, then nodes."""
    if micro_batch < 1:
        raise ValueError(f"micro_batch={micro_batch} must be at least 1")
    best = None
    for num_nodes in nodes:
        per_step = num_nodes * devices_per_node * micro_batch
        around = max(1, round(target_sequences / per_step))
        for accumulation in {max(1, around - 1), around, min(MAX_ACCUMULATION, around + 1)}:
            key = (abs(per_step * accumulation - target_sequences), accumulation, num_nodes)
            if best is None or key < best[0]:
                best = (key, Layout(num_nodes, devices_per_node, micro_batch, accumulation))
    if best is None:
        raise ValueError("no node count to choose from")
    return best[1]


def estimate_micro_batch(
    shape: ModelShape,
    vocab_size: int,
    seq_len: int,
    device_memory_bytes: float,
    activation_checkpointing: bool = False,
    shards: int = 1,
) -> int:
    """Sequences per device that fit: AdamW mixed-precision state (divided over `shards` under
    FSDP) plus per-sequence activations (Korthikanti et al.'s 34*S*d bytes per layer with a
    fused attention kernel; one layer's worth plus the block inputs with checkpointing) and the
    logits (bf16 and their fp32 copy for the loss). An estimate: measure with bench/throughput."""
    d, layers = shape.d_model, shape.n_layer
    params = shape.n_params + 2 * vocab_size * d + (2 * layers + 1) * d
    static = BYTES_PER_PARAM_ADAMW_MIXED * params / shards
    if activation_checkpointing:
        per_layer = layers * 2 * seq_len * d + ACTIVATION_BYTES_PER_TOKEN_WIDTH * seq_len * d
    else:
        per_layer = layers * ACTIVATION_BYTES_PER_TOKEN_WIDTH * seq_len * d
    per_sequence = per_layer + 6 * seq_len * vocab_size
    free = MEMORY_HEADROOM * device_memory_bytes - static
    if free < per_sequence:
        raise ValueError(
            f"a {shape.n_params / 1e9:.2f}B model does not fit one sequence of {seq_len} in "
            f"{device_memory_bytes / 2**30:.0f} GiB; use model.activation_checkpointing=true or "
            "trainer.strategy=fsdp"
        )
    return int(free // per_sequence)
