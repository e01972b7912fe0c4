"""The pieces the sample corpus is made of: multiple-choice questions built from facts, answer
positions dealt evenly, the stock phrasings of answers (reasoned, evasive, fluent), follow-up turns,
difficulty scores and PubMedQA-style literature items. Used by `sample.py` (instructions and test sets)
and `sample_preferences.py` (annotations and the reward test)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ultramedical.data.knowledge import (
    FACTS,
    Fact,
    claim,
    distractors,
    fact_with_object,
    related_facts,
    render,
    spec,
)
from ultramedical.data.prompts import (
    LETTERS,
    format_mcq_prompt,
    mcq_answer_sentence,
    options_from_list,
    pubmedqa_answer_sentence,
)


@dataclass(frozen=True)
class MCQ:
    """A multiple-choice question about one fact; `answer` is the letter whose option is `fact.obj`."""

    fact: Fact
    question: str
    options: dict[str, str]
    answer: str

    @property
    def prompt(self) -> str:
        return format_mcq_prompt(self.question, self.options)

    def wrong(self) -> list[tuple[str, str]]:
        return [(letter, text) for letter, text in self.options.items() if letter != self.answer]


def build_mcq(
    fact: Fact, template: str, rng: random.Random, n_options: int = 4, answer_index: int | None = None
) -> MCQ:
    """Render `template` for `fact` and letter its object among `n_options - 1` same-relation distractors."""
    question = render(template, fact, rng)
    choices = distractors(fact, n_options - 1, rng)
    index = rng.randrange(n_options) if answer_index is None else answer_index
    choices.insert(index, fact.obj)
    return MCQ(fact, question, options_from_list(choices), LETTERS[index])


class Positions:
    """Hands out answer positions from shuffled decks, so every letter is used equally often."""

    def __init__(self, rng: random.Random) -> None:
        self._rng, self._decks = rng, {}

    def __call__(self, n: int) -> int:
        deck = self._decks.setdefault(n, [])
        if not deck:
            deck.extend(range(n))
            self._rng.shuffle(deck)
        return deck.pop()


def fact_stream(rng: random.Random) -> Iterator[Fact]:
    """All facts in a fresh random order, over and over, so coverage stays even."""
    while True:
        order = list(FACTS)
        rng.shuffle(order)
        yield from order


# ---------------------------------------------------------------------------------------------- texts

REASONS = (
    "{explanation}",
    "The question hinges on {subject}. {explanation}",
    "{explanation} Of the options, this is {obj}.",
    "{explanation} None of the other options fits {subject} as well.",
)
EVASIVE = (
    ("I'm not able to answer medical questions. Please consult a healthcare professional.",
     "Evasive: refuses a standard educational question and gives no answer."),
    ("There are many factors to consider, and the answer really depends on the situation.",
     "Evasive: vague and non-committal; it never commits to an answer."),
    ("Skip the work-up and simply double whatever medication the patient already takes.",
     "Unsafe: recommends a harmful action that is unrelated to the question and gives no answer."),
    ("It does not matter which option you pick; this is rarely important in practice.",
     "Unhelpful and misleading: dismisses the question without answering it."),
)
CONFIDENT = ("This is well established.", "Any standard textbook confirms this.", "There is no doubt here.")
# Fluent single-claim answers: the test frames build the reward test's "hard" pairs, the train frames the
# annotations' fluent-but-wrong completions, so a reward model must judge the claim, not the phrasing.
HARD_FRAMES = (
    "{claim}. Because this fits the question, option {letter} is the best choice.",
    "The relevant fact is that {lclaim}, which points to option {letter}.",
)
FLUENT_FRAMES = (
    "{claim}.",
    "Recall that {lclaim}. That makes option {letter} the best fit.",
    "{claim}, and the question turns on exactly this point, so option {letter} is right.",
)
_CONTEXTS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {
        "background": (
            "Standard clinical references were reviewed for statements about {subject}.",
            "This summary collates textbook knowledge about {subject}.",
            "Teaching material on {subject} was reviewed for accuracy.",
            "An editorial board checked published guidance on {subject}.",
            "Experts surveyed the literature for established facts about {subject}.",
            "A review group gathered consensus statements on {subject}.",
        ),
        "yes": (
            "The reviewed sources consistently support that {claim}.",
            "All sources agree that {claim}.",
            "The board confirmed that {claim}.",
            "The experts agreed that {claim}.",
            "The consensus statement affirms that {claim}.",
        ),
        "no": (
            "By contrast, {claim}.",
            "The reviewed sources instead note that {claim}.",
            "The board pointed out, on the other hand, that {claim}.",
            "The experts noted instead that {claim}.",
            "The consensus statement adds, in contrast, that {claim}.",
        ),
        "maybe_setup": (
            "A pilot study asked whether a single seminar improves how well {n} trainees remember facts "
            "about {subject}.",
            "A small before-and-after study enrolled {n} trainees in a short course on {subject}.",
            "Investigators tested an online module about {subject} in {n} medical students.",
            "A feasibility trial gave {n} nurses a brief workshop on {subject}.",
            "In an exploratory study, {n} interns used a quiz app covering {subject}.",
        ),
        "maybe_result": (
            "Recall improved in one cohort but not in the other, and the study was too small to draw a firm "
            "conclusion.",
            "Post-test scores varied widely, and the confidence interval included no effect.",
            "Results were mixed across groups, and the sample was too small to be conclusive.",
            "Some participants improved while others did not, so the effect remained unclear.",
            "The difference was not statistically significant, and the authors called for larger studies.",
        ),
        "maybe_question": (
            "Does a single seminar improve trainees' recall of facts about {subject}?",
            "Can a short course improve retention of knowledge about {subject}?",
            "Does an online module improve students' knowledge of {subject}?",
            "Did a brief workshop change how much nurses remember about {subject}?",
            "Does using a quiz app improve interns' recall of {subject}?",
        ),
    },
    "test": {
        "background": ("A panel of clinicians compiled reference statements concerning {subject}.",),
        "yes": ("The panel concluded that {claim}.",),
        "no": ("The panel noted, however, that {claim}.",),
        "maybe_setup": ("Researchers piloted a flashcard program about {subject} with {n} residents.",),
        "maybe_result": (
            "Retention differed between sites, and the small sample left the effect uncertain.",
        ),
        "maybe_question": (
            "Did a flashcard program change residents' retention of knowledge about {subject}?",
        ),
    },
}


def stated_answer(mcq: MCQ) -> str:
    """The closing sentence of the corpus's multiple-choice targets: the answer named by its option text
    ("So, the answer is deferoxamine."), which the evaluator maps to its letter. The embedded 5M-parameter
    model learns which fact answers a question but not which letter stands beside it: trained on
    "So, the answer is B." for four epochs it named the right answer in half of the held-out questions and
    its letters were at chance. Real checkpoints trained on real data answer with letters, read first.
    Follow-up turns, which name several options, keep the letter."""
    return f"So, the answer is {mcq.fact.obj}."


def reasoned(mcq: MCQ, rng: random.Random) -> str:
    """A short justification from the fact's explanation, ending with the answer sentence."""
    fact = mcq.fact
    body = rng.choice(REASONS).format(explanation=fact.explanation, subject=fact.subject, obj=fact.obj)
    return f"{body} {stated_answer(mcq)}"


