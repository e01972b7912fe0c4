"""Model weights in one contiguous byte buffer: the form in which a trainer publishes them.

A dict of tensors put into Ray's object store is pickled tensor by tensor and copied again when read. One
NumPy buffer is written into the store in a single copy and read back without one (Ray maps it read-only),
and `WeightPacker` keeps its buffer from one publish to the next, so packing touches no fresh memory.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

_ALIGN = 64  # bytes: every tensor starts on a cache line


@dataclass(frozen=True)
class Entry:
    name: str
    offset: int
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


@dataclass(frozen=True)
class PackedWeights:
    data: np.ndarray  # uint8, every tensor's bytes at its entry's offset
    entries: tuple[Entry, ...]

    def tensors(self) -> dict[str, torch.Tensor]:
        """{name: tensor} viewing `data` (no copy); read-only when `data` came from the object store."""
        with warnings.catch_warnings():
            # torch warns that a read-only buffer is not writable; these views are only ever read
            warnings.simplefilter("ignore", UserWarning)
            raw = torch.from_numpy(self.data)
        return {e.name: raw[e.offset : e.offset + e.nbytes].view(e.dtype).view(e.shape) for e in self.entries}

    def numel(self) -> int:
        return sum(int(np.prod(e.shape, dtype=np.int64)) for e in self.entries)


def _layout(state: Mapping[str, torch.Tensor]) -> tuple[tuple[Entry, ...], int]:
    entries, offset = [], 0
    for name, tensor in state.items():
        entry = Entry(name, offset, tuple(tensor.shape), tensor.dtype)
        entries.append(entry)
        offset += -(-entry.nbytes // _ALIGN) * _ALIGN
    return tuple(entries), offset


class WeightPacker:
    """Packs a state dict into a byte buffer that is reused while the names, shapes and dtypes stay the same.

    The buffer is overwritten by the next `pack`, so a packed result must be consumed (e.g. `ray.put`,
    which copies it) before packing again.
    """

    def __init__(self) -> None:
        self._entries: tuple[Entry, ...] = ()
        self._buffer = np.empty(0, dtype=np.uint8)

    def pack(self, state: Mapping[str, torch.Tensor]) -> PackedWeights:
        entries, size = _layout(state)
        if entries != self._entries:
            self._entries, self._buffer = entries, np.empty(size, dtype=np.uint8)
        packed = PackedWeights(self._buffer, self._entries)
        for view, tensor in zip(packed.tensors().values(), state.values(), strict=True):
            view.copy_(tensor.detach())
        return packed
