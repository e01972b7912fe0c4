"""N actors of one role, started together: the spawn / placement / wait / shutdown that the generation,
scorer and trainer pools share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ray


class ActorGroup:
    """Spawns `count` actors of `actor_class` with `options`, each merged with its own placement options
    (`scheduling[i]`, which win: a tensor-parallel engine takes only a share of a GPU), constructed with
    `arguments(i)`. `starting` holds each actor's start-up call; a role that starts with others leaves
    `wait=False` and the caller waits on every role's `starting` together."""

    def __init__(
        self,
        actor_class: Any,
        count: int,
        options: dict[str, Any],
        scheduling: list[dict[str, Any]] | None,
        arguments: Callable[[int], tuple[Any, ...]],
    ):
        if scheduling is not None and len(scheduling) < count:
            raise ValueError(f"{count} actors but placement for {len(scheduling)}")
        self.actors = [
            actor_class.options(**(options | (scheduling[i] if scheduling else {}))).remote(*arguments(i))
            for i in range(count)
        ]
        self.starting: list[ray.ObjectRef] = []

    def start(self, calls: list[ray.ObjectRef], wait: bool) -> None:
        """Record each actor's start-up call; with `wait`, block until they all return."""
        self.starting = calls
        if wait:
            ray.get(self.starting)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)
