"""Decontamination of a training set against evaluation sets by word n-gram overlap.

Texts are normalised (lower case, punctuation to spaces, whitespace collapsed) and split into words; a
training record is removed when any of its word n-grams (default 13, as in GPT-3's decontamination)
also occurs in an evaluation item. Evaluation items shorter than n words are matched as a whole, if
they have at least `min_words` words, so that short questions cannot slip through.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_TEXT_FIELDS = ("prompt", "question", "context", "contexts", "options", "instruction", "input", "chosen")


def normalise(text: str) -> list[str]:
    """Words of a text after NFKC folding, lower-casing and dropping punctuation."""
    text = unicodedata.normalize("NFKC", text).lower()
    return _NON_WORD.sub(" ", text).split()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item if key not in ("from", "role") else "")
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def text_segments(record: Mapping[str, Any]) -> list[str]:
    """The texts of a record that can carry a benchmark item: conversation turns, questions, options...

    Each field is its own segment so that no n-gram spans two unrelated fields.
    """
    segments = list(_strings(record.get("conversations") or []))
    for name in _TEXT_FIELDS:
        if name in record:
            segments += list(_strings(record[name]))
    return [s for s in segments if s.strip()]


def ngrams(words: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    for i in range(len(words) - n + 1):
        yield tuple(words[i : i + n])


@dataclass
class EvalIndex:
    """N-grams of the evaluation sets, each pointing at the first (set, item id) it was seen in."""

    n: int = 13
    min_words: int = 8
    grams: dict[int, dict[tuple[str, ...], tuple[str, str]]] = field(default_factory=dict)

    def add(self, eval_set: str, item_id: str, record: Mapping[str, Any]) -> None:
        for segment in text_segments(record):
            words = normalise(segment)
            if len(words) >= self.n:
                table = self.grams.setdefault(self.n, {})
                for gram in ngrams(words, self.n):
                    table.setdefault(gram, (eval_set, item_id))
            elif len(words) >= self.min_words:
                self.grams.setdefault(len(words), {}).setdefault(tuple(words), (eval_set, item_id))

    def match(self, record: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, str]] | None:
        """The first overlapping n-gram of a record and where it came from, or None if clean."""
        for segment in text_segments(record):
            words = normalise(segment)
            for length, table in self.grams.items():
                for gram in ngrams(words, length):
                    if (hit := table.get(gram)) is not None:
                        return gram, hit
        return None


@dataclass
class DecontamResult:
    kept: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    report: dict[str, Any]


def build_index(
    eval_sets: Mapping[str, Iterable[Mapping[str, Any]]], n: int = 13, min_words: int = 8
) -> EvalIndex:
    """Index every evaluation set; items without an `id` are named "<set>:<position>"."""
    index = EvalIndex(n=n, min_words=min_words)
    for name, items in eval_sets.items():
        for position, item in enumerate(items, start=1):
            index.add(name, str(item.get("id") or f"{name}:{position}"), item)
    return index


def decontaminate(
    train: Iterable[dict[str, Any]],
    eval_sets: Mapping[str, Iterable[Mapping[str, Any]]],
    n: int = 13,
    min_words: int = 8,
) -> DecontamResult:
    """Split a training set into kept and removed records, with a JSON-serialisable report."""
    if n < 1:
        raise ValueError("n must be at least 1")
    eval_sets = {name: list(items) for name, items in eval_sets.items()}
    index = build_index(eval_sets, n=n, min_words=min_words)
    kept, removed, details = [], [], []
    per_set = {name: 0 for name in eval_sets}
    for position, record in enumerate(train, start=1):
        hit = index.match(record)
        if hit is None:
            kept.append(record)
            continue
        gram, (eval_set, eval_id) = hit
        removed.append(record)
        per_set[eval_set] += 1
        details.append(
            {
                "id": str(record.get("id") or record.get("prompt_id") or f"train:{position}"),
                "eval_set": eval_set,
                "eval_id": eval_id,
                "ngram": " ".join(gram),
            }
        )
    report = {
        "n": n,
        "min_words": min_words,
        "train_records": len(kept) + len(removed),
        "kept": len(kept),
        "removed": len(removed),
        "eval_items": {name: len(items) for name, items in eval_sets.items()},
        "removed_per_eval_set": per_set,
        "removed_records": details,
    }
    return DecontamResult(kept, removed, report)
