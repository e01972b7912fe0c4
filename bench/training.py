"""Training throughput: our offline stages (Ray Train + DeepSpeed ZeRO-2, 2 workers) vs TRL's trainers on
the same model, the same pairs (the sample corpus's preferences, same token ids), the same batch size,
sequence length and precision (fp32); and model FLOP utilisation (MFU) at two model sizes.

Throughput is taken over the training steps only, the first step excluded (warm-up), start-up excluded:
- ours: `run_stage` logs every step to metrics.jsonl (`tokens_per_s` = tokens of all ranks / rank 0's
  step time); each step's tokens are recomputed from the stage's own example order, so each step's time
  is tokens / tokens_per_s, and the rate is sum(tokens) / sum(time) over steps 2..N;
- TRL: a callback timestamps every step's end and a wrapper around its collator counts each batch's
  tokens; the same sum over steps 2..N.
A token is a non-padding token of a chosen or rejected sequence (prompt included), on both sides.
The reference pass: ours computes reference log-probs once before training (not in step time); TRL's
default computes them inside every step with a reference model; `precompute_ref_log_probs=True` moves
that pass before training, like ours; both TRL variants are measured.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    Assets,
    Result,
    UnequalWorkError,
    bench_config,
    compared,
    parameter_count,
    require_equal,
    summarize,
)
from ultramedical.config import Config

BASELINES = {
    "dpo": "TRL DPOTrainer (defaults: reference model forward in every step)",
    "rm": "TRL RewardTrainer",
}


def stage_config(assets: Assets, runs_root: Path, stage: str, size: str, pairs: int, seq_len: int) -> Config:
    overrides: dict[str, Any] = {
        "name": f"bench-{stage}-{size}",
        "data.preferences": {"path": str(assets.data / "preferences.jsonl"), "max_records": pairs},
        "model.max_seq_len": seq_len,
        "trainer.log_every_steps": 1,
        "trainer.save_every_steps": 0,
        "trainer.grad_accum_steps": 1,
        f"{stage}.epochs": 1,
        f"{stage}.max_steps": None,  # one whole epoch over the pairs, on both sides
    }
    if stage == "rm":
        overrides["rm.init_from"] = str(assets.reward(size))  # both sides start from the same reward model
    return bench_config(assets, runs_root, size, overrides)


def stage_examples(config: Config, stage: str) -> tuple[list[dict[str, Any]], str]:
    """The examples `run_stage` will train on (it builds them the same way), and its initial model."""
    from ultramedical.models.loading import load_tokenizer
    from ultramedical.rundir import RunDir
    from ultramedical.training import ALGORITHMS
    from ultramedical.training.stage import stage_init_model

    init = stage_init_model(config, stage, RunDir.of(config.runs_root, config.name))
    examples, stats = ALGORITHMS[stage](config).load(load_tokenizer(init))
    if stats.truncated or stats.dropped_too_long:
        raise ValueError(f"{stage}: {stats.as_dict()}: raise train_seq_len so no pair is cut")
    return examples, init


def example_tokens(stage: str, example: dict[str, Any]) -> int:
    if stage == "dpo":
        return len(example["chosen_ids"]) + len(example["rejected_ids"])
    return len(example["chosen"]) + len(example["rejected"])


def computed_tokens(config: Config, stage: str, example: dict[str, Any]) -> int:
    """Tokens our forward actually runs for an example: with trainer.share_prompt a DPO pair's shared
    prompt once (what MFU must count: it is FLOPs done, not tokens covered)."""
    from ultramedical.training.shared_prompt import shared_length

    tokens = example_tokens(stage, example)
    if stage == "dpo" and config.trainer.share_prompt:
        tokens -= shared_length(
            {"ids": example["chosen_ids"], "labels": example["chosen_labels"]},
            {"ids": example["rejected_ids"], "labels": example["rejected_labels"]},
        )
    return tokens


def our_step_work(
    config: Config,
    stage: str,
    examples: list[dict[str, Any]],
    count: Callable[[Config, str, dict[str, Any]], int] | None = None,
) -> list[tuple[int, int]]:
    """(pairs, tokens) of every optimiser step of one epoch, summed over ranks, in step order. Tokens are
    `example_tokens` (prompt counted in chosen and rejected), or what `count` says."""
    from ultramedical.training import ALGORITHMS
    from ultramedical.training.sampler import grouping_lengths, rank_batches

    trainer = config.trainer
    lengths = grouping_lengths(config, ALGORITHMS[stage](config), examples)
    if trainer.grad_accum_steps != 1:
        raise ValueError("the bench measures with grad_accum_steps = 1")
    world = trainer.num_workers

    def tokens(example: dict[str, Any]) -> int:
        return count(config, stage, example) if count else example_tokens(stage, example)

    ranks = [rank_batches(len(examples), 0, trainer, r, world, lengths) for r in range(world)]
    return [
        (
            sum(len(batches[step]) for batches in ranks),
            sum(tokens(examples[i]) for batches in ranks for i in batches[step]),
        )
        for step in range(len(ranks[0]))
    ]


def steps_rate(work: list[tuple[int, int]], seconds: list[float]) -> float:
    """Tokens/s over steps 2..N."""
    if len(work) < 2:
        raise ValueError("need at least 2 training steps (the first is excluded as warm-up)")
    return sum(t for _, t in work[1:]) / sum(seconds[1:])


def run_ours(config: Config, stage: str, examples: list[dict[str, Any]]) -> dict[str, Any]:
    """One full `run_stage`; the steps' throughput from its metrics.jsonl."""
    from actors.train_stage import run_stage
    from ultramedical.rundir import RunDir

    start = time.perf_counter()
    run_stage(config, stage, overwrite=True)
    wall = time.perf_counter() - start
    metrics = RunDir.of(config.runs_root, config.name).metrics(stage)
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    work = our_step_work(config, stage, examples)
    require_equal(
        f"ours {stage}: logged steps", [line["step"] for line in lines], list(range(1, len(work) + 1))
    )
    seconds = [tokens / line["tokens_per_s"] for (_, tokens), line in zip(work, lines, strict=True)]
    computed = our_step_work(config, stage, examples, computed_tokens)
    return {
        "tokens_per_s": steps_rate(work, seconds),
        "computed_tokens_per_s": steps_rate(computed, seconds),
        "pairs": sum(p for p, _ in work),
        "tokens": sum(t for _, t in work),
        "steps": len(work),
        "step_seconds": [round(s, 3) for s in seconds],
        "stage_wall_s": round(wall, 2),
    }


