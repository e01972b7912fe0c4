"""The reward-scoring service on Ray Serve: a FastAPI ingress over a dynamically batched reward model.

Requests are cut into chunks of at most `serve.max_batch_size` items; `@serve.batch` gathers chunks of
concurrent requests (its size counted in items, not requests), and one forward at a time flattens every
batch waiting for the model, up to max_batch_size items, into one `RewardModel.score` call and splits
the rewards back. (Serve keeps forming batches while a forward runs; merging them is what lets batches
grow with load instead of queueing one 10 ms window each.) A new checkpoint is loaded off the request
path and swapped in with a single assignment; each request keeps the model it arrived under, so
in-flight requests finish on the old one. The checkpoint every replica serves is the deployment's
`user_config: {model: DIR}`: `POST /v1/reload` validates DIR on the replica that receives it, swaps it in
there, then publishes it as the new user_config, and Ray Serve calls `reconfigure` on every other replica,
present and future (actors/serve_rollout.py).

Replica resources come from `serve.cpus_per_replica` / `serve.gpus_per_replica` only (`actor_options`);
a replica granted a GPU scores on it in bf16, and one that asked for a GPU but got none refuses to start
rather than serve an 8B model in fp32 on a CPU.

Run it with `ultramedical serve --model DIR`, or `serve deploy configs/serve.yaml` (`app_builder`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

import ray
import torch
from pydantic import BaseModel, ConfigDict
from ray import serve
from ray.serve import Application

from actors.serve_rollout import publish_user_config
from ultramedical.config import Config, RewardConfig, ServeConfig, load_config
from ultramedical.data.schemas import Message
from ultramedical.models.loading import local_or_hub
from ultramedical.models.reward import RewardModel
from ultramedical.runtime import torch_threads
from ultramedical.serving.api import (
    ReloadBusy,
    ReloadFailed,
    ReloadRejected,
    create_app,
    resolve_token,
    token_digest,
)

Chunk = tuple[RewardModel, list[list[Message]]]
_PROBE: list[Message] = [{"role": "user", "content": "ping"}, {"role": "assistant", "content": "pong"}]
logger = logging.getLogger(__name__)


def _count_items(chunks: list[Chunk]) -> int:
    """Batch size in items, so `max_batch_size` bounds the forward batch however requests are sized."""
    return sum(len(conversations) for _, conversations in chunks)


def actor_options(s: ServeConfig) -> dict[str, float]:
    """A replica's Ray resources; the only place they are set (see configs/serve.yaml)."""
    return {"num_cpus": s.cpus_per_replica, "num_gpus": s.gpus_per_replica}


def uses_gpu(gpus_per_replica: float, granted_gpu_ids: list[Any]) -> bool:
    """Whether a replica scores on a GPU: when Ray granted it one. Asking for one and getting none means
    the request was lost on the way (a `ray_actor_options` override in a Serve config replaces the code's
    whole dict), which would serve the model in fp32 on a CPU: refuse to start instead."""
    if gpus_per_replica > 0 and not granted_gpu_ids:
        raise RuntimeError(
            f"serve.gpus_per_replica is {gpus_per_replica} but Ray granted this replica no GPU: does a "
            "deployments[].ray_actor_options in the Serve config override it without num_gpus?"
        )
    return bool(granted_gpu_ids)


def _published_model(context: Any) -> str | None:
    """The checkpoint in the deployment's user_config when this replica was created, if any."""
    user_config = getattr(getattr(context, "_deployment_config", None), "user_config", None)
    return user_config.get("model") if isinstance(user_config, dict) else None


