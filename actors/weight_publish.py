"""Trained weights to the generation engines through the object store, in buckets.

The trainers gather the buckets one after another (under ZeRO-3 every rank joins each gather; rank 0 packs
the bucket and returns it as one object), and every engine, given all the buckets' references up front,
installs bucket b as soon as it is in the store while bucket b+1 is gathered, in one in-place reload.
Rank 0 holds one packed bucket beyond the parameters it gathers; its node's object store holds the whole
publish, which the pool keeps so an engine that restarts can be given the same weights.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import ray

from actors.generation import GenerationPool
from actors.trainer_group import TrainerGroup


@dataclass(frozen=True)
class PublishStats:
    buckets: int
    bytes: int
    seconds: float  # from the first gather to the last engine's last install
    install_seconds: float  # the slowest engine's install call (it waits for gathers still running)

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / max(self.seconds, 1e-9)


def publish_weights(
    trainers: TrainerGroup, pool: GenerationPool, bucket_bytes: int | None = None
) -> PublishStats:
    """Publish the trainers' weights to every live engine (`bucket_bytes`: online.publish_bucket_mb)."""
    start = time.perf_counter()
    publication = trainers.publish(bucket_bytes)
    installs = pool.install(publication.buckets)
    ray.get(publication.gathers)
    install_seconds = max(ray.get(installs), default=0.0)
    seconds = time.perf_counter() - start
    return PublishStats(len(publication.buckets), publication.nbytes, seconds, install_seconds)
