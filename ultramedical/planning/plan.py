"""Will a preset fit a cluster, and where: per role GPUs, node type, GPU and host memory, object store.

A role goes to the node types that offer its custom resource (trainer.node_resource,
generation.node_resource, reward.node_resource: the placement groups ask for it), or, unpinned, to any GPU
node type. Since the autoscaler may start any of those that can hold the role's per-actor GPUs, the role
must fit on each of them: the verdict holds whichever the autoscaler picks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ultramedical.config import Config
from ultramedical.planning.architecture import ModelShape, resolve_shape
from ultramedical.planning.hardware import GIB, NodeType, read_cluster
from ultramedical.planning.memory import (
    PROCESS_HOST_BYTES,
    dtype_bytes,
    engine_memory,
    scorer_memory,
    trainable_params,
    trainer_memory,
)

GPU_USABLE = 0.95  # of a GPU's memory, for trainers and scorers: the rest goes to allocator fragmentation
HOST_USABLE = 0.9  # of a node's RAM: the OS, Ray's own daemons and page cache keep the rest
PINNED_BUFFER_FACTOR = 1.5  # DeepSpeed's additional_buffer_factor for offloaded (pinned) states


def gib(n: float) -> float:
    return round(n / GIB, 2)


@dataclass
class RoleNeed:
    role: str
    gpus: int
    gpus_per_actor: float
    actors: int
    resource: str | None  # the custom node resource the role's bundles ask for
    setting: str  # the config key that sets it, for messages
    gpu_bytes: int  # what one GPU of the role must hold (engines: vLLM's claim, checked separately)
    host_bytes_per_actor: int  # steady state
    host_bytes_fixed: int  # once per node that hosts the role (publish buffers, object-store copy)
    host_load_per_actor: int = 0  # while loading (not at the same time as the steady state)
    report: dict[str, Any] = field(default_factory=dict)


def _reward_model_name(config: Config) -> str:
    return config.model.reward_model or config.rm.init_from or config.model.policy


def _role_need(role: str, section: str, actors: int, gpus_per_actor: float, **figures: Any) -> RoleNeed:
    """A role of `actors` actors with `gpus_per_actor` GPUs each, pinned by `<section>.node_resource`."""
    return RoleNeed(
        role,
        gpus=math.ceil(actors * gpus_per_actor),
        gpus_per_actor=gpus_per_actor,
        actors=actors,
        setting=f"{section}.node_resource",
        **figures,
    )


def publish_bytes(config: Config, shape: ModelShape) -> int:
    """One weight publish: the policy's weights, or with model.lora its adapter only."""
    return dtype_bytes(config) * trainable_params(shape, config)


def largest_publish_bucket(config: Config, shape: ModelShape) -> int:
    """Bytes of the largest publish bucket: buckets hold whole module groups (a decoder layer, the
    embeddings, the lm_head; ultramedical/models/packed.py), so one group larger than
    online.publish_bucket_mb makes a bucket of its own size."""
    width = dtype_bytes(config)
    largest_group = width * max(shape.embedding_params, shape.layer_params)
    return min(publish_bytes(config, shape), max(int(config.online.publish_bucket_mb * 2**20), largest_group))


