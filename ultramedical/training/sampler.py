"""Which examples each rank trains on, in which order: the data side of the training loop.

Data order is a seeded permutation per epoch, sharded by rank and cut to whole optimiser steps, so a
resumed run sees exactly the batches the interrupted one would have. Benchmarks count the work of a run
with these same functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ultramedical.config import Config, TrainerConfig
from ultramedical.training.algorithm import Algorithm, Example
from ultramedical.training.tokenized import TokenizedExamples


def micro_batches_per_epoch(n_examples: int, world: int, micro_batch_size: int, accum: int) -> int:
    """Micro-batches each rank runs per epoch, a whole number of optimiser steps (the tail is dropped)."""
    per_rank = math.ceil((n_examples // world) / micro_batch_size)
    return (per_rank // accum) * accum


LENGTH_GROUP_STEPS = 32  # steps whose examples are sorted by length together (HF's "megabatch")


def grouping_lengths(config: Config, algorithm: Algorithm, examples: Sequence[Example]) -> list[int] | None:
    """What `epoch_order` groups steps by: each example's length under trainer.group_by_length, else None.

    Tokenized data on disk keeps the lengths in a column: reading them must not read every row."""
    if not config.trainer.group_by_length:
        return None
    if isinstance(examples, TokenizedExamples):
        return examples.lengths
    return [algorithm.length(e) for e in examples]


def epoch_order(
    n_examples: int,
    epoch: int,
    seed: int,
    rank: int,
    world: int,
    micro_batch_size: int,
    lengths: Sequence[int] | None = None,
) -> list[list[int]]:
    """This rank's micro-batches (example indices) for an epoch: the same on every run with the same seed.

    With `lengths` (trainer.group_by_length), examples of similar length share a step: each window of
    LENGTH_GROUP_STEPS steps' examples is sorted by length and cut into steps, the steps are shuffled, and
    each step's examples are dealt to the ranks back and forth (`_snake`). Less padding, and ranks wait
    less for each other.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(n_examples, generator=generator)[: (n_examples // world) * world].tolist()
    if lengths is not None:
        step = world * micro_batch_size
        window = step * LENGTH_GROUP_STEPS
        steps = []
        for start in range(0, len(order), window):
            ranked = sorted(order[start : start + window], key=lambda i: lengths[i])
            steps += [_snake(ranked[i : i + step], world) for i in range(0, len(ranked), step)]
        shuffled = torch.randperm(len(steps), generator=generator).tolist()
        order = [i for s in shuffled for i in steps[s]]
    mine = order[rank::world]
    return [mine[i : i + micro_batch_size] for i in range(0, len(mine), micro_batch_size)]


def _snake(ranked: list[int], world: int) -> list[int]:
    """Reverse every other round of `world` examples, so that dealing in turn (rank::world) hands out the
    sorted examples 0,1,1,0,0,1,...: every rank gets about the same number of tokens, where plain turns
    always gave the last rank the longer example of each round and so made the others wait for it."""
    rounds = [ranked[i : i + world] for i in range(0, len(ranked), world)]
    return [i for n, r in enumerate(rounds) for i in (r[::-1] if n % 2 else r)]


def rank_batches(
    n_examples: int,
    epoch: int,
    trainer: TrainerConfig,
    rank: int,
    world: int,
    lengths: Sequence[int] | None = None,
) -> list[list[int]]:
    """The micro-batches this rank runs in an epoch: `epoch_order` cut to whole optimiser steps."""
    per_epoch = micro_batches_per_epoch(n_examples, world, trainer.micro_batch_size, trainer.grad_accum_steps)
    order = epoch_order(n_examples, epoch, trainer.seed, rank, world, trainer.micro_batch_size, lengths)
    return order[:per_epoch]


def examples_per_epoch(n_examples: int, trainer: TrainerConfig, world: int) -> int:
    """Examples an epoch actually trains on, over all ranks (the tail that fills no step is dropped)."""
    return sum(
        len(batch) for rank in range(world) for batch in rank_batches(n_examples, 0, trainer, rank, world)
    )


def planned_steps(
    n_examples: int, epochs: float, world: int, trainer: TrainerConfig, max_steps: int | None
) -> int:
    per_epoch = micro_batches_per_epoch(n_examples, world, trainer.micro_batch_size, trainer.grad_accum_steps)
    total = math.ceil(epochs * per_epoch / trainer.grad_accum_steps)
    return min(total, max_steps) if max_steps else total
