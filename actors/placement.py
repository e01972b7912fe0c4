"""Placement of the online roles (engines, scorers, trainers): placement groups from the plan of
actors/placement_plan.py, and the Ray options that put each actor on its bundles.

The same code runs on one CPU box and on a cluster: only the numbers in the preset change. On a cluster
that autoscales (RAY_ADDRESS set) the groups wait up to `online.placement_timeout_s` for nodes to start,
saying every PROGRESS_EVERY_S which groups are still pending; a local instance that can never hold the
roles fails at once, naming the settings to change.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from actors.placement_plan import Plan, Seat, plan_roles, show_resources, unplaceable
from ultramedical.config import Config

PROGRESS_EVERY_S = 30.0

# A tensor-parallel engine's actor holds this share of the GPU in bundle 0 (so Ray schedules it next to its
# workers, on a GPU node); vLLM's worker in that bundle takes the rest (VLLM_RAY_PER_WORKER_GPUS).
ENGINE_DRIVER_GPU = 0.1

# Run in every process of a simulated tensor-parallel engine (the engine actor and vLLM's workers).
SIMULATED_GPU_HOOK = "ultramedical.generation.engine.serve_logical_gpus"


@dataclass
class Placement:
    groups: list[PlacementGroup]
    options: dict[str, list[dict[str, Any]]]  # per role, per actor: Ray actor options

    def remove(self) -> None:
        for group in self.groups:
            remove_placement_group(group)


def roles_config(config: Config) -> Config:
    """The config the roles run with. Under online.simulate_gpus the trainers run on CPU (gloo, fp32)
    while their bundles still hold the GPUs; engines and scorers on a machine without CUDA run on CPU
    anyway."""
    if not config.online.simulate_gpus:
        return config
    run = config.model_copy(deep=True)
    run.trainer.use_gpu = False
    return run


def engine_options(config: Config, group: PlacementGroup, seat: Seat) -> dict[str, Any]:
    """An engine actor's options. With tensor parallelism the actor takes a share of bundle 0's GPU and
    vLLM's Ray executor (which finds this group as the actor's own) puts one worker on each 1-GPU bundle."""
    gen = config.generation
    if gen.tensor_parallel_size == 1:
        return {"scheduling_strategy": PlacementGroupSchedulingStrategy(group, seat.bundles[0])}
    runtime_env: dict[str, Any] = {
        "env_vars": {
            "VLLM_RAY_BUNDLE_INDICES": ",".join(map(str, seat.bundles)),
            "VLLM_RAY_PER_WORKER_GPUS": str(1.0 - ENGINE_DRIVER_GPU),
        }
    }
    if config.online.simulate_gpus:
        # A Ray worker process runs the hook this variable names when it starts. (The documented
        # `worker_process_setup_hook` option works only job-wide, in ray.init.) vLLM gives its workers the
        # engine actor's runtime env, so the hook runs in each of them too.
        runtime_env["env_vars"][WORKER_PROCESS_SETUP_HOOK_ENV_VAR] = SIMULATED_GPU_HOOK
    return {
        "num_gpus": ENGINE_DRIVER_GPU,
        "scheduling_strategy": PlacementGroupSchedulingStrategy(
            group, seat.bundles[0], placement_group_capture_child_tasks=True
        ),
        "runtime_env": runtime_env,
    }


def _nodes() -> dict[str, dict[str, float]]:
    return {node["NodeID"]: node["Resources"] for node in ray.nodes() if node["Alive"]}


def _wait(plan: Plan, groups: list[PlacementGroup], timeout_s: float) -> None:
    """Wait for every group; a progress line every PROGRESS_EVERY_S naming the pending ones."""
    pending = {group.ready(): i for i, group in enumerate(groups)}
    start = time.monotonic()
    while pending:
        waited = time.monotonic() - start
        if waited >= timeout_s:
            names = ", ".join(_describe(plan, pending[ref]) for ref in pending)
            raise RuntimeError(
                f"the cluster could not place {names} within online.placement_timeout_s="
                f"{timeout_s:g}s: add nodes of that type, or lower the role's settings in the preset"
            )
        ready, _ = ray.wait(
            list(pending), num_returns=len(pending), timeout=min(PROGRESS_EVERY_S, timeout_s - waited)
        )
        for ref in ready:
            del pending[ref]
        if pending:
            names = ", ".join(_describe(plan, pending[ref]) for ref in pending)
            print(
                f"[placement] {time.monotonic() - start:.0f}s of {timeout_s:g}s: waiting for {names}",
                flush=True,
            )


def _describe(plan: Plan, index: int) -> str:
    group = plan.groups[index]
    shapes = sorted({show_resources(b) for b in group.bundles})
    return f"{group.name} ({len(group.bundles)} bundles of {' or '.join(shapes)}, {group.strategy})"


def place_roles(config: Config) -> Placement:
    """Placement groups for the online roles (see actors/placement_plan.py), ready; and, per role, the
    options of each actor. Trainers and scorers get a scheduling strategy only (their pools set their own
    CPUs and GPUs); engines get complete options (engine_options)."""
    plan = plan_roles(config)
    if not os.environ.get("RAY_ADDRESS"):  # a local instance cannot grow: say so now rather than wait
        problems = unplaceable(plan, _nodes())
        if problems:
            raise RuntimeError("; ".join(problems))
    groups = [placement_group(g.bundles, strategy=g.strategy) for g in plan.groups]
    try:
        _wait(plan, groups, config.online.placement_timeout_s)
    except BaseException:
        for group in groups:
            remove_placement_group(group)
        raise
    options: dict[str, list[dict[str, Any]]] = {}
    for role, seats in plan.seats.items():
        if role == "engines":
            options[role] = [engine_options(config, groups[s.group], s) for s in seats]
        else:
            options[role] = [
                {"scheduling_strategy": PlacementGroupSchedulingStrategy(groups[s.group], s.bundles[0])}
                for s in seats
            ]
    return Placement(groups, options)
