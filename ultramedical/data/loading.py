"""Loading validated records from a source, under an explicit policy for bad ones.

`error` stops before any work starts and names every bad line; `skip` drops them and counts them.
Nothing is dropped silently: the result always carries the problems found.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ultramedical.data.schemas import PARSERS, SCHEMAS, RecordError
from ultramedical.data.sources import BadRow, read_rows


class DataError(ValueError):
    """A dataset that cannot be used as asked; the message names the source and the records."""


@dataclass(frozen=True)
class Problem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class LoadResult:
    source: str
    records: list[Any] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.records) + len(self.problems)

    def summary(self) -> dict[str, int]:
        return {"records": self.total, "valid": len(self.records), "invalid": len(self.problems)}


def iter_checked(source: str | Path, schema: str, split: str = "train") -> Iterator[tuple[int, Any]]:
    """(line, record or Problem) for every row of the source."""
    if schema not in PARSERS:
        raise DataError(f"unknown schema '{schema}' (expected one of {', '.join(SCHEMAS)})")
    parse = PARSERS[schema]
    for line, row in read_rows(source, split):
        if isinstance(row, BadRow):
            yield line, Problem(line, row.reason)
            continue
        try:
            yield line, parse(row)
        except RecordError as exc:
            yield line, Problem(line, str(exc))


def load_records(
    source: str | Path,
    schema: str,
    split: str = "train",
    on_invalid: Literal["error", "skip"] = "error",
    max_records: int | None = None,
) -> LoadResult:
    """Every valid record of `source`; bad ones stop the load (`error`) or are counted (`skip`)."""
    result = LoadResult(source=str(source))
    for _, item in iter_checked(source, schema, split):
        if isinstance(item, Problem):
            result.problems.append(item)
        elif max_records is None or len(result.records) < max_records:
            result.records.append(item)
    if result.problems and on_invalid == "error":
        shown = "; ".join(str(p) for p in result.problems[:10])
        more = f" (and {len(result.problems) - 10} more)" if len(result.problems) > 10 else ""
        raise DataError(
            f"{source}: {len(result.problems)} invalid {schema} record(s): {shown}{more}. "
            "Fix them, or set data.on_invalid: skip to drop and count them."
        )
    if not result.records:
        raise DataError(f"{source}: no valid {schema} records")
    return result
