"""Each algorithm trains the tiny model for real: 2 Ray Train workers, DeepSpeed ZeRO-2 on gloo (SFT and
DPO, the reward model, and KTO with LoRA)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from tiny_support import tiny_config
from tracking_support import mlflow_runs, tensorboard_scalars, wandb_runs

from actors.train_stage import run_stage
from ultramedical.models.loading import load_policy, load_reward_model, load_tokenizer
from ultramedical.rundir import RunDir
from ultramedical.training.stage import RunExistsError

pytestmark = pytest.mark.slow


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "model.safetensors"))


def metric_lines(run: RunDir, stage: str) -> list[dict]:
    return [json.loads(line) for line in run.metrics(stage).read_text().splitlines()]


METRIC_KEYS = {
    "sft": {"loss", "label_tokens"},
    "rm": {"loss", "accuracy", "margin", "reward_mean"},
    "dpo": {
        "rewards/chosen",
        "rewards/rejected",
        "rewards/accuracies",
        "rewards/margins",
        "logps/chosen",
        "logps/rejected",
    },
    "kto": {"kl", "rewards/chosen", "rewards/rejected"},
}


def assert_stage_output(init: Path, run: RunDir, stage: str, steps: int) -> None:
    """Every parameter moved away from `init`, one metrics line per step with the stage's keys, and a
    loadable HF model."""
    final = run.final(stage)
    initial = weights(init)
    trained = weights(final)
    shared = [name for name in trained if name in initial]
    assert len(shared) >= len(initial) - 1  # the reward model swaps lm_head for its score head
    unchanged = [name for name in shared if torch.equal(initial[name], trained[name])]
    assert unchanged == []

    lines = metric_lines(run, stage)
    assert [line["step"] for line in lines] == list(range(1, steps + 1))
    assert METRIC_KEYS[stage] <= set(lines[-1])
    assert all(torch.isfinite(torch.tensor(line["loss"])) for line in lines)
    stats = json.loads((run.stage(stage) / "data_stats.json").read_text())
    assert stats["examples"] > 0 and stats["skipped_invalid"] == 0

    loader = load_reward_model if stage == "rm" else load_policy
    model = loader(final)
    assert load_tokenizer(final).chat_template
    assert sum(p.numel() for p in model.parameters()) > 1_000_000


def test_reward_stage_on_the_llama3_shaped_checkpoint_trains_every_parameter_and_is_tracked(
    ray_cluster, artifacts, llama3_checkpoint, tmp_path
):
    """The reward model on full weights from the Llama-3-shaped checkpoint (Llama-3's vocabulary, no pad
    token), tracked on every backend. (KTO trains through Ray Train in the LoRA test below, and on full
    weights under ZeRO-3 in test_zero3.py: the stage code is the same for every algorithm.)"""
    stage, policy = "rm", llama3_checkpoint / "policy"
    mlflow_uri = f"file:{tmp_path / 'mlruns'}"
    tracking = {
        "tracking.backends": ["tensorboard", "mlflow", "wandb"],
        "tracking.mlflow_uri": mlflow_uri,
        "tracking.wandb_mode": "offline",
    }
    settings = {"model.policy": str(policy), f"{stage}.lr": 1e-3, f"{stage}.max_steps": 3}
    config = tiny_config(artifacts, tmp_path, **settings, **tracking)
    final = run_stage(config, stage)
    run = RunDir.of(config.runs_root, config.name)
    assert final == run.final(stage)
    assert_stage_output(policy, run, stage, steps=3)
    assert len(list(run.tokenized.glob(f"{stage}-*"))) == 1  # the workers' data, on runs_root

    model, tokenizer = load_reward_model(final), load_tokenizer(final)
    assert model.config.vocab_size == 128_256 and model.config.pad_token_id == tokenizer.pad_token_id
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    texts = ["Deferoxamine.", "Iron poisoning is treated with deferoxamine."]  # padded to one length
    with torch.no_grad():
        rewards = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits[:, 0]
    assert rewards.shape == (2,) and torch.isfinite(rewards).all()

    tensorboard = tensorboard_scalars(run.stage(stage))["loss"]
    lines = metric_lines(run, stage)
    steps, losses = [line["step"] for line in lines], [line["loss"] for line in lines]
    assert [step for step, _ in tensorboard] == steps
    assert [value for _, value in tensorboard] == pytest.approx(losses)
    assert_tracked_on_mlflow_and_wandb(run, f"{config.name}-{stage}", stage, mlflow_uri, steps, losses)


def assert_tracked_on_mlflow_and_wandb(
    run: RunDir, run_name: str, stage: str, mlflow_uri: str, steps: list[int], losses: list[float]
) -> None:
    """Rank 0 tracked every step on each backend, under the run's name, with the config as parameters."""
    client, (tracked,) = mlflow_runs(mlflow_uri, "ultramedical", run_name)
    assert tracked.data.params[f"{stage}.max_steps"] == "3"
    history = client.get_metric_history(tracked.info.run_id, "loss")
    assert [m.step for m in history] == steps and [m.value for m in history] == pytest.approx(losses)
    (wandb,) = wandb_runs(run.stage(stage))
    rows = [row for row in wandb["history"] if "loss" in row]
    assert [row["_step"] for row in rows] == steps and [row["loss"] for row in rows] == pytest.approx(losses)


