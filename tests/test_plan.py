"""`ultramedical plan`: model shapes, memory against DeepSpeed's own estimators, the verdict on the shipped
presets and cluster.yaml, and clear failures for configurations that cannot fit."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ultramedical.config import load_config
from ultramedical.planning import make_plan, resolve_shape
from ultramedical.planning.architecture import KNOWN_MODELS, ArchitectureError
from ultramedical.planning.memory import trainer_memory

REPO_ROOT = Path(__file__).resolve().parents[1]
CLUSTER = REPO_ROOT / "cluster.yaml"
PRESET_8B = REPO_ROOT / "configs" / "llama3-8b.yaml"
PRESET_70B = REPO_ROOT / "configs" / "llama3-70b.yaml"
LLAMA_8B = "meta-llama/Meta-Llama-3-8B-Instruct"
LLAMA_70B = "meta-llama/Meta-Llama-3-70B-Instruct"


def hf_config(shape) -> dict:
    return {
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.hidden_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "intermediate_size": shape.intermediate_size,
        "tie_word_embeddings": shape.tie_embeddings,
    }


def test_parameter_counts_match_transformers_models_built_on_the_meta_device():
    import torch
    from deepspeed.runtime.zero.stage3 import model_to_params
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    shape = resolve_shape(LLAMA_8B)
    config = LlamaConfig(**hf_config(shape), num_labels=1, pad_token_id=0)
    with torch.device("meta"):
        lm, rm = LlamaForCausalLM(config), LlamaForSequenceClassification(config)
    _, largest = model_to_params(lm)  # DeepSpeed's own largest layer (its total needs real storage)
    assert shape.params == sum(p.numel() for p in lm.parameters())
    assert shape.largest_layer_params == largest
    assert shape.reward_params == sum(p.numel() for p in rm.parameters())
    # The published sizes the presets rely on: 8.03B and 70.6B parameters.
    assert round(shape.params / 1e9, 2) == 8.03
    assert round(resolve_shape(LLAMA_70B).params / 1e9, 1) == 70.6


@pytest.mark.parametrize(
    ("model", "stage", "offload_optimizer", "offload_params", "gpus"),
    [
        (LLAMA_8B, 2, False, False, 8),
        (LLAMA_8B, 2, True, False, 16),
        (LLAMA_8B, 3, False, False, 8),
        (LLAMA_8B, 3, True, False, 16),
        (LLAMA_70B, 2, False, False, 16),
        (LLAMA_70B, 3, True, False, 8),
        (LLAMA_70B, 3, True, True, 16),
        (LLAMA_70B, 3, False, False, 16),
    ],
)
def test_model_states_agree_with_deepspeed_estimators(model, stage, offload_optimizer, offload_params, gpus):
    from ultramedical.training.deepspeed_setup import prepare_deepspeed_environment

    prepare_deepspeed_environment(use_gpu=False)  # DeepSpeed picks its accelerator at import
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    config = load_config(
        PRESET_8B,
        {
            "model.policy": model,
            "trainer.zero_stage": stage,
            "trainer.offload_optimizer": offload_optimizer,
            "trainer.offload_params": offload_params,
            "trainer.num_workers": gpus,
        },
    )
    shape = resolve_shape(model)
    ours = trainer_memory(shape, config, online_reference=False).model_states
    nodes, per_node = gpus // 8, 8
    if stage == 2:
        _, theirs = estimate_zero2_model_states_mem_needs(
            shape.params, num_gpus_per_node=per_node, num_nodes=nodes, cpu_offload=offload_optimizer
        )
    else:
        _, theirs, _ = estimate_zero3_model_states_mem_needs(
            shape.params,
            shape.largest_layer_params,
            num_gpus_per_node=per_node,
            num_nodes=nodes,
            cpu_offload=offload_optimizer,
            cpu_offload_params=offload_params,
        )
    assert abs(ours - theirs) <= 0.15 * theirs, (ours / 2**30, theirs / 2**30)


def test_the_reference_is_sharded_under_zero3_and_whole_below_it():
    config = load_config(PRESET_8B, {"trainer.zero_stage": 3})
    shape = resolve_shape(config.model.policy)
    sharded = trainer_memory(shape, config, online_reference=True).reference
    whole = trainer_memory(shape, load_config(PRESET_8B, {"trainer.zero_stage": 2}), True).reference
    assert whole == 2 * shape.params and sharded == whole // config.trainer.num_workers
    assert trainer_memory(shape, config, online_reference=False).reference == 0


@pytest.mark.parametrize("preset", [PRESET_8B, PRESET_70B])
def test_the_shipped_presets_fit_the_shipped_cluster(preset):
    config = load_config(preset)
    plan = make_plan(config, CLUSTER)
    assert plan["problems"] == [] and plan["fits"] is True
    roles = plan["roles"]
    gen = config.generation
    assert roles["trainers"]["gpus"] == config.trainer.num_workers
    assert roles["engines"]["gpus"] == gen.engines * gen.tensor_parallel_size
    assert roles["scorers"]["gpus"] == config.reward.scorers
    assert plan["publish_bytes"] == 2 * resolve_shape(config.model.policy).params  # bf16 weights
    for role in roles.values():
        assert role["node_types"] and role["headroom_gib"] > 0
    assert not plan["notes"]  # e.g. trainers spanning nodes without EFA would be noted here


def test_70b_engines_land_only_on_80gb_nodes_with_room_for_the_kv_cache():
    plan = make_plan(load_config(PRESET_70B), CLUSTER)
    nodes = yaml.safe_load(CLUSTER.read_text())["available_node_types"]
    engines = plan["roles"]["engines"]
    for name in engines["node_types"]:
        assert nodes[name]["node_config"]["InstanceType"] in ("p4de.24xlarge", "p5.48xlarge", "p5e.48xlarge")
    assert engines["kv_cache_gib"] > engines["kv_needed_gib"] and engines["concurrent_sequences"] >= 1
    assert plan["roles"]["scorers"]["model"] == LLAMA_8B  # the 8B reward model of rm.init_from


def run_cli(*args: str) -> tuple[int, list[str], dict]:
    result = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "plan", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr
    return result.returncode, lines, json.loads(lines[-1])


def test_cli_passes_the_8b_preset_and_ends_with_json():
    code, lines, plan = run_cli("--config", str(PRESET_8B), "--cluster", str(CLUSTER))
    assert code == 0 and plan["fits"] is True
    assert set(plan["roles"]) == {"trainers", "engines", "scorers"}
    assert all({"gpus", "gpu_mem_gib", "model_states_gib"} <= set(r) for r in plan["roles"].values())
    assert any(line.strip().startswith("trainers:") for line in lines[:-1])


def test_cli_fails_70b_without_zero_naming_role_node_type_and_shortfall():
    code, lines, plan = run_cli(
        "--config", str(PRESET_70B), "--trainer.zero_stage", "0", "--trainer.offload_optimizer", "false"
    )
    assert code == 1 and plan["fits"] is False
    [problem] = plan["problems"]
    assert problem.startswith("trainers on node type trainer_gpu (p5.48xlarge)") and "short by" in problem
    shortfall = float(problem.rsplit("short by ", 1)[1].split()[0])
    assert shortfall > 1000  # 20 bytes per parameter on every GPU: 1.3 TiB of model states alone
    assert any("PROBLEM: trainers" in line for line in lines[:-1])


def write_cluster(tmp_path: Path, change) -> Path:
    cluster = yaml.safe_load(CLUSTER.read_text())
    change(cluster)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(cluster))
    return path


def test_70b_engines_at_tp4_on_24gb_gpus_are_named_with_their_shortfall(tmp_path):
    def old_generation_nodes(cluster):
        nodes = cluster["available_node_types"]
        nodes["generation_small"]["node_config"]["InstanceType"] = "g5.12xlarge"
        del nodes["generation_large"]

    tp4 = ["--generation.tensor_parallel_size", "4", "--generation.gpus_per_engine", "4"]
    config = load_config(PRESET_70B, tp4)
    plan = make_plan(config, write_cluster(tmp_path, old_generation_nodes))
    assert plan["fits"] is False
    [problem] = [p for p in plan["problems"] if "KV cache" in p]
    per_gpu = round(2 * resolve_shape(LLAMA_70B).params / 4 / 2**30, 2)  # bf16 weights over 4 GPUs
    assert problem.startswith(
        f"engines on node type generation_small (g5.12xlarge): {per_gpu} GiB of weights"
    )
    assert "short by" in problem


def test_a_small_object_store_and_an_unknown_instance_type_are_problems(tmp_path):
    def shrink(cluster):
        nodes = cluster["available_node_types"]
        nodes["trainer_gpu"]["docker"]["worker_run_options"][0] = "--shm-size=32g"
        nodes["generation_small"]["node_config"]["InstanceType"] = "x9.huge"

    plan = make_plan(load_config(PRESET_70B), write_cluster(tmp_path, shrink))
    problems = "\n".join(plan["problems"])
    store = round(0.95 * 32, 2)  # Ray caps the object store at 95% of /dev/shm
    assert f"trainers on node type trainer_gpu (p5.48xlarge): the object store is {store} GiB" in problems
    assert "--shm-size=32g" in problems
    assert "node type generation_small: unknown instance type 'x9.huge'" in problems
    assert plan["fits"] is False


def test_loading_takes_a_partition_per_rank_under_zero3_and_a_whole_model_below_it():
    shape = resolve_shape(LLAMA_70B)
    for stage, expected in ((3, 2 * shape.params // 32), (2, 2 * shape.params), (0, 2 * shape.params)):
        overrides = {"trainer.zero_stage": stage, "trainer.offload_optimizer": stage > 0}
        memory = trainer_memory(shape, load_config(PRESET_70B, overrides), online_reference=True)
        assert memory.host_load_per_rank == expected, stage


def p4de_trainers(cluster: dict) -> None:
    """Trainers on p4de.24xlarge: 8 x A100-80GB, but 1152 GiB of host memory instead of p5's 2048."""
    cluster["available_node_types"]["trainer_gpu"]["node_config"]["InstanceType"] = "p4de.24xlarge"


