"""Model weights in contiguous byte buffers: the form in which a trainer publishes them.

A dict of tensors put into Ray's object store is pickled tensor by tensor and copied again when read. One
NumPy buffer is written into the store in a single copy and read back without one (Ray maps it read-only),
and `WeightPacker` keeps its buffer from one publish to the next, so packing touches no fresh memory.

A large model is published in buckets (`plan_buckets`), so the publishing rank holds one bucket's bytes at
a time rather than the whole model. A bucket never splits a decoder layer, so a ZeRO-3 gather fetches whole
layers and a bucket can be loaded on its own: vLLM fuses q/k/v and gate/up into one layer, and its in-place
reload finishes a layer when all of its parts have arrived, or at the end of the call (vLLM 0.32,
model_loader/reload).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
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
    """Packs a state dict into a byte buffer that is reused for every state dict that fits in it.

    The buffer is overwritten by the next `pack`, so a packed result must be consumed (e.g. `ray.put`,
    which copies it) before packing again. It grows to the largest state dict packed, one bucket's worth
    when publishing in buckets.
    """

    def __init__(self) -> None:
        self._buffer = np.empty(0, dtype=np.uint8)

    @property
    def capacity(self) -> int:
        return self._buffer.nbytes

    def pack(self, state: Mapping[str, torch.Tensor]) -> PackedWeights:
        entries, size = _layout(state)
        if size > self._buffer.nbytes:
            self._buffer = np.empty(size, dtype=np.uint8)
        packed = PackedWeights(self._buffer[:size], entries)
        for view, tensor in zip(packed.tensors().values(), state.values(), strict=True):
            view.copy_(tensor.detach())
        return packed


_LAYER = re.compile(r"^(.*?\.layers\.\d+)\.")


def module_group(name: str) -> str:
    """The unit a bucket never splits: a decoder layer (`model.layers.7`), else the parameter's module."""
    match = _LAYER.match(name)
    return match.group(1) if match else name.rpartition(".")[0]


@dataclass(frozen=True)
class Bucket:
    names: list[str]  # parameter names, in publish order
    nbytes: int  # packed size (each tensor padded as `_layout` pads it)


def plan_buckets(sizes: Sequence[tuple[str, int]], bucket_bytes: int) -> list[Bucket]:
    """Parameters in publish order, cut into buckets of about `bucket_bytes`. Module groups stay whole: a
    group larger than `bucket_bytes` is a bucket on its own, so the largest bucket is
    max(bucket_bytes, largest group)."""
    if bucket_bytes <= 0:
        raise ValueError(f"bucket size must be positive, got {bucket_bytes} bytes")
    groups: dict[str, list[tuple[str, int]]] = {}
    for name, nbytes in sizes:
        groups.setdefault(module_group(name), []).append((name, -(-nbytes // _ALIGN) * _ALIGN))
    cut: list[list[tuple[str, int]]] = []
    filled = bucket_bytes  # forces a new bucket for the first group
    for members in groups.values():
        group_bytes = sum(nbytes for _, nbytes in members)
        if filled + group_bytes > bucket_bytes:
            cut.append([])
            filled = 0
        cut[-1].extend(members)
        filled += group_bytes
    return [Bucket([name for name, _ in members], sum(n for _, n in members)) for members in cut]
