"""Packing sequences that share a prefix: the row layout and the attention mask that keeps suffixes apart."""

import torch

from ultramedical.models.loading import load_policy
from ultramedical.models.shared_prefix import (
    PADDING,
    PREFIX,
    attention_mask,
    common_prefix,
    packed_row,
    takes_custom_masks,
)


def test_common_prefix_and_packed_row():
    sequences = [[5, 6, 7, 8], [5, 6, 9], [5, 6, 7]]
    assert common_prefix(sequences) == 2
    assert common_prefix([[1, 2], [1, 2, 3]]) == 2
    assert common_prefix([[1], [2]]) == 0
    ids, positions, segments = packed_row(sequences, 2)
    assert ids == [5, 6, 7, 8, 9, 7]
    assert positions == [0, 1, 2, 3, 2, 2]  # each suffix continues from the prefix's end
    assert segments == [PREFIX, PREFIX, 1, 1, 2, 3]


def test_suffixes_never_see_each_other():
    segments = torch.tensor([[PREFIX, PREFIX, 1, 1, 2, PADDING]])
    mask = attention_mask(segments, torch.float32)[0, 0] == 0  # additive: 0 where attention goes
    assert mask[4, :4].tolist() == [True, True, False, False]  # suffix 2 sees the prefix, not suffix 1
    assert mask[3, :5].tolist() == [True, True, True, True, False]  # suffix 1 sees prefix and itself
    assert mask[1, 2:].sum() == 0  # the prefix sees nothing after it
    assert mask[5].tolist() == [False] * 5 + [True]  # padding sees itself only (no NaN row)
    assert attention_mask(segments, torch.bfloat16).dtype == torch.bfloat16  # the model's dtype


def test_only_sdpa_and_eager_take_custom_masks(artifacts):
    model = load_policy(artifacts / "tiny" / "policy")
    assert takes_custom_masks(model)  # HF's default on CPU: sdpa
    model.config._attn_implementation = "flash_attention_2"
    assert not takes_custom_masks(model)
