"""Online iterative preference learning (the paper's step 4), with every actor alive across rounds.

    ray job submit --working-dir . -- python jobs/iterative_dpo.py --config configs/llama3-8b.yaml
    ultramedical iterate --config configs/tiny-cpu.yaml --rounds 3 --run-dir runs/tiny/online [--resume]

Each round: take a prompt batch -> K completions per prompt from the vLLM pool -> rewards from the
scorer pool -> pairs (DPO) or labelled completions (KTO) -> train the DeepSpeed group -> publish the
weights to every engine through one object reference -> persist the round -> grade held-out questions.
Completions, rewards and pairs move between actors as object references; this controller only sees
aggregates. A round counts as done once its metrics line is written, so --resume redoes only an
interrupted round.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ray
from ray.exceptions import RayError

from actors.generation import GenerationPool
from actors.placement import place_roles, roles_config
from actors.reward_scorer import ScorerPool
from actors.round_tasks import assemble_round, grade, on_this_node, persist_round
from actors.shared_storage import SharedStorageError, check_shared_storage
from actors.trainer_group import TrainerGroup
from actors.weight_publish import publish_weights
from ultramedical.cluster import connect_ray
from ultramedical.config import Config, dump_config, load_config
from ultramedical.data.loading import load_records
from ultramedical.eval.benchmarks import load_benchmark
from ultramedical.eval.stats import accuracy_ci95
from ultramedical.generation.engine import Sampling
from ultramedical.generation.items import benchmark_items, instruction_items
from ultramedical.io import append_jsonl, atomic_write_text
from ultramedical.models.loading import load_tokenizer, local_or_hub
from ultramedical.online.rounds import RoundStore, round_prompts
from ultramedical.rundir import RunDir, is_complete_model


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
    return local_or_hub(policy), local_or_hub(reward)


def heldout_accuracy(pool: GenerationPool, items: list[dict], max_tokens: int) -> dict:
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


def main(argv: list[str] | None = None, check_storage: Callable[..., None] = check_shared_storage) -> int:
    """The controller. `check_storage(path, what=...)` checks that every node sees the run directory
    (tests hand in the check with its seam for a node that does not)."""
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
    tokenizer = load_tokenizer(start_policy)
    source = config.data.prompts or config.data.instructions[0]
    records = load_records(source.path, "instruction", source.split, config.data.on_invalid).records
    prompt_pool = instruction_items(tokenizer, records)
    heldout = []
    for name, bench in list(config.data.eval_benchmarks.items())[:1]:
        heldout = benchmark_items(
            tokenizer, load_benchmark(name, bench.path, bench.split, max_items=online.eval_items or None)
        )

    # 3. The actors: engines and scorers from placement, trainers with the reference fixed at the start.
    connect_ray()
    placement = place_roles(config)
    config = roles_config(config)  # online.simulate_gpus: GPU bundles, CPU work
    reference = None if online.refresh_reference else initial_policy
    pool = scorers = trainers = None
    try:
        # Rank 0 saves the policy under the run directory from its own node. Checked once the placement
        # groups hold their nodes: on an autoscaling cluster those nodes have only just started.
        try:
            check_storage(str(store.root), what="the online run directory")
        except SharedStorageError as exc:
            raise SystemExit(f"error: {exc}") from None
        # All three roles start up at once (loading models, DeepSpeed, vLLM), then we wait for them all.
        pool = GenerationPool(
            start_policy, config.generation, config.trainer.seed, placement.options["engines"], wait=False
        )
        scorers = ScorerPool(reward_model, config.reward, placement.options["scorers"], wait=False)
        trainers = TrainerGroup(config, start_policy, reference, placement.options["trainers"], wait=False)
        ray.get(pool.starting + scorers.starting + trainers.starting)
        if not done:
            before = heldout_accuracy(pool, heldout, config.eval.max_tokens)
            append_jsonl(store.root / "heldout.jsonl", {"round": 0, **before})
            print(f"[online] round 0: held-out accuracy {json.dumps(before)}", flush=True)

        def play_round(k: int) -> tuple[dict, list[dict]]:
            """Sample, score, pair, train, publish and save round k: its metrics and training log lines,
            for the caller to write and commit."""
            started = time.perf_counter()
            gen = config.generation
            indices = round_prompts(len(prompt_pool), k, online.prompts_per_round, config.trainer.seed)
            items = [prompt_pool[i] for i in indices]
            sampling = Sampling(
                n=online.completions_per_prompt,
                temperature=gen.temperature,
                top_p=gen.top_p,
                max_tokens=gen.max_tokens,
                seed=config.trainer.seed * 1000 + k,
            )
            completions, gen_stats = pool.generate(items, sampling)
            scored, score_stats = scorers.score(completions)
            summary_ref, train_ref = assemble_round.remote(
                online.model_dump(), config.trainer.seed + k, *scored
            )
            persisted = persist_round.options(**on_this_node()).remote(str(store.root), k, train_ref, *scored)
            try:
                summary = ray.get(summary_ref)
                if summary["pairs"] == 0:
                    raise SystemExit(
                        f"error: round {k} produced no training data (online.min_margin={online.min_margin})"
                    )
                train_stats = trainers.train(k, train_ref)
                published = publish_weights(trainers, pool)
                trainers.save(str(store.staged_policy_dir), start_policy)  # becomes online/policy at commit
                store.mark_staged_policy(k)
                if k % online.checkpoint_every_rounds == 0 or k == online.rounds:
                    trainers.save(str(store.root / f"checkpoint-round-{k}"), start_policy)
                ray.get(persisted)
            except BaseException:
                ray.wait([persisted], timeout=60)  # a redo rewrites the round's files: let these land first
                raise
            metrics = {
                "round": k,
                **summary,
                "train_accuracy": train_stats.get("train_accuracy"),
                "train_loss": train_stats.get("loss"),
                "train_examples": train_stats["train_examples"],
                "publish_seconds": published.seconds,
                "install_seconds": published.install_seconds,
                "publish_bytes": published.bytes,
                "publish_buckets": published.buckets,
                "gen_tokens_per_s": gen_stats["tokens_per_s"],
                "generate_seconds": gen_stats["seconds"],
                "score_seconds": score_stats["seconds"],
                "train_seconds": train_stats["train_seconds"],
                **heldout_accuracy(pool, heldout, config.eval.max_tokens),
                "engine_restarts": pool.restarts_seen,
                "round_seconds": time.perf_counter() - started,
            }
            return metrics, train_stats["lines"]

        # 4. The rounds. A round that fails on a Ray error (a trainer worker died: its process group
        # is gone with it) is redone from its start by a new trainer group loaded from the policy of
        # the last completed round; the engines get those weights back too.
        for k in range(done + 1, online.rounds + 1):
            for attempt in range(online.max_round_retries + 1):
                try:
                    m, train_lines = play_round(k)
                    break
                except RayError as exc:
                    if attempt == online.max_round_retries:
                        raise
                    reason = (str(exc).strip().splitlines() or [""])[0]
                    print(
                        f"[online] round {k} failed ({type(exc).__name__}: {reason}); "
                        f"redoing it ({attempt + 1}/{online.max_round_retries})",
                        flush=True,
                    )
                    trainers.shutdown()
                    last_policy = str(store.policy_dir) if store.last_completed() else start_policy
                    trainers = TrainerGroup(config, last_policy, reference, placement.options["trainers"])
                    publish_weights(trainers, pool)
                    store.discard_incomplete()
            for line in train_lines:
                append_jsonl(store.root / "train_metrics.jsonl", line)
            store.commit(m)
            print(
                f"[online] round {k}/{online.rounds}: reward {m['reward_mean']:.3f} "
                f"(best {m['reward_best']:.3f}, "
                f"worst {m['reward_worst']:.3f}), {m['pairs']} pairs, "
                f"train acc {m['train_accuracy'] or 0:.2f}, "
                f"held-out {m.get('heldout_accuracy', 0):.3f}, publish {m['publish_seconds']:.2f}s, "
                f"{m['gen_tokens_per_s']:.0f} tok/s",
                flush=True,
            )

        final = store.root / "final"
        trainers.save(str(final), start_policy)
    finally:
        for role in (pool, scorers, trainers):
            if role is not None:
                role.shutdown()
        placement.remove()
    print(f"[online] final policy: {final}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
