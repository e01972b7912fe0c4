"""The sample corpus's preference data: annotations (4 to 9 judged, ranked completions of graded quality
per prompt), their Zephyr-style binarization, and the reward test (easy / hard / length pairs in the
style of Medical RewardBench)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

from ultramedical.data.knowledge import (
    Fact,
    claim,
    distractors,
    fact_with_object,
    facts_for,
    related_facts,
    render,
    spec,
)
from ultramedical.data.prompts import mcq_answer_sentence
from ultramedical.data.sample_texts import (
    CONFIDENT,
    EVASIVE,
    FLUENT_FRAMES,
    HARD_FRAMES,
    MCQ,
    REASONS,
    Positions,
    build_mcq,
    fact_stream,
    reasoned,
    reference_answer,
)

REWARD_LABELS = ("easy", "hard", "length")
# Of multiple-choice annotations; when the best answer is always the same model's, a reward model learns
# that model's style instead of what makes an answer right
EXPERT_ANSWER_RATE = 0.5
SHORT_ANSWER_RATE = 0.5
MIN_COMPLETIONS = 4


def _completion(model: str, text: str, score: float, evaluation: str) -> dict[str, Any]:
    return {"model": model, "text": text, "score": score, "evaluation": evaluation, "rank": 0}


def _ranked(completions: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """Shuffle the completions and rank them 1..n by descending score (scores are distinct)."""
    rng.shuffle(completions)
    for rank, item in enumerate(sorted(completions, key=lambda c: -c["score"]), start=1):
        item["rank"] = rank
    return completions


def _framed(mcq: MCQ, obj: str, letter: str, frame: str) -> str:
    """One of the fluent frames around the claim that `obj` is the answer, ending on `letter`."""
    fact = mcq.fact
    text = frame.format(claim=claim(fact, obj), lclaim=claim(fact, obj, capitalize=False), letter=letter)
    return f"{text} {mcq_answer_sentence(letter)}"


# Long option-by-option walks that end on a wrong option, built from an opening, one set-aside per
# dropped option, a conclusion and a closing. Annotations draw each part from its own pool, so a reward
# model learns what such a walk does (it drops the right option and ends on a wrong one), not one
# wording of it; the reward test's "length" pairs use a held-out wording (_TEST_WALK).
_TRAIN_WALK_PARTS = (
    (
        "Each option deserves a careful look before answering.",
        "To answer this properly, I will go through every choice in turn.",
        "A thorough approach is to rule options out one by one.",
        "Before settling on an answer, it helps to test each option against the stem.",
        "I will check the choices one after another and keep only the one that survives.",
        "The safest way through this question is to weigh each listed answer.",
        "Several answers look possible at first, so each needs to be examined.",
        "Working carefully, I will eliminate the weaker choices first.",
        "This question rewards a systematic pass over the options.",
        "Rather than guess, I will test every option in turn.",
    ),
    (
        "Consider {text} (option {letter}): this is unlikely here, since {claim}.",
        "First, {text} ({letter}) does not fit, as {claim}.",
        "{letter}, {text}, is excluded: {claim}.",
        "Choice {letter} is {text}, which we can drop because {claim}.",
        "Answer {letter} ({text}) is ruled out: {claim}.",
        "We can reject {letter}, {text}, since {claim}.",
        "{text} (choice {letter}) is not it, because {claim}.",
        "Next, {letter} ({text}) falls away: {claim}.",
        "Option {letter}, {text}, is unconvincing, since {claim}.",
        "{letter} is {text}; we can eliminate it because {claim}.",
    ),
    (
        "By elimination, {wrong} fits {subject} best, because {claim}.",
        "What remains is {wrong}, the most plausible link to {subject}: {claim}.",
        "Therefore the best remaining explanation for {subject} is {wrong}, given that {claim}.",
        "Only {wrong} survives this review for {subject}, since {claim}.",
        "So the choice left standing for {subject} is {wrong}: {claim}.",
        "This points to {wrong} for {subject}, because {claim}.",
        "The answer for {subject} must then be {wrong}, as {claim}.",
        "We are left with {wrong} for {subject}, because {claim}.",
        "Hence {wrong} is the match for {subject}: {claim}.",
        "That makes {wrong} the best fit for {subject}, given that {claim}.",
    ),
    (
        "Having considered every possibility in depth, I am confident in this conclusion.",
        "This systematic elimination leaves no serious doubt about the answer.",
        "Every alternative has been examined, so this answer is well supported.",
        "Careful reasoning through all the choices makes this the clear answer.",
        "Taking all of this together, the conclusion is firm.",
        "With the other choices excluded, this answer stands.",
        "The process of elimination makes this a confident choice.",
        "No other option holds up under this review.",
        "After checking every option, I am sure of this.",
        "All the evidence reviewed points the same way.",
    ),
)
_TEST_WALK = (
    "Let us work through the options one at a time before committing to an answer.",
    "Option {letter} ({text}) can be set aside, because {claim}.",
    "That leaves {wrong} as the option that best fits {subject}, since {claim}.",
    "Weighing every detail of the question carefully, this is the most defensible choice.",
)


def _train_walk(rng: random.Random) -> tuple[str, str, str, str]:
    opening, set_aside, conclusion, closing = (rng.choice(pool) for pool in _TRAIN_WALK_PARTS)
    return opening, set_aside, conclusion, closing


def _verbose_wrong(mcq: MCQ, wrong_letter: str, wrong: str, walk: tuple[str, str, str, str]) -> str:
    """A long walk through the options that ends on a wrong one: length that a judge must not reward."""
    fact = mcq.fact
    opening, set_aside, conclusion, closing = walk
    parts = [opening]
    parts += [set_aside.format(text=text, letter=letter,
                               claim=claim(fact_with_object(fact.relation, text), capitalize=False))
              for letter, text in mcq.wrong() if text != wrong]
    wrong_claim = claim(fact, wrong, capitalize=False)
    parts += [conclusion.format(wrong=wrong, subject=fact.subject, claim=wrong_claim),
              closing, mcq_answer_sentence(wrong_letter)]
    return " ".join(parts)


def _reasoned_wrong(fact: Fact, wrong: str, rng: random.Random, answer: str = "") -> str:
    """A wrong claim dressed as a reasoned answer (related true facts, a confident close): as long as
    the expert's answer, so length does not tell a good answer from a bad one."""
    related = [f"{claim(r)}." for r in related_facts(fact)[:2]]
    parts = [f"The question hinges on {fact.subject}.", f"{claim(fact, wrong)}.", *related,
             rng.choice(CONFIDENT)]
    return " ".join([*parts, answer] if answer else parts)