def test_70b_at_zero3_loads_partitioned_and_fits_a_1152_gib_host(tmp_path):
    plan = make_plan(load_config(PRESET_70B), write_cluster(tmp_path, p4de_trainers))
    assert plan["problems"] == [] and plan["fits"] is True
    trainers = plan["roles"]["trainers"]
    shape = resolve_shape(LLAMA_70B)
    assert trainers["host_load_gib_per_gpu"] == round(2 * shape.params / 32 / 2**30, 2)
    assert trainers["host_gib_per_node"] < 0.9 * 1152


def test_70b_at_zero2_runs_a_1152_gib_host_out_of_memory_while_loading(tmp_path):
    # Below ZeRO-3 each of the node's 8 ranks builds the whole bf16 model in host memory first.
    config = load_config(PRESET_70B, {"trainer.zero_stage": 2})
    plan = make_plan(config, write_cluster(tmp_path, p4de_trainers))
    assert plan["fits"] is False
    [problem] = [p for p in plan["problems"] if "of host memory" in p]
    loading = 8 * (2 * resolve_shape(LLAMA_70B).params + 4 * 2**30)  # + each process's own 4 GiB
    assert problem.startswith(
        f"trainers on node type trainer_gpu (p4de.24xlarge): needs {round(loading / 2**30, 2)} GiB of host "
        "memory per node while loading, 1036.8 GiB usable of 1152; short by"
    )


