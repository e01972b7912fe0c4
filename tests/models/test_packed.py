"""Packed weights: the byte buffer a trainer publishes round-trips every tensor exactly, through Ray too."""

import numpy as np
import pytest
import torch

from ultramedical.models.packed import WeightPacker, module_group, plan_buckets


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


def test_packer_reuses_its_buffer_for_every_state_that_fits():
    packer, state = WeightPacker(), _state()
    first = packer.pack(state)
    state["embed.weight"].add_(1.0)
    second = packer.pack(state)
    assert np.shares_memory(first.data, second.data)
    assert torch.equal(second.tensors()["embed.weight"], state["embed.weight"])
    smaller = packer.pack({"norm.weight": state["norm.weight"]})  # a later, smaller bucket: same memory
    assert np.shares_memory(second.data, smaller.data) and smaller.data.nbytes < second.data.nbytes
    assert torch.equal(smaller.tensors()["norm.weight"], state["norm.weight"])
    state["extra"] = torch.ones(64)
    grown = packer.pack(state)
    assert not np.shares_memory(second.data, grown.data) and "extra" in grown.tensors()
    assert packer.capacity == grown.data.nbytes


LLAMA = [
    ("model.embed_tokens.weight", 4000),
    *[
        (f"model.layers.{i}.{part}.weight", nbytes)
        for i in range(3)
        for part, nbytes in [
            ("self_attn.q_proj", 640),
            ("self_attn.k_proj", 128),
            ("self_attn.v_proj", 128),
            ("self_attn.o_proj", 640),
            ("mlp.gate_proj", 1280),
            ("mlp.up_proj", 1280),
            ("mlp.down_proj", 1280),
            ("input_layernorm", 64),
        ]
    ],
    ("model.norm.weight", 64),
    ("lm_head.weight", 4000),
]


def test_buckets_keep_decoder_layers_whole_and_hold_every_parameter_once():
    buckets = plan_buckets(LLAMA, bucket_bytes=6000)
    assert [name for bucket in buckets for name in bucket.names] == [name for name, _ in LLAMA]
    assert sum(bucket.nbytes for bucket in buckets) == sum(-(-n // 64) * 64 for _, n in LLAMA)
    for bucket in buckets:
        groups = {module_group(name) for name in bucket.names}
        for group in groups:  # a group that starts in this bucket ends in it
            assert all(name in bucket.names for name, _ in LLAMA if module_group(name) == group)
    # 5440 bytes a layer: two never share a 6000-byte bucket, nor a layer the embedding's; the final
    # norm fits beside the last layer, and lm_head goes alone.
    assert [len(b.names) for b in buckets] == [1, 8, 8, 9, 1]
    assert max(b.nbytes for b in buckets) <= 6000


def test_a_group_larger_than_the_bucket_is_a_bucket_of_its_own():
    buckets = plan_buckets(LLAMA, bucket_bytes=100)
    assert len(buckets) == 1 + 3 + 2  # embedding, three layers, the norm, lm_head
    assert module_group("model.layers.12.mlp.up_proj.weight") == "model.layers.12"
    assert module_group("model.norm.weight") == "model.norm"
    with pytest.raises(ValueError, match="bucket size"):
        plan_buckets(LLAMA, bucket_bytes=0)


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
