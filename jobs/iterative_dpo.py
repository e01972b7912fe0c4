"""Online iterative preference learning (the paper's step 4), with every actor alive across rounds.

    ray job submit --working-dir . -- python jobs/iterative_dpo.py --config configs/llama3-8b.yaml
    ultramedical iterate --config configs/tiny-cpu.yaml --rounds 3 --run-dir runs/tiny/online [--resume]

Each round (actors/online_round.py: play_round): take a prompt batch -> K completions per prompt from
the vLLM pool -> rewards from the scorer pool -> pairs (DPO) or labelled completions (KTO) -> train the
DeepSpeed group -> publish the weights to every engine through the object store -> persist the round ->
grade held-out questions. This controller keeps only resume, retry and commit: a round counts as done
once its metrics line is written, so --resume redoes only an interrupted round.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.exceptions import RayError

from actors.cluster import connect_ray
from actors.online_round import EmptyRoundError, RoundRoles, heldout_accuracy, play_round, start_roles
from actors.placement import place_roles, roles_config
from actors.shared_storage import SharedStorageError, check_shared_storage
from actors.trainer_group import TrainerGroup
from ultramedical.config import Config, dump_config, load_config
from ultramedical.data.loading import load_records
from ultramedical.eval.benchmarks import load_benchmark
from ultramedical.generation.items import benchmark_items, instruction_items
from ultramedical.io import append_jsonl, atomic_write_text
from ultramedical.models.loading import load_tokenizer, local_or_hub
from ultramedical.models.lora import full_model_dir
from ultramedical.online.round_data import PromptItem, RoundResult
from ultramedical.online.rounds import RoundStore, round_prompts
from ultramedical.rundir import RunDir, is_complete_model
from ultramedical.tracking import Trackers, open_tracker


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(prog="iterate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/tiny-cpu.yaml")
    parser.add_argument("--rounds", type=int, help="overrides online.rounds")
    parser.add_argument("--run-dir", help="where rounds, metrics.jsonl and final/ go (default: <run>/online)")
    parser.add_argument("--policy", help="initial policy (default: <run>/sft/final, else model.policy)")
    parser.add_argument("--reward-model", help="default: model.reward_model, else <run>/rm/final")
    parser.add_argument("--resume", action="store_true", help="continue after the last completed round")
    return parser.parse_known_args(argv)


def pick_models(config: Config, run: RunDir, args: argparse.Namespace) -> tuple[str, str]:
    policy = args.policy or (
        str(run.final("sft")) if is_complete_model(run.final("sft")) else config.model.policy
    )
    reward = args.reward_model or config.model.reward_model or str(run.final("rm"))
    if not is_complete_model(Path(reward)) and Path(reward).exists():
        raise SystemExit(f"error: reward model {reward} is not a finished model directory")
    # LoRA adapters are merged here, once: the rounds' adapter trains on the initial policy as its base,
    # and the scorers load a plain reward model.
    return full_model_dir(local_or_hub(policy)), full_model_dir(local_or_hub(reward))


def load_prompts(config: Config, tokenizer: Any) -> tuple[list[PromptItem], list[PromptItem]]:
    """The rounds' prompt pool (data.prompts, else the first instruction source) and the held-out
    questions (the first evaluation benchmark, online.eval_items of them)."""
    source = config.data.prompts or config.data.instructions[0]
    records = load_records(source.path, "instruction", source.split, config.data.on_invalid).records
    heldout: list[PromptItem] = []
    for name, bench in list(config.data.eval_benchmarks.items())[:1]:
        questions = load_benchmark(name, bench.path, bench.split, max_items=config.online.eval_items or None)
        heldout = benchmark_items(tokenizer, questions)
    return instruction_items(tokenizer, records), heldout


def round_with_retries(
    roles: RoundRoles,
    config: Config,
    k: int,
    items: list[PromptItem],
    store: RoundStore,
    start_policy: str,
    heldout: list[PromptItem],
) -> RoundResult:
    """Round k, redone from its start after a Ray error (a trainer worker died: its process group is gone
    with it) by a new trainer group loaded from the policy of the last completed round."""
    retries, attempt = config.online.max_round_retries, 0
    while True:
        try:
            return play_round(roles, config, k, items, store, start_policy, heldout)
        except RayError as exc:
            attempt += 1
            if attempt > retries:
                raise
            reason = (str(exc).strip().splitlines() or [""])[0]
            print(
                f"[online] round {k} failed ({type(exc).__name__}: {reason}); "
                f"redoing it ({attempt}/{retries})",
                flush=True,
            )
            last_policy = str(store.policy_dir) if store.last_completed() else start_policy
            roles.restart_trainers(last_policy)
            store.discard_incomplete()


def main(
    argv: list[str] | None = None,
    check_storage: Callable[..., None] = check_shared_storage,
    trainer_group: type[TrainerGroup] = TrainerGroup,
) -> int:
    """The controller. `check_storage(path, what=...)` checks that every node sees the run directory;
    `trainer_group` is the trainers' class (tests hand in ones that fail on cue)."""
    args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
    if args.rounds:
        overrides += ["--online.rounds", str(args.rounds)]
    config = load_config(args.config, overrides)
    online = config.online
    run = RunDir.of(config.runs_root, config.name)
    store = RoundStore(Path(args.run_dir).absolute() if args.run_dir else run.online)

    # 1. Where this invocation starts.
    done = store.last_completed()
    if done and not args.resume:
        raise SystemExit(f"error: {store.root} already has {done} completed round(s); pass --resume")
    redo = store.discard_incomplete()
    if redo:
        print(f"[online] redoing interrupted round(s) {redo}", flush=True)
    initial_policy, reward_model = pick_models(config, run, args)
    start_policy = str(store.policy_dir) if done and is_complete_model(store.policy_dir) else initial_policy
    store.root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(store.root / "config.yaml", dump_config(config))

    # 2. Prompts for the rounds, and held-out questions to grade after each.
    prompt_pool, heldout = load_prompts(config, load_tokenizer(start_policy))

    # 3. The actors, placed; the trainers' reference fixed at the initial policy.
    connect_ray()
    placement = place_roles(config)
    config = roles_config(config)  # online.simulate_gpus: GPU bundles, CPU work
    reference = None if online.refresh_reference else initial_policy
    roles = tracker = None
    try:
        tracker = open_tracker(config, "online", store.root)  # TensorBoard, MLflow, W&B: tracking.backends
        # Rank 0 saves the policy under the run directory from its own node. Checked once the placement
        # groups hold their nodes: on an autoscaling cluster those nodes have only just started.
        try:
            check_storage(str(store.root), what="the online run directory")
        except SharedStorageError as exc:
            raise SystemExit(f"error: {exc}") from None
        roles = start_roles(config, placement.options, start_policy, reward_model, reference, trainer_group)
        if not done:
            before = heldout_accuracy(roles.pool, heldout, config.eval.max_tokens)
            append_jsonl(store.root / "heldout.jsonl", {"round": 0, **before})
            tracker.log_metrics({"round": 0, **before}, step=0)
            print(f"[online] round 0: held-out accuracy {json.dumps(before)}", flush=True)

        # 4. The rounds: each committed once its files, policy and metrics line are written.
        for k in range(done + 1, online.rounds + 1):
            indices = round_prompts(len(prompt_pool), k, online.prompts_per_round, config.trainer.seed)
            items = [prompt_pool[i] for i in indices]
            try:
                result = round_with_retries(roles, config, k, items, store, start_policy, heldout)
            except EmptyRoundError as exc:
                raise SystemExit(f"error: {exc}") from None
            record_round(store, tracker, result)
            print_round(result.metrics, online.rounds)

        final = store.root / "final"
        roles.trainers.save(str(final), start_policy)
    finally:
        if roles is not None:
            roles.shutdown()
        placement.remove()
        if tracker is not None:
            tracker.close()
    print(f"[online] final policy: {final}", flush=True)
    return 0


def record_round(store: RoundStore, tracker: Trackers, result: RoundResult) -> None:
    """Commit a round: its training steps, then its metrics line (which marks it complete). Trackers get the
    steps numbered across rounds, and the round's metrics at its last step."""
    step = store.train_steps()
    for line in result.train_lines:
        append_jsonl(store.train_metrics_path, line)
        step += 1
        tracker.log_metrics({f"train/{key}": value for key, value in line.items() if key != "step"}, step)
    store.commit(result.metrics)
    tracker.log_metrics(result.metrics, step)


def print_round(m: dict, rounds: int) -> None:
    print(
        f"[online] round {m['round']}/{rounds}: reward {m['reward_mean']:.3f} "
        f"(best {m['reward_best']:.3f}, worst {m['reward_worst']:.3f}), {m['pairs']} pairs, "
        f"train acc {m['train_accuracy'] or 0:.2f}, held-out {m.get('heldout_accuracy', 0):.3f}, "
        f"publish {m['publish_seconds']:.2f}s, {m['gen_tokens_per_s']:.0f} tok/s",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
