"""DeepSpeed trainer workers kept alive across online rounds.

Each worker holds a `Learner` (the same loop as the offline stages) for DPO or KTO. Pairs arrive as
object references; weights leave in buckets, each gathered by every rank (ZeRO-3) and put by rank 0 as one
object (see actors/weight_publish.py).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import ray

from actors.actor_group import ActorGroup
from ultramedical.config import Config
from ultramedical.models.packed import Bucket, PackedWeights, WeightPacker
from ultramedical.online.round_data import TrainItem, TrainSummary
from ultramedical.runtime import torch_threads


@dataclass(frozen=True)
class Publication:
    """A publish under way: rank 0's buckets (each a `PackedWeights` once its gather returns) and every
    rank's gather calls, all already submitted."""

    buckets: list[ray.ObjectRef]
    nbytes: int
    gathers: list[ray.ObjectRef]


@ray.remote
class TrainerWorker:
    def __init__(self, config: Config, rank: int, world_size: int):
        # A round is short: keep every step's metrics.
        trainer = config.trainer.model_copy(update={"log_every_steps": 1})
        self.config = config.model_copy(update={"trainer": trainer})
        self.rank, self.world_size = rank, world_size
        self.learner: Any = None
        self.packer = WeightPacker()

    def address(self) -> tuple[str, int]:
        with socket.socket() as probe:
            probe.bind(("", 0))
            port = probe.getsockname()[1]
        return ray.util.get_node_ip_address(), port

    def setup(self, master: tuple[str, int], policy: str, reference: str | None) -> bool:
        import torch
        import torch.distributed as dist

        from ultramedical.training import ALGORITHMS
        from ultramedical.training.loop import Learner

        trainer = self.config.trainer
        torch.set_num_threads(torch_threads(None, trainer.cpus_per_worker))
        os.environ.update(
            MASTER_ADDR=master[0],
            MASTER_PORT=str(master[1]),
            RANK=str(self.rank),
            WORLD_SIZE=str(self.world_size),
            LOCAL_RANK="0",
        )
        dist.init_process_group(
            "nccl" if trainer.use_gpu else "gloo", rank=self.rank, world_size=self.world_size
        )
        algorithm = ALGORITHMS[self.config.online.algorithm](self.config)
        # The reference stays fixed at the initial policy (None: online.refresh_reference).
        self.learner = Learner(algorithm, policy, total_steps=1, schedule="constant", reference=reference)
        return True

    def train(self, round_index: int, items: list[TrainItem]) -> TrainSummary:
        start = time.perf_counter()
        examples, _ = self.learner.algorithm.examples_from_round(items)
        examples = self.learner.prepare(examples)
        prepared = time.perf_counter()
        lines: list[dict[str, Any]] = []
        self.learner.fit(examples, epochs=self.config.online.epochs_per_round, on_log=lines.append)

        def mean(key: str) -> float | None:
            values = [line[key] for line in lines if key in line]
            return sum(values) / len(values) if values else None

        return TrainSummary(
            train_examples=len(examples),
            train_steps=len(lines),
            train_seconds=time.perf_counter() - start,
            reference_seconds=prepared - start,
            loss=mean("loss"),
            accuracy=mean("rewards/accuracies"),
            margin=mean("rewards/margins"),
            kl=mean("kl"),
            lines=[line | {"round": round_index} for line in lines],
        )

    def publish_plan(self, bucket_bytes: int) -> list[Bucket]:
        return self.learner.publish_buckets(bucket_bytes)

    def publish_bucket(self, names: list[str]) -> PackedWeights | None:
        """Every rank joins the gather of these parameters; rank 0 packs them into its one reused buffer and
        returns it, which Ray copies into the object store before this actor runs its next call: rank 0
        holds one bucket beyond the gathered one."""
        with self.learner.gathered(names) as state:
            return None if state is None else self.packer.pack(self.learner.published_form(state))

    def save(self, out_dir: str, tokenizer_from: str) -> None:
        from ultramedical.models.loading import load_tokenizer

        self.learner.save(out_dir, load_tokenizer(tokenizer_from))


class TrainerGroup(ActorGroup):
    def __init__(
        self,
        config: Config,
        policy: str,
        reference: str | None,
        scheduling: list[dict[str, Any]] | None = None,
        wait: bool = True,
    ):
        world = config.trainer.num_workers
        options = {"num_cpus": config.trainer.cpus_per_worker, "num_gpus": 1 if config.trainer.use_gpu else 0}
        super().__init__(TrainerWorker, world, options, scheduling, lambda rank: (config, rank, world))
        self.workers = self.actors
        self.bucket_bytes = int(config.online.publish_bucket_mb * 2**20)
        master = self.workers[0].address.remote()  # a reference: Ray resolves it before each setup runs
        self.start([w.setup.remote(master, policy, reference) for w in self.workers], wait)

    def train(self, round_index: int, items: ray.ObjectRef) -> TrainSummary:
        """Every rank gets the same reference; each trains on its shard of the round's data."""
        return ray.get([w.train.remote(round_index, items) for w in self.workers])[0]

    def publish(self, bucket_bytes: int | None = None) -> Publication:
        """Submit every bucket's gather on every rank at once (each actor runs them in order) and return
        without waiting: an engine given `buckets` installs each as soon as its gather returns."""
        plan = ray.get(self.workers[0].publish_plan.remote(bucket_bytes or self.bucket_bytes))
        calls = [[w.publish_bucket.remote(bucket.names) for w in self.workers] for bucket in plan]
        return Publication(
            buckets=[ranks[0] for ranks in calls],
            nbytes=sum(bucket.nbytes for bucket in plan),
            gathers=[call for ranks in calls for call in ranks],
        )

    def save(self, out_dir: str, tokenizer_from: str) -> None:
        ray.get([w.save.remote(out_dir, tokenizer_from) for w in self.workers])