def make_plan(config: Config, cluster_path: str | Path) -> dict[str, Any]:
    """The plan as a JSON-ready dict: `fits`, `roles`, `problems`, `publish_bytes`, `nodes`, `notes`."""
    policy = resolve_shape(config.model.policy)
    reward = resolve_shape(_reward_model_name(config))
    node_types, cluster = read_cluster(cluster_path)
    problems: list[str] = []
    notes: list[str] = []
    width = dtype_bytes(config)
    publish = publish_bytes(config, policy)
    bucket = largest_publish_bucket(config, policy)

    t, g, r = config.trainer, config.generation, config.reward
    if t.zero_stage == 0 and t.offload_optimizer:
        problems.append("trainers: trainer.offload_optimizer needs trainer.zero_stage 1 or more (DeepSpeed)")
    if g.gpus_per_engine >= 1 and g.gpus_per_engine != g.tensor_parallel_size:
        problems.append(
            f"engines: generation.gpus_per_engine ({g.gpus_per_engine:g}) must equal "
            f"generation.tensor_parallel_size ({g.tensor_parallel_size}) on GPU"
        )
    if policy.num_heads % g.tensor_parallel_size:
        problems.append(
            f"engines: generation.tensor_parallel_size {g.tensor_parallel_size} does not divide "
            f"the {policy.num_heads} attention heads of {policy.name}"
        )
    if config.online.placement == "colocate" and (0 < g.gpus_per_engine < 1 or 0 < r.gpus_per_scorer < 1):
        notes.append("online.placement colocate: roles sharing a GPU are each checked alone, not summed")
    for node in node_types:
        if node.instance is None:
            problems.append(
                f"node type {node.name}: unknown instance type '{node.instance_type}' (GPU and host memory "
                "unknown; add it to ultramedical/planning/hardware.py INSTANCE_TYPES)"
            )

    online_reference = not config.online.refresh_reference
    if online_reference and t.offload_reference and t.zero_stage != 3 and t.use_gpu:
        notes.append(
            "trainer.offload_reference applies under ZeRO-3 only: at trainer.zero_stage "
            f"{t.zero_stage} each GPU holds a whole reference model"
        )
    policy_mem = trainer_memory(policy, config, online_reference)
    rm_mem = trainer_memory(reward, config, online_reference=False, reward=True)  # the rm stage's
    tmem = max(policy_mem, rm_mem, key=lambda m: m.total)
    trainers = _role_need(
        "trainers",
        "trainer",
        actors=t.num_workers,
        gpus_per_actor=1.0 if t.use_gpu else 0.0,
        resource=t.node_resource,
        gpu_bytes=tmem.total,
        host_bytes_per_actor=int(tmem.host_offload_per_rank * PINNED_BUFFER_FACTOR) + PROCESS_HOST_BYTES,
        # rank 0: a gathered bucket and its packed buffer; its node's object store holds the whole publish
        host_bytes_fixed=2 * bucket + publish,
        host_load_per_actor=tmem.host_load_per_rank + PROCESS_HOST_BYTES,
        report={
            "model_states_gib": gib(tmem.model_states),
            "weights_gib": gib(tmem.weights),
            "gradients_gib": gib(tmem.gradients),
            "optimizer_gib": gib(tmem.optimizer),
            "zero3_buffers_gib": gib(tmem.zero3_buffers),
            "reference_gib": gib(tmem.reference),
            "reference_host_gib": gib(tmem.reference_on_host),
            "activations_gib": gib(tmem.activations),
            "logits_gib": gib(tmem.logits),
            "host_offload_gib_per_gpu": gib(tmem.host_offload_per_rank),
            "host_load_gib_per_gpu": gib(tmem.host_load_per_rank),
            "zero_stage": t.zero_stage,
            "model": policy.name if tmem is policy_mem else reward.name,
        },
    )
    smem = scorer_memory(reward, config)
    scorers = _role_need(
        "scorers",
        "reward",
        actors=r.scorers,
        gpus_per_actor=r.gpus_per_scorer,
        resource=r.node_resource,
        gpu_bytes=smem.total,
        host_bytes_per_actor=PROCESS_HOST_BYTES,
        host_bytes_fixed=0,
        host_load_per_actor=width * reward.reward_params + PROCESS_HOST_BYTES,  # loaded on the host first
        report={
            "model_states_gib": gib(smem.weights),
            "weights_gib": gib(smem.weights),
            "activations_gib": gib(smem.activations),
            "model": reward.name,
        },
    )
    engines = _role_need(
        "engines",
        "generation",
        actors=g.engines,
        gpus_per_actor=g.gpus_per_engine,
        resource=g.node_resource,
        gpu_bytes=0,  # vLLM claims gpu_memory_utilization of each GPU; _check_node checks what is left
        host_bytes_per_actor=PROCESS_HOST_BYTES,
        host_bytes_fixed=publish,  # each engine node pulls one copy of every publish into its object store
        report={"tensor_parallel_size": g.tensor_parallel_size, "model": policy.name},
    )

    gpu_types = [n for n in node_types if n.gpus > 0 and not n.is_head]
    nodes_used: dict[str, int] = {}
    for need in (trainers, engines, scorers):
        _place_role(need, gpu_types, config, policy, problems, notes, nodes_used)
    # Roles with separate placement do not share nodes: the node counts add up per node type.
    for node in gpu_types:
        wanted = nodes_used.get(node.name, 0)
        if wanted > node.max_workers:
            problems.append(
                f"node type {node.name}: the roles need {wanted} nodes of it, "
                f"max_workers is {node.max_workers}"
            )
    # Cluster-wide, each role counts once: on the candidate node type that needs the most nodes.
    total = sum(max(n.report.get("nodes", {}).values(), default=0) for n in (trainers, engines, scorers))
    if total > int(cluster.get("max_workers", total)):
        problems.append(
            f"cluster: the roles need {total} worker nodes, max_workers is {cluster['max_workers']}"
        )
    fits = not problems
    return {
        "fits": fits,
        "config": config.name,
        "roles": {n.role: n.report for n in (trainers, engines, scorers)},
        "problems": problems,
        "publish_bytes": publish,
        "publish_bucket_bytes": bucket,
        "publish_gib": gib(publish),
        "params": {"policy": policy.params, "reward_model": reward.reward_params},
        "nodes": {
            n.name: {
                "instance_type": n.instance_type,
                "gpus": n.gpus,
                "resources": n.resources,
                "object_store_gib": gib(n.object_store_bytes),
                "shm": n.shm_source,
                "nodes_needed": nodes_used.get(n.name, 0),
                "max_workers": n.max_workers,
            }
            for n in node_types
        },
        "notes": notes,
    }


