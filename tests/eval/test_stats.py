"""Scoring: Wilson intervals against hand-computed values, voting and best-of-N tie rules."""

from __future__ import annotations

import math

import pytest

from ultramedical.eval.stats import accuracy_ci95, best_of_n, majority_vote, summarize


@pytest.mark.parametrize(
    ("correct", "n", "expected"),
    [
        # Wilson by hand, z = 1.96: center = (p + z^2/2n) / (1 + z^2/n),
        # half = z * sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n).
        (50, 100, (0.5, 0.4038, 0.5962)),
        (8, 10, (0.8, 0.4902, 0.9433)),
        (0, 10, (0.0, 0.0, 0.2775)),  # high = (z^2/n) / (1 + z^2/n) = 0.38415 / 1.38415
        (10, 10, (1.0, 0.7225, 1.0)),
        (1, 1, (1.0, 0.2065, 1.0)),
        (90, 100, (0.9, 0.8256, 0.9448)),
    ],
)
def test_wilson_interval(correct: int, n: int, expected: tuple[float, float, float]) -> None:
    assert accuracy_ci95(correct, n) == pytest.approx(expected, abs=1e-4)


def test_wilson_bounds_are_exact_at_the_ends() -> None:
    assert accuracy_ci95(0, 7)[1] == 0.0
    assert accuracy_ci95(7, 7)[2] == 1.0


@pytest.mark.parametrize(("correct", "n"), [(0, 0), (1, 0), (-1, 5), (6, 5)])
def test_wilson_rejects_impossible_counts(correct: int, n: int) -> None:
    with pytest.raises(ValueError):
        accuracy_ci95(correct, n)


ORDER = ("A", "B", "C", "D")


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (["B", "C", "B", None, None, None], "B"),  # None is ignored, not a candidate
        (["C", "B"], "B"),  # tie: B is earlier in the choices
        (["D", "D", "A", "A", "C"], "A"),
        (["C", None, "C", "A"], "C"),
        ([None, None], None),
        ([], None),
        (["E", "E", "A"], "E"),  # off-choice answers still count
        (["E", "A"], "A"),  # ...but lose ties to listed choices
    ],
)
def test_majority_vote(answers: list[str | None], expected: str | None) -> None:
    assert majority_vote(answers, ORDER) == expected


def test_majority_vote_is_independent_of_sample_order() -> None:
    assert majority_vote(["D", "B", "B", "D"], ORDER) == majority_vote(["B", "D", "D", "B"], ORDER) == "B"
    assert majority_vote(["no", "yes"], ("yes", "no", "maybe")) == "yes"


@pytest.mark.parametrize(
    ("answers", "rewards", "expected"),
    [
        (["A", "B", "C"], [0.1, 0.9, 0.5], "B"),
        (["A", "B", "C"], [0.9, 0.9, 0.1], "A"),  # tie: the earliest sample
        ([None, "B", "C"], [5.0, 0.2, 0.1], "B"),  # the unparsed best sample is skipped
        ([None, None], [1.0, 2.0], None),
        ([], [], None),
        (["A", "B"], [math.nan, -3.0], "B"),  # NaN ranks lowest
        (["A", "B"], [-1.0, -2.0], "A"),
    ],
)
def test_best_of_n(answers: list[str | None], rewards: list[float], expected: str | None) -> None:
    assert best_of_n(answers, rewards) == expected


def test_best_of_n_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 answers but 1 rewards"):
        best_of_n(["A", "B"], [1.0])


def test_summarize() -> None:
    records = [{"correct": True, "prediction": "A"}] * 50 + [{"correct": False, "prediction": "B"}] * 45
    records += [{"correct": False, "prediction": None}] * 5
    summary = summarize(iter(records))
    assert summary.keys() == {"accuracy", "n", "correct", "ci95", "unparsed"}
    assert (summary["accuracy"], summary["n"], summary["correct"], summary["unparsed"]) == (0.5, 100, 50, 5)
    assert summary["ci95"] == pytest.approx([0.4038, 0.5962], abs=1e-4)
    assert isinstance(summary["ci95"], list)


def test_summarize_rejects_bad_records() -> None:
    with pytest.raises(ValueError, match="at least one item"):
        summarize([])
    with pytest.raises(ValueError, match="record 1: 'correct' must be a bool"):
        summarize([{"correct": True, "prediction": "A"}, {"correct": 1, "prediction": "A"}])
    with pytest.raises(ValueError, match="record 0"):
        summarize([{"prediction": "A"}])
