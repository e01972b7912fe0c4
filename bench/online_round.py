"""One online round end to end (generate K per prompt, score, pair, one DPO epoch, weights back to the
generator) in prompts/s, against TRL's `OnlineDPOTrainer`; and how a round's time scales with its size.

Ours is `play_round` (actors/online_round.py), the round `jobs/iterative_dpo.py` plays, with its actors
alive across rounds, without a store or held-out questions (no persisting the round to disk or grading,
which TRL does not do either): generate -> score -> pair -> train -> publish.
TRL's (trl.experimental.online_dpo in trl 1.16) is `OnlineDPOTrainer.train()` over the same prompts, one
epoch, with the same policy, reward model, K = 2 (fixed by that trainer), max new tokens and DPO beta;
generation through `transformers` `generate` (its default, `use_vllm=False`).
Equal work is forced and checked: every completion is exactly `max_tokens` long on both sides (vLLM
`ignore_eos`, `min_new_tokens` for `generate`), and both sides must train one pair per prompt.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from actors.generation import GenerationPool
from actors.online_round import RoundRoles, play_round
from actors.reward_scorer import ScorerPool
from actors.trainer_group import TrainerGroup
from bench.common import Result, UnequalWorkError, compared, require_equal, summarize
from ultramedical.config import Config
from ultramedical.online.round_data import PromptItem
from ultramedical.training.sampler import examples_per_epoch

BASELINE = "TRL OnlineDPOTrainer (trl.experimental.online_dpo, transformers generate)"


def our_round(
    roles: RoundRoles, config: Config, items: list[PromptItem], k: int, max_tokens: int, round_index: int
) -> dict[str, Any]:
    """One round as the online controller plays it (`play_round`, without a store or held-out questions);
    returns its seconds, the work done and the phases."""
    config = config.model_copy(
        update={
            "online": config.online.model_copy(update={"completions_per_prompt": k}),
            "generation": config.generation.model_copy(update={"max_tokens": max_tokens}),
        }
    )
    result = play_round(roles, config, round_index, items)
    metrics = result.metrics
    return {
        "seconds": metrics["round_seconds"],
        "prompts": metrics["prompts"],
        "completions": metrics["completions"],
        "tokens": metrics["gen_tokens"],
        "pairs": metrics["pairs"],
        "pairs_trained": examples_per_epoch(
            metrics["train_examples"], config.trainer, config.trainer.num_workers
        ),
        "phases": {name: round(seconds, 3) for name, seconds in result.phase_seconds.items()},
    }


class TRLOnlineDPO:
    """TRL's online DPO trainer over a fixed prompt set: one `train()` = one round of P prompts."""

    def __init__(self, config: Config, policy: str, reward: str, max_tokens: int, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.config, self.policy, self.reward = config, policy, reward
        self.max_tokens = max_tokens

    def round(self, items: list[dict[str, Any]], seed: int) -> dict[str, Any]:
        import torch
        from datasets import Dataset
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
        from trl.experimental.online_dpo import OnlineDPOConfig, OnlineDPOTrainer

        from ultramedical.models.loading import load_tokenizer

        tokenizer = load_tokenizer(self.policy)
        reward_tokenizer = load_tokenizer(self.reward)
        trainer_cfg = self.config.trainer
        batch = trainer_cfg.micro_batch_size * trainer_cfg.num_workers * trainer_cfg.grad_accum_steps
        with tempfile.TemporaryDirectory() as out:
            args = OnlineDPOConfig(
                output_dir=out,
                per_device_train_batch_size=batch,  # = our pairs per optimiser step
                num_train_epochs=1,
                learning_rate=self.config.dpo.lr,
                beta=self.config.dpo.beta,
                max_new_tokens=self.max_tokens,
                max_length=self.config.model.max_seq_len,
                temperature=self.config.generation.temperature,
                top_p=self.config.generation.top_p,
                top_k=0,
                generation_kwargs={"min_new_tokens": self.max_tokens},  # same length as our ignore_eos
                bf16=False,  # fp32, as ours on CPU
                gradient_checkpointing=False,  # ours does not checkpoint either
                use_cpu=True,
                report_to="none",
                save_strategy="no",
                logging_steps=10**6,
                disable_tqdm=True,
                seed=seed,
            )
            model = AutoModelForCausalLM.from_pretrained(self.policy, dtype=torch.float32)
            reward_model = AutoModelForSequenceClassification.from_pretrained(
                self.reward, num_labels=1, dtype=torch.float32
            )
            dataset = Dataset.from_list([{"prompt": item["messages"]} for item in items])
            trainer = OnlineDPOTrainer(
                model=model,
                reward_funcs=reward_model,
                args=args,
                train_dataset=dataset,
                processing_class=tokenizer,
                reward_processing_classes=reward_tokenizer,
            )
            counts = {"prompts": 0, "tokens": 0, "calls": 0}
            generate = trainer._generate

            def counting_generate(model: Any, prompts: list, images: Any = None) -> Any:
                out = generate(model, prompts, images)
                counts["prompts"] += len(prompts)
                counts["tokens"] += int(out[3].sum())  # completion_mask: tokens up to and with EOS
                counts["calls"] += 1
                return out

            trainer._generate = counting_generate
            start = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - start
            steps = trainer.state.global_step
        return {
            "seconds": seconds,
            "prompts": counts["prompts"],
            "tokens": counts["tokens"],
            "pairs_trained": counts["prompts"],  # one (chosen, rejected) pair per prompt, always
            "steps": steps,
            "generate_calls": counts["calls"],
        }


def check_round(side: str, round_: dict[str, Any], prompts: int, k: int, max_tokens: int) -> None:
    require_equal(f"{side}: prompts in the round", round_["prompts"], prompts)
    require_equal(f"{side}: generated tokens", round_["tokens"], prompts * k * max_tokens)
    require_equal(f"{side}: pairs trained", round_["pairs_trained"], prompts)


def run(
    pool: GenerationPool,
    scorers: ScorerPool,
    trainers: TrainerGroup,
    config: Config,
    items: list[dict[str, Any]],
    max_tokens: int,
    reps: int,
    threads: int = 2,
    k: int = 2,
    trl_reason: str | None = None,
) -> Result:
    """Both sides `reps` times, alternating; with `trl_reason` set, ours only (TRL not measured)."""
    prompts = len(items)
    roles = RoundRoles(pool, scorers, trainers)
    trl = TRLOnlineDPO(config, config.model.policy, config.model.reward_model, max_tokens, threads)
    ours_rounds: list[dict[str, Any]] = []
    trl_rounds: list[dict[str, Any]] = []
    for rep in range(reps):
        ours_round = our_round(roles, config, items, k, max_tokens, round_index=100 + rep)
        check_round("ours", ours_round, prompts, k, max_tokens)
        ours_rounds.append(ours_round)
        if trl_reason is None:
            trl_round = trl.round(items, seed=rep)
            check_round("TRL", trl_round, prompts, k, max_tokens)
            trl_rounds.append(trl_round)
    ours_rates = [prompts / r["seconds"] for r in ours_rounds]
    details = {
        "prompts": prompts,
        "completions_per_prompt": k,
        "max_new_tokens": max_tokens,
        "pairs_per_optimizer_step": config.trainer.micro_batch_size * config.trainer.num_workers,
        "ours_round_seconds": [round(r["seconds"], 3) for r in ours_rounds],
        "ours_phases": [r["phases"] for r in ours_rounds],
        "ours_actors": {
            "engines": len(pool.engines),
            "scorers": len(scorers.scorers),
            "trainer_workers": len(trainers.workers),
        },
    }
    if trl_reason is not None:
        ours = summarize(ours_rates)
        return Result(
            "online_round", ours["median"], None, BASELINE, "prompts/s", None,
            {"ours": ours, "not_measured": f"TRL side: {trl_reason}", **details},
        )  # fmt: skip
    result = compared(
        "online_round", "prompts/s", BASELINE, ours_rates, [prompts / r["seconds"] for r in trl_rounds]
    )
    result.runs |= details | {
        "baseline_round_seconds": [round(r["seconds"], 3) for r in trl_rounds],
        "baseline_steps": trl_rounds[0]["steps"],
        "baseline_generate_calls": trl_rounds[0]["generate_calls"],
        "baseline_torch_threads": threads,
        "note": "ours keeps training the same actors across repetitions; TRL starts each repetition "
        "from the initial policy (lengths are forced, so the work per round is the same)",
    }
    return result


def run_scaling(
    make_pool: Any,
    scorers: ScorerPool,
    trainers: TrainerGroup,
    config: Config,
    items: list[dict[str, Any]],
    base_prompts: int,
    max_tokens: int,
    reps: int,
    engine_counts: tuple[int, ...] = (1, 2),
    k: int = 2,
) -> Result:
    """Seconds per round at P, 2P and 4P prompts, for each engine count. `make_pool(engines)` returns a
    pool (and is responsible for shutting down the previous one)."""
    sizes = (base_prompts, 2 * base_prompts, 4 * base_prompts)
    if len(items) < sizes[-1]:
        raise ValueError(f"round_scaling needs {sizes[-1]} prompts, got {len(items)}")
    table: dict[str, dict[str, Any]] = {}
    round_index = 200
    for engines in engine_counts:
        roles = RoundRoles(make_pool(engines), scorers, trainers)
        row: dict[str, Any] = {}
        for size in sizes:
            seconds = []
            for _ in range(reps):
                round_ = our_round(roles, config, items[:size], k, max_tokens, round_index)
                check_round(f"ours ({engines} engines, {size} prompts)", round_, size, k, max_tokens)
                seconds.append(round_["seconds"])
                round_index += 1
            row[str(size)] = {
                "seconds": statistics.median(seconds),
                "values": [round(s, 3) for s in seconds],
                "phases": round_["phases"],
            }
        table[f"{engines}_engine" + ("s" if engines > 1 else "")] = row
    one = table["1_engine"]
    t_p, t_4p = one[str(sizes[0])]["seconds"], one[str(sizes[-1])]["seconds"]
    if t_p <= 0:
        raise UnequalWorkError("round at P prompts took no time")
    return Result(
        name="round_scaling",
        ours=round(t_4p, 3),
        baseline=round(4 * t_p, 3),
        baseline_name=f"4 x seconds of a round at P={sizes[0]} prompts (linear scaling), 1 engine",
        unit="s",
        ratio=round(t_4p / (4 * t_p), 4),
        runs={
            "definition": "ratio = seconds at 4P / (4 x seconds at P), 1 engine; < 1 means a round's fixed "
            "costs are amortised as it grows",
            "prompt_counts": list(sizes),
            "completions_per_prompt": k,
            "max_new_tokens": max_tokens,
            "reps_per_point": reps,
            "seconds_per_round": table,
            "prompts_per_s": {
                name: {size: round(int(size) / point["seconds"], 3) for size, point in row.items()}
                for name, row in table.items()
            },
        },
    )
