"""Record helpers of the annotation pipeline: reading prompts, binarizing, atomic JSON/JSONL output."""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ultramedical.data.sample import binarize as shared_binarize
from ultramedical.data.sources import BadRow, read_rows
from ultramedical.io import atomic_write_json, atomic_write_jsonl

LABEL_TYPE = "llm_judge"  # provenance of the pairs: scored and ranked by the configured judge


def prompt_of(record: dict[str, Any]) -> str:
    """The first human turn of an instruction record (or a plain `prompt` field); ValueError if none."""
    if not isinstance(record, dict):
        raise ValueError(f"record is not a JSON object but {type(record).__name__}")
    for turn in record.get("conversations") or []:
        if (
            isinstance(turn, dict)
            and turn.get("from") in ("human", "user")
            and str(turn.get("value", "")).strip()
        ):
            return str(turn["value"])
    prompt = record.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return prompt
    raise ValueError("record has no human turn and no 'prompt' field")


def reference_of(record: dict[str, Any]) -> str:
    """The first gpt turn of an instruction record (or a `reference_answer` field), else ""."""
    for turn in record.get("conversations") or []:
        if isinstance(turn, dict) and turn.get("from") in ("gpt", "assistant"):
            return str(turn.get("value", ""))
    return str(record.get("reference_answer") or "")


def is_multiple_choice(record: dict[str, Any]) -> bool:
    """Multiple-choice items carry their correct option letter in `answer`."""
    return bool(str(record.get("answer") or "").strip())


def record_id(record: dict[str, Any], fallback: int) -> str:
    ident = record.get("id", record.get("prompt_id")) if isinstance(record, dict) else None
    return str(ident) if ident not in (None, "") else f"prompt-{fallback}"


def binarize(annotation: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A preference pair (the project's Zephyr-style `binarize`), labelled as judged by an LLM.

    Raises ValueError when no completion scores strictly below rank 1 (ties, identical answers).
    """
    pair = shared_binarize(annotation, rng)
    return {**pair, "label_type": LABEL_TYPE}


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    atomic_write_jsonl(path, rows)


def write_json_atomic(path: str | Path, value: Any) -> None:
    atomic_write_json(path, value)


def load_records(source: str | Path) -> list[dict[str, Any]]:
    """Rows of a JSONL/JSON/Parquet file (or hub dataset); a bad row raises ValueError naming its line."""
    rows = []
    for number, row in read_rows(source):
        if isinstance(row, BadRow):
            raise ValueError(f"{source}:{number}: {row.reason}")
        rows.append(row)
    return rows
