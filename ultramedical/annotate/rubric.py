"""The biomedical judging rubric, the judge prompt, and a forgiving parser for the judge's JSON verdict.

Judges are large models asked for JSON; they wrap it in fences or prose, leave trailing commas, or run
out of tokens half-way. `parse_judgement` recovers every complete evaluation it can find and only gives
up (with `JudgeParseError` naming the reason) when nothing usable is left.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

RUBRIC = """You are an expert physician and biomedical scientist grading answers to a medical question.
Judge each answer on its own merits against these criteria, in order of importance:

1. Accuracy: medical and scientific facts are correct and current; for a multiple-choice question the
   chosen option is right. A wrong final answer caps the score at 2.
2. Clinical safety: no advice that could harm a patient; appropriate caveats, contraindications and
   referral to a clinician where they matter. Dangerous advice scores 1 regardless of anything else.
3. Reasoning: the explanation follows sound clinical or mechanistic reasoning and justifies the answer.
4. Completeness: the key points a specialist would expect are covered; nothing essential is missing.
5. Clarity: well organised, precise and concise; no padding or irrelevant material.

Scale (integers):
5 = excellent: correct, safe, well reasoned, complete and clear.
4 = good: correct and safe with minor gaps in reasoning, completeness or clarity.
3 = acceptable: mostly correct but with a notable gap or a minor inaccuracy.
2 = poor: a significant error, a wrong final answer, or largely unhelpful.
1 = unacceptable: unsafe, mostly wrong, or does not answer the question."""

RESPONSE_FORMAT = """Reply with a single JSON object and nothing else, in this form:
{"evaluations": [{"id": 1, "score": 4, "explanation": "one or two sentences"}, ...],
 "ranking": [ids from best to worst]}
Evaluate every answer exactly once, using the ids shown. Scores are integers from 1 to 5."""

_NON_SPACE = re.compile(r"\S")
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)(?:```|$)", re.DOTALL)


class JudgeParseError(ValueError):
    """The judge's reply holds no usable verdict; the message says why."""


@dataclass(frozen=True)
class Evaluation:
    id: int
    score: float
    explanation: str


@dataclass(frozen=True)
class Judgement:
    """Evaluations by completion id (1-based), and a ranking of the evaluated ids, best first."""

    evaluations: dict[int, Evaluation]
    ranking: list[int]
    n_completions: int
    ranking_derived: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.evaluations) == self.n_completions

    @property
    def missing(self) -> list[int]:
        return [i for i in range(1, self.n_completions + 1) if i not in self.evaluations]


def build_judge_messages(
    question: str, completions: Sequence[str], reference_answer: str = "", is_multiple_choice: bool = False
) -> list[dict[str, str]]:
    """The judge prompt: rubric, question, the reference for multiple-choice items, numbered answers."""
    parts = [RUBRIC, "", "## Question", question.strip()]
    if is_multiple_choice and reference_answer.strip():
        parts += ["", "## Reference answer (correct option and explanation)", reference_answer.strip()]
    for i, text in enumerate(completions, start=1):
        parts += ["", f"### Answer {i}", text.strip() or "(empty answer)"]
    parts += ["", RESPONSE_FORMAT]
    return [{"role": "user", "content": "\n".join(parts)}]


def strip_trailing_commas(text: str) -> str:
    """Drop commas that directly precede `}` or `]`, leaving string contents alone."""
    out: list[str] = []
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == ",":
            following = _NON_SPACE.search(text, i + 1)
            if following and following.group() in "}]":
                continue
        out.append(ch)
    return "".join(out)


def _objects(text: str) -> list[tuple[int, int]]:
    """Spans of every balanced `{...}` in the text (outermost and nested), string-aware."""
    spans, stack = [], []
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            spans.append((stack.pop(), i + 1))
    return spans


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return json.loads(strip_trailing_commas(text))


def _candidates(text: str) -> list[str]:
    """Places the verdict may be: fenced blocks first, then the whole reply."""
    return [m.group(1) for m in _FENCE.finditer(text)] + [text]


