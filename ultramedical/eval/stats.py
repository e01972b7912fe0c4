"""Scoring helpers: accuracy with a confidence interval, self-consistency voting and best-of-N choice."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

# Two-sided 95% normal quantile.
Z95 = 1.959963984540054


def accuracy_ci95(correct: int, n: int) -> tuple[float, float, float]:
    """(accuracy, low, high) with the Wilson score 95% interval.

    Wilson rather than the normal approximation because it stays inside [0, 1] and is honest at
    0% or 100% on small benchmarks. n == 0 raises ValueError: an accuracy over no items is
    undefined, and a 0.0 would read as a real (terrible) result.
    """
    if n <= 0:
        raise ValueError(f"accuracy needs at least one item, got n={n}")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be between 0 and n={n}, got {correct}")
    p = correct / n
    z2 = Z95 * Z95
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # At 0/n and n/n the bound is exactly 0 or 1; float noise would give -1e-17 or 0.9999999999999999.
    low = 0.0 if correct == 0 else max(0.0, center - half)
    high = 1.0 if correct == n else min(1.0, center + half)
    return p, low, high


def majority_vote(answers: Sequence[str | None], order: Sequence[str]) -> str | None:
    """The most frequent non-None answer; ties go to the answer earliest in `order` (the choices).

    Answers not in `order` still count, but lose ties to those in it (then first seen wins), so the
    result never depends on dict or sampling order. All None (or no answers) -> None.
    """
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None
    rank = {choice: i for i, choice in enumerate(order)}
    first_seen = {a: i for i, a in reversed(list(enumerate(answers))) if a is not None}
    return min(counts, key=lambda a: (-counts[a], rank.get(a, len(rank)), first_seen[a]))


def best_of_n(answers: Sequence[str | None], rewards: Sequence[float]) -> str | None:
    """The answer of the highest-reward sample whose answer parsed; ties go to the earliest sample.

    An unparsed sample is skipped whenever a parsed one exists, since choosing it would score the
    item wrong regardless of its reward. NaN rewards rank lowest. All None -> None.
    """
    if len(answers) != len(rewards):
        raise ValueError(f"{len(answers)} answers but {len(rewards)} rewards")
    best: tuple[float, str] | None = None
    for answer, reward in zip(answers, rewards, strict=True):
        if answer is None:
            continue
        score = -math.inf if math.isnan(reward) else float(reward)
        if best is None or score > best[0]:  # strict: the earlier sample keeps a tie
            best = (score, answer)
    return best[1] if best else None


def summarize(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """{"accuracy", "n", "correct", "ci95": [low, high], "unparsed"} over per-item records.

    Each record needs `correct` (bool) and `prediction` (str or None; None counts as unparsed).
    No records raises ValueError, as accuracy_ci95 does.
    """
    n = correct = unparsed = 0
    for index, record in enumerate(records):
        if "correct" not in record or not isinstance(record["correct"], bool):
            raise ValueError(f"record {index}: 'correct' must be a bool, got {record.get('correct')!r}")
        n += 1
        correct += record["correct"]
        unparsed += record.get("prediction") is None
    accuracy, low, high = accuracy_ci95(correct, n)
    return {"accuracy": accuracy, "n": n, "correct": correct, "ci95": [low, high], "unparsed": unparsed}
