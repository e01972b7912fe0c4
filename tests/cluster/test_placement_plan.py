"""The arithmetic of placing the online roles (actors/placement_plan.py), without Ray: the groups, bundles
and seats each preset asks for, and the reasons a fixed cluster can never hold them."""

from __future__ import annotations

import pytest
from tiny_support import REPO_ROOT

from actors.placement import roles_config
from actors.placement_plan import NODE_RESOURCE_PER_BUNDLE, Seat, plan_roles, unplaceable
from ultramedical.config import ConfigError, load_config

PINNED = {
    "generation.node_resource": "generation",
    "trainer.node_resource": "trainer",
    "reward.node_resource": "trainer",
    "trainer.workers_per_node": 8,
}
LABEL = NODE_RESOURCE_PER_BUNDLE
# The 8B preset's role sizes, fixed here so that tuning the preset does not change these tests.
SIZES_8B = {
    **{"generation.engines": 2, "generation.tensor_parallel_size": 1, "generation.gpus_per_engine": 1},
    **{"generation.cpus_per_engine": 4, "reward.scorers": 1, "reward.cpus_per_scorer": 4},
    **{"reward.gpus_per_scorer": 1, "trainer.num_workers": 8, "trainer.cpus_per_worker": 8},
}


def preset(name: str, **overrides):
    return load_config(REPO_ROOT / "configs" / f"{name}.yaml", overrides)


def test_tiny_default_is_one_packed_group_in_the_old_order():
    tiny = {"generation.cpus_per_engine": 0.5, "reward.scorers": 2, "reward.cpus_per_scorer": 0.25}
    plan = plan_roles(preset("tiny-cpu", **tiny, **{"trainer.cpus_per_worker": 0.5}))
    assert [(g.name, g.strategy) for g in plan.groups] == [("colocated", "PACK")]
    assert plan.groups[0].bundles == [{"CPU": 0.5}] + [{"CPU": 0.25}] * 2 + [{"CPU": 0.5}] * 2
    assert plan.seats == {
        "engines": [Seat(0, (0,))],
        "scorers": [Seat(0, (1,)), Seat(0, (2,))],
        "trainers": [Seat(0, (3,)), Seat(0, (4,))],
    }


def test_8b_separate_gives_each_role_its_own_pinned_groups():
    plan = plan_roles(preset("llama3-8b", **PINNED, **SIZES_8B))
    shapes = {g.name: (g.strategy, g.bundles) for g in plan.groups}
    engine = {"CPU": 4, "GPU": 1, "generation": LABEL}
    assert shapes == {
        "engine-0": ("STRICT_PACK", [engine]),
        "engine-1": ("STRICT_PACK", [engine]),
        "scorers": ("PACK", [{"CPU": 4, "GPU": 1, "trainer": LABEL}]),
        "trainers": ("STRICT_PACK", [{"CPU": 8, "GPU": 1, "trainer": LABEL}] * 8),
    }
    names = [g.name for g in plan.groups]
    assert [s.group for s in plan.seats["engines"]] == [names.index("engine-0"), names.index("engine-1")]
    assert plan.seats["trainers"] == [Seat(names.index("trainers"), (r,)) for r in range(8)]


def test_70b_tensor_parallel_engines_and_trainers_by_node():
    config = preset("llama3-70b", **PINNED)
    tp = config.generation.tensor_parallel_size
    assert tp > 1
    plan = plan_roles(config)
    names = [g.name for g in plan.groups]
    engine = plan.groups[names.index("engine-1")]
    # One 1-GPU bundle per tensor-parallel worker, on one node; the engine actor's CPUs in bundle 0.
    assert engine.strategy == "STRICT_PACK"
    cpus = config.generation.cpus_per_engine
    first, rest = {"CPU": cpus, "GPU": 1, "generation": LABEL}, {"GPU": 1, "generation": LABEL}
    assert engine.bundles == [first] + [rest] * (tp - 1)
    assert plan.seats["engines"][1] == Seat(names.index("engine-1"), tuple(range(tp)))
    # 32 ranks in 4 node-sized groups; consecutive ranks share a node.
    trainer_groups = [g for g in plan.groups if g.name.startswith("trainers")]
    assert [(g.name, g.strategy, len(g.bundles)) for g in trainer_groups] == [
        (f"trainers-{i}", "STRICT_PACK", 8) for i in range(4)
    ]
    assert plan.seats["trainers"][9] == Seat(names.index("trainers-1"), (1,))


