"""The online round's rule-based reward term, added to the reward model's score where a prompt has an answer
key (`reward.correct_letter_bonus`, `reward.wrong_letter_penalty`)."""

from __future__ import annotations

from ultramedical.eval.extract import extract_choice


def answer_rule(
    response: str, answer: str, choices: str, bonus: float, penalty: float, prompt: str = ""
) -> float:
    """+bonus when a response to a question with an answer key commits to the right answer,
    -penalty when it commits to another or to none; 0 for open questions. `prompt` lets a response
    that names an option by its text count (see `extract_choice`)."""
    if not answer or not choices or not (bonus or penalty):
        return 0.0
    return bonus if extract_choice(response, choices, prompt) == answer else -penalty
