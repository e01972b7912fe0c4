"""Multiple-choice evaluation: greedy, self-consistency (majority over N samples) and best-of-N
(the sample the reward model scores highest). Generation and scoring are passed in as functions, so
the same code runs on a vLLM pool, an in-process engine or anything else that completes prompts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ultramedical.eval.benchmarks import BenchmarkItem
from ultramedical.eval.extract import extract_choice
from ultramedical.eval.stats import best_of_n, majority_vote, summarize
from ultramedical.generation.engine import Sampling

MODES = ("greedy", "sc", "bon")
# (items, sampling) -> for each item, its completion texts
GenerateFn = Callable[[Sequence[BenchmarkItem], Sampling], list[list[str]]]
# (items, completions per item) -> for each item, a reward per completion
ScoreFn = Callable[[Sequence[BenchmarkItem], list[list[str]]], list[list[float]]]


def extract(item: BenchmarkItem, text: str) -> str | None:
    """The item's answer in `text`: a letter cue first, else the one option whose text it names."""
    choices = "yes/no/maybe" if item.benchmark == "pubmedqa" else "".join(item.choices)
    return extract_choice(text, choices, item.prompt)


def sampling_for(mode: str, n: int, temperature: float, top_p: float, max_tokens: int, seed: int) -> Sampling:
    if mode == "greedy":
        return Sampling(n=1, temperature=0.0, max_tokens=max_tokens)
    if mode in ("sc", "bon"):
        return Sampling(n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    raise ValueError(f"unknown mode '{mode}' (expected one of {', '.join(MODES)})")


def evaluate_mcq(
    items: Sequence[BenchmarkItem],
    generate: GenerateFn,
    mode: str = "greedy",
    sampling: Sampling | None = None,
    score: ScoreFn | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-item records and the summary (accuracy, n, ci95, unparsed)."""
    if mode == "bon" and score is None:
        raise ValueError("best-of-N needs a reward model (--reward-model)")
    sampling = sampling or sampling_for(mode, 10, 0.7, 0.9, 256, 0)
    completions = generate(items, sampling)
    rewards = score(items, completions) if mode == "bon" and score else None
    records = []
    for index, (item, texts) in enumerate(zip(items, completions, strict=True)):
        answers = [extract(item, t) for t in texts]
        if mode == "greedy":
            prediction = answers[0]
        elif mode == "sc":
            prediction = majority_vote(answers, item.choices)
        else:
            prediction = best_of_n(answers, rewards[index])
        record = {
            "id": item.id,
            "benchmark": item.benchmark,
            "subject": item.subject,
            "answer": item.answer,
            "prediction": prediction,
            "correct": prediction == item.answer,
            "completions": texts,
            "extracted": answers,
        }
        if rewards is not None:
            record["rewards"] = rewards[index]
        records.append(record)
    return records, summarize(records)
