"""Helpers shared by test modules (imported by name; conftest.py holds the fixtures)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


# The suite runs two test files at once on 2 cores: engines and scorers keep to one thread each there, and
# one scorer starts instead of two (tests/online/test_iterate.py runs two). Its micro-batches are small:
# 4 length groups of 1-2 rows took more time than 2 groups (tiny DPO steps).
SUITE_OVERRIDES = {
    "generation.threads": 1,
    "reward.scorers": 1,
    "reward.threads": 1,
    "trainer.length_buckets": 2,
}


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
        **SUITE_OVERRIDES,
    }
    return load_config(REPO_ROOT / "configs" / "tiny-cpu.yaml", base | overrides)


def processes_in_session(session_id: int) -> list[int]:
    """Pids whose session is `session_id` (everything the controller started, Ray's daemons included)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session_id:  # after "pid (comm)": state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


def kill_session(session_id: int, deadline_s: float = 60) -> None:
    """SIGKILL every process of the session, until none is left (Ray daemons outlive their driver)."""
    deadline = time.monotonic() + deadline_s
    while pids := processes_in_session(session_id):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        assert time.monotonic() < deadline, f"processes {pids} of session {session_id} would not die"
        time.sleep(0.2)


def weights_moved(trained: Path, initial: Path) -> bool:
    """`trained` loads as a policy with `initial`'s parameter names and shapes, and training changed some."""
    import torch

    from ultramedical.models.loading import load_policy

    after, before = (load_policy(path).state_dict() for path in (trained, initial))
    assert after.keys() == before.keys()
    assert all(after[name].shape == before[name].shape for name in after)
    return any(not torch.equal(after[name], before[name]) for name in after)
