"""Annotation fanned out to Ray actors: the `map_shards` that `ultramedical.annotate.annotate` takes.

Each actor annotates one shard with the library's in-process pipeline (`annotate_shard`); the request
cache (SQLite) is shared between them, and with the driver, through its file.
"""

from __future__ import annotations

from typing import Any

import ray

from actors.cluster import without_dashboard
from ultramedical.annotate.pipeline import Shard, annotate_shard, failed_shard
from ultramedical.config import AnnotateConfig


# A shard whose process dies is re-run once on a restarted actor; the request cache makes that cheap.
@ray.remote(max_restarts=1, max_task_retries=1)
class AnnotatorActor:
    """One shard per call; the request cache (SQLite) is shared with the other actors through the file."""

    def annotate_shard(self, indexed: Shard, config: AnnotateConfig, cache_path: str) -> dict[str, Any]:
        return annotate_shard(indexed, config, cache_path)


def annotate_on_ray(shards: list[Shard], config: AnnotateConfig, cache_path: str) -> list[dict[str, Any]]:
    """One actor per shard; a dead actor fails only its own prompts. Joins the running Ray instance, else
    starts one for the call (and shuts it down after)."""
    started = not ray.is_initialized()
    if started:
        ray.init(**without_dashboard())
    try:
        actors = [AnnotatorActor.remote() for _ in shards]
        refs = [
            actor.annotate_shard.remote(shard, config, cache_path)
            for actor, shard in zip(actors, shards, strict=True)
        ]
        outputs = []
        for ref, shard in zip(refs, shards, strict=True):
            try:
                outputs.append(ray.get(ref))
            except ray.exceptions.RayError as exc:
                outputs.append(
                    failed_shard(shard, "worker", f"worker failed: {type(exc).__name__}: {str(exc)[:300]}")
                )
        for actor in actors:
            ray.kill(actor)
        return outputs
    finally:
        if started:
            ray.shutdown()
