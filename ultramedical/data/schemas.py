"""The record types of the UltraMedical corpora and their validation.

Each `parse_*` function turns one decoded row into a typed record or raises `RecordError` naming the
field and the reason, so a validator can report every bad record with its line number.

Besides UltraMedical's own formats, the shapes people already have parse to the same records:
instructions as HF chat `messages` (e.g. HuggingFaceH4/ultrachat_200k), preferences in TRL's standard
and conversational forms (see `parse_preference`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Message = dict[str, str]  # {"role": "system"|"user"|"assistant", "content": str}
Turns = tuple[Message, ...]
SCHEMAS = ("instruction", "preference", "annotation", "unpaired")
Schema = Literal["instruction", "preference", "annotation", "unpaired"]

_SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
_CHAT_ROLES = ("system", "user", "assistant")


class RecordError(ValueError):
    """One record breaks its schema; the message names the field."""


@dataclass(frozen=True)
class InstructionRecord:
    """A (possibly multi-turn) conversation: UltraMedical's ShareGPT form or HF chat `messages`."""

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
    """One prompt with a chosen and a rejected conversation (UltraMedical-Preference, or TRL's forms)."""

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
    """ShareGPT `conversations` (UltraMedical) or HF chat `messages` (UltraChat); `conversations` wins."""
    record_id = _optional_text(row, "id") or _optional_text(row, "prompt_id")
    if not record_id:
        raise RecordError("missing field 'id' (or 'prompt_id')")
    if "conversations" in row:
        where, sharegpt, what = "conversations", True, "a list of turns"
    elif "messages" in row:
        where, sharegpt, what = "messages", False, "a list of messages"
    else:
        raise RecordError("missing field 'conversations' (or 'messages')")
    turns = _messages(_require(row, where, list, what), where, sharegpt=sharegpt)
    _check_dialogue(turns, where, must_end_with_assistant=True)
    return InstructionRecord(
        id=record_id,
        type=_optional_text(row, "type"),
        messages=turns,
        answer=_optional_text(row, "answer"),
        score=_optional_text(row, "score"),
    )


def parse_preference(row: dict[str, Any]) -> PreferenceRecord:
    """A preference pair in any of these shapes, told apart by the type of `prompt` and `chosen`:

    - UltraMedical-Preference: `prompt` a string, `chosen`/`rejected` whole conversations;
    - TRL standard: `prompt`, `chosen` and `rejected` strings (one user turn, one assistant turn);
    - TRL conversational, explicit prompt: `prompt` a list of messages, `chosen`/`rejected` the turns
      that follow it;
    - TRL conversational, implicit prompt: no `prompt`; whole conversations that share their prompt turns.
    """
    prompt, chosen, rejected = _preference_turns(row)
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


def _preference_turns(row: dict[str, Any]) -> tuple[str, Turns, Turns]:
    """(prompt text, chosen conversation, rejected conversation) of whichever shape `row` has."""
    if "prompt" not in row:
        return _implicit_prompt_pair(row)
    if isinstance(row["prompt"], list):
        return _explicit_prompt_pair(row)
    prompt = _require(row, "prompt", str, "a string")
    if not prompt.strip():
        raise RecordError("field 'prompt' is empty")
    if isinstance(row.get("chosen"), str):  # TRL standard: the completions are plain text
        return prompt, _standard_side(row, "chosen", prompt), _standard_side(row, "rejected", prompt)
    chosen = _messages(_require(row, "chosen", list, "a list of messages"), "chosen", sharegpt=False)
    rejected = _messages(_require(row, "rejected", list, "a list of messages"), "rejected", sharegpt=False)
    return prompt, chosen, rejected


def _standard_side(row: dict[str, Any], name: str, prompt: str) -> Turns:
    text = _require(row, name, str, "a string, as in TRL's standard form")
    if not text.strip():
        raise RecordError(f"field '{name}' is empty")
    return {"role": "user", "content": prompt}, {"role": "assistant", "content": text}


def _explicit_prompt_pair(row: dict[str, Any]) -> tuple[str, Turns, Turns]:
    prompt = _messages(row["prompt"], "prompt", sharegpt=False)
    _check_dialogue(prompt, "prompt", must_end_with_assistant=False)
    if prompt[-1]["role"] != "user":
        raise RecordError("field 'prompt' must end with a user turn")
    sides = []
    for name in ("chosen", "rejected"):
        raw = _require(row, name, list, "a list of messages, as 'prompt' is")
        reply = _messages(raw, name, sharegpt=False)
        if reply[0]["role"] != "assistant":  # whole conversations belong in the implicit-prompt form
            raise RecordError(f"field '{name}' must start with the assistant turn that answers 'prompt'")
        sides.append(prompt + reply)
    return prompt[-1]["content"], sides[0], sides[1]


def _implicit_prompt_pair(row: dict[str, Any]) -> tuple[str, Turns, Turns]:
    if "chosen" not in row and "rejected" not in row:
        raise RecordError("missing field 'prompt'")
    if isinstance(row.get("chosen"), str) or isinstance(row.get("rejected"), str):
        raise RecordError(
            "missing field 'prompt': 'chosen' and 'rejected' are plain text (TRL's implicit-prompt standard "
            "form), which cannot be split into prompt and reply; add the prompt, or give whole conversations"
        )
    chosen = _messages(_require(row, "chosen", list, "a list of messages"), "chosen", sharegpt=False)
    rejected = _messages(_require(row, "rejected", list, "a list of messages"), "rejected", sharegpt=False)
    for name, turns in (("chosen", chosen), ("rejected", rejected)):
        _check_dialogue(turns, name, must_end_with_assistant=True)
    chosen_prompt, rejected_prompt = chosen[:-1], rejected[:-1]
    if chosen_prompt != rejected_prompt:
        pairs = enumerate(zip(chosen_prompt, rejected_prompt, strict=False))
        turn = next((i for i, (c, r) in pairs if c != r), min(len(chosen_prompt), len(rejected_prompt)))
        raise RecordError(
            f"field 'rejected' must share its prompt turns with 'chosen' (with no 'prompt' field, every turn "
            f"before the final assistant turn is the prompt), but they part at turn {turn}"
        )
    prompt = next(t["content"] for t in reversed(chosen_prompt) if t["role"] == "user")
    return prompt, chosen, rejected


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
