"""Helpers shared by test modules (imported by name; conftest.py holds the fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def tiny_config(artifacts: Path, runs_root: Path, **overrides: Any) -> Any:
    """The tiny-cpu preset pointed at the session's artifacts, with small data for fast tests."""
    from ultramedical.config import load_config

    data = artifacts / "data"
    base = {
        "runs_root": str(runs_root),
        "artifacts_dir": str(artifacts),
        "model.policy": str(artifacts / "tiny" / "policy"),
        "model.max_seq_len": 256,
        "data.instructions": [{"path": str(data / "instructions.jsonl"), "max_records": 96}],
        "data.preferences": {"path": str(data / "preferences.jsonl"), "max_records": 96},
        "data.reward_test": {"path": str(data / "reward_test.jsonl")},
        "data.prompts": {"path": str(data / "instructions.jsonl")},
        "data.eval_benchmarks": {"medqa": {"path": str(data / "test" / "medqa.jsonl")}},
        "trainer.micro_batch_size": 4,
        "trainer.log_every_steps": 1,
    }
    return load_config(REPO_ROOT / "configs" / "tiny-cpu.yaml", base | overrides)