def test_offload_reference_moves_the_zero3_reference_from_each_gpu_to_host_memory():
    shape = resolve_shape(LLAMA_8B)
    on_gpu = load_config(PRESET_8B)
    offloaded = load_config(PRESET_8B, {"trainer.offload_reference": True})
    partition = 2 * shape.params // on_gpu.trainer.num_workers  # bf16, sharded like the policy
    before = trainer_memory(shape, on_gpu, online_reference=True)
    after = trainer_memory(shape, offloaded, online_reference=True)
    assert (before.reference, after.reference) == (partition, 0)
    assert after.reference_on_host == partition
    assert after.host_offload_per_rank - before.host_offload_per_rank == partition
    assert before.total - after.total == partition

    plan_before, plan_after = make_plan(on_gpu, CLUSTER), make_plan(offloaded, CLUSTER)
    assert plan_after["fits"] is True and plan_after["notes"] == []
    gpu = plan_before["roles"]["trainers"]["gpu_mem_gib"] - plan_after["roles"]["trainers"]["gpu_mem_gib"]
    host = (
        plan_after["roles"]["trainers"]["host_gib_per_node"]
        - plan_before["roles"]["trainers"]["host_gib_per_node"]
    )
    assert gpu == pytest.approx(partition / 2**30, abs=0.02)
    # 8 trainers on the node, each partition in a pinned buffer DeepSpeed sizes at 1.5x.
    assert host == pytest.approx(8 * 1.5 * partition / 2**30, abs=0.02)


