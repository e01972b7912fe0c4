"""Pairing strategies, KTO labels and the prompts each round draws (pure functions)."""

from __future__ import annotations

import random

import pytest

from ultramedical.online.pairing import choose_pair, kto_labels, make_pairs
from ultramedical.online.rounds import round_prompts


def item(prompt_id, rewards, lengths=None):
    lengths = lengths or [3] * len(rewards)
    completions = [
        {"token_ids": list(range(i * 10, i * 10 + n)), "text": f"c{i}"} for i, n in enumerate(lengths)
    ]
    return {
        "prompt_id": prompt_id,
        "prompt_token_ids": [1, 2],
        "completions": completions,
        "rewards": rewards,
    }


def test_max_min_pairs_best_with_worst():
    pairs = make_pairs([item("p", [0.2, 0.9, -0.5, 0.1])], "max_min", 0.0, 0.0, seed=0)
    assert len(pairs) == 1
    assert pairs[0]["chosen"] == [10, 11, 12] and pairs[0]["rejected"] == [20, 21, 22]
    assert pairs[0]["margin"] == pytest.approx(1.4)


def test_max_random_and_random_order_by_reward():
    rng = random.Random(0)
    for _ in range(50):
        chosen, rejected = choose_pair([0.3, 0.1, 0.7, 0.5], "max_random", rng)
        assert chosen == 2 and rejected != 2
        chosen, rejected = choose_pair([0.3, 0.1, 0.7, 0.5], "random", rng)
        assert [0.3, 0.1, 0.7, 0.5][chosen] > [0.3, 0.1, 0.7, 0.5][rejected]
    with pytest.raises(ValueError, match="max_min"):
        choose_pair([0.1, 0.2], "best", rng)


def test_min_margin_and_ties_drop_the_prompt():
    items = [item("close", [0.50, 0.45]), item("tied", [0.3, 0.3]), item("far", [1.0, 0.0])]
    assert [p["prompt_id"] for p in make_pairs(items, "max_min", 0.1, 0.0, seed=0)] == ["far"]


def test_length_penalty_can_flip_the_choice():
    long_good = item("p", [1.0, 0.9], lengths=[50, 5])
    assert make_pairs([long_good], "max_min", 0.0, 0.0, seed=0)[0]["chosen"] == list(range(0, 50))
    flipped = make_pairs([long_good], "max_min", 0.0, 0.01, seed=0)[0]
    assert flipped["chosen"] == list(range(10, 15))


def test_kto_labels_split_around_the_prompt_mean():
    labels = kto_labels([item("p", [0.9, 0.1, 0.5])], 0.0)
    assert [(row["label"], row["reward"]) for row in labels] == [(True, 0.9), (False, 0.1)]


def test_round_prompts_are_distinct_until_the_pool_is_used_and_repeatable():
    first, second = round_prompts(10, 1, 4, seed=3), round_prompts(10, 2, 4, seed=3)
    assert len(set(first + second)) == 8
    assert round_prompts(10, 2, 4, seed=3) == second
    assert round_prompts(10, 2, 4, seed=4) != second
    assert len(round_prompts(10, 3, 4, seed=3)) == 4  # wraps into the next pass over the pool
