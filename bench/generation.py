"""Generation throughput: our vLLM pool vs `transformers` `generate` batched the way TRL's online trainer
batches it, on the same prompts with the same sampling and exactly the same number of generated tokens.

Equal work is forced, then checked: vLLM runs with `ignore_eos=True` and `generate` with
`min_new_tokens == max_new_tokens`, so every completion is `max_tokens` long on both sides; the counted
tokens must match or the benchmark raises.

`FixedLengthPool` is our `GenerationPool` (same dispatch, same engine actor, same `build_llm` settings) whose
engines add `ignore_eos=True` to their `SamplingParams` (`extra_sampling`): the project's `Sampling` has no
such field, so the bench subclasses the engine actor instead of changing library code.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from actors.generation import GenerationEngine, GenerationPool
from bench.common import Assets, Result, UnequalWorkError, compared, parameter_count, require_equal
from ultramedical.config import GenerationConfig
from ultramedical.generation.engine import Sampling

BASELINE = "transformers generate (TRL online batching: 8 prompts/call, num_return_sequences=n)"


@ray.remote
class FixedLengthEngine(GenerationEngine.__ray_actor_class__):
    """Our engine actor, generating exactly `max_tokens` tokens per completion (EOS ignored)."""

    extra_sampling = {"ignore_eos": True}

    def torch_threads(self) -> int:
        import torch

        return torch.get_num_threads()


class FixedLengthPool(GenerationPool):
    """`GenerationPool` itself, with `FixedLengthEngine` as its engine actor class."""

    engine_class = FixedLengthEngine


def prompt_items(assets: Assets, count: int, offset: int = 0) -> list[dict[str, Any]]:
    """`count` instruction prompts of the sample corpus as generation items (chat-templated token ids)."""
    from ultramedical.data.loading import load_records
    from ultramedical.generation.items import instruction_items
    from ultramedical.models.loading import load_tokenizer

    records = load_records(assets.data / "instructions.jsonl", "instruction").records
    if offset + count > len(records):
        raise ValueError(f"asked for {offset + count} prompts; the corpus has {len(records)}")
    tokenizer = load_tokenizer(assets.policy("small"))
    # Every 7th record, so multiple-choice, literature and open-ended prompts are all represented.
    picked = [records[(offset + i) * 7 % len(records)] for i in range(count)]
    return instruction_items(tokenizer, picked)


def counted_tokens(refs: list[ray.ObjectRef]) -> tuple[int, list[int]]:
    """Generated tokens in the pool's output batches, and each completion's length."""
    lengths = [len(c["token_ids"]) for batch in ray.get(refs) for item in batch for c in item["completions"]]
    return sum(lengths), lengths


class HFGenerator:
    """The baseline: the policy in this process, `generate` over left-padded prompt batches."""

    def __init__(self, model_path: str, threads: int):
        import torch

        from ultramedical.models.loading import load_policy, load_tokenizer

        torch.set_num_threads(threads)
        self.model = load_policy(model_path, torch.float32).eval()
        self.tokenizer = load_tokenizer(model_path)
        self.pad = self.tokenizer.pad_token_id

    def generate(
        self, items: list[dict[str, Any]], n: int, max_tokens: int, per_call: int, seed: int
    ) -> tuple[int, list[int]]:
        """All items' completions; returns (generated tokens, each completion's length)."""
        import torch

        torch.manual_seed(seed)
        eos = set(self.model.generation_config.eos_token_id or [])
        lengths: list[int] = []
        for start in range(0, len(items), per_call):
            chunk = [item["prompt_token_ids"] for item in items[start : start + per_call]]
            longest = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), longest), self.pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), longest), dtype=torch.long)
            for row, prompt in enumerate(chunk):
                ids[row, longest - len(prompt) :] = torch.tensor(prompt)
                mask[row, longest - len(prompt) :] = 1
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=ids,
                    attention_mask=mask,
                    do_sample=True,
                    temperature=1.0,
                    top_p=1.0,
                    top_k=0,
                    max_new_tokens=max_tokens,
                    min_new_tokens=max_tokens,
                    num_return_sequences=n,
                    pad_token_id=self.pad,
                )
            for row in out[:, longest:].tolist():
                # A completion ends at its first EOS (min_new_tokens keeps EOS out before max_tokens).
                end = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
                lengths.append(end)
        return sum(lengths), lengths


def run(
    assets: Assets,
    pool: GenerationPool,
    gen: GenerationConfig,
    prompts: int,
    n: int,
    max_tokens: int,
    per_call: int,
    reps: int,
    peak_flops: float,
    threads: int = 2,
) -> Result:
    """Both sides `reps` times, alternating; tokens/s, plus generation FLOP/s as a fraction of the peak."""
    items = prompt_items(assets, prompts)
    expected = prompts * n * max_tokens
    baseline = HFGenerator(str(assets.policy("small")), threads)

    # Warm-up, untimed: the first call of each side pays one-off allocation costs.
    refs, _ = pool.generate(items[:2], Sampling(n=1, max_tokens=8, seed=0))
    ray.get(refs)
    baseline.generate(items[:2], 1, 8, per_call, seed=0)

    ours_rates: list[float] = []
    base_rates: list[float] = []
    ours_seconds: list[float] = []
    base_seconds: list[float] = []
    for rep in range(reps):
        sampling = Sampling(n=n, temperature=1.0, top_p=1.0, max_tokens=max_tokens, seed=1000 + rep)
        start = time.perf_counter()
        refs, stats = pool.generate(items, sampling)
        seconds = time.perf_counter() - start
        tokens, lengths = counted_tokens(refs)
        require_equal("vLLM pool: generated tokens (reported vs counted)", stats["tokens"], tokens)
        require_equal("vLLM pool: generated tokens", tokens, expected)
        ours_rates.append(tokens / seconds)
        ours_seconds.append(seconds)

        start = time.perf_counter()
        base_tokens, base_lengths = baseline.generate(items, n, max_tokens, per_call, seed=1000 + rep)
        seconds = time.perf_counter() - start
        require_equal("transformers generate: generated tokens", base_tokens, expected)
        if sorted(lengths) != sorted(base_lengths):
            raise UnequalWorkError("completion lengths differ between vLLM and transformers generate")
        base_rates.append(base_tokens / seconds)
        base_seconds.append(seconds)

    params = parameter_count(assets.policy("small"))
    result = compared("generation", "tokens/s", BASELINE, ours_rates, base_rates)
    result.runs |= {
        "ours_seconds": ours_seconds,
        "baseline_seconds": base_seconds,
        "prompts": prompts,
        "samples_per_prompt": n,
        "new_tokens_per_completion": max_tokens,
        "tokens_per_rep": expected,
        "sampling": {"temperature": 1.0, "top_p": 1.0, "top_k": "off", "eos": "ignored (forced length)"},
        "model": "small",
        "params": params,
        "engines": len(pool.engines),
        "engine_torch_threads": ray.get(pool.engines[0].torch_threads.remote()),
        "engine_settings": gen.model_dump(include={"max_num_seqs", "enforce_eager", "cpu_kvcache_gib"}),
        "prompts_per_engine_call": gen.prompts_per_call,
        "baseline_prompts_per_call": per_call,
        "baseline_torch_threads": threads,
        "flops_per_token": 2 * params,
        "ours_flops_fraction_of_peak": round(2 * params * result.ours / peak_flops, 4),
        "baseline_flops_fraction_of_peak": round(2 * params * result.baseline / peak_flops, 4),
    }
    del baseline
    return result
