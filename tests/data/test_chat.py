"""Chat tokenization with assistant-only labels, truncation, and the prompt/completion batching helpers."""

from __future__ import annotations

import random

import pytest
import torch

from ultramedical.data.chat import (
    IGNORE_INDEX,
    Tokenized,
    assistant_spans,
    prompt_ids,
    render,
    tokenize_conversation,
)
from ultramedical.models.tokenizer import EOT, train_tokenizer
from ultramedical.training.batching import (
    join_prompt_completion,
    pad_batch,
    sequence_logps,
    split_prompt_completion,
)

HEADER = "<|start_header_id|>assistant<|end_header_id|>\n\n"
WORDS = (
    "the patient has a fever and cough what is the most likely diagnosis vitamin deficiency causes scurvy "
    "insulin lowers blood glucose aspirin is an nsaid answer question infection often brief"
).split()

SYSTEM = {"role": "system", "content": "Be brief and careful."}
Q1 = {"role": "user", "content": "What causes scurvy?"}
A1 = {"role": "assistant", "content": "Vitamin C deficiency."}
Q2 = {"role": "user", "content": "And a fever with cough?"}
A2 = {"role": "assistant", "content": "An infection, most often."}


@pytest.fixture(scope="module")
def tok():
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10))) for _ in range(400)]
    texts += [
        "What causes scurvy? Vitamin C deficiency.",
        "And a fever with cough? An infection, most often.",
    ]
    tokenizer = train_tokenizer(texts, vocab_size=500)
    assert 300 <= len(tokenizer) <= 500
    return tokenizer


def labelled_runs(tok, tokenized: Tokenized) -> list[str]:
    """The decoded text of each maximal run of labelled tokens."""
    runs, current = [], []
    for token, label in zip(tokenized.input_ids, tokenized.labels, strict=True):
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            assert label == token
            current.append(token)
    if current:
        runs.append(current)
    return [tok.decode(run) for run in runs]


def unlabelled_text(tok, tokenized: Tokenized) -> str:
    return tok.decode(
        [t for t, lab in zip(tokenized.input_ids, tokenized.labels, strict=True) if lab == -100]
    )


def test_render_uses_the_llama3_format(tok):
    text = render(tok, [Q1, A1])
    assert text == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat causes scurvy?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nVitamin C deficiency.<|eot_id|>"
    )
    _, spans = assistant_spans(tok, [Q1, A1])
    assert [text[s:e] for s, e in spans] == ["Vitamin C deficiency.<|eot_id|>"]


def test_single_turn_labels_only_the_answer(tok):
    out = tokenize_conversation(tok, [Q1, A1], max_len=1000)
    assert out is not None and not out.truncated
    assert len(out.input_ids) == len(out.labels)
    assert labelled_runs(tok, out) == ["Vitamin C deficiency." + EOT]
    assert out.label_tokens == len(tok("Vitamin C deficiency." + EOT, add_special_tokens=False)["input_ids"])
    assert tok.decode(out.input_ids) == render(tok, [Q1, A1])
    # The labelled run ends with the end-of-turn token itself.
    assert out.labels[-1] == tok.convert_tokens_to_ids(EOT)


def test_multi_turn_labels_every_assistant_turn(tok):
    messages = [SYSTEM, Q1, A1, Q2, A2]
    out = tokenize_conversation(tok, messages, max_len=1000)
    assert out is not None
    assert labelled_runs(tok, out) == ["Vitamin C deficiency." + EOT, "An infection, most often." + EOT]
    hidden = unlabelled_text(tok, out)
    for message in (SYSTEM, Q1, Q2):
        assert message["content"] in hidden
    assert "Vitamin" not in hidden and "infection" not in hidden
    # Headers (including the assistant ones) are never labelled.
    assert hidden.count(HEADER) == 2


def test_only_last_assistant(tok):
    out = tokenize_conversation(tok, [SYSTEM, Q1, A1, Q2, A2], max_len=1000, only_last_assistant=True)
    assert out is not None
    assert labelled_runs(tok, out) == ["An infection, most often." + EOT]


def full(tok, messages):
    out = tokenize_conversation(tok, messages, max_len=10_000)
    assert out is not None
    return out


def test_exact_fit_is_not_truncated(tok):
    reference = full(tok, [Q1, A1])
    for mode in ("right", "left", "drop"):
        out = tokenize_conversation(tok, [Q1, A1], max_len=len(reference.input_ids), truncation=mode)
        assert out == reference


def test_right_truncation_keeps_the_start(tok):
    messages = [SYSTEM, Q1, A1, Q2, A2]
    reference = full(tok, messages)
    max_len = len(reference.input_ids) - 3
    out = tokenize_conversation(tok, messages, max_len=max_len, truncation="right")
    assert out is not None and out.truncated
    assert out.input_ids == reference.input_ids[:max_len]
    assert out.labels == reference.labels[:max_len]
    runs = labelled_runs(tok, out)
    assert runs[0] == "Vitamin C deficiency." + EOT
    assert EOT not in runs[1] and "An infection, most often.".startswith(runs[1])


def test_left_truncation_keeps_the_end(tok):
    messages = [SYSTEM, Q1, A1, Q2, A2]
    reference = full(tok, messages)
    max_len = 20
    out = tokenize_conversation(tok, messages, max_len=max_len, truncation="left")
    assert out is not None and out.truncated
    assert out.input_ids == reference.input_ids[-max_len:]
    assert out.labels == reference.labels[-max_len:]
    assert labelled_runs(tok, out) == ["An infection, most often." + EOT]
    assert tok.decode(out.input_ids).endswith(HEADER + "An infection, most often." + EOT)


