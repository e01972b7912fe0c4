"""SFT packing: examples joined into one row attend only within themselves, so the packed loss is the
per-example loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.tiny_support import tiny_config
from ultramedical.data.chat import IGNORE_INDEX
from ultramedical.models.loading import load_policy, load_tokenizer
from ultramedical.training.sft import SFT, pack


def test_pack_restarts_positions_and_never_targets_across_examples() -> None:
    examples = [
        {"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7]},
        {"input_ids": [8, 9], "labels": [8, 9]},  # labelled from its first token: not across the seam
        {"input_ids": [10, 11, 12, 13], "labels": [IGNORE_INDEX, IGNORE_INDEX, 12, 13]},
    ]
    rows = pack(examples, max_len=6)
    assert [r["input_ids"] for r in rows] == [[5, 6, 7, 8, 9], [10, 11, 12, 13]]
    assert rows[0]["position_ids"] == [0, 1, 2, 0, 1]
    assert rows[0]["segment_ids"] == [1, 1, 1, 2, 2]
    assert rows[0]["labels"] == [IGNORE_INDEX, 6, 7, IGNORE_INDEX, 9]
    assert rows[1]["segment_ids"] == [1, 1, 1, 1]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_loss_equals_per_example_loss(artifacts: Path, tmp_path: Path, attention: str) -> None:
    config = tiny_config(
        artifacts,
        tmp_path,
        **{
            "data.instructions": [{"path": str(artifacts / "data" / "instructions.jsonl"), "max_records": 12}]
        },
    )
    policy = artifacts / "tiny" / "policy"
    tokenizer = load_tokenizer(policy)
    sft = SFT(config)
    examples, _ = sft.build_examples(sft.read_records()[0].records, tokenizer)
    rows = pack(examples, max_len=config.model.max_seq_len)
    assert len(rows) < len(examples)  # several examples share a row: the test means something

    model = load_policy(policy).eval()
    model.config._attn_implementation = attention
    with torch.no_grad():
        packed_loss, packed_metrics = sft.loss(model, sft.collate(rows, tokenizer.pad_token_id))
        # Apart: each example alone, the mean over every label token (as the packed loss weighs them).
        sums, tokens = 0.0, 0
        for example in examples:
            loss, metrics = sft.loss(model, sft.collate([example], tokenizer.pad_token_id))
            sums += loss.item() * metrics["label_tokens"].item()
            tokens += int(metrics["label_tokens"].item())
    assert int(packed_metrics["label_tokens"].item()) == tokens
    assert packed_loss.item() == pytest.approx(sums / tokens, rel=1e-5)


def test_packing_needs_attention_that_takes_a_mask(artifacts: Path, tmp_path: Path) -> None:
    config = tiny_config(artifacts, tmp_path)
    sft = SFT(config)
    rows = pack([{"input_ids": [5, 6, 7], "labels": [IGNORE_INDEX, 6, 7]}] * 2, max_len=8)
    model = load_policy(artifacts / "tiny" / "policy")
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ValueError, match="sft.packing"):
        sft.loss(model, sft.collate(rows, 0))