@serve.deployment
@serve.ingress()  # the app is built per replica, by __serve_build_asgi_app__, from this replica's settings
class RewardService:
    def __init__(self, model_dir: str, settings: dict[str, Any], token_sha256: str | None = None):
        self.serve_settings = ServeConfig.model_validate(settings["serve"])
        self.reward_settings = RewardConfig.model_validate(settings["reward"])
        self._use_gpu = uses_gpu(self.serve_settings.gpus_per_replica, ray.get_gpu_ids())
        if not self._use_gpu:
            # Intra-op threads match the CPUs Ray granted, so replicas sharing a node do not oversubscribe it.
            torch.set_num_threads(torch_threads(None, self.serve_settings.cpus_per_replica))
        self._token_sha256 = token_sha256
        context = serve.get_replica_context()
        self.replica_id: str = context.replica_tag
        self._app_name, self._deployment_name = context.app_name, context.deployment
        self._reload_error: str | None = None
        # A replica started after a reload loads the published checkpoint at once (then reconfigure with
        # the same user_config is a no-op), instead of the bound one first.
        published = _published_model(context) or model_dir
        try:
            self._model = self._load(published)
        except Exception as exc:
            if published == model_dir:
                raise
            self._reload_error = f"cannot load {published}: {type(exc).__name__}: {exc}"  # as reconfigure
            self._model = self._load(model_dir)
        self._reload_lock = asyncio.Lock()
        self._waiting: deque[tuple[list[Chunk], asyncio.Future[list[list[float]]]]] = deque()
        self._forward_task: asyncio.Task[None] | None = None
        self._counts: dict[str, float] = {
            "requests": 0,
            "items": 0,
            "batches": 0,
            "largest_batch": 0,
            "score_seconds": 0.0,
            "reloads": 0,
        }
        self._score_chunk.set_max_batch_size(self.serve_settings.max_batch_size)
        self._score_chunk.set_batch_wait_timeout_s(self.serve_settings.batch_wait_timeout_s)

    def __serve_build_asgi_app__(self) -> Any:
        return create_app(self, self.serve_settings, self._token_sha256)

    def _load(self, model_dir: str) -> RewardModel:
        s = self.serve_settings  # one merged forward is one model batch: serve.max_batch_size items
        max_length = self.reward_settings.max_length
        return RewardModel(model_dir, s.max_batch_size, max_length, use_gpu=self._use_gpu)

    @property
    def model_path(self) -> str:
        return self._model.path

    async def score(self, conversations: list[list[Message]]) -> tuple[list[float], str]:
        """Rewards in order, and the checkpoint that produced all of them."""
        model = self._model  # read once: every chunk of this request is scored by the same checkpoint
        size = self.serve_settings.max_batch_size
        chunks = [conversations[i : i + size] for i in range(0, len(conversations), size)]
        parts = await asyncio.gather(*(self._score_chunk((model, chunk)) for chunk in chunks))
        self._counts["requests"] += 1
        self._counts["items"] += len(conversations)
        return [value for part in parts for value in part], model.path

    # max_concurrent_batches is high on purpose: Serve forms batches while a forward runs, and instead of
    # queueing small ones behind it, they wait in _waiting and the next forward merges them.
    @serve.batch(
        max_batch_size=32, batch_wait_timeout_s=0.01, max_concurrent_batches=256, batch_size_fn=_count_items
    )
    async def _score_chunk(self, chunks: list[Chunk]) -> list[list[float]]:
        future: asyncio.Future[list[list[float]]] = asyncio.get_running_loop().create_future()
        self._waiting.append((chunks, future))
        if self._forward_task is None:
            self._forward_task = asyncio.create_task(self._forward_loop())
        return await future

    async def _forward_loop(self) -> None:
        """One forward at a time; each takes every waiting Serve batch that fits in max_batch_size items."""
        limit = self.serve_settings.max_batch_size
        try:
            while self._waiting:
                taken = [self._waiting.popleft()]
                size = _count_items(taken[0][0])
                while self._waiting and size + _count_items(self._waiting[0][0]) <= limit:
                    size += _count_items(self._waiting[0][0])
                    taken.append(self._waiting.popleft())
                try:
                    values = await self._forward([c for chunks, _ in taken for c in chunks])
                except Exception as exc:  # fails these requests only; the loop serves the next ones
                    for _, future in taken:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for chunks, future in taken:
                    part, values = values[: len(chunks)], values[len(chunks) :]
                    if not future.done():  # a cancelled request (client gone) has nobody to answer
                        future.set_result(part)
        finally:
            self._forward_task = None

    async def _forward(self, chunks: list[Chunk]) -> list[list[float]]:
        start_time = time.perf_counter()
        results: list[list[float]] = [[] for _ in chunks]
        by_model: dict[int, list[int]] = {}  # chunks from before and after a swap are scored apart
        for index, (model, _) in enumerate(chunks):
            by_model.setdefault(id(model), []).append(index)
        for indices in by_model.values():
            model = chunks[indices[0]][0]
            flat = [c for i in indices for c in chunks[i][1]]
            # In a thread: the event loop keeps accepting requests, health checks and reloads meanwhile.
            values = await asyncio.to_thread(model.score, flat)
            start = 0
            for i in indices:
                results[i] = values[start : start + len(chunks[i][1])]
                start += len(chunks[i][1])
        self._counts["batches"] += 1
        self._counts["score_seconds"] += time.perf_counter() - start_time
        self._counts["largest_batch"] = max(self._counts["largest_batch"], _count_items(chunks))
        return results

    async def _swap(self, model_dir: str, *, wait: bool) -> tuple[RewardModel, RewardModel]:
        """Load `model_dir` beside the serving model, check it scores, swap; on error the old one stays.
        Returns (new, previous). `wait`: queue behind a reload in progress instead of refusing."""
        path = Path(model_dir).expanduser()
        if not path.is_dir():  # local directories only: a reload must never fetch from a hub
            raise ReloadRejected(f"{model_dir}: not a directory on the replica's host")
        if not wait and self._reload_lock.locked():
            raise ReloadBusy("another reload is in progress")
        async with self._reload_lock:
            try:
                model = await asyncio.to_thread(self._load, str(path.resolve()))
                await asyncio.to_thread(model.score, [_PROBE])
            except Exception as exc:  # any failure to load keeps the old model serving
                raise ReloadRejected(f"cannot load {model_dir}: {type(exc).__name__}: {exc}") from None
            previous, self._model = self._model, model  # one assignment: the swap is atomic
            self._counts["reloads"] += 1
            self._reload_error = None
        return model, previous

    async def reload(self, model_dir: str) -> dict[str, Any]:
        """Swap here, then publish the checkpoint as the deployment's user_config so that Serve reconfigures
        every other replica, and any started later, with it. Nothing is published unless it loaded here."""
        start = time.perf_counter()
        model, previous = await self._swap(model_dir, wait=False)
        try:
            await asyncio.to_thread(
                publish_user_config, self._app_name, self._deployment_name, {"model": model.path}
            )
        except Exception as exc:
            if self._model is model:  # the other replicas keep the old checkpoint: so does this one
                self._model = previous
            raise ReloadFailed(
                f"{model.path} loaded, but publishing it to the deployment's replicas failed "
                f"({type(exc).__name__}: {exc}); every replica keeps {previous.path}"
            ) from None
        return {
            "model": model.path,
            "previous": previous.path,
            "seconds": time.perf_counter() - start,
            "replica": self.replica_id,
        }

    async def reconfigure(self, user_config: dict[str, Any] | None) -> None:
        """Serve calls this on every replica, present and future, when the deployment's user_config
        `{model: DIR}` changes (a /v1/reload, or `serve deploy` with a new user_config)."""
        model_dir = (user_config or {}).get("model")
        if not model_dir or self._model.path in (model_dir, str(Path(model_dir).expanduser().resolve())):
            return  # already serving it (a hub id stays as given)
        try:
            await self._swap(model_dir, wait=True)
        except ReloadRejected as exc:
            # /v1/reload checked DIR before publishing it, so this is this host's problem (DIR not on its
            # disk). Raising would make Serve replace the replica, which would fail the same way: keep the
            # old model serving and report the error in /v1/stats.
            self._reload_error = str(exc)
            logger.error("replica %s keeps %s: %s", self.replica_id, self._model.path, exc)

    def stats(self) -> dict[str, Any]:
        # pid: the replica's process, so operators and the soak test can watch its memory.
        return {
            "model": self._model.path,
            "replica": self.replica_id,
            "device": str(self._model.device),
            "dtype": str(self._model.model.dtype).removeprefix("torch."),
            "reload_error": self._reload_error,
            "pid": os.getpid(),
            "torch_threads": torch.get_num_threads(),
            **self._counts,
        }