def _why_wrong(mcq: MCQ) -> str:
    parts = [
        f"{letter} ({text}) is incorrect: {claim(fact_with_object(mcq.fact.relation, text))}."
        for letter, text in mcq.wrong()
    ]
    return " ".join([*parts, mcq.fact.explanation, mcq_answer_sentence(mcq.answer)])


def _more_detail(mcq: MCQ) -> str:
    extra = [f"{claim(r)}." for r in related_facts(mcq.fact)[:2]]
    related = ["Related points: " + " ".join(extra)] if extra else []
    key = f"Key point: {claim(mcq.fact)}."
    return " ".join([mcq.fact.explanation, key, *related, mcq_answer_sentence(mcq.answer)])


MC_FOLLOW_UPS: tuple[tuple[str, Callable[[MCQ], str]], ...] = (
    ("Why are the other options wrong?", _why_wrong),
    ("Can you explain the reasoning in more detail?", _more_detail),
)
OPEN_FOLLOW_UPS = (
    "Summarise that in one sentence for a flashcard.",
    "What is the single most important point to remember?",
)


def reference_answer(fact: Fact) -> str:
    """The open-ended reference answer for a fact: the claim, its justification and related facts."""
    parts = [f"{claim(fact)}.", fact.explanation]
    related = related_facts(fact)[:2]
    if related:
        parts.append("Related points: " + " ".join(f"{claim(r)}." for r in related))
    return " ".join(parts)


def difficulty_score(fact: Fact, rng: random.Random, bump: int = 0, literature: bool = False) -> str:
    """A difficulty 1-10 with a short justification, in the style of UltraMedical's `score` field."""
    rel = spec(fact.relation)
    level = max(1, min(10, rel.difficulty + bump + rng.choice((-1, 0, 0, 1))))
    if literature:
        return (f"{level}. The question tests reading of a short evidence summary about {fact.subject} and "
                f"judging whether it supports the claim.")
    need = ("a single recalled fact" if level <= 3 else "standard knowledge applied to the stem" if level <= 6
            else "integration of a clinical vignette with specialised knowledge")
    return (f"{level}. The question tests {rel.skill}: it links {fact.subject} to its {rel.description}, "
            f"needing {need}.")


def _topic(fact: Fact) -> str:
    """The subject as a noun phrase that reads well after "about" ("the radial nerve", "opioid toxicity")."""
    if fact.relation == "nerve_muscle":
        return f"the {fact.subject}"
    return f"{fact.subject} toxicity" if fact.relation == "antidote" else fact.subject


def pubmedqa_item(
    fact: Fact, label: str, rng: random.Random, split: str = "train"
) -> tuple[list[str], str, str]:
    """(contexts, question, reasoned target) for a literature item with answer `label`."""
    texts = _CONTEXTS[split]
    rel = spec(fact.relation)
    pick, topic = rng.choice, _topic(fact)
    if label == "maybe":
        n = rng.randint(18, 40)
        contexts = [pick(texts["maybe_setup"]).format(n=n, subject=topic), fact.explanation,
                    pick(texts["maybe_result"])]
        question = pick(texts["maybe_question"]).format(subject=topic)
        reason = "The context describes a small study with inconsistent results, so the effect is uncertain."
        return contexts, question, f"{reason} {pubmedqa_answer_sentence(label)}"
    yesno = rel.test_yesno if split == "test" else pick(rel.train_yesno)
    background = pick(texts["background"]).format(subject=topic)
    if label == "yes":
        statement = pick(texts["yes"]).format(claim=claim(fact, capitalize=False))
        contexts = [background, fact.explanation, statement]
        question = render(yesno, fact, rng)
        reason = f"The context states: {fact.explanation} This directly supports the question."
    else:
        wrong = distractors(fact, 1, rng)[0]
        other = claim(fact_with_object(fact.relation, wrong), capitalize=False)
        contexts = [background, fact.explanation, pick(texts["no"]).format(claim=other)]
        question = render(yesno, fact, rng, obj=wrong)
        reason = (f"The context states: {fact.explanation} It also notes that {other}, so the claim is not "
                  "supported.")
    return contexts, question, f"{reason} {pubmedqa_answer_sentence(label)}"