def test_offload_reference_below_zero3_keeps_the_reference_on_gpu_and_says_so():
    config = load_config(PRESET_8B, {"trainer.offload_reference": True, "trainer.zero_stage": 2})
    memory = trainer_memory(resolve_shape(LLAMA_8B), config, online_reference=True)
    assert memory.reference == 2 * resolve_shape(LLAMA_8B).params and memory.reference_on_host == 0
    plan = make_plan(config, CLUSTER)
    assert plan["notes"] == [
        "trainer.offload_reference applies under ZeRO-3 only: at trainer.zero_stage 2 each GPU holds a "
        "whole reference model"
    ]


def test_shapes_come_from_a_local_directory_then_the_hub_cache_then_the_built_in_table(tmp_path, monkeypatch):
    import huggingface_hub.constants

    shape = KNOWN_MODELS[LLAMA_8B]
    local = tmp_path / "model"
    local.mkdir()
    (local / "config.json").write_text(json.dumps(hf_config(shape) | {"num_hidden_layers": 2}))
    assert resolve_shape(str(local)).num_layers == 2

    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--med-3b" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (cache / "models--acme--med-3b" / "refs").mkdir()
    (cache / "models--acme--med-3b" / "refs" / "main").write_text("abc123")
    (snapshot / "config.json").write_text(json.dumps(hf_config(shape) | {"num_hidden_layers": 3}))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    found = resolve_shape("acme/med-3b")
    assert found.num_layers == 3 and found.source.endswith("config.json")
    assert resolve_shape(LLAMA_70B).source == "built-in"
    with pytest.raises(ArchitectureError, match="acme/unknown"):
        resolve_shape("acme/unknown")


def test_the_cpu_default_places_nothing_on_gpu_nodes(tmp_path):
    model = tmp_path / "policy"
    model.mkdir()
    tiny = KNOWN_MODELS[LLAMA_8B]
    small = hf_config(tiny) | {
        "vocab_size": 512,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
    }
    (model / "config.json").write_text(
        json.dumps(small | {"num_attention_heads": 4, "num_key_value_heads": 2})
    )
    config = load_config(REPO_ROOT / "configs" / "tiny-cpu.yaml", {"model.policy": str(model)})
    plan = make_plan(config, CLUSTER)
    assert plan["fits"] is True
    assert {role: r["gpus"] for role, r in plan["roles"].items()} == {
        "trainers": 0,
        "engines": 0,
        "scorers": 0,
    }
    assert plan["publish_bytes"] == 4 * resolve_shape(str(model)).params  # fp32 on CPU


