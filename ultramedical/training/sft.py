"""Supervised fine-tuning: next-token loss on assistant tokens only, multi-turn, optional packing.

Several instruction sources mix by weight (the paper's UltraMix): weight 1 takes every record once,
0.5 a seeded half, 2 every record twice.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch

from ultramedical.data.chat import IGNORE_INDEX, tokenize_conversation
from ultramedical.data.loading import DataError, LoadResult, load_records
from ultramedical.models.padding import pad
from ultramedical.models.shared_prefix import (
    MASK_IMPLEMENTATIONS,
    PADDING,
    attention_implementation,
    attention_mask,
    takes_custom_masks,
)
from ultramedical.training.algorithm import Algorithm, Batch, Example, ExampleStats
from ultramedical.training.batching import pad_batch


def mix_by_weight(results: Sequence[LoadResult], weights: Sequence[float], seed: int) -> list[Any]:
    rng = random.Random(seed)
    mixed: list[Any] = []
    for result, weight in zip(results, weights, strict=True):
        whole, fraction = int(weight), weight - int(weight)
        mixed += result.records * whole
        mixed += rng.sample(result.records, round(fraction * len(result.records)))
    rng.shuffle(mixed)
    return mixed


def pack(examples: Sequence[Example], max_len: int) -> list[Example]:
    """Concatenate examples into rows of at most max_len tokens (no example is split).

    Each example keeps its own positions (from 0) and a segment id (1, 2, ...), from which `collate`
    builds an attention mask that keeps it to itself: a packed row's loss is that of its examples
    computed apart. An example's first token is never a target (it would be predicted from the previous
    example's last one).
    """
    keys = ("input_ids", "labels", "position_ids", "segment_ids")
    packed: list[Example] = []
    row: Example = {key: [] for key in keys}
    segment = 0
    for example in examples:
        length = len(example["input_ids"])
        if row["input_ids"] and len(row["input_ids"]) + length > max_len:
            packed.append(row)
            row, segment = {key: [] for key in keys}, 0
        segment += 1
        row["input_ids"] += example["input_ids"]
        row["labels"] += [IGNORE_INDEX, *example["labels"][1:]]
        row["position_ids"] += range(length)
        row["segment_ids"] += [segment] * length
    if row["input_ids"]:
        packed.append(row)
    return packed


class SFT(Algorithm):
    stage = "sft"
    sequence_keys = ("input_ids",)

    def read_records(self) -> list[LoadResult]:
        data = self.config.data
        if not data.instructions:
            raise DataError("data.instructions is empty: SFT needs at least one instruction source")
        return [
            load_records(s.path, "instruction", s.split, data.on_invalid, s.max_records)
            for s in data.instructions
        ]

    def load(self, tokenizer: Any) -> tuple[list[Example], ExampleStats]:
        results = self.read_records()
        weights = [s.weight for s in self.config.data.instructions]
        records = mix_by_weight(results, weights, self.config.trainer.seed)
        examples, stats = self.build_examples(records, tokenizer)
        stats.skipped_invalid = sum(len(r.problems) for r in results)
        if not examples:
            raise DataError(f"sft: every one of {stats.records} examples is over model.max_seq_len")
        return examples, stats

    def build_examples(self, records: Sequence[Any], tokenizer: Any) -> tuple[list[Example], ExampleStats]:
        max_len, truncation = self.config.model.max_seq_len, self.config.trainer.truncation
        stats = ExampleStats(records=len(records))
        examples = []
        for record in records:
            tokenized = tokenize_conversation(tokenizer, record.messages, max_len, truncation)
            if tokenized is None:
                stats.dropped_too_long += 1
                continue
            stats.truncated += tokenized.truncated
            examples.append({"input_ids": tokenized.input_ids, "labels": tokenized.labels})
        if self.settings.packing:
            examples = pack(examples, max_len)
            stats.notes["packed_rows"] = len(examples)
        stats.examples = len(examples)
        return examples, stats

    def collate(self, examples: Sequence[Example], pad_id: int) -> Batch:
        batch = pad_batch([e["input_ids"] for e in examples], [e["labels"] for e in examples], pad_id)
        if "segment_ids" in examples[0]:  # packed rows (sft.packing)
            batch["position_ids"] = pad([e["position_ids"] for e in examples], 0)
            batch["segment_ids"] = pad([e["segment_ids"] for e in examples], PADDING)
        return batch

    def loss(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if "segment_ids" in batch:
            if not takes_custom_masks(model):
                raise ValueError(
                    f"sft.packing needs an attention implementation that takes a custom mask "
                    f"({', '.join(MASK_IMPLEMENTATIONS)}); the model uses "
                    f"{attention_implementation(model)!r}: set sft.packing: false"
                )
            dtype = next(model.parameters()).dtype
            inputs = {
                "attention_mask": attention_mask(batch["segment_ids"], dtype),
                "position_ids": batch["position_ids"],
            }
        else:
            inputs = {"attention_mask": batch["attention_mask"]}
        logits = model(input_ids=batch["input_ids"], **inputs).logits
        targets = batch["labels"][:, 1:]
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX
        )
        return loss, {"label_tokens": (targets != IGNORE_INDEX).sum().float()}
