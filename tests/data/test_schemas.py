"""Record schemas: valid rows of each kind parse; every broken rule raises RecordError naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ultramedical.data.schemas import (
    PARSERS,
    SCHEMAS,
    AnnotationRecord,
    InstructionRecord,
    PreferenceRecord,
    RecordError,
    UnpairedRecord,
    parse_annotation,
    parse_instruction,
    parse_preference,
    parse_unpaired,
)


def instruction_row() -> dict[str, Any]:
    return {
        "id": "q-1",
        "type": "mcq",
        "conversations": [
            {"from": "system", "value": "You are a careful clinician."},
            {"from": "human", "value": "Which vitamin deficiency causes scurvy?"},
            {"from": "gpt", "value": "Vitamin C."},
            {"from": "human", "value": "And rickets?"},
            {"from": "gpt", "value": "Vitamin D."},
        ],
        "answer": "C",
        "score": 7,
    }


def preference_row() -> dict[str, Any]:
    return {
        "prompt_id": "p-1",
        "prompt": "What does insulin do?",
        "chosen": [
            {"role": "user", "content": "What does insulin do?"},
            {"role": "assistant", "content": "It lowers blood glucose."},
        ],
        "rejected": [
            {"role": "user", "content": "What does insulin do?"},
            {"role": "assistant", "content": "It raises blood glucose."},
        ],
        "label_type": "gpt4",
        "metadata": {"chosen": {"score": 9}, "rejected": {"score": 3.5}},
    }


def annotation_row() -> dict[str, Any]:
    return {
        "prompt_id": "a-1",
        "prompt": "Name a loop diuretic.",
        "completions": [
            {"model": "m1", "text": "Furosemide.", "score": 9, "evaluation": "correct", "rank": 1},
            {"model": "m2", "text": "Spironolactone.", "score": 2.5, "evaluation": "wrong", "rank": 3},
            {"model": "m3", "text": "Bumetanide, I think.", "score": 7, "rank": 2},
        ],
        "reference_answer": "Furosemide",
    }


def unpaired_row() -> dict[str, Any]:
    return {"prompt_id": "u-1", "prompt": "Is aspirin an NSAID?", "completion": "Yes.", "label": True}


def test_schema_names_match_parsers():
    assert set(SCHEMAS) == set(PARSERS)


def test_valid_instruction_multi_turn():
    record = parse_instruction(instruction_row())
    assert isinstance(record, InstructionRecord)
    assert record.id == "q-1" and record.type == "mcq" and record.answer == "C"
    assert record.score == "7"  # numbers are kept as text
    assert [m["role"] for m in record.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert record.messages[1] == {"role": "user", "content": "Which vitamin deficiency causes scurvy?"}
    assert record.prompt == "Which vitamin deficiency causes scurvy?"
    assert record.reference == "Vitamin C."


def test_instruction_numeric_id_and_optional_fields():
    row = {"id": 12, "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    record = parse_instruction(row)
    assert record.id == "12" and record.type == "" and record.answer == "" and record.score == ""


def test_valid_preference():
    record = parse_preference(preference_row())
    assert isinstance(record, PreferenceRecord)
    assert record.prompt == "What does insulin do?"
    assert record.chosen[-1] == {"role": "assistant", "content": "It lowers blood glucose."}
    assert record.rejected[-1]["content"] == "It raises blood glucose."
    assert record.score("chosen") == 9.0 and record.score("rejected") == 3.5
    assert record.label_type == "gpt4" and record.prompt_id == "p-1"


def test_preference_without_prompt_reads_it_from_the_shared_turns():
    """No `prompt` is TRL's implicit-prompt form, no longer an error: the shared user turn is the prompt."""
    row = preference_row()
    del row["prompt"]
    record = parse_preference(row)
    assert record == parse_preference(preference_row())
    assert record.prompt == "What does insulin do?" and record.score("chosen") == 9.0


