"""Packed weights: the byte buffer a trainer publishes round-trips every tensor exactly, through Ray too."""

import numpy as np
import pytest
import torch

from ultramedical.models.packed import WeightPacker


def _state() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {
        "embed.weight": torch.randn(7, 3, generator=gen),
        "norm.weight": torch.randn(5, generator=gen).to(torch.bfloat16),  # odd byte count, other dtype
        "scale": torch.tensor(2.5),
        "lm_head.weight": torch.randn(3, 7, generator=gen),
    }


def test_pack_round_trips_names_shapes_dtypes_and_values():
    state = _state()
    packed = WeightPacker().pack(state)
    out = packed.tensors()
    assert list(out) == list(state)
    for name, tensor in state.items():
        assert out[name].dtype == tensor.dtype and out[name].shape == tensor.shape
        assert torch.equal(out[name], tensor)
    assert packed.numel() == sum(t.numel() for t in state.values())
    assert all(e.offset % 64 == 0 for e in packed.entries)


def test_packer_reuses_its_buffer_until_the_layout_changes():
    packer, state = WeightPacker(), _state()
    first = packer.pack(state)
    state["embed.weight"].add_(1.0)
    second = packer.pack(state)
    assert np.shares_memory(first.data, second.data)
    assert torch.equal(second.tensors()["embed.weight"], state["embed.weight"])
    state["extra"] = torch.ones(2)
    third = packer.pack(state)
    assert not np.shares_memory(second.data, third.data) and "extra" in third.tensors()


def test_packed_weights_survive_the_object_store_read_only(ray_cluster):
    import ray

    state = _state()
    ref = ray.put(WeightPacker().pack(state))
    fetched = ray.get(ref)
    assert not fetched.data.flags.writeable  # read straight from the store, not copied
    for name, tensor in fetched.tensors().items():
        assert torch.equal(tensor, state[name])
    with pytest.raises(ValueError):
        fetched.data[0] = 1
