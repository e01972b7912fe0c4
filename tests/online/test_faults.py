"""Faults in the middle of an online round, on the tiny model: a trainer worker killed while it trains
(the controller redoes the round with a new trainer group) and the controller process SIGKILLed (a
second invocation with --resume redoes the round). Either way the run finishes with every prompt of
every round answered once, no pair lost or repeated, each round committed once, and loadable models."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import ray
import yaml
from tiny_support import REPO_ROOT

import jobs.iterative_dpo as iterative_dpo
from actors.trainer_group import TrainerGroup
from ultramedical.data.loading import load_records
from ultramedical.online.rounds import RoundStore, round_prompts
from ultramedical.rundir import is_complete_model

pytestmark = pytest.mark.slow

ROUNDS, PROMPTS, K = 2, 8, 2
RUN_TIMEOUT_S = 420  # one controller invocation, engine start-up included, on a busy 2-core box


def arguments(artifacts: Path, run_dir: Path) -> list[str]:
    data = artifacts / "data"
    return [
        "--config",
        str(REPO_ROOT / "configs" / "tiny-cpu.yaml"),
        "--rounds",
        str(ROUNDS),
        "--run-dir",
        str(run_dir),
        "--policy",
        str(artifacts / "tiny" / "policy"),
        "--reward-model",
        str(artifacts / "tiny" / "reward"),
        "--data.prompts",
        json.dumps({"path": str(data / "instructions.jsonl")}),
        "--data.eval_benchmarks",
        json.dumps({"medqa": {"path": str(data / "test" / "medqa.jsonl")}}),
        "--online.prompts_per_round",
        str(PROMPTS),
        "--online.completions_per_prompt",
        str(K),
        "--online.eval_items",
        "4",
        "--generation.max_tokens",
        "32",
        "--dpo.lr",
        "1e-3",
        "--trainer.micro_batch_size",
        "2",
        "--generation.cpus_per_engine",
        "0.5",
        "--reward.cpus_per_scorer",
        "0.5",
        "--trainer.cpus_per_worker",
        "0.5",
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_run_is_whole(artifacts: Path, run_dir: Path) -> None:
    """Each round committed once, its prompts answered once, its pairs neither lost nor repeated, and
    every model directory loads."""
    from transformers import AutoModelForCausalLM

    store = RoundStore(run_dir)
    rows = read_jsonl(store.metrics_path)
    assert [row["round"] for row in rows] == list(range(1, ROUNDS + 1))

    seed = yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["seed"]
    records = load_records(artifacts / "data" / "instructions.jsonl", "instruction").records
    for row in rows:
        k = row["round"]
        expected = [records[i].id for i in round_prompts(len(records), k, PROMPTS, seed)]
        answered = read_jsonl(store.round_dir(k) / "completions.jsonl")
        assert sorted(item["prompt_id"] for item in answered) == sorted(expected)
        assert all(len(item["completions"]) == K == len(item["rewards"]) for item in answered)
        pairs = [pair["prompt_id"] for pair in read_jsonl(store.round_dir(k) / "pairs.jsonl")]
        assert len(pairs) == len(set(pairs)) == row["pairs"] > 0
        assert set(pairs) <= set(expected)

    assert sorted(p.name for p in run_dir.glob("round-*")) == [f"round-{k}" for k in range(1, ROUNDS + 1)]
    assert not store.staged_policy_dir.exists()
    assert json.loads((store.policy_dir / "round.json").read_text()) == {"round": ROUNDS}
    models = [store.policy_dir, run_dir / "final", *(run_dir / f"checkpoint-round-{k}" for k in (1, 2))]
    for directory in models:
        assert is_complete_model(directory), directory
        assert AutoModelForCausalLM.from_pretrained(directory).num_parameters() > 1_000_000


# -- a trainer worker killed during `train` ------------------------------------------------------------


class TrainerGroupLosingRankOne(TrainerGroup):
    """The first round-1 `train` call loses rank 1 (ray.kill) while the group is training."""

    kills: list[bool] = []  # per kill: whether `train` was still in flight when it landed
    KILL_AFTER_S = 0.1

    def train(self, round_index: int, items: ray.ObjectRef) -> dict:
        if round_index != 1 or self.kills:
            return super().train(round_index, items)
        training = threading.Event()
        training.set()

        def kill() -> None:
            time.sleep(self.KILL_AFTER_S)
            self.kills.append(training.is_set())
            ray.kill(self.workers[1], no_restart=False)  # no restarts configured: the actor is gone

        killer = threading.Thread(target=kill)
        killer.start()
        try:
            return super().train(round_index, items)
        finally:
            training.clear()
            killer.join()


def test_trainer_worker_killed_mid_round_round_is_redone(
    ray_cluster, artifacts, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(iterative_dpo, "TrainerGroup", TrainerGroupLosingRankOne)
    monkeypatch.setattr(TrainerGroupLosingRankOne, "kills", [])
    run_dir = tmp_path / "online"

    assert iterative_dpo.main(arguments(artifacts, run_dir)) == 0

    assert TrainerGroupLosingRankOne.kills == [True]
    out = capsys.readouterr().out
    assert "[online] round 1 failed" in out and "redoing it (1/2)" in out
    assert "round 2 failed" not in out
    assert_run_is_whole(artifacts, run_dir)
    # Only the redone round's training reached the log: one set of round-1 steps.
    steps = [(line["round"], line["step"]) for line in read_jsonl(run_dir / "train_metrics.jsonl")]
    assert len(steps) == len(set(steps)) and {k for k, _ in steps} == {1, 2}


# -- the controller process SIGKILLed mid-round ----------------------------------------------------------


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


def start_controller(
    artifacts: Path, run_dir: Path, ray_tmp: Path, log: Path, *extra: str
) -> subprocess.Popen:
    """`python -m jobs.iterative_dpo` in its own session, with its own local Ray under `ray_tmp`."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": str(ray_tmp)}
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "jobs.iterative_dpo", *arguments(artifacts, run_dir), *extra],
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
    controller = start_controller(artifacts, run_dir, ray_tmp, tmp_path / "first.log")
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

    resumed = start_controller(artifacts, run_dir, ray_tmp, tmp_path / "resume.log", "--resume")
    try:
        assert resumed.wait(timeout=RUN_TIMEOUT_S) == 0, (tmp_path / "resume.log").read_text()[-3000:]
    finally:
        kill_session(resumed.pid)
    log = (tmp_path / "resume.log").read_text()
    assert "[online] redoing interrupted round(s) [2]" in log
    assert_run_is_whole(artifacts, run_dir)


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
