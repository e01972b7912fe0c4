"""The online controller process SIGKILLed mid-round, on the tiny model: a second invocation with --resume
and one round more redoes the interrupted round and goes on past it, and the run finishes with every prompt
of every round answered once, no pair lost or repeated, each round committed once, and loadable models. (A
trainer worker lost mid-round is in test_iterate.py.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from online_support import assert_run_is_whole, online_arguments
from tiny_support import REPO_ROOT, kill_session

from ultramedical.online.rounds import RoundStore

pytestmark = pytest.mark.slow

ROUNDS = 2
RUN_TIMEOUT_S = 420  # one controller invocation, engine start-up included, on a busy 2-core box


def start_controller(
    artifacts: Path, run_dir: Path, rounds: int, ray_tmp: Path, log: Path, *extra: str
) -> subprocess.Popen:
    """`python -m jobs.iterative_dpo` in its own session, with its own local Ray under `ray_tmp`."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(ray_tmp)}
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.iterative_dpo", *online_arguments(artifacts, run_dir, rounds)]
            + list(extra),
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def ray_tmp():
    """A short temp dir of its own for the controller's local Ray (its unix sockets live under it)."""
    path = Path(tempfile.mkdtemp(prefix="umfault-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def round_two_underway(store: RoundStore) -> bool:
    return store.last_completed() == 1 and (store.round_dir(2) / "completions.jsonl").exists()


def test_controller_killed_mid_round_resume_finishes(artifacts, tmp_path, ray_tmp):
    run_dir = tmp_path / "online"
    store = RoundStore(run_dir)
    controller = start_controller(artifacts, run_dir, ROUNDS, ray_tmp, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not round_two_underway(store):
            assert controller.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "round 2 never started"
            time.sleep(0.1)
        os.killpg(controller.pid, signal.SIGKILL)
        controller.wait(timeout=30)
    finally:
        kill_session(controller.pid)
    assert store.last_completed() == 1  # killed mid-round 2: its debris is on disk, uncommitted
    assert (run_dir / "round-2").exists()
    first_round = (run_dir / "round-1" / "completions.jsonl").read_bytes()

    # One round more than the killed invocation asked for: the resumed run redoes round 2, then goes on.
    resumed = start_controller(artifacts, run_dir, ROUNDS + 1, ray_tmp, tmp_path / "resume.log", "--resume")
    try:
        assert resumed.wait(timeout=RUN_TIMEOUT_S) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    finally:
        kill_session(resumed.pid)
    log = (tmp_path / "resume.log").read_text()
    assert "[online] redoing interrupted round(s) [2]" in log
    assert_run_is_whole(artifacts, run_dir, ROUNDS + 1)
    assert (run_dir / "round-1" / "completions.jsonl").read_bytes() == first_round  # committed: kept


def test_policy_of_an_uncommitted_round_never_becomes_the_resume_point(tmp_path):
    """The window between saving a round's policy and committing it: a crash there must leave
    online/policy at the last completed round (else --resume would train that round twice)."""
    store = RoundStore(tmp_path / "online")

    def stage(k: int) -> None:
        store.staged_policy_dir.mkdir(parents=True, exist_ok=True)
        (store.staged_policy_dir / "weights").write_text(f"round {k}")
        store.mark_staged_policy(k)

    stage(1)
    store.commit({"round": 1})
    assert (store.policy_dir / "weights").read_text() == "round 1" and not store.staged_policy_dir.exists()

    stage(2)  # saved, then the controller dies before committing round 2
    store.discard_incomplete()
    assert (store.policy_dir / "weights").read_text() == "round 1" and not store.staged_policy_dir.exists()

    stage(2)  # committed, then the controller dies before promoting the policy
    store.metrics_path.write_text(store.metrics_path.read_text() + json.dumps({"round": 2}) + "\n")
    store.discard_incomplete()
    assert (store.policy_dir / "weights").read_text() == "round 2"
    assert json.loads((store.policy_dir / "round.json").read_text()) == {"round": 2}
