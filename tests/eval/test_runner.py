"""The evaluation runner on the tiny model with a real in-process vLLM engine (one for the module): greedy
output is transformers' greedy output, switch_to installs another checkpoint in the running engine, and
evaluate_policy's records, summary and results.jsonl agree with each other and with the report."""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_support import tiny_config
from transformers import AutoConfig, AutoModelForCausalLM

from ultramedical.eval import runner
from ultramedical.eval.benchmarks import load_benchmark
from ultramedical.eval.mcq import extract
from ultramedical.eval.runner import PolicyEvaluator, evaluate_policy
from ultramedical.eval.stats import best_of_n, paired_comparison, summarize
from ultramedical.generation.engine import Sampling
from ultramedical.generation.items import benchmark_items
from ultramedical.models.loading import load_policy, load_tokenizer, save_model
from ultramedical.models.reward import RewardModel
from ultramedical.reporting import collect_run

pytestmark = pytest.mark.slow

MAX_TOKENS = 12
ITEMS = 4


@pytest.fixture(scope="module")
def other_policy(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny policy's architecture and tokenizer with other weights (initialised from another seed)."""
    policy = artifacts / "tiny" / "policy"
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(policy))
    return save_model(model, load_tokenizer(policy), tmp_path_factory.mktemp("other") / "policy")


@pytest.fixture(scope="module")
def evaluator(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PolicyEvaluator]:
    config = tiny_config(
        artifacts,
        tmp_path_factory.mktemp("runs"),
        **{"eval.max_tokens": MAX_TOKENS, "eval.samples": 3, "eval.max_items": ITEMS},
    )
    threads, omp = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    engine = PolicyEvaluator(config, str(artifacts / "tiny" / "policy"))
    yield engine
    del engine
    gc.collect()
    torch.set_num_threads(threads)  # build_llm set them for the engine
    if omp is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = omp


def medqa(artifacts: Path) -> str:
    return str(artifacts / "data" / "test" / "medqa.jsonl")


def transformers_greedy(model_dir: Path, prompts: list[list[int]]) -> list[list[int]]:
    model = load_policy(model_dir).eval()
    out = []
    with torch.no_grad():
        for ids in prompts:
            prompt = torch.tensor([ids])
            out.append(
                model.generate(prompt, max_new_tokens=MAX_TOKENS, do_sample=False)[0, len(ids) :].tolist()
            )
    return out


def engine_greedy(evaluator: PolicyEvaluator, prompts: list[list[int]]) -> list[list[int]]:
    from ultramedical.generation.engine import generate

    sampling = Sampling(n=1, temperature=0.0, max_tokens=MAX_TOKENS)
    return [c[0]["token_ids"] for c in generate(evaluator.llm, prompts, sampling)]