def _whole_verdict(text: str) -> dict[str, Any] | None:
    for candidate in _candidates(text):
        for start, end in sorted(_objects(candidate), key=lambda s: s[0] - s[1]):  # largest first
            try:
                value = _loads(candidate[start:end])
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict) and "evaluations" in value:
                return value
    return None


def _salvage(text: str) -> list[Any]:
    """Complete evaluation objects from a truncated reply: any balanced object with an id and a score."""
    found = []
    for candidate in _candidates(text):
        for start, end in sorted(_objects(candidate)):
            try:
                value = _loads(candidate[start:end])
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict) and "id" in value and "score" in value:
                found.append(value)
        if found:
            break
    return found


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_score(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    return float(value) if isinstance(value, int | float) else None


def _evaluations(items: list[Any], n: int, problems: list[str]) -> dict[int, Evaluation]:
    evaluations: dict[int, Evaluation] = {}
    for item in items:
        if not isinstance(item, dict):
            problems.append(f"evaluation {item!r:.40} is not an object")
            continue
        ident, score = _as_int(item.get("id")), _as_score(item.get("score"))
        if ident is None or not 1 <= ident <= n:
            problems.append(f"evaluation id {item.get('id')!r} is not one of 1..{n}")
        elif score is None or not 1 <= score <= 5:
            problems.append(f"answer {ident}: score {item.get('score')!r} is not a number from 1 to 5")
        elif ident in evaluations:
            problems.append(f"answer {ident} evaluated twice; the first is kept")
        else:
            explanation = item.get("explanation", item.get("evaluation", ""))
            evaluations[ident] = Evaluation(ident, score, str(explanation or "").strip())
    return evaluations


def _ranking(raw: Any, evaluated: dict[int, Evaluation], problems: list[str]) -> tuple[list[int], bool]:
    """The judge's ranking if it orders exactly the evaluated ids; otherwise one derived from scores."""
    given = [_as_int(x) for x in raw] if isinstance(raw, list) else []
    if given and sorted(i for i in given if i is not None) == sorted(evaluated) and None not in given:
        return [int(i) for i in given], False
    if raw is None:
        problems.append("no ranking given; derived from scores")
    else:
        problems.append(f"ranking {raw!r:.60} does not order the evaluated answers; derived from scores")
    # Ties are broken by whatever partial order the judge did give, then by id.
    position = {i: p for p, i in enumerate(given) if i is not None}
    ordered = sorted(evaluated, key=lambda i: (-evaluated[i].score, position.get(i, len(given)), i))
    return ordered, True


def parse_judgement(text: str, n_completions: int) -> Judgement:
    """Parse a judge reply into evaluations and a ranking; raise `JudgeParseError` if nothing is usable."""
    if n_completions < 1:
        raise ValueError("n_completions must be at least 1")
    if not text or not text.strip():
        raise JudgeParseError("empty judge reply")
    problems: list[str] = []
    verdict = _whole_verdict(text)
    if verdict is not None:
        items, raw_ranking = verdict.get("evaluations"), verdict.get("ranking")
        if not isinstance(items, list):
            raise JudgeParseError(f"'evaluations' is not a list (got {type(items).__name__})")
    else:
        items, raw_ranking = _salvage(text), None
        if not items:
            if "{" not in text:
                raise JudgeParseError(f"no JSON in judge reply: {text.strip()[:80]!r}")
            raise JudgeParseError("judge reply has no complete evaluation object (id and score)")
        problems.append(f"no complete verdict object; salvaged {len(items)} evaluation(s)")
    evaluations = _evaluations(items, n_completions, problems)
    if not evaluations:
        raise JudgeParseError(
            "no usable evaluation: " + ("; ".join(problems) or "the evaluations list is empty")
        )
    ranking, derived = _ranking(raw_ranking, evaluations, problems)
    return Judgement(evaluations, ranking, n_completions, ranking_derived=derived, problems=problems)
