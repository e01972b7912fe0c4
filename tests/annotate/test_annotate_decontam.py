"""Decontamination by word n-gram overlap."""

from __future__ import annotations

import json

from fake_openai_server import instruction

from ultramedical.annotate.decontam import decontaminate, normalise

EVAL_QUESTION = (
    "A 45-year-old man presents with crushing substernal chest pain radiating to the left arm, "
    "diaphoresis and ST elevation in leads II, III and aVF. Which coronary artery is most likely occluded?"
)


def _train() -> list[dict]:
    planted = instruction(
        "planted",
        # The benchmark question with different case, punctuation and spacing, inside a longer prompt.
        "Consider this case.  a 45 YEAR OLD man presents with crushing substernal chest-pain, radiating to "
        "the left arm; diaphoresis and ST elevation in leads II III and aVF! which coronary artery is most "
        "likely occluded",
        answer="B",
    )
    near_miss = instruction("near", "A 45-year-old man presents with a rash on his left arm after gardening.")
    clean = instruction("clean", "Which vitamin deficiency causes scurvy in sailors on long sea voyages?")
    return [clean, planted, near_miss]


def test_normalise() -> None:
    assert normalise("ST-Elevation, in  leads II/III!") == ["st", "elevation", "in", "leads", "ii", "iii"]


def test_planted_overlap_is_removed_and_reported() -> None:
    eval_sets = {
        "medqa": [{"id": "medqa-17", "question": EVAL_QUESTION, "options": {"A": "LAD", "B": "RCA"}}],
        "pubmedqa": [{"id": "pq-1", "question": "Does aspirin reduce colorectal adenoma recurrence?"}],
    }
    result = decontaminate(_train(), eval_sets, n=13)
    assert [r["id"] for r in result.kept] == ["clean", "near"]
    assert [r["id"] for r in result.removed] == ["planted"]
    report = json.loads(json.dumps(result.report))  # JSON-serialisable as it is
    assert report["removed_per_eval_set"] == {"medqa": 1, "pubmedqa": 0}
    assert report["removed"] == 1 and report["kept"] == 2 and report["train_records"] == 3
    [detail] = report["removed_records"]
    assert detail["id"] == "planted" and detail["eval_set"] == "medqa" and detail["eval_id"] == "medqa-17"
    gram = detail["ngram"].split()
    assert len(gram) == 13 and detail["ngram"] in " ".join(normalise(EVAL_QUESTION))


def test_ngram_length_is_configurable() -> None:
    eval_sets = {"medqa": [{"id": "q", "question": EVAL_QUESTION}]}
    # "a 45 year old man presents with" (7 words) is shared with the near miss.
    assert [r["id"] for r in decontaminate(_train(), eval_sets, n=7).removed] == ["planted", "near"]
    assert [r["id"] for r in decontaminate(_train(), eval_sets, n=8).removed] == ["planted"]


def test_short_eval_items_match_whole() -> None:
    eval_sets = {"short": [{"id": "s1", "question": "Which vitamin deficiency causes scurvy in sailors?"}]}
    result = decontaminate(_train(), eval_sets, n=13, min_words=5)
    assert [r["id"] for r in result.removed] == ["clean"]
    assert result.report["removed_records"][0]["ngram"] == "which vitamin deficiency causes scurvy in sailors"
    assert decontaminate(_train(), eval_sets, n=13, min_words=8).removed == []
