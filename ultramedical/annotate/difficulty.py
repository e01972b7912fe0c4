"""Difficulty scoring of instructions (1-10 with a justification) and filtering by difficulty.

UltraMedical stores difficulty in an instruction's `score` field as a string such as
"7. The question requires integrating pharmacology with renal physiology."; this module writes and
reads that form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ultramedical.annotate.client import ChatClient, EndpointError
from ultramedical.annotate.records import prompt_of
from ultramedical.config import EndpointModel

DIFFICULTY_PROMPT = """You are a senior medical educator. Rate how difficult the following biomedical
question is for a well-trained physician or biomedical scientist, on an integer scale from 1 to 10:
1-2 recall of a single common fact; 3-4 straightforward application of standard knowledge;
5-6 several facts combined or a typical clinical vignette; 7-8 multi-step clinical reasoning,
uncommon knowledge or subtle distractors; 9-10 specialist-level synthesis of rare or conflicting evidence.

## Question
{question}

Reply with a single JSON object and nothing else:
{{"score": <integer 1-10>, "justification": "<one sentence saying what makes it that hard>"}}"""

_LEADING_SCORE = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*10)?\s*[.:)\-]?\s*(.*)$", re.DOTALL)
_LABELLED_SCORE = re.compile(r"(?:score|difficulty|rating)\W{0,5}(\d{1,2})\s*(?:/\s*10)?", re.IGNORECASE)
_LABELLED_REASON = re.compile(r"(?:justification|reason|explanation)\W{0,5}(.+)", re.IGNORECASE | re.DOTALL)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)(?:```|$)", re.DOTALL | re.IGNORECASE)


class DifficultyParseError(ValueError):
    """A difficulty reply with no score from 1 to 10 in it."""


@dataclass(frozen=True)
class Difficulty:
    score: int
    justification: str

    def as_score_string(self) -> str:
        """UltraMedical's `score` field: "7. The question requires ..."."""
        return f"{self.score}. {self.justification}".strip()


def build_difficulty_messages(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": DIFFICULTY_PROMPT.format(question=question.strip())}]


def _checked(score: int, justification: str) -> Difficulty:
    if not 1 <= score <= 10:
        raise DifficultyParseError(f"difficulty {score} is not from 1 to 10")
    return Difficulty(score, " ".join(justification.split()))


def parse_difficulty(text: str) -> Difficulty:
    """Read a difficulty reply: JSON (fenced or bare), "Score: 7 ... Justification: ...", or "7. ..."."""
    if not text or not text.strip():
        raise DifficultyParseError("empty difficulty reply")
    fenced = _FENCE.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start != -1 and end > start:
        try:
            value = json.loads(body[start : end + 1])
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            raw = value.get("score", value.get("difficulty"))
            reason = value.get("justification", value.get("reason", value.get("explanation", "")))
            if isinstance(raw, int | float | str) and not isinstance(raw, bool):
                try:
                    return _checked(int(float(raw)), str(reason or ""))
                except ValueError as exc:
                    raise DifficultyParseError(f"difficulty {raw!r} is not an integer from 1 to 10") from exc
    if labelled := _LABELLED_SCORE.search(text):
        reason = _LABELLED_REASON.search(text[labelled.end() :])
        return _checked(int(labelled.group(1)), reason.group(1) if reason else text[labelled.end() :])
    if leading := _LEADING_SCORE.match(text):
        return _checked(int(leading.group(1)), leading.group(2))
    raise DifficultyParseError(f"no difficulty score in reply: {text.strip()[:80]!r}")


def difficulty_of(record: dict[str, Any]) -> int | None:
    """The integer difficulty at the start of a record's `score` string, or None if it has none."""
    match = re.match(r"\s*(\d{1,2})\b", str(record.get("score") or ""))
    return int(match.group(1)) if match else None


def filter_by_difficulty(
    records: Iterable[dict[str, Any]],
    min_score: int | None = None,
    max_score: int | None = None,
    keep_unscored: bool = False,
) -> list[dict[str, Any]]:
    """Records whose difficulty lies in [min_score, max_score] (either bound optional)."""
    kept = []
    for record in records:
        score = difficulty_of(record)
        if score is None:
            if keep_unscored:
                kept.append(record)
        elif (min_score is None or score >= min_score) and (max_score is None or score <= max_score):
            kept.append(record)
    return kept


@dataclass
class DifficultyRun:
    records: list[dict[str, Any]]  # every input record; scored ones have their `score` field set
    failures: list[dict[str, Any]]


def score_difficulty(
    records: Sequence[dict[str, Any]], client: ChatClient, endpoint: EndpointModel, concurrency: int = 8
) -> DifficultyRun:
    """Rate every record's prompt; a record that fails keeps its old `score` and is listed in failures."""

    def one(record: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        ident = str(record.get("id", ""))
        try:
            reply = client.chat(endpoint, build_difficulty_messages(prompt_of(record)))
            difficulty = parse_difficulty(reply.texts[0] if reply.texts else "")
        except (EndpointError, DifficultyParseError, ValueError) as exc:
            return record, {"id": ident, "stage": "difficulty", "reason": f"{type(exc).__name__}: {exc}"}
        return {**record, "score": difficulty.as_score_string()}, None

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, records))
    return DifficultyRun([r for r, _ in results], [f for _, f in results if f is not None])
