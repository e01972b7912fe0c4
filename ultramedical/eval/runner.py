"""Evaluating checkpoints: one in-process vLLM engine that takes each model's weights in turn, the
reward model for best-of-N, and the run's results files that the report reads."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ultramedical.config import Config
from ultramedical.eval.benchmarks import BenchmarkItem, load_benchmark
from ultramedical.eval.mcq import evaluate_mcq, sampling_for
from ultramedical.eval.reward_bench import load_reward_pairs, reward_accuracy
from ultramedical.generation.engine import Sampling, build_llm, generate, install_checkpoint
from ultramedical.generation.items import benchmark_items
from ultramedical.io import append_jsonl, atomic_write_jsonl
from ultramedical.models.loading import load_tokenizer, local_or_hub
from ultramedical.models.lora import full_model_dir
from ultramedical.rundir import RunDir


class PolicyEvaluator:
    """A vLLM engine that evaluates several checkpoints of one architecture without restarting."""

    def __init__(self, config: Config, model: str):
        self.config = config
        self.model = full_model_dir(local_or_hub(model))  # an adapter: evaluated merged into its base
        self.tokenizer = load_tokenizer(self.model)
        # In-process: generation.threads, else every CPU (the evaluator has the machine to itself).
        self.llm = build_llm(
            self.model, config.generation, seed=config.trainer.seed, threads=config.generation.threads
        )

    def switch_to(self, model: str) -> None:
        model = full_model_dir(local_or_hub(model))
        if model != self.model:
            install_checkpoint(self.llm, model)
            self.model = model

    def generate(self, items: Sequence[BenchmarkItem], sampling: Sampling) -> list[list[str]]:
        prompts = [item["prompt_token_ids"] for item in benchmark_items(self.tokenizer, items)]
        return [[c["text"] for c in completions] for completions in generate(self.llm, prompts, sampling)]


def best_of_n_scorer(reward_model: str, batch_size: int = 32) -> Any:
    from ultramedical.models.reward import RewardModel

    model = RewardModel(local_or_hub(reward_model), batch_size=batch_size)

    def score(items: Sequence[BenchmarkItem], completions: list[list[str]]) -> list[list[float]]:
        prompts = [
            [{"role": "user", "content": item.prompt}]
            for item, texts in zip(items, completions, strict=True)
            for _ in texts
        ]
        flat = model.score_pairs(prompts, [t for texts in completions for t in texts])
        out, start = [], 0
        for texts in completions:
            out.append(flat[start : start + len(texts)])
            start += len(texts)
        return out

    return score


def run_benchmark(
    evaluator: PolicyEvaluator, items: list[BenchmarkItem], mode: str, n: int | None = None, score: Any = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    e = evaluator.config.eval
    sampling = sampling_for(
        mode, n or e.samples, e.temperature, e.top_p, e.max_tokens, evaluator.config.trainer.seed
    )
    return evaluate_mcq(items, evaluator.generate, mode, sampling, score)


def record_result(run_dir: str | Path, filename: str, line: dict[str, Any]) -> None:
    append_jsonl(Path(run_dir) / "eval" / filename, line)


def evaluate_policy(
    config: Config,
    model: str,
    benchmark: str,
    data: str,
    mode: str = "greedy",
    split: str = "test",
    n: int | None = None,
    reward_model: str | None = None,
    subjects: list[str] | None = None,
    max_items: int | None = None,
    out: str | None = None,
    label: str | None = None,
    run_dir: str | None = None,
) -> dict[str, Any]:
    """`ultramedical eval mcq`: load the benchmark, generate, extract, summarise, write what was asked."""
    items = load_benchmark(
        benchmark, data, split, subjects=subjects, max_items=max_items or config.eval.max_items
    )
    score = best_of_n_scorer(reward_model) if mode == "bon" and reward_model else None
    records, summary = run_benchmark(PolicyEvaluator(config, model), items, mode, n, score)
    if run_dir and not out:  # where the report pairs rows item by item (reporting/collect.py)
        out = str(RunDir(Path(run_dir)).eval_records(label or Path(model).name, benchmark, mode))
    if out:
        atomic_write_jsonl(out, records)
    summary = {
        "model": label or Path(model).name,
        "model_path": model,
        "benchmark": benchmark,
        "mode": mode,
        **summary,
    }
    if run_dir:
        record_result(run_dir, "results.jsonl", summary)
    return summary


def evaluate_reward_model(
    model: str,
    data: str,
    split: str = "test",
    label: str | None = None,
    run_dir: str | None = None,
    batch_size: int = 32,
) -> dict[str, Any]:
    """`ultramedical eval rm`: pairwise accuracy per subset."""
    from ultramedical.models.reward import RewardModel

    reward = RewardModel(local_or_hub(model), batch_size=batch_size)
    per_subset = reward_accuracy(load_reward_pairs(data, split), reward.score_pairs)
    if run_dir:
        for subset, values in per_subset.items():
            record_result(
                run_dir,
                "rm.jsonl",
                {"model": label or Path(model).name, "model_path": model, "subset": subset, **values},
            )
    return per_subset
