"""Right-padding token sequences into a tensor (training batches, reward-model forwards)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def pad(sequences: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    """Right-pad integer sequences into a [batch, longest] tensor."""
    longest = max(len(s) for s in sequences)
    out = torch.full((len(sequences), longest), value, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
    return out
