"""LoRA through the library's one training loop, in this process (one gloo rank, DeepSpeed ZeRO-2): only
the adapter trains, the reference is the base with the adapter disabled, the adapter is saved in PEFT
format and merges into a plain HF model."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
from tiny_support import tiny_config

from ultramedical.models import lora
from ultramedical.models.loading import load_policy, load_reward_model, load_tokenizer
from ultramedical.rundir import is_complete_model
from ultramedical.training import ALGORITHMS
from ultramedical.training.algorithm import ForwardContext
from ultramedical.training.loop import Learner, _OnDevice

LORA = {
    "model.lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "down_proj"]}
}


@pytest.fixture(scope="module")
def one_rank() -> Iterator[None]:
    """torch.distributed with one gloo rank, which the Learner (DeepSpeed) needs."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = {key: os.environ.get(key) for key in ("LOCAL_RANK", "RANK", "WORLD_SIZE")}
    os.environ.update(LOCAL_RANK="0", RANK="0", WORLD_SIZE="1")  # DeepSpeed reads them
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def trained_learner(config: Any, stage: str, policy: str, steps: int, reference: str | None = None) -> Any:
    algorithm = ALGORITHMS[stage](config)
    examples, _ = algorithm.load(load_tokenizer(policy))
    learner = Learner(algorithm, policy, total_steps=steps, reference=reference)
    examples = learner.prepare(examples)
    learner.fit(examples, epochs=1, max_steps=steps)
    return learner, examples


def logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits


@pytest.fixture(scope="module")
def sft_adapter(one_rank, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """Six LoRA SFT steps on the tiny policy, saved."""
    config = tiny_config(artifacts, tmp_path_factory.mktemp("runs"), **LORA, **{"sft.lr": 1e-2})
    policy = str(artifacts / "tiny" / "policy")
    learner, _ = trained_learner(config, "sft", policy, steps=6)
    out = learner.save(tmp_path_factory.mktemp("lora") / "adapter", load_tokenizer(policy))
    return learner, out


def test_only_the_adapter_trains_and_the_base_stays(sft_adapter, artifacts) -> None:
    learner, _ = sft_adapter
    module = learner.engine.module
    trainable = lora.trainable_names(module)
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    total = sum(p.numel() for p in module.parameters())
    assert sum(p.numel() for n, p in module.named_parameters() if n in trainable) < 0.05 * total
    base = dict(load_policy(artifacts / "tiny" / "policy").named_parameters())
    for name, param in module.named_parameters():
        if "base_layer" in name or "lora_" not in name:
            original = name.replace("base_model.model.", "", 1).replace(".base_layer", "")
            assert torch.equal(param.detach(), base[original]), name  # frozen
    assert any(p.detach().abs().sum() > 0 for n, p in module.named_parameters() if "lora_B" in n)


def test_the_adapter_is_saved_in_peft_format_and_merges(sft_adapter, artifacts, tmp_path) -> None:
    from peft import PeftModel

    learner, adapter = sft_adapter
    assert lora.is_adapter_dir(adapter) and is_complete_model(adapter)
    assert not (adapter / "model.safetensors").exists()  # the adapter only, not the model
    assert lora.adapter_base(adapter) == str(artifacts / "tiny" / "policy")
    ids = torch.tensor([load_tokenizer(adapter)("Which vitamin prevents scurvy?")["input_ids"]])
    trained = logits(learner.engine.module.eval(), ids)
    loaded = PeftModel.from_pretrained(load_policy(artifacts / "tiny" / "policy"), str(adapter))
    torch.testing.assert_close(logits(loaded.eval(), ids), trained, rtol=1e-4, atol=1e-4)
    base = logits(load_policy(artifacts / "tiny" / "policy"), ids)
    assert (trained - base).abs().max() > 1e-3  # the adapter changed what the model computes

    merged = lora.merge_adapter(adapter, tmp_path / "merged")
    assert (merged / "model.safetensors").exists() and not lora.is_adapter_dir(merged)
    from transformers import AutoModelForCausalLM

    torch.testing.assert_close(
        logits(AutoModelForCausalLM.from_pretrained(merged), ids), trained, rtol=1e-4, atol=1e-4
    )
    # Every consumer that loads a policy takes the adapter directory itself, merged once on disk.
    assert lora.full_model_dir(adapter) == str(adapter / lora.MERGED)
    torch.testing.assert_close(logits(load_policy(adapter), ids), trained, rtol=1e-4, atol=1e-4)


def test_the_reference_is_the_base_with_the_adapter_disabled(sft_adapter, artifacts, tmp_path) -> None:
    """DPO from the trained SFT adapter, continuing it with the base as the fixed reference (online
    rounds): the reference log-probs equal a separately loaded base model's, not the adapter's."""
    _, adapter = sft_adapter
    base = str(artifacts / "tiny" / "policy")
    config = tiny_config(artifacts, tmp_path, **LORA)
    algorithm = ALGORITHMS["dpo"](config)
    examples, _ = algorithm.load(load_tokenizer(base))
    examples = examples[:8]
    learner = Learner(algorithm, str(adapter), total_steps=1, reference=base)
    assert learner.model_path == base and learner.reference is None  # no second model
    from_learner = learner.prepare(examples)
    alone = ForwardContext(0, 1, config.trainer.micro_batch_size, lambda value: [value])
    separate = algorithm.prepare(_OnDevice(load_policy(base).eval(), learner.device), examples, alone)
    adapted = algorithm.prepare(_OnDevice(learner.engine.module, learner.device), examples, alone)
    for key in ("ref_chosen", "ref_rejected"):
        got = torch.tensor([e[key] for e in from_learner])
        torch.testing.assert_close(got, torch.tensor([e[key] for e in separate]), rtol=1e-5, atol=1e-4)
        assert (got - torch.tensor([e[key] for e in adapted])).abs().max() > 1e-3
    with pytest.raises(ValueError, match="reference is the model the adapter trains on"):
        Learner(algorithm, str(adapter), total_steps=1, reference=str(adapter))


def test_a_reward_model_trains_its_adapter_and_score_head(one_rank, artifacts, tmp_path) -> None:
    config = tiny_config(artifacts, tmp_path, **LORA)
    policy = str(artifacts / "tiny" / "policy")
    learner, _ = trained_learner(config, "rm", policy, steps=3)
    trainable = lora.trainable_names(learner.engine.module)
    assert any("score" in n for n in trainable) and any("lora_A" in n for n in trainable)
    adapter = learner.save(tmp_path / "rm", load_tokenizer(policy))
    assert lora.adapter_kind(adapter) == "reward"
    tokenizer = load_tokenizer(adapter)
    ids = torch.tensor([tokenizer("Vitamin C prevents scurvy.")["input_ids"]])
    expected = logits(learner.engine.module.eval(), ids)
    merged = load_reward_model(adapter)  # merged, score head included
    torch.testing.assert_close(logits(merged.eval(), ids), expected, rtol=1e-4, atol=1e-4)
