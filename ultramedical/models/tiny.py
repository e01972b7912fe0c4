"""The embedded default model: a tokenizer fitted to the sample corpus, a random-initialised Llama
policy and a matching sequence-classification reward model, saved in HF format."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

from ultramedical.models.loading import save_model
from ultramedical.models.tokenizer import EOS, EOT, PAD, train_tokenizer

# name -> (hidden size, layers, attention heads, key-value heads, MLP size)
SIZES = {
    "tiny": (256, 4, 4, 2, 704),  # about 4-5 M parameters: the demo and tests
    "small": (
        384,
        6,
        6,
        2,
        1024,
    ),  # about 12-14 M parameters: benchmarks, where fixed overheads must not decide
    "large": (1024, 24, 16, 4, 2816),  # about 280 M parameters, 1.1 GB in fp32: the weight-publish bench
}


def corpus_texts(corpus_dir: str | Path) -> Iterator[str]:
    """Every prompt and answer of the sample corpus (what the tokenizer is fitted to)."""
    corpus_dir = Path(corpus_dir)
    with (corpus_dir / "instructions.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            for turn in json.loads(line)["conversations"]:
                yield turn["value"]
    with (corpus_dir / "annotations.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            yield record["prompt"]
            yield from (c["text"] for c in record["completions"])


def llama_config(size: str, vocab_size: int, tokenizer) -> LlamaConfig:
    if size not in SIZES:
        raise ValueError(f"unknown model size '{size}' (expected one of {', '.join(SIZES)})")
    hidden, layers, heads, kv_heads, mlp = SIZES[size]
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=mlp,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=2048,
        rope_theta=500000.0,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.convert_tokens_to_ids(EOT), tokenizer.convert_tokens_to_ids(EOS)],
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
    )


def init_tiny_models(
    corpus_dir: str | Path, out_dir: str | Path, size: str = "tiny", vocab_size: int = 4096, seed: int = 0
) -> dict[str, Path]:
    """Build `out_dir/policy` and `out_dir/reward`; returns their paths."""
    out_dir = Path(out_dir)
    tokenizer = train_tokenizer(corpus_texts(corpus_dir), vocab_size=vocab_size)
    config = llama_config(size, len(tokenizer), tokenizer)
    torch.manual_seed(seed)
    policy = LlamaForCausalLM(config)
    policy.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    reward_config = LlamaConfig.from_dict({**config.to_dict(), "num_labels": 1})
    reward = LlamaForSequenceClassification(reward_config)
    paths = {"policy": out_dir / "policy", "reward": out_dir / "reward"}
    save_model(policy, tokenizer, paths["policy"])
    save_model(reward, tokenizer, paths["reward"])
    return paths


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
