"""Online prompts keep the turns that precede them: a multi-turn record's follow-up question is generated
after the whole conversation so far, and is still graded on the letters of the question it follows."""

from __future__ import annotations

import pytest

from ultramedical.data.chat import prompt_ids
from ultramedical.data.schemas import parse_instruction
from ultramedical.generation.items import instruction_items, prompt_turns
from ultramedical.models.loading import load_tokenizer

QUESTION = "Which class includes hydrochlorothiazide?\n\nA. thiazide diuretic\nB. loop diuretic"
FOLLOW_UP = {
    "id": "MedQA-sample,107",
    "type": "Exam",
    "conversations": [
        {"from": "human", "value": QUESTION},
        {"from": "gpt", "value": "So, the answer is A."},
        {"from": "human", "value": "Can you explain the reasoning in more detail?"},
        {"from": "gpt", "value": "It blocks the distal NaCl cotransporter. So, the answer is A."},
    ],
    "answer": "A",
}


def test_a_follow_up_prompt_carries_the_conversation_before_it(artifacts):
    tokenizer = load_tokenizer(artifacts / "tiny" / "policy")
    record = parse_instruction(FOLLOW_UP)
    (item,) = instruction_items(tokenizer, [record])
    assert [m["content"] for m in item["messages"]] == [
        QUESTION,
        "So, the answer is A.",
        "Can you explain the reasoning in more detail?",
    ]
    assert item["prompt_token_ids"] == prompt_ids(tokenizer, record.messages[:3])
    # Graded against the question that offered the options, not the follow-up's text.
    assert item["prompt"] == QUESTION and item["choices"] == "AB" and item["answer"] == "A"


def test_a_single_turn_record_is_its_user_turn(artifacts):
    tokenizer = load_tokenizer(artifacts / "tiny" / "policy")
    record = parse_instruction(FOLLOW_UP | {"conversations": FOLLOW_UP["conversations"][:2]})
    (item,) = instruction_items(tokenizer, [record])
    assert item["messages"] == [{"role": "user", "content": QUESTION}] and item["prompt"] == QUESTION


def test_a_prompt_must_end_on_a_user_turn():
    with pytest.raises(ValueError, match="user turn"):
        prompt_turns([{"role": "assistant", "content": "hello"}])
