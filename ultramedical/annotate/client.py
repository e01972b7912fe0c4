"""A chat client for any OpenAI-compatible endpoint: retries, a concurrency cap, a disk cache, accounting.

One `ChatClient` serves every model of a run, so the concurrency limit is global to the process and
usage is tallied per model. Responses are cached in SQLite (transactional, so a crash mid-write leaves
the cache as it was before that write), keyed by everything that decides the reply; a restarted run
therefore pays for nothing twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai

from ultramedical.config import AnnotateConfig, EndpointModel

DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_BACKOFF_S = 60.0
Messages = list[dict[str, str]]


class EndpointError(RuntimeError):
    """A request that failed for good (a non-retryable status, or retries exhausted)."""

    def __init__(self, message: str, status_code: int | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.attempts = attempts


@dataclass(frozen=True)
class ChatResult:
    """The choices of one chat request, with the tokens it used (those of the original call if cached)."""

    texts: list[str]
    finish_reasons: list[str]
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False


@dataclass
class ModelUsage:
    """Per-model tallies. Billed tokens and cost only count real requests; cache hits are counted apart."""

    requests: int = 0
    retries: int = 0
    errors: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class UsageMeter:
    """Thread-safe usage per model; `merge` folds in another meter's `to_dict()` (from a Ray shard)."""

    models: dict[str, ModelUsage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, model: str, **deltas: float) -> None:
        with self._lock:
            usage = self.models.setdefault(model, ModelUsage())
            for key, value in deltas.items():
                setattr(usage, key, getattr(usage, key) + value)

    def merge(self, other: dict[str, dict[str, float]]) -> None:
        for model, values in other.items():
            self.add(model, **values)

    def totals(self) -> ModelUsage:
        with self._lock:
            total = ModelUsage()
            for usage in self.models.values():
                for key, value in asdict(usage).items():
                    setattr(total, key, getattr(total, key) + value)
            return total

    def to_dict(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {model: asdict(usage) for model, usage in self.models.items()}


def cost_usd(endpoint: EndpointModel, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for one request at the endpoint's per-1k-token prices."""
    return (
        prompt_tokens / 1000 * endpoint.usd_per_1k_prompt_tokens
        + completion_tokens / 1000 * endpoint.usd_per_1k_completion_tokens
    )


_SETUP_ATTEMPTS = 50


class RequestCache:
    """SQLite key-value store of responses. Safe across threads and across processes (Ray shards)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection per process, serialised by a lock; the busy timeout lets other processes wait
        # for the write lock instead of failing.
        self._conn = sqlite3.connect(str(self.path), timeout=60, check_same_thread=False)
        # Switching a new file to WAL takes a lock that the busy timeout does not wait for: processes
        # creating the cache at the same moment (Ray shards) get "database is locked" and try again.
        for attempt in range(_SETUP_ATTEMPTS):
            try:
                with self._lock:
                    self._conn.execute("PRAGMA journal_mode=WAL")
                    self._conn.execute(
                        "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
                    )
                    self._conn.commit()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _SETUP_ATTEMPTS - 1:
                    raise
                time.sleep(0.02 * (attempt + 1))

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        with self._lock, self._conn:  # the connection context manager commits, or rolls back on error
            self._conn.execute(
                "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", (key, json.dumps(value))
            )

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def request_key(base_url: str, model: str, messages: Messages, params: dict[str, Any]) -> str:
    """Hash of everything that decides a reply: endpoint, model, messages, sampling parameters and n."""
    blob = json.dumps([base_url.rstrip("/"), model, messages, params], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def is_retryable(exc: Exception) -> bool:
    """Rate limits, server errors and connection trouble are worth retrying; other 4xx never are."""
    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def _retry_after(exc: Exception) -> float:
    response = getattr(exc, "response", None)
    try:
        return max(0.0, float(response.headers.get("retry-after", 0))) if response is not None else 0.0
    except (TypeError, ValueError):  # an HTTP date, or garbage: fall back to our own backoff
        return 0.0


class ChatClient:
    """Chat completions through the official `openai` client, with the run's policies around each call."""

    def __init__(
        self,
        *,
        concurrency: int = 8,
        max_retries: int = 5,
        backoff_base_s: float = 0.5,
        timeout_s: float = 60.0,
        cache: RequestCache | None = None,
        usage: UsageMeter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.timeout_s = timeout_s
        self.cache = cache
        self.usage = usage or UsageMeter()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clients: dict[tuple[str, str], openai.OpenAI] = {}
        self._clients_lock = threading.Lock()

    @classmethod
    def for_annotation(
        cls, config: AnnotateConfig, cache: RequestCache | None, usage: UsageMeter | None = None
    ) -> ChatClient:
        """A client with the annotate section's concurrency, retry and timeout settings."""
        return cls(
            concurrency=config.concurrency,
            max_retries=config.max_retries,
            backoff_base_s=config.backoff_base_s,
            timeout_s=config.timeout_s,
            cache=cache,
            usage=usage,
        )

    def _client(self, base_url: str, api_key: str) -> openai.OpenAI:
        with self._clients_lock:
            key = (base_url, api_key)
            if key not in self._clients:
                # Retries are ours (with our policy and accounting), so the SDK's own are switched off.
                self._clients[key] = openai.OpenAI(
                    base_url=base_url, api_key=api_key, max_retries=0, timeout=self.timeout_s
                )
            return self._clients[key]

    def backoff_delay(self, attempt: int) -> float:
        """Exponential backoff with +/-50% jitter, so that many clients do not retry in lockstep."""
        return min(MAX_BACKOFF_S, self.backoff_base_s * 2**attempt * (0.5 + self._rng.random()))

    def chat(self, endpoint: EndpointModel, messages: Messages, n: int = 1) -> ChatResult:
        """One chat request (n choices); served from the cache when it has been answered before."""
        base_url = endpoint.base_url or DEFAULT_BASE_URL
        params = {
            "temperature": endpoint.temperature,
            "top_p": endpoint.top_p,
            "max_tokens": endpoint.max_tokens,
            "n": n,
        }
        key = request_key(base_url, endpoint.model, messages, params)
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.usage.add(
                endpoint.model,
                cache_hits=1,
                cached_prompt_tokens=hit["prompt_tokens"],
                cached_completion_tokens=hit["completion_tokens"],
            )
            return ChatResult(**hit, cached=True)
        # A missing key is fine for local servers (vLLM accepts any); the SDK insists on a non-empty one.
        api_key = os.environ.get(endpoint.api_key_env) or "EMPTY"
        client = self._client(base_url, api_key)
        for attempt in range(self.max_retries + 1):
            try:
                with self._slots:
                    response = client.chat.completions.create(
                        model=endpoint.model, messages=messages, **params
                    )
                break
            except openai.OpenAIError as exc:
                status = getattr(exc, "status_code", None)
                if not is_retryable(exc) or attempt == self.max_retries:
                    self.usage.add(endpoint.model, errors=1)
                    raise EndpointError(
                        f"{endpoint.model}: {type(exc).__name__}"
                        f"{f' (HTTP {status})' if status else ''} after {attempt + 1} attempt(s): {exc}",
                        status_code=status,
                        attempts=attempt + 1,
                    ) from exc
                self.usage.add(endpoint.model, retries=1)
                # Sleep outside the concurrency slot so other requests keep flowing meanwhile; a server's
                # Retry-After (seconds) is a floor, since retrying sooner would only be refused again.
                self._sleep(max(self.backoff_delay(attempt), min(_retry_after(exc), MAX_BACKOFF_S)))
        choices = sorted(response.choices, key=lambda c: c.index)
        usage = response.usage
        result = {
            "texts": [c.message.content or "" for c in choices],
            "finish_reasons": [str(c.finish_reason or "") for c in choices],
            "prompt_tokens": int(getattr(usage, "prompt_tokens", 0) or 0),
            "completion_tokens": int(getattr(usage, "completion_tokens", 0) or 0),
        }
        self.usage.add(
            endpoint.model,
            requests=1,
            prompt_tokens=result["prompt_tokens"],
            completion_tokens=result["completion_tokens"],
            cost_usd=cost_usd(endpoint, result["prompt_tokens"], result["completion_tokens"]),
        )
        if self.cache is not None:
            self.cache.put(key, result)
        return ChatResult(**result)

    def close(self) -> None:
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