def test_preference_errors_of_ultramedical_rows_are_unchanged():
    for change, message in [
        ({"prompt": 7}, "field 'prompt' must be a string, got int"),
        ({"prompt": None}, "field 'prompt' must be a string, got NoneType"),
        ({"chosen": {"role": "user"}}, "field 'chosen' must be a list of messages, got dict"),
        ({"rejected": 3}, "field 'rejected' must be a list of messages, got int"),
    ]:
        with pytest.raises(RecordError) as info:
            parse_preference({**preference_row(), **change})
        assert str(info.value) == message
    with pytest.raises(RecordError, match="^missing field 'prompt'$"):
        parse_preference({"id": "q1", "conversations": []})  # an instruction row checked as a preference


@pytest.mark.parametrize("metadata", [None, {}, {"chosen": 5}, {"chosen": {"score": True}}, {"chosen": []}])
def test_preference_score_absent_or_unusable(metadata):
    row = preference_row()
    row["metadata"] = metadata
    assert parse_preference(row).score("chosen") is None


def test_valid_annotation():
    record = parse_annotation(annotation_row())
    assert isinstance(record, AnnotationRecord)
    assert [c.rank for c in record.completions] == [1, 3, 2]
    assert record.completions[1].score == 2.5 and isinstance(record.completions[0].score, float)
    assert record.completions[2].evaluation == ""
    assert record.reference_answer == "Furosemide"


def test_valid_unpaired_string_and_messages():
    record = parse_unpaired(unpaired_row())
    assert isinstance(record, UnpairedRecord)
    assert record.prompt == ({"role": "user", "content": "Is aspirin an NSAID?"},)
    assert record.label is True and record.completion == "Yes."
    row = unpaired_row()
    row["prompt"] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    row["label"] = False
    record = parse_unpaired(row)
    assert [m["role"] for m in record.prompt] == ["system", "user"] and record.label is False


def _params(cases):
    return [pytest.param(mutate, needles, id=name) for name, mutate, needles in cases]


def _broken(make, mutate):
    row = copy.deepcopy(make())
    mutate(row)
    return row


def _delete(key):
    return lambda row: row.pop(key)


def _set(key, value):
    return lambda row: row.__setitem__(key, value)


def _turns(key, turns):
    return lambda row: row.__setitem__(key, turns)


H, G = "human", "gpt"


def _sg(*pairs):
    return [{"from": r, "value": v} for r, v in pairs]


def _chat(*pairs):
    return [{"role": r, "content": v} for r, v in pairs]


INSTRUCTION_CASES = [
    ("missing id", _delete("id"), ["missing field 'id'"]),
    ("empty id", _set("id", ""), ["missing field 'id'"]),
    ("id wrong type", _set("id", ["x"]), ["field 'id'", "string", "list"]),
    ("missing conversations", _delete("conversations"), ["missing field 'conversations'"]),
    ("conversations wrong type", _set("conversations", "hi"), ["field 'conversations'", "str"]),
    ("conversations empty", _set("conversations", []), ["field 'conversations'", "no turns"]),
    ("turn not an object", _turns("conversations", ["hi", "there"]), ["conversations[0]", "object"]),
    (
        "turn missing value",
        _turns("conversations", [{"from": H}, {"from": G, "value": "a"}]),
        ["conversations[0]", "'value'"],
    ),
    (
        "turn missing from",
        _turns("conversations", [{"from": H, "value": "q"}, {"value": "a"}]),
        ["conversations[1]", "'from'"],
    ),
    ("unknown role", _turns("conversations", _sg((H, "q"), ("bot", "a"))), ["conversations[1]", "'bot'"]),
    (
        "chat-style role in sharegpt",
        _turns("conversations", _sg(("user", "q"), (G, "a"))),
        ["conversations[0]", "unknown role 'user'"],
    ),
    (
        "role wrong type",
        _turns("conversations", [{"from": ["human"], "value": "q"}, {"from": G, "value": "a"}]),
        ["conversations[0]", "unknown role"],
    ),
    (
        "value wrong type",
        _turns("conversations", [{"from": H, "value": 3}, {"from": G, "value": "a"}]),
        ["conversations[0].value", "string", "int"],
    ),
    ("empty turn", _turns("conversations", _sg((H, "q"), (G, "  \n"))), ["conversations[1]", "empty turn"]),
    (
        "two user turns",
        _turns("conversations", _sg((H, "q"), (H, "q2"), (G, "a"))),
        ["field 'conversations'", "two user turns in a row"],
    ),
    (
        "two assistant turns",
        _turns("conversations", _sg((H, "q"), (G, "a"), (G, "a2"))),
        ["field 'conversations'", "two assistant turns in a row"],
    ),
    (
        "starts with assistant",
        _turns("conversations", _sg((G, "a"), (H, "q"), (G, "a"))),
        ["field 'conversations'", "start with a user turn"],
    ),
    (
        "only system",
        _turns("conversations", _sg(("system", "s"))),
        ["field 'conversations'", "start with a user turn"],
    ),
    (
        "ends with user",
        _turns("conversations", _sg((H, "q"), (G, "a"), (H, "q2"))),
        ["field 'conversations'", "end with an assistant turn"],
    ),
    ("answer wrong type", _set("answer", {"a": 1}), ["field 'answer'", "string", "dict"]),
    ("type wrong type", _set("type", True), ["field 'type'", "bool"]),
]


