"""The online controller end to end on the tiny model, and --resume after completed rounds."""

from __future__ import annotations

import json

import pytest
from tiny_support import REPO_ROOT

from jobs.iterative_dpo import main as iterate
from ultramedical.models.loading import load_policy
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


def arguments(artifacts, run_dir, rounds):
    data = artifacts / "data"
    return [
        "--config",
        str(REPO_ROOT / "configs" / "tiny-cpu.yaml"),
        "--rounds",
        str(rounds),
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
        "8",
        "--online.completions_per_prompt",
        "2",
        "--online.eval_items",
        "16",
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


def test_rounds_persist_and_resume_continues(ray_cluster, artifacts, tmp_path):
    run_dir = tmp_path / "run" / "online"
    assert iterate(arguments(artifacts, run_dir, 2)) == 0
    store = RoundStore(run_dir)
    rows = store.completed()
    assert [row["round"] for row in rows] == [1, 2]
    assert ROUND_KEYS <= set(rows[0])
    first_round = (run_dir / "round-1" / "completions.jsonl").read_bytes()
    completions = [json.loads(line) for line in first_round.decode().splitlines()]
    assert len(completions) == 8 and len({c["prompt_id"] for c in completions}) == 8
    assert all(len(c["completions"]) == 2 == len(c["rewards"]) for c in completions)
    pairs = [json.loads(line) for line in (run_dir / "round-1" / "pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == rows[0]["pairs"] and all(p["chosen_reward"] > p["rejected_reward"] for p in pairs)

    with pytest.raises(SystemExit, match="--resume"):
        iterate(arguments(artifacts, run_dir, 3))
    (run_dir / "round-3").mkdir()  # debris of an interrupted round 3: redone from its start
    (run_dir / "round-3" / "completions.jsonl").write_text("half a line")
    assert iterate([*arguments(artifacts, run_dir, 3), "--resume"]) == 0
    assert [row["round"] for row in store.completed()] == [1, 2, 3]
    assert (run_dir / "round-1" / "completions.jsonl").read_bytes() == first_round
    third = (run_dir / "round-3" / "completions.jsonl").read_text().splitlines()
    assert len(third) == 8 and json.loads(third[0])["prompt_id"]
    assert load_policy(run_dir / "final") is not None

    # The report of this finished run shows its rounds: the per-round table and the reward figures.
    markdown, html = write_report(tmp_path / "run")
    text = markdown.read_text()
    for row in store.completed():
        assert f"| {row['round']} | {row['reward_mean']:.3f} |" in text
    assert html.read_text().count("data:image/png;base64,") >= 2
