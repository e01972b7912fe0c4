"""Round phases are timed the same way: repeated phases add up, and a phase that raises is still counted."""

import pytest

from ultramedical.timing import PhaseTimer


def test_phases_add_up_and_a_failed_phase_is_counted():
    timer = PhaseTimer()
    with timer.phase("score"):
        pass
    with timer.phase("score"):
        sum(range(10_000))
    first = timer.seconds["score"]
    with pytest.raises(KeyError), timer.phase("train"):
        raise KeyError("lost")
    assert set(timer.seconds) == {"score", "train"}
    assert timer.seconds["score"] == first > 0 and timer.seconds["train"] >= 0
    assert timer.total() >= first + timer.seconds["train"]
