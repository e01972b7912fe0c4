"""The Llama-3-shaped checkpoint carries the real tokenizer facts, and a reward model gives one reward
per conversation however it is computed: plain transformers (as RewardBench and TRL users load it),
the training forward, the plain and the packed scorer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from ultramedical.models.llama3_shape import BEGIN_OF_TEXT, EOT_ID, VOCAB_SIZE
from ultramedical.models.loading import load_reward_model, load_tokenizer, save_model
from ultramedical.models.reward import RewardModel
from ultramedical.training.batching import pad_batch

SINGLE_TURN = [
    {"role": "user", "content": "Antidote for iron poisoning?"},
    {"role": "assistant", "content": "Deferoxamine chelates iron."},
]
MULTI_TURN = [
    {"role": "system", "content": "You are a careful physician."},
    {"role": "user", "content": "A child swallowed iron tablets."},
    {"role": "assistant", "content": "How many, and when?"},
    {"role": "user", "content": "Twenty, an hour ago."},
    {"role": "assistant", "content": "Give deferoxamine and admit for monitoring."},
]


def test_llama3_shaped_checkpoint_has_the_real_tokenizer_facts(llama3_checkpoint: Path) -> None:
    config = json.loads((llama3_checkpoint / "policy" / "config.json").read_text())
    assert config["vocab_size"] == VOCAB_SIZE == 128256
    assert config.get("pad_token_id") is None
    assert config["eos_token_id"] == EOT_ID == 128009
    assert config["num_key_value_heads"] < config["num_attention_heads"]  # GQA
    assert config["tie_word_embeddings"] is False
    tokenizer = AutoTokenizer.from_pretrained(llama3_checkpoint / "policy")
    assert tokenizer.pad_token is None
    assert tokenizer.convert_tokens_to_ids(["<|begin_of_text|>", "<|start_header_id|>", "<|eot_id|>"]) == [
        128000,
        128006,
        128009,
    ]
    assert tokenizer("Fever")["input_ids"][0] == BEGIN_OF_TEXT  # adds <|begin_of_text|> as Llama-3's does
    ids = tokenizer.apply_chat_template(SINGLE_TURN, return_dict=True)["input_ids"]
    assert ids[0] == BEGIN_OF_TEXT and ids[-1] == EOT_ID and ids.count(BEGIN_OF_TEXT) == 1


def test_loading_picks_an_unused_pad_token_not_eos(llama3_checkpoint: Path) -> None:
    tokenizer = load_tokenizer(llama3_checkpoint / "policy")
    assert tokenizer.pad_token_id not in (None, tokenizer.eos_token_id)
    assert tokenizer.pad_token == "<|reserved_special_token_0|>"


def _save_reward_model(source: Path, out: Path, pad_token_id: int | None = None) -> Path:
    """A reward model as this project saves one (the rm stage's `final/`), from a config with no pad id."""
    assert AutoConfig.from_pretrained(source).pad_token_id is None
    torch.manual_seed(0)
    model = load_reward_model(source)
    model.score.weight.data.normal_(0, 1.0)  # a head that tells tokens apart, as a trained one does
    if pad_token_id is not None:
        model.config.pad_token_id = pad_token_id
    return save_model(model, load_tokenizer(source), out)


@pytest.fixture(scope="module", params=["own-pad", "pad-is-eos"])
def saved_reward_model(
    request: pytest.FixtureRequest, llama3_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Saved here, or with a config that pads with `<|eot_id|>`, as some published checkpoints do."""
    pad = EOT_ID if request.param == "pad-is-eos" else None
    return _save_reward_model(llama3_checkpoint / "reward", tmp_path_factory.mktemp("rm") / "final", pad)


@pytest.mark.parametrize("messages", [SINGLE_TURN, MULTI_TURN], ids=["single-turn", "multi-turn"])
def test_reward_is_read_where_plain_transformers_reads_it(saved_reward_model: Path, messages: list) -> None:
    tokenizer = AutoTokenizer.from_pretrained(saved_reward_model)
    hf_model = AutoModelForSequenceClassification.from_pretrained(saved_reward_model).eval()
    with torch.no_grad():
        inputs = tokenizer.apply_chat_template(messages, return_dict=True, return_tensors="pt")
        expected = hf_model(**inputs).logits[0, 0].item()
    assert hf_model.config.pad_token_id is not None

    # The Serve endpoint, `eval rm` and best-of-N score one response per prompt (the plain forward)...
    plain = RewardModel(saved_reward_model, batch_size=4)
    other = [*messages[:-1], {"role": "assistant", "content": "Activated charcoal binds iron well."}]
    assert plain.score([messages])[0] == pytest.approx(expected, abs=1e-4)
    # ...the online scorer packs a prompt's responses into one row.
    assert plain.shares_prompts
    packed = plain.score([messages, other])
    assert packed[0] == pytest.approx(expected, abs=1e-4)
    assert packed[1] == pytest.approx(plain.score([other])[0], abs=1e-4)
    assert packed[1] != pytest.approx(packed[0], abs=1e-3)  # the comparison means something

    # Training scores a right-padded batch of chosen and rejected conversations the same way.
    ids = [plain.token_ids(messages), plain.token_ids(other)[:-3]]  # unequal lengths: padding in play
    batch = pad_batch(ids, None, hf_model.config.pad_token_id)
    with torch.no_grad():
        trained = hf_model(**batch).logits[:, 0]
    assert trained[0].item() == pytest.approx(expected, abs=1e-4)


def test_saved_reward_model_scores_batches_in_plain_transformers(
    llama3_checkpoint: Path, tmp_path: Path
) -> None:
    saved = _save_reward_model(llama3_checkpoint / "reward", tmp_path / "final")
    assert AutoConfig.from_pretrained(saved).pad_token_id not in (None, EOT_ID)
    tokenizer = AutoTokenizer.from_pretrained(saved)
    hf_model = AutoModelForSequenceClassification.from_pretrained(saved).eval()
    texts = [tokenizer.apply_chat_template(m, tokenize=False) for m in (SINGLE_TURN, MULTI_TURN)]
    with torch.no_grad():
        batched = hf_model(**tokenizer(texts, padding=True, add_special_tokens=False, return_tensors="pt"))
        alone = [
            hf_model(**tokenizer(t, add_special_tokens=False, return_tensors="pt")).logits[0, 0]
            for t in texts
        ]
    assert batched.logits[:, 0].tolist() == pytest.approx([a.item() for a in alone], abs=1e-4)
