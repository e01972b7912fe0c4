"""Reward-model accuracy per subset on pairwise data: the UltraMedical-Preference schema (Medical
RewardBench; subset from `label_type`) or the RewardBench schema (`prompt`, `chosen`, `rejected` as
strings, `subset`). A pair counts as right when the chosen response gets the higher reward."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ultramedical.data.loading import DataError
from ultramedical.data.schemas import Message, RecordError, parse_preference
from ultramedical.data.sources import BadRow, read_rows


@dataclass(frozen=True)
class RewardPair:
    subset: str
    prompt: tuple[Message, ...]
    chosen: str
    rejected: str


def _from_row(row: dict[str, Any]) -> RewardPair:
    if isinstance(row.get("chosen"), str):  # RewardBench
        for key in ("prompt", "chosen", "rejected"):
            if not isinstance(row.get(key), str) or not row[key].strip():
                raise RecordError(f"field '{key}' must be a non-empty string")
        subset = row.get("subset") or "all"
        return RewardPair(
            str(subset), ({"role": "user", "content": row["prompt"]},), row["chosen"], row["rejected"]
        )
    record = parse_preference(row)
    return RewardPair(
        record.label_type or "all",
        record.chosen[:-1],
        record.chosen[-1]["content"],
        record.rejected[-1]["content"],
    )


def load_reward_pairs(source: str, split: str = "test") -> list[RewardPair]:
    pairs, problems = [], []
    for line, row in read_rows(source, split):
        try:
            if isinstance(row, BadRow):
                raise RecordError(row.reason)
            pairs.append(_from_row(row))
        except RecordError as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        raise DataError(f"{source}: {len(problems)} invalid pair(s): {'; '.join(problems[:10])}")
    if not pairs:
        raise DataError(f"{source}: no reward pairs")
    return pairs


def reward_accuracy(
    pairs: Sequence[RewardPair], score: Callable[[list[tuple[Message, ...]], list[str]], list[float]]
) -> dict[str, dict[str, float]]:
    """{subset: {"accuracy", "n"}} plus "overall"; `score(prompts, responses)` returns one reward each."""
    chosen = score([p.prompt for p in pairs], [p.chosen for p in pairs])
    rejected = score([p.prompt for p in pairs], [p.rejected for p in pairs])
    hits: dict[str, list[bool]] = defaultdict(list)
    for pair, c, r in zip(pairs, chosen, rejected, strict=True):
        hits[pair.subset].append(c > r)
        hits["overall"].append(c > r)
    return {subset: {"accuracy": sum(v) / len(v), "n": len(v)} for subset, v in sorted(hits.items())}
