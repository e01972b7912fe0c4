"""An online round with LoRA on real actors (vLLM engine, reward scorer, DeepSpeed trainers): only the
adapter crosses the object store, vLLM serves it as a LoRA adapter, and its greedy output is the greedy
output of transformers + PEFT on the adapter the round saved, token for token."""

from __future__ import annotations

import pytest
import ray
import torch
from safetensors.torch import load_file
from tiny_support import tiny_config

from actors.online_round import play_round, start_roles
from ultramedical.data.loading import load_records
from ultramedical.generation.engine import Sampling
from ultramedical.generation.items import instruction_items
from ultramedical.models import lora
from ultramedical.models.loading import load_policy, load_tokenizer
from ultramedical.online.rounds import RoundStore

pytestmark = pytest.mark.slow

LORA = {"rank": 8, "alpha": 16, "dropout": 0.0}
GREEDY_TOKENS = 24


def hf_greedy(model: torch.nn.Module, prompt: list[int], pad_id: int) -> list[int]:
    """Greedy tokens as transformers generates them (stopping at the generation config's eos ids)."""
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=GREEDY_TOKENS,
            do_sample=False,
            pad_token_id=pad_id,
        )
    return out[0, len(prompt) :].tolist()


@pytest.mark.parametrize("checkpoint", ["tiny", "llama3"])
def test_a_lora_round_publishes_the_adapter_and_vllm_serves_it(
    ray_cluster, artifacts, llama3_checkpoint, tmp_path, checkpoint
) -> None:
    root = artifacts / "tiny" if checkpoint == "tiny" else llama3_checkpoint
    policy, reward = str(root / "policy"), str(root / "reward")
    config = tiny_config(
        artifacts,
        tmp_path,
        **{
            "model.policy": policy,
            "model.lora": LORA,
            "online.prompts_per_round": 8,
            "online.completions_per_prompt": 2,
            "generation.max_tokens": 32,
            "dpo.lr": 5e-3,
            "trainer.micro_batch_size": 2,
            "generation.cpus_per_engine": 0.5,
            "reward.cpus_per_scorer": 0.5,
            "trainer.cpus_per_worker": 0.5,
        },
    )
    tokenizer = load_tokenizer(policy)
    records = load_records(artifacts / "data" / "instructions.jsonl", "instruction", max_records=12).records
    items = instruction_items(tokenizer, records)
    store = RoundStore(tmp_path / "online")
    roles = start_roles(config, None, policy, reward, reference=policy)
    try:
        result = play_round(roles, config, 1, items[:8], store, tokenizer_from=policy)
        refs, _ = roles.pool.generate(items[8:], Sampling(n=1, temperature=0.0, max_tokens=GREEDY_TOKENS))
        served = [item["completions"][0]["token_ids"] for batch in ray.get(refs) for item in batch]
    finally:
        roles.shutdown()

    # Only the adapter was published: under 5% of the model's bytes.
    full_model = load_policy(policy)
    model_bytes = sum(p.numel() * p.element_size() for p in full_model.parameters())
    published = result.metrics["publish_bytes"]
    adapter = store.staged_policy_dir
    saved = load_file(str(adapter / lora.ADAPTER_WEIGHTS))
    adapter_bytes = sum(t.numel() * t.element_size() for t in saved.values())
    print(f"[{checkpoint}] phases {result.metrics['phase_seconds']}")
    print(
        f"[{checkpoint}] publish_bytes {published} of {model_bytes} model bytes "
        f"({published / model_bytes:.2%})"
    )
    assert 0 < published < 0.05 * model_bytes
    assert published == adapter_bytes  # the adapter, and nothing else

    # The round's adapter, in PEFT format on the unchanged base, generates what vLLM served.
    from peft import PeftModel

    assert lora.adapter_base(adapter) == policy
    peft_model = PeftModel.from_pretrained(full_model, str(adapter)).eval()
    expected = [hf_greedy(peft_model, item["prompt_token_ids"], tokenizer.pad_token_id) for item in items[8:]]
    assert served == expected
    with peft_model.disable_adapter():  # the round changed what the policy says
        assert [
            hf_greedy(peft_model, item["prompt_token_ids"], tokenizer.pad_token_id) for item in items[8:]
        ] != expected
