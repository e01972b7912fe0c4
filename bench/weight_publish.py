"""Getting trained weights to the generator: in memory through the Ray object store vs through disk.

Ours: `TrainerGroup.publish()` (ZeRO-aware gather on rank 0, packed into one buffer, one `ray.put`)
followed by `GenerationPool.install_weights(ref)` (every engine loads the weights in place), timed together.
Baseline, the checkpoint round trip of RLHFlow / OpenRLHF-style iterative recipes: save the HF checkpoint
(`TrainerGroup.save`), start a new vLLM engine actor from it (our engine settings, but eager: the
fastest start) and wait until it has served its first request (one prompt, one token).
Both sides move the same model (the `small` policy held by the trainer group); the parameter count of
what each side moved is checked. Each measurement starts on a settled machine: the baseline's engine is
killed and its process gone, and the CPUs quiet, before the next in-memory publish is timed (right after a
kill, installs took 0.2-0.34 s instead of 0.09-0.15 s).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import ray

from actors.generation import GenerationEngine, GenerationPool
from actors.trainer_group import TrainerGroup
from bench.common import Result, compared, parameter_count, require_equal, settle
from ultramedical.config import GenerationConfig
from ultramedical.generation.engine import Sampling

BASELINE = "disk: save HF checkpoint + start a new vLLM engine until it serves its first request"


def publish_in_memory(
    trainers: TrainerGroup, pool: GenerationPool
) -> tuple[float, ray.ObjectRef, dict[str, float]]:
    """Seconds for publish + install, the weights' reference, and the phases' split."""
    start = time.perf_counter()
    weights = trainers.publish()
    published = time.perf_counter()
    slowest_install = pool.install_weights(weights)
    end = time.perf_counter()
    phases = {
        "publish_s": published - start,
        "install_s": end - published,
        "engine_load_s": slowest_install,  # inside the engine actor: reload_weights + cache reset
    }
    return end - start, weights, phases


def publish_through_disk(
    trainers: TrainerGroup, gen: GenerationConfig, directory: Path, tokenizer_from: str, item: dict[str, Any]
) -> tuple[float, dict[str, float]]:
    """Seconds from the start of the save to the first served request, and the phases' split."""
    if directory.exists():
        shutil.rmtree(directory)
    start = time.perf_counter()
    trainers.save(str(directory), tokenizer_from)
    saved = time.perf_counter()
    engine = GenerationEngine.options(num_cpus=gen.cpus_per_engine, max_restarts=0).remote(
        str(directory), gen.model_dump(), 0
    )
    pid = None
    try:
        ray.get(engine.ready.remote())
        started = time.perf_counter()
        summary, _ = engine.generate.remote([item], Sampling(n=1, max_tokens=1, seed=0))
        served = ray.get(summary)
        end = time.perf_counter()
        pid = ray.get(engine.__ray_call__.remote(lambda _: os.getpid()))
    finally:
        ray.kill(engine)
        _wait_for_exit(pid)
    require_equal("disk path: tokens served by the new engine", served["tokens"], 1)
    phases = {"save_s": saved - start, "engine_start_s": started - saved, "first_request_s": end - started}
    return end - start, phases


def _wait_for_exit(pid: int | None, timeout_s: float = 30.0) -> None:
    """ray.kill returns before the process is gone; its teardown (gigabytes of KV cache unmapped) must not
    land in the next measurement."""
    deadline = time.perf_counter() + timeout_s
    while pid is not None and Path(f"/proc/{pid}").exists() and time.perf_counter() < deadline:
        time.sleep(0.05)


def run(
    trainers: TrainerGroup,
    pool: GenerationPool,
    gen: GenerationConfig,
    policy: str,
    params: int,
    item: dict[str, Any],
    scratch: Path,
    reps: int,
) -> Result:
    # Warm-up, untimed: the first gather and the first install allocate buffers once.
    _, weights, _ = publish_in_memory(trainers, pool)
    published = ray.get(weights)
    require_equal("in-memory path: parameters published", published.numel(), params)
    state_bytes = published.data.nbytes
    del published, weights

    ours: list[float] = []
    disk: list[float] = []
    phases: list[dict[str, float]] = []
    ours_phases: list[dict[str, float]] = []
    settled: list[float] = []  # seconds waited for a quiet machine before each measurement
    for rep in range(reps):
        settled.append(settle())
        seconds, _, split = publish_in_memory(trainers, pool)
        ours.append(seconds)
        ours_phases.append({k: round(v, 3) for k, v in split.items()})
        settled.append(settle())
        seconds, split = publish_through_disk(trainers, gen, scratch / f"checkpoint-{rep}", policy, item)
        disk.append(seconds)
        phases.append({k: round(v, 3) for k, v in split.items()})
    saved = scratch / f"checkpoint-{reps - 1}"
    require_equal("disk path: parameters saved", parameter_count(saved), params)
    shutil.rmtree(scratch, ignore_errors=True)
    result = compared("weight_publish", "s", BASELINE, ours, disk)
    result.runs |= {
        "model": "small",
        "params": params,
        "state_dict_bytes": state_bytes,
        "trainer_workers": len(trainers.workers),
        "engines": len(pool.engines),
        "enforce_eager": {"ours": pool.gen.enforce_eager, "baseline": gen.enforce_eager},
        "ours_phases": ours_phases,
        "baseline_phases": phases,
        "settle_s": [round(x, 2) for x in settled],
        "target_ratio": 100,
    }
    return result
