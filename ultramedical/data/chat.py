"""Conversations to token ids through the tokenizer's own chat template, with assistant-only labels.

Labels are found from the rendered text, not from template markers: the span of assistant turn i is
the text between render(messages[:i], generation prompt) and render(messages[:i+1]). That holds for any
template that renders a conversation's prefix as a prefix of the text (Llama-3's among them), so the
embedded tiny model and a real checkpoint take the same path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ultramedical.data.schemas import Message

IGNORE_INDEX = -100
Truncation = Literal["right", "left", "drop"]


@dataclass(frozen=True)
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def label_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def render(tokenizer: Any, messages: Sequence[Message], add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )


def assistant_spans(
    tokenizer: Any, messages: Sequence[Message], only_last: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns (with their end token)."""
    text = render(tokenizer, messages)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant" or (only_last and i != len(messages) - 1):
            continue
        start = len(render(tokenizer, messages[:i], add_generation_prompt=True))
        end = len(render(tokenizer, messages[: i + 1]))
        if text[:end] != render(tokenizer, messages[: i + 1]):
            raise ValueError("the chat template does not render a conversation's prefix as a prefix of it")
        spans.append((start, end))
    return text, spans


def tokenize_conversation(
    tokenizer: Any,
    messages: Sequence[Message],
    max_len: int,
    truncation: Truncation = "right",
    only_last_assistant: bool = False,
) -> Tokenized | None:
    """Token ids and labels (assistant tokens only); None when the example is dropped by truncation.

    `right` keeps the start, `left` keeps the end (the answer survives a long prompt), `drop` skips
    any example over `max_len`. An example left with no assistant token is dropped too.
    """
    text, spans = assistant_spans(tokenizer, messages, only_last=only_last_assistant)
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = encoding["input_ids"]
    labels = [IGNORE_INDEX] * len(ids)
    for index, (start, end) in enumerate(encoding["offset_mapping"]):
        if end > start and any(s <= start < e for s, e in spans):
            labels[index] = ids[index]
    truncated = len(ids) > max_len
    if truncated:
        if truncation == "drop":
            return None
        if truncation == "right":
            ids, labels = ids[:max_len], labels[:max_len]
        else:
            ids, labels = ids[-max_len:], labels[-max_len:]
    result = Tokenized(ids, labels, truncated)
    return result if result.label_tokens else None


def prompt_ids(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Token ids of a prompt ready for generation (the assistant header appended)."""
    text = render(tokenizer, messages, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]
