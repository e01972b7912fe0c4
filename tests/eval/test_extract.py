"""Answer extraction from free-text replies: a table of replies and the answer each commits to."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from ultramedical.data.prompts import format_mcq_prompt, prompt_options
from ultramedical.eval.extract import extract_answer, extract_choice, extract_yes_no_maybe

MCQ_CASES = [
    # Explicit answer phrases.
    ("So, the answer is B.", "B"),
    ("The answer is (C)", "C"),
    ("Answer: D", "D"),
    ("answer is **B**", "B"),
    ("The correct answer is C. Metformin", "C"),
    ("the answer is c", "C"),
    ("ANSWER - a", "A"),
    ("Therefore, the answer is: **C. Metformin**", "C"),
    ("The answer is therefore option (b).", "B"),
    ("C is the correct answer.", "C"),
    ("The correct option is D", "D"),
    ("The answer is A because it is first-line.", "A"),
    # Weaker cues.
    ("After weighing both, **C. Metformin** is preferred.", "C"),
    ("**B**", "B"),
    ("Option B", "B"),
    ("I would choose A because it is safest.", "A"),
    # A reply that is only a letter.
    ("B", "B"),
    ("B.", "B"),
    ("(B)", "B"),
    ("b", "B"),
    ("Reasoning about the case first.\n\nD", "D"),
    ("C. Metformin", "C"),
    # A later explicit answer overrides an earlier mention.
    ("A is tempting given the rash, but the answer is D.", "D"),
    ("Answer: A\nOn reflection that ignores the labs.\nFinal answer: C", "C"),
    ("Option A fits the age, but the answer is B.", "B"),
    # Explicit phrases outrank weaker cues that come later.
    ("The answer is B. Option C would be wrong because of the renal function.", "B"),
    # No answer.
    ("I cannot say", None),
    ("", None),
    ("   \n", None),
    ("The answer is E.", None),
    ("A patient presents with fever and a rash.", None),
    ("the answer is a bit unclear without imaging", None),
    ("The answer is not D.", None),
    ("The answer is X-linked inheritance.", None),
    ("PubMed is the correct answer source.", None),
    ("A. Insulin\nB. Metformin\nC. Glipizide\nD. Diet", None),
]


@pytest.mark.parametrize(("reply", "expected"), MCQ_CASES)
def test_extract_answer(reply: str, expected: str | None) -> None:
    assert extract_answer(reply) == expected


@pytest.mark.parametrize(
    ("reply", "choices", "expected"),
    [
        ("The answer is E.", "ABCDE", "E"),
        ("The answer is E.", ("A", "B", "C", "D", "E"), "E"),
        ("Answer: I think it is B", "ABCDEFGHIJ", None),  # 'I' the pronoun, not option I
        ("Answer: I", "ABCDEFGHIJ", "I"),
        ("The answer is D.", "ABC", None),
    ],
)
def test_extract_answer_respects_choices(reply: str, choices: str, expected: str | None) -> None:
    assert extract_answer(reply, choices) == expected


OPTIONS = {"A": "Insulin", "B": "Metformin", "C": "Metformin and insulin", "D": "Diet alone"}


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Start with diet alone for three months.", "D"),
        ("Metformin and insulin together.", "C"),  # 'Metformin' and 'Insulin' are inside option C
        ("Either insulin or diet alone.", None),  # two options stated
        ("The answer is B even though metformin and insulin is tempting.", "B"),  # a letter wins
        # named after an answer phrase: other options mentioned on the way do not make it ambiguous
        ("Insulin is not first-line here. So, the answer is metformin.", "B"),
        ("Not insulin alone. The answer is metformin and insulin.", "C"),  # longest option named wins
        ("The answer is diet. Insulin or metformin.", "D"),  # only "Diet alone" contains what it names
        ("The answer is unclear. Insulin or metformin.", None),  # no option named there; two elsewhere
        ("Nothing fits.", None),
    ],
)
def test_extract_answer_by_option_text(reply: str, expected: str | None) -> None:
    assert extract_answer(reply, options=OPTIONS) == expected


def test_extract_answer_by_a_phrase_one_sentence_option_contains() -> None:
    options = {
        "A": "It is released into the circulation from the posterior pituitary.",
        "B": "It is released into the circulation from the anterior pituitary.",
        "C": "It is synthesized in the adrenal cortex.",
    }
    assert extract_answer("So, the answer is posterior pituitary.", "ABC", options=options) == "A"
    assert extract_answer("So, the answer is the circulation.", "ABC", options=options) is None  # in A and B
    assert extract_answer("So, the answer is kidney.", "ABC", options=options) is None


def test_extract_choice_reads_the_options_from_the_prompt() -> None:
    prompt = format_mcq_prompt("Which drug first?", OPTIONS)
    assert prompt_options(prompt) == OPTIONS
    assert extract_choice("So, the answer is diet alone.", "ABCD", prompt) == "D"
    assert extract_choice("So, the answer is diet alone.", "ABCD") is None  # no prompt, no option texts
    assert extract_choice("So, the answer is C.", "ABCD", prompt) == "C"


def test_option_text_is_not_used_without_options() -> None:
    assert extract_answer("Start with diet alone.") is None


def test_bad_choices_rejected() -> None:
    with pytest.raises(ValueError, match="single letters"):
        extract_answer("B", ("AB", "C"))


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("So, the answer is yes.", "yes"),
        ("Answer: Maybe", "maybe"),
        ("The answer is NO.", "no"),
        ("the answer is no... Final answer: yes", "yes"),
        ("Yes, the cohort shows a reduction.", "yes"),
        ("No.", "no"),
        ("**Maybe**", "maybe"),
        ("The evidence is mixed.\n\nmaybe", "maybe"),
        ("I cannot say", None),
        ("", None),
        ("No answer can be given from this abstract", None),
        ("The answer is not clear from the data", None),
        ("It depends on the nominal dose.", None),
    ],
)
def test_extract_yes_no_maybe(reply: str, expected: str | None) -> None:
    assert extract_yes_no_maybe(reply) == expected


SPACES = 200_000  # 20,000 took ~50 s each before the regexes' optional runs were made possessive


@pytest.mark.parametrize(
    "reply",
    ["answer" + " " * SPACES + "x", "the correct option is" + " " * SPACES, "B" + " " * SPACES + "x"],
)
def test_degenerate_whitespace_does_not_backtrack(reply: str) -> None:
    # A hang guard, not a speed assertion: backtracking at this length would run for hours.
    pool = ThreadPoolExecutor(1)
    answer = pool.submit(lambda: (extract_answer(reply), extract_yes_no_maybe(reply)))
    try:
        assert answer.result(timeout=120) == (None, None)
    finally:
        pool.shutdown(wait=False)
