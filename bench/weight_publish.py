"""Getting trained weights into a live generator, at 1.1 GB (the `large` model, about 280 M fp32 parameters).

Ours: `publish_weights` (actors/weight_publish.py): ZeRO-3 trainers gather the weights bucket by bucket,
rank 0 puts each bucket in the object store as one object, and the engine installs bucket b while bucket
b+1 is gathered.

Baselines, each moving the same weights from the same ZeRO-3 trainers into a serving engine:
- **disk reload (OpenRLHF's disk path):** save the HF checkpoint (`TrainerGroup.save`: rank 0 gathers the
  whole model and writes safetensors), then the live engine loads the files with `reload_weights`
  (`GenerationEngine.install_checkpoint`). This is the fair one: the engine keeps running on both sides.
- **disk restart (RLHFlow's way, in `runs`):** save, then start a new vLLM engine from the checkpoint
  (eager, its fastest start) until it has served its first request.

Also measured on our side: bytes/s, and rank 0's memory during its first publish (peak anonymous RSS above
its level before, sampled every 5 ms, and the kernel's VmHWM, which also counts the object-store pages rank
0 writes). The same first publish with one bucket for the whole model, as before bucketing, on fresh
trainers, is the memory reference. Every measurement starts on a settled machine (`settle()`).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import ray

from actors.generation import GenerationEngine, GenerationPool
from actors.trainer_group import TrainerGroup
from actors.weight_publish import PublishStats, publish_weights
from bench.common import Result, UnequalWorkError, compared, parameter_count, require_equal, settle
from ultramedical.config import Config, GenerationConfig
from ultramedical.generation.engine import Sampling

BASELINE = "disk reload: save the HF checkpoint, then reload_weights from its files into the live engine"
RESTART = "disk restart: save the HF checkpoint, then start a new vLLM engine until it serves a request"
BUCKET_MB = 128  # several buckets of whole decoder layers (about 43 MB each) in a 1.1 GB model
SAMPLE_S = 0.005


# -- rank 0's memory, sampled inside its actor process ------------------------------------------------------
def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _start_sampling(actor: Any) -> None:
    """Runs in the trainer actor: reset VmHWM and sample RssAnon in a thread until `_stop_sampling`."""
    Path("/proc/self/clear_refs").write_text("5")  # resets the peak RSS (VmHWM) to the current RSS
    stop, peak = threading.Event(), {"rss_anon_before": _status_bytes("RssAnon")}
    peak["rss_anon_peak"] = peak["rss_anon_before"]

    def sample() -> None:
        while not stop.wait(SAMPLE_S):
            peak["rss_anon_peak"] = max(peak["rss_anon_peak"], _status_bytes("RssAnon"))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    actor._bench_sampling = (stop, thread, peak)


def _stop_sampling(actor: Any) -> dict[str, int]:
    stop, thread, peak = actor._bench_sampling
    stop.set()
    thread.join()
    return peak | {"vm_hwm": _status_bytes("VmHWM")}


def publish_measured(
    trainers: TrainerGroup, pool: GenerationPool, bucket_bytes: int
) -> tuple[PublishStats, dict[str, int]]:
    rank0 = trainers.workers[0]
    ray.get(rank0.__ray_call__.remote(_start_sampling))
    stats = publish_weights(trainers, pool, bucket_bytes)
    memory = ray.get(rank0.__ray_call__.remote(_stop_sampling))
    return stats, memory | {"rss_anon_extra": memory["rss_anon_peak"] - memory["rss_anon_before"]}


# -- the disk baselines --------------------------------------------------------------------------------------
def reload_from_disk(
    trainers: TrainerGroup, pool: GenerationPool, directory: Path, tokenizer_from: str
) -> dict[str, float]:
    shutil.rmtree(directory, ignore_errors=True)
    start = time.perf_counter()
    trainers.save(str(directory), tokenizer_from)
    saved = time.perf_counter()
    ray.get([engine.install_checkpoint.remote(str(directory)) for engine in pool.engines])
    end = time.perf_counter()
    return {"seconds": end - start, "save_s": saved - start, "load_s": end - saved}


def restart_from_disk(
    trainers: TrainerGroup, gen: GenerationConfig, directory: Path, tokenizer_from: str, item: dict[str, Any]
) -> dict[str, float]:
    shutil.rmtree(directory, ignore_errors=True)
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
    require_equal("disk restart: tokens served by the new engine", served["tokens"], 1)
    return {
        "seconds": end - start,
        "save_s": saved - start,
        "engine_start_s": started - saved,
        "first_request_s": end - started,
    }


def _wait_for_exit(pid: int | None, timeout_s: float = 30.0) -> None:
    """ray.kill returns before the process is gone; its teardown must not land in the next measurement."""
    deadline = time.perf_counter() + timeout_s
    while pid is not None and Path(f"/proc/{pid}").exists() and time.perf_counter() < deadline:
        time.sleep(0.05)


# -- the entry -----------------------------------------------------------------------------------------------
def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in values.items()}


def run(config: Config, item: dict[str, Any], scratch: Path, reps: int) -> Result:
    """`config`: the trainers (ZeRO-3) and the engine, on the `large` policy."""
    policy = config.model.policy
    params = parameter_count(Path(policy))
    bucket_bytes = BUCKET_MB * 2**20
    trainers = TrainerGroup(config, policy, reference=None)
    pool = GenerationPool(policy, config.generation)
    restart_gen = config.generation.model_copy(update={"enforce_eager": True})
    try:
        # Untimed, on fresh trainers: the first publish allocates rank 0's buffers, so its memory is what
        # publishing costs rank 0 (later sides reuse what earlier ones allocated).
        first, memory = publish_measured(trainers, pool, bucket_bytes)
        if not params * 4 <= first.bytes < params * 4 + 2**20:  # fp32, each tensor padded to 64 bytes
            raise UnequalWorkError(f"publish moved {first.bytes} bytes for {params} fp32 parameters")
        ours, reload, restart = [], [], []
        for rep in range(reps):
            settle()
            stats = publish_weights(trainers, pool, bucket_bytes)
            ours.append({"seconds": stats.seconds, "install_s": stats.install_seconds})
            settle()
            reload.append(reload_from_disk(trainers, pool, scratch / "reload", policy))
            if rep == 0:
                require_equal("disk reload: parameters saved", parameter_count(scratch / "reload"), params)
            settle()
            restart.append(restart_from_disk(trainers, restart_gen, scratch / "restart", policy, item))
        trainers.shutdown()
        # The memory reference, on fresh trainers too: the whole model in one bucket, as before bucketing.
        trainers = TrainerGroup(config, policy, reference=None)
        whole, whole_memory = publish_measured(trainers, pool, 2 * params * 4)
    finally:
        trainers.shutdown()
        pool.shutdown()
        shutil.rmtree(scratch, ignore_errors=True)
    result = compared(
        "weight_publish", "s", BASELINE, [r["seconds"] for r in ours], [r["seconds"] for r in reload]
    )
    state_bytes = params * 4
    result.runs |= {
        "model": "large",
        "params": params,
        "state_dict_bytes": state_bytes,
        "bucket_bytes": bucket_bytes,
        "buckets": first.buckets,
        "trainer_workers": config.trainer.num_workers,
        "zero_stage": config.trainer.zero_stage,
        "ours_bytes_per_s": [round(state_bytes / r["seconds"]) for r in ours],
        "ours_phases": [_rounded(r) for r in ours],
        "rank0_memory": memory,
        "baseline_phases": [_rounded(r) for r in reload],
        "restart_baseline": {"name": RESTART, "reps": [_rounded(r) for r in restart]},
        "one_bucket_reference": {"seconds": round(whole.seconds, 3), "rank0_memory": whole_memory},
    }
    return result
