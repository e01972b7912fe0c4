"""A deterministic sample corpus built from the embedded knowledge base (no network, well under 10 s).

`generate_sample_corpus(out_dir, seed)` writes, as UTF-8 JSON Lines:

  instructions.jsonl   UltraMedical instruction records: MedQA/MedMCQA-style multiple choice, PubMedQA-style
                       literature items and open-ended questions, about 10% of them multi-turn
  annotations.jsonl    preference prompts with 4-5 judged, ranked completions of graded quality
  preferences.jsonl    one Zephyr-style chosen/rejected pair per annotation (see `binarize`)
  test/*.jsonl         held-out MedQA, MedMCQA, PubMedQA and MMLU items in their published schemas
  reward_test.jsonl    easy/hard/length reward-model pairs in the style of Medical RewardBench

Test items and reward pairs use only the held-out templates of `knowledge_templates`, so no test
question appears verbatim in the training prompts. The same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    PUBMEDQA_LABELS,
    format_mcq_prompt,
    format_pubmedqa_prompt,
    mcq_answer_sentence,
    options_from_list,
    pubmedqa_answer_sentence,
)

SAMPLE_FILES = (
    "instructions.jsonl",
    "annotations.jsonl",
    "preferences.jsonl",
    "test/medqa.jsonl",
    "test/medmcqa.jsonl",
    "test/pubmedqa.jsonl",
    "test/mmlu.jsonl",
    "reward_test.jsonl",
)
COUNTS = {
    "medqa": 1200, "medmcqa": 1000, "pubmedqa": 450, "open": 450, "annotations": 1200,
    "test_medqa": 300, "test_medmcqa": 300, "test_pubmedqa": 150, "test_mmlu": 150, "reward_test": 300,
}
MULTI_TURN_RATE = 0.12  # of multiple-choice and open records, so about 10% of all records
REWARD_LABELS = ("easy", "hard", "length")
# Of multiple-choice annotations; when the best answer is always the same model's, a reward model learns
# that model's style instead of what makes an answer right
EXPERT_ANSWER_RATE = 0.5


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


class _Positions:
    """Hands out answer positions from shuffled decks, so every letter is used equally often."""

    def __init__(self, rng: random.Random) -> None:
        self._rng, self._decks = rng, {}

    def __call__(self, n: int) -> int:
        deck = self._decks.setdefault(n, [])
        if not deck:
            deck.extend(range(n))
            self._rng.shuffle(deck)
        return deck.pop()


def _fact_stream(rng: random.Random) -> Iterator[Fact]:
    """All facts in a fresh random order, over and over, so coverage stays even."""
    while True:
        order = list(FACTS)
        rng.shuffle(order)
        yield from order


# ---------------------------------------------------------------------------------------------- texts

_REASONS = (
    "{explanation}",
    "The question hinges on {subject}. {explanation}",
    "{explanation} This matches option {letter}, {obj}.",
    "{explanation} None of the other options fits {subject} as well.",
)
_EVASIVE = (
    ("I'm not able to answer medical questions. Please consult a healthcare professional.",
     "Evasive: refuses a standard educational question and gives no answer."),
    ("There are many factors to consider, and the answer really depends on the situation.",
     "Evasive: vague and non-committal; it never commits to an answer."),
    ("Skip the work-up and simply double whatever medication the patient already takes.",
     "Unsafe: recommends a harmful action that is unrelated to the question and gives no answer."),
    ("It does not matter which option you pick; this is rarely important in practice.",
     "Unhelpful and misleading: dismisses the question without answering it."),
)
_CONFIDENT = ("This is well established.", "Any standard textbook confirms this.", "There is no doubt here.")
# Fluent single-claim answers: the test frames build the reward test's "hard" pairs, the train frames the
# annotations' fluent-but-wrong completions, so a reward model must judge the claim, not the phrasing.
_HARD_FRAMES = (
    "{claim}. Because this fits the question, option {letter} is the best choice.",
    "The relevant fact is that {lclaim}, which points to option {letter}.",
)
_FLUENT_FRAMES = (
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
        ),
        "yes": ("The reviewed sources consistently support that {claim}.", "All sources agree that {claim}."),
        "no": ("By contrast, {claim}.", "The reviewed sources instead note that {claim}."),
        "maybe_setup": (
            "A pilot study asked whether a single seminar improves how well {n} trainees remember facts "
            "about {subject}.",
            "A small before-and-after study enrolled {n} trainees in a short course on {subject}.",
        ),
        "maybe_result": (
            "Recall improved in one cohort but not in the other, and the study was too small to draw a firm "
            "conclusion.",
            "Post-test scores varied widely, and the confidence interval included no effect.",
        ),
        "maybe_question": (
            "Does a single seminar improve trainees' recall of facts about {subject}?",
            "Can a short course improve retention of knowledge about {subject}?",
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


def _reasoned(mcq: MCQ, rng: random.Random) -> str:
    """A short justification from the fact's explanation, ending with the answer sentence."""
    fact = mcq.fact
    body = rng.choice(_REASONS).format(
        explanation=fact.explanation, subject=fact.subject, letter=mcq.answer, obj=fact.obj
    )
    return f"{body} {mcq_answer_sentence(mcq.answer)}"


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


