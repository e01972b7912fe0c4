"""The one way to load and save models: a local HF directory or a hub id, policy or reward model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from ultramedical.io import atomic_directory


def local_or_hub(name: str) -> str:
    """An existing local path made absolute (Ray workers run elsewhere), otherwise a hub id as given."""
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def resolve_dtype(name: str, use_gpu: bool) -> torch.dtype:
    """`auto` is bf16 on GPU and fp32 on CPU (CPU bf16 matmuls are slow on AVX2 machines)."""
    if name == "auto":
        return torch.bfloat16 if use_gpu else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


# Tokens that never occur in text, in order of preference, for a tokenizer that has no pad token
# (Llama-3's): Llama-3.1 names one for padding, Llama-3 reserves 250 it never uses.
PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|reserved_special_token_0|>", "<unk>")


def pad_token_for(tokenizer: Any) -> str:
    """The token to pad with: the tokenizer's own, else an unused special token, else its eos.

    Padding with eos makes every trailing `<|eot_id|>` look like padding, and a reward model that pools at
    the last non-pad token (HF's *ForSequenceClassification) then scores the token before it.
    """
    if tokenizer.pad_token is not None:
        return tokenizer.pad_token
    vocab = tokenizer.get_vocab()
    return next((token for token in PAD_CANDIDATES if token in vocab), tokenizer.eos_token)


def load_tokenizer(path: str | Path) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    tokenizer.pad_token = pad_token_for(tokenizer)
    if not tokenizer.chat_template:
        raise ValueError(f"{path}: the tokenizer has no chat template; use an instruct checkpoint or add one")
    return tokenizer


def load_policy(path: str | Path, dtype: torch.dtype = torch.float32) -> Any:
    """A causal LM; from a LoRA adapter directory, the adapter merged into its base."""
    from ultramedical.models.lora import full_model_dir

    return AutoModelForCausalLM.from_pretrained(full_model_dir(path), dtype=dtype)


def load_reward_model(
    path: str | Path, dtype: torch.dtype = torch.float32, pad_token_id: int | None = None
) -> Any:
    """A sequence-classification model with one output; from a policy directory its head starts fresh.

    The reward is read where HF reads it: at the last token that is not `config.pad_token_id`. With no
    pad_token_id in its config (Llama-3's), the tokenizer's pad token (`pad_token_for`) is used and kept
    in the config, so the saved model scores batches in plain transformers too.
    """
    from ultramedical.models.lora import full_model_dir

    path = full_model_dir(path)  # an adapter directory: merged into its base
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype)
    if model.config.pad_token_id is None:
        if pad_token_id is None:
            pad_token_id = load_tokenizer(path).pad_token_id
        model.config.pad_token_id = pad_token_id
    return model


def save_model(
    model: Any, tokenizer: Any, out_dir: str | Path, state_dict: dict[str, Any] | None = None
) -> Path:
    """Safetensors, config, tokenizer and chat template, written to a temp name and renamed.

    `state_dict` overrides the module's own weights (a ZeRO-gathered copy, say).
    """
    with atomic_directory(out_dir) as tmp:
        model.save_pretrained(tmp, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)
