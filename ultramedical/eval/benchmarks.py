"""The four evaluation benchmarks, read from their published schemas into one item type.

Every row read is checked; a malformed one raises `BenchmarkError` naming the source, line, field and
reason, because a silently skipped or mis-keyed item would shift the reported accuracy. A source
that cannot be opened at all raises `SourceError` from `read_rows`.

Schemas (as published on the hub):
  medqa     question, options {"A": ..., "D"/"E": ...}, answer_idx letter; optional answer text,
            meta_info (kept as the subject). A bigbio-style options list [{"key", "value"}] is also read.
  medmcqa   id, question, opa..opd, cop: the correct option as 0-3. Some copies number it 1-4; pass
            medmcqa_one_based=True for those (never guessed: 1-3 are valid in both conventions).
            The official test split is unlabelled (cop = -1); evaluate on the validation split.
  pubmedqa  pubid, question, context {"contexts": [...]}, final_decision yes/no/maybe.
  mmlu      question, subject, choices [...], answer index. Subjects default to the six medical ones;
            one subject can be named directly as "mmlu:anatomy" (or "mmlu_anatomy").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ultramedical.data.prompts import (
    LETTERS,
    PUBMEDQA_LABELS,
    format_mcq_prompt,
    format_pubmedqa_prompt,
    options_from_list,
)
from ultramedical.data.sources import BadRow, read_rows

BENCHMARKS = ("medqa", "medmcqa", "pubmedqa", "mmlu")
MMLU_MEDICAL_SUBJECTS = (
    "anatomy",
    "clinical_knowledge",
    "college_biology",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
)


class BenchmarkError(ValueError):
    """A benchmark row that cannot be used; the message names source, line, field and reason."""

    def __init__(self, source: str, line: int, field: str, reason: str) -> None:
        self.source, self.line, self.field, self.reason = source, line, field, reason
        super().__init__(f"{source}: line {line}: field '{field}': {reason}")


@dataclass(frozen=True)
class BenchmarkItem:
    """One question as the evaluator poses it."""

    id: str
    benchmark: str
    prompt: str  # the user message
    choices: tuple[str, ...]  # option letters, or PUBMEDQA_LABELS
    answer: str  # one of `choices`
    subject: str | None = None


class _Row:
    """Typed field access that raises BenchmarkError with the row's location."""

    def __init__(self, row: dict[str, Any], source: str, line: int) -> None:
        self.row, self.source, self.line = row, source, line

    def fail(self, field: str, reason: str) -> BenchmarkError:
        return BenchmarkError(self.source, self.line, field, reason)

    def get(self, field: str, kind: type | tuple[type, ...], *, required: bool = True) -> Any:
        value = self.row.get(field)
        if value is None:
            if required:
                raise self.fail(field, "missing")
            return None
        # bool is an int subclass, but True as an answer index is a data error, not option B.
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise self.fail(field, f"expected {_names(kind)}, got a boolean")
        if not isinstance(value, kind):
            raise self.fail(field, f"expected {_names(kind)}, got {type(value).__name__}")
        return value

    def text(self, field: str) -> str:
        value = self.get(field, str)
        if not value.strip():
            raise self.fail(field, "empty")
        return value

    def item_id(self, field: str, benchmark: str) -> str:
        value = self.get(field, (str, int), required=False)
        return str(value) if value is not None else f"{benchmark}-{self.line}"


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _check_options(row: _Row, field: str, options: dict[str, Any]) -> dict[str, str]:
    # Parquet stores A-E as one struct, so a 4-option row carries E = None: drop empty slots.
    options = {str(k).strip().upper(): v for k, v in options.items() if v is not None}
    for letter, text in options.items():
        if not isinstance(text, str):
            raise row.fail(field, f"option {letter}: expected str, got {type(text).__name__}")
    keys = sorted(options)
    if len(keys) < 2 or keys != list(LETTERS[: len(keys)]):
        raise row.fail(field, f"option keys must be consecutive letters from A (at least two), got {keys}")
    return {k: options[k] for k in keys}


def _medqa(row: _Row, opts: dict[str, Any]) -> BenchmarkItem:
    question = row.text("question")
    raw = row.get("options", (dict, list))
    if isinstance(raw, list):  # bigbio: [{"key": "A", "value": "..."}]
        if not all(isinstance(o, dict) and "key" in o and "value" in o for o in raw):
            raise row.fail("options", "a list of options must hold {'key', 'value'} objects")
        raw = {o["key"]: o["value"] for o in raw}
    options = _check_options(row, "options", raw)
    answer = row.text("answer_idx").strip().upper()
    if answer not in options:
        raise row.fail("answer_idx", f"'{answer}' is not a key of options {list(options)}")
    stated = row.get("answer", str, required=False)
    # The answer text is redundant; a mismatch means answer_idx points at the wrong option.
    if stated is not None and " ".join(stated.split()).lower() != " ".join(options[answer].split()).lower():
        raise row.fail("answer", f"'{stated}' does not match option {answer} '{options[answer]}'")
    meta = row.row.get("meta_info")
    return BenchmarkItem(
        id=row.item_id("id", "medqa"),
        benchmark="medqa",
        prompt=format_mcq_prompt(question, options),
        choices=tuple(options),
        answer=answer,
        subject=meta if isinstance(meta, str) else None,
    )


