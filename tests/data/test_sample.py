"""The deterministic sample corpus: files, schemas, answer correctness, balance and held-out test splits."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from ultramedical.data.knowledge import FACTS, cap, claim
from ultramedical.data.prompts import (
    PUBMEDQA_LABELS,
    format_mcq_prompt,
    prompt_options,
    pubmedqa_answer_sentence,
)
from ultramedical.data.sample import (
    COUNTS,
    SAMPLE_FILES,
    binarize,
    build_mcq,
    corpus_stats,
    generate_sample_corpus,
)
from ultramedical.data.schemas import parse_annotation, parse_instruction, parse_preference
from ultramedical.eval.extract import extract_choice


def read_answer(prompt: str, reply: str) -> str | None:
    """The option the evaluator reads from a reply: a letter cue, or the one option named by its text."""
    return extract_choice(reply, "".join(prompt_options(prompt)), prompt)

MMLU_SUBJECTS = {"clinical_knowledge", "medical_genetics", "anatomy", "professional_medicine",
                 "college_biology", "college_medicine"}
BY_EXPLANATION: dict[str, list] = {}
for _fact in FACTS:
    BY_EXPLANATION.setdefault(_fact.explanation, []).append(_fact)


def read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def split_mcq(prompt: str) -> tuple[str, dict[str, str]]:
    """Invert format_mcq_prompt: the question and its lettered options."""
    question, block = prompt.rsplit("\n\n", 1)
    options = {}
    for line in block.split("\n"):
        match = re.fullmatch(r"([A-J])\. (.+)", line)
        assert match, f"bad option line {line!r}"
        options[match.group(1)] = match.group(2)
    assert format_mcq_prompt(question, options) == prompt
    return question, options


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("corpus")
    paths = generate_sample_corpus(out, seed=0)
    return {"dir": out, "paths": paths, "rows": {name: read(path) for name, path in paths.items()}}


def test_generation_writes_every_file(corpus):
    paths = corpus["paths"]
    assert sorted(str(p.relative_to(corpus["dir"])) for p in paths.values()) == sorted(SAMPLE_FILES)
    assert all(p.is_file() for p in paths.values())
    stats = corpus_stats(corpus["dir"])
    assert stats == {name: len(rows) for name, rows in corpus["rows"].items()}


def test_files_are_utf8_jsonl_without_ascii_escapes(corpus):
    raw = corpus["paths"]["instructions"].read_bytes()
    assert "Sjögren".encode() in raw and b"\\u00f6" not in raw
    for path in corpus["paths"].values():
        for line in path.read_text(encoding="utf-8").splitlines():
            assert isinstance(json.loads(line), dict)


def test_same_seed_is_byte_identical_and_other_seed_differs(corpus, tmp_path):
    again = generate_sample_corpus(tmp_path / "again", seed=0)
    for name, path in corpus["paths"].items():
        assert again[name].read_bytes() == path.read_bytes(), name
    other = generate_sample_corpus(tmp_path / "other", seed=1)
    assert other["instructions"].read_bytes() != corpus["paths"]["instructions"].read_bytes()
    assert other["medqa"].read_bytes() != corpus["paths"]["medqa"].read_bytes()


def test_counts(corpus):
    rows = corpus["rows"]
    assert len(rows["instructions"]) >= 3000
    assert len(rows["annotations"]) >= 1000
    # one Zephyr pair per annotation, then the claim contrasts
    assert len(rows["preferences"]) == len(rows["annotations"]) + COUNTS["claims"]
    assert len(rows["online_prompts"]) >= 300
    assert 250 <= len(rows["medqa"]) <= 350 and 250 <= len(rows["medmcqa"]) <= 350
    assert 120 <= len(rows["pubmedqa"]) <= 200 and 120 <= len(rows["mmlu"]) <= 200
    assert 250 <= len(rows["reward_test"]) <= 350


def test_instruction_schema_and_mix(corpus):
    rows = corpus["rows"]["instructions"]
    sources = Counter(r["id"].split(",")[0] for r in rows)
    assert set(sources) == {"MedQA-sample", "MedMCQA-sample", "PubMedQA-sample", "Open-sample"}
    assert min(sources.values()) >= 300
    assert len({r["id"] for r in rows}) == len(rows)
    kinds = {"MedQA-sample": "Exam", "MedMCQA-sample": "Exam", "PubMedQA-sample": "Literature",
             "Open-sample": "Open-End"}
    for r in rows:
        assert list(r) == ["id", "type", "conversations", "answer", "score"]
        assert r["type"] == kinds[r["id"].split(",")[0]]
        turns = r["conversations"]
        assert len(turns) in (2, 4)
        assert [t["from"] for t in turns] == ["human", "gpt"] * (len(turns) // 2)
        assert re.match(r"^([1-9]|10)\. The question tests .+\.$", r["score"]), r["score"]
        parse_instruction(r)
    multi = sum(len(r["conversations"]) == 4 for r in rows) / len(rows)
    assert 0.05 <= multi <= 0.2


def test_multiple_choice_targets_are_correct(corpus):
    mc = [r for r in corpus["rows"]["instructions"] if r["type"] == "Exam"]
    assert mc
    for r in mc:
        prompt, target = r["conversations"][0]["value"], r["conversations"][1]["value"]
        _, options = split_mcq(prompt)
        n = len(options)
        assert n == 4 if r["id"].startswith("MedMCQA") else n in (4, 5)
        assert len(set(options.values())) == n
        assert r["answer"] in options
        # named by the option's text (see sample_texts.stated_answer), which the evaluator maps back
        assert target.endswith(f"So, the answer is {options[r['answer']]}.")
        assert read_answer(prompt, target) == r["answer"], target
        explained = [f for e, facts in BY_EXPLANATION.items() if e in target for f in facts]
        assert explained, target
        assert any(options[r["answer"]] == f.obj for f in explained), (options, target)
        if len(r["conversations"]) == 4:
            # follow-ups name several options, so they close on the letter
            assert r["conversations"][3]["value"].endswith(f"So, the answer is {r['answer']}.")


def test_answer_letters_are_balanced(corpus):
    mc = [r for r in corpus["rows"]["instructions"] if r["type"] == "Exam"]
    for n in (4, 5):
        letters = Counter(r["answer"] for r in mc if len(split_mcq(r["conversations"][0]["value"])[1]) == n)
        total = sum(letters.values())
        assert total > 100 and len(letters) == n
        if n == 4:
            assert all(0.15 <= c / total <= 0.35 for c in letters.values()), letters
    test_letters = Counter(r["answer_idx"] for r in corpus["rows"]["medqa"])
    assert all(0.15 <= c / len(corpus["rows"]["medqa"]) <= 0.35 for c in test_letters.values())


def test_literature_and_open_records(corpus):
    rows = corpus["rows"]["instructions"]
    lit = [r for r in rows if r["type"] == "Literature"]
    assert {r["answer"] for r in lit} == set(PUBMEDQA_LABELS)
    for r in lit:
        prompt, target = r["conversations"][0]["value"], r["conversations"][1]["value"]
        assert prompt.startswith("Context: ") and prompt.endswith("Answer with yes, no or maybe.")
        context = prompt.split("\n\n")[0]
        assert 2 <= len(re.findall(r"[.?!](?= [A-Z]|$)", context)) <= 4
        assert target.endswith(pubmedqa_answer_sentence(r["answer"]))
    for r in (r for r in rows if r["type"] == "Open-End"):
        assert r["answer"] == "" and len(r["conversations"][1]["value"]) > 40


def _questions(rows: dict) -> list[str]:
    return ([r["question"] for r in rows["medqa"]] + [r["question"] for r in rows["medmcqa"]]
            + [r["question"] for r in rows["pubmedqa"]] + [r["question"] for r in rows["mmlu"]]
            + [split_mcq(r["prompt"])[0] for r in rows["reward_test"]])


def test_held_out_questions_never_appear_in_training_prompts(corpus):
    rows = corpus["rows"]
    training = "\x00".join(t["value"] for name in ("instructions", "online_prompts") for r in rows[name]
                           for t in r["conversations"] if t["from"] == "human")
    training += "\x00" + "\x00".join(a["prompt"] for a in rows["annotations"])
    training += "\x00" + "\x00".join(p["prompt"] for p in rows["preferences"])
    leaked = [q for q in set(_questions(rows)) if q in training]
    assert leaked == []
    # the literature items' framing sentences too (the middle one is the fact's shared explanation)
    framing = {r["context"]["contexts"][i] for r in rows["pubmedqa"] for i in (0, -1)}
    assert [c for c in framing if c in training] == []


def test_online_prompts_are_new_phrasings_of_training_facts(corpus):
    from ultramedical.data.knowledge_templates import ONLINE_VIGNETTES, RELATIONS

    rows = corpus["rows"]["online_prompts"]
    assert len({r["id"] for r in rows}) == len(rows)
    # no online phrasing is a template that the SFT data, the preference data or a test split uses
    for relation, online in ONLINE_VIGNETTES.items():
        spec = RELATIONS[relation]
        used = set(spec.vignettes) | set(spec.stems) | set(spec.open_prompts) | set(spec.yesno) | {spec.mmlu}
        assert online and not set(online) & used, relation
    assert set(ONLINE_VIGNETTES) == set(RELATIONS)
    prompts = [r["conversations"][0]["value"] for r in rows]
    others = {t["value"] for r in corpus["rows"]["instructions"] for t in r["conversations"]}
    assert not set(prompts) & others
    for r in rows:
        assert r["type"] == "Exam" and len(r["conversations"]) == 2
        prompt, target = r["conversations"][0]["value"], r["conversations"][1]["value"]
        _, options = split_mcq(prompt)
        assert len(options) == 4 and r["answer"] in options
        assert read_answer(prompt, target) == r["answer"]


def test_test_sets_cover_the_same_facts(corpus):
    subjects = {f.subject for f in FACTS}
    questions = [r["question"] for r in corpus["rows"]["medqa"]]
    assert sum(any(s in q for s in subjects) for q in questions) == len(questions)


def test_annotations(corpus):
    rows = corpus["rows"]["annotations"]
    for a in rows:
        parse_annotation(a)
        comps = a["completions"]
        assert len(comps) >= 4
        assert sorted(c["rank"] for c in comps) == list(range(1, len(comps) + 1))
        by_rank = sorted(comps, key=lambda c: c["rank"])
        assert all(x["score"] > y["score"] for x, y in zip(by_rank, by_rank[1:], strict=False))
        assert all(1 <= c["score"] <= 5 and c["evaluation"] for c in comps)
        models = {c["model"]: c for c in comps}
        assert "sample-wrong" in models and 1 <= models["sample-wrong"]["score"] <= 2
        # the short answers come from models that answer about half the prompts
        assert 3 <= models.get("sample-terse", {"score": 3})["score"] <= 4
        assert models.get("sample-evasive", {"score": 1})["score"] == 1
        if "sample-expert" in models:
            assert by_rank[0]["model"] == "sample-expert" and models["sample-expert"]["score"] == 5
        if "\n\nA. " in a["prompt"]:
            assert by_rank[0]["model"] in ("sample-expert", "sample-concise")
            _, options = split_mcq(a["prompt"])
            good = read_answer(a["prompt"], models["sample-concise"]["text"])
            for bad_model in ("sample-wrong", "sample-fluent-wrong", "sample-verbose-wrong",
                              "sample-thorough-wrong"):
                bad = read_answer(a["prompt"], models[bad_model]["text"])
                assert good in options and bad in options and good != bad
            # a right answer can be the shorter one: length alone must not tell good from bad
            concise, verbose = (models[m]["text"] for m in ("sample-concise", "sample-verbose-wrong"))
            assert len(concise) < len(verbose)
            if "sample-expert" in models:
                assert read_answer(a["prompt"], models["sample-expert"]["text"]) == good
                assert a["reference_answer"] == models["sample-expert"]["text"]
        else:
            assert by_rank[0]["model"] == "sample-expert"
    assert sum("\n\nA. " in a["prompt"] for a in rows) > len(rows) / 2
    for short in ("sample-terse", "sample-hedging", "sample-evasive"):
        answered = sum(any(c["model"] == short for c in a["completions"]) for a in rows)
        assert 0.4 < answered / len(rows) < 0.75, short


def test_preferences_are_binarized_annotations(corpus):
    annotations = {a["prompt_id"]: a for a in corpus["rows"]["annotations"]}
    zephyr = [p for p in corpus["rows"]["preferences"] if p["label_type"] != "claim"]
    assert len(zephyr) == len(annotations)
    for p in zephyr:
        parse_preference(p)
        a = annotations[p["prompt_id"]]
        assert p["prompt"] == a["prompt"] and p["label_type"] == "sample"
        for side in ("chosen", "rejected"):
            assert [m["role"] for m in p[side]] == ["user", "assistant"]
            assert p[side][0]["content"] == a["prompt"]
        assert p["chosen"] != p["rejected"]
        meta = p["metadata"]
        assert meta["chosen"]["score"] > meta["rejected"]["score"]
        assert meta["chosen"]["model"] in ("sample-expert", "sample-concise")
        texts = {c["model"]: c["text"] for c in a["completions"]}
        assert p["rejected"][1]["content"] == texts[meta["rejected"]["model"]]
    rejected = Counter(p["metadata"]["rejected"]["model"] for p in zephyr)
    assert len(rejected) >= 3
    # the best answer is not always the same model's, so a reward model cannot learn one style as "good"
    chosen = Counter(p["metadata"]["chosen"]["model"] for p in corpus["rows"]["preferences"])
    assert min(chosen.values()) > len(corpus["rows"]["preferences"]) / 5


def test_claim_contrasts_differ_in_the_claim_not_the_style(corpus):
    claims = [p for p in corpus["rows"]["preferences"] if p["label_type"] == "claim"]
    assert len(claims) == COUNTS["claims"]
    models = Counter((p["metadata"]["chosen"]["model"], p["metadata"]["rejected"]["model"]) for p in claims)
    assert set(models) == {("sample-concise", "sample-fluent-wrong"), ("sample-expert", "sample-confused")}
    for p in claims:
        parse_preference(p)
        prompt = p["prompt"]
        _, options = split_mcq(prompt)
        chosen, rejected = p["chosen"][1]["content"], p["rejected"][1]["content"]
        assert p["metadata"]["chosen"]["score"] > p["metadata"]["rejected"]["score"]
        # the chosen answer names the fact's object; the rejected one a wrong option or no option at all
        named = chosen.rsplit("So, the answer is ", 1)[1].rstrip(".")
        assert named == read_answer(prompt, chosen) or named in options.values()
        if p["metadata"]["chosen"]["model"] == "sample-expert":
            explained = [f for e, facts in BY_EXPLANATION.items() if e in chosen for f in facts]
            assert any(f.obj == named for f in explained), chosen
        assert rejected.rsplit("So, the answer is ", 1)[1].rstrip(".") != named
        if p["metadata"]["rejected"]["model"] == "sample-fluent-wrong":
            assert 0.5 <= len(rejected) / len(chosen) <= 2
    # the reward test's "hard" frames never train
    hard = {p["chosen"][1]["content"].split(". ")[1] for p in corpus["rows"]["reward_test"]
            if p["label_type"] == "hard" and ". " in p["chosen"][1]["content"]}
    assert not any(h and h in p["chosen"][1]["content"] for p in claims for h in hard if len(h) > 20)


def test_preferences_do_not_teach_that_longer_is_better(corpus):
    pairs = corpus["rows"]["preferences"]
    longer = [len(p["chosen"][1]["content"]) > len(p["rejected"][1]["content"]) for p in pairs]
    # Zephyr binarization with mostly short rejected answers gave 78% (and a reward model that picked
    # the long wrong answer of every "length" test pair)
    assert sum(longer) / len(pairs) < 0.7
    zephyr = [p for p in pairs if p["label_type"] == "sample"]
    walks = [p["rejected"][1]["content"] for p in zephyr
             if p["metadata"]["rejected"]["model"] == "sample-verbose-wrong"]
    assert len(walks) > len(zephyr) / 10
    # the walks vary sentence by sentence, and none uses the reward test's held-out wording
    openings = {w.split(". ")[0] for w in walks}
    test_openings = {p["rejected"][1]["content"].split(". ")[0] for p in corpus["rows"]["reward_test"]
                     if p["label_type"] == "length"}
    assert len(openings) >= 4 and not openings & test_openings


def test_binarize_is_seeded_and_rejects_ties():
    annotation = {"prompt_id": "x", "prompt": "q", "completions": [
        {"model": m, "text": m, "score": s, "evaluation": "", "rank": r}
        for m, s, r in (("a", 5.0, 1), ("b", 3.0, 2), ("c", 2.0, 3), ("d", 1.0, 4))]}
    first = binarize(annotation, random.Random(7))
    assert first == binarize(annotation, random.Random(7))
    assert first["chosen"][1]["content"] == "a"
    picks = {binarize(annotation, random.Random(s))["rejected"][1]["content"] for s in range(40)}
    assert picks == {"b", "c", "d"}
    tied = {**annotation, "completions": [dict(c, score=4.0) for c in annotation["completions"]]}
    with pytest.raises(ValueError):
        binarize(tied, random.Random(0))


def test_build_mcq_puts_the_object_at_the_answer():
    rng = random.Random(3)
    for fact in FACTS:
        for n in (4, 5):
            mcq = build_mcq(fact, "{Subject}?", rng, n, answer_index=n - 1)
            assert list(mcq.options) == list("ABCDE"[:n]) and mcq.answer == "ABCDE"[n - 1]
            assert mcq.options[mcq.answer] == fact.obj
            assert len(set(mcq.options.values())) == n


def test_benchmark_files_follow_their_schemas(corpus):
    rows = corpus["rows"]
    for r in rows["medqa"]:
        assert list(r["options"]) == ["A", "B", "C", "D"]
        assert r["answer_idx"] in r["options"] and r["options"][r["answer_idx"]] == r["answer"]
    assert len({r["id"] for r in rows["medmcqa"]}) == len(rows["medmcqa"])
    for r in rows["medmcqa"]:
        assert isinstance(r["cop"], int) and 0 <= r["cop"] <= 3
        assert len({r[k] for k in ("opa", "opb", "opc", "opd")}) == 4
    assert {r["final_decision"] for r in rows["pubmedqa"]} == set(PUBMEDQA_LABELS)
    assert len({r["pubid"] for r in rows["pubmedqa"]}) == len(rows["pubmedqa"])
    for r in rows["pubmedqa"]:
        contexts = r["context"]["contexts"]
        assert 2 <= len(contexts) <= 3 and all(isinstance(c, str) and c for c in contexts)
    true_claims = {f"{claim(f)}." for f in FACTS}
    for r in rows["mmlu"]:
        assert r["subject"] in MMLU_SUBJECTS
        assert len(r["choices"]) == 4 and isinstance(r["answer"], int) and 0 <= r["answer"] <= 3
        assert r["choices"][r["answer"]] in true_claims
        assert sum(c in true_claims for c in r["choices"]) == 1
    assert {r["subject"] for r in rows["mmlu"]} == MMLU_SUBJECTS


def test_benchmark_files_load_in_the_evaluator(corpus):
    from ultramedical.eval import benchmarks

    for name in ("medqa", "medmcqa", "pubmedqa", "mmlu"):
        items = benchmarks.load_benchmark(name, corpus["paths"][name])
        assert len(items) == len(corpus["rows"][name])


def test_reward_test_pairs(corpus):
    rows = corpus["rows"]["reward_test"]
    labels = Counter(r["label_type"] for r in rows)
    assert set(labels) == {"easy", "hard", "length"} and min(labels.values()) >= 80
    for r in rows:
        parse_preference(r)
        question, options = split_mcq(r["prompt"])
        chosen, rejected = r["chosen"][1]["content"], r["rejected"][1]["content"]
        assert chosen != rejected
        assert r["metadata"]["chosen"]["score"] > r["metadata"]["rejected"]["score"]
        good = read_answer(r["prompt"], chosen)
        truth = {f.obj for f in FACTS if f.subject in question or cap(f.subject) in question}
        assert options[good] in truth
        bad = read_answer(r["prompt"], rejected)
        if r["label_type"] != "easy":
            assert bad and bad != good and options[bad] not in truth
        if r["label_type"] == "hard":
            assert 0.75 <= len(rejected) / len(chosen) <= 1.33
        if r["label_type"] == "length":
            assert len(rejected) > 1.5 * len(chosen)
