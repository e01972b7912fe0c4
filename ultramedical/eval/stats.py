"""Scoring helpers: accuracy with a confidence interval, self-consistency voting, best-of-N choice, and
the exact McNemar test that compares two models on the same items."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
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


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts: `b` items only the first model got
    right, `c` only the second. Under no difference each discordant item is a fair coin, so the
    p-value is twice the binomial(b + c, 1/2) tail at min(b, c), capped at 1; b = c = 0 gives 1.0.

    Computed in integers (math.comb), so it is exact to the last float bit at any n.
    """
    for name, value in (("b", b), ("c", c)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, (2 * tail) / (2**n))


class UnpairedItems(ValueError):
    """Two sets of records that do not cover the same items, so no paired test applies."""

    def __init__(self, only_a: list[str], only_b: list[str]):
        self.only_a, self.only_b = only_a, only_b
        shown = ", ".join([*only_a[:3], *only_b[:3]])
        super().__init__(
            f"the records are not of the same items: {len(only_a)} id(s) only in the first, "
            f"{len(only_b)} only in the second (e.g. {shown})"
        )


def _by_id(records: Iterable[Mapping[str, Any]], side: str) -> dict[str, bool]:
    out: dict[str, bool] = {}
    for index, record in enumerate(records):
        if "id" not in record or record["id"] is None:
            raise ValueError(f"{side} record {index}: no 'id'")
        if not isinstance(record.get("correct"), bool):
            raise ValueError(
                f"{side} record {index}: 'correct' must be a bool, got {record.get('correct')!r}"
            )
        key = str(record["id"])
        if key in out:
            raise ValueError(f"{side} record {index}: duplicate id '{key}'")
        out[key] = record["correct"]
    return out


def paired_comparison(
    records_a: Iterable[Mapping[str, Any]], records_b: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """Model A against model B on the same items, matched by `id` (any order):
    {"n", "a_correct", "b_correct", "b", "c", "p_value"}, where `b` counts items only A got right, `c`
    items only B got right, and `p_value` is the exact McNemar test on them.

    Raises UnpairedItems when an id is in only one side (a paired test needs the same items),
    ValueError on a record without an id, with a non-bool `correct`, or a duplicate id, or on no items.
    """
    a, b = _by_id(records_a, "first"), _by_id(records_b, "second")
    if a.keys() != b.keys():
        raise UnpairedItems(sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys()))
    if not a:
        raise ValueError("no items to compare")
    only_a = sum(a[k] and not b[k] for k in a)
    only_b = sum(b[k] and not a[k] for k in a)
    return {
        "n": len(a),
        "a_correct": sum(a.values()),
        "b_correct": sum(b.values()),
        "b": only_a,
        "c": only_b,
        "p_value": mcnemar_exact(only_a, only_b),
    }
