"""The record types of the UltraMedical corpora and their validation.

Each `parse_*` function turns one decoded row into a typed record or raises `RecordError` naming the
field and the reason, so a validator can report every bad record with its line number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}
SCHEMAS = ("instruction", "preference", "annotation", "unpaired")
Schema = Literal["instruction", "preference", "annotation", "unpaired"]

_SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
_CHAT_ROLES = ("system", "user", "assistant")


class RecordError(ValueError):
    """One record breaks its schema; the message names the field."""


@dataclass(frozen=True)
class InstructionRecord:
    """TsinghuaC3I/UltraMedical: a (possibly multi-turn) conversation in ShareGPT form."""

    id: str
    type: str
    messages: tuple[Message, ...]
    answer: str = ""
    score: str = ""

    @property
    def prompt(self) -> str:
        return next(m["content"] for m in self.messages if m["role"] == "user")

    @property
    def reference(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "assistant"), "")


@dataclass(frozen=True)
class PreferenceRecord:
    """TsinghuaC3I/UltraMedical-Preference: one prompt with a chosen and a rejected conversation."""

    prompt_id: str
    prompt: str
    chosen: tuple[Message, ...]
    rejected: tuple[Message, ...]
    label_type: str = ""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def score(self, side: Literal["chosen", "rejected"]) -> float | None:
        judged = self.metadata.get(side)
        value = judged.get("score") if isinstance(judged, dict) else None
        if not isinstance(value, int | float) or isinstance(value, bool):
            return None
        try:
            return float(value)
        except OverflowError:  # an integer past float range
            return None


@dataclass(frozen=True)
class Completion:
    model: str
    text: str
    score: float
    evaluation: str
    rank: int


@dataclass(frozen=True)
class AnnotationRecord:
    """A prompt with several models' completions, each judged with a score, an explanation and a rank."""

    prompt_id: str
    prompt: str
    completions: tuple[Completion, ...]
    reference_answer: str = ""


@dataclass(frozen=True)
class UnpairedRecord:
    """A single completion labelled desirable or not (KTO's unpaired form)."""

    prompt_id: str
    prompt: tuple[Message, ...]
    completion: str
    label: bool