def build_app(config: Config, model_dir: str | Path) -> Application:
    """The service for `model_dir` with `config.serve`'s batching, capacity, autoscaling and limits."""
    s = config.serve
    token = resolve_token(s.token_file)  # read here, once; replicas only get its digest
    model = local_or_hub(str(model_dir))
    deployment = RewardService.options(
        max_ongoing_requests=s.max_ongoing_requests,
        max_queued_requests=s.max_queued_requests,
        autoscaling_config={
            "min_replicas": s.min_replicas,
            "initial_replicas": max(1, s.min_replicas),  # ready to answer when serve.run returns
            "max_replicas": s.max_replicas,
            "target_ongoing_requests": s.target_ongoing_requests,
        },
        ray_actor_options=actor_options(s),
        user_config={"model": model},  # what /v1/reload replaces; Serve hands it to every replica
    )
    settings = {"serve": s.model_dump(), "reward": config.reward.model_dump()}
    return deployment.bind(model, settings, token_digest(token) if token else None)


class BuilderArgs(BaseModel):
    """`args` of configs/serve.yaml: the model, a preset, and dotted overrides of it."""

    model_config = ConfigDict(extra="forbid")

    model: str
    config: str = "configs/tiny-cpu.yaml"
    overrides: dict[str, Any] = {}


def app_builder(args: dict[str, Any]) -> Application:
    """Entry point for `serve run|deploy` with `import_path: actors.reward_service:app_builder`."""
    parsed = BuilderArgs.model_validate(args)
    return build_app(load_config(parsed.config, parsed.overrides), parsed.model)
