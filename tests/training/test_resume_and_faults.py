"""Offline stages under faults: a Ray Train worker SIGKILLed mid-run, --resume across invocations, and
bad input rejected with a clear error before any training starts."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_support import tiny_config, weights_moved

from actors.train_stage import run_stage
from ultramedical.data.loading import DataError
from ultramedical.rundir import RunDir, is_complete_model

pytestmark = pytest.mark.slow

STEPS, EVERY = 6, 2  # every run here: 6 SFT steps, a Ray checkpoint every 2
KILL_DEADLINE_S = 300


def sft_config(artifacts: Path, root: Path, **overrides):
    settings = {"sft.lr": 3e-3, "sft.max_steps": STEPS, "trainer.save_every_steps": EVERY}
    return tiny_config(artifacts, root, **(settings | overrides))


def metric_lines(run: RunDir) -> list[dict]:
    """Rank 0's metrics.jsonl; a line cut by a killed worker would not decode, and is left out."""
    lines = []
    for text in run.metrics("sft").read_text().splitlines():
        try:
            lines.append(json.loads(text))
        except json.JSONDecodeError:
            continue
    return lines


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


@pytest.fixture(scope="module")
def uninterrupted(ray_cluster, artifacts, tmp_path_factory) -> RunDir:
    """The same 6-step run with no fault: what the faulted runs must reproduce."""
    config = sft_config(artifacts, tmp_path_factory.mktemp("uninterrupted"))
    run_stage(config, "sft")
    return RunDir.of(config.runs_root, config.name)


# -- a Ray Train worker killed mid-run -----------------------------------------------------------------


def alive_train_worker_pids() -> list[int]:
    """Pids of this session's live Ray Train workers (read from the GCS; no dashboard needed)."""
    from ray._private.state import actors

    return [
        actor["Pid"]
        for actor in actors().values()
        if actor["ActorClassName"] == "RayTrainWorker" and actor["State"] == "ALIVE"
    ]


def ranks_of_running_attempt() -> dict[int, int]:
    """World rank -> pid for the workers of the one Ray Train attempt in progress, as Ray Train's state
    actor records them (RAY_TRAIN_ENABLE_STATE_TRACKING=1: what the dashboard's Train view shows)."""
    import ray
    from ray.train.v2._internal.state.state_actor import get_state_actor

    actor = get_state_actor()
    if actor is None:
        return {}
    runs = ray.get(actor.get_train_run_attempts.remote(), timeout=30)
    running = [
        a for attempts in runs.values() for a in attempts.values() if a.end_time_ns is None and a.workers
    ]
    return {worker.world_rank: worker.pid for worker in running[0].workers} if len(running) == 1 else {}


