"""Where records come from: local JSONL, JSON or Parquet files, or a hub dataset id.

`read_rows` yields (line_number, row) pairs. A row that is not a JSON object is yielded as a
`BadRow` carrying the reason, so validators can report it with its line number instead of stopping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")
MAX_JSON_DEPTH = 256  # records nest a few levels deep
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class SourceError(ValueError):
    """A data source that cannot be opened or read at all."""


@dataclass(frozen=True)
class BadRow:
    """A row that could not be decoded; `reason` says why."""

    reason: str


def is_local(source: str | Path) -> bool:
    path = Path(source)
    return path.exists() or path.suffix in LOCAL_SUFFIXES or str(source).startswith((".", "/"))


def read_rows(source: str | Path, split: str = "train") -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    """Rows of a local file (by suffix) or of a hub dataset split (`id` or `id:config`), numbered from 1."""
    if is_local(source):
        path = Path(source)
        if not path.is_file():
            raise SourceError(f"data file not found: {path}")
        if path.suffix == ".jsonl":
            yield from _read_jsonl(path)
        elif path.suffix == ".json":
            yield from _read_json(path)
        elif path.suffix == ".parquet":
            yield from _read_parquet(path)
        else:
            raise SourceError(
                f"{path}: unsupported file type '{path.suffix}' (use .jsonl, .json or .parquet)"
            )
        return
    yield from _read_hub(str(source), split)


def _read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, BadRow(f"not UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            if not text.strip():
                yield number, BadRow("empty line")
                continue
            try:
                row = _loads(text)
            except json.JSONDecodeError as exc:
                yield number, BadRow(f"bad JSON: {exc.msg} at column {exc.colno}")
                continue
            except (ValueError, RecursionError) as exc:  # an integer past Python's digit limit; deep nesting
                yield number, BadRow(f"bad JSON: {_json_failure(exc)}")
                continue
            yield (
                number,
                row if isinstance(row, dict) else BadRow(f"expected a JSON object, got {_kind(row)}"),
            )


def _read_json(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    try:
        data = _loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, digit limit, depth
        raise SourceError(f"{path}: not a JSON document: {_json_failure(exc)}") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise SourceError(f"{path}: expected a JSON array of records, got {_kind(data)}")
    for number, row in enumerate(data, start=1):
        yield number, row if isinstance(row, dict) else BadRow(f"expected a JSON object, got {_kind(row)}")


def _read_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise SourceError(f"{path}: cannot read Parquet: {exc}") from None
    yield from enumerate(table.to_pylist(), start=1)


def _read_hub(dataset_id: str, split: str) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
    """`owner/name` or `owner/name:config` (e.g. `qiaojin/PubMedQA:pqa_labeled`)."""
    import datasets

    path, _, config_name = dataset_id.partition(":")
    try:
        dataset = datasets.load_dataset(path, config_name or None, split=split)
    except Exception as exc:  # network, auth and missing-split errors all mean the same to the user
        raise SourceError(
            f"cannot load hub dataset '{dataset_id}' split '{split}': {type(exc).__name__}: {exc}"
        ) from None
    for number, row in enumerate(dataset, start=1):
        yield number, dict(row)


def _loads(text: str) -> Any:
    """`json.loads` with a nesting limit of its own. Python's parser gives up at a depth that depends on
    how deep the caller's stack already is, so a file nested ~1000 levels loaded in one call and failed in
    another; past MAX_JSON_DEPTH it now fails in every call."""
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        depth = deepest = 0
        for bracket in re.findall(r"[\[\]{}]", _JSON_STRING.sub('""', text)):
            depth += 1 if bracket in "[{" else -1
            deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(text)


def _json_failure(exc: BaseException) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }.get(type(value), "null" if value is None else type(value).__name__)
