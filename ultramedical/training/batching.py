"""Tensor plumbing shared by the algorithms: padding, prompt+completion joining, sequence log-probs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from ultramedical.data.chat import IGNORE_INDEX, Truncation, render
from ultramedical.data.schemas import Message
from ultramedical.models.padding import pad


def pad_batch(
    input_ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]] | None, pad_id: int
) -> dict:
    ids = pad(input_ids, pad_id)
    batch = {"input_ids": ids, "attention_mask": pad([[1] * len(s) for s in input_ids], 0)}
    if labels is not None:
        batch["labels"] = pad(labels, IGNORE_INDEX)
    return batch


def split_prompt_completion(
    tokenizer: Any, prompt: Sequence[Message], completion: str
) -> tuple[list[int], list[int]]:
    """Token ids of the prompt (with the assistant header) and of the completion (with its end token)."""
    head = render(tokenizer, prompt, add_generation_prompt=True)
    full = render(tokenizer, [*prompt, {"role": "assistant", "content": completion}])
    if not full.startswith(head):
        raise ValueError("the chat template does not render the prompt as a prefix of the conversation")
    prompt_ids = tokenizer(head, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(full[len(head) :], add_special_tokens=False)["input_ids"]
    return prompt_ids, completion_ids


def join_prompt_completion(
    prompt_ids: Sequence[int], completion_ids: Sequence[int], max_len: int, truncation: Truncation
) -> tuple[list[int], list[int], bool] | None:
    """(input_ids, labels on the completion, truncated) or None when dropped.

    `left` cuts the prompt's start so the completion survives; `right` cuts the completion's end.
    """
    ids, completion = list(prompt_ids), list(completion_ids)
    truncated = len(ids) + len(completion) > max_len
    if truncated:
        if truncation == "drop":
            return None
        if truncation == "left":
            keep_prompt = max_len - len(completion)
            if keep_prompt < 1:
                return None
            ids = ids[-keep_prompt:]
        else:
            completion = completion[: max_len - len(ids)]
            if not completion:
                return None
    return ids + completion, [IGNORE_INDEX] * len(ids) + completion, truncated


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-probability of the labelled tokens of each sequence, and how many there were.

    log p(token) = logit[token] - logsumexp(logits): no full log-softmax is kept, which matters for
    a 128k vocabulary.
    """
    logits = logits[:, :-1, :].float()
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    safe = targets.clamp(min=0)
    picked = torch.gather(logits, 2, safe.unsqueeze(-1)).squeeze(-1)
    token_logps = picked - torch.logsumexp(logits, dim=-1)
    return (token_logps * mask).sum(-1), mask.sum(-1)


def batch_logps(
    model: torch.nn.Module, batch: dict[str, torch.Tensor], buckets: int
) -> tuple[torch.Tensor, ...]:
    """`sequence_logps` of every row of a batch through `model`, in length buckets (`rowwise_by_length`)."""

    def logps(rows: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        logits = model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"]).logits
        return sequence_logps(logits, rows["labels"])

    return rowwise_by_length(batch, buckets, logps)


# [batch, length] fields a bucket cuts to its width (the last three: packed pairs, see shared_prompt.py)
SEQUENCE_FIELDS = ("input_ids", "attention_mask", "labels", "position_ids", "segment_ids", "source")


def rowwise_by_length(
    batch: dict[str, torch.Tensor],
    buckets: int,
    compute: Callable[[dict[str, torch.Tensor]], tuple[torch.Tensor, ...]],
) -> tuple[torch.Tensor, ...]:
    """Row-wise results of `compute` on a right-padded batch, computed in `buckets` groups of rows of similar
    length, each cut to its own longest row: the same values in the same row order, less padding computed.

    A preference batch holds chosen and rejected sequences of quite different lengths; padding them all to
    the longest one wasted a tenth of a step's compute on CPU (trainer.length_buckets). `compute` gets
    the batch's SEQUENCE_FIELDS (those present) for a subset of rows.
    """
    mask = batch["attention_mask"]
    fields = [key for key in SEQUENCE_FIELDS if key in batch]
    if buckets <= 1 or len(mask) < 2:
        return compute({key: batch[key] for key in fields})
    lengths = mask.sum(1)
    order = torch.argsort(lengths, stable=True)
    outputs = []
    for rows in order.tensor_split(min(buckets, len(order))):
        width = int(lengths[rows].max())
        outputs.append(compute({key: batch[key][rows, :width] for key in fields}))
    inverse = torch.argsort(order)
    return tuple(torch.cat(parts)[inverse] for parts in zip(*outputs, strict=True))