def registered_checkpoint_steps(stage_dir: Path) -> list[int]:
    """Steps of the checkpoints Ray Train's controller has registered (what a restart resumes from)."""
    try:
        snapshot = json.loads((stage_dir / "ray" / "checkpoint_manager_snapshot.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [result["metrics"]["step"] for result in snapshot.get("checkpoint_results", [])]


class RankOneKiller(threading.Thread):
    """Once a checkpoint is registered and rank 0 has logged a step past it, SIGKILL rank 1's process."""

    def __init__(self, run: RunDir):
        super().__init__(daemon=True)
        self.stage_dir = run.stage("sft")
        self.run_dir = run
        self.killed_pid: int | None = None
        self.logged_at_kill = 0
        self.error: str | None = None

    def run(self) -> None:
        deadline = time.monotonic() + KILL_DEADLINE_S
        while time.monotonic() < deadline:
            time.sleep(0.1)
            saved = registered_checkpoint_steps(self.stage_dir)
            if not saved or not self.run_dir.metrics("sft").exists():
                continue
            logged = max((line["step"] for line in metric_lines(self.run_dir)), default=0)
            if logged <= max(saved):
                continue
            if logged >= STEPS:
                self.error = f"training reached step {logged} before a worker could be killed"
                return
            victim = ranks_of_running_attempt().get(1)
            if victim is None or victim not in alive_train_worker_pids():
                continue
            os.kill(victim, signal.SIGKILL)
            self.killed_pid, self.logged_at_kill = victim, logged
            return
        self.error = "no worker was killed before the deadline"


def test_worker_killed_mid_run_resumes_from_checkpoint(
    ray_cluster, artifacts, tmp_path, uninterrupted, monkeypatch
):
    monkeypatch.setenv("RAY_TRAIN_ENABLE_STATE_TRACKING", "1")  # read by TorchTrainer.fit in this process
    config = sft_config(artifacts, tmp_path, **{"trainer.max_failures": 1})
    run = RunDir.of(config.runs_root, config.name)
    killer = RankOneKiller(run)
    killer.start()
    final = run_stage(config, "sft")  # Ray Train restarts the worker group from the latest checkpoint
    killer.join(timeout=5)
    assert killer.error is None and killer.killed_pid is not None
    assert killer.killed_pid not in alive_train_worker_pids()

    assert is_complete_model(final) and weights_moved(final, config.model.policy)
    steps = [line["step"] for line in metric_lines(run)]
    restarts = [i for i in range(1, len(steps)) if steps[i] <= steps[i - 1]]
    assert len(restarts) == 1, steps
    cut = restarts[0]
    resumed_from = steps[cut] - 1
    # Before the kill: 1, 2, ... as usual. After it: from the checkpoint's step + 1 (never from 1) to the end.
    assert steps[:cut] == list(range(1, steps[cut - 1] + 1))
    assert resumed_from >= EVERY and resumed_from % EVERY == 0 and resumed_from < killer.logged_at_kill
    assert steps[cut:] == list(range(resumed_from + 1, STEPS + 1))

    # Same data order and optimiser state as the run that never failed: the same steps and weights.
    expected = {line["step"]: line for line in metric_lines(uninterrupted)}
    for line in metric_lines(run)[cut:]:
        reference = expected[line["step"]]
        assert line["label_tokens"] == reference["label_tokens"]
        assert line["loss"] == pytest.approx(reference["loss"], rel=1e-4)
    ours, theirs = weights(final), weights(uninterrupted.final("sft"))
    assert ours.keys() == theirs.keys()
    for name, tensor in ours.items():
        torch.testing.assert_close(tensor, theirs[name], rtol=1e-4, atol=1e-5, msg=name)


# -- --resume across invocations -----------------------------------------------------------------------


def test_resume_continues_at_the_next_step_in_the_same_order(ray_cluster, artifacts, tmp_path, uninterrupted):
    run_stage(sft_config(artifacts, tmp_path, **{"sft.max_steps": 4}), "sft")
    config = sft_config(artifacts, tmp_path)
    run = RunDir.of(config.runs_root, config.name)
    four_steps = weights(run.final("sft"))

    final = run_stage(config, "sft", resume=True)
    lines = metric_lines(run)
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5, 6]  # the second invocation starts at 5
    assert not any(torch.equal(four_steps[name], tensor) for name, tensor in weights(final).items())

    # The batches of every step are those of the uninterrupted 6-step run (label tokens fingerprint them),
    # and after the resume the schedule is where that run's was. (Losses differ: the first invocation
    # annealed its learning rate over 4 steps, not 6.)
    expected = {line["step"]: line for line in metric_lines(uninterrupted)}
    for line in lines:
        reference = expected[line["step"]]
        assert line["label_tokens"] == reference["label_tokens"]
        assert line["epoch"] == pytest.approx(reference["epoch"])
    for line in lines[4:]:
        assert line["lr"] == pytest.approx(expected[line["step"]]["lr"])


# -- bad input: a clear error before training starts -----------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def bad_input_case(case: str, artifacts: Path, tmp_path: Path):
    """(stage, config, the error's expected message) for one kind of bad input."""
    data = artifacts / "data"
    if case == "empty dataset":
        empty = tmp_path / "empty.jsonl"
        empty.write_text("")
        config = tiny_config(artifacts, tmp_path, **{"data.instructions": [{"path": str(empty)}]})
        return "sft", config, rf"{empty}: no valid instruction records"
    if case == "every example too long":
        config = tiny_config(artifacts, tmp_path, **{"model.max_seq_len": 9, "trainer.truncation": "drop"})
        return "sft", config, r"every one of 96 examples is over model\.max_seq_len"
    assert case == "chosen equals rejected"
    first, second = (json.loads(line) for line in (data / "preferences.jsonl").read_text().splitlines()[:2])
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [first, second | {"rejected": second["chosen"]}])
    config = tiny_config(artifacts, tmp_path, **{"data.preferences": {"path": str(pairs)}})
    return "dpo", config, r"line 2: 'chosen' and 'rejected' are identical"


@pytest.mark.parametrize("case", ["empty dataset", "every example too long", "chosen equals rejected"])
def test_bad_input_fails_before_training(artifacts, tmp_path, case):
    stage, config, message = bad_input_case(case, artifacts, tmp_path)
    with pytest.raises(DataError, match=message):
        run_stage(config, stage)
    stage_dir = RunDir.of(config.runs_root, config.name).stage(stage)
    assert not (stage_dir / "ray").exists() and not (stage_dir / "metrics.jsonl").exists()


def test_non_finite_loss_names_the_step(ray_cluster, artifacts, tmp_path):
    # One step at lr 1e30 blows the weights up; the loss of step 2 is NaN.
    config = tiny_config(
        artifacts,
        tmp_path,
        **{"sft.lr": 1e30, "sft.max_steps": 3, "trainer.max_failures": 0, "trainer.num_workers": 1},
    )
    with pytest.raises(Exception, match=r"non-finite loss \(\w+\) at step 2") as failure:
        run_stage(config, "sft")
    assert type(failure.value).__name__ in ("TrainingFailedError", "WorkerGroupError")
    run = RunDir.of(config.runs_root, config.name)
    assert [line["step"] for line in metric_lines(run)] == [1]
    assert not (run.final("sft")).exists()