def test_greedy_matches_transformers_and_switch_to_changes_the_weights(
    evaluator: PolicyEvaluator, artifacts: Path, other_policy: Path
) -> None:
    policy = artifacts / "tiny" / "policy"
    items = load_benchmark("medqa", medqa(artifacts), max_items=ITEMS)
    tokenizer = load_tokenizer(policy)
    prompts = [item["prompt_token_ids"] for item in benchmark_items(tokenizer, items)]
    greedy = Sampling(n=1, temperature=0.0, max_tokens=MAX_TOKENS)

    texts = evaluator.generate(items, greedy)
    tokens = engine_greedy(evaluator, prompts)
    assert all(0 < len(t) <= MAX_TOKENS for t in tokens)
    for reference, got in zip(transformers_greedy(policy, prompts), tokens, strict=True):
        assert reference[: len(got)] == got
    assert [[tokenizer.decode(t, skip_special_tokens=True)] for t in tokens] == texts

    evaluator.switch_to(str(other_policy))
    other_tokens = engine_greedy(evaluator, prompts)
    for reference, got in zip(transformers_greedy(other_policy, prompts), other_tokens, strict=True):
        assert reference[: len(got)] == got
    assert other_tokens != tokens

    evaluator.switch_to(str(policy))  # back in the same engine: the first weights' output again
    assert engine_greedy(evaluator, prompts) == tokens


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_evaluate_policy_records_summary_and_results_agree(
    evaluator: PolicyEvaluator,
    artifacts: Path,
    other_policy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def shared_engine(config: Any, model: str) -> PolicyEvaluator:
        """The module's running engine, on `model`'s weights (one engine start for the whole module)."""
        evaluator.switch_to(model)
        return evaluator

    monkeypatch.setattr(runner, "PolicyEvaluator", shared_engine)
    policy, run = artifacts / "tiny" / "policy", tmp_path / "run"
    items = load_benchmark("medqa", medqa(artifacts), max_items=ITEMS)
    by_id = {item.id: item for item in items}
    summaries = []
    for label, model in (("sft", policy), ("dpo", other_policy)):
        out = run / "eval" / f"{label}-medqa-greedy.jsonl"  # the default with a run directory
        summary = evaluate_policy(
            evaluator.config, str(model), "medqa", medqa(artifacts), label=label, run_dir=str(run)
        )
        records = _lines(out)
        assert [r["id"] for r in records] == list(by_id)  # eval.max_items, in file order
        prompts = [i["prompt_token_ids"] for i in benchmark_items(evaluator.tokenizer, items)]
        expected = [
            evaluator.tokenizer.decode(t, skip_special_tokens=True) for t in engine_greedy(evaluator, prompts)
        ]
        assert [r["completions"] for r in records] == [[text] for text in expected]
        for record in records:
            item = by_id[record["id"]]
            assert record["extracted"] == [extract(item, record["completions"][0])]
            assert record["prediction"] == record["extracted"][0]
            assert record["correct"] == (record["prediction"] == item.answer)
        assert summary == {
            "model": label,
            "model_path": str(model),
            "benchmark": "medqa",
            "mode": "greedy",
            **summarize(records),
        }
        summaries.append(summary)
    assert _lines(run / "eval" / "results.jsonl") == summaries

    # The report reads these files back: per-item records under their labels, comparable item by item.
    data = collect_run(run)
    assert not [m for m in data.missing if m.startswith(("evaluation", "per-item"))]
    sft, dpo = data.eval_records[("sft", "medqa", "greedy")], data.eval_records[("dpo", "medqa", "greedy")]
    assert paired_comparison(sft, dpo)["n"] == ITEMS


def test_best_of_n_with_the_reward_model(
    evaluator: PolicyEvaluator, artifacts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "PolicyEvaluator", lambda config, model: evaluator)
    evaluator.switch_to(str(artifacts / "tiny" / "policy"))
    out = tmp_path / "bon.jsonl"
    reward = artifacts / "tiny" / "reward"
    summary = evaluate_policy(
        evaluator.config,
        str(artifacts / "tiny" / "policy"),
        "medqa",
        medqa(artifacts),
        mode="bon",
        n=2,
        reward_model=str(reward),
        max_items=3,
        out=str(out),
        run_dir=str(tmp_path),
    )
    records = _lines(out)
    assert len(records) == 3 and all(len(r["completions"]) == len(r["rewards"]) == 2 for r in records)
    scorer = RewardModel(reward, share_prompts=False)
    items = {item.id: item for item in load_benchmark("medqa", medqa(artifacts), max_items=3)}
    for record in records:
        item = items[record["id"]]
        conversations = [
            [{"role": "user", "content": item.prompt}, {"role": "assistant", "content": text}]
            for text in record["completions"]
        ]
        assert record["rewards"] == pytest.approx(scorer.score(conversations), abs=1e-4)
        assert record["extracted"] == [extract(item, text) for text in record["completions"]]
        assert record["prediction"] == best_of_n(record["extracted"], record["rewards"])
    assert summary["mode"] == "bon" and summary["model"] == "policy"
    assert {k: summary[k] for k in ("accuracy", "n", "correct", "ci95", "unparsed")} == summarize(records)
    assert _lines(tmp_path / "eval" / "results.jsonl") == [summary]
