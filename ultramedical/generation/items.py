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
    tokenizer: Any,
    prompt_id: str,
    prompt: str,
    answer: str = "",
    choices: str | None = None,
    messages: Sequence[Message] | None = None,
) -> PromptItem:
    """`messages`: the conversation the completion continues, ending with the user turn `prompt`
    (default: that one turn alone)."""
    messages = list(messages) if messages is not None else [{"role": "user", "content": prompt}]
    return {
        "prompt_id": prompt_id,
        "prompt": prompt,
        "messages": messages,
        "answer": answer.lower() if answer.lower() in PUBMEDQA_LABELS else answer,
        "choices": answer_choices(prompt, answer) if choices is None else choices,
        "prompt_token_ids": prompt_ids(tokenizer, messages),
    }


def prompt_turns(messages: Sequence[Message]) -> list[Message]:
    """The turns a completion continues: everything before the conversation's last assistant turn (a
    system prompt and earlier exchanges included), or all of it when it ends on a user turn."""
    last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=len(messages))
    turns = list(messages[:last])
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("a prompt must end with a user turn")
    return turns


def instruction_items(tokenizer: Any, records: Sequence[InstructionRecord]) -> list[PromptItem]:
    """One item per instruction record: the turns before its last answer, and its answer key. The item's
    `prompt` (what answers are read against) is the latest user turn that offers the key's options, so a
    follow-up ("explain in more detail") to a multiple-choice question is still graded on its letters."""
    items = []
    for r in records:
        turns = prompt_turns(r.messages)
        users = [m["content"] for m in turns if m["role"] == "user"]
        question = next((u for u in reversed(users) if answer_choices(u, r.answer)), users[-1])
        items.append(make_item(tokenizer, r.id, question, r.answer, messages=turns))
    return items


def benchmark_items(tokenizer: Any, items: Sequence[Any]) -> list[PromptItem]:
    """Items for `BenchmarkItem`s (ultramedical.eval.benchmarks)."""
    out = []
    for item in items:
        choices = YES_NO_MAYBE if tuple(item.choices) == PUBMEDQA_LABELS else "".join(item.choices)
        out.append(make_item(tokenizer, item.id, item.prompt, item.answer, choices))
    return out
