"""The in-process pipeline end to end against the loopback server."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fake_openai_server import FakeOpenAIServer, instruction

from ultramedical.annotate.pipeline import annotate
from ultramedical.config import AnnotateConfig

OUTPUTS = ("annotations.jsonl", "pairs.jsonl", "failures.jsonl", "summary.json")


def _prompts() -> list[dict[str, Any]]:
    return [
        instruction("fenced", "Which enzyme is deficient in classic phenylketonuria?\n\nA. PAH\nB. TH", "A"),
        instruction("bare", "[[bare]] What is first-line therapy for uncomplicated hypertension?"),
        instruction("trailing", "[[trailing]] Which nerve is injured in wrist drop?"),
        instruction("truncated", "[[truncated]] What causes Kussmaul breathing in diabetic ketoacidosis?"),
        instruction("garbage", "[[garbage]] Which antibiotic causes red man syndrome?"),
        instruction("badids", "[[badids]] What is the antidote for heparin?"),
        instruction("partial", "[[fail:bad-model]] Which cells produce surfactant?"),
        instruction("nocomp", "[[fail:good-model]] [[fail:okay-model]] Where is insulin made?"),
        {"id": "invalid", "type": "open", "conversations": [], "answer": "", "score": ""},
    ]


def _read(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = {"summary": json.loads((out / "summary.json").read_text())}
    for name in OUTPUTS[:3]:
        data[name.split(".")[0]] = [json.loads(line) for line in (out / name).read_text().splitlines()]
    return data


def test_run_completes_with_what_parsed(
    server: FakeOpenAIServer, config: AnnotateConfig, tmp_path: Path
) -> None:
    summary = annotate(_prompts(), config, tmp_path)
    out = _read(tmp_path)
    annotations = {a["prompt_id"]: a for a in out["annotations"]}
    assert list(annotations) == ["fenced", "bare", "trailing", "truncated", "partial"]
    failures = {f["prompt_id"]: f for f in out["failures"]}
    assert {k: f["stage"] for k, f in failures.items()} == {
        "garbage": "judge",
        "badids": "judge",
        "partial": "completion",
        "nocomp": "completion",
        "invalid": "input",
    }
    assert "no JSON" in failures["garbage"]["reason"] and "I am sorry" in failures["garbage"]["judge_reply"]
    assert "not one of 1..3" in failures["badids"]["reason"]
    assert "HTTP 400" in failures["nocomp"]["reason"] and failures["partial"]["annotated"] is True

    for key in ("fenced", "bare", "trailing"):
        completions = annotations[key]["completions"]
        assert [c["model"] for c in completions] == ["good-model", "okay-model", "bad-model"]
        assert [(c["score"], c["rank"]) for c in completions] == [(5, 1), (3, 2), (1, 3)]
        assert all(c["evaluation"] and c["text"].startswith(c["model"]) for c in completions)
    assert annotations["fenced"]["reference_answer"].endswith("So, the answer is A.")
    assert (
        len(annotations["truncated"]["completions"]) == 2
        and len(annotations["truncated"]["unjudged_models"]) == 1
    )
    assert "salvaged" in annotations["truncated"]["judge_error"]
    assert [c["model"] for c in annotations["partial"]["completions"]] == ["good-model", "okay-model"]

    pairs = out["pairs"]
    assert [p["prompt_id"] for p in pairs] == list(annotations)
    for pair in pairs:
        annotation = annotations[pair["prompt_id"]]
        best = min(annotation["completions"], key=lambda c: c["rank"])
        assert pair["chosen"] == [
            {"role": "user", "content": annotation["prompt"]},
            {"role": "assistant", "content": best["text"]},
        ]
        assert pair["chosen"] != pair["rejected"] and pair["rejected"][0] == pair["chosen"][0]
        assert pair["metadata"]["chosen"]["model"] == best["model"] and pair["label_type"] == "llm_judge"
        assert pair["metadata"]["chosen"]["score"] > pair["metadata"]["rejected"]["score"]

    # Requests: 8 prompts with a user turn x 3 completers (3 answered 400), then 7 prompts judged.
    assert server.requests == 24 + 7
    assert (summary.requests, summary.errors, summary.cache_hits) == (28, 3, 0)
    assert (summary.annotated, summary.pairs, summary.failures, summary.partial_judgements) == (5, 5, 5, 1)
    assert summary.failure_stages == {"judge": 2, "completion": 2, "input": 1}
    assert out["summary"] == json.loads(json.dumps(summary.to_dict()))


def test_token_and_cost_accounting_sums(
    server: FakeOpenAIServer, config: AnnotateConfig, tmp_path: Path
) -> None:
    summary = annotate(_prompts()[:4], config, tmp_path)
    assert summary.prompt_tokens == server.prompt_tokens > 0
    assert summary.completion_tokens == server.completion_tokens > 0
    per_model = summary.per_model
    assert sum(m["prompt_tokens"] for m in per_model.values()) == summary.prompt_tokens
    judge = per_model["judge-model"]
    assert judge["cost_usd"] == pytest.approx(
        judge["prompt_tokens"] * 0.002 + judge["completion_tokens"] * 0.006
    )
    completers = [m for name, m in per_model.items() if name != "judge-model"]
    expected = judge["cost_usd"] + sum(
        m["prompt_tokens"] * 0.0005 + m["completion_tokens"] * 0.0015 for m in completers
    )
    assert summary.cost_usd == pytest.approx(expected, abs=1e-6)


def test_rerun_with_the_cache_sends_nothing(
    server: FakeOpenAIServer, config: AnnotateConfig, tmp_path: Path
) -> None:
    clean = _prompts()[:6]
    first = annotate(clean, config, tmp_path)
    before = {name: (tmp_path / name).read_text() for name in OUTPUTS[:3]}
    sent = server.requests
    second = annotate(clean, config, tmp_path)
    assert server.requests == sent  # not one new HTTP request
    assert (second.requests, second.cost_usd, second.cache_hits) == (0, 0.0, first.requests)
    assert {name: (tmp_path / name).read_text() for name in OUTPUTS[:3]} == before

    # Failed requests are not cached (a re-run is how they get retried): only they are sent again.
    everything = annotate(_prompts(), config, tmp_path)
    sent = server.requests
    again = annotate(_prompts(), config, tmp_path)
    assert server.requests - sent == everything.errors == again.errors == 3
    assert again.requests == 0


def test_outputs_are_written_atomically(
    server: FakeOpenAIServer, config: AnnotateConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    annotate(_prompts()[:3], config, tmp_path)
    before = {name: (tmp_path / name).read_bytes() for name in OUTPUTS}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name in OUTPUTS) == sorted(OUTPUTS)
    real_replace = os.replace

    def crash_on_pairs(src: str, dst: str | Path) -> None:
        if str(dst).endswith("pairs.jsonl"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_pairs)
    with pytest.raises(OSError, match="disk full"):
        annotate(_prompts()[:5], config, tmp_path)
    # The crashed write left the old pairs file whole and no temp file behind.
    assert (tmp_path / "pairs.jsonl").read_bytes() == before["pairs.jsonl"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_judge_order_is_shuffled_but_reproducible(
    server: FakeOpenAIServer, config: AnnotateConfig, tmp_path: Path
) -> None:
    prompts = [instruction(f"q{i}", f"Question number {i} about renal physiology?") for i in range(8)]
    annotate(prompts, config, tmp_path / "a", cache_path=tmp_path / "cache.sqlite")
    judge_prompts = [b["messages"][0]["content"] for b in server.bodies if b["model"] == "judge-model"]
    first_shown = {p.split("### Answer 1\n")[1].split(" says:")[0] for p in judge_prompts}
    assert len(first_shown) > 1  # not always the first completer in position 1
    # Same seed, so the same judge prompts: all served by the shared cache.
    annotate(
        prompts, config.model_copy(update={"seed": 0}), tmp_path / "b", cache_path=tmp_path / "cache.sqlite"
    )
    assert server.requests == len(server.bodies) == 8 * 4


def test_config_without_judge_is_rejected(config: AnnotateConfig, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="judge"):
        annotate(_prompts(), config.model_copy(update={"judge": None}), tmp_path)


def test_unexpected_errors_fail_only_their_prompt(
    server: FakeOpenAIServer, config: AnnotateConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ultramedical.annotate import pipeline

    real = pipeline.build_judge_messages

    def flaky(question: str, *args: Any, **kwargs: Any) -> list[dict[str, str]]:
        if "wrist drop" in question:
            raise RuntimeError("bug in prompt building")
        return real(question, *args, **kwargs)

    monkeypatch.setattr(pipeline, "build_judge_messages", flaky)
    summary = annotate([*_prompts()[:3], "not a record"], config, tmp_path)  # type: ignore[list-item]
    failures = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert [(f["prompt_id"], f["stage"]) for f in failures] == [
        ("trailing", "internal"),
        ("prompt-3", "input"),
    ]
    assert "bug in prompt building" in failures[0]["reason"]
    assert summary.annotated == 2


def test_tied_completions_give_no_pair(
    server: FakeOpenAIServer, config: AnnotateConfig, tmp_path: Path
) -> None:
    twins = config.model_copy(update={"completers": [config.completers[0], config.completers[0]]})
    summary = annotate(_prompts()[:1], twins, tmp_path)
    assert (summary.annotated, summary.pairs, summary.unpaired) == (1, 0, 1)
    assert "ValueError" in next(iter(summary.unpaired_reasons))
    assert (tmp_path / "pairs.jsonl").read_text() == ""
