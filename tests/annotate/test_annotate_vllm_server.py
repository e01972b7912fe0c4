"""The annotation pipeline end to end against a real peer: vLLM's OpenAI-compatible server on the
tiny policy, on loopback. The tiny judge's replies mostly do not parse; the run must record each
failure and complete with whatever did."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ultramedical.annotate.pipeline import annotate
from ultramedical.config import AnnotateConfig, EndpointModel

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_TEST_KEY": "unused"}
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(artifacts / "tiny" / "policy"),
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "1024",
        "--enforce-eager",
        "--gpu-memory-utilization",
        "0.3",
        "--dtype",
        "float32",
    ]
    with log.open("w") as output:
        server = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"vLLM server did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_pipeline_against_vllm_records_failures_and_completes(vllm_server, artifacts, tmp_path, monkeypatch):
    monkeypatch.setenv("VLLM_TEST_KEY", "unused")
    records = [
        json.loads(line) for line in (artifacts / "data" / "instructions.jsonl").read_text().splitlines()[:6]
    ]
    endpoint = {"base_url": vllm_server, "api_key_env": "VLLM_TEST_KEY"}
    config = AnnotateConfig(
        completers=[EndpointModel(model="tiny", n=2, temperature=1.0, max_tokens=48, **endpoint)],
        judge=EndpointModel(model="tiny", temperature=0.0, max_tokens=160, **endpoint),
        concurrency=4,
        max_retries=1,
        backoff_base_s=0.0,
        timeout_s=60.0,
    )
    summary = annotate(records, config, tmp_path / "out")

    assert summary.prompts == 6 and summary.requests >= 12  # a completion and a judgement per prompt at least
    assert summary.prompt_tokens > 0 and summary.completion_tokens > 0
    failures = [json.loads(line) for line in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    annotations = (tmp_path / "out" / "annotations.jsonl").read_text().splitlines()
    assert len(failures) == summary.failures and len(annotations) == summary.annotated
    assert summary.failures > 0 and all(f["reason"] and f["stage"] == "judge" for f in failures)
    assert {f["prompt_id"] for f in failures} | {json.loads(a)["prompt_id"] for a in annotations} == {
        r["id"] for r in records
    }
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["prompts"] == 6

    again = annotate(records, config, tmp_path / "out")  # the request cache answers everything
    assert again.requests == 0 and again.cache_hits == summary.requests
