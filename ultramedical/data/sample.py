"""A deterministic sample corpus built from the embedded knowledge base (no network).

`generate_sample_corpus(out_dir, seed)` writes, as UTF-8 JSON Lines:

  instructions.jsonl   UltraMedical instruction records: MedQA/MedMCQA-style multiple choice, PubMedQA-style
                       literature items and open-ended questions, about 10% of them multi-turn
  annotations.jsonl    preference prompts with 4 to 9 judged, ranked completions of graded quality
  online_prompts.jsonl multiple-choice prompts for the online rounds, in phrasings no other file uses
  preferences.jsonl    one Zephyr-style chosen/rejected pair per annotation (see `binarize`), then pairs that
                       differ only in the claim (`claim_contrasts`)
  test/*.jsonl         held-out MedQA, MedMCQA, PubMedQA and MMLU items in their published schemas
  reward_test.jsonl    easy/hard/length reward-model pairs in the style of Medical RewardBench

Test items and reward pairs use only the held-out templates of `knowledge_templates`, so no test
question appears verbatim in the training prompts. The same seed gives byte-identical files.
The files are assembled here; their building blocks are in `sample_texts.py` and the preference data
(annotations, pairs, the reward test) in `sample_preferences.py`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path

from ultramedical.data.knowledge import claim, distractors, render, spec
from ultramedical.data.knowledge_templates import ONLINE_VIGNETTES
from ultramedical.data.prompts import LETTERS, PUBMEDQA_LABELS, format_pubmedqa_prompt
from ultramedical.data.sample_preferences import annotations, binarize, claim_contrasts, reward_test
from ultramedical.data.sample_texts import (
    MC_FOLLOW_UPS,
    MCQ,
    OPEN_FOLLOW_UPS,
    Positions,
    build_mcq,
    difficulty_score,
    fact_stream,
    pubmedqa_item,
    reasoned,
    reference_answer,
)

__all__ = ["SAMPLE_FILES", "binarize", "build_mcq", "corpus_stats", "generate_sample_corpus", "sample_paths"]

SAMPLE_FILES = (
    "instructions.jsonl",
    "online_prompts.jsonl",
    "annotations.jsonl",
    "preferences.jsonl",
    "test/medqa.jsonl",
    "test/medmcqa.jsonl",
    "test/pubmedqa.jsonl",
    "test/mmlu.jsonl",
    "reward_test.jsonl",
)
COUNTS = {
    "medqa": 1200, "medmcqa": 1000, "pubmedqa": 450, "open": 450, "annotations": 1200, "claims": 4800,
    "online_prompts": 600, "test_medqa": 300, "test_medmcqa": 300, "test_pubmedqa": 150, "test_mmlu": 150,
    "reward_test": 300,
}
MULTI_TURN_RATE = 0.12  # of multiple-choice and open records, so about 10% of all records


# ------------------------------------------------------------------------------------- instructions


def _instruction(rec_id: str, kind: str, turns: list[tuple[str, str]], answer: str, score: str) -> dict:
    conversations = []
    for human, gpt in turns:
        conversations += [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    return {"id": rec_id, "type": kind, "conversations": conversations, "answer": answer, "score": score}


def _mc_instruction(rec_id: str, mcq: MCQ, rng: random.Random, bump: int) -> dict:
    turns = [(mcq.prompt, reasoned(mcq, rng))]
    if rng.random() < MULTI_TURN_RATE:
        follow_up, answer = rng.choice(MC_FOLLOW_UPS)
        turns.append((follow_up, answer(mcq)))
    score = difficulty_score(mcq.fact, rng, bump + len(turns) - 1)
    return _instruction(rec_id, "Exam", turns, mcq.answer, score)


def _instructions(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:instructions")
    facts, position = fact_stream(rng), Positions(rng)
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
                                    difficulty_score(fact, rng, literature=True)))
    for i in range(COUNTS["open"]):
        fact = next(facts)
        turns = [(render(rng.choice(spec(fact.relation).open_prompts), fact, rng), reference_answer(fact))]
        if rng.random() < MULTI_TURN_RATE:
            turns.append((rng.choice(OPEN_FOLLOW_UPS), f"{claim(fact)}."))
        score = difficulty_score(fact, rng, len(turns))
        records.append(_instruction(f"Open-sample,{i}", "Open-End", turns, "", score))
    rng.shuffle(records)
    return records


def _preferences(judged: list[dict], rng: random.Random, seed: int) -> list[dict]:
    """One Zephyr-style pair per annotation, then the judged pairs that differ only in the claim
    (`claim_contrasts`): Zephyr pairs alone taught the reward model style, not correctness (46% on the
    reward test's "hard" pairs)."""
    return [binarize(a, rng) for a in judged] + claim_contrasts(seed, COUNTS["claims"])


def _online_prompts(seed: int) -> list[dict]:
    """Multiple-choice prompts for the online rounds, phrased with `ONLINE_VIGNETTES`: new to the policy
    (no other file uses those phrasings), so it has not memorised the answers and its samples differ.
    Never the test templates: the evaluation stays held out."""
    rng = random.Random(f"{seed}:online")
    facts, position = fact_stream(rng), Positions(rng)
    records = []
    for i in range(COUNTS["online_prompts"]):
        fact = next(facts)
        mcq = build_mcq(fact, rng.choice(ONLINE_VIGNETTES[fact.relation]), rng, 4, position(4))
        records.append(_instruction(f"Online-sample,{i}", "Exam", [(mcq.prompt, reasoned(mcq, rng))],
                                    mcq.answer, difficulty_score(fact, rng, 1)))
    return records


# ------------------------------------------------------------------------------------------ test sets


def _medqa_test(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:test:medqa")
    facts, position = fact_stream(rng), Positions(rng)
    rows = []
    for _ in range(COUNTS["test_medqa"]):
        fact = next(facts)
        mcq = build_mcq(fact, spec(fact.relation).test_vignette, rng, 4, position(4))
        rows.append({"question": mcq.question, "options": mcq.options, "answer_idx": mcq.answer,
                     "answer": fact.obj})
    return rows


def _medmcqa_test(seed: int) -> list[dict]:
    rng = random.Random(f"{seed}:test:medmcqa")
    facts, position = fact_stream(rng), Positions(rng)
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
    facts = fact_stream(rng)
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
    facts, position = fact_stream(rng), Positions(rng)
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
    judged = annotations(seed, COUNTS["annotations"])
    pair_rng = random.Random(f"{seed}:preferences")
    rows = {
        "instructions": _instructions(seed),
        "online_prompts": _online_prompts(seed),
        "annotations": judged,
        "preferences": _preferences(judged, pair_rng, seed),
        "medqa": _medqa_test(seed),
        "medmcqa": _medmcqa_test(seed),
        "pubmedqa": _pubmedqa_test(seed),
        "mmlu": _mmlu_test(seed),
        "reward_test": reward_test(seed, COUNTS["reward_test"]),
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