def _require(row: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in row:
        raise RecordError(f"missing field '{name}'")
    value = row[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise RecordError(f"field '{name}' must be {what}, got {type(value).__name__}")
    return value


def _float(value: int | float, name: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise RecordError(f"field '{name}' is too large to be a number") from None


def _optional_text(row: dict[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise RecordError(f"field '{name}' must be a string, got {type(value).__name__}")
    return value


def _messages(value: Any, where: str, sharegpt: bool) -> tuple[Message, ...]:
    if not isinstance(value, list):
        raise RecordError(f"field '{where}' must be a list of turns, got {type(value).__name__}")
    if not value:
        raise RecordError(f"field '{where}' has no turns")
    role_key, text_key = ("from", "value") if sharegpt else ("role", "content")
    allowed = _SHAREGPT_ROLES if sharegpt else {r: r for r in _CHAT_ROLES}
    turns = []
    for i, turn in enumerate(value):
        place = f"{where}[{i}]"
        if not isinstance(turn, dict):
            raise RecordError(f"{place} must be an object, got {type(turn).__name__}")
        for key in (role_key, text_key):
            if key not in turn:
                raise RecordError(f"{place} is missing '{key}'")
        role, text = turn[role_key], turn[text_key]
        if not isinstance(role, str) or role not in allowed:
            raise RecordError(f"{place} has unknown role {role!r} (expected one of {', '.join(allowed)})")
        if not isinstance(text, str):
            raise RecordError(f"{place}.{text_key} must be a string, got {type(text).__name__}")
        if not text.strip():
            raise RecordError(f"{place} is an empty turn")
        turns.append({"role": allowed[role], "content": text})
    return tuple(turns)


def _check_dialogue(turns: tuple[Message, ...], where: str, must_end_with_assistant: bool) -> None:
    roles = [t["role"] for t in turns if t["role"] != "system"]
    if not roles or roles[0] != "user":
        raise RecordError(f"field '{where}' must start with a user turn")
    for i in range(1, len(roles)):
        if roles[i] == roles[i - 1]:
            raise RecordError(f"field '{where}' has two {roles[i]} turns in a row")
    if must_end_with_assistant and roles[-1] != "assistant":
        raise RecordError(f"field '{where}' must end with an assistant turn")


def parse_instruction(row: dict[str, Any]) -> InstructionRecord:
    record_id = _optional_text(row, "id")
    if not record_id:
        raise RecordError("missing field 'id'")
    turns = _messages(_require(row, "conversations", list, "a list of turns"), "conversations", sharegpt=True)
    _check_dialogue(turns, "conversations", must_end_with_assistant=True)
    return InstructionRecord(
        id=record_id,
        type=_optional_text(row, "type"),
        messages=turns,
        answer=_optional_text(row, "answer"),
        score=_optional_text(row, "score"),
    )


def parse_preference(row: dict[str, Any]) -> PreferenceRecord:
    prompt = _require(row, "prompt", str, "a string")
    if not prompt.strip():
        raise RecordError("field 'prompt' is empty")
    chosen = _messages(_require(row, "chosen", list, "a list of messages"), "chosen", sharegpt=False)
    rejected = _messages(_require(row, "rejected", list, "a list of messages"), "rejected", sharegpt=False)
    for name, turns in (("chosen", chosen), ("rejected", rejected)):
        _check_dialogue(turns, name, must_end_with_assistant=True)
    if chosen == rejected:
        raise RecordError("'chosen' and 'rejected' are identical")
    metadata = row.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise RecordError(f"field 'metadata' must be an object, got {type(metadata).__name__}")
    return PreferenceRecord(
        prompt_id=_optional_text(row, "prompt_id"),
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        label_type=_optional_text(row, "label_type"),
        metadata=metadata,
    )


def parse_annotation(row: dict[str, Any]) -> AnnotationRecord:
    prompt = _require(row, "prompt", str, "a string")
    if not prompt.strip():
        raise RecordError("field 'prompt' is empty")
    raw = _require(row, "completions", list, "a list of completions")
    if len(raw) < 2:
        raise RecordError("field 'completions' needs at least 2 completions")
    completions = []
    for i, item in enumerate(raw):
        place = f"completions[{i}]"
        if not isinstance(item, dict):
            raise RecordError(f"{place} must be an object")
        try:
            completions.append(
                Completion(
                    model=_require(item, "model", str, "a string"),
                    text=_require(item, "text", str, "a string"),
                    score=_float(_require(item, "score", int | float, "a number"), "score"),
                    evaluation=_optional_text(item, "evaluation"),
                    rank=_require(item, "rank", int, "an integer"),
                )
            )
        except RecordError as exc:
            raise RecordError(f"{place}: {exc}") from None
    ranks = sorted(c.rank for c in completions)
    if ranks != list(range(1, len(completions) + 1)):
        raise RecordError(f"ranks must be 1..{len(completions)} each once, got {ranks}")
    return AnnotationRecord(
        prompt_id=_optional_text(row, "prompt_id"),
        prompt=prompt,
        completions=tuple(completions),
        reference_answer=_optional_text(row, "reference_answer"),
    )


def parse_unpaired(row: dict[str, Any]) -> UnpairedRecord:
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        if not prompt.strip():
            raise RecordError("field 'prompt' is empty")
        turns: tuple[Message, ...] = ({"role": "user", "content": prompt},)
    else:
        turns = _messages(_require(row, "prompt", list, "a string or a list of messages"), "prompt", False)
    completion = _require(row, "completion", str, "a string")
    if not completion.strip():
        raise RecordError("field 'completion' is empty")
    return UnpairedRecord(
        prompt_id=_optional_text(row, "prompt_id"),
        prompt=turns,
        completion=completion,
        label=_require(row, "label", bool, "a boolean"),
    )


PARSERS = {
    "instruction": parse_instruction,
    "preference": parse_preference,
    "annotation": parse_annotation,
    "unpaired": parse_unpaired,
}
