"""The arithmetic of placing the online roles: which placement groups, which bundles, which actor sits where.

Pure functions of the config (and, for the feasibility check, of the nodes' resources), so they are tested
without Ray. actors/placement.py turns a plan into placement groups and actor options.

`separate` (a cluster): every role has groups of its own. Trainers are packed, in groups of
`trainer.workers_per_node` that must each fit one node (STRICT_PACK), else in one group on as few nodes as
possible (PACK); each engine has its own group of `tensor_parallel_size` bundles on one node (vLLM's Ray
executor wants one GPU per bundle); the scorers share one group. `colocate` (one box): a single PACK group
holds every bundle, as one machine would.
"""

from __future__ import annotations

from dataclasses import dataclass

from ultramedical.config import Config

# A role's custom node resource, per bundle. A small amount is a label, not a capacity: the GPU counts
# decide how many bundles a node takes, and the resource only selects the node type. (cluster.yaml declares
# `generation: 8` on 4-GPU g5 nodes, and the trainer nodes host the scorer too, so 1 per bundle would either
# be meaningless or leave a trainer node one short of its 8 trainers plus a scorer.)
NODE_RESOURCE_PER_BUNDLE = 0.001

ROLES = ("engines", "scorers", "trainers")

# The settings that size each role's bundles: what an error tells the user to change.
ROLE_SETTINGS = {
    "engines": "generation.cpus_per_engine, generation.gpus_per_engine, generation.tensor_parallel_size, "
    "generation.node_resource",
    "scorers": "reward.cpus_per_scorer, reward.gpus_per_scorer, reward.node_resource",
    "trainers": "trainer.cpus_per_worker, trainer.use_gpu, trainer.workers_per_node, trainer.node_resource",
}

Bundle = dict[str, float]


@dataclass(frozen=True)
class GroupPlan:
    name: str  # "trainers", "trainers-1", "engine-0", "scorers" or "colocated"
    strategy: str  # a Ray placement strategy: STRICT_PACK or PACK
    bundles: list[Bundle]
    roles: tuple[str, ...]  # the role of each bundle (for messages)

    def settings(self) -> str:
        return "; ".join(ROLE_SETTINGS[r] for r in ROLES if r in self.roles)


@dataclass(frozen=True)
class Seat:
    """Where one actor goes: its group, and its bundles there. The actor sits on the first bundle; a
    tensor-parallel engine's vLLM workers take one bundle each."""

    group: int
    bundles: tuple[int, ...]


@dataclass(frozen=True)
class Plan:
    groups: list[GroupPlan]
    seats: dict[str, list[Seat]]  # per role, per actor


def _bundle(cpus: float, gpus: float, node_resource: str | None) -> Bundle:
    bundle = {"CPU": cpus} if cpus else {}
    if gpus:
        bundle["GPU"] = gpus
    if node_resource:
        bundle[node_resource] = NODE_RESOURCE_PER_BUNDLE
    return bundle


def role_bundles(config: Config) -> dict[str, list[list[Bundle]]]:
    """Per role, per actor: the bundles that actor needs (several for a tensor-parallel engine)."""
    gen, reward, trainer = config.generation, config.reward, config.trainer
    tp = gen.tensor_parallel_size
    if tp == 1:
        engine = [_bundle(gen.cpus_per_engine, gen.gpus_per_engine, gen.node_resource)]
    else:
        # The engine actor (scheduler, tokenizer, driver of the workers) takes the CPUs in bundle 0; vLLM's
        # workers ask for no CPU, only their GPU.
        engine = [_bundle(gen.cpus_per_engine, 1.0, gen.node_resource)]
        engine += [_bundle(0.0, 1.0, gen.node_resource) for _ in range(tp - 1)]
    scorer = [_bundle(reward.cpus_per_scorer, reward.gpus_per_scorer, reward.node_resource)]
    worker = [_bundle(trainer.cpus_per_worker, 1.0 if trainer.use_gpu else 0.0, trainer.node_resource)]
    return {
        "engines": [engine] * gen.engines,
        "scorers": [scorer] * reward.scorers,
        "trainers": [worker] * trainer.num_workers,
    }


