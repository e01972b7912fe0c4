"""A tiny checkpoint shaped like Llama-3-8B-Instruct, for proving the paper-scale path on a CPU.

The tokenizer facts are Llama-3's: 128,000 regular tokens and 256 special ones from id 128000
(`<|begin_of_text|>` 128000, `<|end_of_text|>` 128001, `<|start_header_id|>` 128006,
`<|end_header_id|>` 128007, `<|eot_id|>` 128009, the eos), no pad token and no `pad_token_id` in
config.json; the tokenizer adds `<|begin_of_text|>` when asked for special tokens. The model has GQA,
rope_theta 500000 and untied embeddings. Only the widths are tiny. The regular tokens are a BPE fitted to
the sample corpus, padded with unreachable fillers up to 128,000 so that every special id is the real one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import (
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaForSequenceClassification,
    PreTrainedTokenizerFast,
)

from ultramedical.models.loading import save_model
from ultramedical.models.tokenizer import LLAMA3_CHAT_TEMPLATE, train_tokenizer

REGULAR_TOKENS = 128_000
VOCAB_SIZE = 128_256
BEGIN_OF_TEXT, END_OF_TEXT, START_HEADER, END_HEADER, EOT_ID = 128000, 128001, 128006, 128007, 128009
_NAMED = {
    BEGIN_OF_TEXT: "<|begin_of_text|>",
    END_OF_TEXT: "<|end_of_text|>",
    START_HEADER: "<|start_header_id|>",
    END_HEADER: "<|end_header_id|>",
    EOT_ID: "<|eot_id|>",
}


def special_tokens() -> list[tuple[int, str]]:
    """Llama-3's 256 special tokens: the named ones, the rest `<|reserved_special_token_N|>` in id order."""
    reserved = iter(range(256))
    return [
        (token_id, _NAMED.get(token_id) or f"<|reserved_special_token_{next(reserved)}|>")
        for token_id in range(REGULAR_TOKENS, VOCAB_SIZE)
    ]


def llama3_tokenizer(texts: Iterable[str], bpe_size: int = 4096) -> PreTrainedTokenizerFast:
    """A byte-level BPE fitted to `texts`, renumbered into Llama-3's id layout."""
    fitted = json.loads(train_tokenizer(texts, vocab_size=bpe_size).backend_tokenizer.to_str())
    specials = {t["content"] for t in fitted["added_tokens"]}
    vocab = [token for token, _ in sorted(fitted["model"]["vocab"].items(), key=lambda kv: kv[1])]
    vocab = [token for token in vocab if token not in specials]
    # Fillers keep the ids of the specials where Llama-3 has them; no merge can produce one.
    vocab += [f"<filler_{i}>" for i in range(REGULAR_TOKENS - len(vocab))]
    fitted["model"]["vocab"] = {token: index for index, token in enumerate(vocab)}
    fitted["added_tokens"] = [
        {
            "id": token_id,
            "content": content,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for token_id, content in special_tokens()
    ]
    fitted["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [
            {"SpecialToken": {"id": _NAMED[BEGIN_OF_TEXT], "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
        ],
        "pair": [
            {"SpecialToken": {"id": _NAMED[BEGIN_OF_TEXT], "type_id": 0}},
            {"Sequence": {"id": "A", "type_id": 0}},
            {"SpecialToken": {"id": _NAMED[BEGIN_OF_TEXT], "type_id": 1}},
            {"Sequence": {"id": "B", "type_id": 1}},
        ],
        "special_tokens": {
            _NAMED[BEGIN_OF_TEXT]: {
                "id": _NAMED[BEGIN_OF_TEXT],
                "ids": [BEGIN_OF_TEXT],
                "tokens": [_NAMED[BEGIN_OF_TEXT]],
            }
        },
    }
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(fitted)),
        bos_token=_NAMED[BEGIN_OF_TEXT],
        eos_token=_NAMED[EOT_ID],
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = LLAMA3_CHAT_TEMPLATE
    return tokenizer


def llama3_config(
    hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int = 1, head_dim: int = 32
) -> LlamaConfig:
    """Llama-3-8B-Instruct's config.json facts at a tiny width (8B: 4096 wide, 32 layers, 32/8 heads).

    The heads are 32 wide, not hidden / heads = 16: vLLM's CPU attention runs head sizes from 32 up
    (8B's are 128), so vLLM can serve this checkpoint too."""
    return LlamaConfig(
        head_dim=head_dim,
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        intermediate_size=hidden * 7 // 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=8192,
        rope_theta=500000.0,
        tie_word_embeddings=False,
        bos_token_id=BEGIN_OF_TEXT,
        eos_token_id=EOT_ID,
        pad_token_id=None,
    )


def init_llama3_shaped(texts: Iterable[str], out_dir: str | Path, seed: int = 0) -> dict[str, Path]:
    """`out_dir/policy` (an "instruct" checkpoint) and `out_dir/reward` (a sequence-classification head
    on it, as a user would start one), neither with a pad token."""
    out_dir = Path(out_dir)
    tokenizer = llama3_tokenizer(texts)
    config = llama3_config()
    torch.manual_seed(seed)
    policy = LlamaForCausalLM(config)
    policy.generation_config = GenerationConfig(
        bos_token_id=BEGIN_OF_TEXT, eos_token_id=[END_OF_TEXT, EOT_ID], do_sample=True, temperature=0.6
    )
    labels = {k: v for k, v in config.to_dict().items() if k not in ("id2label", "label2id")}
    reward = LlamaForSequenceClassification(LlamaConfig.from_dict({**labels, "num_labels": 1}))
    paths = {"policy": out_dir / "policy", "reward": out_dir / "reward"}
    save_model(policy, tokenizer, paths["policy"])
    save_model(reward, tokenizer, paths["reward"])
    return paths
