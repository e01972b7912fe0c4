"""Ray tasks that turn a round's scored batches into training data, persist them, and grade held-out
answers, so completions never pass through the controller: it only ever sees the aggregates."""

from __future__ import annotations

import statistics
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ultramedical.online.pairing import kto_labels, make_pairs
from ultramedical.online.rounds import RoundStore


@ray.remote(num_returns=2, num_cpus=0)
def assemble_round(
    online: dict[str, Any], seed: int, *scored_batches: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(aggregates, training items): pairs for DPO, labelled completions for KTO."""
    items = [item for batch in scored_batches for item in batch]
    if online["algorithm"] == "kto":
        train = kto_labels(items, online["length_penalty"])
    else:
        train = make_pairs(
            items, online["pair_strategy"], online["min_margin"], online["length_penalty"], seed
        )
    rewards = [r for item in items for r in item["rewards"]]
    summary = {
        "prompts": len(items),
        "completions": len(rewards),
        "reward_mean": statistics.fmean(rewards),
        "reward_best": statistics.fmean(max(item["rewards"]) for item in items),
        "reward_worst": statistics.fmean(min(item["rewards"]) for item in items),
        "pairs": len(train),
        "pair_margin": statistics.fmean(p["margin"] for p in train)
        if train and "margin" in train[0]
        else 0.0,
    }
    return summary, train


@ray.remote(num_cpus=0)
def persist_round(
    online_dir: str, round_index: int, train: list[dict[str, Any]], *scored_batches: list[dict[str, Any]]
) -> int:
    items = [item for batch in scored_batches for item in batch]
    RoundStore(online_dir).write_round(round_index, items, train)
    return len(items)


def on_this_node() -> dict[str, Any]:
    """Scheduling options that pin a task to the controller's node (where the run directory is)."""
    node = ray.get_runtime_context().get_node_id()
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)}


@ray.remote(num_cpus=0)
def grade(*batches: list[dict[str, Any]]) -> dict[str, int]:
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