class _StepClock:
    """A TrainerCallback recording when every optimiser step ends."""

    def __new__(cls) -> Any:
        from transformers import TrainerCallback

        class Clock(TrainerCallback):
            def __init__(self) -> None:
                self.ends: list[float] = []
                self.begin = 0.0

            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.begin = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.ends.append(time.perf_counter())

        return Clock()


class _CountingCollator:
    """Wraps a collator; records (pairs, non-padding tokens) of every batch it builds, in order."""

    def __init__(self, collator: Any):
        self.collator = collator
        self.batches: list[tuple[int, int]] = []

    def __call__(self, examples: list[dict[str, Any]]) -> Any:
        batch = self.collator(examples)
        self.batches.append((len(examples), int(batch["attention_mask"].sum())))
        return batch


def _trl_train(trainer: Any, clock: Any) -> dict[str, Any]:
    counter = _CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    ends = [clock.begin, *clock.ends]
    seconds = [b - a for a, b in zip(ends, ends[1:], strict=False)]
    work = counter.batches
    require_equal("TRL: optimiser steps vs batches collated", len(seconds), len(work))
    return {
        "tokens_per_s": steps_rate(work, seconds),
        "pairs": sum(p for p, _ in work),
        "tokens": sum(t for _, t in work),
        "steps": len(work),
        "step_seconds": [round(s, 3) for s in seconds],
        "train_wall_s": round(wall, 2),
    }


def _trl_common(config: Config, out: str, seed: int) -> dict[str, Any]:
    trainer = config.trainer
    return {
        "output_dir": out,
        "per_device_train_batch_size": trainer.micro_batch_size * trainer.num_workers,  # our global batch
        "gradient_accumulation_steps": trainer.grad_accum_steps,
        "num_train_epochs": 1,
        "max_length": config.model.max_seq_len,
        "bf16": False,  # fp32, as ours on CPU
        "gradient_checkpointing": False,  # TRL turns it on by default; ours does not checkpoint
        "use_cpu": True,
        "report_to": "none",
        "save_strategy": "no",
        "logging_steps": 10**6,
        "disable_tqdm": True,
        "seed": seed,
        "dataloader_drop_last": False,
    }


