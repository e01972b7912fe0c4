"""The annotation pipeline: completions from every completer, a judge's verdict, pairs, and a summary.

`annotate` writes four files into its output directory, each atomically:
annotations.jsonl (multi-completion records), pairs.jsonl (binarized preference pairs), failures.jsonl
(one line per prompt whose completion or judging failed, with the reason) and summary.json.
One item's failure never stops the run. Every request goes through the on-disk cache, so re-running
over the same output directory (same cache) sends no request that was answered before.
With `config.workers > 1` and a `map_shards` callable the prompts are cut into shards that it runs
(actors/annotator.py runs them on Ray actors); without one every prompt is annotated in this process.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ultramedical.annotate.client import ChatClient, EndpointError, RequestCache, UsageMeter
from ultramedical.annotate.records import (
    binarize,
    is_multiple_choice,
    prompt_of,
    record_id,
    reference_of,
    write_json_atomic,
    write_jsonl_atomic,
)
from ultramedical.annotate.rubric import JudgeParseError, build_judge_messages, parse_judgement
from ultramedical.config import AnnotateConfig

log = logging.getLogger(__name__)
CACHE_NAME = "request_cache.sqlite"

Shard = list[tuple[int, dict[str, Any]]]
# Runs `annotate_shard(shard, config, cache_path)` for every shard, wherever it likes, and returns the
# outputs in shard order; a shard that could not run returns `failed_shard(shard, "worker", reason)`.
ShardMapper = Callable[[list[Shard], AnnotateConfig, str], list[dict[str, Any]]]


@dataclass
class AnnotateSummary:
    """What a run produced and what it cost; `to_dict()` is what summary.json holds."""

    prompts: int = 0
    annotated: int = 0
    pairs: int = 0
    failures: int = 0
    partial_judgements: int = 0
    unpaired: int = 0
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    workers: int = 1
    elapsed_s: float = 0.0
    per_model: dict[str, dict[str, float]] = field(default_factory=dict)
    failure_stages: dict[str, int] = field(default_factory=dict)
    unpaired_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failure(index: int, prompt_id: str, stage: str, reason: str, **extra: Any) -> dict[str, Any]:
    return {"index": index, "prompt_id": prompt_id, "stage": stage, "reason": reason, **extra}


def annotate_one(
    record: dict[str, Any], index: int, client: ChatClient, config: AnnotateConfig
) -> dict[str, Any]:
    """Complete and judge one prompt. Returns {"index", "annotation": dict|None, "failure": dict|None}."""
    prompt_id = record_id(record, index)
    out: dict[str, Any] = {"index": index, "annotation": None, "failure": None}
    try:
        prompt = prompt_of(record)
    except ValueError as exc:
        out["failure"] = _failure(index, prompt_id, "input", str(exc))
        return out
    completions: list[dict[str, str]] = []
    errors: list[str] = []
    for endpoint in config.completers:
        try:
            reply = client.chat(endpoint, [{"role": "user", "content": prompt}], n=endpoint.n)
        except EndpointError as exc:
            errors.append(str(exc))
            continue
        completions += [{"model": endpoint.model, "text": text} for text in reply.texts]
    if len(completions) < 2:
        reason = "; ".join(errors) or f"only {len(completions)} completion(s); a pair needs two"
        out["failure"] = _failure(index, prompt_id, "completion", reason)
        return out

    # The judge sees the answers in a seeded shuffled order, so no model always sits in position 1
    # (judges favour early answers); the seed keeps the prompt, and so its cache key, reproducible.
    order = list(range(len(completions)))
    random.Random(f"{config.seed}:judge:{prompt_id}").shuffle(order)
    shown = [completions[i]["text"] for i in order]
    reference = reference_of(record)
    messages = build_judge_messages(prompt, shown, reference, is_multiple_choice(record))
    judge = config.judge
    if judge is None:
        raise ValueError("annotate.judge is not set: configure the judging model")
    reply_text = ""
    try:
        reply_text = client.chat(judge, messages).texts[0]
        judgement = parse_judgement(reply_text, len(shown))
    except (EndpointError, JudgeParseError, IndexError) as exc:
        out["failure"] = _failure(
            index, prompt_id, "judge", f"{type(exc).__name__}: {exc}", judge_reply=reply_text[:500]
        )
        return out
    if len(judgement.evaluations) < 2:
        reason = f"only {len(judgement.evaluations)} of {len(shown)} answers evaluated: " + "; ".join(
            judgement.problems
        )
        out["failure"] = _failure(index, prompt_id, "judge", reason, judge_reply=reply_text[:500])
        return out

    judged = []
    for rank, shown_id in enumerate(judgement.ranking, start=1):
        completion = completions[order[shown_id - 1]]
        evaluation = judgement.evaluations[shown_id]
        judged.append(
            {**completion, "score": evaluation.score, "evaluation": evaluation.explanation, "rank": rank}
        )
    annotation: dict[str, Any] = {
        "prompt_id": prompt_id,
        "prompt": prompt,
        "reference_answer": reference,
        "completions": judged,
        "judge": judge.model,
    }
    if judgement.problems:
        annotation["judge_error"] = "; ".join(judgement.problems)
    if not judgement.complete:
        annotation["unjudged_models"] = [completions[order[i - 1]]["model"] for i in judgement.missing]
    if errors:
        annotation["completion_errors"] = errors
        out["failure"] = _failure(index, prompt_id, "completion", "; ".join(errors), annotated=True)
    out["annotation"] = annotation
    return out


def _failed(index: int, record: dict[str, Any], stage: str, reason: str) -> dict[str, Any]:
    return {
        "index": index,
        "annotation": None,
        "failure": _failure(index, record_id(record, index), stage, reason),
    }


def _isolated(
    record: dict[str, Any], index: int, client: ChatClient, config: AnnotateConfig
) -> dict[str, Any]:
    """`annotate_one`, with an unexpected error made that prompt's failure: one item never stops the run."""
    try:
        return annotate_one(record, index, client, config)
    except Exception as exc:  # deliberately broad: this is the per-item isolation boundary
        log.exception("prompt %d failed unexpectedly", index)
        return _failed(index, record, "internal", f"{type(exc).__name__}: {exc}")


