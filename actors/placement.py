"""Placement of the online roles (engines, scorers, trainers) from config.

`colocate` packs every role's bundle onto as few nodes as possible (on one GPU box, give each role a
fractional GPU so they share devices); `separate` spreads the bundles so roles get their own nodes.
The same code runs on one CPU box and on a cluster: only the numbers in the preset change.
"""

from __future__ import annotations

import os
from typing import Any

import ray
from ray.util.placement_group import placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from ultramedical.config import Config


def role_bundles(config: Config) -> dict[str, list[dict[str, float]]]:
    gen, reward, trainer = config.generation, config.reward, config.trainer

    def bundle(cpus: float, gpus: float) -> dict[str, float]:
        return {"CPU": cpus} | ({"GPU": gpus} if gpus else {})

    return {
        "engines": [bundle(gen.cpus_per_engine, gen.gpus_per_engine)] * gen.engines,
        "scorers": [bundle(reward.cpus_per_scorer, reward.gpus_per_scorer)] * reward.scorers,
        "trainers": [bundle(trainer.cpus_per_worker, 1.0 if trainer.use_gpu else 0.0)] * trainer.num_workers,
    }


def place_roles(config: Config, timeout_s: float = 300) -> tuple[Any, dict[str, list[dict[str, Any]]]]:
    """One placement group for all roles; returns it and, per role, the scheduling options of each actor."""
    roles = role_bundles(config)
    bundles = [b for role in roles.values() for b in role]
    strategy = "PACK" if config.online.placement == "colocate" else "SPREAD"
    if not os.environ.get("RAY_ADDRESS"):  # a local instance cannot grow: say so now rather than wait
        available = ray.cluster_resources()
        for resource in ("CPU", "GPU"):
            wanted = sum(b.get(resource, 0.0) for b in bundles)
            if wanted > available.get(resource, 0.0):
                raise RuntimeError(
                    f"the online roles need {wanted:g} {resource}, this Ray instance has "
                    f"{available.get(resource, 0.0):g}: lower generation.cpus_per_engine, "
                    "reward.cpus_per_scorer or trainer.cpus_per_worker (or the GPU counts) in the preset"
                )
    group = placement_group(bundles, strategy=strategy)
    ready, _ = ray.wait([group.ready()], timeout=timeout_s)
    if not ready:
        raise RuntimeError(
            f"the cluster cannot place the online roles {roles} ({strategy}) within {timeout_s:.0f}s: "
            "lower cpus/gpus per role in the preset or add nodes"
        )
    options: dict[str, list[dict[str, Any]]] = {}
    index = 0
    for role, role_list in roles.items():
        options[role] = []
        for _ in role_list:
            strategy_for = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)
            options[role].append({"scheduling_strategy": strategy_for})
            index += 1
    return group, options
