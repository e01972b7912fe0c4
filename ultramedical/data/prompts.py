"""How questions are put to a model: one format shared by the corpus, training and evaluation.

The sample corpus, the SFT data and the benchmark evaluator all call these functions, so a model is
always asked a question the way it was trained to answer it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

LETTERS = "ABCDEFGHIJ"
_OPTION_LINE = re.compile(rf"^([{LETTERS}])\.\s(.*)$", re.MULTILINE)
PUBMEDQA_LABELS = ("yes", "no", "maybe")


def format_mcq_prompt(question: str, options: Mapping[str, str]) -> str:
    """A multiple-choice question followed by its lettered options, one per line."""
    lines = [question.strip(), ""]
    lines += [f"{letter}. {text.strip()}" for letter, text in options.items()]
    return "\n".join(lines)


def prompt_options(prompt: str) -> dict[str, str]:
    """The lettered options of a prompt written by `format_mcq_prompt` ({} when it has none)."""
    return {m.group(1): m.group(2).strip() for m in _OPTION_LINE.finditer(prompt)}


def options_from_list(choices: Sequence[str]) -> dict[str, str]:
    """Letter a list of option texts A, B, C..."""
    if len(choices) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options are supported, got {len(choices)}")
    return {LETTERS[i]: text for i, text in enumerate(choices)}


def format_pubmedqa_prompt(contexts: Sequence[str], question: str) -> str:
    """A literature question: the abstract's context, then a yes/no/maybe question."""
    context = " ".join(c.strip() for c in contexts)
    return f"Context: {context}\n\nQuestion: {question.strip()}\nAnswer with yes, no or maybe."


def mcq_answer_sentence(letter: str) -> str:
    """The closing sentence every multiple-choice target ends with (UltraMedical's convention)."""
    return f"So, the answer is {letter}."


def pubmedqa_answer_sentence(label: str) -> str:
    return f"So, the answer is {label}."
