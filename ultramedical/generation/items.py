"""Generation work items (`PromptItem`, online/round_data.py): a prompt as chat messages and token ids,
with its answer key when it has one.

The same item shape feeds online rounds (instruction prompts) and evaluation (benchmark questions), so
the scorer's letter rule and the grader read answers the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ultramedical.data.chat import prompt_ids
from ultramedical.data.prompts import LETTERS, PUBMEDQA_LABELS, prompt_options
from ultramedical.data.schemas import InstructionRecord
from ultramedical.online.round_data import Message, PromptItem

YES_NO_MAYBE = "yes/no/maybe"


def answer_choices(prompt: str, answer: str) -> str:
    """The letters offered in a multiple-choice prompt, "yes/no/maybe", or "" for an open question."""
    if answer.lower() in PUBMEDQA_LABELS:
        return YES_NO_MAYBE
    letters = "".join(prompt_options(prompt))
    return letters if answer and answer in LETTERS and answer in letters else ""


def make_item(
    tokenizer: Any, prompt_id: str, prompt: str, answer: str = "", choices: str | None = None
) -> PromptItem:
    messages: list[Message] = [{"role": "user", "content": prompt}]
    return {
        "prompt_id": prompt_id,
        "prompt": prompt,
        "messages": messages,
        "answer": answer.lower() if answer.lower() in PUBMEDQA_LABELS else answer,
        "choices": answer_choices(prompt, answer) if choices is None else choices,
        "prompt_token_ids": prompt_ids(tokenizer, messages),
    }


def instruction_items(tokenizer: Any, records: Sequence[InstructionRecord]) -> list[PromptItem]:
    """One item per instruction record: its first user turn, and its answer key."""
    return [make_item(tokenizer, r.id, r.prompt, r.answer) for r in records]


def benchmark_items(tokenizer: Any, items: Sequence[Any]) -> list[PromptItem]:
    """Items for `BenchmarkItem`s (ultramedical.eval.benchmarks)."""
    out = []
    for item in items:
        choices = YES_NO_MAYBE if tuple(item.choices) == PUBMEDQA_LABELS else "".join(item.choices)
        out.append(make_item(tokenizer, item.id, item.prompt, item.answer, choices))
    return out