def run_trl_dpo(
    config: Config, init: str, examples: list[dict[str, Any]], precompute: bool, seed: int
) -> dict[str, Any]:
    """TRL's DPOTrainer on the same conversations; its tokenization is checked against ours."""
    import torch
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from ultramedical.data.loading import load_records
    from ultramedical.models.loading import load_policy, load_tokenizer

    source = config.data.preferences
    records = load_records(source.path, "preference", source.split, "error", source.max_records).records
    dataset = Dataset.from_list(
        [{"prompt": r.chosen[:-1], "chosen": r.chosen[-1:], "rejected": r.rejected[-1:]} for r in records]
    )
    clock = _StepClock()
    with tempfile.TemporaryDirectory() as out:
        args = DPOConfig(
            **_trl_common(config, out, seed),
            learning_rate=config.dpo.lr,
            beta=config.dpo.beta,
            precompute_ref_log_probs=precompute,
        )
        trainer = DPOTrainer(
            model=load_policy(init, torch.float32),
            args=args,
            train_dataset=dataset,
            processing_class=load_tokenizer(init),
            callbacks=[clock],
        )
        data = trainer.train_dataset
        require_equal("TRL vs ours: DPO pairs", len(data), len(examples))
        for row, example in zip(data, examples, strict=True):
            if (
                row["prompt_ids"] + row["chosen_ids"] != example["chosen_ids"]
                or row["prompt_ids"] + row["rejected_ids"] != example["rejected_ids"]
            ):
                raise UnequalWorkError("TRL tokenized a DPO pair differently from ours")
        return _trl_train(trainer, clock)


def run_trl_rm(config: Config, init: str, examples: list[dict[str, Any]], seed: int) -> dict[str, Any]:
    """TRL's RewardTrainer on our exact token ids (it skips its own tokenization for such a dataset)."""
    import torch
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from ultramedical.models.loading import load_reward_model, load_tokenizer

    dataset = Dataset.from_list(
        [{"chosen_ids": e["chosen"], "rejected_ids": e["rejected"]} for e in examples]
    )
    tokenizer = load_tokenizer(init)
    clock = _StepClock()
    with tempfile.TemporaryDirectory() as out:
        args = RewardConfig(
            **_trl_common(config, out, seed),
            learning_rate=config.rm.lr,
            center_rewards_coefficient=config.rm.center_coef or None,
        )
        trainer = RewardTrainer(
            model=load_reward_model(init, torch.float32, tokenizer.pad_token_id),
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=[clock],
        )
        require_equal("TRL vs ours: RM pairs", len(trainer.train_dataset), len(examples))
        return _trl_train(trainer, clock)


def _check(stage: str, ours: dict[str, Any], baseline: dict[str, Any], label: str) -> None:
    require_equal(f"{stage}: pairs trained, ours vs {label}", ours["pairs"], baseline["pairs"])
    require_equal(f"{stage}: tokens trained, ours vs {label}", ours["tokens"], baseline["tokens"])
    require_equal(f"{stage}: optimiser steps, ours vs {label}", ours["steps"], baseline["steps"])