def test_sft_loss_falls_and_dpo_prefers_chosen(ray_cluster, artifacts, tmp_path):
    """SFT then DPO from its model, in one run directory: the two stages every other stage builds on."""
    config = tiny_config(
        artifacts, tmp_path, **{"sft.lr": 3e-3, "sft.max_steps": 24, "dpo.lr": 2e-3, "dpo.epochs": 3}
    )
    run_stage(config, "sft")
    run = RunDir.of(config.runs_root, config.name)
    assert_stage_output(artifacts / "tiny" / "policy", run, "sft", steps=24)
    losses = [line["loss"] for line in metric_lines(run, "sft")]
    early, late = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert late < early - 1.0  # nats per token: from ~8 (uniform over 4k tokens) towards the corpus
    # A finished stage is never overwritten by accident.
    with pytest.raises(RunExistsError, match="--resume"):
        run_stage(config, "sft")

    run_stage(config, "dpo")  # starts from the SFT model of the same run
    assert json.loads((run.stage("dpo") / "data_stats.json").read_text())["init_model"] == str(
        run.final("sft")
    )
    accuracies = [line["rewards/accuracies"] for line in metric_lines(run, "dpo")]
    assert_stage_output(run.final("sft"), run, "dpo", steps=len(accuracies))
    assert len(accuracies) >= 6 and sum(accuracies[-6:]) / 6 > 0.5


def test_lora_stages_write_adapters_that_chain_and_merge(ray_cluster, artifacts, tmp_path, capsys):
    """SFT then KTO with model.lora through Ray Train: each stage writes only its adapter, KTO trains a
    fresh adapter on the SFT adapter merged into its base (so disabling it gives the SFT policy, its
    reference), and `ultramedical merge` writes a plain model that transformers and vLLM load and agree on.
    (DPO with LoRA trains in tests/online/test_lora_round.py and tests/models/test_lora.py.)"""
    from jobs.cli import main as cli
    from jobs.train_stage import train
    from ultramedical.eval.runner import PolicyEvaluator
    from ultramedical.generation.engine import Sampling, generate
    from ultramedical.generation.items import make_item
    from ultramedical.models import lora

    lora_settings = {"rank": 4, "alpha": 8, "dropout": 0.0}
    config = tiny_config(
        artifacts,
        tmp_path,
        **{
            "model.lora": lora_settings,
            "sft.lr": 1e-2,
            "sft.max_steps": 4,
            "kto.lr": 1e-2,
            "kto.max_steps": 3,
        },
    )
    run = RunDir.of(config.runs_root, config.name)
    assert train(config, "sft", merge=True) == 0  # the recipe behind `ultramedical sft --merge`
    sft = run.final("sft")
    assert capsys.readouterr().out.split()[-2:] == [str(sft), str(sft / "merged")]
    assert (sft / "merged" / "model.safetensors").exists()
    kto = run_stage(config, "kto")
    for stage, adapter, base in (("sft", sft, artifacts / "tiny" / "policy"), ("kto", kto, sft / "merged")):
        assert lora.is_adapter_dir(adapter) and not (adapter / "model.safetensors").exists(), stage
        assert lora.adapter_base(adapter) == str(base), stage
        assert METRIC_KEYS[stage] <= set(metric_lines(run, stage)[-1])
    assert json.loads((run.stage("kto") / "data_stats.json").read_text())["init_model"] == str(sft / "merged")

    merged = tmp_path / "kto-merged"
    assert cli(["merge", str(kto), "--out", str(merged)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(merged))
    assert cli(["merge", str(artifacts / "tiny" / "policy")]) == 2  # not an adapter: says so
    tokenizer = load_tokenizer(merged)
    questions = ("What prevents scurvy?", "Which nerve is injured in wrist drop?")
    prompts = [make_item(tokenizer, str(i), q)["prompt_token_ids"] for i, q in enumerate(questions)]
    hf = load_policy(merged).eval()
    expected = []
    for ids in prompts:
        out = hf.generate(
            torch.tensor([ids]), max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id
        )
        expected.append(tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True))
    evaluator = PolicyEvaluator(config, str(merged))
    served = generate(evaluator.llm, prompts, Sampling(n=1, temperature=0.0, max_tokens=16))
    assert [c[0]["text"] for c in served] == expected
