"""The report's evaluation section: the results in the paper's shape, every result with its interval, and
the reward model's accuracy per subset.

The paper-shaped tables, one per decoding mode (greedy, self-consistency, best-of-N): models as rows in
pipeline order; MedQA, MedMCQA, PubMedQA and MMLU per medical subject as columns, then their average.
Every row other than SFT gives, per column, its difference from SFT in points and the two-sided exact
McNemar p-value on the same items, matched by id in the per-item records
(eval/<model>-<benchmark>-<mode>.jsonl); where the two did not answer the same items the cell says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ultramedical.eval.benchmarks import MMLU_MEDICAL_SUBJECTS
from ultramedical.eval.stats import UnpairedItems, paired_comparison
from ultramedical.reporting.cells import BENCHMARK_NAMES, DASH, Block, p_value, pct, pct_ci
from ultramedical.reporting.collect import (
    BENCHMARKS,
    MODES,
    RM_SUBSETS,
    RunData,
    finite,
    ordered,
    pipeline_order,
)

REFERENCE = "sft"
MODE_TITLES = {
    "greedy": "Greedy decoding",
    "sc": "Self-consistency (sc): the majority answer of N samples",
    "bon": "Best-of-N (bon): the answer of the sample the reward model scores highest",
}
Records = list[dict[str, Any]]


@dataclass(frozen=True)
class Column:
    """A benchmark, or one subject of it (MMLU's medical subjects)."""

    benchmark: str
    subject: str | None = None

    @property
    def header(self) -> str:
        name = BENCHMARK_NAMES.get(self.benchmark, self.benchmark)
        return name if self.subject is None else f"{name}: {self.subject.replace('_', ' ')}"


class ModeTable:
    """One mode's accuracies per (model, column), from results.jsonl and the per-item records."""

    def __init__(self, data: RunData, mode: str):
        self.data, self.mode = data, mode
        results = [r for r in data.eval_results if r["mode"] == mode]
        self.results = {(r["model"], r["benchmark"]): r for r in results}
        self.models = pipeline_order([r["model"] for r in results])
        self.columns: list[Column] = []
        for bench in ordered([r["benchmark"] for r in results], BENCHMARKS):
            subjects = self._subjects(bench) if bench == "mmlu" else []
            self.columns += [Column(bench, s) for s in subjects] or [Column(bench)]

    def _subjects(self, benchmark: str) -> list[str]:
        present = [
            r["subject"]
            for (_, bench, mode), rows in self.data.eval_records.items()
            if bench == benchmark and mode == self.mode
            for r in rows
            if isinstance(r.get("subject"), str)
        ]
        return ordered(present, MMLU_MEDICAL_SUBJECTS)

    def records(self, model: str, column: Column) -> Records | None:
        rows = self.data.eval_records.get((model, column.benchmark, self.mode))
        if rows is not None and column.subject is not None:
            rows = [r for r in rows if r.get("subject") == column.subject]
        return rows or None

    def accuracy(self, model: str, column: Column) -> float | None:
        if column.subject is None:
            return finite(self.results.get((model, column.benchmark), {}).get("accuracy"))
        rows = self.records(model, column)
        return sum(r["correct"] for r in rows) / len(rows) if rows else None

    def average(self, model: str) -> float | None:
        """The unweighted mean over the columns, as in the paper; None unless the model has them all."""
        values = [self.accuracy(model, c) for c in self.columns]
        return None if any(v is None for v in values) else sum(values) / len(values)

    def versus_reference(self, model: str, column: Column) -> str:
        """'+3.0, p=0.041': the difference from SFT and the paired test, or why there is no test."""
        delta = f"{100 * (self.accuracy(model, column) - self.accuracy(REFERENCE, column)):+.1f}"
        mine, reference = self.records(model, column), self.records(REFERENCE, column)
        if mine is None or reference is None:
            return f"{delta}, no item records"
        try:
            return f"{delta}, {p_value(paired_comparison(reference, mine)['p_value'])}"
        except UnpairedItems:
            return f"{delta}, different items"
        except ValueError:  # duplicate ids
            return f"{delta}, bad item records"

    def block(self) -> Block:
        with_average = len(self.columns) > 1
        reference_average = self.average(REFERENCE)
        compared = [c for c in self.columns if self.accuracy(REFERENCE, c) is not None]
        body = []
        for model in self.models:
            line = [model]
            for column in self.columns:
                accuracy = self.accuracy(model, column)
                text = pct(accuracy)
                if accuracy is not None and model != REFERENCE and column in compared:
                    text += f" ({self.versus_reference(model, column)})"
                line.append(text)
            if with_average:
                average = self.average(model)
                text = pct(average)
                if average is not None and model != REFERENCE and reference_average is not None:
                    text += f" ({100 * (average - reference_average):+.1f})"
                line.append(text)
            body.append(line)
        headers = ["Model", *(c.header for c in self.columns), *(["Average"] if with_average else [])]
        return ("table", headers, body)


def paper_tables(data: RunData) -> list[Block]:
    blocks: list[Block] = []
    for mode in ordered([r["mode"] for r in data.eval_results], MODES):
        table = ModeTable(data, mode)
        blocks += [("h", 3, MODE_TITLES.get(mode, mode)), table.block()]
    return blocks


def interval_table(data: RunData) -> Block:
    """Rows: models in pipeline order; columns: benchmark x mode, each accuracy with its 95% interval."""
    rows = data.eval_results
    cells = {(r["model"], r["benchmark"], r["mode"]): r for r in rows}
    columns = [
        (bench, mode)
        for bench in ordered([r["benchmark"] for r in rows], BENCHMARKS)
        for mode in ordered([r["mode"] for r in rows], MODES)
        if any(key[1:] == (bench, mode) for key in cells)
    ]
    headers = ["Model"] + [f"{BENCHMARK_NAMES.get(b, b)} ({m})" for b, m in columns]
    body = []
    for model in data.eval_models():
        line = [model]
        for bench, mode in columns:
            row = cells.get((model, bench, mode))
            line.append(pct_ci(row.get("accuracy"), row.get("ci95")) if row else DASH)
        body.append(line)
    return ("table", headers, body)


def rm_table(data: RunData) -> Block:
    subsets = ordered([r["subset"] for r in data.rm_results], RM_SUBSETS)
    subsets = [s for s in subsets if s != "overall"] + (["overall"] if "overall" in subsets else [])
    cells = {(r["model"], r["subset"]): r for r in data.rm_results}
    body = []
    for model in data.rm_models():
        line = [model]
        for subset in subsets:
            row = cells.get((model, subset))
            n = finite(row.get("n")) if row else None
            line.append(DASH if row is None else pct(row["accuracy"]) + (f" (n={n:.0f})" if n else ""))
        body.append(line)
    return ("table", ["Reward model"] + subsets, body)


def evaluation_blocks(data: RunData) -> list[Block]:
    """The section's blocks after its heading; what is missing is noted by the caller."""
    blocks: list[Block] = []
    if data.eval_results:
        has_reference = any(r["model"] == REFERENCE for r in data.eval_results)
        blocks.append(("p", "Accuracy in %. " + (
            f"Other rows give their difference from {REFERENCE} in points and the two-sided exact McNemar "
            "p-value on the same items (matched by id); 'different items' where the two did not answer "
            "the same items, 'no item records' where the per-item records are missing. The average is "
            "over the columns." if has_reference else f"No {REFERENCE} row, so no differences are shown."
        )))  # fmt: skip
        notes = data.model_notes()
        blocks += [("p", f"{model}: {note}") for model, note in notes.items()]
        blocks += paper_tables(data)
        blocks += [
            ("h", 3, "All results with 95% intervals"),
            ("p", "Accuracy in % with the 95% Wilson interval, per benchmark and mode."),
            interval_table(data),
        ]
    if data.rm_results:
        blocks += [("h", 3, "Reward model accuracy per subset"), rm_table(data)]
    return blocks
