"""From scored completions to training data: preference pairs (DPO) or labelled completions (KTO).

Strategies (RLHFlow's): `max_min` pairs the best with the worst, `max_random` the best with a random
other, `random` two random completions ordered by reward. A pair needs a reward gap of at least
`min_margin`; an optional length penalty subtracts `length_penalty` x tokens from each reward first.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

from ultramedical.config import OnlineConfig
from ultramedical.online.round_data import (
    LabelledCompletion,
    PreferencePair,
    RoundSummary,
    ScoredItem,
    TrainItem,
)

STRATEGIES = ("max_min", "max_random", "random")


def shaped_rewards(item: ScoredItem, length_penalty: float) -> list[float]:
    return [
        r - length_penalty * len(c["token_ids"])
        for r, c in zip(item["rewards"], item["completions"], strict=True)
    ]


def choose_pair(rewards: list[float], strategy: str, rng: random.Random) -> tuple[int, int]:
    """Indices (chosen, rejected) of one prompt's completions."""
    order = sorted(range(len(rewards)), key=lambda i: (-rewards[i], i))
    best = order[0]
    if strategy == "max_min":
        return best, order[-1]
    if strategy == "max_random":
        return best, rng.choice(order[1:])
    if strategy == "random":
        a, b = rng.sample(range(len(rewards)), 2)
        return (a, b) if rewards[a] >= rewards[b] else (b, a)
    raise ValueError(f"unknown pair strategy '{strategy}' (expected one of {', '.join(STRATEGIES)})")


def make_pairs(
    items: Sequence[ScoredItem], strategy: str, min_margin: float, length_penalty: float, seed: int
) -> list[PreferencePair]:
    """One pair per prompt whose chosen and rejected differ by at least `min_margin` and in text."""
    rng = random.Random(seed)
    pairs: list[PreferencePair] = []
    for item in items:
        rewards = shaped_rewards(item, length_penalty)
        chosen, rejected = choose_pair(rewards, strategy, rng)
        margin = rewards[chosen] - rewards[rejected]
        if margin < min_margin or margin <= 0:
            continue
        if item["completions"][chosen]["token_ids"] == item["completions"][rejected]["token_ids"]:
            continue
        pairs.append(
            {
                "prompt_id": item["prompt_id"],
                "prompt": item["prompt_token_ids"],
                "chosen": item["completions"][chosen]["token_ids"],
                "rejected": item["completions"][rejected]["token_ids"],
                "chosen_reward": rewards[chosen],
                "rejected_reward": rewards[rejected],
                "margin": margin,
            }
        )
    return pairs


def kto_labels(items: Sequence[ScoredItem], length_penalty: float) -> list[LabelledCompletion]:
    """Every completion labelled desirable when its reward is above its prompt's mean."""
    labelled: list[LabelledCompletion] = []
    for item in items:
        rewards = shaped_rewards(item, length_penalty)
        mean = sum(rewards) / len(rewards)
        for reward, completion in zip(rewards, item["completions"], strict=True):
            if reward == mean:
                continue
            labelled.append(
                {
                    "prompt_id": item["prompt_id"],
                    "prompt": item["prompt_token_ids"],
                    "completion": completion["token_ids"],
                    "label": reward > mean,
                    "reward": reward,
                }
            )
    return labelled


def training_data(items: Sequence[ScoredItem], online: OnlineConfig, seed: int) -> list[TrainItem]:
    """A round's training items: labelled completions for KTO, else pairs."""
    if online.algorithm == "kto":
        return list(kto_labels(items, online.length_penalty))
    return list(make_pairs(items, online.pair_strategy, online.min_margin, online.length_penalty, seed))


def summarize_round(items: Sequence[ScoredItem], train: Sequence[TrainItem]) -> RoundSummary:
    rewards = [r for item in items for r in item["rewards"]]
    margins = [t["margin"] for t in train if "margin" in t]
    return RoundSummary(
        prompts=len(items),
        completions=len(rewards),
        reward_mean=statistics.fmean(rewards),
        reward_best=statistics.fmean(max(item["rewards"]) for item in items),
        reward_worst=statistics.fmean(min(item["rewards"]) for item in items),
        pairs=len(train),
        pair_margin=statistics.fmean(margins) if margins else 0.0,
    )
