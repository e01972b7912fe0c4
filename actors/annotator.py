"""A thin Ray actor that annotates one shard of prompts with the library's in-process pipeline."""

from __future__ import annotations

from typing import Any

import ray

from ultramedical.annotate.pipeline import annotate_shard
from ultramedical.config import AnnotateConfig


# A shard whose process dies is re-run once on a restarted actor; the request cache makes that cheap.
@ray.remote(max_restarts=1, max_task_retries=1)
class AnnotatorActor:
    """One shard per call; the request cache (SQLite) is shared with the other actors through the file."""

    def annotate_shard(
        self, indexed: list[tuple[int, dict[str, Any]]], config: dict[str, Any], cache_path: str
    ) -> dict[str, Any]:
        return annotate_shard(indexed, AnnotateConfig.model_validate(config), cache_path)
