"""Reading the answer a model's free-text reply commits to.

Cues are tried in tiers, strongest first: an explicit answer phrase ("the answer is C", "Answer: C",
"C is the correct answer"), then weaker cues (markdown bold "**C. ...**", "Option C", "I would
choose C"), then a reply or line that is nothing but a letter. Within the first tier that matches
anything, the LAST match wins, because models reason first and conclude last ("A is tempting ...
but the answer is D"). Anything else is unparsed (None) rather than guessed, so a reply that does
not answer counts as wrong instead of silently picking a letter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

from ultramedical.data.prompts import PUBMEDQA_LABELS, prompt_options

# After a letter: not another word character, apostrophe or hyphen ("A's", "X-linked", "Ab").
_END = r"(?![\w'\u2019-])"
# What may sit between a cue and its letter: "Answer: (B)", "answer is **B**", "Answer - [b]". Every
# run of optional characters is possessive (*+, ++), so a degenerate reply with a long run of spaces
# after "answer" cannot make the regex backtrack quadratically.
_SEP = r"[\s\*\(\[:=\-]*+"
_VERB = r"(?:is|was|would\s+be|should\s+be|must\s+be|will\s+be|here\s+is|choice\s+is|option\s+is)"
_ADVERB = r"(?:therefore|thus|hence|clearly|likely|probably|most\s+likely|definitely|then)"
# "answer is therefore option (C)", "Final answer: C", "ANSWER - c", "answer would be **B**".
_ANSWER_PHRASE = rf"\banswer\b(?:\s++{_VERB})?(?:\s++{_ADVERB})?{_SEP}(?:(?:option|choice){_SEP})?"


def _letter(choices: str) -> str:
    # Lookbehind too, so the 'd' ending "PubMed" or the 'c' in "cell" never reads as a letter.
    return rf"(?<![\w'\u2019-])(?P<letter>[{re.escape(choices)}]){_END}"


@lru_cache(maxsize=64)
def _tiers(choices: str) -> list[list[re.Pattern[str]]]:
    letter = _letter(choices)
    flags = re.IGNORECASE
    explicit = [
        re.compile(_ANSWER_PHRASE + letter, flags),
        re.compile(rf"\b(?:correct|right|best)\s++(?:option|choice)\s++{_VERB}{_SEP}{letter}", flags),
        # "C is the correct answer", "Option B is the best choice".
        re.compile(
            rf"(?:\b(?:option|choice)\s++)?[\(\[]?{letter}[\)\]]?\s++is\s++(?:the\s++)?(?:most\s++)?"
            rf"(?:correct|right|best)\s++(?:answer|option|choice)\b",
            flags,
        ),
    ]
    weaker = [
        re.compile(rf"\*\*\s*+[\(\[]?{letter}[\)\]]?\s*+(?:[.:)\-]|\*\*)", flags),  # **C. Metformin** / **C**
        re.compile(rf"\b(?:option|choice)\s*+[\(\[]?{letter}", flags),
        re.compile(rf"\b(?:choose|select|pick|go\s+with)\s++(?:option\s++)?[\(\[]?{letter}", flags),
    ]
    bare = [
        # A line that is only a letter: "B", "B.", "(B)", "**B**".
        re.compile(
            rf"^[^\S\n]*+[\*\(\[]*+{letter}[\*\)\]]*+[^\S\n]*+[.:)]?+[^\S\n]*+$", flags | re.MULTILINE
        ),
    ]
    return [explicit, weaker, bare]


_WORD_NEXT = re.compile(r"\s+\w")


def _normalize_choices(choices: str | Sequence[str]) -> str:
    letters = "".join(choices).upper()
    if not letters or len(letters) != len(tuple(choices)) or not letters.isalpha():
        raise ValueError(f"choices must be single letters, got {choices!r}")
    return letters


def _plausible(text: str, match: re.Match[str]) -> bool:
    """Reject a lone 'a'/'i'/'I' that is an English word ("the answer is a bit...", "Answer: I think")."""
    letter = match.group("letter")
    if letter in ("a", "i", "I"):
        return _WORD_NEXT.match(text, match.end("letter")) is None
    return True


def _last_in_tiers(text: str, tiers: list[list[re.Pattern[str]]]) -> str | None:
    for tier in tiers:
        found: list[tuple[int, str]] = []
        for pattern in tier:
            for match in pattern.finditer(text):
                if _plausible(text, match):
                    found.append((match.start("letter"), match.group("letter")))
        if found:
            return max(found)[1]
    return None


def _lettered_first_line(text: str, choices: str) -> str | None:
    """A reply like "C. Metformin": the first line opens with a letter, and no other line does.

    The one-line condition keeps a reply that merely echoes the option list from reading as 'A'.
    """
    pattern = re.compile(rf"^[^\S\n]*+[\(\[]?(?P<letter>[{re.escape(choices)}])[.)\]]\s", re.MULTILINE)
    matches = list(pattern.finditer(text + "\n"))
    if len(matches) == 1 and not text[: matches[0].start()].strip():
        return matches[0].group("letter")
    return None


def _words(text: str) -> str:
    """A pattern for `text` as whole words ("insulin" not inside "proinsulin")."""
    return rf"(?<!\w){re.escape(text)}(?!\w)"


def _named_after_answer_phrase(reply: str, needles: dict[str, str]) -> str | None:
    """The option named right after the last answer phrase ("so, the answer is deferoxamine"), or, for
    options written as sentences (MMLU), the only option containing the phrase named there."""
    phrases = list(re.finditer(_ANSWER_PHRASE, reply, re.IGNORECASE))
    if not phrases:
        return None
    tail = reply[phrases[-1].end() :]
    named = [k for k, v in needles.items() if v and re.match(rf"{re.escape(v)}(?!\w)", tail)]
    if named:
        return max(named, key=lambda k: len(needles[k]))
    phrase = re.split(r"\.(?:\s|$)", tail, maxsplit=1)[0].strip(" *\"'")
    within = [k for k, v in needles.items() if len(phrase) > 2 and re.search(_words(phrase), v)]
    return within[0] if len(within) == 1 else None


def _only_option_stated(reply: str, needles: dict[str, str]) -> str | None:
    """The only option whose text the reply states anywhere (longest wins over its substrings)."""
    hits = {k: v for k, v in needles.items() if v and re.search(_words(v), reply)}
    # "Metformin" inside "Metformin and insulin" is one statement, not two.
    kept = [k for k, v in hits.items() if not any(v != w and v in w for w in hits.values())]
    return kept[0] if len(kept) == 1 else None


def _match_option_text(text: str, options: Mapping[str, str], choices: str) -> str | None:
    """The letter of the option a reply names by its text: after its answer phrase first, else anywhere."""
    reply = " ".join(text.lower().split())
    needles = {
        letter.upper(): " ".join(str(option).lower().split()).strip(" .")
        for letter, option in options.items()
        if letter.upper() in choices
    }
    return _named_after_answer_phrase(reply, needles) or _only_option_stated(reply, needles)


def extract_answer(
    text: str, choices: str | Sequence[str] = "ABCD", *, options: Mapping[str, str] | None = None
) -> str | None:
    """The upper-case option letter the reply commits to, or None when it commits to none.

    `choices` are the valid letters (a string or a tuple like BenchmarkItem.choices); a letter
    outside them is never returned. With `options` (letter -> text), a reply with no letter cue
    that states exactly one option's text is read as that option.
    """
    if not text or not text.strip():
        return None
    letters = _normalize_choices(choices)
    found = _last_in_tiers(text, _tiers(letters)) or _lettered_first_line(text, letters)
    if found is None and options:
        found = _match_option_text(text, options, letters)
    return found.upper() if found else None


_LABEL = rf"\b(?P<letter>{'|'.join(PUBMEDQA_LABELS)}){_END}"
_LABEL_TIERS = [
    [re.compile(rf"{_ANSWER_PHRASE}[\"'\u201c]?{_LABEL}", re.IGNORECASE)],
    [
        re.compile(rf"\*\*\s*+{_LABEL}", re.IGNORECASE),
        re.compile(
            rf"^[^\S\n]*+[\*\"']*+{_LABEL}[\*\"']*+[^\S\n]*+[.!]?+[^\S\n]*+$", re.IGNORECASE | re.MULTILINE
        ),
    ],
    # A reply opening "Yes, ..." / "No." -- punctuation required so "No answer can be given" is not 'no'.
    [re.compile(rf"\A\s*+[\*\"']*+{_LABEL}[\*\"']*+\s*+[,.!;:]", re.IGNORECASE)],
]


def extract_yes_no_maybe(text: str) -> str | None:
    """The PubMedQA label ('yes', 'no' or 'maybe') the reply commits to, or None."""
    if not text or not text.strip():
        return None
    found = _last_in_tiers(text, _LABEL_TIERS)
    return found.lower() if found else None


def extract_choice(text: str, choices: str, prompt: str = "") -> str | None:
    """The answer a reply commits to, for a choices spec as work items carry it: option letters such
    as "ABCD", or "yes/no/maybe" for literature questions. With the question's `prompt`, a reply that
    names one of its options by text alone counts as that option."""
    if choices == "yes/no/maybe":
        return extract_yes_no_maybe(text)
    return extract_answer(text, choices, options=prompt_options(prompt))
