"""Shared fixtures: one real local Ray instance per test session, and the embedded sample corpus and
tiny model built once into a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    # More logical CPUs than cores, so engines, scorers and two trainer workers fit at once on 2 cores.
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=True)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ultramedical.data.sample import generate_sample_corpus
    from ultramedical.models.tiny import init_tiny_models

    root = tmp_path_factory.mktemp("artifacts")
    generate_sample_corpus(root / "data")
    init_tiny_models(root / "data", root / "tiny")
    return root


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