def _graded(
    fact: Fact, expert: str | None, terse: str, hedged: str, wrong: str, rng: random.Random,
    more: Iterable[dict] = (),
) -> list[dict]:
    """Ranked completions of graded quality; `more` adds prompt-specific ones (their scores distinct).
    `expert` None: that model did not answer this prompt, so another one ranks first. The short
    answers (terse, hedging, evasive) each come from a model that answers about half the prompts: were
    they always there, most rejected answers would be short ones and a reward model would learn that
    longer is better."""
    evasive, why_evasive = rng.choice(EVASIVE)
    completions = [] if expert is None else [
        _completion("sample-expert", expert, 5.0,
                    f"Correct and well explained: identifies {fact.obj} and justifies it accurately. "
                    f"{fact.explanation}"),
    ]
    completions += [
        _completion("sample-wrong", wrong, rng.choice((1.5, 2.0)),
                    f"Incorrect and overconfident: the stated answer is wrong. {fact.explanation}"),
        *more,
    ]
    short = [
        _completion("sample-terse", terse, rng.choice((3.0, 3.5, 4.0)),
                    "Correct but terse: gives the right answer without any reasoning, so it teaches little."),
        _completion("sample-hedging", hedged, 2.5,
                    "Reaches the right answer but hedges between options without justification."),
        _completion("sample-evasive", evasive, 1.0, why_evasive),
    ]
    answered = [c for c in short if rng.random() < SHORT_ANSWER_RATE]
    missing = [c for c in short if c not in answered]
    completions += answered + missing[:max(0, MIN_COMPLETIONS - len(completions) - len(answered))]
    return _ranked(completions, rng)


