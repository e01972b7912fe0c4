"""The data of one online round, in the order it moves between actors:

    PromptItem -engine-> GeneratedItem -scorer-> ScoredItem -pairing-> TrainItem -trainer-> TrainSummary

where a TrainItem is a PreferencePair (DPO) or a LabelledCompletion (KTO). The controller sees only the
aggregates: GenerationStats, RoundSummary and TrainSummary.

Items stay plain dicts (TypedDicts) because they are built up key by key on their way (an engine adds
`completions`, a scorer `rewards`) and persisted as JSON lines; the aggregates are dataclasses. Evaluation
sends the same PromptItems through the same engines, so graders read answers the way the scorer does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict


class Message(TypedDict):
    role: str
    content: str


class Completion(TypedDict):
    token_ids: list[int]
    text: str
    finish_reason: str | None


class PromptItem(TypedDict):
    """A prompt ready for an engine (built by generation/items.py)."""

    prompt_id: str
    prompt: str  # the user turn's text, for answer extraction
    messages: list[Message]  # the conversation the reward model scores the completion after
    answer: str  # the key ("A".."E", "yes"/"no"/"maybe") or "" for an open question
    choices: str  # the letters offered, "yes/no/maybe", or ""
    prompt_token_ids: list[int]  # the chat template applied, generation prompt included


class GeneratedItem(PromptItem):
    completions: list[Completion]


class ScoredItem(GeneratedItem):
    rewards: list[float]  # one per completion: the reward model's score plus the answer rule


class PreferencePair(TypedDict):
    """One DPO pair from a prompt's completions (token ids; the prompt's are shared)."""

    prompt_id: str
    prompt: list[int]
    chosen: list[int]
    rejected: list[int]
    chosen_reward: float
    rejected_reward: float
    margin: float


class LabelledCompletion(TypedDict):
    """One KTO example: a completion labelled desirable or not against its prompt's mean reward."""

    prompt_id: str
    prompt: list[int]
    completion: list[int]
    label: bool
    reward: float


TrainItem = PreferencePair | LabelledCompletion


@dataclass(frozen=True)
class GenerationStats:
    prompts: int
    tokens: int
    seconds: float

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


@dataclass(frozen=True)
class RoundSummary:
    """What a round's scored completions and training data add up to."""

    prompts: int
    completions: int
    reward_mean: float
    reward_best: float  # mean over prompts of the best completion's reward
    reward_worst: float
    pairs: int  # training items: pairs for DPO, labelled completions for KTO
    pair_margin: float  # mean chosen - rejected reward of the pairs (0 for KTO)


@dataclass(frozen=True)
class TrainSummary:
    """What one round's training did, from rank 0 (metrics are averaged over ranks by the loop)."""

    train_examples: int
    train_steps: int
    train_seconds: float
    reference_seconds: float  # the reference pass (and tokenizing the round's data)
    loss: float | None = None
    accuracy: float | None = None  # DPO's rewards/accuracies
    margin: float | None = None
    kl: float | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)  # per-step log lines, round-tagged


@dataclass(frozen=True)
class RoundResult:
    """A finished round: the metrics line the controller commits, each phase's seconds, and the training
    log lines."""

    metrics: dict[str, Any]
    phase_seconds: dict[str, float]
    train_lines: list[dict[str, Any]]