@pytest.mark.parametrize(("mutate", "needles"), _params(INSTRUCTION_CASES))
def test_instruction_failures(mutate, needles):
    with pytest.raises(RecordError) as info:
        parse_instruction(_broken(instruction_row, mutate))
    for needle in needles:
        assert needle in str(info.value)


PREFERENCE_CASES = [
    ("prompt wrong type", _set("prompt", 5), ["field 'prompt'", "a string", "int"]),
    ("prompt bool", _set("prompt", True), ["field 'prompt'", "bool"]),
    ("empty prompt", _set("prompt", " "), ["field 'prompt'", "empty"]),
    ("missing chosen", _delete("chosen"), ["missing field 'chosen'"]),
    ("missing rejected", _delete("rejected"), ["missing field 'rejected'"]),
    ("chosen wrong type", _set("chosen", {"role": "user"}), ["field 'chosen'", "dict"]),
    ("rejected empty", _set("rejected", []), ["field 'rejected'", "no turns"]),
    (
        "unknown role",
        _turns("chosen", _chat(("user", "q"), ("gpt", "a"))),
        ["chosen[1]", "unknown role 'gpt'"],
    ),
    (
        "empty turn",
        _turns("rejected", _chat(("user", "q"), ("assistant", ""))),
        ["rejected[1]", "empty turn"],
    ),
    (
        "missing content",
        _turns("chosen", [{"role": "user"}, {"role": "assistant", "content": "a"}]),
        ["chosen[0]", "'content'"],
    ),
    (
        "content wrong type",
        _turns("chosen", [{"role": "user", "content": None}, {"role": "assistant", "content": "a"}]),
        ["chosen[0].content", "NoneType"],
    ),
    (
        "two user turns",
        _turns("chosen", _chat(("user", "q"), ("user", "q"), ("assistant", "a"))),
        ["field 'chosen'", "two user turns in a row"],
    ),
    (
        "not ending with assistant",
        _turns("rejected", _chat(("user", "q"), ("assistant", "a"), ("user", "q2"))),
        ["field 'rejected'", "end with an assistant turn"],
    ),
    (
        "identical",
        lambda row: row.__setitem__("rejected", copy.deepcopy(row["chosen"])),
        ["'chosen' and 'rejected' are identical"],
    ),
    ("metadata wrong type", _set("metadata", [1]), ["field 'metadata'", "object", "list"]),
    ("label_type wrong type", _set("label_type", []), ["field 'label_type'"]),
]