def run_stage_comparison(
    assets: Assets,
    runs_root: Path,
    stage: str,
    pairs: int,
    seq_len: int,
    reps: int,
    trl_reason: str | None,
    threads: int = 2,
) -> tuple[Result, list[dict[str, Any]]]:
    """`dpo_train` or `rm_train`; also returns our per-repetition runs (for MFU)."""
    import torch

    torch.set_num_threads(threads)
    config = stage_config(assets, runs_root, stage, "small", pairs, seq_len)
    examples, init = stage_examples(config, stage)
    ours: list[dict[str, Any]] = []
    sides: dict[str, list[dict[str, Any]]] = {"trl": [], "trl_precompute": []}
    for rep in range(reps):
        ours.append(run_ours(config, stage, examples))
        if trl_reason:
            continue
        if stage == "dpo":
            for key, precompute in (("trl", False), ("trl_precompute", True)):
                sides[key].append(run_trl_dpo(config, init, examples, precompute, seed=rep))
                _check(stage, ours[-1], sides[key][-1], key)
        else:
            sides["trl"].append(run_trl_rm(config, init, examples, seed=rep))
            _check(stage, ours[-1], sides["trl"][-1], "trl")
    name = f"{stage}_train"
    details: dict[str, Any] = {
        "model": "small",
        "params": parameter_count(Path(init)),
        "pairs": ours[0]["pairs"],
        "tokens_per_epoch": ours[0]["tokens"],
        "steps": ours[0]["steps"],
        "pairs_per_step": config.trainer.micro_batch_size * config.trainer.num_workers,
        "max_seq_len": seq_len,
        "precision": "fp32",
        "ours_setup": f"Ray Train, {config.trainer.num_workers} workers x "
        f"{max(1, int(config.trainer.cpus_per_worker))} torch thread(s), "
        f"DeepSpeed ZeRO-{config.trainer.zero_stage} (gloo)",
        "baseline_setup": f"1 process, {threads} torch threads, gradient_checkpointing off",
        "ours_step_seconds": [r["step_seconds"] for r in ours],
        "ours_stage_wall_s": [r["stage_wall_s"] for r in ours],
    }
    ours_rates = [r["tokens_per_s"] for r in ours]
    if trl_reason:
        result = Result(
            name, summarize(ours_rates)["median"], None, BASELINES[stage], "tokens/s", None,
            {"ours": summarize(ours_rates), "not_measured": f"TRL side: {trl_reason}", **details},
        )  # fmt: skip
        return result, ours
    result = compared(
        name, "tokens/s", BASELINES[stage], ours_rates, [r["tokens_per_s"] for r in sides["trl"]]
    )
    result.runs |= details | {
        "baseline_step_seconds": [r["step_seconds"] for r in sides["trl"]],
        "baseline_train_wall_s": [r["train_wall_s"] for r in sides["trl"]],
    }
    if stage == "dpo":
        precomputed = summarize([r["tokens_per_s"] for r in sides["trl_precompute"]])
        result.runs |= {
            "baseline_precompute_ref_log_probs": precomputed,
            "ratio_vs_precompute_ref_log_probs": round(result.ours / precomputed["median"], 4),
            "baseline_precompute_train_wall_s": [r["train_wall_s"] for r in sides["trl_precompute"]],
        }
    return result, ours


def run_tiny_dpo(
    assets: Assets, runs_root: Path, pairs: int, seq_len: int, reps: int
) -> list[dict[str, Any]]:
    config = stage_config(assets, runs_root, "dpo", "tiny", pairs, seq_len)
    examples, _ = stage_examples(config, "dpo")
    return [run_ours(config, "dpo", examples) for _ in range(reps)]


def mfu_result(
    assets: Assets, small_runs: list[dict[str, Any]], tiny_runs: list[dict[str, Any]], peak: dict[str, Any]
) -> Result:
    """Training FLOP/s = 6 x params x tokens/s (our DPO stage's steps) over the measured matmul peak."""
    sizes = {}
    for size, runs in (("tiny", tiny_runs), ("small", small_runs)):
        params = parameter_count(assets.policy(size))
        rates = summarize([r["tokens_per_s"] for r in runs])
        flops = [6 * params * r["computed_tokens_per_s"] for r in runs]
        sizes[size] = {
            "params": params,
            "tokens_per_s": rates,
            "computed_tokens_per_s": summarize([r["computed_tokens_per_s"] for r in runs]),
            "flops_per_s": summarize(flops),
            "mfu": summarize([f / peak["flops_per_s"] for f in flops]),
        }
    small = sizes["small"]
    return Result(
        name="mfu",
        ours=round(small["flops_per_s"]["median"], 1),
        baseline=round(peak["flops_per_s"], 1),
        baseline_name=f"fp32 matmul peak ({peak['n']}^3, {peak['threads']} threads, best of {peak['reps']})",
        unit="FLOP/s",
        ratio=round(small["mfu"]["median"], 4),
        runs={
            "definition": "ratio = MFU of the small model = 6 x params x training tokens/s / matmul peak; "
            "target >= 0.5; tokens are those the forward computed (a shared prompt once)",
            "workload": "our DPO stage (Ray Train + DeepSpeed, 2 workers), steps 2..N, "
            "reference pass excluded",
            "flops_params": "all parameters (input embedding included)",
            "peak": peak,
            **sizes,
        },
    )