def test_trainers_without_a_node_size_are_packed_loosely():
    unpinned = {"trainer.workers_per_node": None, "trainer.node_resource": None}
    plan = plan_roles(preset("llama3-8b", **SIZES_8B, **unpinned))
    trainers = [g for g in plan.groups if g.name == "trainers"]
    assert [(g.strategy, len(g.bundles)) for g in trainers] == [("PACK", 8)]
    assert all("trainer" not in b for g in plan.groups for b in g.bundles)  # no node resource asked


def test_colocated_tensor_parallel_engine_takes_consecutive_bundles():
    tensor_parallel = {"generation.tensor_parallel_size": 2, "generation.gpus_per_engine": 2}
    config = preset("tiny-cpu", **{"generation.engines": 2, **tensor_parallel})
    plan = plan_roles(config)
    assert plan.seats["engines"] == [Seat(0, (0, 1)), Seat(0, (2, 3))]
    assert plan.seats["scorers"][0] == Seat(0, (4,))
    assert plan.groups[0].bundles[:4] == [{"CPU": 0.5, "GPU": 1}, {"GPU": 1}] * 2


def test_tensor_parallel_engine_needs_one_gpu_per_worker():
    with pytest.raises(ConfigError, match="gpus_per_engine must equal generation.tensor_parallel_size"):
        preset("tiny-cpu", **{"generation.tensor_parallel_size": 2, "generation.gpus_per_engine": 1})


def nodes(*shapes: dict) -> dict[str, dict]:
    return {f"node-{i}": shape for i, shape in enumerate(shapes)}


def test_unplaceable_names_the_role_and_its_settings():
    plan = plan_roles(preset("llama3-8b", **PINNED, **SIZES_8B))
    head = {"CPU": 16}
    engine_node = {"CPU": 48, "GPU": 4, "generation": 8}
    trainer_node = {"CPU": 96, "GPU": 8, "trainer": 8}
    assert unplaceable(plan, nodes(head, engine_node, trainer_node, trainer_node)) == []

    # 11 GPUs wanted (2 engines, 1 scorer, 8 trainers), 8 there.
    four = {"CPU": 96, "GPU": 4, "trainer": 8}
    short = unplaceable(plan, nodes(head, engine_node, four))
    assert short[0].startswith("the online roles need 11 GPU, this Ray instance has 8: lower generation.")
    assert "reward.gpus_per_scorer" in short[0] and "trainer.use_gpu" in short[0]

    # Trainer nodes of 4 GPUs: the STRICT_PACK group of 8 never fits one node.
    (problem,) = unplaceable(plan, nodes(head, engine_node, four, four, four))
    assert problem.startswith("trainers needs") and "on one node" in problem
    assert "trainer.workers_per_node" in problem

    # No node of the engine type at all.
    problems = unplaceable(plan, nodes(head, trainer_node, trainer_node))
    assert any("need 0.002 generation" in p and "generation.node_resource" in p for p in problems)
    assert any(p.startswith("engine-0: no node has") for p in problems)


def test_simulated_gpus_run_trainers_on_cpu_but_keep_their_gpu_bundles():
    config = preset("llama3-8b", **PINNED, **{"online.simulate_gpus": True})
    run = roles_config(config)
    assert run.trainer.use_gpu is False and config.trainer.use_gpu is True
    assert all(b["GPU"] == 1 for g in plan_roles(config).groups for b in g.bundles)
    assert roles_config(preset("llama3-8b")).trainer.use_gpu is True
