"""evaluate_mcq's wiring of greedy, self-consistency and best-of-N, with plain functions standing in for the
engine and the reward model (its `generate` and `score` parameters)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ultramedical.data.prompts import PUBMEDQA_LABELS, format_mcq_prompt
from ultramedical.eval.benchmarks import BenchmarkItem
from ultramedical.eval.mcq import evaluate_mcq
from ultramedical.eval.stats import accuracy_ci95
from ultramedical.generation.engine import Sampling

OPTIONS = {"A": "Insulin", "B": "Metformin", "C": "Glipizide", "D": "Acarbose"}


def mcq(item_id: str, answer: str, subject: str | None = None) -> BenchmarkItem:
    prompt = format_mcq_prompt(f"Question {item_id}: which drug?", OPTIONS)
    return BenchmarkItem(item_id, "medqa", prompt, tuple(OPTIONS), answer, subject)


ITEMS = [
    mcq("q1", "B", "step1"),
    mcq("q2", "A"),
    mcq("q3", "D"),
    mcq("q4", "C"),
    BenchmarkItem("p5", "pubmedqa", "Context... Question: does it work?", PUBMEDQA_LABELS, "no"),
]
# Every item's samples, and what each should come to (worked out by hand):
COMPLETIONS = {
    # greedy: the first sample, B (right); sc: B twice against C once (right); bon: C, rewarded highest
    "q1": ["The answer is B.", "Answer: C", "Metformin is first-line."],
    # greedy: C (wrong); sc: a C-A tie goes to A, the earlier choice (right); bon: the unparsed
    # sample is rewarded highest but skipped, then A (right)
    "q2": ["Answer: C", "The answer is A.", "I do not know."],
    # nothing parses: None everywhere, wrong and counted as unparsed
    "q3": ["I do not know.", "Hard to say.", "Could be many things."],
    # greedy: A (wrong); sc: A twice (wrong); bon: C (right)
    "q4": ["Answer: A", "The answer is C.", "Insulin"],
    # greedy: yes (wrong); sc: no twice (right); bon: yes, rewarded highest (wrong)
    "p5": ["Answer: yes", "The answer is no.", "no"],
}
REWARDS = {
    "q1": [0.1, 0.9, 0.2],
    "q2": [0.2, 0.3, 5.0],
    "q3": [1.0, 2.0, 3.0],
    "q4": [0.1, 0.7, 0.7],
    "p5": [0.8, -0.5, 0.4],
}
EXPECTED = {  # mode -> predictions per item
    "greedy": {"q1": "B", "q2": "C", "q3": None, "q4": "A", "p5": "yes"},
    "sc": {"q1": "B", "q2": "A", "q3": None, "q4": "A", "p5": "no"},
    "bon": {"q1": "C", "q2": "A", "q3": None, "q4": "C", "p5": "yes"},
}


class FakeEngine:
    """Returns the canned samples (the first one only at temperature 0) and remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], Sampling]] = []

    def generate(self, items: Sequence[BenchmarkItem], sampling: Sampling) -> list[list[str]]:
        self.calls.append(([item.id for item in items], sampling))
        return [COMPLETIONS[item.id][: sampling.n] for item in items]


def score(items: Sequence[BenchmarkItem], completions: list[list[str]]) -> list[list[float]]:
    assert [len(texts) for texts in completions] == [len(COMPLETIONS[item.id]) for item in items]
    assert all(texts == COMPLETIONS[item.id] for item, texts in zip(items, completions, strict=True))
    return [REWARDS[item.id] for item in items]


SAMPLED = Sampling(n=3, temperature=0.7, top_p=0.9, max_tokens=32, seed=1)


