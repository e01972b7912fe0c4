"""Scoring conversations with a reward model: batched forward, plus an optional rule for MC items.

Used by the online scorer actors, the Ray Serve endpoint, best-of-N reranking and `eval rm`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from ultramedical.data.chat import render
from ultramedical.data.schemas import Message
from ultramedical.models.loading import load_reward_model, load_tokenizer, resolve_dtype
from ultramedical.models.padding import pad
from ultramedical.models.shared_prefix import (
    PADDING,
    PREFIX,
    attention_mask,
    common_prefix,
    packed_row,
    segment_ends,
    takes_custom_masks,
)

CPU_MAX_PADDING = 0.05


class RewardModel:
    def __init__(
        self,
        path: str | Path,
        batch_size: int = 16,
        max_length: int = 1024,
        use_gpu: bool | None = None,
        max_padding: float | None | Literal["auto"] = "auto",
        share_prompts: bool = True,
    ):
        """`max_padding`: most padding a forward may carry, as a fraction of its real tokens (None: no
        limit). "auto": 0.05 on a CPU, which pays for a padded token as for a real one (and for attention
        over it, quadratically), so a batch of requests of mixed lengths runs as several shorter forwards
        instead of one padded to the longest; no limit on a GPU (measured: bench/README.md, design
        decisions)."""
        use_gpu = torch.cuda.is_available() if use_gpu is None else use_gpu
        if max_padding == "auto":
            max_padding = None if use_gpu else CPU_MAX_PADDING
        self.max_padding = max_padding
        self.path = str(path)
        self.device = torch.device("cuda" if use_gpu else "cpu")
        self.tokenizer = load_tokenizer(path)
        self.model = load_reward_model(path, resolve_dtype("auto", use_gpu), self.tokenizer.pad_token_id)
        self.model.to(self.device).eval()
        # HF reads the reward at the last token that is not the config's pad token; pad with that one.
        self.pad_id: int = self.model.config.pad_token_id
        self.batch_size = batch_size
        self.max_length = max_length
        # A decoder with a linear head on its hidden states (HF's *ForSequenceClassification of Llama,
        # Mistral, Qwen...) and attention that takes a custom mask can score responses packed by prompt.
        self.shares_prompts = (
            share_prompts and hasattr(self.model, "score") and takes_custom_masks(self.model)
        )

    def token_ids(self, conversation: Sequence[Message]) -> list[int]:
        """The rendered conversation's tokens; a long one keeps its end, where the answer is."""
        ids = self.tokenizer(render(self.tokenizer, conversation), add_special_tokens=False)["input_ids"]
        return ids[-self.max_length :]

    @torch.no_grad()
    def score(self, conversations: Sequence[Sequence[Message]]) -> list[float]:
        """One scalar reward per conversation (the last message is the response being judged).

        Conversations with the same prompt are scored as one row, [prompt | response 1 | response 2 | ...]
        (models/shared_prefix.py), when the model allows it (`shares_prompts`) and some prompt has several
        responses: a prompt with K responses is computed once instead of K times, with the same rewards."""
        encoded = [self.token_ids(c) for c in conversations]
        if self.shares_prompts:
            groups = same_prompt_groups(conversations)
            if len(groups) < len(encoded):  # some prompt has several responses
                return self._score_grouped(encoded, groups)
        rewards = [0.0] * len(encoded)
        for chunk in length_chunks([len(e) for e in encoded], self.batch_size, self.max_padding):
            ids = pad([encoded[i] for i in chunk], self.pad_id)
            mask = pad([[1] * len(encoded[i]) for i in chunk], 0)
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            for index, value in zip(chunk, logits[:, 0].float().tolist(), strict=True):
                rewards[index] = value
        return rewards

    def _score_grouped(self, encoded: list[list[int]], groups: list[list[int]]) -> list[float]:
        """Each group of conversations as one packed row; each reward is the head's value where HF would
        read it for that conversation alone (`reward_positions`)."""
        rows = []
        for group in groups:
            sequences = [encoded[i] for i in group]
            # Every response keeps at least its last token in its own segment, where it is scored.
            shared = min(common_prefix(sequences), min(len(s) for s in sequences) - 1)
            rows.append(packed_row(sequences, shared))
        rewards = [0.0] * len(encoded)
        per_forward = max(1, round(self.batch_size * len(rows) / max(len(encoded), 1)))
        for chunk in length_chunks([len(r[0]) for r in rows], per_forward, self.max_padding):
            ids = pad([rows[i][0] for i in chunk], self.pad_id).to(self.device)
            positions = pad([rows[i][1] for i in chunk], 0).to(self.device)
            segments = pad([rows[i][2] for i in chunk], PADDING).to(self.device)
            mask = attention_mask(segments, self.model.dtype)
            hidden = self.model.base_model(input_ids=ids, attention_mask=mask, position_ids=positions)
            hidden = hidden.last_hidden_state
            for row, index in enumerate(chunk):
                ends = reward_positions(rows[index][0], rows[index][2], self.pad_id)
                values = self.model.score(hidden[row, ends]).float()[:, 0].tolist()
                for conversation, value in zip(groups[index], values, strict=True):
                    rewards[conversation] = value
        return rewards

    def score_pairs(self, prompts: Sequence[Sequence[Message]], responses: Sequence[str]) -> list[float]:
        return self.score(
            [[*p, {"role": "assistant", "content": r}] for p, r in zip(prompts, responses, strict=True)]
        )


def reward_positions(ids: Sequence[int], segments: Sequence[int], pad_id: int) -> list[int]:
    """Where each conversation of a packed row is scored: its last token that is not `pad_id`, over the
    shared prefix and its own segment. That is HF's rule for one conversation on its own (the last
    non-pad token), which differs from the segment's end when the pad token also ends turns (pad ==
    `<|eot_id|>`)."""
    positions = []
    for segment, end in enumerate(segment_ends(segments), start=1):
        own = [i for i in range(end + 1) if segments[i] in (PREFIX, segment) and ids[i] != pad_id]
        positions.append(own[-1] if own else end)
    return positions


def same_prompt_groups(conversations: Sequence[Sequence[Message]]) -> list[list[int]]:
    """Indices of conversations that differ only in their last message, in first-seen order."""
    groups: dict[tuple[tuple[str, str], ...], list[int]] = {}
    for index, conversation in enumerate(conversations):
        key = tuple((m["role"], m["content"]) for m in conversation[:-1])
        groups.setdefault(key, []).append(index)
    return list(groups.values())


def length_chunks(
    lengths: Sequence[int], batch_size: int, max_padding: float | None = None
) -> list[list[int]]:
    """Indices grouped into padded forwards: shortest first, a chunk closes at `batch_size` items or
    before padding every item to the newest (longest) one would exceed `max_padding` x its real tokens."""
    chunks: list[list[int]] = []
    chunk: list[int] = []
    real = 0
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        length = lengths[index]
        padded = (len(chunk) + 1) * length  # every item padded to this one, the longest so far
        too_padded = max_padding is not None and padded > (1 + max_padding) * (real + length)
        if chunk and (len(chunk) == batch_size or too_padded):
            chunks.append(chunk)
            chunk, real = [], 0
        chunk.append(index)
        real += length
    return [*chunks, chunk] if chunk else chunks
