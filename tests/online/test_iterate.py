"""The online controller end to end on the tiny model: a trainer worker lost mid-round (the round is
redone with a new trainer group), rounds persisted and tracked, and the report."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import ray
from online_support import assert_run_is_whole, online_arguments, read_jsonl
from tiny_support import weights_moved
from tracking_support import mlflow_runs, tensorboard_scalars, wandb_runs

import jobs.iterative_dpo as iterative_dpo
from actors.trainer_group import TrainerGroup
from ultramedical.online.round_data import TrainSummary
from ultramedical.online.rounds import RoundStore
from ultramedical.reporting import write_report

pytestmark = pytest.mark.slow

ROUND_KEYS = {
    "round",
    "reward_mean",
    "reward_best",
    "reward_worst",
    "pairs",
    "pair_margin",
    "train_accuracy",
    "publish_seconds",
    "gen_tokens_per_s",
    "generate_seconds",
    "score_seconds",
    "train_seconds",
    "heldout_accuracy",
    "heldout_ci95",
}


class TrainerGroupLosingRankOne(TrainerGroup):
    """The first round-1 `train` call loses rank 1 (ray.kill) while the group is training."""

    kills: list[bool] = []  # per kill: whether `train` was still in flight when it landed

    def train(self, round_index: int, items: ray.ObjectRef) -> TrainSummary:
        if round_index != 1 or self.kills:
            return super().train(round_index, items)
        training = threading.Event()
        training.set()
        victim_pid = ray.get(self.workers[1].__ray_call__.remote(lambda _: os.getpid()))

        def kill() -> None:
            # Observed state: Ray titles a worker process after the method it runs.
            cmdline = Path(f"/proc/{victim_pid}/cmdline")
            while b"TrainerWorker.train" not in cmdline.read_bytes() and training.is_set():
                time.sleep(0.005)
            self.kills.append(training.is_set())
            ray.kill(self.workers[1], no_restart=False)  # no restarts configured: the actor is gone

        killer = threading.Thread(target=kill)
        killer.start()
        try:
            return super().train(round_index, items)
        finally:
            training.clear()
            killer.join()


def assert_rounds_tracked(run_dir: Path, mlflow_uri: str, store: RoundStore, steps: int) -> None:
    """Each backend holds round 0's held-out accuracy, every committed round's metrics at its last training
    step, and the training steps numbered across rounds (the redone round's lost steps not among them)."""
    rounds = store.completed()
    client, (run,) = mlflow_runs(mlflow_uri, "ultramedical", "tiny-online")
    assert run.data.params["online.rounds"] == "2"
    history = client.get_metric_history(run.info.run_id, "round")
    assert [m.value for m in history] == [0, 1, 2] and history[-1].step == steps
    rewards = [m.value for m in client.get_metric_history(run.info.run_id, "reward_mean")]
    assert rewards == pytest.approx([row["reward_mean"] for row in rounds])
    assert len(client.get_metric_history(run.info.run_id, "train/loss")) == steps

    (wandb,) = wandb_runs(run_dir)
    assert wandb["name"] == "tiny-online"
    tracked = [row for row in wandb["history"] if "reward_mean" in row]
    assert [row["round"] for row in tracked] == [1, 2] and tracked[-1]["_step"] == steps
    assert sum("train/loss" in row for row in wandb["history"]) == steps

    scalars = tensorboard_scalars(run_dir)
    assert [value for _, value in scalars["round"]] == [0, 1, 2] and len(scalars["train/loss"]) == steps


def test_lost_trainer_round_is_redone_and_the_rounds_are_tracked(
    ray_cluster, artifacts, tmp_path, capsys, monkeypatch
):
    TrainerGroupLosingRankOne.kills = []
    run_dir = tmp_path / "run" / "online"
    mlflow_uri = f"file:{tmp_path / 'mlruns'}"
    monkeypatch.setenv("WANDB_SILENT", "true")

    def arguments(rounds: int) -> list[str]:
        # Two scorers: each round's single batch is scored in two parts (assert_run_is_whole checks that
        # every prompt comes back once, with a reward per completion).
        return [
            *online_arguments(artifacts, run_dir, rounds),
            *("--reward.scorers", "2"),
            *("--tracking.backends", '["tensorboard", "mlflow", "wandb"]'),
            *("--tracking.mlflow_uri", mlflow_uri, "--tracking.wandb_mode", "offline"),
        ]

    assert iterative_dpo.main(arguments(2), trainer_group=TrainerGroupLosingRankOne) == 0

    assert TrainerGroupLosingRankOne.kills == [True]
    out = capsys.readouterr().out
    assert "[online] round 1 failed" in out and "redoing it (1/2)" in out
    assert "round 2 failed" not in out
    assert_run_is_whole(artifacts, run_dir, rounds=2)
    # Only the redone round's training reached the log: one set of round-1 steps.
    steps = [(line["round"], line["step"]) for line in read_jsonl(run_dir / "train_metrics.jsonl")]
    assert len(steps) == len(set(steps)) and {k for k, _ in steps} == {1, 2}
    store = RoundStore(run_dir)
    assert ROUND_KEYS <= set(store.completed()[0])
    assert_rounds_tracked(run_dir, mlflow_uri, store, steps=len(steps))
    assert weights_moved(run_dir / "final", artifacts / "tiny" / "policy")

    # A finished run is extended only on purpose (test_faults.py resumes and extends a killed run).
    with pytest.raises(SystemExit, match="--resume"):
        iterative_dpo.main(arguments(3))

    # The report of this finished run shows its rounds: the per-round table and the reward figures.
    markdown, html = write_report(tmp_path / "run")
    text = markdown.read_text()
    for row in store.completed():
        assert f"| {row['round']} | {row['reward_mean']:.3f} |" in text
    assert html.read_text().count("data:image/png;base64,") >= 2
