"""A pair packed as [prompt | chosen | rejected] gives the log-probs and gradients of the two sequences
forwarded on their own, for every way the two can share (or not share) a prefix."""

import pytest
import torch

from ultramedical.models.loading import load_policy
from ultramedical.models.shared_prefix import PADDING
from ultramedical.training.batching import IGNORE_INDEX, batch_logps, join_prompt_completion, pad_batch
from ultramedical.training.shared_prompt import (
    CHOSEN,
    PROMPT,
    REJECTED,
    pack_pairs,
    packed_logps,
    shared_length,
)


def _pair(prompt: list[int], chosen: list[int], rejected: list[int], max_len: int = 64) -> dict:
    c_ids, c_labels, _ = join_prompt_completion(prompt, chosen, max_len, "left")
    r_ids, r_labels, _ = join_prompt_completion(prompt, rejected, max_len, "left")
    return {
        "chosen_ids": c_ids,
        "chosen_labels": c_labels,
        "rejected_ids": r_ids,
        "rejected_labels": r_labels,
    }


def _pairs() -> list[dict]:
    gen = torch.Generator().manual_seed(0)

    def tokens(n: int) -> list[int]:
        return torch.randint(8, 200, (n,), generator=gen).tolist()

    prompt = tokens(20)
    return [
        _pair(tokens(12), tokens(9), tokens(25)),  # rejected longer
        _pair(prompt, tokens(30), tokens(4)),  # chosen longer
        _pair(prompt, [7, 7, *tokens(5)], [7, 7, *tokens(8)]),  # alike starts are labelled: not shared
        _pair(tokens(3), tokens(40), tokens(2)),
        _pair(tokens(40), tokens(30), tokens(10), max_len=48),  # left truncation keeps different prompts
        _pair([], tokens(6), tokens(9)),  # nothing to share
    ]


def _unpacked(pairs: list[dict]) -> dict:
    ids = [p["chosen_ids"] for p in pairs] + [p["rejected_ids"] for p in pairs]
    labels = [p["chosen_labels"] for p in pairs] + [p["rejected_labels"] for p in pairs]
    return pad_batch(ids, labels, pad_id=0)


def test_shared_prefix_is_the_common_unlabelled_start():
    pairs = _pairs()
    lengths = [
        shared_length(
            {"ids": p["chosen_ids"], "labels": p["chosen_labels"]},
            {"ids": p["rejected_ids"], "labels": p["rejected_labels"]},
        )
        for p in pairs
    ]
    assert lengths[:4] == [12, 20, 20, 3]
    assert lengths[4] < 18 and lengths[5] == 0  # truncated to different prompts; an empty prompt

    batch = pack_pairs(pairs, pad_id=0)
    segments = batch["segment_ids"]
    assert (segments[0] == PROMPT).sum() == 12
    assert (segments[0] == CHOSEN).sum() == 9 and (segments[0] == REJECTED).sum() == 25
    for row, pair in enumerate(pairs):
        real = int(batch["attention_mask"][row].sum())
        assert real == len(pair["chosen_ids"]) + len(pair["rejected_ids"]) - lengths[row]
        assert (segments[row, real:] == PADDING).all()
        # the rejected completion's positions continue from the shared prefix, not from the chosen one
        rejected_positions = batch["position_ids"][row][segments[row] == REJECTED]
        assert rejected_positions.tolist() == list(range(lengths[row], len(pair["rejected_ids"])))


@pytest.mark.parametrize("buckets", [1, 3])
def test_packed_logps_and_gradients_equal_separate_rows(artifacts, buckets):
    model = load_policy(artifacts / "tiny" / "policy").float()
    pairs = _pairs()
    separate, separate_counts = batch_logps(model, _unpacked(pairs), buckets)
    separate.sum().backward()
    expected_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    chosen, rejected, chosen_counts, rejected_counts = packed_logps(model, pack_pairs(pairs, 0), buckets)
    assert torch.equal(torch.cat([chosen_counts, rejected_counts]), separate_counts)
    torch.testing.assert_close(torch.cat([chosen, rejected]), separate, rtol=1e-5, atol=1e-4)
    (chosen.sum() + rejected.sum()).backward()
    for grad, expected in zip((p.grad for p in model.parameters()), expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


def test_eager_attention_gives_the_same_logps(artifacts):
    model = load_policy(artifacts / "tiny" / "policy").float().eval()
    pairs = _pairs()
    with torch.no_grad():
        sdpa = packed_logps(model, pack_pairs(pairs, 0), 1)
        model.config._attn_implementation = "eager"
        eager = packed_logps(model, pack_pairs(pairs, 0), 1)
    for a, b in zip(sdpa, eager, strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-4)


def test_attention_without_custom_masks_is_refused_by_name(artifacts):
    model = load_policy(artifacts / "tiny" / "policy").float()
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="trainer.share_prompt"):
        packed_logps(model, pack_pairs(_pairs(), 0), 1)


def test_labels_outside_completions_are_not_counted():
    pairs = _pairs()
    batch = pack_pairs(pairs, 0)
    counted = (batch["labels"] != IGNORE_INDEX) & (batch["source"] >= 0)
    assert not counted[batch["segment_ids"] == PROMPT].any()
    for row, pair in enumerate(pairs):
        chosen_labelled = sum(x != IGNORE_INDEX for x in pair["chosen_labels"][1:])
        assert int(counted[row][batch["segment_ids"][row] == CHOSEN].sum()) == chosen_labelled
