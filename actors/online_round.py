"""One online round, the function the job (jobs/iterative_dpo.py) and the benchmarks both run:

    prompts -> K completions each (generation pool) -> rewards (scorer pool) -> pairs or labelled
    completions (a task) -> one round of training (trainer group) -> weights to every engine (publish)
    [-> the round's files and staged policy (with a store) -> held-out accuracy (with held-out items)]

Completions, rewards and pairs move between actors as object references; the caller sees aggregates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import ray

from actors.generation import GenerationPool
from actors.reward_scorer import ScorerPool
from actors.round_tasks import assemble_round, grade, on_this_node, persist_round
from actors.trainer_group import TrainerGroup
from actors.weight_publish import publish_weights
from ultramedical.config import Config
from ultramedical.eval.stats import accuracy_ci95
from ultramedical.generation.engine import Sampling
from ultramedical.online.round_data import PromptItem, RoundResult
from ultramedical.online.rounds import RoundStore
from ultramedical.timing import PhaseTimer


class EmptyRoundError(RuntimeError):
    """A round's completions gave no training data (every pair under online.min_margin, or ties)."""


@dataclass
class RoundRoles:
    """The actors a round runs on, alive across rounds; `new_trainers(policy)` starts a trainer group like
    the first one from another policy (roles without it cannot restart their trainers)."""

    pool: GenerationPool
    scorers: ScorerPool
    trainers: TrainerGroup
    new_trainers: Callable[[str], TrainerGroup] | None = None

    def restart_trainers(self, policy: str) -> None:
        """Replace the trainer group (after it lost a worker) by one loaded from `policy`, and give the
        engines those weights back."""
        if self.new_trainers is None:
            raise RuntimeError("these roles were built without new_trainers: they cannot restart trainers")
        self.trainers.shutdown()
        self.trainers = self.new_trainers(policy)
        publish_weights(self.trainers, self.pool)

    def shutdown(self) -> None:
        for role in (self.pool, self.scorers, self.trainers):
            role.shutdown()


def start_roles(
    config: Config,
    options: dict[str, list[dict[str, Any]]] | None,
    policy: str,
    reward_model: str,
    reference: str | None,
    trainer_group: type[TrainerGroup] = TrainerGroup,
) -> RoundRoles:
    """Engines, scorers and trainers start up at once (loading models, DeepSpeed, vLLM), then we wait for
    them all. `options`: each role's per-actor placement options (actors/placement.py)."""
    options = options or {}
    pool = GenerationPool(
        policy,
        config.generation,
        config.trainer.seed,
        options.get("engines"),
        wait=False,
        lora=config.model.lora,
    )
    scorers = ScorerPool(reward_model, config.reward, options.get("scorers"), wait=False)
    trainers = trainer_group(config, policy, reference, options.get("trainers"), wait=False)
    roles = RoundRoles(
        pool,
        scorers,
        trainers,
        partial(trainer_group, config, reference=reference, scheduling=options.get("trainers")),
    )
    try:
        ray.get(pool.starting + scorers.starting + trainers.starting)
    except BaseException:
        roles.shutdown()
        raise
    return roles


def round_sampling(config: Config, round_index: int) -> Sampling:
    gen = config.generation
    return Sampling(
        n=config.online.completions_per_prompt,
        temperature=gen.temperature,
        top_p=gen.top_p,
        max_tokens=gen.max_tokens,
        seed=config.trainer.seed * 1000 + round_index,
    )


def heldout_accuracy(pool: GenerationPool, items: list[PromptItem], max_tokens: int) -> dict[str, Any]:
    """Greedy accuracy on held-out questions, graded where the completions are."""
    if not items:
        return {}
    refs, _ = pool.generate(items, Sampling(n=1, temperature=0.0, max_tokens=max_tokens))
    counts = ray.get(grade.remote(*refs))
    accuracy, low, high = accuracy_ci95(counts["correct"], counts["n"])
    return {
        "heldout_accuracy": accuracy,
        "heldout_ci95": [low, high],
        "heldout_n": counts["n"],
        "heldout_unparsed": counts["unparsed"],
    }


def play_round(
    roles: RoundRoles,
    config: Config,
    round_index: int,
    items: list[PromptItem],
    store: RoundStore | None = None,
    tokenizer_from: str = "",
    heldout: list[PromptItem] | None = None,
) -> RoundResult:
    """Sample, score, pair, train and publish round `round_index` over `items`.

    With `store`, also write the round's files and save the policy it produced as the store's staged
    policy (and a checkpoint every online.checkpoint_every_rounds), its tokenizer from `tokenizer_from`;
    the caller commits the round. With `heldout`, grade them after the publish. A Ray error anywhere
    leaves the round uncommitted, for the caller to redo."""
    online = config.online
    timer = PhaseTimer()
    with timer.phase("generate"):
        completions, generated = roles.pool.generate(items, round_sampling(config, round_index))
    with timer.phase("score"):
        scored, _ = roles.scorers.score(completions)
    summary_ref, train_ref = assemble_round.remote(online, config.trainer.seed + round_index, *scored)
    persisted = None
    if store is not None:
        persisted = persist_round.options(**on_this_node()).remote(
            str(store.root), round_index, train_ref, *scored
        )
    try:
        with timer.phase("pair"):
            summary = ray.get(summary_ref)
        if summary.pairs == 0:
            raise EmptyRoundError(
                f"round {round_index} produced no training data (online.min_margin={online.min_margin})"
            )
        with timer.phase("train"):
            trained = roles.trainers.train(round_index, train_ref)
        with timer.phase("publish"):
            published = publish_weights(roles.trainers, roles.pool)
        if store is not None:
            with timer.phase("save"):
                roles.trainers.save(str(store.staged_policy_dir), tokenizer_from)
                store.mark_staged_policy(round_index)
                if round_index % online.checkpoint_every_rounds == 0 or round_index == online.rounds:
                    roles.trainers.save(str(store.root / f"checkpoint-round-{round_index}"), tokenizer_from)
                ray.get(persisted)
    except BaseException:
        if persisted is not None:
            ray.wait([persisted], timeout=60)  # a redo rewrites the round's files: let these land first
        raise
    with timer.phase("heldout"):
        graded = heldout_accuracy(roles.pool, heldout or [], config.eval.max_tokens)
    metrics = {
        "round": round_index,
        **asdict(summary),
        "train_accuracy": trained.accuracy,
        "train_loss": trained.loss,
        "train_examples": trained.train_examples,
        "publish_seconds": published.seconds,
        "install_seconds": published.install_seconds,
        "publish_bytes": published.bytes,
        "publish_buckets": published.buckets,
        "gen_tokens": generated.tokens,
        "gen_tokens_per_s": generated.tokens_per_s,
        "generate_seconds": timer.seconds["generate"],
        "score_seconds": timer.seconds["score"],
        "train_seconds": trained.train_seconds,
        **graded,
        "engine_restarts": roles.pool.restarts_seen,
        "phase_seconds": {name: round(seconds, 3) for name, seconds in timer.seconds.items()},
        "round_seconds": timer.total(),
    }
    return RoundResult(metrics, dict(timer.seconds), trained.lines)
