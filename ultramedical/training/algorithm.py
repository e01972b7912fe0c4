"""What an algorithm supplies to the one training loop: its data, its collation and its loss.

The loop (training/loop.py) owns everything else: DeepSpeed, sharding, accumulation, schedule,
checkpoints, metrics. Adding an algorithm means a subclass here, not a new trainer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch

from ultramedical.config import Config, StageConfig
from ultramedical.data.loading import DataError, LoadResult, load_records
from ultramedical.online.round_data import TrainItem

Example = dict[str, Any]
Batch = dict[str, torch.Tensor]


@dataclass
class ExampleStats:
    """What turning records into examples did; reported, so truncation is never silent."""

    records: int = 0
    examples: int = 0
    truncated: int = 0
    dropped_too_long: int = 0
    skipped_invalid: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "notes"} | self.notes


@dataclass
class ForwardContext:
    """How the loop lets an algorithm run extra forward passes (reference log-probs) on its shard."""

    rank: int
    world_size: int
    micro_batch_size: int
    all_gather: Callable[[Any], list[Any]]


class Algorithm(ABC):
    stage: ClassVar[str]
    sequence_keys: ClassVar[tuple[str, ...]]  # the example's token-id lists that go into a batch
    model_kind: ClassVar[Literal["causal", "reward"]] = "causal"

    def __init__(self, config: Config):
        self.config = config

    @property
    def settings(self) -> StageConfig:
        return getattr(self.config, self.stage)

    # -- driver side: records -> token examples -------------------------------------------------------
    def load(self, tokenizer: Any) -> tuple[list[Example], ExampleStats]:
        """Read and validate the stage's data, then tokenize it. Raises DataError before any training."""
        results = self.read_records()
        records = [r for result in results for r in result.records]
        examples, stats = self.build_examples(records, tokenizer)
        stats.skipped_invalid = sum(len(r.problems) for r in results)
        if not examples:
            raise DataError(
                f"{self.stage}: no training examples left out of {stats.records} records "
                f"({stats.dropped_too_long} over model.max_seq_len={self.config.model.max_seq_len} with "
                f"trainer.truncation={self.config.trainer.truncation})"
            )
        return examples, stats

    @abstractmethod
    def read_records(self) -> list[LoadResult]:
        """Validated records of every source the stage trains on."""

    @abstractmethod
    def build_examples(self, records: Sequence[Any], tokenizer: Any) -> tuple[list[Example], ExampleStats]:
        """Token examples (plain lists, cheap to ship to workers) and what tokenizing did."""

    def examples_from_round(self, items: Sequence[TrainItem]) -> tuple[list[Example], ExampleStats]:
        """Token examples from an online round's training items (already token ids), on the trainer."""
        raise ValueError(f"{self.stage} does not learn from online rounds (online.algorithm: dpo or kto)")

    # -- worker side -----------------------------------------------------------------------------------
    def prepare(self, model: torch.nn.Module, examples: list[Example], ctx: ForwardContext) -> list[Example]:
        """Anything computed once before training (e.g. reference log-probs). Default: nothing."""
        return examples

    @abstractmethod
    def collate(self, examples: Sequence[Example], pad_id: int) -> Batch:
        """Examples -> padded tensors."""

    @abstractmethod
    def loss(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The batch-mean loss and the metrics to log (scalars)."""

    def length(self, example: Example) -> int:
        """The longest sequence an example puts in a batch (what padding is measured against)."""
        return max(len(example[key]) for key in self.sequence_keys)

    def tokens(self, batch: Batch) -> int:
        """Non-padding tokens in a batch, for throughput metrics."""
        return int(batch["attention_mask"].sum())


def load_preferences(config: Config) -> list[LoadResult]:
    source = config.data.preferences
    if source is None:
        raise DataError("data.preferences is not set: reward modelling and DPO/KTO need preference pairs")
    return [load_records(source.path, "preference", source.split, config.data.on_invalid, source.max_records)]


def forward_on_shard(
    examples: list[Example],
    ctx: ForwardContext,
    compute: Callable[[list[Example]], list[dict[str, float]]],
) -> list[Example]:
    """Run `compute` over this rank's share of the examples, gather every rank's results, merge them in.

    Every rank makes the same number of calls (the last share is padded), which ZeRO-3's gathered
    forward passes require.
    """
    indices = list(range(ctx.rank, len(examples), ctx.world_size))
    calls = -(-len(examples) // (ctx.world_size * ctx.micro_batch_size))
    padded = indices + [indices[-1] if indices else 0] * (calls * ctx.micro_batch_size - len(indices))
    results: dict[int, dict[str, float]] = {}
    with torch.no_grad():
        for start in range(0, len(padded), ctx.micro_batch_size):
            chunk = padded[start : start + ctx.micro_batch_size]
            for index, values in zip(chunk, compute([examples[i] for i in chunk]), strict=True):
                results[index] = values
    merged: dict[int, dict[str, float]] = {}
    for part in ctx.all_gather(results):
        merged.update(part)
    return [example | merged[i] for i, example in enumerate(examples)]