def annotations(seed: int, count: int) -> list[dict]:
    rng = random.Random(f"{seed}:annotations")
    facts, position = fact_stream(rng), Positions(rng)
    records = []
    for i in range(count):
        fact = next(facts)
        rel = spec(fact.relation)
        if i % 3 == 2:
            prompt, reference = render(rng.choice(rel.open_prompts), fact, rng), reference_answer(fact)
            wrong = distractors(fact, 1, rng)[0]
            hedged = (f"I think {claim(fact, capitalize=False)}, although it may also be that "
                      f"{claim(fact, wrong, capitalize=False)}.")
            reasoned_wrong = _completion("sample-wrong-reasoned", _reasoned_wrong(fact, wrong, rng), 1.25,
                                         f"Confident and well written, but its central claim is false. "
                                         f"{fact.explanation}")
            completions = _graded(fact, reference, f"{claim(fact)}.", hedged,
                                  f"{claim(fact, wrong)}. {rng.choice(CONFIDENT)}", rng, [reasoned_wrong])
        else:
            n = rng.choice((4, 5))
            mcq = build_mcq(fact, rng.choice(rel.train_vignettes + rel.train_stems), rng, n, position(n))
            prompt, reference, letter = mcq.prompt, reasoned(mcq, rng), mcq.answer
            (wrong_letter, wrong), (other_letter, other) = rng.sample(mcq.wrong(), 2)
            terse = rng.choice((letter, f"{letter}. {fact.obj}", mcq_answer_sentence(letter)))
            hedged = (f"It is either {wrong} or {fact.obj}; I am not certain, but I lean towards {fact.obj}. "
                      f"{mcq_answer_sentence(letter)}")
            # The concise and the fluent-wrong answers share a frame, so the pair differs only in its claim
            frame = rng.choice(FLUENT_FRAMES)
            misleading = [
                _completion("sample-concise", _framed(mcq, fact.obj, letter, frame), 4.5,
                            "Correct and concise: states the deciding fact and the matching option."),
                _completion("sample-fluent-wrong", _framed(mcq, wrong, wrong_letter, frame), 1.75,
                            f"Fluent and confident, but built on a false claim. {fact.explanation}"),
                _completion("sample-verbose-wrong", _verbose_wrong(mcq, wrong_letter, wrong,
                                                                   _train_walk(rng)), 1.25,
                            "Long and thorough-sounding, but it eliminates the right option and answers "
                            "wrongly."),
                _completion("sample-thorough-wrong",
                            _verbose_wrong(mcq, other_letter, other, _train_walk(rng)), 1.1,
                            "A long walk through the options that drops the right one: thorough in form, "
                            "wrong in substance."),
            ]
            false_answer = (f"{claim(fact, wrong)}. {mcq_answer_sentence(wrong_letter)}" if rng.random() < 0.5
                            else _reasoned_wrong(fact, wrong, rng, mcq_answer_sentence(wrong_letter)))
            # Not every model answers every prompt: without the expert, the concise answer ranks first
            expert = reference if rng.random() < EXPERT_ANSWER_RATE else None
            completions = _graded(fact, expert, terse, hedged, false_answer, rng, misleading)
        records.append({"prompt_id": f"sample-annotation,{i}", "prompt": prompt,
                        "reference_answer": reference, "completions": completions})
    return records


def _pair(prompt_id: str, prompt: str, chosen: dict, rejected: dict, label_type: str) -> dict:
    def conversation(item: dict) -> list[dict[str, str]]:
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": item["text"]}]

    def meta(item: dict) -> dict[str, Any]:
        return {"model": item["model"], "score": item["score"], "evaluation": item["evaluation"]}

    return {"prompt_id": prompt_id, "prompt": prompt, "chosen": conversation(chosen),
            "rejected": conversation(rejected), "label_type": label_type,
            "metadata": {"chosen": meta(chosen), "rejected": meta(rejected)}}


def binarize(annotation: dict, rng: random.Random) -> dict:
    """Zephyr-style binarization: chosen = rank 1, rejected = a random completion scored strictly lower."""
    completions = sorted(annotation["completions"], key=lambda c: c["rank"])
    chosen = completions[0]
    lower = [c for c in completions[1:] if c["score"] < chosen["score"]]
    if not lower:
        raise ValueError(f"annotation {annotation.get('prompt_id')!r} has no completion scored below rank 1")
    return _pair(annotation["prompt_id"], annotation["prompt"], chosen, rng.choice(lower), "sample")


def _confused(fact: Fact, other: Fact, rng: random.Random) -> str:
    """An answer in the expert's own style that explains `other` instead of `fact` and names its object:
    the way a policy trained on the expert answers goes wrong (it mistakes what the question asks)."""
    template = rng.choice(REASONS)
    subject = rng.choice((fact, other)).subject
    body = template.format(explanation=other.explanation, subject=subject, obj=other.obj)
    return f"{body} So, the answer is {other.obj}."


