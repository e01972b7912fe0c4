"""Difficulty rating: the reply parser, the score string, the filter, and a run through the client."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer, instruction

from ultramedical.annotate.client import ChatClient, RequestCache
from ultramedical.annotate.difficulty import (
    Difficulty,
    DifficultyParseError,
    difficulty_of,
    filter_by_difficulty,
    parse_difficulty,
    score_difficulty,
)
from ultramedical.config import EndpointModel

PARSE_CASES = [
    ('{"score": 7, "justification": "Needs renal and pharmacology knowledge."}', 7, "Needs renal"),
    ('```json\n{"score": "9", "justification": "Rare syndrome."}\n```', 9, "Rare syndrome."),
    ('Here you go: {"difficulty": 4, "reason": "Standard   vignette."}', 4, "Standard vignette."),
    ("Score: 6/10\nJustification: Combines two facts.", 6, "Combines two facts."),
    ("8. The question requires multi-step reasoning.", 8, "The question requires multi-step reasoning."),
    ("10 - specialist synthesis", 10, "specialist synthesis"),
]


@pytest.mark.parametrize(("reply", "score", "start"), PARSE_CASES)
def test_parse_difficulty(reply: str, score: int, start: str) -> None:
    difficulty = parse_difficulty(reply)
    assert difficulty.score == score and difficulty.justification.startswith(start)


@pytest.mark.parametrize(
    "reply", ["", "It is quite hard.", '{"score": 0, "justification": "x"}', "Score: 11"]
)
def test_parse_difficulty_errors(reply: str) -> None:
    with pytest.raises(DifficultyParseError):
        parse_difficulty(reply)


def test_score_string_round_trip_and_filter() -> None:
    text = Difficulty(7, "The question requires X.").as_score_string()
    assert text == "7. The question requires X."
    records = [{"id": str(s), "score": f"{s}. why"} for s in range(1, 11)] + [{"id": "none", "score": ""}]
    assert difficulty_of(records[6]) == 7 and difficulty_of(records[-1]) is None
    assert [r["id"] for r in filter_by_difficulty(records, 4, 6)] == ["4", "5", "6"]
    assert [r["id"] for r in filter_by_difficulty(records, min_score=9)] == ["9", "10"]
    assert len(filter_by_difficulty(records, max_score=2, keep_unscored=True)) == 3


def test_score_difficulty_through_the_endpoint(server: FakeOpenAIServer, tmp_path: Path) -> None:
    records = [
        instruction("easy", "Which vitamin prevents scurvy?"),
        instruction("hard", "A hard vignette: a 60-year-old with refractory hyponatraemia ..."),
        {"id": "broken", "conversations": []},
    ]
    endpoint = EndpointModel(model="judge-model", base_url=server.base_url, temperature=0.0)
    client = ChatClient(cache=RequestCache(tmp_path / "c.sqlite"), max_retries=0)
    run = score_difficulty(records, client, endpoint, concurrency=2)
    assert [difficulty_of(r) for r in run.records] == [3, 8, None]
    assert run.records[1]["score"].startswith("8. rated 8")
    assert [f["id"] for f in run.failures] == ["broken"] and "human turn" in run.failures[0]["reason"]
    assert server.requests == 2
