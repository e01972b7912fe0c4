"""The shapes people already have: HF chat instructions (UltraChat) and TRL's preference forms parse to the
same records as UltraMedical's own, and every malformed variant names its field (and its line, in a file)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ultramedical.data.loading import DataError, Problem, iter_checked, load_records
from ultramedical.data.schemas import (
    InstructionRecord,
    PreferenceRecord,
    RecordError,
    parse_instruction,
    parse_preference,
)


def _chat(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": role, "content": text} for role, text in pairs]


SYSTEM = ("system", "You are a careful clinician.")
QUESTION = ("user", "Which vitamin deficiency causes scurvy?")
ANSWER = ("assistant", "Vitamin C.")
FOLLOW_UP = ("user", "And rickets?")
GOOD = ("assistant", "Vitamin D.")
BAD = ("assistant", "Vitamin K.")


def ultrachat_row() -> dict[str, Any]:
    """A HuggingFaceH4/ultrachat_200k row: no `id`, a `prompt_id` and HF chat `messages`."""
    return {
        "prompt": QUESTION[1],
        "prompt_id": "9f2c",
        "messages": _chat(SYSTEM, QUESTION, ANSWER, FOLLOW_UP, GOOD),
    }


def standard_row() -> dict[str, Any]:
    return {"prompt": QUESTION[1], "chosen": ANSWER[1], "rejected": BAD[1]}


def explicit_row() -> dict[str, Any]:
    return {
        "prompt": _chat(SYSTEM, QUESTION, ANSWER, FOLLOW_UP),
        "chosen": _chat(GOOD),
        "rejected": _chat(BAD),
    }


def implicit_row() -> dict[str, Any]:
    return {
        "chosen": _chat(SYSTEM, QUESTION, ANSWER, FOLLOW_UP, GOOD),
        "rejected": _chat(SYSTEM, QUESTION, ANSWER, FOLLOW_UP, BAD),
    }


def _broken(make, mutate) -> dict[str, Any]:
    row = copy.deepcopy(make())
    mutate(row)
    return row


def _set(key: str, value: Any):
    return lambda row: row.__setitem__(key, value)


def _delete(key: str):
    return lambda row: row.pop(key)


def _error(parse, row: dict[str, Any]) -> str:
    with pytest.raises(RecordError) as info:
        parse(row)
    return str(info.value)


# --- instructions in HF chat form ------------------------------------------------------------------


def test_ultrachat_row_parses_to_an_instruction_record():
    record = parse_instruction(ultrachat_row())
    assert isinstance(record, InstructionRecord)
    assert record.id == "9f2c" and record.type == "" and record.answer == ""
    assert record.messages == tuple(_chat(SYSTEM, QUESTION, ANSWER, FOLLOW_UP, GOOD))
    assert record.prompt == QUESTION[1] and record.reference == ANSWER[1]


def test_chat_and_sharegpt_forms_of_one_conversation_are_the_same_record():
    sharegpt_roles = {"system": "system", "user": "human", "assistant": "gpt"}
    sharegpt = {
        "id": "9f2c",
        "conversations": [
            {"from": sharegpt_roles[m["role"]], "value": m["content"]} for m in ultrachat_row()["messages"]
        ],
    }
    assert parse_instruction(sharegpt) == parse_instruction(ultrachat_row())


def test_id_comes_from_id_before_prompt_id():
    assert parse_instruction({**ultrachat_row(), "id": 42}).id == "42"
    assert parse_instruction({**ultrachat_row(), "id": ""}).id == "9f2c"


def test_conversations_win_when_both_are_present():
    sharegpt_pair = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    row = {**ultrachat_row(), "messages": "not even a list", "conversations": sharegpt_pair}
    assert parse_instruction(row).messages == tuple(_chat(("user", "q"), ("assistant", "a")))


INSTRUCTION_CASES = [
    ("no id nor prompt_id", _delete("prompt_id"), ["missing field 'id' (or 'prompt_id')"]),
    ("prompt_id wrong type", _set("prompt_id", [1]), ["field 'prompt_id'", "string", "list"]),
    ("no turns at all", _delete("messages"), ["missing field 'conversations' (or 'messages')"]),
    ("messages wrong type", _set("messages", {"role": "user"}), ["field 'messages'", "dict"]),
    ("messages empty", _set("messages", []), ["field 'messages'", "no turns"]),
    ("turn not an object", _set("messages", ["q", "a"]), ["messages[0]", "object"]),
    ("turn missing content", _set("messages", [{"role": "user"}]), ["messages[0]", "'content'"]),
    (
        "sharegpt role in chat form",
        _set("messages", [{"role": "human", "content": "q"}, {"role": "gpt", "content": "a"}]),
        ["messages[0]", "unknown role 'human'"],
    ),
    (
        "sharegpt keys in chat form",
        _set("messages", [{"from": "human", "value": "q"}]),
        ["messages[0]", "missing 'role'"],
    ),
    (
        "content wrong type",
        _set("messages", [{"role": "user", "content": "q"}, {"role": "assistant", "content": 5}]),
        ["messages[1].content", "int"],
    ),
    ("empty turn", _set("messages", _chat(("user", "q"), ("assistant", " "))), ["messages[1]", "empty turn"]),
    (
        "two user turns",
        _set("messages", _chat(("user", "q"), ("user", "q"), ("assistant", "a"))),
        ["field 'messages'", "two user turns in a row"],
    ),
    (
        "starts with assistant",
        _set("messages", _chat(("assistant", "a"), ("user", "q"), ("assistant", "a"))),
        ["field 'messages'", "start with a user turn"],
    ),
    (
        "ends with user",
        _set("messages", _chat(("user", "q"), ("assistant", "a"), ("user", "q2"))),
        ["field 'messages'", "end with an assistant turn"],
    ),
]


@pytest.mark.parametrize(("mutate", "needles"), [pytest.param(m, n, id=i) for i, m, n in INSTRUCTION_CASES])
def test_chat_instruction_failures_name_the_field(mutate, needles):
    message = _error(parse_instruction, _broken(ultrachat_row, mutate))
    for needle in needles:
        assert needle in message


# --- preferences in TRL's forms --------------------------------------------------------------------


def test_standard_row_is_one_user_turn_and_one_assistant_turn():
    record = parse_preference({**standard_row(), "prompt_id": "s1"})
    assert isinstance(record, PreferenceRecord)
    assert record.prompt_id == "s1" and record.prompt == QUESTION[1]
    assert record.chosen == tuple(_chat(QUESTION, ANSWER))
    assert record.rejected == tuple(_chat(QUESTION, BAD))
    assert record.score("chosen") is None and record.label_type == ""


def test_standard_text_is_kept_as_written():
    record = parse_preference({"prompt": "The sky is", "chosen": " blue.", "rejected": " green."})
    assert record.chosen[-1]["content"] == " blue." and record.rejected[-1]["content"] == " green."


def test_explicit_prompt_is_prepended_to_each_reply():
    record = parse_preference(explicit_row())
    assert record.prompt == FOLLOW_UP[1]  # the last user turn
    assert record.chosen == tuple(_chat(SYSTEM, QUESTION, ANSWER, FOLLOW_UP, GOOD))
    assert record.rejected == tuple(_chat(SYSTEM, QUESTION, ANSWER, FOLLOW_UP, BAD))


def test_explicit_prompt_reply_may_hold_several_turns():
    row = {
        "prompt": _chat(QUESTION),
        "chosen": _chat(ANSWER, FOLLOW_UP, GOOD),
        "rejected": _chat(ANSWER, FOLLOW_UP, BAD),
    }
    record = parse_preference(row)
    assert record.prompt == QUESTION[1] and record.chosen == tuple(_chat(QUESTION, ANSWER, FOLLOW_UP, GOOD))


def test_implicit_prompt_is_the_shared_turns():
    record = parse_preference(implicit_row())
    assert record.prompt == FOLLOW_UP[1]
    assert record.chosen == tuple(_chat(SYSTEM, QUESTION, ANSWER, FOLLOW_UP, GOOD))
    assert record.rejected[-1] == {"role": "assistant", "content": BAD[1]}


def test_every_preference_shape_of_one_pair_is_the_same_record():
    extras = {"prompt_id": "p1", "label_type": "judge", "metadata": {"chosen": {"score": 8}}}
    ultramedical = {
        "prompt": QUESTION[1],
        "chosen": _chat(QUESTION, ANSWER),
        "rejected": _chat(QUESTION, BAD),
    }
    explicit = {"prompt": _chat(QUESTION), "chosen": _chat(ANSWER), "rejected": _chat(BAD)}
    implicit = {"chosen": _chat(QUESTION, ANSWER), "rejected": _chat(QUESTION, BAD)}
    records = [
        parse_preference({**row, **extras}) for row in (ultramedical, standard_row(), explicit, implicit)
    ]
    assert all(record == records[0] for record in records[1:])
    assert {record.score("chosen") for record in records} == {8.0}


STANDARD_CASES = [
    ("rejected not text", _set("rejected", _chat(BAD)), ["field 'rejected'", "a string", "list"]),
    ("rejected missing", _delete("rejected"), ["missing field 'rejected'"]),
    ("chosen blank", _set("chosen", "  "), ["field 'chosen' is empty"]),
    ("prompt blank", _set("prompt", ""), ["field 'prompt' is empty"]),
    ("identical", _set("rejected", ANSWER[1]), ["'chosen' and 'rejected' are identical"]),
]

EXPLICIT_CASES = [
    ("prompt no turns", _set("prompt", []), ["field 'prompt'", "no turns"]),
    ("prompt unknown role", _set("prompt", _chat(("human", "q"))), ["prompt[0]", "unknown role 'human'"]),
    (
        "prompt ends with assistant",
        _set("prompt", _chat(QUESTION, ANSWER)),
        ["field 'prompt'", "end with a user"],
    ),
    (
        "prompt starts with assistant",
        _set("prompt", _chat(ANSWER, QUESTION)),
        ["field 'prompt'", "start with a user"],
    ),
    ("chosen not a list", _set("chosen", GOOD[1]), ["field 'chosen'", "list of messages", "str"]),
    ("rejected missing", _delete("rejected"), ["missing field 'rejected'"]),
    (
        "chosen repeats the prompt",
        _set("chosen", _chat(QUESTION, GOOD)),
        ["field 'chosen'", "start with the assistant turn"],
    ),
    (
        "rejected ends with user",
        _set("rejected", _chat(BAD, FOLLOW_UP)),
        ["field 'rejected'", "end with an assistant"],
    ),
    ("rejected empty turn", _set("rejected", _chat(("assistant", ""))), ["rejected[0]", "empty turn"]),
    ("identical", _set("rejected", _chat(GOOD)), ["'chosen' and 'rejected' are identical"]),
]

IMPLICIT_CASES = [
    (
        "different prompts",
        _set("rejected", _chat(("user", "Something else?"), BAD)),
        ["field 'rejected'", "share its prompt turns with 'chosen'", "turn 0"],
    ),
    (
        "different earlier reply",
        _set("rejected", _chat(SYSTEM, QUESTION, ("assistant", "Vitamin B12."), FOLLOW_UP, BAD)),
        ["field 'rejected'", "share its prompt turns", "turn 2"],
    ),
    (
        "rejected shorter",
        _set("rejected", _chat(SYSTEM, QUESTION, BAD)),
        ["field 'rejected'", "share its prompt turns", "turn 2"],
    ),
    (
        "chosen ends with user",
        _set("chosen", _chat(QUESTION, ANSWER, FOLLOW_UP)),
        ["field 'chosen'", "end with an"],
    ),
    ("chosen missing", _delete("chosen"), ["missing field 'chosen'"]),
    ("rejected not a list", _set("rejected", {"role": "assistant"}), ["field 'rejected'", "dict"]),
    ("rejected unknown role", _set("rejected", _chat(("gpt", "a"))), ["rejected[0]", "unknown role 'gpt'"]),
    ("identical", lambda row: row.__setitem__("rejected", row["chosen"]), ["identical"]),
]


def _cases(make, cases):
    return [
        pytest.param(make, mutate, needles, id=f"{make.__name__}-{name}") for name, mutate, needles in cases
    ]


@pytest.mark.parametrize(
    ("make", "mutate", "needles"),
    _cases(standard_row, STANDARD_CASES)
    + _cases(explicit_row, EXPLICIT_CASES)
    + _cases(implicit_row, IMPLICIT_CASES),
)
def test_trl_preference_failures_name_the_field(make, mutate, needles):
    message = _error(parse_preference, _broken(make, mutate))
    for needle in needles:
        assert needle in message, message


def test_implicit_prompt_standard_form_is_rejected_saying_why():
    for row in (
        {"chosen": "The sky is blue.", "rejected": "The sky is green."},
        {"chosen": "The sky is blue.", "rejected": _chat(QUESTION, BAD)},
    ):
        message = _error(parse_preference, row)
        assert message.startswith("missing field 'prompt'")
        assert "implicit-prompt standard" in message and "cannot be split" in message


# --- through the loaders, with line numbers --------------------------------------------------------


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_a_file_of_ultrachat_rows_loads_as_instructions(tmp_path):
    rows = [{**ultrachat_row(), "prompt_id": f"u{i}"} for i in range(3)]
    result = load_records(_write_jsonl(tmp_path / "ultrachat.jsonl", rows), "instruction")
    assert [r.id for r in result.records] == ["u0", "u1", "u2"] and not result.problems
    assert all(len(r.messages) == 5 for r in result.records)


def test_a_file_of_trl_standard_rows_loads_as_preferences(tmp_path):
    rows = [{"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(3)]
    result = load_records(_write_jsonl(tmp_path / "standard.jsonl", rows), "preference")
    assert [(r.prompt, r.chosen[-1]["content"]) for r in result.records] == [
        (f"q{i}", f"good {i}") for i in range(3)
    ]


def test_conversational_preferences_load_from_parquet(tmp_path):
    path = tmp_path / "explicit.parquet"
    pq.write_table(pa.Table.from_pylist([explicit_row(), explicit_row()]), path)
    result = load_records(path, "preference")
    assert [r.chosen[-1]["content"] for r in result.records] == [GOOD[1], GOOD[1]]


def test_bad_rows_of_new_shapes_are_reported_with_their_line(tmp_path):
    rows = [
        standard_row(),  # 1
        _broken(standard_row, _set("rejected", 3)),  # 2
        explicit_row(),  # 3
        _broken(explicit_row, _set("chosen", _chat(QUESTION, GOOD))),  # 4
        implicit_row(),  # 5
        _broken(implicit_row, _set("rejected", _chat(("user", "other"), BAD))),  # 6
        {"chosen": "a", "rejected": "b"},  # 7
    ]
    path = _write_jsonl(tmp_path / "preferences.jsonl", rows)
    items = list(iter_checked(path, "preference"))
    problems = {line: item.reason for line, item in items if isinstance(item, Problem)}
    assert set(problems) == {2, 4, 6, 7}
    assert problems[2].startswith("field 'rejected' must be a string")
    assert problems[4].startswith("field 'chosen' must start with the assistant turn")
    assert problems[6].startswith("field 'rejected' must share its prompt turns")
    assert problems[7].startswith("missing field 'prompt'")
    assert [line for line, item in items if isinstance(item, PreferenceRecord)] == [1, 3, 5]
    with pytest.raises(DataError) as info:
        load_records(path, "preference")
    assert "4 invalid preference record(s)" in str(info.value)
    assert "line 4: field 'chosen'" in str(info.value) and "line 6: field 'rejected'" in str(info.value)


def test_bad_chat_instructions_are_reported_with_their_line(tmp_path):
    rows = [
        ultrachat_row(),  # 1
        _broken(ultrachat_row, _set("messages", _chat(("user", "q")))),  # 2
        _broken(ultrachat_row, _delete("prompt_id")),  # 3
    ]
    path = _write_jsonl(tmp_path / "chat.jsonl", rows)
    result = load_records(path, "instruction", on_invalid="skip")
    assert [r.id for r in result.records] == ["9f2c"]
    assert [str(p) for p in result.problems] == [
        "line 2: field 'messages' must end with an assistant turn",
        "line 3: missing field 'id' (or 'prompt_id')",
    ]