def claim_contrasts(seed: int, count: int) -> list[dict]:
    """Judged pairs that differ in what they claim, not in how: on a fresh multiple-choice prompt
    (training templates), (1) the right claim against a wrong option's claim in the same fluent frame
    (training frames; the reward test's "hard" pairs use HARD_FRAMES), and (2) the expert's reasoned
    answer against one in the same style that explains another fact and names its object (a wrong
    option, or an object that is no option at all). Zephyr pairs almost never contrast two answers of
    one style, so a reward model trained on them alone learns which style is good, not which answer is
    right."""
    rng = random.Random(f"{seed}:claims")
    facts, position = fact_stream(rng), Positions(rng)
    rows: list[dict] = []
    i = 0
    while len(rows) < count:
        fact = next(facts)
        rel = spec(fact.relation)
        mcq = build_mcq(fact, rng.choice(rel.train_vignettes + rel.train_stems), rng, 4, position(4))
        wrong_letter, wrong = rng.choice(mcq.wrong())
        frame = rng.choice(FLUENT_FRAMES)
        right = _completion("sample-concise", _framed(mcq, fact.obj, mcq.answer, frame), 4.5,
                            "Correct and concise: states the deciding fact and the matching option.")
        false = _completion("sample-fluent-wrong", _framed(mcq, wrong, wrong_letter, frame), 1.75,
                            f"Fluent and confident, but built on a false claim. {fact.explanation}")
        rows.append(_pair(f"sample-claim,{i}", mcq.prompt, right, false, "claim"))
        if rng.random() < 0.5:
            other = fact_with_object(fact.relation, rng.choice(mcq.wrong())[1])
        else:
            offered = set(mcq.options.values())
            other = rng.choice([f for f in facts_for(fact.relation) if f.obj not in offered])
        expert = _completion("sample-expert", reasoned(mcq, rng), 5.0,
                             f"Correct and well explained. {fact.explanation}")
        confused = _completion("sample-confused", _confused(fact, other, rng), 1.5,
                               f"Well written, but it explains {other.subject} and answers {other.obj}, "
                               f"which is wrong here. {fact.explanation}")
        rows.append(_pair(f"sample-claim,{i}", mcq.prompt, expert, confused, "claim"))
        i += 1
    return rows[:count]


def reward_test(seed: int, count: int) -> list[dict]:
    rng = random.Random(f"{seed}:reward")
    facts, position = fact_stream(rng), Positions(rng)
    rows = []
    for i in range(count):
        fact = next(facts)
        rel = spec(fact.relation)
        mcq = build_mcq(fact, rel.test_vignette if i % 2 == 0 else rel.test_stem, rng, 4, position(4))
        letter, (wrong_letter, wrong) = mcq.answer, rng.choice(mcq.wrong())
        label = REWARD_LABELS[i % len(REWARD_LABELS)]
        false_answer = f"{claim(fact, wrong)}. {mcq_answer_sentence(wrong_letter)}"
        if label == "easy":
            chosen = _completion("sample-expert", reasoned(mcq, rng), 5.0, "Correct and explained.")
            if rng.random() < 0.5:
                rejected = _completion("sample-wrong", false_answer, 1.5, "Incorrect answer.")
            else:
                text, why = rng.choice(EVASIVE)
                rejected = _completion("sample-evasive", text, 1.0, why)
        elif label == "hard":
            frame = rng.choice(HARD_FRAMES)
            right_text = frame.format(claim=claim(fact), lclaim=claim(fact, capitalize=False), letter=letter)
            wrong_text = frame.format(claim=claim(fact, wrong), lclaim=claim(fact, wrong, capitalize=False),
                                      letter=wrong_letter)
            chosen = _completion("sample-expert", f"{right_text} {mcq_answer_sentence(letter)}", 5.0,
                                 "Correct, fluent and concise.")
            rejected = _completion("sample-wrong-fluent", f"{wrong_text} {mcq_answer_sentence(wrong_letter)}",
                                   2.0, "Fluent and equally long, but the answer is wrong.")
        else:
            chosen = _completion("sample-concise", f"{claim(fact)}. {mcq_answer_sentence(letter)}", 4.5,
                                 "Correct and concise.")
            walk = _verbose_wrong(mcq, wrong_letter, wrong, _TEST_WALK)
            rejected = _completion("sample-verbose-wrong", walk, 1.5,
                                   "Long and confident, but the answer is wrong.")
        rows.append(_pair(f"sample-reward,{i}", mcq.prompt, chosen, rejected, label))
    return rows
