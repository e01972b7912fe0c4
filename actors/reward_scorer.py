"""The reward scorer pool: reward-model actors that score generated items in place in the object store."""

from __future__ import annotations

import time
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors.actor_group import ActorGroup
from actors.recovery import call_when_available
from ultramedical.config import RewardConfig
from ultramedical.online.round_data import GeneratedItem, ScoredItem
from ultramedical.runtime import torch_threads


@ray.remote
class RewardScorer:
    def __init__(self, model_path: str, settings: RewardConfig):
        import torch

        from ultramedical.models.reward import RewardModel

        self.settings = settings
        torch.set_num_threads(torch_threads(self.settings.threads, self.settings.cpus_per_scorer))
        self.model = RewardModel(model_path, self.settings.batch_size, self.settings.max_length)

    def ready(self) -> bool:
        return True

    @ray.method(num_returns=2)
    def score(
        self, items: list[GeneratedItem], part: int = 0, parts: int = 1
    ) -> tuple[float, list[ScoredItem]]:
        """Adds `rewards` (one per completion) to each item of part `part` of `parts` equal, contiguous
        parts of a batch: the model's score plus the letter rule. Returns (seconds, the scored items)."""
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
                item["answer"],
                item["choices"],
                s.correct_letter_bonus,
                s.wrong_letter_penalty,
                item["prompt"],
            )
            rewards[owner].append(value + rule)
        scored: list[ScoredItem] = [{**item, "rewards": r} for item, r in zip(items, rewards, strict=True)]
        return time.perf_counter() - start, scored


class ScorerPool(ActorGroup):
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
        super().__init__(RewardScorer, reward.scorers, options, scheduling, lambda i: (model_path, reward))
        self.scorers = self.actors
        self.start([s.ready.remote() for s in self.scorers], wait)

    def score(self, batches: list[ray.ObjectRef]) -> tuple[list[ray.ObjectRef], float]:
        """Score every batch (by reference, round-robin over scorers, re-sent if a scorer dies).

        With fewer batches than scorers each batch is scored in parts, one per scorer, so no scorer
        idles (two one-thread scorers beat one two-thread scorer on CPU: bench/README.md, design decisions).
        Returns the references of the scored parts (`ScoredItem` lists) in batch order, and the seconds."""
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
            for index, (seconds, payload) in calls.items():
                try:
                    ray.get(seconds)
                    scored[index] = payload
                except RayActorError:
                    todo.append(index)
            for scorer in self.scorers if todo else []:
                call_when_available(scorer.ready.remote)  # let restarting scorers come back first
            attempts += 1
            if todo and attempts > 1 + max(1, len(self.scorers)) * 3:
                raise RuntimeError(f"reward scorers kept failing on {len(todo)} batch parts")
        return scored, time.perf_counter() - start