def annotate_shard(indexed: Shard, config: AnnotateConfig, cache_path: str | Path) -> dict[str, Any]:
    """Annotate (index, record) pairs with a thread pool; returns {"results": [...], "usage": {...}}.

    This is the unit of work of one process: called directly in-process, or by a Ray actor per shard
    (actors/annotator.py).
    """
    cache = RequestCache(cache_path)
    client = ChatClient.for_annotation(config, cache, UsageMeter())
    try:
        with ThreadPoolExecutor(max_workers=config.concurrency) as pool:
            results = list(pool.map(lambda item: _isolated(item[1], item[0], client, config), indexed))
    finally:
        client.close()
        cache.close()
    return {"results": results, "usage": client.usage.to_dict()}


def failed_shard(shard: Shard, stage: str, reason: str) -> dict[str, Any]:
    """The output of a shard that could not run: every one of its prompts failed at `stage`."""
    return {"results": [_failed(i, record, stage, reason) for i, record in shard], "usage": {}}


def _fan_out(
    indexed: Shard, config: AnnotateConfig, cache_path: str, map_shards: ShardMapper
) -> list[dict[str, Any]]:
    """Shards round-robin over `config.workers` workers that `map_shards` runs."""
    workers = min(config.workers, len(indexed))
    shards = [indexed[i::workers] for i in range(workers)]
    # The concurrency limit is for the whole run, so each shard gets its share of it.
    shard_config = config.model_copy(update={"concurrency": max(1, config.concurrency // workers)})
    return map_shards(shards, shard_config, cache_path)


def _pairs(annotations: list[dict[str, Any]], seed: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Binarize every annotation; returns the pairs and, by reason, how many could not be paired."""
    pairs, unpaired = [], {}
    for annotation in annotations:
        # One RNG per prompt: the rejected pick does not depend on sharding or on the order of results.
        rng = random.Random(f"{seed}:pair:{annotation['prompt_id']}")
        try:
            pairs.append(binarize(annotation, rng))
        # Broad on purpose (e.g. all completions tied or identical): one missing pair must not stop the run.
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"[:200]
            unpaired[reason] = unpaired.get(reason, 0) + 1
    return pairs, unpaired


def annotate(
    records: Iterable[dict[str, Any]],
    config: AnnotateConfig,
    out_dir: str | Path,
    *,
    cache_path: str | Path | None = None,
    map_shards: ShardMapper | None = None,
) -> AnnotateSummary:
    """Build preference data for instruction records through the configured endpoints (see module doc).

    `map_shards` runs the shards when `config.workers > 1` (e.g. `actors.annotator.annotate_on_ray`);
    None annotates every prompt in this process.
    """
    if not config.completers:
        raise ValueError("annotate.completers is empty: configure at least one completion model")
    if config.judge is None:
        raise ValueError("annotate.judge is not set: configure the judging model")
    started = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache_file = str(cache_path or config.cache_path or out_dir / CACHE_NAME)
    indexed = list(enumerate(records))
    log.info("annotating %d prompts on %d worker(s)", len(indexed), config.workers)
    if config.workers > 1 and map_shards is None:
        log.warning("annotate.workers=%d but no map_shards given: annotating in this process", config.workers)
    if config.workers > 1 and len(indexed) > 1 and map_shards is not None:
        outputs = _fan_out(indexed, config, cache_file, map_shards)
    else:
        outputs = [annotate_shard(indexed, config, cache_file)]

    usage = UsageMeter()
    results = []
    for output in outputs:
        usage.merge(output["usage"])
        results += output["results"]
    results.sort(key=lambda r: r["index"])
    annotations = [r["annotation"] for r in results if r["annotation"] is not None]
    failures = [r["failure"] for r in results if r["failure"] is not None]

    pairs, unpaired = _pairs(annotations, config.seed)

    totals = usage.totals()
    summary = AnnotateSummary(
        prompts=len(indexed),
        annotated=len(annotations),
        pairs=len(pairs),
        failures=len(failures),
        partial_judgements=sum(1 for a in annotations if "unjudged_models" in a),
        unpaired=len(annotations) - len(pairs),
        unpaired_reasons=unpaired,
        requests=totals.requests,
        cache_hits=totals.cache_hits,
        retries=totals.retries,
        errors=totals.errors,
        prompt_tokens=totals.prompt_tokens,
        completion_tokens=totals.completion_tokens,
        cost_usd=round(totals.cost_usd, 6),
        workers=config.workers,
        per_model=usage.to_dict(),
    )
    for failure in failures:
        summary.failure_stages[failure["stage"]] = summary.failure_stages.get(failure["stage"], 0) + 1
    summary.elapsed_s = round(time.monotonic() - started, 3)
    write_jsonl_atomic(out_dir / "annotations.jsonl", annotations)
    write_jsonl_atomic(out_dir / "pairs.jsonl", pairs)
    write_jsonl_atomic(out_dir / "failures.jsonl", failures)
    write_json_atomic(out_dir / "summary.json", summary.to_dict())
    log.info("annotation summary: %s", {k: v for k, v in summary.to_dict().items() if k != "per_model"})
    return summary
