"""Table cells as the report writes them: accuracies as percentages, numbers, and a dash for none.

A block is a tuple the renderers read: ("h", level, text), ("p", text), ("note", text), ("list", items),
("config", text), ("table", headers, rows) or ("figure", ReportFigure).
"""

from __future__ import annotations

from typing import Any

from ultramedical.reporting.collect import finite

BENCHMARK_NAMES = {"medqa": "MedQA", "medmcqa": "MedMCQA", "pubmedqa": "PubMedQA", "mmlu": "MMLU"}
DASH = "-"
Block = tuple[Any, ...]


def pct(value: Any) -> str:
    number = finite(value)
    return DASH if number is None else f"{100 * number:.1f}"


def pct_ci(accuracy: Any, ci: Any) -> str:
    """'41.3 [36.0, 46.8]', or just '41.3' without a usable interval."""
    text = pct(accuracy)
    usable = isinstance(ci, list | tuple) and len(ci) == 2 and all(finite(c) is not None for c in ci)
    if text != DASH and usable:
        text += f" [{pct(ci[0])}, {pct(ci[1])}]"
    return text


def num(value: Any, spec: str = ".4g") -> str:
    number = finite(value)
    if number is None:
        return DASH if value is None or isinstance(value, float) else str(value)
    return format(number, spec)


def p_value(p: float) -> str:
    """'p=0.021', or 'p<0.001' below that."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"
