"""Fuzzing the input boundary: data loaders and the config reader on hostile input.

The property everywhere: the only exceptions are the project's own clear error types (ConfigError,
DataError, SourceError, RecordError) with a non-empty message, and every Problem has a reason; never an
unhandled TypeError, KeyError, AttributeError, OverflowError, RecursionError, ...
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ultramedical.config import Config, ConfigError, config_from_dict, load_config, parse_overrides
from ultramedical.data.loading import DataError, Problem, iter_checked, load_records
from ultramedical.data.schemas import (
    PARSERS,
    SCHEMAS,
    AnnotationRecord,
    InstructionRecord,
    PreferenceRecord,
    RecordError,
    UnpairedRecord,
)
from ultramedical.data.sources import SourceError

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "tiny-cpu.yaml"
RECORD_TYPES = (InstructionRecord, PreferenceRecord, AnnotationRecord, UnpairedRecord)

HUGE = [
    "x" * 1_000_000,
    "é肝\U0001f9ea " * 100_000,  # ~1 MB of multi-byte text
    "\x00" * 1000,
    " \t\n" * 1000,
]


def _huge(index: int) -> str:
    return HUGE[index]


# Indices, not the strings themselves, so hypothesis never prints a megabyte.
huge_text = st.integers(min_value=0, max_value=len(HUGE) - 1).map(_huge)
# Integers past float range, kept under Python's 4300-digit str() limit.
huge_ints = st.builds(lambda n, sign: sign * 10**n + 7, st.integers(300, 1000), st.sampled_from([1, -1]))
numbers = st.one_of(st.integers(), huge_ints, st.floats(allow_nan=True, allow_infinity=True))

# Text with the awkward parts of Unicode: lone surrogates (escaped by json.dumps), NUL, controls,
# right-to-left marks, combining characters, astral planes, line and paragraph separators.
small_text = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(codec=None, categories=None), max_size=30),
    st.lists(
        st.sampled_from(
            ["\ud800", "\udfff", "\x00", "\u202e", "\u0301", "\U0001f600", "\u2028", "\ufeff", "\r"]
        ),
        min_size=1,
        max_size=5,
    ).map("".join),
)
weird_text = small_text | huge_text
scalars = st.one_of(st.none(), st.booleans(), numbers, weird_text)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(weird_text, children, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def workdir() -> Path:
    with tempfile.TemporaryDirectory(prefix="fuzz-") as folder:
        yield Path(folder)


def check_loading(path: Path, schema: str) -> None:
    """Every way of reading `path` either works or fails with a project error that says something."""
    try:
        items = list(iter_checked(path, schema))
    except (SourceError, DataError) as exc:
        assert str(exc).strip()
        return
    lines = [line for line, _ in items]
    assert lines == list(range(1, len(items) + 1))
    for line, item in items:
        if isinstance(item, Problem):
            assert item.line == line
            assert isinstance(item.reason, str) and item.reason.strip()
            assert str(item).startswith(f"line {line}: ")
        else:
            assert isinstance(item, RECORD_TYPES)
    problems = sum(isinstance(item, Problem) for _, item in items)
    policy = "error" if problems else "skip"  # "error" with problems must raise; "skip" must not
    try:
        result = load_records(path, schema, on_invalid=policy)
    except DataError as exc:
        assert str(exc).strip()
        assert policy == "error" or problems == len(items), "skip only fails when nothing is valid"
    else:
        assert policy == "skip" and result.summary() == {
            "records": len(items),
            "valid": len(items) - problems,
            "invalid": problems,
        }


def check_parse(schema: str, row: Any) -> Any:
    try:
        record = PARSERS[schema](row)
    except RecordError as exc:
        assert str(exc).strip()
        return None
    assert isinstance(record, RECORD_TYPES)
    if isinstance(record, PreferenceRecord):
        for side in ("chosen", "rejected"):
            score = record.score(side)
            assert score is None or isinstance(score, float)
    return record


@FUZZ
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".jsonl", ".json", ".parquet"]))
def test_random_bytes(workdir, data, suffix):
    path = workdir / f"bytes{suffix}"
    path.write_bytes(data)
    for schema in SCHEMAS:
        check_loading(path, schema)


@FUZZ
@given(lines=st.lists(st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")), max_size=20))
def test_random_byte_lines(workdir, lines):
    path = workdir / "lines.jsonl"
    path.write_bytes(b"\n".join(lines))
    for schema in SCHEMAS:
        check_loading(path, schema)


@FUZZ
@given(values=st.lists(json_values, min_size=1, max_size=6), schema=st.sampled_from(SCHEMAS))
def test_random_json_values(workdir, values, schema):
    jsonl = workdir / "values.jsonl"
    jsonl.write_text("\n".join(json.dumps(v) for v in values) + "\n", encoding="utf-8")
    array = workdir / "values.json"
    array.write_text(json.dumps(values), encoding="utf-8")
    wrapped = workdir / "wrapped.json"
    wrapped.write_text(json.dumps({"data": values}), encoding="utf-8")
    single = workdir / "single.json"
    single.write_text(json.dumps(values[0]), encoding="utf-8")
    for path in (jsonl, array, wrapped, single):
        check_loading(path, schema)
    for value in values:
        if isinstance(value, dict):
            check_parse(schema, value)


@FUZZ
@given(depth=st.integers(min_value=1, max_value=200_000), digits=st.integers(min_value=1, max_value=20_000))
def test_pathological_json(workdir, depth, digits):
    path = workdir / "deep.jsonl"
    path.write_text(
        "[" * depth
        + "]" * depth
        + "\n"
        + '{"id": '
        + "7" * digits
        + "}\n"
        + '{"a":' * depth
        + "1"
        + "}" * depth,
        encoding="utf-8",
    )
    for schema in ("instruction", "annotation"):
        check_loading(path, schema)
    array = workdir / "deep.json"
    array.write_text("[" * depth + "]" * depth, encoding="utf-8")
    check_loading(array, "preference")


def _valid(schema: str) -> dict:
    if schema == "instruction":
        return {
            "id": "q1",
            "type": "mcq",
            "answer": "B",
            "score": "8",
            "conversations": [
                {"from": "system", "value": "Be careful."},
                {"from": "human", "value": "Which drug?"},
                {"from": "gpt", "value": "Aspirin."},
                {"from": "human", "value": "Why?"},
                {"from": "gpt", "value": "It inhibits COX."},
            ],
        }
    if schema == "preference":
        return {
            "prompt_id": "p1",
            "prompt": "Which drug?",
            "chosen": [
                {"role": "user", "content": "Which drug?"},
                {"role": "assistant", "content": "Aspirin."},
            ],
            "rejected": [
                {"role": "user", "content": "Which drug?"},
                {"role": "assistant", "content": "Sugar."},
            ],
            "label_type": "judge",
            "metadata": {"chosen": {"score": 9}, "rejected": {"score": 2.5}},
        }
    if schema == "annotation":
        return {
            "prompt_id": "a1",
            "prompt": "Which drug?",
            "completions": [
                {"model": "m1", "text": "Aspirin.", "score": 9, "evaluation": "right", "rank": 1},
                {"model": "m2", "text": "Sugar.", "score": 1.5, "evaluation": "wrong", "rank": 2},
            ],
            "reference_answer": "Aspirin",
        }
    return {"prompt_id": "u1", "prompt": "Which drug?", "completion": "Aspirin.", "label": True}


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(row: dict, data: st.DataObject) -> dict:
    row = copy.deepcopy(row)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        paths = _paths(row)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = row
        for step in path[:-1]:
            parent = parent[step]
        actions = ["delete", "replace", "number", "huge", "weird", "wrap", "add"]
        action = data.draw(st.sampled_from(actions), label="action")
        key = path[-1]
        if action == "delete":
            del parent[key]
        elif action == "replace":
            parent[key] = data.draw(json_values, label="value")
        elif action == "number":
            parent[key] = data.draw(numbers, label="number")
        elif action == "huge":
            parent[key] = data.draw(huge_text, label="huge")
        elif action == "weird":
            parent[key] = data.draw(weird_text, label="text")
        elif action == "wrap":
            parent[key] = [parent[key]] if data.draw(st.booleans()) else {"value": parent[key]}
        elif isinstance(parent, dict):
            parent[data.draw(weird_text, label="new key")] = data.draw(json_values, label="new value")
        else:
            parent.append(data.draw(json_values, label="new item"))
    return row


@FUZZ
@given(schema=st.sampled_from(SCHEMAS), data=st.data())
def test_mutated_records(workdir, schema, data):
    rows = [_mutate(_valid(schema), data) for _ in range(data.draw(st.integers(1, 3), label="rows"))]
    for row in rows:
        check_parse(schema, row)
    jsonl = workdir / f"mutated-{schema}.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in [_valid(schema), *rows]), encoding="utf-8")
    check_loading(jsonl, schema)
    array = workdir / f"mutated-{schema}.json"
    array.write_text(json.dumps(rows), encoding="utf-8")
    check_loading(array, schema)


_DELETE = object()
HOSTILE = [
    0,
    -1,
    2**63,
    1.5,
    math.nan,
    math.inf,
    -math.inf,
    10**400,
    -(10**400),
    True,
    None,
    "",
    " ",
    "\x00",
    "\ud800",
    [],
    [None],
    {},
    {"": None},
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_every_field_with_every_hostile_value(workdir, schema):
    """Not random: each field of a valid record, in turn, set to each hostile value (and deleted)."""
    rows = []
    for path in _paths(_valid(schema)):
        for value in [*HOSTILE, _DELETE]:
            row = _valid(schema)
            parent = row
            for step in path[:-1]:
                parent = parent[step]
            if value is _DELETE:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            check_parse(schema, row)
            rows.append(row)
    path = workdir / f"hostile-{schema}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    check_loading(path, schema)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=st.sampled_from(SCHEMAS), data=st.data())
def test_mutated_records_in_parquet(workdir, schema, data):
    rows = [_valid(schema), _mutate(_valid(schema), data)]
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        assume(False)  # pyarrow cannot even store these rows; nothing of ours to test
    path = workdir / f"mutated-{schema}.parquet"
    try:
        pq.write_table(table, path)
    except (pa.ArrowException, OverflowError, UnicodeEncodeError):
        assume(False)
    check_loading(path, schema)


text_values = st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=40).filter(
    lambda s: s.strip() == s and s.strip()
)


@FUZZ
@given(question=text_values, answer=text_values, follow_up=text_values, second=text_values)
def test_valid_records_with_any_text_parse_and_keep_it(workdir, question, answer, follow_up, second):
    row = {
        "id": question,
        "conversations": [
            {"from": "human", "value": question},
            {"from": "gpt", "value": answer},
            {"from": "human", "value": follow_up},
            {"from": "gpt", "value": second},
        ],
    }
    path = workdir / "text.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    result = load_records(path, "instruction")
    assert len(result.records) == 2 and not result.problems
    for record in result.records:
        assert [m["content"] for m in record.messages] == [question, answer, follow_up, second]
        assert record.id == question


# --- configuration -------------------------------------------------------------------------------

PRESET = yaml.safe_load(TINY.read_text(encoding="utf-8"))
SECTIONS = sorted(Config.model_fields)


def _all_keys() -> list[str]:
    keys = set(SECTIONS)
    for value in PRESET.values():
        if isinstance(value, dict):
            keys.update(value)
    return sorted(keys)


KNOWN_KEYS = _all_keys()
# No megabyte strings on the config side: PyYAML is pure Python and slow on them.
key_text = st.one_of(st.sampled_from(KNOWN_KEYS), small_text, st.just("x" * 2_000))
dotted_keys = st.lists(key_text, min_size=1, max_size=4).map(".".join) | st.sampled_from(
    ["trainer.zero_stage", "sft.lr", "data.instructions", "model.policy", "model", "trainer", "..", ""]
)
config_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, small_text),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(key_text, children, max_size=4),
    max_leaves=10,
)


def check_config(call) -> None:
    try:
        config = call()
    except ConfigError as exc:
        assert str(exc).strip()
    else:
        assert isinstance(config, Config)


@FUZZ
@given(tree=st.dictionaries(key_text, config_values, max_size=6))
def test_config_from_random_trees(tree):
    check_config(lambda: config_from_dict(tree))
    check_config(lambda: config_from_dict({**PRESET, **tree}))


@FUZZ
@given(data=st.data())
def test_config_from_mutated_preset(data):
    tree = copy.deepcopy(PRESET)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        path = data.draw(st.sampled_from(_paths(tree)), label="path")
        parent = tree
        for step in path[:-1]:
            parent = parent[step]
        action = data.draw(st.sampled_from(["delete", "replace", "add"]), label="action")
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(config_values, label="value")
        elif isinstance(parent, dict):
            parent[data.draw(key_text, label="key")] = data.draw(config_values, label="value")
        if not _paths(tree):
            break
    check_config(lambda: config_from_dict(tree))


@FUZZ
@given(overrides=st.dictionaries(dotted_keys, config_values, max_size=5))
def test_config_with_random_override_dicts(overrides):
    check_config(lambda: config_from_dict(PRESET, overrides))


argument = st.one_of(
    small_text,
    st.builds(lambda k: f"--{k}", dotted_keys),
    st.builds(lambda k, v: f"--{k}={v}", dotted_keys, small_text),
    st.sampled_from(
        ["--", "-", "--=", "--trainer.zero_stage", "3", "[1, 2", "{a: [", "!!python/object:os.system", "1e-5"]
    ),
    st.integers(min_value=4000, max_value=6000).map(lambda n: "9" * n),  # past the int digit limit
)


@FUZZ
@given(args=st.lists(argument, max_size=8))
def test_parse_overrides_on_random_arguments(args):
    try:
        overrides = parse_overrides(args)
    except ConfigError as exc:
        assert str(exc).strip()
        return
    assert all(isinstance(k, str) for k in overrides)
    check_config(lambda: config_from_dict(PRESET, overrides))
    check_config(lambda: config_from_dict(PRESET, args))


@FUZZ
@given(
    content=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(lambda s: s.encode("utf-8", "surrogatepass")),
        st.lists(
            st.sampled_from(
                [
                    "model:",
                    "  policy: p",
                    "trainer:",
                    "  zero_stage: 3",
                    "- x",
                    "[",
                    "{",
                    ":",
                    "&a",
                    "*a",
                    "!!binary",
                    "\t",
                    "? [1]",
                    "  : 2",
                    "---",
                    "...",
                    "%YAML 1.1",
                ]
            ),
            max_size=12,
        ).map(lambda ls: "\n".join(ls).encode()),
    )
)
def test_load_config_on_random_files(workdir, content):
    path = workdir / "fuzz.yaml"
    path.write_bytes(content)
    check_config(lambda: load_config(path))
    check_config(lambda: load_config(path, ["--model.policy", "p"]))


@FUZZ
@given(tree=st.dictionaries(key_text, config_values, max_size=5))
def test_load_config_on_random_yaml_trees(workdir, tree):
    try:
        text = yaml.safe_dump({**PRESET, **tree}, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        assume(False)
    path = workdir / "tree.yaml"
    try:
        path.write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        assume(False)
    check_config(lambda: load_config(path))


def test_huge_scores_are_rejected_or_ignored():
    """A regression the hostile-value sweep caught: ints past float range raised OverflowError."""
    row = _valid("annotation")
    row["completions"][0]["score"] = 10**400
    with pytest.raises(RecordError, match=r"completions\[0\].*score"):
        PARSERS["annotation"](row)
    preference = _valid("preference")
    preference["metadata"]["chosen"]["score"] = 10**400
    record = PARSERS["preference"](preference)
    assert record.score("chosen") is None and record.score("rejected") == 2.5
