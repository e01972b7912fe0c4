"""Each algorithm trains the tiny model for real: 2 Ray Train workers, DeepSpeed ZeRO-2 on gloo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_support import tiny_config

from ultramedical.models.loading import load_policy, load_reward_model, load_tokenizer
from ultramedical.rundir import RunDir
from ultramedical.training.launch import RunExistsError, run_stage

pytestmark = pytest.mark.slow


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def metric_lines(run: RunDir, stage: str) -> list[dict]:
    return [json.loads(line) for line in run.metrics(stage).read_text().splitlines()]


@pytest.mark.parametrize(
    ("stage", "lr", "keys"),
    [
        ("sft", 3e-3, {"loss", "label_tokens"}),
        ("rm", 1e-3, {"loss", "accuracy", "margin", "reward_mean"}),
        (
            "dpo",
            1e-3,
            {
                "rewards/chosen",
                "rewards/rejected",
                "rewards/accuracies",
                "rewards/margins",
                "logps/chosen",
                "logps/rejected",
            },
        ),
        ("kto", 1e-3, {"kl", "rewards/chosen", "rewards/rejected"}),
    ],
)
def test_stage_trains_every_parameter(ray_cluster, artifacts, tmp_path, stage, lr, keys):
    config = tiny_config(artifacts, tmp_path, **{f"{stage}.lr": lr, f"{stage}.max_steps": 3})
    final = run_stage(config, stage)
    run = RunDir.of(config.runs_root, config.name)
    assert final == run.final(stage)

    initial = weights(artifacts / "tiny" / "policy")
    trained = weights(final)
    shared = [name for name in trained if name in initial]
    assert len(shared) >= len(initial) - 1  # the reward model swaps lm_head for its score head
    unchanged = [name for name in shared if torch.equal(initial[name], trained[name])]
    assert unchanged == []

    lines = metric_lines(run, stage)
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert keys <= set(lines[-1]) and all(torch.isfinite(torch.tensor(line["loss"])) for line in lines)
    stats = json.loads((run.stage(stage) / "data_stats.json").read_text())
    assert stats["examples"] > 0 and stats["skipped_invalid"] == 0

    loader = load_reward_model if stage == "rm" else load_policy
    model = loader(final)
    assert load_tokenizer(final).chat_template
    assert sum(p.numel() for p in model.parameters()) > 1_000_000


def test_sft_loss_falls_and_dpo_prefers_chosen(ray_cluster, artifacts, tmp_path):
    config = tiny_config(
        artifacts, tmp_path, **{"sft.lr": 3e-3, "sft.max_steps": 24, "dpo.lr": 2e-3, "dpo.epochs": 3}
    )
    run_stage(config, "sft")
    run = RunDir.of(config.runs_root, config.name)
    losses = [line["loss"] for line in metric_lines(run, "sft")]
    early, late = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert late < early - 1.0  # nats per token: from ~8 (uniform over 4k tokens) towards the corpus

    run_stage(config, "dpo")  # starts from the SFT model of the same run
    assert json.loads((run.stage("dpo") / "data_stats.json").read_text())["init_model"] == str(
        run.final("sft")
    )
    accuracies = [line["rewards/accuracies"] for line in metric_lines(run, "dpo")]
    assert sum(accuracies[-6:]) / 6 > 0.5


def test_existing_stage_needs_resume_or_overwrite(ray_cluster, artifacts, tmp_path):
    config = tiny_config(artifacts, tmp_path, **{"sft.max_steps": 2})
    run_stage(config, "sft")
    with pytest.raises(RunExistsError, match="--resume"):
        run_stage(config, "sft")
