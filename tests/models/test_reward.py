"""RewardModel's batching: forwards grouped by length within a padding budget, responses packed by prompt;
scores unchanged by either."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ultramedical.models.reward import RewardModel, length_chunks
from ultramedical.online.rewards import answer_rule


@pytest.mark.parametrize("max_padding", [None, 0.0, 0.25, 1.0])
def test_length_chunks_cover_every_item_once_within_the_budget(max_padding: float | None) -> None:
    rng = random.Random(0)
    lengths = [rng.choice((5, 20, 60, 200)) + rng.randrange(10) for _ in range(300)]
    chunks = length_chunks(lengths, batch_size=16, max_padding=max_padding)
    assert sorted(i for chunk in chunks for i in chunk) == list(range(len(lengths)))
    assert all(1 <= len(chunk) <= 16 for chunk in chunks)
    for chunk in chunks:
        real = sum(lengths[i] for i in chunk)
        padded = len(chunk) * max(lengths[i] for i in chunk)
        if max_padding is not None and len(chunk) > 1:
            assert padded <= (1 + max_padding) * real
    if max_padding is None:  # no budget: full batches of the length order
        assert [len(c) for c in chunks] == [16] * 18 + [12]
    else:  # the budget splits the mixed lengths into more, shorter forwards
        assert len(chunks) > 19


def test_length_chunks_of_equal_lengths_fill_batches() -> None:
    assert [len(c) for c in length_chunks([7] * 10, batch_size=4, max_padding=0.0)] == [4, 4, 2]
    assert length_chunks([], batch_size=4, max_padding=0.25) == []


def test_scores_do_not_depend_on_how_items_are_batched(artifacts: Path) -> None:
    rng = random.Random(1)
    words = "the patient presents with fever and a rash after a new drug so the answer is B".split()
    conversations = [
        [
            {"role": "user", "content": " ".join(rng.choices(words, k=rng.randrange(3, 60)))},
            {"role": "assistant", "content": " ".join(rng.choices(words, k=rng.randrange(1, 40)))},
        ]
        for _ in range(24)
    ]
    path = artifacts / "tiny" / "reward"
    one_batch = RewardModel(path, batch_size=32, max_padding=None).score(conversations)
    budgeted = RewardModel(path, batch_size=32, max_padding=0.1).score(conversations)
    singly = [RewardModel(path, batch_size=1).score([c])[0] for c in conversations[:4]]
    assert budgeted == pytest.approx(one_batch, abs=1e-4)
    assert singly == pytest.approx(one_batch[:4], abs=1e-4)
    assert len(set(one_batch)) > 1  # the items score differently: the comparison means something


def _responses_to_shared_prompts() -> list[list[dict[str, str]]]:
    rng = random.Random(2)
    words = "the patient presents with fever and a rash after a new drug so the answer is B".split()
    prompts = [" ".join(rng.choices(words, k=rng.randrange(3, 60))) for _ in range(5)]
    responses = [" ".join(rng.choices(words, k=rng.randrange(1, 40))) for _ in range(12)]
    responses += [responses[0], responses[1] + " and more"]  # a repeat; one response extends another
    rng.shuffle(responses)
    return [
        [{"role": "user", "content": prompts[i % 5]}, {"role": "assistant", "content": r}]
        for i, r in enumerate(responses)
    ] + [[{"role": "user", "content": "alone"}, {"role": "assistant", "content": "one response"}]]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_responses_packed_by_prompt_score_as_on_their_own(artifacts: Path, attention: str) -> None:
    conversations = _responses_to_shared_prompts()
    path = artifacts / "tiny" / "reward"
    separate = RewardModel(path, batch_size=8, share_prompts=False)
    assert not separate.shares_prompts
    packed = RewardModel(path, batch_size=8)
    packed.model.config._attn_implementation = attention
    assert packed.shares_prompts
    expected = separate.score(conversations)
    assert packed.score(conversations) == pytest.approx(expected, abs=1e-4)
    assert len(set(expected)) > 5


def test_answer_rule_reads_letters_and_option_texts() -> None:
    prompt = "Drug used to treat iron toxicity:\n\nA. pyridoxine\nB. deferoxamine\nC. glucagon"
    rule = dict(answer="B", choices="ABC", bonus=1.0, penalty=0.5)
    assert answer_rule("So, the answer is B.", **rule) == 1.0
    assert answer_rule("So, the answer is C.", **rule) == -0.5
    assert answer_rule("So, the answer is deferoxamine.", **rule, prompt=prompt) == 1.0
    assert answer_rule("So, the answer is glucagon.", **rule, prompt=prompt) == -0.5
    assert answer_rule("So, the answer is deferoxamine.", **rule) == -0.5  # no prompt: no option texts
    assert answer_rule("So, the answer is B.", "", "", 1.0, 0.5) == 0.0  # open question: no rule
