"""Read a run directory (see ultramedical.rundir) into plain data for the report.

Nothing here raises on a partial or damaged run: a missing file is recorded in `RunData.missing`, and
a line that is not a JSON object (or lacks its key, such as `step`) is skipped and counted in
`RunData.skipped` under the file's path relative to the run directory.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ultramedical.rundir import STAGES, RunDir

PIPELINE = ("base", "sft", "dpo", "kto")
BENCHMARKS = ("medqa", "medmcqa", "pubmedqa", "mmlu")
MODES = ("greedy", "sc", "bon")
RM_SUBSETS = ("easy", "hard", "length", "overall")
_ROUND_DIR = re.compile(r"^round-(\d+)$")
_ONLINE_LABEL = re.compile(r"^online-round-(\d+)$")


@dataclass
class StageData:
    """One offline stage: its metrics (one row per step, the last logged line for a step wins)."""

    name: str
    metrics: list[dict[str, Any]] = field(default_factory=list)
    data_stats: dict[str, Any] | None = None


@dataclass
class RoundData:
    """One online round's raw files: every completion reward and every pair margin."""

    round: int
    rewards: list[float] = field(default_factory=list)
    margins: list[float] = field(default_factory=list)
    prompts: int = 0
    pairs: int = 0
    has_completions: bool = False
    has_pairs: bool = False


@dataclass
class RunData:
    root: Path
    name: str
    config_text: str | None = None
    stages: dict[str, StageData] = field(default_factory=dict)
    online_metrics: list[dict[str, Any]] = field(default_factory=list)
    # online/heldout.jsonl: held-out accuracy of the starting policy (round 0), before any round trains
    heldout_before: dict[str, Any] | None = None
    rounds: list[RoundData] = field(default_factory=list)
    eval_results: list[dict[str, Any]] = field(default_factory=list)
    rm_results: list[dict[str, Any]] = field(default_factory=list)
    # (model, benchmark, mode) -> per-item records (id, subject, correct, prediction), for the rows of
    # eval_results whose eval/<model>-<benchmark>-<mode>.jsonl is there and agrees with them
    eval_records: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def has_online(self) -> bool:
        return bool(self.online_metrics or self.rounds)

    def eval_models(self) -> list[str]:
        return pipeline_order([r["model"] for r in self.eval_results])

    def model_notes(self) -> dict[str, str]:
        """What a row is, where its results.jsonl lines say (an ablation's changed setting), by model."""
        return {r["model"]: r["note"] for r in self.eval_results if isinstance(r.get("note"), str)}

    def rm_models(self) -> list[str]:
        return pipeline_order([r["model"] for r in self.rm_results])


def finite(value: Any) -> float | None:
    """`value` as a float when it is a finite number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def pipeline_order(labels: list[str]) -> list[str]:
    """Distinct labels in pipeline order: base, sft, dpo, kto, online-round-1..N, then the rest as seen."""
    seen = list(dict.fromkeys(labels))
    fixed = [label for label in PIPELINE if label in seen]
    online = sorted((m for m in seen if _ONLINE_LABEL.match(m)), key=lambda m: int(m.rsplit("-", 1)[1]))
    rest = [m for m in seen if m not in fixed and m not in online]
    return fixed + online + rest


def ordered(present: list[str], known: tuple[str, ...]) -> list[str]:
    """Known names in their canonical order, then unknown ones in first-seen order."""
    seen = list(dict.fromkeys(present))
    return [k for k in known if k in seen] + [s for s in seen if s not in known]


class _Reader:
    """Lenient JSON/JSONL reading that counts what it skips, keyed by path relative to the run."""

    def __init__(self, data: RunData):
        self.data = data

    def _skip(self, path: Path, count: int = 1) -> None:
        rel = path.relative_to(self.data.root).as_posix()
        self.data.skipped[rel] = self.data.skipped.get(rel, 0) + count

    def jsonl(
        self, path: Path, required: tuple[str, ...] = (), numeric: str | None = None
    ) -> list[dict[str, Any]]:
        """Object lines having every `required` key (and a finite number under `numeric`)."""
        rows: list[dict[str, Any]] = []
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return rows
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if (
                not isinstance(row, dict)
                or any(key not in row for key in required)
                or (numeric is not None and finite(row.get(numeric)) is None)
            ):
                self._skip(path)
                continue
            rows.append(row)
        return rows

    def json_object(self, path: Path) -> dict[str, Any] | None:
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None
        except json.JSONDecodeError:
            self._skip(path)
            return None
        if not isinstance(value, dict):
            self._skip(path)
            return None
        return value


def last_wins(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """One row per numeric `key` value (the last line wins: a resumed run repeats steps), sorted by it."""
    by_key: dict[float, dict[str, Any]] = {}
    for row in rows:
        value = finite(row.get(key))
        if value is not None:
            by_key[value] = row
    return [by_key[k] for k in sorted(by_key)]


def _last_per(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The last row per identity; the identifying fields become strings (labels, even if written as 1)."""
    latest: dict[tuple[str, ...], dict[str, Any]] = {}
    for row in rows:
        row.update({k: str(row[k]) for k in keys})
        ident = tuple(row[k] for k in keys)
        latest.pop(ident, None)  # re-insert so order follows the latest write
        latest[ident] = row
    return list(latest.values())