def test_drop_truncation(tok):
    reference = full(tok, [Q1, A1])
    assert (
        tokenize_conversation(tok, [Q1, A1], max_len=len(reference.input_ids) - 1, truncation="drop") is None
    )


def test_example_with_every_assistant_token_cut_is_dropped(tok):
    messages = [Q1, A1]
    reference = full(tok, messages)
    first_label = next(i for i, lab in enumerate(reference.labels) if lab != IGNORE_INDEX)
    # Right-truncating just before the answer leaves nothing to learn.
    assert tokenize_conversation(tok, messages, max_len=first_label, truncation="right") is None
    # One more token and the example survives with a single labelled token.
    kept = tokenize_conversation(tok, messages, max_len=first_label + 1, truncation="right")
    assert kept is not None and kept.label_tokens == 1


def test_conversation_without_assistant_turn_is_dropped(tok):
    assert tokenize_conversation(tok, [SYSTEM, Q1], max_len=1000) is None


def test_prompt_ids_end_with_the_assistant_header(tok):
    ids = prompt_ids(tok, [SYSTEM, Q1])
    header = tok(HEADER, add_special_tokens=False)["input_ids"]
    assert ids[-len(header) :] == header
    assert tok.decode(ids) == render(tok, [SYSTEM, Q1]) + HEADER
    assert ids[0] == tok.convert_tokens_to_ids("<|begin_of_text|>")


def test_split_prompt_completion(tok):
    head, tail = split_prompt_completion(tok, [Q1], "Vitamin C deficiency.")
    assert head == prompt_ids(tok, [Q1])
    assert tok.decode(tail) == "Vitamin C deficiency." + EOT
    assert tail[-1] == tok.convert_tokens_to_ids(EOT)
    # The completion is trimmed by the template, as a generated answer would be when rendered.
    _, padded = split_prompt_completion(tok, [Q1], "  Vitamin C deficiency.\n")
    assert padded == tail


def test_join_prompt_completion():
    prompt, completion = [1, 2, 3, 4], [5, 6, 7]
    assert join_prompt_completion(prompt, completion, 10, "right") == (
        [1, 2, 3, 4, 5, 6, 7],
        [-100, -100, -100, -100, 5, 6, 7],
        False,
    )
    assert join_prompt_completion(prompt, completion, 7, "drop") == (
        [1, 2, 3, 4, 5, 6, 7],
        [-100] * 4 + [5, 6, 7],
        False,
    )
    # left: the prompt's start goes, the completion survives whole
    assert join_prompt_completion(prompt, completion, 5, "left") == (
        [3, 4, 5, 6, 7],
        [-100, -100, 5, 6, 7],
        True,
    )
    # right: the completion's end goes
    assert join_prompt_completion(prompt, completion, 6, "right") == (
        [1, 2, 3, 4, 5, 6],
        [-100] * 4 + [5, 6],
        True,
    )
    assert join_prompt_completion(prompt, completion, 6, "drop") is None
    # nothing of the prompt left / nothing of the completion left
    assert join_prompt_completion(prompt, completion, 3, "left") is None
    assert join_prompt_completion(prompt, completion, 4, "right") is None


def test_pad_batch():
    batch = pad_batch([[1, 2, 3], [4]], [[-100, 2, 3], [4]], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 2, 3], [4, -100, -100]]
    assert "labels" not in pad_batch([[1]], None, pad_id=0)


def test_sequence_logps_matches_a_naive_log_softmax():
    generator = torch.Generator().manual_seed(0)
    batch, length, vocab = 3, 7, 11
    logits = torch.randn(batch, length, vocab, generator=generator) * 3
    labels = torch.randint(0, vocab, (batch, length), generator=generator)
    labels[0, :3] = IGNORE_INDEX
    labels[1, 5:] = IGNORE_INDEX
    labels[2, :] = IGNORE_INDEX
    labels[2, 4] = 9
    logps, counts = sequence_logps(logits, labels)

    expected, expected_counts = [], []
    for b in range(batch):
        total, n = 0.0, 0
        for t in range(1, length):
            target = int(labels[b, t])
            if target == IGNORE_INDEX:
                continue
            row = logits[b, t - 1].double()
            total += float(row[target] - torch.log(torch.exp(row).sum()))
            n += 1
        expected.append(total)
        expected_counts.append(n)
    assert counts.tolist() == expected_counts == [4, 4, 1]
    assert torch.allclose(logps.double(), torch.tensor(expected, dtype=torch.float64), atol=1e-5)
    # label at position 0 is never scored (nothing predicts it)
    labels2 = labels.clone()
    labels2[:, 0] = 1
    assert torch.equal(sequence_logps(logits, labels2)[0], logps)


def test_sequence_logps_gradient_and_dtype():
    logits = torch.randn(2, 5, 4, dtype=torch.bfloat16, requires_grad=True)
    labels = torch.tensor([[0, 1, 2, 3, 0], [-100, -100, 1, 1, -100]])
    logps, counts = sequence_logps(logits, labels)
    assert logps.dtype == torch.float32 and counts.tolist() == [4, 2]
    logps.sum().backward()
    assert logits.grad is not None
    # The last position predicts nothing, and ignored targets contribute no gradient.
    assert torch.count_nonzero(logits.grad[:, -1]) == 0
    assert torch.count_nonzero(logits.grad[1, 0]) == 0 and torch.count_nonzero(logits.grad[1, 1]) != 0
