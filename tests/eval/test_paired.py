"""The exact McNemar test against hand-computed binomial tails, and pairing records by item id."""

from __future__ import annotations

import pytest

from ultramedical.eval.stats import UnpairedItems, mcnemar_exact, paired_comparison


@pytest.mark.parametrize(
    ("b", "c", "expected"),
    [
        (0, 5, 0.0625),  # 2 * C(5,0) / 2^5 = 2/32
        (5, 0, 0.0625),  # two-sided: symmetric
        (1, 9, 0.021484375),  # 2 * (C(10,0) + C(10,1)) / 2^10 = 22/1024
        (2, 8, 0.109375),  # 2 * (1 + 10 + 45) / 1024 = 112/1024
        (0, 1, 1.0),  # 2 * 1/2, capped at 1
        (3, 3, 1.0),
        (40, 40, 1.0),
        (0, 0, 1.0),  # no discordant pairs: no evidence of a difference
        (0, 10, 2 / 1024),
    ],
)
def test_mcnemar_exact_by_hand(b: int, c: int, expected: float) -> None:
    assert mcnemar_exact(b, c) == expected


def test_mcnemar_exact_stays_exact_for_large_counts() -> None:
    # 2 * 1 / 2^1000: far below the rounding error of a float sum of the tail, but representable
    assert mcnemar_exact(0, 1000) == 2.0**-999
    # Between 0 and 1 and monotone in the imbalance at a fixed total
    values = [mcnemar_exact(k, 600 - k) for k in range(0, 301, 50)]
    assert values == sorted(values) and 0 < values[0] < values[-1] == 1.0


@pytest.mark.parametrize(("b", "c"), [(-1, 2), (2, -1), (1.0, 2), (True, 2)])
def test_mcnemar_exact_rejects_bad_counts(b, c) -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(b, c)


def _records(correct: dict[str, bool]) -> list[dict]:
    return [{"id": key, "correct": value, "prediction": "A"} for key, value in correct.items()]


def test_paired_comparison_matches_by_id_not_order() -> None:
    a = _records({"q1": True, "q2": True, "q3": False, "q4": False, "q5": True, "q6": True})
    # the same items in another order; q1 and q2 only A got right, q3 only B, the rest agree
    b = _records({"q6": True, "q4": False, "q3": True, "q2": False, "q5": True, "q1": False})
    result = paired_comparison(a, b)
    assert result == {
        "n": 6,
        "a_correct": 4,
        "b_correct": 3,
        "b": 2,
        "c": 1,
        "p_value": 1.0,  # 2 * (C(3,0) + C(3,1)) / 2^3 = 8/8
    }
    assert paired_comparison(b, a)["b"] == 1 and paired_comparison(b, a)["c"] == 2


def test_paired_comparison_p_value_on_discordant_items() -> None:
    ids = [f"q{i}" for i in range(20)]
    a = _records({key: i < 10 for i, key in enumerate(ids)})  # right on q0..q9
    b = _records({key: i < 10 or i >= 15 for i, key in enumerate(ids)})  # also right on q15..q19
    result = paired_comparison(list(reversed(a)), b)
    assert (result["n"], result["a_correct"], result["b_correct"], result["b"], result["c"]) == (
        20,
        10,
        15,
        0,
        5,
    )
    assert result["p_value"] == 0.0625


def test_ids_are_compared_as_strings() -> None:
    a = [{"id": 21645374, "correct": True}]
    b = [{"id": "21645374", "correct": False}]
    assert paired_comparison(a, b)["b"] == 1


def test_an_id_in_only_one_side_is_an_error() -> None:
    a = _records({"q1": True, "q2": False, "q3": True})
    b = _records({"q1": True, "q2": False, "q4": True})
    with pytest.raises(UnpairedItems, match="1 id\\(s\\) only in the first, 1 only in the second") as info:
        paired_comparison(a, b)
    assert (info.value.only_a, info.value.only_b) == (["q3"], ["q4"])
    with pytest.raises(UnpairedItems) as info:
        paired_comparison(a, a[:2])  # a subset is not the same items either
    assert (info.value.only_a, info.value.only_b) == (["q3"], [])
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([{"id": "q1", "correct": True}, {"id": "q1", "correct": False}], "duplicate id 'q1'"),
        ([{"correct": True}], "no 'id'"),
        ([{"id": "q1", "correct": 1}], "'correct' must be a bool"),
    ],
)
def test_bad_records_are_errors(records: list[dict], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        paired_comparison(records, [{"id": "q1", "correct": True}])


def test_no_items_is_an_error() -> None:
    with pytest.raises(ValueError, match="no items"):
        paired_comparison([], [])