def _floats(values: Any) -> list[float]:
    if not isinstance(values, list):
        return []
    return [v for v in (finite(x) for x in values) if v is not None]


def _collect_stage(reader: _Reader, run: RunDir, stage: str) -> StageData | None:
    metrics_path = run.metrics(stage)
    stats_path = run.stage(stage) / "data_stats.json"
    if not metrics_path.is_file() and not stats_path.is_file():
        return None
    rows = reader.jsonl(metrics_path, numeric="step")
    return StageData(stage, last_wins(rows, "step"), reader.json_object(stats_path))


def _collect_round(reader: _Reader, directory: Path, k: int) -> RoundData:
    data = RoundData(k)
    completions = directory / "completions.jsonl"
    if completions.is_file():
        data.has_completions = True
        for row in reader.jsonl(completions):
            data.prompts += 1
            data.rewards.extend(_floats(row["rewards"]))
    pairs = directory / "pairs.jsonl"
    if pairs.is_file():
        data.has_pairs = True
        for row in reader.jsonl(pairs):
            data.pairs += 1
            margin = finite(row.get("margin"))
            if margin is None:
                chosen, rejected = finite(row.get("chosen_reward")), finite(row.get("rejected_reward"))
                margin = chosen - rejected if chosen is not None and rejected is not None else None
            if margin is not None:
                data.margins.append(margin)
    return data


def _collect_online(reader: _Reader, run: RunDir, data: RunData) -> None:
    metrics_path = run.online / "metrics.jsonl"
    if metrics_path.is_file():
        data.online_metrics = last_wins(reader.jsonl(metrics_path, numeric="round"), "round")
    heldout_path = run.online / "heldout.jsonl"
    if heldout_path.is_file():
        before = [r for r in reader.jsonl(heldout_path, numeric="round") if r["round"] == 0]
        data.heldout_before = before[-1] if before else None
    dirs = {}
    if run.online.is_dir():
        for child in run.online.iterdir():
            match = _ROUND_DIR.match(child.name)
            if match and child.is_dir():
                dirs[int(match.group(1))] = child
    data.rounds = [_collect_round(reader, dirs[k], k) for k in sorted(dirs)]
    if not data.online_metrics and not data.rounds:
        data.missing.append("online rounds (no online/metrics.jsonl and no online/round-*/)")
    elif not data.online_metrics:
        data.missing.append("online round metrics (online/metrics.jsonl)")


RECORD_FIELDS = ("id", "subject", "correct", "prediction")


def _collect_eval_records(reader: _Reader, run: RunDir, data: RunData) -> None:
    """Per-item records of each evaluated (model, benchmark, mode), trimmed to what the report uses (the
    completions would hold every sampled text in memory). A file whose item count or correct count
    disagrees with its results.jsonl line is stale or damaged: it is left out and reported."""
    for result in data.eval_results:
        key = (result["model"], result["benchmark"], result["mode"])
        path = run.eval_records(*key)
        if not path.is_file():
            continue
        rows = []
        for row in reader.jsonl(path, required=("id", "correct")):
            if isinstance(row["correct"], bool):
                rows.append({k: row.get(k) for k in RECORD_FIELDS})
            else:
                reader._skip(path)
        n, correct = finite(result.get("n")), finite(result.get("correct"))
        hits = sum(r["correct"] for r in rows)
        rel = path.relative_to(run.root).as_posix()
        if n is not None and n != len(rows):
            problem = f"{len(rows)} usable records, results.jsonl says n={n:.0f}"
        elif correct is not None and correct != hits:
            problem = f"{hits} correct, results.jsonl says {correct:.0f}"
        else:
            problem = "" if rows else "no usable records"
        if problem:
            data.missing.append(f"per-item records matching eval/results.jsonl ({rel}: {problem})")
        else:
            data.eval_records[key] = rows


def collect_run(run_dir: str | Path) -> RunData:
    """Everything the report shows, read leniently from `run_dir`."""
    run = RunDir(Path(run_dir).absolute())
    data = RunData(root=run.root, name=run.root.name)
    reader = _Reader(data)
    try:
        data.config_text = run.config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        data.missing.append("config (config.yaml)")
    for stage in STAGES:
        stage_data = _collect_stage(reader, run, stage)
        if stage_data is not None:
            data.stages[stage] = stage_data
    if not data.stages:
        data.missing.append("training stages (no sft/, rm/, dpo/ or kto/ metrics)")
    _collect_online(reader, run, data)

    results = run.eval / "results.jsonl"
    if results.is_file():
        rows = reader.jsonl(results, required=("model", "benchmark", "mode"), numeric="accuracy")
        data.eval_results = _last_per(rows, ("model", "benchmark", "mode"))
        _collect_eval_records(reader, run, data)
    if not data.eval_results:
        data.missing.append("evaluation (eval/results.jsonl)")
    rm_path = run.eval / "rm.jsonl"
    if rm_path.is_file():
        rows = reader.jsonl(rm_path, required=("model", "subset"), numeric="accuracy")
        data.rm_results = _last_per(rows, ("model", "subset"))
    if not data.rm_results:
        data.missing.append("reward-model evaluation (eval/rm.jsonl)")
    return data
