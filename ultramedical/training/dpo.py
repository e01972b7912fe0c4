"""DPO, IPO and cDPO on prompt/chosen/rejected token ids.

Reference log-probs are computed once, by the model itself before its first step (it is the
reference then), so no second model is held in memory while training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ultramedical.data.loading import LoadResult
from ultramedical.data.schemas import PreferenceRecord
from ultramedical.losses import dpo_loss
from ultramedical.online.round_data import TrainItem
from ultramedical.training.algorithm import (
    Algorithm,
    Batch,
    Example,
    ExampleStats,
    ForwardContext,
    forward_on_shard,
    load_preferences,
)
from ultramedical.training.batching import (
    batch_logps,
    join_prompt_completion,
    pad_batch,
    split_prompt_completion,
)
from ultramedical.training.shared_prompt import PROMPT, pack_pairs, packed_logps


def pair_example(tokenizer: Any, record: PreferenceRecord) -> dict[str, list[int]]:
    """prompt / chosen / rejected token ids from a preference record (prompt = all but the last turn)."""
    prompt, chosen = split_prompt_completion(tokenizer, record.chosen[:-1], record.chosen[-1]["content"])
    rejected_prompt, rejected = split_prompt_completion(
        tokenizer, record.rejected[:-1], record.rejected[-1]["content"]
    )
    if rejected_prompt != prompt:
        raise ValueError(f"prompt {record.prompt_id!r}: chosen and rejected have different prompt turns")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


class DPO(Algorithm):
    stage = "dpo"
    sequence_keys = ("chosen_ids", "rejected_ids")

    def read_records(self) -> list[LoadResult]:
        return load_preferences(self.config)

    def build_examples(
        self, records: Sequence[PreferenceRecord], tokenizer: Any
    ) -> tuple[list[Example], ExampleStats]:
        return self.pair_examples([pair_example(tokenizer, record) for record in records])

    def examples_from_round(self, items: Sequence[TrainItem]) -> tuple[list[Example], ExampleStats]:
        return self.pair_examples(items)  # type: ignore[arg-type]  # DPO rounds produce PreferencePairs

    def pair_examples(self, pairs: Sequence[Mapping[str, Any]]) -> tuple[list[Example], ExampleStats]:
        """Examples from prompt / chosen / rejected token ids, each truncated (or dropped) by policy."""
        stats = ExampleStats(records=len(pairs))
        examples = [e for e in (self.truncated_pair(pair, stats) for pair in pairs) if e is not None]
        stats.examples = len(examples)
        return examples, stats

    def truncated_pair(self, example: Mapping[str, Any], stats: ExampleStats) -> Example | None:
        """Apply the truncation policy to both sides of a pair."""
        max_len, truncation = self.config.model.max_seq_len, self.config.trainer.truncation
        chosen = join_prompt_completion(example["prompt"], example["chosen"], max_len, truncation)
        rejected = join_prompt_completion(example["prompt"], example["rejected"], max_len, truncation)
        if chosen is None or rejected is None:
            stats.dropped_too_long += 1
            return None
        stats.truncated += chosen[2] or rejected[2]
        return {
            "chosen_ids": chosen[0],
            "chosen_labels": chosen[1],
            "rejected_ids": rejected[0],
            "rejected_labels": rejected[1],
        }

    def collate(self, examples: Sequence[Example], pad_id: int) -> Batch:
        batch = self._pack(examples, pad_id)
        if all("ref_chosen" in e for e in examples):
            batch["ref_chosen"] = torch.tensor([e["ref_chosen"] for e in examples], dtype=torch.float64)
            batch["ref_rejected"] = torch.tensor([e["ref_rejected"] for e in examples], dtype=torch.float64)
        return batch

    def _pack(self, examples: Sequence[Example], pad_id: int) -> Batch:
        """One row per pair (trainer.share_prompt), else chosen rows then rejected rows."""
        if self.config.trainer.share_prompt:
            return pack_pairs(examples, pad_id)
        ids = [e["chosen_ids"] for e in examples] + [e["rejected_ids"] for e in examples]
        labels = [e["chosen_labels"] for e in examples] + [e["rejected_labels"] for e in examples]
        return pad_batch(ids, labels, pad_id)

    def tokens(self, batch: Batch) -> int:
        """Tokens of the chosen and rejected sequences, the prompt counted in both however it was computed,
        so throughput stays comparable with and without trainer.share_prompt."""
        if "segment_ids" in batch:
            return int((batch["segment_ids"] > PROMPT).sum() + 2 * (batch["segment_ids"] == PROMPT).sum())
        return super().tokens(batch)

    def sequence_logps(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sequence log-probs, length-averaged for IPO (whose loss is defined on averages)."""
        buckets = self.config.trainer.length_buckets
        if "segment_ids" in batch:
            chosen, rejected, chosen_counts, rejected_counts = packed_logps(model, batch, buckets)
            logps, counts = torch.cat([chosen, rejected]), torch.cat([chosen_counts, rejected_counts])
        else:
            logps, counts = batch_logps(model, batch, buckets)
        if self.config.dpo.loss_type == "ipo":
            return logps / counts.clamp(min=1), counts
        return logps, counts

    def prepare(self, model: torch.nn.Module, examples: list[Example], ctx: ForwardContext) -> list[Example]:
        def reference(chunk: list[Example]) -> list[dict[str, float]]:
            logps, _ = self.sequence_logps(model, self.collate(chunk, pad_id=0))
            chosen, rejected = logps.double().chunk(2)
            return [
                {"ref_chosen": c, "ref_rejected": r}
                for c, r in zip(chosen.tolist(), rejected.tolist(), strict=True)
            ]

        return forward_on_shard(examples, ctx, reference)

    def loss(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        settings = self.config.dpo
        logps, counts = self.sequence_logps(model, batch)
        chosen, rejected = logps.chunk(2)
        loss, chosen_rewards, rejected_rewards = dpo_loss(
            chosen,
            rejected,
            batch["ref_chosen"].to(chosen.dtype),
            batch["ref_rejected"].to(chosen.dtype),
            beta=settings.beta,
            loss_type=settings.loss_type,
            label_smoothing=settings.label_smoothing,
        )
        if settings.nll_coef:
            chosen_counts = counts.chunk(2)[0].clamp(min=1)
            chosen_sum = chosen * chosen_counts if settings.loss_type == "ipo" else chosen
            loss = loss + settings.nll_coef * (-chosen_sum / chosen_counts).mean()
        return loss, {
            "rewards/chosen": chosen_rewards.mean(),
            "rewards/rejected": rejected_rewards.mean(),
            "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
            "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
            "logps/chosen": chosen.detach().mean(),
            "logps/rejected": rejected.detach().mean(),
        }
