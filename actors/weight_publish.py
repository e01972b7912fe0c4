"""Trained weights to the generation engines through the object store, in buckets.

The trainers gather bucket b+1 (every rank joins; rank 0 packs and puts it) while every engine installs
bucket b, and the next bucket is not gathered until the engines have finished the one before it: at most
two buckets are in flight, and rank 0 holds one packed bucket beyond the parameters it gathers. The
pool keeps the buckets' references so an engine that restarts can be given the same weights.
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
    install_seconds: float  # the slowest engine's install time, summed over buckets

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / max(self.seconds, 1e-9)


def publish_weights(
    trainers: TrainerGroup, pool: GenerationPool, bucket_bytes: int | None = None
) -> PublishStats:
    """Publish the trainers' weights to every live engine (`bucket_bytes`: online.publish_bucket_mb)."""
    start = time.perf_counter()
    published: list[ray.ObjectRef] = []
    installing: list[ray.ObjectRef] = []
    install_seconds, total_bytes = 0.0, 0
    for bucket in trainers.publish(bucket_bytes):  # gathers this bucket while the last one installs
        install_seconds += max(ray.get(installing), default=0.0)
        installing = pool.install_bucket(bucket.weights)
        published.append(bucket.weights)
        total_bytes += bucket.nbytes
    install_seconds += max(ray.get(installing), default=0.0)
    pool.installed(published)
    return PublishStats(len(published), total_bytes, time.perf_counter() - start, install_seconds)
