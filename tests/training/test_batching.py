"""Length buckets: a batch forwarded in groups of similar-length rows gives the values and gradients of one
padded forward, in the original row order."""

import pytest
import torch

from ultramedical.models.loading import load_policy, load_reward_model
from ultramedical.training.batching import IGNORE_INDEX, batch_logps, pad_batch, rowwise_by_length


def _batch(pad_id: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    lengths = [5, 31, 9, 40, 12, 7]  # unsorted, so a wrong re-ordering shows
    ids = [torch.randint(8, 200, (n,), generator=gen).tolist() for n in lengths]
    labels = [[IGNORE_INDEX] * (n // 2) + seq[n // 2 :] for seq, n in zip(ids, lengths, strict=True)]
    return pad_batch(ids, labels, pad_id)


@pytest.mark.parametrize("buckets", [2, 3, 6, 10])
def test_bucketed_logps_equal_one_padded_forward(artifacts, buckets):
    model = load_policy(artifacts / "tiny" / "policy").float()
    batch = _batch()
    whole_logps, whole_counts = batch_logps(model, batch, 1)
    logps, counts = batch_logps(model, batch, buckets)
    assert torch.equal(counts, whole_counts)
    torch.testing.assert_close(logps, whole_logps, rtol=1e-5, atol=1e-4)

    whole_logps.sum().backward()
    whole_grad = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    logps.sum().backward()
    for grad, expected in zip((p.grad for p in model.parameters()), whole_grad, strict=True):
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-5)


def test_bucketed_rewards_keep_row_order(artifacts):
    model = load_reward_model(artifacts / "tiny" / "reward").float().eval()
    batch = _batch(model.config.pad_token_id)  # the head reads the last token before the first pad

    def score(rows):
        return (model(input_ids=rows["input_ids"], attention_mask=rows["attention_mask"]).logits[:, 0],)

    with torch.no_grad():
        (whole,) = rowwise_by_length(batch, 1, score)
        (bucketed,) = rowwise_by_length(batch, 2, score)
        single = torch.cat([score({k: v[i : i + 1] for k, v in batch.items()})[0] for i in range(6)])
    torch.testing.assert_close(bucketed, whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(bucketed, single, rtol=1e-5, atol=1e-5)
