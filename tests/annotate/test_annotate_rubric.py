"""The judge prompt and the forgiving verdict parser."""

from __future__ import annotations

import json

import pytest

from ultramedical.annotate.rubric import JudgeParseError, build_judge_messages, parse_judgement

VERDICT = json.dumps(
    {
        "evaluations": [
            {"id": 1, "score": 2, "explanation": "wrong drug, {not} safe"},
            {"id": 2, "score": 5, "explanation": 'correct, cites "guidelines", ends with ]'},
            {"id": 3, "score": 4, "explanation": "correct but terse"},
        ],
        "ranking": [2, 3, 1],
    }
)
NO_RANKING = json.dumps({"evaluations": json.loads(VERDICT)["evaluations"]})

# (name, reply, n, expected scores by id, expected ranking, ranking derived?)
GOOD_CASES = [
    ("plain", VERDICT, 3, {1: 2, 2: 5, 3: 4}, [2, 3, 1], False),
    ("fenced", f"Sure.\n```json\n{VERDICT}\n```\nDone.", 3, {1: 2, 2: 5, 3: 4}, [2, 3, 1], False),
    ("fence without language", f"```\n{VERDICT}\n```", 3, {1: 2, 2: 5, 3: 4}, [2, 3, 1], False),
    (
        "bare in prose",
        f"My verdict is {VERDICT} -- hope that helps {{}}",
        3,
        {1: 2, 2: 5, 3: 4},
        [2, 3, 1],
        False,
    ),
    (
        "trailing commas",
        '{"evaluations": [{"id": 1, "score": 3, "explanation": "a, b",}, {"id": 2, "score": 4,},], '
        '"ranking": [2, 1,],}',
        2,
        {1: 3, 2: 4},
        [2, 1],
        False,
    ),
    ("missing ranking", NO_RANKING, 3, {1: 2, 2: 5, 3: 4}, [2, 3, 1], True),
    ("incomplete ranking", VERDICT.replace("[2, 3, 1]", "[2]"), 3, {1: 2, 2: 5, 3: 4}, [2, 3, 1], True),
    (
        "ranking with unknown id",
        VERDICT.replace("[2, 3, 1]", "[2, 3, 7]"),
        3,
        {1: 2, 2: 5, 3: 4},
        [2, 3, 1],
        True,
    ),
    ("truncated", VERDICT[: VERDICT.index('{"id": 3') + 15], 3, {1: 2, 2: 5}, [2, 1], True),
    (
        "truncated inside fence",
        "```json\n" + VERDICT[: VERDICT.index('"ranking"') + 5],
        3,
        {1: 2, 2: 5, 3: 4},
        [2, 3, 1],
        True,
    ),
    (
        "string ids and scores",
        '{"evaluations": [{"id": "1", "score": "4", "explanation": "ok"}, {"id": 2, "score": 4.0}], '
        '"ranking": ["2", "1"]}',
        2,
        {1: 4, 2: 4},
        [2, 1],
        False,
    ),
    (
        "ties broken by the partial ranking",
        '{"evaluations": [{"id": 1, "score": 4}, {"id": 2, "score": 4}, {"id": 3, "score": 1}], '
        '"ranking": [2]}',
        3,
        {1: 4, 2: 4, 3: 1},
        [2, 1, 3],
        True,
    ),
    (
        "one bad entry dropped",
        '{"evaluations": [{"id": 1, "score": 9}, {"id": 2, "score": 3}, {"id": 3, "score": 5}], '
        '"ranking": [3, 2]}',
        3,
        {2: 3, 3: 5},
        [3, 2],
        False,
    ),
]


@pytest.mark.parametrize(
    ("name", "reply", "n", "scores", "ranking", "derived"), GOOD_CASES, ids=[c[0] for c in GOOD_CASES]
)
def test_parse_cases(name: str, reply: str, n: int, scores: dict, ranking: list, derived: bool) -> None:
    judgement = parse_judgement(reply, n)
    assert {i: e.score for i, e in judgement.evaluations.items()} == scores
    assert judgement.ranking == ranking
    assert judgement.ranking_derived is derived
    assert judgement.complete is (len(scores) == n)
    assert judgement.missing == [i for i in range(1, n + 1) if i not in scores]


def test_explanations_keep_braces_and_quotes() -> None:
    judgement = parse_judgement(VERDICT, 3)
    assert judgement.evaluations[1].explanation == "wrong drug, {not} safe"
    assert judgement.evaluations[2].explanation == 'correct, cites "guidelines", ends with ]'


BAD_CASES = [
    ("empty", "   ", "empty"),
    ("no JSON", "Answer 2 is the best, then 3, then 1.", "no JSON"),
    (
        "wrong ids",
        '{"evaluations": [{"id": 4, "score": 3}, {"id": 0, "score": 2}], "ranking": [4, 0]}',
        "not one of",
    ),
    ("scores out of range", '{"evaluations": [{"id": 1, "score": 0}, {"id": 2, "score": 6}]}', "from 1 to 5"),
    ("boolean score", '{"evaluations": [{"id": 1, "score": true}]}', "from 1 to 5"),
    ("empty evaluations", '{"evaluations": [], "ranking": []}', "empty"),
    ("evaluations not a list", '{"evaluations": {"1": 4}}', "not a list"),
    ("truncated before any object", '{"evaluations": [{"id": 1, "sco', "no complete evaluation"),
]


@pytest.mark.parametrize(("name", "reply", "reason"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_parse_errors_name_the_reason(name: str, reply: str, reason: str) -> None:
    with pytest.raises(JudgeParseError, match=reason):
        parse_judgement(reply, 2)


def test_judge_prompt_shows_reference_only_for_multiple_choice() -> None:
    answers = ["Vitamin C deficiency.", "", "Lack of sunlight."]
    mcq = build_judge_messages(
        "Why scurvy?\n\nA. C\nB. D", answers, "So, the answer is A.", is_multiple_choice=True
    )
    text = mcq[0]["content"]
    assert mcq[0]["role"] == "user"
    assert "Why scurvy?" in text and "So, the answer is A." in text and "Reference answer" in text
    assert all(f"### Answer {i}" in text for i in (1, 2, 3)) and "### Answer 4" not in text
    assert "(empty answer)" in text and '"ranking"' in text and "Clinical safety" in text
    open_ended = build_judge_messages("Why scurvy?", answers, "A long reference.", is_multiple_choice=False)
    assert "A long reference." not in open_ended[0]["content"]
