"""Loading records from JSONL, JSON and Parquet under the error/skip policy, with line-numbered problems."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ultramedical.data.loading import DataError, LoadResult, Problem, iter_checked, load_records
from ultramedical.data.schemas import InstructionRecord, PreferenceRecord, UnpairedRecord
from ultramedical.data.sources import BadRow, SourceError, read_rows


def instruction(i: int) -> dict:
    return {
        "id": f"q{i}",
        "conversations": [
            {"from": "human", "value": f"question {i}"},
            {"from": "gpt", "value": f"answer {i}"},
        ],
    }


def preference(i: int) -> dict:
    return {
        "prompt": f"p{i}",
        "chosen": [{"role": "user", "content": f"p{i}"}, {"role": "assistant", "content": "good"}],
        "rejected": [{"role": "user", "content": f"p{i}"}, {"role": "assistant", "content": "bad"}],
    }


def write_lines(path: Path, lines: list[bytes | str | dict]) -> Path:
    chunks = []
    for line in lines:
        if isinstance(line, dict):
            line = json.dumps(line)
        chunks.append(line if isinstance(line, bytes) else line.encode("utf-8"))
    path.write_bytes(b"\n".join(chunks) + b"\n")
    return path


@pytest.fixture
def mixed_jsonl(tmp_path: Path) -> Path:
    """Valid instruction records except on lines 2 (bad JSON), 4 (array), 5 (empty), 7 (not UTF-8) and 8."""
    return write_lines(
        tmp_path / "mixed.jsonl",
        [
            instruction(1),  # 1
            '{"id": "q2", "conversations": [',  # 2
            instruction(3),  # 3
            "[1, 2, 3]",  # 4
            "",  # 5
            instruction(6),  # 6
            b'{"id": "q7", "conversations": "\xff\xfe"}',  # 7
            {"id": "q8"},  # 8
            instruction(9),  # 9
        ],
    )


def test_iter_checked_yields_every_line_with_its_number(mixed_jsonl):
    items = list(iter_checked(mixed_jsonl, "instruction"))
    assert [line for line, _ in items] == list(range(1, 10))
    problems = {line: item.reason for line, item in items if isinstance(item, Problem)}
    assert set(problems) == {2, 4, 5, 7, 8}
    assert problems[2].startswith("bad JSON")
    assert problems[4] == "expected a JSON object, got an array"
    assert problems[5] == "empty line"
    assert problems[7].startswith("not UTF-8") and "byte" in problems[7]
    assert problems[8] == "missing field 'conversations' (or 'messages')"
    valid = [item for _, item in items if isinstance(item, InstructionRecord)]
    assert [r.id for r in valid] == ["q1", "q3", "q6", "q9"]
    for line, item in items:
        if isinstance(item, Problem):
            assert item.line == line and str(item) == f"line {line}: {item.reason}"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('"just a string"', "expected a JSON object, got a string"),
        ("42", "expected a JSON object, got a number"),
        ("4.5", "expected a JSON object, got a number"),
        ("true", "expected a JSON object, got a boolean"),
        ("null", "expected a JSON object, got null"),
        ("   ", "empty line"),
        ("{'single': 'quotes'}", "bad JSON"),
        ('{"a": 1} trailing', "bad JSON"),
        ("1" * 5000, "bad JSON"),  # over Python's int digit limit
        ("[" * 50_000 + "]" * 50_000, "bad JSON"),  # nested past the recursion limit
    ],
)
def test_bad_rows(tmp_path, text, reason):
    path = write_lines(tmp_path / "one.jsonl", [text])
    [(line, row)] = list(read_rows(path))
    assert line == 1 and isinstance(row, BadRow) and row.reason.startswith(reason)


def test_crlf_and_no_trailing_newline(tmp_path):
    path = tmp_path / "crlf.jsonl"
    path.write_bytes(json.dumps(instruction(1)).encode() + b"\r\n" + json.dumps(instruction(2)).encode())
    result = load_records(path, "instruction")
    assert [r.id for r in result.records] == ["q1", "q2"] and not result.problems


def test_load_error_names_every_bad_line(mixed_jsonl):
    with pytest.raises(DataError) as info:
        load_records(mixed_jsonl, "instruction", on_invalid="error")
    message = str(info.value)
    assert str(mixed_jsonl) in message
    assert "5 invalid instruction record(s)" in message
    for line in (2, 4, 5, 7, 8):
        assert f"line {line}:" in message
    for line in (1, 3, 6, 9):
        assert f"line {line}:" not in message
    assert "missing field 'conversations'" in message
    assert "on_invalid: skip" in message


def test_load_error_is_the_default(mixed_jsonl):
    with pytest.raises(DataError):
        load_records(mixed_jsonl, "instruction")


def test_load_skip_counts_problems(mixed_jsonl):
    result = load_records(mixed_jsonl, "instruction", on_invalid="skip")
    assert isinstance(result, LoadResult)
    assert [r.id for r in result.records] == ["q1", "q3", "q6", "q9"]
    assert [p.line for p in result.problems] == [2, 4, 5, 7, 8]
    assert result.total == 9
    assert result.summary() == {"records": 9, "valid": 4, "invalid": 5}
    assert result.source == str(mixed_jsonl)


def test_max_records_keeps_the_first_and_still_checks_the_rest(tmp_path):
    path = write_lines(tmp_path / "many.jsonl", [instruction(i) for i in range(1, 6)] + ["oops"])
    result = load_records(path, "instruction", on_invalid="skip", max_records=2)
    assert [r.id for r in result.records] == ["q1", "q2"]
    assert [p.line for p in result.problems] == [6]
    with pytest.raises(DataError, match="line 6"):
        load_records(path, "instruction", max_records=2)


def test_more_than_ten_problems_are_summarised(tmp_path):
    path = write_lines(tmp_path / "bad.jsonl", [instruction(0)] + ["x"] * 12)
    with pytest.raises(DataError) as info:
        load_records(path, "instruction")
    message = str(info.value)
    assert "12 invalid" in message and "(and 2 more)" in message
    assert "line 11:" in message and "line 12:" not in message


def test_no_valid_records_is_an_error_even_when_skipping(tmp_path):
    path = write_lines(tmp_path / "none.jsonl", ["[]", "{}"])
    with pytest.raises(DataError) as info:
        load_records(path, "instruction", on_invalid="skip")
    assert "no valid instruction records" in str(info.value)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="no valid"):
        load_records(path, "instruction")


def test_unknown_schema(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [instruction(1)])
    with pytest.raises(DataError) as info:
        load_records(path, "conversation")
    assert "unknown schema 'conversation'" in str(info.value) and "instruction" in str(info.value)


def test_missing_file_is_a_source_error(tmp_path):
    with pytest.raises(SourceError) as info:
        load_records(tmp_path / "absent.jsonl", "instruction")
    assert "not found" in str(info.value) and "absent.jsonl" in str(info.value)


def test_directory_with_a_data_suffix_is_a_source_error(tmp_path):
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    with pytest.raises(SourceError, match="not found"):
        load_records(folder, "instruction")


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "records.csv"
    path.write_text("id,text\n")
    with pytest.raises(SourceError) as info:
        load_records(path, "instruction")
    assert "unsupported file type '.csv'" in str(info.value)


def test_json_array(tmp_path):
    path = tmp_path / "records.json"
    path.write_text(json.dumps([preference(1), "nope", preference(2), {"prompt": "x"}]))
    result = load_records(path, "preference", on_invalid="skip")
    assert all(isinstance(r, PreferenceRecord) for r in result.records)
    assert [r.prompt for r in result.records] == ["p1", "p2"]
    assert [(p.line, p.reason) for p in result.problems] == [
        (2, "expected a JSON object, got a string"),
        (4, "missing field 'chosen'"),
    ]
    with pytest.raises(DataError, match=r"line 2: .*line 4: missing field 'chosen'"):
        load_records(path, "preference")


def test_json_object_with_data_array(tmp_path):
    path = tmp_path / "wrapped.json"
    path.write_text(json.dumps({"version": 1, "data": [preference(1)]}))
    assert [r.prompt for r in load_records(path, "preference").records] == ["p1"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"data": 3}', "expected a JSON array of records, got an object"),
        (b'"text"', "got a string"),
        (b"[1, 2", "not a JSON document"),
        (b"[\xff]", "not a JSON document"),
        (b"[" * 50_000, "not a JSON document"),
    ],
)
def test_bad_json_document(tmp_path, content, needle):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(SourceError) as info:
        load_records(path, "preference")
    assert needle in str(info.value) and str(path) in str(info.value)


def test_parquet(tmp_path):
    rows = [
        {"prompt_id": "1", "prompt": "q1", "completion": "a1", "label": True},
        {"prompt_id": "2", "prompt": "q2", "completion": "", "label": False},
        {"prompt_id": "3", "prompt": "q3", "completion": "a3", "label": None},
        {"prompt_id": "4", "prompt": "q4", "completion": "a4", "label": False},
    ]
    path = tmp_path / "unpaired.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    result = load_records(path, "unpaired", on_invalid="skip")
    assert all(isinstance(r, UnpairedRecord) for r in result.records)
    assert [(r.prompt_id, r.label) for r in result.records] == [("1", True), ("4", False)]
    assert [(p.line, p.reason) for p in result.problems] == [
        (2, "field 'completion' is empty"),
        (3, "field 'label' must be a boolean, got NoneType"),
    ]
    with pytest.raises(DataError, match="line 2: .*line 3: "):
        load_records(path, "unpaired")


def test_parquet_nested_conversations(tmp_path):
    path = tmp_path / "instructions.parquet"
    pq.write_table(pa.Table.from_pylist([instruction(1), instruction(2)]), path)
    result = load_records(path, "instruction")
    assert [r.id for r in result.records] == ["q1", "q2"]
    assert result.records[1].messages == ({"role": "user", "content": "question 2"},) + (
        {"role": "assistant", "content": "answer 2"},
    )


def test_damaged_parquet(tmp_path):
    path = tmp_path / "damaged.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(SourceError) as info:
        load_records(path, "instruction")
    assert "cannot read Parquet" in str(info.value)


@pytest.mark.parametrize("depth", [257, 990])
def test_deeply_nested_json_fails_the_same_however_deep_the_caller(tmp_path, depth):
    """Python's parser alone gave up at a depth that moved with the caller's stack: a file ~990 levels deep
    loaded in one call and failed in a deeper one."""
    path = tmp_path / "deep.json"
    path.write_text("[" * depth + "]" * depth, encoding="utf-8")

    def load_from(stack_frames: int):
        return load_from(stack_frames - 1) if stack_frames else load_records(path, "preference")

    for frames in (0, 300):
        with pytest.raises(SourceError, match="nested deeper than 256 levels"):
            load_from(frames)
    lines = tmp_path / "deep.jsonl"
    lines.write_text("[" * depth + "]" * depth + "\n", encoding="utf-8")
    [(line, row)] = list(read_rows(lines))
    assert line == 1 and row == BadRow("bad JSON: nested deeper than 256 levels")
