"""KTO from paired data (chosen desirable, rejected undesirable) or unpaired labelled completions.

The KL reference point pairs each prompt with another example's completion. The partner is fixed
when the examples are built, so its reference log-prob can be computed once like the others.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ultramedical.data.loading import LoadResult, load_records
from ultramedical.data.schemas import PreferenceRecord, UnpairedRecord
from ultramedical.losses import kto_loss
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


def labelled_completions(tokenizer: Any, records: Sequence[PreferenceRecord | UnpairedRecord]) -> list[dict]:
    """(prompt ids, completion ids, desirable) triples from pairs or unpaired records."""
    out = []
    for record in records:
        if isinstance(record, UnpairedRecord):
            prompt, completion = split_prompt_completion(tokenizer, record.prompt, record.completion)
            out.append({"prompt": prompt, "completion": completion, "label": record.label})
            continue
        for side, label in ((record.chosen, True), (record.rejected, False)):
            prompt, completion = split_prompt_completion(tokenizer, side[:-1], side[-1]["content"])
            out.append({"prompt": prompt, "completion": completion, "label": label})
    return out


class KTO(Algorithm):
    stage = "kto"
    sequence_keys = ("ids", "kl_ids")

    def read_records(self) -> list[LoadResult]:
        source = self.config.data.unpaired
        if source is None:
            return load_preferences(self.config)
        return [
            load_records(
                source.path, "unpaired", source.split, self.config.data.on_invalid, source.max_records
            )
        ]

    def build_examples(self, records: Sequence[Any], tokenizer: Any) -> tuple[list[Example], ExampleStats]:
        return self.labelled_examples(labelled_completions(tokenizer, records), len(records))

    def examples_from_round(self, items: Sequence[TrainItem]) -> tuple[list[Example], ExampleStats]:
        return self.labelled_examples(items, len(items))  # type: ignore[arg-type]  # LabelledCompletions

    def labelled_examples(
        self, items: Sequence[Mapping[str, Any]], records: int
    ) -> tuple[list[Example], ExampleStats]:
        """Examples from prompt / completion / label: truncated by policy, then each given a fixed KL
        partner (another example's completion)."""
        stats = ExampleStats(records=records)
        max_len, truncation = self.config.model.max_seq_len, self.config.trainer.truncation
        rng = random.Random(self.config.trainer.seed)
        partners = list(range(len(items)))
        rng.shuffle(partners)
        examples = []
        for index, item in enumerate(items):
            partner = partners[index] if partners[index] != index else partners[index - 1]
            own = join_prompt_completion(item["prompt"], item["completion"], max_len, truncation)
            mismatched = join_prompt_completion(
                item["prompt"], items[partner]["completion"], max_len, truncation
            )
            if own is None or mismatched is None:
                stats.dropped_too_long += 1
                continue
            stats.truncated += own[2]
            examples.append(
                {
                    "ids": own[0],
                    "labels": own[1],
                    "kl_ids": mismatched[0],
                    "kl_labels": mismatched[1],
                    "desirable": bool(item["label"]),
                }
            )
        stats.examples = len(examples)
        stats.notes["desirable"] = sum(e["desirable"] for e in examples)
        return examples, stats

    def collate(self, examples: Sequence[Example], pad_id: int) -> Batch:
        ids = [e["ids"] for e in examples] + [e["kl_ids"] for e in examples]
        labels = [e["labels"] for e in examples] + [e["kl_labels"] for e in examples]
        batch = pad_batch(ids, labels, pad_id)
        batch["desirable"] = torch.tensor([e["desirable"] for e in examples], dtype=torch.bool)
        if all("ref" in e for e in examples):
            batch["ref"] = torch.tensor([e["ref"] for e in examples], dtype=torch.float64)
            batch["ref_kl"] = torch.tensor([e["ref_kl"] for e in examples], dtype=torch.float64)
        return batch

    def prepare(self, model: torch.nn.Module, examples: list[Example], ctx: ForwardContext) -> list[Example]:
        def reference(chunk: list[Example]) -> list[dict[str, float]]:
            batch = self.collate(chunk, pad_id=0)
            logps, _ = batch_logps(model, batch, self.config.trainer.length_buckets)
            own, mismatched = logps.double().chunk(2)
            return [{"ref": a, "ref_kl": b} for a, b in zip(own.tolist(), mismatched.tolist(), strict=True)]

        return forward_on_shard(examples, ctx, reference)

    def loss(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        settings = self.config.kto
        own, mismatched = batch_logps(model, batch, self.config.trainer.length_buckets)[0].chunk(2)
        desirable = batch["desirable"]
        loss, rewards, kl = kto_loss(
            own,
            batch["ref"].to(own.dtype),
            desirable,
            mismatched,
            batch["ref_kl"].to(own.dtype),
            beta=settings.beta,
            desirable_weight=settings.desirable_weight,
            undesirable_weight=settings.undesirable_weight,
        )
        chosen = rewards[desirable].mean() if desirable.any() else torch.zeros(())
        rejected = rewards[~desirable].mean() if (~desirable).any() else torch.zeros(())
        return loss, {
            "kl": kl,
            "rewards/chosen": chosen,
            "rewards/rejected": rejected,
            "rewards/margins": chosen - rejected,
        }
