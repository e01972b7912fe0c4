"""Reward modelling: a sequence-classification head on the policy architecture, Bradley-Terry loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ultramedical.data.chat import render
from ultramedical.data.loading import LoadResult
from ultramedical.data.schemas import Message, PreferenceRecord
from ultramedical.losses import reward_loss
from ultramedical.training.algorithm import Algorithm, Batch, Example, ExampleStats, load_preferences
from ultramedical.training.batching import pad_batch, rowwise_by_length


def conversation_ids(
    tokenizer: Any, messages: Sequence[Message], max_len: int, truncation: str
) -> tuple[list[int], bool] | None:
    """A whole conversation for the reward model to score, and whether it was cut; `left` keeps its end."""
    ids = tokenizer(render(tokenizer, messages), add_special_tokens=False)["input_ids"]
    if len(ids) <= max_len:
        return ids, False
    if truncation == "drop":
        return None
    return (ids[-max_len:] if truncation == "left" else ids[:max_len]), True


def score_margin(record: PreferenceRecord) -> float:
    chosen, rejected = record.score("chosen"), record.score("rejected")
    return chosen - rejected if chosen is not None and rejected is not None else 0.0


class RewardModeling(Algorithm):
    stage = "rm"
    sequence_keys = ("chosen", "rejected")
    model_kind = "reward"

    def read_records(self) -> list[LoadResult]:
        return load_preferences(self.config)

    def build_examples(
        self, records: Sequence[PreferenceRecord], tokenizer: Any
    ) -> tuple[list[Example], ExampleStats]:
        max_len, truncation = self.config.model.max_seq_len, self.config.trainer.truncation
        stats = ExampleStats(records=len(records))
        examples = []
        for record in records:
            chosen = conversation_ids(tokenizer, record.chosen, max_len, truncation)
            rejected = conversation_ids(tokenizer, record.rejected, max_len, truncation)
            if chosen is None or rejected is None:
                stats.dropped_too_long += 1
                continue
            stats.truncated += chosen[1] or rejected[1]
            examples.append({"chosen": chosen[0], "rejected": rejected[0], "margin": score_margin(record)})
        stats.examples = len(examples)
        return examples, stats

    def collate(self, examples: Sequence[Example], pad_id: int) -> Batch:
        batch = pad_batch([e["chosen"] for e in examples] + [e["rejected"] for e in examples], None, pad_id)
        batch["margin"] = torch.tensor([e["margin"] for e in examples], dtype=torch.float32)
        return batch

    def loss(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        def score(rows: Batch) -> tuple[torch.Tensor]:
            return (model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"]).logits[:, 0],)

        (rewards,) = rowwise_by_length(batch, self.config.trainer.length_buckets, score)
        rewards = rewards.float()
        chosen, rejected = rewards.chunk(2)
        settings = self.config.rm
        margin = batch["margin"] if settings.margin_from_scores else None
        loss = reward_loss(chosen, rejected, margin=margin, center_coef=settings.center_coef)
        return loss, {
            "accuracy": (chosen > rejected).float().mean(),
            "margin": (chosen - rejected).mean().detach(),
            "reward_mean": rewards.mean().detach(),
        }