def plan_roles(config: Config) -> Plan:
    per_role = role_bundles(config)
    if config.online.placement == "colocate":
        bundles: list[Bundle] = []
        owners: list[str] = []
        seats: dict[str, list[Seat]] = {}
        for role in ROLES:
            seats[role] = []
            for actor in per_role[role]:
                seats[role].append(Seat(0, tuple(range(len(bundles), len(bundles) + len(actor)))))
                bundles += actor
                owners += [role] * len(actor)
        return Plan([GroupPlan("colocated", "PACK", bundles, tuple(owners))], seats)

    groups: list[GroupPlan] = []
    seats = {role: [] for role in ROLES}
    for i, actor in enumerate(per_role["engines"]):
        seats["engines"].append(Seat(len(groups), tuple(range(len(actor)))))
        groups.append(GroupPlan(f"engine-{i}", "STRICT_PACK", actor, ("engines",) * len(actor)))
    seats["scorers"] = [Seat(len(groups), (i,)) for i in range(len(per_role["scorers"]))]
    scorers = [a[0] for a in per_role["scorers"]]
    groups.append(GroupPlan("scorers", "PACK", scorers, ("scorers",) * len(scorers)))
    workers = [a[0] for a in per_role["trainers"]]
    per_node = config.trainer.workers_per_node
    if per_node is None:
        seats["trainers"] = [Seat(len(groups), (r,)) for r in range(len(workers))]
        groups.append(GroupPlan("trainers", "PACK", workers, ("trainers",) * len(workers)))
    else:
        # Consecutive ranks share a node: rank r is bundle r % per_node of group r // per_node.
        chunks = [workers[i : i + per_node] for i in range(0, len(workers), per_node)]
        for c, chunk in enumerate(chunks):
            seats["trainers"] += [Seat(len(groups), (b,)) for b in range(len(chunk))]
            name = "trainers" if len(chunks) == 1 else f"trainers-{c}"
            groups.append(GroupPlan(name, "STRICT_PACK", chunk, ("trainers",) * len(chunk)))
    return Plan(groups, seats)


def _total(bundles: list[Bundle]) -> Bundle:
    total: Bundle = {}
    for bundle in bundles:
        for key, value in bundle.items():
            total[key] = total.get(key, 0.0) + value
    return total


def _fits(need: Bundle, have: Bundle) -> bool:
    return all(have.get(key, 0.0) >= value - 1e-9 for key, value in need.items())


def show_resources(resources: Bundle) -> str:
    return "{" + ", ".join(f"{key}: {value:g}" for key, value in sorted(resources.items())) + "}"


def unplaceable(plan: Plan, nodes: dict[str, Bundle]) -> list[str]:
    """Why `plan` can never be placed on these nodes (their total resources), one line per problem; empty
    when it can as far as totals show. A cluster that cannot grow should fail with these at once."""
    problems = []
    owned = [(role, b) for group in plan.groups for role, b in zip(group.roles, group.bundles, strict=True)]
    cluster = _total(list(nodes.values()))
    for key, wanted in sorted(_total([b for _, b in owned]).items()):
        if wanted > cluster.get(key, 0.0) + 1e-9:
            roles = [r for r in ROLES if any(role == r and key in b for role, b in owned)]
            problems.append(
                f"the online roles need {wanted:g} {key}, this Ray instance has {cluster.get(key, 0.0):g}: "
                f"lower {'; '.join(ROLE_SETTINGS[r] for r in roles)} in the preset, or add nodes"
            )
    for group in plan.groups:
        for bundle in group.bundles:
            if not any(_fits(bundle, have) for have in nodes.values()):
                shown = show_resources(bundle)
                problems.append(f"{group.name}: no node has {shown} (see {group.settings()})")
                break
        need = _total(group.bundles)
        if group.strategy == "STRICT_PACK" and not any(_fits(need, have) for have in nodes.values()):
            problems.append(
                f"{group.name} needs {show_resources(need)} on one node, and no node has that "
                f"(see {group.settings()})"
            )
    return problems