@pytest.mark.parametrize("mode", ["greedy", "sc", "bon"])
def test_predictions_records_and_summary(mode: str) -> None:
    engine = FakeEngine()
    sampling = None if mode == "greedy" else SAMPLED
    records, summary = evaluate_mcq(ITEMS, engine.generate, mode, sampling, score)

    assert len(engine.calls) == 1 and engine.calls[0][0] == [item.id for item in ITEMS]
    if mode == "greedy":  # the default sampling for greedy decoding
        assert engine.calls[0][1] == Sampling(n=1, temperature=0.0, max_tokens=256)
    else:
        assert engine.calls[0][1] == SAMPLED

    expected = EXPECTED[mode]
    assert [r["id"] for r in records] == list(expected)
    assert {r["id"]: r["prediction"] for r in records} == expected
    answers = {item.id: item.answer for item in ITEMS}
    assert {r["id"]: r["correct"] for r in records} == {k: v == answers[k] for k, v in expected.items()}
    for record, item in zip(records, ITEMS, strict=True):
        assert (record["benchmark"], record["subject"], record["answer"]) == (
            item.benchmark,
            item.subject,
            item.answer,
        )
        texts = COMPLETIONS[item.id][: 1 if mode == "greedy" else 3]
        assert record["completions"] == texts
        assert len(record["extracted"]) == len(texts)
        assert ("rewards" in record) == (mode == "bon")
        if mode == "bon":
            assert record["rewards"] == REWARDS[item.id]
    assert records[2]["extracted"] == [None] * len(records[2]["extracted"])  # q3: nothing parsed

    correct = sum(v == answers[k] for k, v in expected.items())
    unparsed = sum(v is None for v in expected.values())
    accuracy, low, high = accuracy_ci95(correct, len(ITEMS))
    assert summary == {
        "accuracy": accuracy,
        "n": len(ITEMS),
        "correct": correct,
        "ci95": [low, high],
        "unparsed": unparsed,
    }


def test_hand_counted_accuracies() -> None:
    """The counts behind EXPECTED, written out: greedy 1 of 5 (q1), sc 3 (q1, q2, p5), bon 2 (q2, q4)."""
    accuracies = {}
    for mode in ("greedy", "sc", "bon"):
        _, summary = evaluate_mcq(
            ITEMS, FakeEngine().generate, mode, None if mode == "greedy" else SAMPLED, score
        )
        accuracies[mode] = (summary["correct"], summary["unparsed"])
    assert accuracies == {"greedy": (1, 1), "sc": (3, 1), "bon": (2, 1)}


def test_greedy_reads_only_the_first_completion() -> None:
    """Even a generate that returns several texts at temperature 0 is read at its first."""

    def generate(items, sampling):
        return [["I do not know.", "The answer is B."] for _ in items]

    records, summary = evaluate_mcq([mcq("q1", "B")], generate, "greedy")
    assert records[0]["prediction"] is None and records[0]["correct"] is False
    assert summary["unparsed"] == 1 and summary["accuracy"] == 0.0


def test_sc_and_greedy_never_call_the_scorer() -> None:
    def refuse(items, completions):
        raise AssertionError("the reward model is for best-of-N only")

    for mode in ("greedy", "sc"):
        evaluate_mcq(ITEMS, FakeEngine().generate, mode, SAMPLED, refuse)


def test_bon_needs_a_scorer_before_generating() -> None:
    engine = FakeEngine()
    with pytest.raises(ValueError, match="best-of-N needs a reward model"):
        evaluate_mcq(ITEMS, engine.generate, "bon", SAMPLED)
    assert engine.calls == []


def test_a_reward_per_sample_is_required() -> None:
    def short(items, completions):
        return [[1.0] for _ in items]

    with pytest.raises(ValueError, match="3 answers but 1 rewards"):
        evaluate_mcq(ITEMS, FakeEngine().generate, "bon", SAMPLED, short)


def test_unknown_mode() -> None:
    with pytest.raises(ValueError, match="unknown mode 'beam'"):
        evaluate_mcq(ITEMS, FakeEngine().generate, "beam")
