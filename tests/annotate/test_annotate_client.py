"""The chat client against a real loopback HTTP server: retries, no-retry, cache, concurrency, accounting."""

from __future__ import annotations

import multiprocessing
import socket
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer

from ultramedical.annotate.client import ChatClient, EndpointError, RequestCache, cost_usd
from ultramedical.config import EndpointModel

MESSAGES = [{"role": "user", "content": "What causes scurvy in sailors on long voyages?"}]


def _endpoint(server: FakeOpenAIServer, model: str = "good-model", **kw: float) -> EndpointModel:
    return EndpointModel(model=model, base_url=server.base_url, max_tokens=32, **kw)


def _client(**kw: object) -> tuple[ChatClient, list[float]]:
    slept: list[float] = []
    options = {"max_retries": 3, "backoff_base_s": 0.01, "timeout_s": 10.0} | kw
    return ChatClient(sleep=slept.append, **options), slept


@pytest.mark.parametrize("status", [429, 500, 503])
def test_retries_with_backoff_then_succeeds(server: FakeOpenAIServer, status: int) -> None:
    server.fail_next(status, k=2)
    client, slept = _client()
    result = client.chat(_endpoint(server), MESSAGES)
    assert result.texts[0].startswith("good-model says:")
    assert server.requests == 3
    usage = client.usage.models["good-model"]
    assert (usage.requests, usage.retries, usage.errors) == (1, 2, 0)
    # Exponential with +/-50% jitter: attempt a sleeps base * 2**a * [0.5, 1.5).
    assert len(slept) == 2
    assert 0.005 <= slept[0] < 0.015 and 0.01 <= slept[1] < 0.03


def test_retry_after_header_is_a_floor(server: FakeOpenAIServer) -> None:
    server.fail_next(429, k=1, retry_after="2")
    client, slept = _client()
    client.chat(_endpoint(server), MESSAGES)
    assert slept == [2.0] and server.requests == 2


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_no_retry_on_other_4xx(server: FakeOpenAIServer, status: int) -> None:
    server.fail_next(status, k=1)
    client, slept = _client()
    with pytest.raises(EndpointError) as info:
        client.chat(_endpoint(server), MESSAGES)
    assert info.value.status_code == status and info.value.attempts == 1
    assert server.requests == 1 and slept == []
    assert client.usage.models["good-model"].errors == 1


def test_gives_up_after_max_retries(server: FakeOpenAIServer) -> None:
    server.fail_next(500, k=10)
    client, slept = _client(max_retries=2)
    with pytest.raises(EndpointError, match="after 3 attempt"):
        client.chat(_endpoint(server), MESSAGES)
    assert server.requests == 3 and len(slept) == 2


def test_connection_errors_are_retried() -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client, slept = _client(max_retries=2)
    endpoint = EndpointModel(model="m", base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(EndpointError, match="APIConnectionError"):
        client.chat(endpoint, MESSAGES)
    assert len(slept) == 2


def test_cache_makes_a_second_client_send_nothing(server: FakeOpenAIServer, tmp_path: Path) -> None:
    endpoint = _endpoint(server, **{"usd_per_1k_prompt_tokens": 1.0})
    first = ChatClient(cache=RequestCache(tmp_path / "cache.sqlite"))
    answer = first.chat(endpoint, MESSAGES, n=2)
    assert server.requests == 1 and not answer.cached
    second = ChatClient(cache=RequestCache(tmp_path / "cache.sqlite"))  # a restarted run
    again = second.chat(endpoint, MESSAGES, n=2)
    assert server.requests == 1 and again.cached and again.texts == answer.texts
    usage = second.usage.models["good-model"]
    assert (usage.requests, usage.cache_hits, usage.prompt_tokens, usage.cost_usd) == (0, 1, 0, 0.0)
    assert usage.cached_prompt_tokens == answer.prompt_tokens
    # Anything that changes the reply changes the key: other n, other sampling, other model.
    second.chat(endpoint, MESSAGES, n=1)
    second.chat(endpoint.model_copy(update={"temperature": 0.1}), MESSAGES, n=2)
    second.chat(_endpoint(server, "okay-model"), MESSAGES, n=2)
    assert server.requests == 4


def test_cache_survives_a_crash_mid_write(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    cache = RequestCache(path)
    cache.put("kept", {"texts": ["a"]})
    cache.close()
    # A process that dies inside a write transaction, before commit.
    crash = (
        f"import os, sqlite3; c = sqlite3.connect({str(path)!r}); c.execute('BEGIN');"
        "c.execute(\"INSERT INTO responses VALUES ('lost', '{}')\");"
        "c.execute(\"UPDATE responses SET value='garbage' WHERE key='kept'\"); os._exit(1)"
    )
    assert subprocess.run([sys.executable, "-c", crash]).returncode == 1
    reopened = RequestCache(path)
    assert reopened.get("kept") == {"texts": ["a"]} and reopened.get("lost") is None and len(reopened) == 1
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _open_and_write(path: str, key: str, barrier: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    cache = RequestCache(path)
    cache.put(key, {"texts": [key]})
    cache.close()


def test_processes_creating_the_cache_at_once_all_succeed(tmp_path: Path) -> None:
    # Ray shards open a new cache file together; switching it to WAL used to fail some of them with
    # "database is locked" (the busy timeout does not cover it). Many rounds: the race is timing-bound.
    context = multiprocessing.get_context("fork")
    for round_index in range(40):
        path = str(tmp_path / f"cache{round_index}.sqlite")
        barrier = context.Barrier(4)
        processes = [context.Process(target=_open_and_write, args=(path, f"k{i}", barrier)) for i in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]
        cache = RequestCache(path)
        assert sorted(cache.get(f"k{i}")["texts"][0] for i in range(4)) == ["k0", "k1", "k2", "k3"]
        cache.close()


def test_concurrency_limit_is_respected() -> None:
    with FakeOpenAIServer(delay_s=0.1) as slow:
        client = ChatClient(concurrency=3, max_retries=0)
        endpoint = _endpoint(slow)
        threads = [
            threading.Thread(target=client.chat, args=(endpoint, [{"role": "user", "content": f"q{i}"}]))
            for i in range(12)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert slow.requests == 12
    assert slow.max_in_flight == 3  # never more than the limit, and the limit is actually used


def test_token_and_cost_accounting(server: FakeOpenAIServer) -> None:
    cheap = _endpoint(server, "good-model", usd_per_1k_prompt_tokens=0.5, usd_per_1k_completion_tokens=1.5)
    dear = _endpoint(server, "judge-model", usd_per_1k_prompt_tokens=2.0, usd_per_1k_completion_tokens=6.0)
    client, _ = _client()
    results = [
        client.chat(e, [{"role": "user", "content": f"question number {i}"}])
        for i, e in enumerate([cheap, cheap, dear])
    ]
    totals = client.usage.totals()
    assert totals.prompt_tokens == server.prompt_tokens == sum(r.prompt_tokens for r in results)
    assert totals.completion_tokens == server.completion_tokens == sum(r.completion_tokens for r in results)
    expected = sum(
        cost_usd(e, r.prompt_tokens, r.completion_tokens)
        for e, r in zip([cheap, cheap, dear], results, strict=True)
    )
    assert totals.cost_usd == pytest.approx(expected) and expected > 0
    dear_usage = client.usage.models["judge-model"]
    assert dear_usage.cost_usd == pytest.approx(
        results[2].prompt_tokens / 1000 * 2.0 + results[2].completion_tokens / 1000 * 6.0
    )
