"""Sequences that start alike, computed as one row: [shared prefix | suffix 1 | suffix 2 | ...].

An attention mask lets each suffix see the prefix and itself, never another suffix, and each suffix's
positions continue from the prefix's end, so every sequence gets the activations it would get on its own
while the prefix is computed once. Used for a DPO pair, [prompt | chosen | rejected]
(training/shared_prompt.py), and for a prompt's completions under the reward model (models/reward.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

PREFIX, PADDING = 0, -1  # segment ids; suffix n (from 1) has segment id n
MASK_IMPLEMENTATIONS = ("sdpa", "eager")  # attention that takes an arbitrary [batch, 1, query, key] mask


def packed_row(sequences: Sequence[Sequence[int]], shared: int) -> tuple[list[int], list[int], list[int]]:
    """(token ids, position ids, segment ids) of sequences whose first `shared` tokens are the same."""
    ids, positions, segments = list(sequences[0][:shared]), list(range(shared)), [PREFIX] * shared
    for segment, sequence in enumerate(sequences, start=1):
        ids += sequence[shared:]
        positions += range(shared, len(sequence))
        segments += [segment] * (len(sequence) - shared)
    return ids, positions, segments


def segment_ends(segments: Sequence[int]) -> list[int]:
    """Row index of the last token of each suffix segment (1, 2, ...) of a packed row."""
    ends: dict[int, int] = {}
    for index, segment in enumerate(segments):
        if segment > PREFIX:
            ends[segment] = index
    return [ends[segment] for segment in sorted(ends)]


def common_prefix(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest prefix every sequence starts with."""
    shortest = min(len(s) for s in sequences)
    for i in range(shortest):
        if any(s[i] != sequences[0][i] for s in sequences[1:]):
            return i
    return shortest


def attention_mask(segment_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """[batch, 1, query, key], additive (0 or the dtype's minimum): causal in row order, over the prefix
    and the query's own suffix. Additive rather than boolean: both sdpa and eager attention take it, and
    sdpa ran faster with it on CPU (bench/README.md, design decisions).

    A padding query sees itself only: a row with nothing to attend to gives NaN in sdpa, and a NaN
    activation poisons the weight gradients even where its own gradient is zero.
    """
    width = segment_ids.shape[1]
    index = torch.arange(width, device=segment_ids.device)
    query, key = segment_ids[:, :, None], segment_ids[:, None, :]
    own = (key == PREFIX) | (key == query)
    allowed = (index[None, :] <= index[:, None]) & (query != PADDING) & (key != PADDING) & own
    allowed |= torch.eye(width, dtype=torch.bool, device=segment_ids.device)
    blocked = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return blocked.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def attention_implementation(model: torch.nn.Module) -> str:
    """The HF attention implementation of a model, unwrapping DeepSpeed's engine and similar wrappers."""
    inner: Any = model
    while getattr(inner, "config", None) is None and hasattr(inner, "module"):
        inner = inner.module
    return getattr(inner.config, "_attn_implementation", None) or "eager"


def takes_custom_masks(model: torch.nn.Module) -> bool:
    return attention_implementation(model) in MASK_IMPLEMENTATIONS
