"""The llama3-8b preset's online roles on a multi-node Ray cluster simulated on loopback.

Five Ray nodes run on this machine (ray.cluster_utils.Cluster): a head without GPUs, two nodes of the
engine type and two of the trainer type, with logical GPUs and cluster.yaml's custom resources. The preset is
scaled down to the tiny model (2 trainers, 1 engine of tensor parallel size 2, 1 scorer) and placed by the
real placement code; `online.simulate_gpus` is the only difference from a real run: the bundles hold the
GPUs while the work runs on CPU. Then a round: generate on the engine, score, pair, train, publish from the
trainer node, install on the engine node, and compare greedy output with transformers.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import ray
import torch
from ray.cluster_utils import Cluster
from ray.util import placement_group_table
from tiny_support import REPO_ROOT, SUITE_OVERRIDES

import actors.placement as placement_module
from actors.cluster import without_dashboard
from actors.generation import GenerationPool
from actors.placement import place_roles, roles_config
from actors.reward_scorer import ScorerPool
from actors.round_tasks import assemble_round
from actors.trainer_group import TrainerGroup
from actors.weight_publish import publish_weights
from ultramedical.config import Config, load_config
from ultramedical.data.loading import load_records
from ultramedical.generation.engine import Sampling
from ultramedical.generation.items import instruction_items
from ultramedical.models.loading import load_policy, load_tokenizer

pytestmark = pytest.mark.slow

# Two nodes of each GPU type, so "on one node" can fail: a SPREAD group would scatter across them.
ENGINE_NODE = {"num_cpus": 2, "num_gpus": 2, "resources": {"generation": 8}}
TRAINER_NODE = {"num_cpus": 2, "num_gpus": 2, "resources": {"trainer": 8}}
PROMPTS, K = 8, 2


@dataclass
class Nodes:
    cluster: Cluster
    engine: list[str]
    trainer: list[str]


@pytest.fixture(scope="module")
def nodes() -> Iterator[Nodes]:
    # The suite's single-node instance (conftest's ray_cluster) may be up in this process: this module needs
    # the driver on its own cluster, and gives the instance back as it was.
    restore_cpus = int(ray.cluster_resources().get("CPU", 0)) if ray.is_initialized() else None
    ray.shutdown()
    # Its own RAY_TMPDIR, so its address file never redirects another test's `ray.init()` to this cluster.
    ray_tmp = tempfile.mkdtemp(prefix="raymn")  # short: Ray's socket paths live under it
    patch = pytest.MonkeyPatch()
    patch.setenv("RAY_TMPDIR", ray_tmp)
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0, **without_dashboard()}
    )
    try:
        engine = [cluster.add_node(**ENGINE_NODE).node_id for _ in range(2)]
        trainer = [cluster.add_node(**TRAINER_NODE).node_id for _ in range(2)]
        cluster.wait_for_nodes()
        cluster.connect()
        yield Nodes(cluster, engine, trainer)
    finally:
        ray.shutdown()
        cluster.shutdown()
        patch.undo()
        shutil.rmtree(ray_tmp, ignore_errors=True)
        if restore_cpus is not None:
            ray.init(address="local", num_cpus=restore_cpus, log_to_driver=True, **without_dashboard())


def preset_8b(artifacts: Path, runs_root: Path, **overrides: object) -> Config:
    """configs/llama3-8b.yaml on the tiny model: the same roles, placement and node types, fewer and
    smaller actors."""
    tiny = artifacts / "tiny"
    scaled = {
        "runs_root": str(runs_root),
        "artifacts_dir": str(artifacts),
        "model.policy": str(tiny / "policy"),
        "model.reward_model": str(tiny / "reward"),
        "model.max_seq_len": 256,
        "model.dtype": "auto",
        "model.gradient_checkpointing": False,
        "trainer.num_workers": 2,
        "trainer.workers_per_node": 2,
        "trainer.node_resource": "trainer",
        "trainer.cpus_per_worker": 0.5,
        "trainer.zero_stage": 3,  # the preset's: the weights are gathered bucket by bucket to publish
        "online.publish_bucket_mb": 1,  # every decoder layer its own bucket
        "trainer.micro_batch_size": 2,
        "trainer.grad_accum_steps": 1,
        "generation.engines": 1,
        "generation.tensor_parallel_size": 2,
        "generation.gpus_per_engine": 2,
        "generation.node_resource": "generation",
        "generation.cpus_per_engine": 1,
        "generation.max_model_len": 512,
        "generation.max_num_seqs": 32,
        "generation.enforce_eager": True,
        "generation.gpu_memory_utilization": 0.3,  # of host RAM on CPU
        "reward.node_resource": "trainer",
        "reward.cpus_per_scorer": 0.5,
        "reward.max_length": 256,
        "online.completions_per_prompt": K,
        "online.simulate_gpus": True,
        "dpo.lr": 5e-3,
        **SUITE_OVERRIDES,
    }
    return load_config(REPO_ROOT / "configs" / "llama3-8b.yaml", scaled | overrides)


def node_of(actor: ray.actor.ActorHandle) -> str:
    return ray.get(actor.__ray_call__.remote(lambda _: ray.get_runtime_context().get_node_id()))


def created_groups() -> set[str]:
    return set(placement_group_table())


def test_unplaceable_trainers_fail_at_once_here_and_after_the_timeout_on_an_autoscaler(
    nodes, artifacts, tmp_path, monkeypatch, capsys
):
    """3 trainers on one node never fit these 2-GPU trainer nodes."""
    config = preset_8b(
        artifacts,
        tmp_path,
        **{"trainer.num_workers": 3, "trainer.workers_per_node": 3, "online.placement_timeout_s": 3},
    )
    before = created_groups()
    monkeypatch.delenv("RAY_ADDRESS", raising=False)  # a fixed cluster: nothing can come
    needs = r"trainers needs \{CPU: 1.5, GPU: 3, trainer: 0.003\} on one node"
    with pytest.raises(RuntimeError, match=needs):
        place_roles(config)
    assert created_groups() == before

    # With RAY_ADDRESS (an autoscaling cluster) nodes might still come: it waits, saying what is pending.
    monkeypatch.setenv("RAY_ADDRESS", nodes.cluster.address)
    monkeypatch.setattr(placement_module, "PROGRESS_EVERY_S", 1.0)
    pending = r"trainers \(3 bundles of \{CPU: 0.5, GPU: 1, trainer: 0.001\}, STRICT_PACK\)"
    with pytest.raises(RuntimeError, match=rf"could not place {pending} within online.placement_timeout_s=3"):
        place_roles(config)
    out = capsys.readouterr().out
    assert "of 3s: waiting for trainers (3 bundles of {CPU: 0.5, GPU: 1, trainer: 0.001}" in out
    table = placement_group_table()
    assert {table[g]["state"] for g in created_groups() - before} == {"REMOVED"}


def prompt_items(artifacts: Path, count: int) -> list[dict]:
    path = artifacts / "data" / "instructions.jsonl"
    records = load_records(path, "instruction", max_records=count).records
    return instruction_items(load_tokenizer(artifacts / "tiny" / "policy"), records)


def greedy(pool: GenerationPool, items: list[dict]) -> list[list[int]]:
    refs, _ = pool.generate(items, Sampling(n=1, temperature=0.0, max_tokens=16))
    return [item["completions"][0]["token_ids"] for batch in ray.get(refs) for item in batch]


def test_roles_on_their_node_types_and_a_round_publishes_across_nodes(nodes, artifacts, tmp_path):
    config = preset_8b(artifacts, tmp_path)
    placement = place_roles(config)
    run = roles_config(config)
    policy = str(artifacts / "tiny" / "policy")
    pool = scorers = trainers = None
    try:
        pool = GenerationPool(policy, run.generation, 0, placement.options["engines"], wait=False)
        reward_model = str(artifacts / "tiny" / "reward")
        scorers = ScorerPool(reward_model, run.reward, placement.options["scorers"], wait=False)
        trainers = TrainerGroup(run, policy, policy, placement.options["trainers"], wait=False)
        ray.get(pool.starting + scorers.starting + trainers.starting)

        # Each role on its node type; the trainers on one node; the engine's two tensor-parallel workers
        # (vLLM's Ray actors, one per 1-GPU bundle) on its node.
        trainer_nodes = {node_of(worker) for worker in trainers.workers}
        assert len(trainer_nodes) == 1 and trainer_nodes <= set(nodes.trainer)
        (trainer_node,) = trainer_nodes
        assert node_of(scorers.scorers[0]) in nodes.trainer
        engine_node = node_of(pool.engines[0])
        assert engine_node in nodes.engine and engine_node != trainer_node
        workers = ray.get(
            pool.engines[0].__ray_call__.remote(
                lambda engine: engine.llm.collective_rpc(lambda _: ray.get_runtime_context().get_node_id())
            )
        )
        assert workers == [engine_node, engine_node]
        engine_group = placement.groups[0]  # the plan lists the engines' groups first
        assert set(placement_group_table(engine_group)["bundles_to_node_id"].values()) == {engine_node}

        # A round: generate on the engine node, score and train on the trainer nodes.
        items = prompt_items(artifacts, PROMPTS)
        completions, stats = pool.generate(items, Sampling(n=K, temperature=1.0, max_tokens=24, seed=1))
        assert stats.prompts == PROMPTS
        scored, _ = scorers.score(completions)
        summary, pairs = assemble_round.remote(run.online, 1, *scored)
        assert ray.get(summary).pairs > 0
        assert trainers.train(1, pairs).train_examples > 0

        # Weights put on the trainer node reach the engine node through the object store.
        before = greedy(pool, items[:4])
        published = publish_weights(trainers, pool)
        after = greedy(pool, items[:4])
        assert published.buckets >= 4
        assert after != before
        trainers.save(str(tmp_path / "published"), policy)
        model = load_policy(tmp_path / "published").eval()
        for item, tokens in zip(items[:4], after, strict=True):
            prompt = torch.tensor([item["prompt_token_ids"]])
            out = model.generate(prompt, max_new_tokens=16, do_sample=False)[0, prompt.shape[1] :].tolist()
            assert out[: len(tokens)] == tokens
    finally:
        for role in (pool, scorers, trainers):
            if role is not None:
                role.shutdown()
        placement.remove()