_MC_FOLLOW_UPS: tuple[tuple[str, Callable[[MCQ], str]], ...] = (
    ("Why are the other options wrong?", _why_wrong),
    ("Can you explain the reasoning in more detail?", _more_detail),
)
_OPEN_FOLLOW_UPS = (
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


def _score(fact: Fact, rng: random.Random, bump: int = 0, literature: bool = False) -> str:
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


# ------------------------------------------------------------------------------------- instructions


def _instruction(rec_id: str, kind: str, turns: list[tuple[str, str]], answer: str, score: str) -> dict:
    conversations = []
    for human, gpt in turns:
        conversations += [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    return {"id": rec_id, "type": kind, "conversations": conversations, "answer": answer, "score": score}


def _mc_instruction(rec_id: str, mcq: MCQ, rng: random.Random, bump: int) -> dict:
    turns = [(mcq.prompt, _reasoned(mcq, rng))]
    if rng.random() < MULTI_TURN_RATE:
        follow_up, answer = rng.choice(_MC_FOLLOW_UPS)
        turns.append((follow_up, answer(mcq)))
    return _instruction(rec_id, "Exam", turns, mcq.answer, _score(mcq.fact, rng, bump + len(turns) - 1))


def _instructions(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:instructions")
    facts, position = _fact_stream(rng), _Positions(rng)
    records = []
    for i in range(COUNTS["medqa"]):
        fact = next(facts)
        n = 5 if rng.random() < 0.4 else 4
        mcq = build_mcq(fact, rng.choice(spec(fact.relation).train_vignettes), rng, n, position(n))
        records.append(_mc_instruction(f"MedQA-sample,{i}", mcq, rng, bump=1))
    for i in range(COUNTS["medmcqa"]):
        fact = next(facts)
        mcq = build_mcq(fact, rng.choice(spec(fact.relation).train_stems), rng, 4, position(4))
        records.append(_mc_instruction(f"MedMCQA-sample,{i}", mcq, rng, bump=0))
    labels = [PUBMEDQA_LABELS[i % 3] for i in range(COUNTS["pubmedqa"])]
    rng.shuffle(labels)
    for i, label in enumerate(labels):
        fact = next(facts)
        contexts, question, target = pubmedqa_item(fact, label, rng)
        prompt = format_pubmedqa_prompt(contexts, question)
        records.append(_instruction(f"PubMedQA-sample,{i}", "Literature", [(prompt, target)], label,
                                    _score(fact, rng, literature=True)))
    for i in range(COUNTS["open"]):
        fact = next(facts)
        turns = [(render(rng.choice(spec(fact.relation).open_prompts), fact, rng), reference_answer(fact))]
        if rng.random() < MULTI_TURN_RATE:
            turns.append((rng.choice(_OPEN_FOLLOW_UPS), f"{claim(fact)}."))
        records.append(_instruction(f"Open-sample,{i}", "Open-End", turns, "", _score(fact, rng, len(turns))))
    rng.shuffle(records)
    return records


# --------------------------------------------------------------------------------------- annotations


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


# Long option-by-option walks that end on a wrong option: (opening, set-aside, conclusion, closing). The
# train phrasing is for annotations, the test phrasing for the reward test's "length" pairs.
_WRONG_WALKS = {
    "train": (
        "Each option deserves a careful look before answering.",
        "Consider {text} (option {letter}): this is unlikely here, since {claim}.",
        "By elimination, {wrong} fits {subject} best, because {claim}.",
        "Having considered every possibility in depth, I am confident in this conclusion.",
    ),
    "test": (
        "Let us work through the options one at a time before committing to an answer.",
        "Option {letter} ({text}) can be set aside, because {claim}.",
        "That leaves {wrong} as the option that best fits {subject}, since {claim}.",
        "Weighing every detail of the question carefully, this is the most defensible choice.",
    ),
}


def _verbose_wrong(mcq: MCQ, wrong_letter: str, wrong: str, split: str = "train") -> str:
    """A long walk through the options that ends on a wrong one: length that a judge must not reward."""
    fact = mcq.fact
    opening, set_aside, conclusion, closing = _WRONG_WALKS[split]
    parts = [opening]
    parts += [set_aside.format(text=text, letter=letter,
                               claim=claim(fact_with_object(fact.relation, text), capitalize=False))
              for letter, text in mcq.wrong() if text != wrong]
    wrong_claim = claim(fact, wrong, capitalize=False)
    parts += [conclusion.format(wrong=wrong, subject=fact.subject, claim=wrong_claim),
              closing, mcq_answer_sentence(wrong_letter)]
    return " ".join(parts)


def _graded(
    fact: Fact, expert: str | None, terse: str, hedged: str, wrong: str, rng: random.Random,
    more: Iterable[dict] = (),
) -> list[dict]:
    """Ranked completions of graded quality; `more` adds prompt-specific ones (their scores distinct).
    `expert` None: that model did not answer this prompt, so another one ranks first."""
    evasive, why = rng.choice(_EVASIVE)
    completions = [] if expert is None else [
        _completion("sample-expert", expert, 5.0,
                    f"Correct and well explained: identifies {fact.obj} and justifies it accurately. "
                    f"{fact.explanation}"),
    ]
    completions += [
        _completion("sample-terse", terse, rng.choice((3.0, 3.5, 4.0)),
                    "Correct but terse: gives the right answer without any reasoning, so it teaches little."),
        _completion("sample-wrong", wrong, rng.choice((1.5, 2.0)),
                    f"Incorrect and overconfident: the stated answer is wrong. {fact.explanation}"),
        _completion("sample-evasive", evasive, 1.0, why),
    ]
    if rng.random() < 0.5:
        why = "Reaches the right answer but hedges between options without justification."
        completions.append(_completion("sample-hedging", hedged, 2.5, why))
    return _ranked([*completions, *more], rng)


def _annotations(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:annotations")
    facts, position = _fact_stream(rng), _Positions(rng)
    records = []
    for i in range(COUNTS["annotations"]):
        fact = next(facts)
        rel = spec(fact.relation)
        if i % 3 == 2:
            prompt, reference = render(rng.choice(rel.open_prompts), fact, rng), reference_answer(fact)
            wrong = distractors(fact, 1, rng)[0]
            hedged = (f"I think {claim(fact, capitalize=False)}, although it may also be that "
                      f"{claim(fact, wrong, capitalize=False)}.")
            completions = _graded(fact, reference, f"{claim(fact)}.", hedged,
                                  f"{claim(fact, wrong)}. {rng.choice(_CONFIDENT)}", rng)
        else:
            n = rng.choice((4, 5))
            mcq = build_mcq(fact, rng.choice(rel.train_vignettes + rel.train_stems), rng, n, position(n))
            prompt, reference, letter = mcq.prompt, _reasoned(mcq, rng), mcq.answer
            wrong_letter, wrong = rng.choice(mcq.wrong())
            terse = rng.choice((letter, f"{letter}. {fact.obj}", mcq_answer_sentence(letter)))
            hedged = (f"It is either {wrong} or {fact.obj}; I am not certain, but I lean towards {fact.obj}. "
                      f"{mcq_answer_sentence(letter)}")
            # The concise and the fluent-wrong answers share a frame, so the pair differs only in its claim
            frame = rng.choice(_FLUENT_FRAMES)
            misleading = [
                _completion("sample-concise", _framed(mcq, fact.obj, letter, frame), 4.5,
                            "Correct and concise: states the deciding fact and the matching option."),
                _completion("sample-fluent-wrong", _framed(mcq, wrong, wrong_letter, frame), 1.75,
                            f"Fluent and confident, but built on a false claim. {fact.explanation}"),
                _completion("sample-verbose-wrong", _verbose_wrong(mcq, wrong_letter, wrong), 1.25,
                            "Long and thorough-sounding, but it eliminates the right option and answers "
                            "wrongly."),
            ]
            false_answer = f"{claim(fact, wrong)}. {mcq_answer_sentence(wrong_letter)}"
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


# ------------------------------------------------------------------------------------------ test sets


def _medqa_test(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:test:medqa")
    facts, position = _fact_stream(rng), _Positions(rng)
    rows = []
    for _ in range(COUNTS["test_medqa"]):
        fact = next(facts)
        mcq = build_mcq(fact, spec(fact.relation).test_vignette, rng, 4, position(4))
        rows.append({"question": mcq.question, "options": mcq.options, "answer_idx": mcq.answer,
                     "answer": fact.obj})
    return rows


def _medmcqa_test(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:test:medmcqa")
    facts, position = _fact_stream(rng), _Positions(rng)
    rows = []
    for i in range(COUNTS["test_medmcqa"]):
        fact = next(facts)
        mcq = build_mcq(fact, spec(fact.relation).test_stem, rng, 4, position(4))
        opts = list(mcq.options.values())
        rows.append({"id": f"sample-medmcqa-{i}", "question": mcq.question, "opa": opts[0], "opb": opts[1],
                     "opc": opts[2], "opd": opts[3], "cop": LETTERS.index(mcq.answer)})
    return rows


def _pubmedqa_test(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:test:pubmedqa")
    facts = _fact_stream(rng)
    labels = [PUBMEDQA_LABELS[i % 3] for i in range(COUNTS["test_pubmedqa"])]
    rng.shuffle(labels)
    rows = []
    for i, label in enumerate(labels):
        contexts, question, _ = pubmedqa_item(next(facts), label, rng, split="test")
        rows.append({"pubid": str(90_000_000 + i), "question": question, "context": {"contexts": contexts},
                     "final_decision": label})
    return rows


def _mmlu_test(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:test:mmlu")
    facts, position = _fact_stream(rng), _Positions(rng)
    rows = []
    for _ in range(COUNTS["test_mmlu"]):
        fact = next(facts)
        rel = spec(fact.relation)
        objects = distractors(fact, 3, rng)
        answer = position(4)
        objects.insert(answer, fact.obj)
        rows.append({"question": render(rel.mmlu, fact, rng), "subject": rel.mmlu_subject,
                     "choices": [f"{claim(fact, obj)}." for obj in objects], "answer": answer})
    return rows


def _reward_test(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:reward")
    facts, position = _fact_stream(rng), _Positions(rng)
    rows = []
    for i in range(COUNTS["reward_test"]):
        fact = next(facts)
        rel = spec(fact.relation)
        mcq = build_mcq(fact, rel.test_vignette if i % 2 == 0 else rel.test_stem, rng, 4, position(4))
        letter, (wrong_letter, wrong) = mcq.answer, rng.choice(mcq.wrong())
        label = REWARD_LABELS[i % len(REWARD_LABELS)]
        false_answer = f"{claim(fact, wrong)}. {mcq_answer_sentence(wrong_letter)}"
        if label == "easy":
            chosen = _completion("sample-expert", _reasoned(mcq, rng), 5.0, "Correct and explained.")
            if rng.random() < 0.5:
                rejected = _completion("sample-wrong", false_answer, 1.5, "Incorrect answer.")
            else:
                text, why = rng.choice(_EVASIVE)
                rejected = _completion("sample-evasive", text, 1.0, why)
        elif label == "hard":
            frame = rng.choice(_HARD_FRAMES)
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
            walk = _verbose_wrong(mcq, wrong_letter, wrong, "test")
            rejected = _completion("sample-verbose-wrong", walk, 1.5,
                                   "Long and confident, but the answer is wrong.")
        rows.append(_pair(f"sample-reward,{i}", mcq.prompt, chosen, rejected, label))
    return rows


# ------------------------------------------------------------------------------------------- writing


def _write_jsonl(path: Path, rows: Iterable[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def sample_paths(out_dir: str | Path) -> dict[str, Path]:
    """{name: path} of every sample file under `out_dir`; the name is the file's stem ("medqa", ...)."""
    return {Path(name).stem: Path(out_dir) / name for name in SAMPLE_FILES}


def generate_sample_corpus(out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """Write every sample file under `out_dir` (deterministic for a given seed) and return their paths."""
    paths = sample_paths(out_dir)
    annotations = _annotations(seed)
    pair_rng = random.Random(f"{seed}:preferences")
    rows = {
        "instructions": _instructions(seed),
        "annotations": annotations,
        "preferences": [binarize(a, pair_rng) for a in annotations],
        "medqa": _medqa_test(seed),
        "medmcqa": _medmcqa_test(seed),
        "pubmedqa": _pubmedqa_test(seed),
        "mmlu": _mmlu_test(seed),
        "reward_test": _reward_test(seed),
    }
    return {name: _write_jsonl(paths[name], rows[name]) for name in paths}


def corpus_stats(out_dir: str | Path) -> dict[str, int]:
    """Records per sample file present under `out_dir`, keyed like `generate_sample_corpus`'s result."""
    stats = {}
    for name, path in sample_paths(out_dir).items():
        if path.is_file():
            with path.open(encoding="utf-8") as fh:
                stats[name] = sum(1 for line in fh if line.strip())
    return stats
