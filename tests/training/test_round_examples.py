"""An online round's training items become examples through the algorithm's own hook, under the same
truncation policy as offline data; algorithms that do not learn online say so."""

from __future__ import annotations

import pytest

from ultramedical.config import load_config
from ultramedical.online.pairing import summarize_round, training_data
from ultramedical.training import ALGORITHMS


def config(**overrides: object):
    flat = [part for key, value in overrides.items() for part in (f"--{key}", str(value))]
    return load_config("configs/tiny-cpu.yaml", flat)


def scored(prompt_id: str, rewards: list[float], lengths: list[int]) -> dict:
    completions = [
        {"token_ids": [100 + i] * n, "text": f"c{i}", "finish_reason": "stop"} for i, n in enumerate(lengths)
    ]
    return {
        "prompt_id": prompt_id,
        "prompt": "q",
        "messages": [{"role": "user", "content": "q"}],
        "answer": "",
        "choices": "",
        "prompt_token_ids": [1, 2, 3],
        "completions": completions,
        "rewards": rewards,
    }


ITEMS = [scored("short", [1.0, 0.0], [4, 5]), scored("long", [0.5, -0.5], [40, 6])]


def test_dpo_round_pairs_are_truncated_or_dropped_by_policy():
    drop = config(**{"model.max_seq_len": 16, "trainer.truncation": "drop"})
    pairs = training_data(ITEMS, drop.online, seed=0)
    assert [p["prompt_id"] for p in pairs] == ["short", "long"]
    examples, stats = ALGORITHMS["dpo"](drop).examples_from_round(pairs)
    assert len(examples) == 1 and stats.dropped_too_long == 1 and stats.examples == 1
    assert examples[0]["chosen_ids"] == [1, 2, 3, 100, 100, 100, 100]

    right = config(**{"model.max_seq_len": 16, "trainer.truncation": "right"})
    examples, stats = ALGORITHMS["dpo"](right).examples_from_round(pairs)
    assert len(examples) == 2 and stats.truncated == 1 and len(examples[1]["chosen_ids"]) == 16


def test_kto_round_labels_each_completion_against_its_prompt_mean():
    kto = config(**{"online.algorithm": "kto", "model.max_seq_len": 64})
    labelled = training_data(ITEMS, kto.online, seed=0)
    assert [(x["prompt_id"], x["label"]) for x in labelled] == [
        ("short", True), ("short", False), ("long", True), ("long", False)
    ]  # fmt: skip
    examples, stats = ALGORITHMS["kto"](kto).examples_from_round(labelled)
    assert len(examples) == 4 and stats.notes["desirable"] == 2
    assert all(e["kl_ids"] != e["ids"] for e in examples)  # a partner's completion, not its own


def test_round_summary_adds_up_the_rewards_and_margins():
    pairs = training_data(ITEMS, config().online, seed=0)
    summary = summarize_round(ITEMS, pairs)
    assert (summary.prompts, summary.completions, summary.pairs) == (2, 4, 2)
    assert summary.reward_mean == pytest.approx(0.25)
    assert summary.reward_best == pytest.approx(0.75) and summary.reward_worst == pytest.approx(-0.25)
    assert summary.pair_margin == pytest.approx(1.0)


@pytest.mark.parametrize("stage", ["sft", "rm"])
def test_offline_only_algorithms_refuse_round_data(stage):
    with pytest.raises(ValueError, match="online rounds"):
        ALGORITHMS[stage](config()).examples_from_round([])
