"""Benchmark loaders: each published schema read from small files, and every malformed row rejected."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ultramedical.data.prompts import PUBMEDQA_LABELS
from ultramedical.eval.benchmarks import (
    BENCHMARKS,
    MMLU_MEDICAL_SUBJECTS,
    BenchmarkError,
    BenchmarkItem,
    load_benchmark,
)

MEDQA = {
    "question": "A 54-year-old man has type 2 diabetes. Which drug is first-line?",
    "options": {"A": "Insulin", "B": "Metformin", "C": "Glipizide", "D": "Acarbose"},
    "answer_idx": "B",
    "answer": "Metformin",
    "meta_info": "step2&3",
}
MEDMCQA = {
    "id": "q-1",
    "question": "Which nerve supplies the deltoid?",
    "opa": "Radial",
    "opb": "Axillary",
    "opc": "Ulnar",
    "opd": "Median",
    "cop": 1,
    "subject_name": "Anatomy",
}
PUBMEDQA = {
    "pubid": 21645374,
    "question": "Do mitochondria play a role in remodelling lace plant leaves?",
    "context": {
        "contexts": ["Programmed cell death occurs.", "Mitochondria were imaged."],
        "labels": ["B", "R"],
    },
    "final_decision": "Yes",
}


def mmlu(subject: str, answer: int = 2, question: str = "Which bone articulates with the atlas?") -> dict:
    return {
        "question": question,
        "subject": subject,
        "choices": ["Axis", "Skull", "Occiput", "C3"],
        "answer": answer,
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def write_json(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(rows))
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_medqa_jsonl(tmp_path: Path) -> None:
    five = {
        **MEDQA,
        "options": {**MEDQA["options"], "E": "Sitagliptin"},
        "answer_idx": "E",
        "answer": "Sitagliptin",
    }
    items = load_benchmark("medqa", write_jsonl(tmp_path / "medqa.jsonl", [MEDQA, five]))
    first = items[0]
    assert first == BenchmarkItem(
        id="medqa-1",
        benchmark="medqa",
        prompt=f"{MEDQA['question']}\n\nA. Insulin\nB. Metformin\nC. Glipizide\nD. Acarbose",
        choices=("A", "B", "C", "D"),
        answer="B",
        subject="step2&3",
    )
    assert items[1].choices == ("A", "B", "C", "D", "E") and items[1].answer == "E"
    assert items[1].prompt.endswith("D. Acarbose\nE. Sitagliptin")
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.answer = "A"  # type: ignore[misc]


def test_medqa_options_out_of_order_are_sorted_and_bigbio_lists_read(tmp_path: Path) -> None:
    shuffled = {**MEDQA, "options": {"C": "Glipizide", "A": "Insulin", "D": "Acarbose", "B": "Metformin"}}
    bigbio = {**MEDQA, "options": [{"key": k, "value": v} for k, v in MEDQA["options"].items()]}
    items = load_benchmark("medqa", write_jsonl(tmp_path / "m.jsonl", [shuffled, bigbio]))
    assert items[0].prompt == items[1].prompt
    assert (
        items[0].prompt.index("A. Insulin")
        < items[0].prompt.index("B. Metformin")
        < items[0].prompt.index("C.")
    )


def test_medqa_parquet_with_mixed_option_counts(tmp_path: Path) -> None:
    # One Parquet struct holds A-E, so the 4-option row reads back with E = None.
    five = {**MEDQA, "options": {**MEDQA["options"], "E": "Sitagliptin"}}
    items = load_benchmark("medqa", write_parquet(tmp_path / "m.parquet", [five, MEDQA]))
    assert [item.choices for item in items] == [tuple("ABCDE"), tuple("ABCD")]
    assert "E." not in items[1].prompt


def test_medmcqa_json_zero_based(tmp_path: Path) -> None:
    rows = [MEDMCQA, {**MEDMCQA, "id": "q-2", "cop": 0}, {**MEDMCQA, "id": "q-3", "cop": 3}]
    items = load_benchmark("medmcqa", write_json(tmp_path / "mcqa.json", rows), split="validation")
    assert [(i.id, i.answer) for i in items] == [("q-1", "B"), ("q-2", "A"), ("q-3", "D")]
    assert items[0].prompt.endswith("A. Radial\nB. Axillary\nC. Ulnar\nD. Median")
    assert items[0].subject == "Anatomy" and items[0].choices == ("A", "B", "C", "D")


def test_medmcqa_one_based_needs_the_keyword(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mcqa.jsonl", [{**MEDMCQA, "cop": 4}])
    with pytest.raises(BenchmarkError, match=r"line 1: field 'cop'.*medmcqa_one_based"):
        load_benchmark("medmcqa", path)
    assert load_benchmark("medmcqa", path, medmcqa_one_based=True)[0].answer == "D"
    zero = write_jsonl(tmp_path / "zero.jsonl", [{**MEDMCQA, "cop": 0}])
    with pytest.raises(BenchmarkError, match="field 'cop'"):
        load_benchmark("medmcqa", zero, medmcqa_one_based=True)


def test_pubmedqa_jsonl_and_parquet(tmp_path: Path) -> None:
    rows = [PUBMEDQA, {**PUBMEDQA, "pubid": 2, "final_decision": "maybe"}]
    for path in (write_jsonl(tmp_path / "p.jsonl", rows), write_parquet(tmp_path / "p.parquet", rows)):
        items = load_benchmark("pubmedqa", path)
        assert [(i.id, i.answer) for i in items] == [("21645374", "yes"), ("2", "maybe")]
        assert items[0].choices == PUBMEDQA_LABELS and items[0].subject is None
        prompt = items[0].prompt
        assert prompt.startswith("Context: Programmed cell death occurs. Mitochondria were imaged.")
        assert PUBMEDQA["question"] in prompt


def mmlu_file(tmp_path: Path) -> Path:
    rows = [mmlu("anatomy"), mmlu("high_school_physics"), mmlu("college_medicine", 0), mmlu("anatomy", 3)]
    return write_jsonl(tmp_path / "mmlu.jsonl", rows)


def test_mmlu_defaults_to_medical_subjects(tmp_path: Path) -> None:
    items = load_benchmark("mmlu", mmlu_file(tmp_path))
    assert [(i.id, i.subject, i.answer) for i in items] == [
        ("mmlu-1", "anatomy", "C"),
        ("mmlu-3", "college_medicine", "A"),
        ("mmlu-4", "anatomy", "D"),
    ]
    assert all(i.subject in MMLU_MEDICAL_SUBJECTS for i in items)
    assert items[0].prompt.endswith("A. Axis\nB. Skull\nC. Occiput\nD. C3")


@pytest.mark.parametrize(
    ("name", "subjects"),
    [("mmlu", ["anatomy"]), ("mmlu", "anatomy"), ("mmlu:anatomy", None), ("MMLU_anatomy", None)],
)
def test_mmlu_subset_by_subject_or_name(tmp_path: Path, name: str, subjects: Any) -> None:
    items = load_benchmark(name, mmlu_file(tmp_path), subjects=subjects)
    assert [i.id for i in items] == ["mmlu-1", "mmlu-4"]


def test_mmlu_non_medical_subject_on_request(tmp_path: Path) -> None:
    items = load_benchmark("mmlu", mmlu_file(tmp_path), subjects=["high_school_physics"])
    assert [i.subject for i in items] == ["high_school_physics"]


def test_mmlu_requested_subject_absent_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no mmlu rows for subjects \['medical_genetics'\]"):
        load_benchmark("mmlu", mmlu_file(tmp_path), subjects=["anatomy", "medical_genetics"])
    with pytest.raises(ValueError, match="already names a subject"):
        load_benchmark("mmlu:anatomy", mmlu_file(tmp_path), subjects=["anatomy"])


def test_max_items(tmp_path: Path) -> None:
    assert [i.id for i in load_benchmark("mmlu", mmlu_file(tmp_path), max_items=2)] == ["mmlu-1", "mmlu-3"]
    with pytest.raises(ValueError, match="max_items"):
        load_benchmark("mmlu", mmlu_file(tmp_path), max_items=0)


def test_unknown_benchmark_lists_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'medqa2'; valid: medqa, medmcqa, pubmedqa, mmlu"):
        load_benchmark("medqa2", mmlu_file(tmp_path))
    assert BENCHMARKS == ("medqa", "medmcqa", "pubmedqa", "mmlu")


def without(row: dict, field: str) -> dict:
    return {k: v for k, v in row.items() if k != field}


# (benchmark, good row for line 1, bad row for line 2, the field the error must name, reason text)
MALFORMED = [
    ("medqa", MEDQA, without(MEDQA, "question"), "question", "missing"),
    ("medqa", MEDQA, {**MEDQA, "question": "  "}, "question", "empty"),
    ("medqa", MEDQA, {**MEDQA, "options": "A. x B. y"}, "options", "expected dict or list"),
    ("medqa", MEDQA, {**MEDQA, "options": {"A": "x", "C": "y"}}, "options", "consecutive"),
    ("medqa", MEDQA, {**MEDQA, "options": {"A": "x", "B": 3}}, "options", "option B"),
    ("medqa", MEDQA, {**MEDQA, "options": [["A", "x"]]}, "options", "key"),
    ("medqa", MEDQA, {**MEDQA, "answer_idx": "E"}, "answer_idx", "not a key of options"),
    ("medqa", MEDQA, {**MEDQA, "answer_idx": 1}, "answer_idx", "expected str"),
    ("medqa", MEDQA, {**MEDQA, "answer": "Insulin"}, "answer", "does not match option B"),
    ("medmcqa", MEDMCQA, without(MEDMCQA, "opc"), "opc", "missing"),
    ("medmcqa", MEDMCQA, {**MEDMCQA, "cop": "1"}, "cop", "expected int"),
    ("medmcqa", MEDMCQA, {**MEDMCQA, "cop": True}, "cop", "boolean"),
    ("medmcqa", MEDMCQA, {**MEDMCQA, "cop": 4}, "cop", "out of range 0-3"),
    ("medmcqa", MEDMCQA, {**MEDMCQA, "cop": -1}, "cop", "unlabelled"),
    ("medmcqa", MEDMCQA, {**MEDMCQA, "id": [1]}, "id", "expected str or int"),
    ("medmcqa", MEDMCQA, MEDMCQA, "id", "duplicate id 'q-1' (first on line 1)"),
    ("pubmedqa", PUBMEDQA, without(PUBMEDQA, "context"), "context", "missing"),
    ("pubmedqa", PUBMEDQA, {**PUBMEDQA, "context": {"contexts": []}}, "context", "at least one"),
    ("pubmedqa", PUBMEDQA, {**PUBMEDQA, "context": {"text": "x"}}, "context", "contexts"),
    ("pubmedqa", PUBMEDQA, {**PUBMEDQA, "final_decision": "probably"}, "final_decision", "yes/no/maybe"),
    ("pubmedqa", PUBMEDQA, {**PUBMEDQA, "pubid": 21645374}, "pubid", "duplicate"),
    ("mmlu", mmlu("anatomy"), without(mmlu("anatomy"), "subject"), "subject", "missing"),
    ("mmlu", mmlu("anatomy"), {**mmlu("anatomy"), "choices": "Axis"}, "choices", "expected list"),
    ("mmlu", mmlu("anatomy"), {**mmlu("anatomy"), "choices": ["Axis"]}, "choices", "2-10 strings"),
    ("mmlu", mmlu("anatomy"), {**mmlu("anatomy"), "choices": ["Axis", None]}, "choices", "strings"),
    ("mmlu", mmlu("anatomy"), mmlu("anatomy", answer=4), "answer", "index 4 is out of range 0-3"),
    ("mmlu", mmlu("anatomy"), mmlu("anatomy", answer=-1), "answer", "out of range"),
    ("mmlu", mmlu("anatomy"), {**mmlu("anatomy"), "answer": "C"}, "answer", "expected int"),
    ("mmlu", mmlu("anatomy"), {**mmlu("anatomy"), "answer": 1.0}, "answer", "expected int"),
]


@pytest.mark.parametrize(("benchmark", "good", "bad", "field", "reason"), MALFORMED)
def test_malformed_row_names_line_and_field(
    tmp_path: Path, benchmark: str, good: dict, bad: dict, field: str, reason: str
) -> None:
    path = write_jsonl(tmp_path / f"{benchmark}.jsonl", [good, bad])
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(benchmark, path)
    message = str(info.value)
    assert message.startswith(f"{path}: line 2: field '{field}': ")
    assert reason in message
    assert (info.value.line, info.value.field) == (2, field)


@pytest.mark.parametrize(
    ("line", "reason"),
    [("{not json", "bad JSON"), ("[1, 2]", "expected a JSON object"), ("", "empty line")],
)
def test_undecodable_row_names_line(tmp_path: Path, line: str, reason: str) -> None:
    path = write_jsonl(tmp_path / "medqa.jsonl", [MEDQA, line])
    with pytest.raises(BenchmarkError, match=rf"line 2: field '\(row\)': {reason}"):
        load_benchmark("medqa", path)


def test_json_array_non_object_row(tmp_path: Path) -> None:
    path = tmp_path / "mcqa.json"
    path.write_text(json.dumps([MEDMCQA, "oops"]))
    with pytest.raises(BenchmarkError, match="line 2: field '\\(row\\)': expected a JSON object"):
        load_benchmark("medmcqa", path)
