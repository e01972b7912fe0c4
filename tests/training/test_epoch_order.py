"""The epoch's example order: every example once, the same on every run, and with group_by_length, steps
of similar-length examples dealt evenly to the ranks."""

import random

import pytest

from ultramedical.training.sampler import LENGTH_GROUP_STEPS, epoch_order

WORLD, MB = 2, 4


def _lengths(n: int) -> list[int]:
    rng = random.Random(3)
    return [rng.randint(10, 400) for _ in range(n)]


def _steps(n: int, lengths: list[int] | None, epoch: int = 0) -> list[list[int]]:
    ranks = [epoch_order(n, epoch, 0, rank, WORLD, MB, lengths) for rank in range(WORLD)]
    return [sum(batches, []) for batches in zip(*ranks, strict=True)]


@pytest.mark.parametrize("grouped", [False, True])
def test_every_example_once_and_the_same_order_every_run(grouped):
    n = 2 * WORLD * MB * LENGTH_GROUP_STEPS + 6  # two full windows and a partial one
    lengths = _lengths(n) if grouped else None
    steps = _steps(n, lengths)
    flat = [i for step in steps for i in step]
    assert sorted(flat) == sorted(set(flat)) and len(flat) == n
    assert steps == _steps(n, lengths)
    assert steps != _steps(n, lengths, epoch=1)


def test_grouping_by_length_cuts_padding_and_balances_ranks():
    n = 2 * WORLD * MB * LENGTH_GROUP_STEPS
    lengths = _lengths(n)

    def padded(steps: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in step) * len(step) for step in steps)

    random_steps, grouped_steps = _steps(n, None), _steps(n, lengths)
    assert padded(grouped_steps) < 0.8 * padded(random_steps)
    # within a step the ranks' longest examples differ by little: nobody waits long for the other
    ranks = [epoch_order(n, 0, 0, rank, WORLD, MB, lengths) for rank in range(WORLD)]
    for a, b in zip(*ranks, strict=True):
        assert abs(max(lengths[i] for i in a) - max(lengths[i] for i in b)) <= 40
    # the steps are shuffled, not sorted from short to long
    longest = [max(lengths[i] for i in step) for step in grouped_steps]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_ranks_get_about_the_same_tokens_in_every_step():
    """Dealt 0,1,1,0,...: in plain turns the last rank would get every round's longer example, and the
    others would wait for it in every step."""
    n = WORLD * MB * LENGTH_GROUP_STEPS
    lengths = _lengths(n)
    ranks = [epoch_order(n, 0, 0, rank, WORLD, MB, lengths) for rank in range(WORLD)]
    ours = plain = 0
    for a, b in zip(*ranks, strict=True):
        ordered = sorted(lengths[i] for i in a + b)
        ours += abs(sum(lengths[i] for i in a) - sum(lengths[i] for i in b))
        plain += sum(ordered[1::2]) - sum(ordered[0::2])
    assert ours < 0.5 * plain
