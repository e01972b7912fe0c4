"""The reward scorer pool: reward-model actors that score generated items in place in the object store."""

from __future__ import annotations

import time
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors.recovery import call_when_available
from ultramedical.config import RewardConfig
from ultramedical.runtime import torch_threads


@ray.remote
class RewardScorer:
    def __init__(self, model_path: str, reward: dict[str, Any]):
        import torch

        from ultramedical.models.reward import RewardModel

        self.settings = RewardConfig.model_validate(reward)
        torch.set_num_threads(torch_threads(self.settings.threads, self.settings.cpus_per_scorer))
        self.model = RewardModel(model_path, self.settings.batch_size, self.settings.max_length)

    def ready(self) -> bool:
        return True

    @ray.method(num_returns=2)
    def score(
        self, items: list[dict[str, Any]], part: int = 0, parts: int = 1
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Adds `rewards` (one per completion) to each item of part `part` of `parts` equal, contiguous
        parts of a batch: the model's score plus the letter rule."""
        from ultramedical.online.rewards import answer_rule

        start = time.perf_counter()
        items = items[len(items) * part // parts : len(items) * (part + 1) // parts]
        prompts, responses, owners = [], [], []
        for index, item in enumerate(items):
            for completion in item["completions"]:
                prompts.append(item["messages"])
                responses.append(completion["text"])
                owners.append(index)
        values = self.model.score_pairs(prompts, responses)
        rewards: list[list[float]] = [[] for _ in items]
        s = self.settings
        for owner, response, value in zip(owners, responses, values, strict=True):
            item = items[owner]
            rule = answer_rule(
                response,
                item.get("answer", ""),
                item.get("choices", ""),
                s.correct_letter_bonus,
                s.wrong_letter_penalty,
                item.get("prompt", ""),
            )
            rewards[owner].append(value + rule)
        summary = {"scored": len(values), "seconds": time.perf_counter() - start}
        return summary, [item | {"rewards": r} for item, r in zip(items, rewards, strict=True)]


class ScorerPool:
    def __init__(
        self,
        model_path: str,
        reward: RewardConfig,
        scheduling: list[dict[str, Any]] | None = None,
        wait: bool = True,
    ):
        options = {
            "max_restarts": reward.max_restarts,
            "max_task_retries": 0,
            "num_cpus": reward.cpus_per_scorer,
            "num_gpus": reward.gpus_per_scorer,
        }
        self.scorers = [
            RewardScorer.options(**options, **(scheduling[i] if scheduling else {})).remote(
                model_path, reward.model_dump()
            )
            for i in range(reward.scorers)
        ]
        self.starting = [s.ready.remote() for s in self.scorers]  # see GenerationPool
        if wait:
            ray.get(self.starting)

    def score(self, batches: list[ray.ObjectRef]) -> tuple[list[ray.ObjectRef], dict[str, float]]:
        """Score every batch (by reference, round-robin over scorers, re-sent if a scorer dies).

        With fewer batches than scorers each batch is scored in parts, one per scorer, so no scorer
        idles (two one-thread scorers beat one two-thread scorer on CPU: bench/README.md, design decisions).
        Returns the scored parts in batch order (a list of item lists, like the batches)."""
        start = time.perf_counter()
        parts = -(-len(self.scorers) // max(len(batches), 1))  # ceil
        units = [(batch, part) for batch in range(len(batches)) for part in range(parts)]
        scored: list[ray.ObjectRef | None] = [None] * len(units)
        todo = list(range(len(units)))
        attempts = 0
        while todo:
            calls = {}
            for position, index in enumerate(todo):
                batch, part = units[index]
                scorer = self.scorers[position % len(self.scorers)]
                calls[index] = scorer.score.remote(batches[batch], part, parts)
            todo = []
            for index, (summary, payload) in calls.items():
                try:
                    ray.get(summary)
                    scored[index] = payload
                except RayActorError:
                    todo.append(index)
            for scorer in self.scorers if todo else []:
                call_when_available(scorer.ready.remote)  # let restarting scorers come back first
            attempts += 1
            if todo and attempts > 1 + max(1, len(self.scorers)) * 3:
                raise RuntimeError(f"reward scorers kept failing on {len(todo)} batch parts")
        return scored, {"seconds": time.perf_counter() - start}

    def shutdown(self) -> None:
        for scorer in self.scorers:
            ray.kill(scorer)