def _medmcqa(row: _Row, opts: dict[str, Any]) -> BenchmarkItem:
    question = row.text("question")
    texts = [row.get(field, str) for field in ("opa", "opb", "opc", "opd")]
    cop = row.get("cop", int)
    base = 1 if opts.get("medmcqa_one_based") else 0
    if cop == -1:
        raise row.fail("cop", "-1 means unlabelled (the MedMCQA test split has no answers; use validation)")
    if not base <= cop <= base + 3:
        hint = "" if base else " (a 1-4 copy needs medmcqa_one_based=True)"
        raise row.fail("cop", f"{cop} is out of range {base}-{base + 3}{hint}")
    options = options_from_list(texts)
    return BenchmarkItem(
        id=row.item_id("id", "medmcqa"),
        benchmark="medmcqa",
        prompt=format_mcq_prompt(question, options),
        choices=tuple(options),
        answer=LETTERS[cop - base],
        subject=row.get("subject_name", str, required=False),
    )


def _pubmedqa(row: _Row, opts: dict[str, Any]) -> BenchmarkItem:
    question = row.text("question")
    context = row.get("context", (dict, list))
    contexts = context.get("contexts") if isinstance(context, dict) else context
    if not isinstance(contexts, list) or not contexts or not all(isinstance(c, str) for c in contexts):
        raise row.fail("context", "expected {'contexts': [str, ...]} with at least one string")
    label = row.text("final_decision").strip().lower()
    if label not in PUBMEDQA_LABELS:
        raise row.fail("final_decision", f"'{label}' is not one of {'/'.join(PUBMEDQA_LABELS)}")
    return BenchmarkItem(
        id=row.item_id("pubid", "pubmedqa"),
        benchmark="pubmedqa",
        prompt=format_pubmedqa_prompt(contexts, question),
        choices=PUBMEDQA_LABELS,
        answer=label,
        subject=None,
    )


def _mmlu(row: _Row, opts: dict[str, Any]) -> BenchmarkItem:
    question = row.text("question")
    subject = row.text("subject").strip()
    texts = row.get("choices", list)
    if not 2 <= len(texts) <= len(LETTERS) or not all(isinstance(t, str) for t in texts):
        raise row.fail("choices", f"expected 2-{len(LETTERS)} strings, got {len(texts)} items")
    answer = row.get("answer", int)
    if not 0 <= answer < len(texts):
        raise row.fail("answer", f"index {answer} is out of range 0-{len(texts) - 1}")
    options = options_from_list(texts)
    return BenchmarkItem(
        id=row.item_id("id", "mmlu"),
        benchmark="mmlu",
        prompt=format_mcq_prompt(question, options),
        choices=tuple(options),
        answer=LETTERS[answer],
        subject=subject,
    )


_PARSERS: dict[str, Callable[[_Row, dict[str, Any]], BenchmarkItem]] = {
    "medqa": _medqa,
    "medmcqa": _medmcqa,
    "pubmedqa": _pubmedqa,
    "mmlu": _mmlu,
}


def _resolve(name: str, subjects: Sequence[str] | None) -> tuple[str, tuple[str, ...] | None, bool]:
    """The benchmark, its subject filter, and whether the caller chose that filter explicitly."""
    key = name.strip().lower()
    for sep in (":", "_"):
        head, found, tail = key.partition(sep)
        if head == "mmlu" and found and tail:
            if subjects is not None:
                raise ValueError(f"benchmark '{name}' already names a subject; do not also pass subjects")
            return "mmlu", (tail,), True
    if key not in BENCHMARKS:
        raise ValueError(f"unknown benchmark '{name}'; valid: {', '.join(BENCHMARKS)} (or mmlu:<subject>)")
    if isinstance(subjects, str):  # a bare string would otherwise filter by its characters
        subjects = (subjects,)
    if subjects is None:
        return key, MMLU_MEDICAL_SUBJECTS if key == "mmlu" else None, False
    return key, tuple(subjects), True


def load_benchmark(
    name: str,
    source: str | Path,
    split: str = "test",
    subjects: Sequence[str] | None = None,
    max_items: int | None = None,
    *,
    medmcqa_one_based: bool = False,
) -> list[BenchmarkItem]:
    """Items of benchmark `name` read from `source` (a local file or hub id), in source order.

    `subjects` keeps only items whose subject is listed (MMLU defaults to MMLU_MEDICAL_SUBJECTS; for
    MedQA the subject is meta_info, for MedMCQA subject_name). `max_items` stops after that many
    kept items; rows after it are not read. Duplicate ids are an error, since results are joined by id.
    """
    benchmark, wanted, explicit = _resolve(name, subjects)
    if max_items is not None and max_items < 1:
        raise ValueError(f"max_items must be positive, got {max_items}")
    parse, opts = _PARSERS[benchmark], {"medmcqa_one_based": medmcqa_one_based}
    label = str(source)
    items: list[BenchmarkItem] = []
    seen: dict[str, int] = {}
    present: set[str] = set()
    complete = True
    for line, raw in read_rows(source, split):
        if isinstance(raw, BadRow):
            raise BenchmarkError(label, line, "(row)", raw.reason)
        item = parse(_Row(raw, label, line), opts)
        if item.id in seen:
            field = "pubid" if benchmark == "pubmedqa" else "id"
            raise BenchmarkError(
                label, line, field, f"duplicate id '{item.id}' (first on line {seen[item.id]})"
            )
        seen[item.id] = line
        if item.subject is not None:
            present.add(item.subject)
        if wanted is not None and item.subject not in wanted:
            continue
        items.append(item)
        if max_items is not None and len(items) >= max_items:
            complete = False
            break
    if wanted is not None and complete:
        # A requested subject with no rows is a typo or the wrong file, not an empty result; the
        # default MMLU set only has to match something (a file may hold just some medical subjects).
        missing = [s for s in wanted if s not in present]
        if (missing and explicit) or not items:
            raise ValueError(
                f"{label}: no {benchmark} rows for subjects {missing}; present: {sorted(present) or 'none'}"
            )
    return items
