"""The vLLM generation pool on CPU: real engines in Ray actors."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
import ray
import torch
from tiny_support import tiny_config

from actors.generation import GenerationPool, call_size
from actors.trainer_group import TrainerGroup
from actors.weight_publish import publish_weights
from ultramedical.data.loading import load_records
from ultramedical.generation.engine import Sampling
from ultramedical.generation.items import instruction_items
from ultramedical.models.loading import load_policy, load_tokenizer

pytestmark = pytest.mark.slow


def prompt_items(artifacts, count):
    records = load_records(
        artifacts / "data" / "instructions.jsonl", "instruction", max_records=count
    ).records
    return instruction_items(load_tokenizer(artifacts / "tiny" / "policy"), records)


def completed(refs):
    return [item for batch in ray.get(refs) for item in batch]


@pytest.mark.parametrize(
    ("items", "per_call", "engines", "expected"),
    [(32, 64, 1, 32), (32, 64, 2, 16), (48, 4, 2, 4), (3, 16, 4, 1), (0, 16, 1, 1), (10, 16, 0, 10)],
)
def test_calls_are_as_large_as_asked_but_every_engine_gets_work(items, per_call, engines, expected):
    assert call_size(items, per_call, engines) == expected


def test_engine_killed_mid_round_every_prompt_answered_once(ray_cluster, artifacts, tmp_path):
    config = tiny_config(
        artifacts,
        tmp_path,
        **{"generation.engines": 2, "generation.cpus_per_engine": 1, "generation.prompts_per_call": 4},
    )
    pool = GenerationPool(str(artifacts / "tiny" / "policy"), config.generation)
    items = prompt_items(artifacts, 48)
    victim = pool.engines[0]
    victim_pid = ray.get(victim.__ray_call__.remote(lambda _: os.getpid()))
    finished = threading.Event()  # a round that ends before the victim was seen busy is not waited on

    def kill_when_busy() -> None:
        # Observed state: Ray titles a worker process after the method it runs, so the victim is killed
        # once it is inside a generate call, with work of this round in hand.
        cmdline = Path(f"/proc/{victim_pid}/cmdline")
        while b"GenerationEngine.generate" not in cmdline.read_bytes():
            if finished.wait(0.01):
                return
        ray.kill(victim, no_restart=False)  # the actor process dies; Ray restarts it (max_restarts)

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    try:
        refs, stats = pool.generate(items, Sampling(n=2, temperature=1.0, max_tokens=48, seed=1))
    finally:
        finished.set()
        killer.join()
    answered = completed(refs)

    assert pool.restarts_seen >= 1
    assert [item["prompt_id"] for item in answered] == [item["prompt_id"] for item in items]
    assert all(len(item["completions"]) == 2 for item in answered)
    assert stats.prompts == 48 and stats.tokens == sum(
        len(c["token_ids"]) for item in answered for c in item["completions"]
    )
    pool.shutdown()


def test_weights_published_in_buckets_match_transformers_greedy(ray_cluster, artifacts, tmp_path):
    config = tiny_config(
        artifacts,
        tmp_path,
        **{
            "dpo.lr": 5e-3,
            "trainer.cpus_per_worker": 1,
            "generation.cpus_per_engine": 2,
            "generation.threads": 1,
        },
    )
    policy = str(artifacts / "tiny" / "policy")
    pool = GenerationPool(policy, config.generation)
    # generation.threads holds over the CPUs Ray grants the engine (its OMP_NUM_THREADS, 2 here) and over
    # vLLM's own choice.
    assert ray.get(pool.engines[0].__ray_call__.remote(lambda _: torch.get_num_threads())) == 1
    trainers = TrainerGroup(config, policy, reference=policy)
    items = prompt_items(artifacts, 8)
    refs, _ = pool.generate(items, Sampling(n=2, temperature=1.0, max_tokens=24, seed=3))
    pairs = [
        {
            "prompt_id": i["prompt_id"],
            "prompt": i["prompt_token_ids"],
            "chosen": i["completions"][0]["token_ids"],
            "rejected": i["completions"][1]["token_ids"],
            "margin": 1.0,
        }
        for i in completed(refs)
        if i["completions"][0]["token_ids"] != i["completions"][1]["token_ids"]
    ]
    summary = trainers.train(1, ray.put(pairs))
    assert summary.train_examples == len(pairs) > 0

    before, _ = pool.generate(items[:4], Sampling(n=1, temperature=0.0, max_tokens=20))
    # Small buckets, none splitting a decoder layer, installed by the engine in one reload as they arrive.
    stats = publish_weights(trainers, pool, bucket_bytes=256 * 1024)
    after, _ = pool.generate(items[:4], Sampling(n=1, temperature=0.0, max_tokens=20))
    params = sum(p.numel() * p.element_size() for p in load_policy(policy).parameters())
    assert stats.buckets > 2 and params <= stats.bytes < params + 64 * 1024

    trainers.save(str(tmp_path / "published"), policy)
    model = load_policy(tmp_path / "published").eval()
    vllm_tokens = [item["completions"][0]["token_ids"] for item in completed(after)]
    for item, tokens in zip(items[:4], vllm_tokens, strict=True):
        prompt = torch.tensor([item["prompt_token_ids"]])
        out = model.generate(prompt, max_new_tokens=20, do_sample=False)[0, prompt.shape[1] :].tolist()
        assert out[: len(tokens)] == tokens
    assert vllm_tokens != [item["completions"][0]["token_ids"] for item in completed(before)]

    # The disk path into the same live engine: the initial policy's files bring back its greedy output.
    ray.get(pool.engines[0].install_checkpoint.remote(policy))
    again, _ = pool.generate(items[:4], Sampling(n=1, temperature=0.0, max_tokens=20))
    assert [i["completions"][0]["token_ids"] for i in completed(again)] == [
        i["completions"][0]["token_ids"] for i in completed(before)
    ]
    trainers.shutdown()
    pool.shutdown()