def test_roles_follow_their_node_resource_and_unpinned_ones_may_land_anywhere():
    unpinned = make_plan(load_config(PRESET_70B, {"trainer.node_resource": None}), CLUSTER)
    trainer_types = unpinned["roles"]["trainers"]["node_types"]
    assert len(trainer_types) > 1 and "trainer_gpu" in trainer_types  # every GPU node type can take one
    assert any(p.startswith("trainers on node type generation_small") for p in unpinned["problems"])

    typo = make_plan(load_config(PRESET_8B, {"reward.node_resource": "scorer"}), CLUSTER)
    assert "scorers: reward.node_resource 'scorer' is a resource of no GPU node type" in typo["problems"][0]

    too_many = make_plan(load_config(PRESET_8B, {"trainer.workers_per_node": 16}), CLUSTER)
    assert any("trainer.workers_per_node 16 exceeds its 8 GPUs" in p for p in too_many["problems"])


def test_rank_0_host_memory_counts_two_buckets_beside_the_stored_publish():
    """Publishing holds one gathered bucket and its packed buffer on rank 0, whatever the model's size; a
    single group larger than online.publish_bucket_mb (70B's 2.1 GB embeddings) makes its own bucket."""
    for preset in (PRESET_8B, PRESET_70B):
        small, whole = (
            make_plan(load_config(preset, {"online.publish_bucket_mb": mb}), CLUSTER) for mb in (256, 10**6)
        )
        shape = resolve_shape(load_config(preset).model.policy)
        assert small["publish_bucket_bytes"] == 2 * shape.embedding_params > 256 * 2**20
        assert whole["publish_bucket_bytes"] == whole["publish_bytes"]
        host = [plan["roles"]["trainers"]["host_gib_per_node"] for plan in (small, whole)]
        saved = host[0] - host[1]
        expected = 2 * (small["publish_bucket_bytes"] - whole["publish_bytes"]) / 2**30
        assert saved == pytest.approx(expected, abs=0.02)


def test_lora_counts_match_peft_on_the_meta_device_and_shrink_the_trainer_and_the_publish():
    """With model.lora: adapter parameters as PEFT builds them (41.9M for Llama-3-8B at rank 16, the
    figure PEFT prints), optimizer states and gradients for the adapter only, no reference model, and the
    adapter as the publish."""
    import torch
    from peft import get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from ultramedical.models.lora import peft_config
    from ultramedical.planning.memory import trainable_params

    shape = resolve_shape(LLAMA_8B)
    full = load_config(PRESET_8B)
    config = load_config(PRESET_8B, {"model.lora": {"rank": 16}})
    with torch.device("meta"):
        lm = get_peft_model(
            LlamaForCausalLM(LlamaConfig(**hf_config(shape))), peft_config(config.model.lora, "causal")
        )
    assert trainable_params(shape, config) == sum(p.numel() for p in lm.parameters() if p.requires_grad)
    assert trainable_params(shape, config) == 41_943_040
    assert trainable_params(shape, config, reward=True) == 41_943_040 + shape.hidden_size  # + score head

    with_lora = trainer_memory(shape, config, online_reference=True)
    without = trainer_memory(shape, full, online_reference=True)
    assert with_lora.weights == without.weights  # the frozen base is still there
    assert with_lora.optimizer < 0.01 * without.optimizer and with_lora.gradients < 0.01 * without.gradients
    assert with_lora.reference == 0 < without.reference
    plan, plain = make_plan(config, CLUSTER), make_plan(full, CLUSTER)
    assert plan["publish_bytes"] == 2 * 41_943_040 < 0.01 * plain["publish_bytes"]

    with pytest.raises(ArchitectureError, match="lm_head"):
        trainable_params(
            shape, load_config(PRESET_8B, {"model.lora": {"target_modules": ["q_proj", "lm_head"]}})
        )
