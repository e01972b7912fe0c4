"""Helpers of the online tests: the controller's arguments for a small run, and the check that a
finished run is whole (imported by name, like tests/tiny_support.py)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from tiny_support import REPO_ROOT, SUITE_OVERRIDES

from ultramedical.data.loading import load_records
from ultramedical.online.rounds import RoundStore, round_prompts
from ultramedical.rundir import is_complete_model

PROMPTS, K = 8, 2


def online_arguments(artifacts: Path, run_dir: Path, rounds: int) -> list[str]:
    """`jobs.iterative_dpo` on the tiny models: PROMPTS prompts x K completions per round, short replies."""
    data = artifacts / "data"
    return [
        *("--config", str(REPO_ROOT / "configs" / "tiny-cpu.yaml")),
        *("--rounds", str(rounds)),
        *("--run-dir", str(run_dir)),
        *("--policy", str(artifacts / "tiny" / "policy")),
        *("--reward-model", str(artifacts / "tiny" / "reward")),
        *("--data.prompts", json.dumps({"path": str(data / "instructions.jsonl")})),
        *("--data.eval_benchmarks", json.dumps({"medqa": {"path": str(data / "test" / "medqa.jsonl")}})),
        *("--online.prompts_per_round", str(PROMPTS)),
        *("--online.completions_per_prompt", str(K)),
        *("--online.epochs_per_round", "1"),  # the demo preset's 2 would only repeat these tiny rounds' steps
        *("--online.eval_items", "4"),
        *("--generation.max_tokens", "32"),
        *("--dpo.lr", "1e-3"),
        *("--trainer.micro_batch_size", "2"),
        *("--generation.cpus_per_engine", "0.5"),
        *("--reward.cpus_per_scorer", "0.5"),
        *("--trainer.cpus_per_worker", "0.5"),
        *(arg for key, value in SUITE_OVERRIDES.items() for arg in (f"--{key}", str(value))),
    ]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_run_is_whole(artifacts: Path, run_dir: Path, rounds: int) -> None:
    """Each round committed once, its prompts answered once, its pairs neither lost nor repeated, and
    every model directory loads."""
    from transformers import AutoModelForCausalLM

    store = RoundStore(run_dir)
    rows = read_jsonl(store.metrics_path)
    assert [row["round"] for row in rows] == list(range(1, rounds + 1))

    seed = yaml.safe_load((run_dir / "config.yaml").read_text())["trainer"]["seed"]
    records = load_records(artifacts / "data" / "instructions.jsonl", "instruction").records
    for row in rows:
        k = row["round"]
        expected = [records[i].id for i in round_prompts(len(records), k, PROMPTS, seed)]
        answered = read_jsonl(store.round_dir(k) / "completions.jsonl")
        assert sorted(item["prompt_id"] for item in answered) == sorted(expected)
        assert all(len(item["completions"]) == K == len(item["rewards"]) for item in answered)
        pairs = read_jsonl(store.round_dir(k) / "pairs.jsonl")
        ids = [pair["prompt_id"] for pair in pairs]
        assert len(ids) == len(set(ids)) == row["pairs"] > 0
        assert set(ids) <= set(expected)
        assert all(pair["chosen_reward"] > pair["rejected_reward"] for pair in pairs)

    assert sorted(p.name for p in run_dir.glob("round-*")) == [f"round-{k}" for k in range(1, rounds + 1)]
    assert not store.staged_policy_dir.exists()
    assert json.loads((store.policy_dir / "round.json").read_text()) == {"round": rounds}
    checkpoints = [run_dir / f"checkpoint-round-{k}" for k in range(1, rounds + 1)]
    for directory in [store.policy_dir, run_dir / "final", *checkpoints]:
        assert is_complete_model(directory), directory
        assert AutoModelForCausalLM.from_pretrained(directory).num_parameters() > 1_000_000
