"""Reward-model accuracy per subset from a small pairwise file, with a scorer whose rewards the test sets."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ultramedical.data.loading import DataError
from ultramedical.eval.reward_bench import RewardPair, load_reward_pairs, reward_accuracy


def conversation(question: str, answer: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def medical_pair(index: int, subset: str | None) -> dict:
    """UltraMedical-Preference (Medical RewardBench): whole conversations, the subset in `label_type`."""
    question = f"Question {index}?"
    row = {
        "prompt_id": f"p{index}",
        "prompt": question,
        "chosen": conversation(question, f"good {index}"),
        "rejected": conversation(question, f"bad {index}"),
    }
    return row | ({"label_type": subset} if subset else {})


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# pair index -> (chosen reward, rejected reward); right only when chosen > rejected
REWARDS = {
    0: (1.0, 0.0),  # easy: right
    1: (2.0, 1.5),  # easy: right
    2: (0.3, 0.9),  # easy: wrong
    3: (0.5, 0.5),  # hard: a tie, which counts as wrong
    4: (-1.0, -2.0),  # hard: right
    5: (0.0, 3.0),  # length: wrong
    6: (math.nan, 0.0),  # length: NaN is never higher, so wrong
    7: (4.0, 1.0),  # no label_type: subset "all", right
}
SUBSETS = {0: "easy", 1: "easy", 2: "easy", 3: "hard", 4: "hard", 5: "length", 6: "length", 7: None}


class Scorer:
    """Rewards from REWARDS by the response text ("good 3" -> the chosen reward of pair 3)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list, list[str]]] = []

    def __call__(self, prompts: list, responses: list[str]) -> list[float]:
        self.calls.append((prompts, responses))
        out = []
        for text in responses:
            kind, index = text.split()
            out.append(REWARDS[int(index)][0 if kind == "good" else 1])
        return out


def test_per_subset_accuracy_and_n(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "pairs.jsonl", [medical_pair(i, SUBSETS[i]) for i in range(8)])
    pairs = load_reward_pairs(str(source))
    assert [p.subset for p in pairs] == ["easy"] * 3 + ["hard"] * 2 + ["length"] * 2 + ["all"]
    assert pairs[0] == RewardPair("easy", ({"role": "user", "content": "Question 0?"},), "good 0", "bad 0")

    scorer = Scorer()
    result = reward_accuracy(pairs, scorer)
    assert result == {
        "all": {"accuracy": 1.0, "n": 1},
        "easy": {"accuracy": 2 / 3, "n": 3},
        "hard": {"accuracy": 0.5, "n": 2},
        "length": {"accuracy": 0.0, "n": 2},
        "overall": {"accuracy": 4 / 8, "n": 8},
    }
    # chosen responses scored in one call, rejected ones in another, each with the pair's prompt turns
    assert [responses for _, responses in scorer.calls] == [
        [f"good {i}" for i in range(8)],
        [f"bad {i}" for i in range(8)],
    ]
    assert scorer.calls[0][0] == scorer.calls[1][0] == [p.prompt for p in pairs]


def test_a_tie_counts_as_wrong() -> None:
    pair = RewardPair("hard", ({"role": "user", "content": "Q?"},), "good 3", "bad 3")
    assert reward_accuracy([pair], Scorer()) == {
        "hard": {"accuracy": 0.0, "n": 1},
        "overall": {"accuracy": 0.0, "n": 1},
    }


def test_rewardbench_schema_and_multi_turn_prompts(tmp_path: Path) -> None:
    turns = [
        {"role": "user", "content": "First question?"},
        {"role": "assistant", "content": "First answer."},
        {"role": "user", "content": "Question 1?"},
    ]
    rows = [
        {"prompt": "Question 0?", "chosen": "good 0", "rejected": "bad 0", "subset": "safety"},
        {"prompt": "Question 2?", "chosen": "good 2", "rejected": "bad 2"},  # no subset: "all"
        {
            "prompt": "Question 1?",
            "chosen": [*turns, {"role": "assistant", "content": "good 1"}],
            "rejected": [*turns, {"role": "assistant", "content": "bad 1"}],
            "label_type": "easy",
        },
    ]
    pairs = load_reward_pairs(str(write_jsonl(tmp_path / "mixed.jsonl", rows)))
    assert [(p.subset, p.chosen, p.rejected) for p in pairs] == [
        ("safety", "good 0", "bad 0"),
        ("all", "good 2", "bad 2"),
        ("easy", "good 1", "bad 1"),
    ]
    assert pairs[0].prompt == ({"role": "user", "content": "Question 0?"},)
    assert list(pairs[2].prompt) == turns  # every turn before the compared answers
    assert reward_accuracy(pairs, Scorer()) == {
        "all": {"accuracy": 0.0, "n": 1},
        "easy": {"accuracy": 1.0, "n": 1},
        "overall": {"accuracy": 2 / 3, "n": 3},
        "safety": {"accuracy": 1.0, "n": 1},
    }


def test_invalid_rows_are_named(tmp_path: Path) -> None:
    rows = [
        medical_pair(0, "easy"),
        "not json",
        {"prompt": "Q?", "chosen": "", "rejected": "bad"},
        medical_pair(3, "hard") | {"rejected": medical_pair(3, "hard")["chosen"]},
    ]
    with pytest.raises(DataError, match="3 invalid pair") as info:
        load_reward_pairs(str(write_jsonl(tmp_path / "bad.jsonl", rows)))
    message = str(info.value)
    assert "line 2" in message and "line 3: field 'chosen'" in message and "line 4" in message
    assert "line 1" not in message


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no reward pairs"):
        load_reward_pairs(str(write_jsonl(tmp_path / "empty.jsonl", [])))