@pytest.mark.parametrize(("mutate", "needles"), _params(PREFERENCE_CASES))
def test_preference_failures(mutate, needles):
    with pytest.raises(RecordError) as info:
        parse_preference(_broken(preference_row, mutate))
    for needle in needles:
        assert needle in str(info.value)


def _completion(i, **change):
    def mutate(row):
        row["completions"][i].update(change)
        for key, value in change.items():
            if value is _DELETE:
                del row["completions"][i][key]

    return mutate


_DELETE = object()

ANNOTATION_CASES = [
    ("missing prompt", _delete("prompt"), ["missing field 'prompt'"]),
    ("empty prompt", _set("prompt", "   "), ["field 'prompt'", "empty"]),
    ("missing completions", _delete("completions"), ["missing field 'completions'"]),
    ("completions wrong type", _set("completions", "x"), ["field 'completions'", "str"]),
    (
        "one completion",
        lambda row: row.__setitem__("completions", row["completions"][:1]),
        ["field 'completions'", "at least 2"],
    ),
    (
        "completion not object",
        lambda row: row["completions"].__setitem__(1, "x"),
        ["completions[1]", "object"],
    ),
    ("completion missing text", _completion(0, text=_DELETE), ["completions[0]", "missing field 'text'"]),
    ("score wrong type", _completion(2, score="high"), ["completions[2]", "field 'score'", "number"]),
    ("score bool", _completion(2, score=True), ["completions[2]", "field 'score'", "bool"]),
    ("rank wrong type", _completion(1, rank=2.0), ["completions[1]", "field 'rank'", "integer"]),
    ("rank bool", _completion(0, rank=True), ["completions[0]", "field 'rank'", "bool"]),
    ("duplicate ranks", _completion(1, rank=1), ["ranks must be 1..3 each once", "[1, 1, 2]"]),
    ("rank out of range", _completion(1, rank=4), ["ranks must be 1..3", "[1, 2, 4]"]),
    ("rank zero-based", lambda row: [c.update(rank=c["rank"] - 1) for c in row["completions"]], ["ranks"]),
    ("evaluation wrong type", _completion(0, evaluation=[1]), ["completions[0]", "field 'evaluation'"]),
]


@pytest.mark.parametrize(("mutate", "needles"), _params(ANNOTATION_CASES))
def test_annotation_failures(mutate, needles):
    with pytest.raises(RecordError) as info:
        parse_annotation(_broken(annotation_row, mutate))
    for needle in needles:
        assert needle in str(info.value)


UNPAIRED_CASES = [
    ("missing prompt", _delete("prompt"), ["missing field 'prompt'"]),
    ("empty prompt", _set("prompt", ""), ["field 'prompt'", "empty"]),
    ("prompt wrong type", _set("prompt", 3), ["field 'prompt'", "a string or a list of messages", "int"]),
    ("prompt no turns", _set("prompt", []), ["field 'prompt'", "no turns"]),
    ("prompt unknown role", _set("prompt", _chat(("human", "q"))), ["prompt[0]", "unknown role 'human'"]),
    ("missing completion", _delete("completion"), ["missing field 'completion'"]),
    ("empty completion", _set("completion", "\t"), ["field 'completion'", "empty"]),
    ("completion wrong type", _set("completion", ["a"]), ["field 'completion'", "list"]),
    ("missing label", _delete("label"), ["missing field 'label'"]),
    ("label as int", _set("label", 1), ["field 'label'", "boolean", "int"]),
    ("label as string", _set("label", "true"), ["field 'label'", "boolean", "str"]),
]


@pytest.mark.parametrize(("mutate", "needles"), _params(UNPAIRED_CASES))
def test_unpaired_failures(mutate, needles):
    with pytest.raises(RecordError) as info:
        parse_unpaired(_broken(unpaired_row, mutate))
    for needle in needles:
        assert needle in str(info.value)


def test_records_are_frozen():
    record = parse_instruction(instruction_row())
    with pytest.raises(AttributeError):
        record.id = "other"  # type: ignore[misc]
