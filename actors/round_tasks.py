"""Ray tasks that turn a round's scored batches into training data, persist them, and grade held-out
answers, so completions never pass through the controller: it only ever sees the aggregates."""

from __future__ import annotations

from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ultramedical.config import OnlineConfig
from ultramedical.online.pairing import summarize_round, training_data
from ultramedical.online.round_data import GeneratedItem, RoundSummary, ScoredItem, TrainItem
from ultramedical.online.rounds import RoundStore


@ray.remote(num_returns=2, num_cpus=0)
def assemble_round(
    online: OnlineConfig, seed: int, *scored_batches: list[ScoredItem]
) -> tuple[RoundSummary, list[TrainItem]]:
    """(aggregates, training items): pairs for DPO, labelled completions for KTO."""
    items = [item for batch in scored_batches for item in batch]
    train = training_data(items, online, seed)
    return summarize_round(items, train), train


@ray.remote(num_cpus=0)
def persist_round(
    online_dir: str, round_index: int, train: list[TrainItem], *scored_batches: list[ScoredItem]
) -> int:
    items = [item for batch in scored_batches for item in batch]
    RoundStore(online_dir).write_round(round_index, items, train)
    return len(items)


def on_this_node() -> dict[str, Any]:
    """Scheduling options that pin a task to the controller's node (where the run directory is)."""
    node = ray.get_runtime_context().get_node_id()
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)}


@ray.remote(num_cpus=0)
def grade(*batches: list[GeneratedItem]) -> dict[str, int]:
    """Greedy answers of held-out items against their keys: counts only."""
    from ultramedical.eval.extract import extract_choice

    correct = unparsed = n = 0
    for batch in batches:
        for item in batch:
            predicted = extract_choice(item["completions"][0]["text"], item["choices"], item["prompt"])
            n += 1
            unparsed += predicted is None
            correct += predicted == item["answer"]
    return {"n": n, "correct": correct, "unparsed": unparsed}
