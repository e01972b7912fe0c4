"""Benchmark: the Ray Serve reward service under bounded load vs one-at-a-time `pipeline` scoring.

    .venv/bin/python bench/reward_serving.py [--model DIR] [--requests 256] [--concurrency 1 8 32]

Each level sends a fixed number of single-item POST /v1/rewards requests over loopback, `concurrency` at a
time, and reports throughput, p50/p99 latency and errors. The baseline scores the same items one by one
with `transformers.pipeline("text-classification")` at batch size 1, as RLHFlow-style iterative-DPO
recipes do. Both sides get the same torch threads (--threads), so the comparison is batching and
serving, not cores.
Writes bench/out/reward_serving.json. Measurement only: no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import socket
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "artifacts" / "small" / "reward"
CORPUS = REPO / "artifacts" / "data"
OUT = REPO / "bench" / "out" / "reward_serving.json"


def ensure_model(model_dir: Path) -> Path:
    """The default `small` reward model (~13 M params), as `init-model --size small` builds it."""
    if (model_dir / "config.json").exists():
        return model_dir
    if model_dir != DEFAULT_MODEL:
        raise SystemExit(f"{model_dir}: no reward model there")
    from ultramedical.data.sample import generate_sample_corpus
    from ultramedical.models.tiny import init_tiny_models

    if not (CORPUS / "annotations.jsonl").exists():
        generate_sample_corpus(CORPUS)
    init_tiny_models(CORPUS, model_dir.parent, size="small")
    return model_dir


def workload(count: int) -> list[dict[str, str]]:
    """`count` (prompt, response) items from the sample corpus's annotated completions, cycled."""
    from ultramedical.data.sample import generate_sample_corpus

    if not (CORPUS / "annotations.jsonl").exists():
        generate_sample_corpus(CORPUS)
    items = []
    with (CORPUS / "annotations.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            items += [{"prompt": record["prompt"], "response": c["text"]} for c in record["completions"]]
            if len(items) >= count:
                break
    return [items[i % len(items)] for i in range(count)]


def summarize(latencies: list[float], errors: int, wall: float) -> dict[str, float]:
    ordered = sorted(latencies) or [float("nan")]
    return {
        "requests": len(latencies) + errors,
        "errors": errors,
        "wall_s": round(wall, 3),
        "throughput_rps": round(len(latencies) / wall, 2),
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
    }


async def load(
    url: str, items: list[dict[str, str]], concurrency: int, headers: dict[str, str]
) -> tuple[dict[str, float], list]:
    """Every item as its own request, `concurrency` in flight; returns the summary and the rewards."""
    import aiohttp

    rewards: list[float | None] = [None] * len(items)
    latencies: list[float] = []
    errors = 0
    next_index = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_index, errors
        while next_index < len(items):
            index, next_index = next_index, next_index + 1
            start = time.perf_counter()
            try:
                async with session.post(url, json={"items": [items[index]]}, headers=headers) as response:
                    body = await response.json(content_type=None)
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")
                rewards[index] = body["rewards"][0]
                latencies.append(time.perf_counter() - start)
            except (TimeoutError, aiohttp.ClientError, RuntimeError, ValueError, KeyError):
                errors += 1

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), timeout=timeout) as s:
        start = time.perf_counter()
        await asyncio.gather(*(worker(s) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return summarize(latencies, errors, wall), rewards


def _stats(rewards_url: str, headers: dict[str, str]) -> dict[str, float]:
    request = urllib.request.Request(rewards_url.replace("/v1/rewards", "/v1/stats"), headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def serve_levels(
    model_dir: str, items: list[dict[str, str]], concurrencies: list[int], threads: int
) -> dict[str, Any]:
    import ray
    from ray import serve

    from actors.cluster import without_dashboard
    from actors.reward_service import build_app
    from ultramedical.config import config_from_dict
    from ultramedical.serving.api import resolve_token

    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(log_to_driver=False, **without_dashboard())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    overrides = {"serve.cpus_per_replica": threads, "serve.max_queued_requests": -1}
    config = config_from_dict({"model": {"policy": model_dir}}, overrides)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(config, model_dir), name="reward-bench", route_prefix="/")
        url = f"http://127.0.0.1:{port}/v1/rewards"
        token = resolve_token(config.serve.token_file)  # the service requires it when the variable is set
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        asyncio.run(load(url, items[:16], 4, headers))  # warm-up: first-call allocations, connection set-up
        results, rewards = {}, []
        for concurrency in concurrencies:
            before = _stats(url, headers)
            results[str(concurrency)], rewards = asyncio.run(load(url, items, concurrency, headers))
            after = _stats(url, headers)
            batches = after["batches"] - before["batches"]
            results[str(concurrency)] |= {  # what the replica saw: batch sizes and time in the model
                "mean_batch_items": round((after["items"] - before["items"]) / max(batches, 1), 2),
                "replica_score_s": round(after["score_seconds"] - before["score_seconds"], 3),
            }
        settings = {k: config.serve.model_dump()[k] for k in ("max_batch_size", "batch_wait_timeout_s")}
        return {"levels": results, "rewards": rewards, "settings": settings}
    finally:
        serve.shutdown()
        if started_ray:
            ray.shutdown()


def pipeline_baseline(
    model_dir: str, items: list[dict[str, str]], threads: int
) -> tuple[dict[str, float], list[float]]:
    """One item per call through a text-classification pipeline: raw logit, batch size 1."""
    import torch
    from transformers import pipeline

    from ultramedical.data.chat import render
    from ultramedical.serving.api import PairItem, to_conversation

    torch.set_num_threads(threads)
    scorer = pipeline("text-classification", model=model_dir, device="cpu", function_to_apply="none")
    texts = [render(scorer.tokenizer, to_conversation(PairItem(**item))) for item in items]
    scorer(texts[0], add_special_tokens=False)  # warm-up
    latencies, rewards = [], []
    start = time.perf_counter()
    for text in texts:
        begin = time.perf_counter()
        rewards.append(scorer(text, add_special_tokens=False)[0]["score"])
        latencies.append(time.perf_counter() - begin)
    return summarize(latencies, 0, time.perf_counter() - start), rewards


def direct_batched(model_dir: str, items: list[dict[str, str]], threads: int, batch: int) -> dict[str, float]:
    """The compute ceiling: every item through `RewardModel.score` in-process, `batch` at a time, no HTTP."""
    import torch

    from ultramedical.models.reward import RewardModel
    from ultramedical.serving.api import PairItem, to_conversation

    torch.set_num_threads(threads)
    model = RewardModel(model_dir, batch_size=batch)
    conversations = [to_conversation(PairItem(**item)) for item in items]
    model.score(conversations[:batch])  # warm-up
    start = time.perf_counter()
    model.score(conversations)
    wall = time.perf_counter() - start
    return {"batch_size": batch, "wall_s": round(wall, 3), "throughput_rps": round(len(items) / wall, 2)}


def run(
    model_dir: str | Path, requests: int = 256, concurrencies: list[int] | None = None, threads: int = 1
) -> dict[str, Any]:
    """Serve `model_dir`, load it at each concurrency, then run the baseline; returns the results."""
    concurrencies = concurrencies or [1, 8, 32]
    model_dir = str(Path(model_dir).resolve())
    items = workload(requests)
    served = serve_levels(
        model_dir, items, concurrencies, threads
    )  # first, and shut down before the baseline runs
    baseline, baseline_rewards = pipeline_baseline(model_dir, items, threads)
    ceiling = direct_batched(model_dir, items, threads, served["settings"]["max_batch_size"])
    pairs = [(a, b) for a, b in zip(served.pop("rewards"), baseline_rewards, strict=True) if a is not None]
    return {
        "model": _shown(model_dir),
        "requests_per_level": requests,
        "torch_threads": threads,
        "host": {"machine": platform.machine(), "python": platform.python_version()},
        "serve": served["levels"],
        "serve_settings": served["settings"],
        "baseline_pipeline_bs1": baseline,
        "direct_batched_in_process": ceiling,
        "max_abs_reward_diff_vs_baseline": max((abs(a - b) for a, b in pairs), default=None),
    }


def _shown(path: str) -> str:
    """A path as results show it: relative to the repository when inside it (results are committed)."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO)) if resolved.is_relative_to(REPO) else str(resolved)


def table(result: dict[str, Any]) -> str:
    rows = [("serve c=" + c, r) for c, r in result["serve"].items()]
    rows.append(("pipeline bs=1", result["baseline_pipeline_bs1"]))
    base = result["baseline_pipeline_bs1"]["throughput_rps"]
    ceiling = result["direct_batched_in_process"]
    lines = [f"{'setup':<16}{'req/s':>9}{'vs base':>9}{'p50 ms':>10}{'p99 ms':>10}{'errors':>8}"]
    for name, r in rows:
        speedup = r["throughput_rps"] / base if base else float("nan")
        lines.append(
            f"{name:<16}{r['throughput_rps']:>9.1f}{speedup:>8.2f}x{r['p50_ms']:>10.1f}"
            f"{r['p99_ms']:>10.1f}{r['errors']:>8}"
        )
    lines.append(
        f"{'direct bs=' + str(ceiling['batch_size']):<16}{ceiling['throughput_rps']:>9.1f}"
        f"{ceiling['throughput_rps'] / base:>8.2f}x   (in-process RewardModel.score, no HTTP)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="reward model dir (default: small)")
    parser.add_argument("--requests", type=int, default=256, help="single-item requests per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, default=1, help="torch threads, replica and baseline each")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    result = run(ensure_model(args.model), args.requests, args.concurrency, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    print(
        f"max |served - baseline| reward: {result['max_abs_reward_diff_vs_baseline']:.2e}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
