"""Fan-out to Ray actors on a real local cluster (2 CPUs), sharing the request cache with the driver."""

from __future__ import annotations

import json
from pathlib import Path

import ray
from fake_openai_server import FakeOpenAIServer, instruction

from actors.annotator import annotate_on_ray
from ultramedical.annotate.pipeline import annotate
from ultramedical.config import AnnotateConfig


def test_fan_out_with_two_workers(
    ray_cluster: None, server: FakeOpenAIServer, config: AnnotateConfig, tmp_path: Path
) -> None:
    prompts = [
        instruction(f"q{i}", f"Question {i}: which electrolyte disturbance causes peaked T waves?")
        for i in range(10)
    ]
    prompts[3] = instruction("q3", "[[garbage]] Which electrolyte disturbance causes peaked T waves?")
    cache = tmp_path / "cache.sqlite"
    two_workers = config.model_copy(update={"workers": 2})
    summary = annotate(prompts, two_workers, tmp_path / "ray", cache_path=cache, map_shards=annotate_on_ray)
    assert ray.is_initialized()  # the pipeline leaves a cluster it did not start running
    failures = (tmp_path / "ray" / "failures.jsonl").read_text()
    assert (summary.annotated, summary.failures, summary.pairs, summary.workers) == (9, 1, 9, 2), failures
    assert server.requests == 10 * 4 and summary.requests == 40
    assert summary.prompt_tokens == server.prompt_tokens
    # Both shards' concurrency shares together stay within the run's limit.
    assert server.max_in_flight <= config.concurrency
    annotations = [
        json.loads(line) for line in (tmp_path / "ray" / "annotations.jsonl").read_text().splitlines()
    ]
    assert [a["prompt_id"] for a in annotations] == [f"q{i}" for i in range(10) if i != 3]

    # The actors wrote the shared cache: the same run in-process sends nothing and writes the same files.
    in_process = annotate(prompts, config, tmp_path / "local", cache_path=cache)
    assert server.requests == 40 and in_process.cache_hits == 40
    for name in ("annotations.jsonl", "pairs.jsonl", "failures.jsonl"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text()