def _place_role(
    need: RoleNeed,
    gpu_types: list[NodeType],
    config: Config,
    policy: Any,
    problems: list[str],
    notes: list[str],
    nodes_used: dict[str, int],
) -> None:
    """Check the role on every node type it may land on; the report keeps the tightest one's figures."""
    need.report.update(gpus=need.gpus, node_types=[])
    if need.gpus == 0:  # on CPU: nothing to place on GPU node types
        need.report["gpu_mem_gib"] = 0.0
        return
    if need.resource:
        pool = [n for n in gpu_types if n.resources.get(need.resource)]
        if not pool:
            problems.append(
                f"{need.role}: {need.setting} '{need.resource}' is a resource of no GPU node type "
                "of the cluster"
            )
            need.report["gpu_mem_gib"] = gib(need.gpu_bytes)
            return
    else:
        pool = gpu_types  # unpinned: any GPU node type that can hold the bundle may be started for it
    candidates = [n for n in pool if n.gpus >= need.gpus_per_actor]
    if not candidates:
        where = ", ".join(f"{n.name}: {n.gpus}" for n in pool) or "no GPU node types"
        problems.append(
            f"{need.role}: {need.gpus_per_actor:g} GPUs per actor must sit on one node; no node type for "
            f"{need.role} has that many ({where})"
        )
        need.report["gpu_mem_gib"] = gib(need.gpu_bytes)
        return
    by_type: dict[str, dict[str, Any]] = {}
    group = config.trainer.workers_per_node if need.role == "trainers" else None
    for node in candidates:
        per_node = max(1, int(node.gpus // need.gpus_per_actor))
        if group is not None:  # trainers in STRICT_PACK groups of workers_per_node, one group per node
            if group > per_node:
                problems.append(
                    f"trainers on node type {node.name} ({node.instance_type}): trainer.workers_per_node "
                    f"{group} exceeds its {node.gpus} GPUs"
                )
            per_node = min(group, per_node)
        nodes = math.ceil(need.actors / per_node)
        nodes_used[node.name] = nodes_used.get(node.name, 0) + nodes
        by_type[node.name] = _check_node(need, node, config, policy, problems) | {"nodes": nodes}
        if need.role == "trainers" and nodes > 1 and node.efa_configured < node.instance.efa_interfaces:
            notes.append(
                f"trainers span {nodes} nodes of {node.name} ({node.instance_type}) with "
                f"{node.efa_configured} of {node.instance.efa_interfaces} EFA interfaces configured"
            )
    tightest = min(by_type.values(), key=lambda figures: figures["headroom_gib"])
    need.report.update({k: v for k, v in tightest.items() if k != "nodes"})
    need.report.update(
        node_types=list(by_type),
        nodes={name: f["nodes"] for name, f in by_type.items()},
        by_node_type=by_type,
    )


def _check_node(
    need: RoleNeed, node: NodeType, config: Config, policy: Any, problems: list[str]
) -> dict[str, Any]:
    """Per-GPU memory, host memory per node and (where weights are published) the object store; returns
    the role's figures on this node type, with `headroom_gib` (negative: short)."""
    assert node.instance is not None
    label = f"{need.role} on node type {node.name} ({node.instance_type})"
    gpu_bytes = node.instance.gpu_gib * GIB
    if need.role == "engines":
        emem = engine_memory(policy, config, int(gpu_bytes))
        headroom = emem.kv_cache - emem.min_kv
        figures = {
            "gpu_mem_gib": gib(emem.budget),
            "model_states_gib": gib(emem.weights),
            "weights_gib": gib(emem.weights),
            "activations_gib": gib(emem.activations),
            "kv_cache_gib": gib(emem.kv_cache),
            "kv_needed_gib": gib(emem.min_kv),
            "concurrent_sequences": emem.concurrent_sequences,
        }
        if headroom < 0:
            g = config.generation
            problems.append(
                f"{label}: {gib(emem.weights)} GiB of weights per GPU (tensor_parallel_size "
                f"{g.tensor_parallel_size}) leave {gib(emem.kv_cache)} GiB of KV cache within "
                f"gpu_memory_utilization {g.gpu_memory_utilization:g}; one {g.max_model_len}-token sequence "
                f"needs {gib(emem.min_kv)} GiB; short by {gib(-headroom)} GiB"
            )
    else:
        usable = GPU_USABLE * gpu_bytes
        headroom = usable - need.gpu_bytes
        figures = {"gpu_mem_gib": gib(need.gpu_bytes)}
        if headroom < 0:
            problems.append(
                f"{label}: needs {gib(need.gpu_bytes)} GiB per GPU, {gib(usable)} GiB usable of "
                f"{node.instance.gpu_gib:g}; short by {gib(-headroom)} GiB"
            )
    actors_per_node = min(node.gpus // max(1, math.ceil(need.gpus_per_actor)), need.actors) or 1
    steady = actors_per_node * need.host_bytes_per_actor + need.host_bytes_fixed
    loading = actors_per_node * need.host_load_per_actor  # loading comes before the steady state
    host = max(steady, loading)
    host_usable = HOST_USABLE * node.instance.host_gib * GIB
    figures["host_gib_per_node"] = gib(host)
    if host > host_usable:
        when = "while loading" if loading > steady else "in steady state"
        problems.append(
            f"{label}: needs {gib(host)} GiB of host memory per node {when}, {gib(host_usable)} GiB usable "
            f"of {node.instance.host_gib:g}; short by {gib(host - host_usable)} GiB"
        )
    publish = publish_bytes(config, policy)
    if need.role in ("trainers", "engines"):  # rank 0 puts each publish; every engine node pulls a copy
        figures["object_store_gib"] = gib(node.object_store_bytes)
        if node.object_store_bytes < publish:
            problems.append(
                f"{label}: the object store is {gib(node.object_store_bytes)} GiB ({node.shm_source}), one "
                f"weight publish is {gib(publish)} GiB; short by {gib(publish - node.object_store_bytes)} GiB"
            )
    figures["headroom_gib"] = gib(headroom)
    return figures


def format_plan(plan: dict[str, Any]) -> list[str]:
    """Human-readable lines (the CLI prints the JSON after them)."""
    lines = [
        f"plan for {plan['config']}: policy {plan['params']['policy'] / 1e9:.2f}B params, "
        f"one weight publish {plan['publish_gib']} GiB in buckets of up to "
        f"{gib(plan['publish_bucket_bytes'])} GiB"
    ]
    for role, r in plan["roles"].items():
        where = ", ".join(f"{name} x{n}" for name, n in r.get("nodes", {}).items()) or "no GPU"
        skip = ("gpu_mem_gib", "headroom_gib", "host_gib_per_node", "object_store_gib")
        detail = {k: v for k, v in r.items() if k.endswith("_gib") and k not in skip}
        extra = ", ".join(f"{k[:-4]} {v}" for k, v in detail.items())
        lines.append(
            f"  {role}: {r.get('gpus', 0)} GPUs, {r.get('gpu_mem_gib', 0)} GiB per GPU ({extra}); "
            f"nodes: {where}"
        )
        for name, f in r.get("by_node_type", {}).items():
            lines.append(
                f"    on {name}: {f['gpu_mem_gib']} GiB per GPU, headroom {f['headroom_gib']} GiB, "
                f"host {f['host_gib_per_node']} GiB per node"
            )
    for name, n in plan["nodes"].items():
        lines.append(
            f"  node type {name} ({n['instance_type']}): object store {n['object_store_gib']} GiB "
            f"({n['shm']}), {n['nodes_needed']} of max {n['max_workers']} nodes"
        )
    lines += [f"  note: {note}" for note in plan["notes"]]
    lines += [f"  PROBLEM: {p}" for p in plan["problems"]]
    lines.append("fits" if plan["fits"] else f"does not fit: {len(plan['problems'])} problem(s)")
    return lines
