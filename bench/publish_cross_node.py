"""A 1.1 GB publish across Ray nodes, simulated on loopback (the `large` model, about 280 M fp32 parameters).

Three Ray nodes on this machine (`ray.cluster_utils.Cluster`, its own RAY_TMPDIR): a head without CPUs, a
trainer node with the 2 ZeRO-3 trainer workers, and an engine node. Ours: `publish_weights` to an engine on
the engine node, so every bucket travels from the trainer node's object store to the engine node's.
Baseline: the same publish to an engine on the trainers' own node, which reads the buckets from the store
they were put in. The two sides run one after the other, each with its own engine (both at once ran the
machine out of memory). Unit bytes/s; ratio = cross-node / same-node. On loopback the transfer is a memory
copy through a socket, so this measures the object store's transfer path, not a network.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any
from unittest import mock

import ray
from ray.cluster_utils import Cluster
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.cluster import without_dashboard
from actors.generation import GenerationPool
from actors.trainer_group import TrainerGroup
from actors.weight_publish import publish_weights
from bench.common import Result, compared, require_equal, settle
from ultramedical.config import Config

BASELINE = "the same publish to an engine on the trainers' node (no transfer between object stores)"
BUCKET_MB = 128
STORE_BYTES = 3 * 2**30  # per node: a publish (1.1 GB) plus the one before it, still referenced


def _on(node_id: str) -> dict[str, Any]:
    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_id, soft=False)}


def run(config: Config, reps: int, restore: dict[str, Any]) -> Result:
    """Runs on its own cluster; afterwards the caller's local instance is started again with `restore`."""
    ray.shutdown()
    ray_tmp = tempfile.mkdtemp(prefix="raybx")  # short: Ray's socket paths live under it
    with mock.patch.dict(os.environ, {"RAY_TMPDIR": ray_tmp}):
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "object_store_memory": 2**29, **without_dashboard()},
        )
        try:
            trainer_node = cluster.add_node(num_cpus=2, object_store_memory=STORE_BYTES).node_id
            engine_node = cluster.add_node(num_cpus=1, object_store_memory=STORE_BYTES).node_id
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
            return _measure(config, reps, trainer_node, engine_node)
        finally:
            ray.shutdown()
            cluster.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)
            ray.init(**restore)


def _measure(config: Config, reps: int, trainer_node: str, engine_node: str) -> Result:
    policy = config.model.policy
    bucket_bytes = BUCKET_MB * 2**20
    trainers = TrainerGroup(config, policy, reference=None, scheduling=[_on(trainer_node)] * 2)
    try:
        placed = {"trainers": ray.get([w.__ray_call__.remote(_node_id) for w in trainers.workers])}
        require_equal("trainers' node", placed["trainers"], [trainer_node] * 2)
        # One engine at a time, all of one side's repetitions together: two engines, two trainers and two
        # object stores of a 1.1 GB model ran this 24 GiB machine out of memory when interleaved.
        sides = {}
        for side, node in (("cross_node", engine_node), ("same_node", trainer_node)):
            pool = GenerationPool(policy, config.generation, scheduling=[_on(node)])
            try:
                placed[side] = ray.get(pool.engines[0].__ray_call__.remote(_node_id))
                publish_weights(trainers, pool, bucket_bytes)  # warm-up, untimed
                runs = []
                for _ in range(reps):
                    settle()
                    runs.append(publish_weights(trainers, pool, bucket_bytes))
                sides[side] = runs
            finally:
                pool.shutdown()
        require_equal("engine's node (cross-node side)", placed["cross_node"], engine_node)
        require_equal("engine's node (same-node side)", placed["same_node"], trainer_node)
        moved = {stats.bytes for runs in sides.values() for stats in runs}
        require_equal("bytes published, every run", len(moved), 1)
    finally:
        trainers.shutdown()
    cross = [stats.bytes_per_s for stats in sides["cross_node"]]
    same = [stats.bytes_per_s for stats in sides["same_node"]]
    result = compared("weight_publish_cross_node", "bytes/s", BASELINE, cross, same)
    result.runs |= {"model": "large", "bytes": moved.pop(), "bucket_bytes": bucket_bytes, "nodes": placed}
    return result


def _node_id(_: Any) -> str:
    return ray.get_runtime_context().get_node_id()
