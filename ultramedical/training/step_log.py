"""Training metrics across ranks: the collectives they need and the per-step log.

Collectives run on the backend's device: NCCL takes only the rank's own GPU, gloo only host memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def collective_device() -> torch.device:
    """Where a collective's tensors must live: NCCL takes only the rank's own GPU, gloo only host memory.

    Object collectives (`all_gather_object`) pick the same device themselves, from the current CUDA
    device, which `Learner` sets to the rank's own GPU."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_gather_objects(value: Any) -> list[Any]:
    rank, world = rank_and_world()
    if world == 1:
        return [value]
    out: list[Any] = [None] * world
    dist.all_gather_object(out, value)
    return out


@dataclass
class StepLog:
    """Metrics summed over micro-batches since the last log line."""

    sums: dict[str, float] = field(default_factory=dict)
    count: int = 0
    tokens: int = 0
    started: float = field(default_factory=time.perf_counter)

    def add(self, metrics: dict[str, torch.Tensor], tokens: int) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums.get(key, 0.0) + float(value)
        self.count += 1
        self.tokens += tokens

    def reduce(self) -> dict[str, float]:
        """Averages over micro-batches and ranks; tokens/s summed over ranks."""
        keys = sorted(self.sums)
        values = torch.tensor(
            [self.sums[k] / max(self.count, 1) for k in keys] + [float(self.tokens)],
            dtype=torch.float64,
            device=collective_device(),
        )
        _, world = rank_and_world()
        if world > 1:
            dist.all_reduce(values)
            values[:-1] /= world
        values = values.cpu()
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return dict(zip(keys, values[:-1].tolist(), strict=True)) | {
            "tokens_per_s": values[-1].item() / elapsed
        }
