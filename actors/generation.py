"""The vLLM generation pool: N engine actors, least-loaded dispatch, in-place weight installs, and
re-sending of the batches an engine was holding when it died."""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError

from actors.actor_group import ActorGroup
from actors.recovery import call_when_available
from actors.weight_receiver import OBJECT_STORE_RECEIVER, bucket_handles
from ultramedical.config import GenerationConfig, LoraConfig
from ultramedical.generation.engine import Sampling
from ultramedical.models import lora as adapters
from ultramedical.online.round_data import GeneratedItem, GenerationStats, PromptItem
from ultramedical.runtime import torch_threads


def call_size(items: int, per_call: int, engines: int) -> int:
    """Prompts per engine call: `per_call`, fewer where that would leave one of `engines` without work."""
    return max(1, min(per_call, math.ceil(items / max(1, engines))))


@ray.remote
class GenerationEngine:
    """One vLLM engine in this actor's process (uni executor); with tensor parallelism its workers are
    Ray actors on the bundles of this actor's placement group."""

    extra_sampling: dict[str, Any] = {}  # more vLLM SamplingParams for every call (a subclass may set them)

    def __init__(
        self, model_path: str, settings: GenerationConfig, seed: int, lora: LoraConfig | None = None
    ):
        """`lora`: the policy is a LoRA adapter on `model_path` (or, for an adapter directory, on its base);
        publishes then carry only the adapter, which vLLM serves on the unchanged base."""
        from ultramedical.generation.engine import build_llm, lora_request

        threads = torch_threads(settings.threads, settings.cpus_per_engine)
        self.lora = lora
        adapter = model_path if lora is not None and adapters.is_adapter_dir(model_path) else None
        self.base = adapters.adapter_base(model_path) if adapter else adapters.full_model_dir(model_path)
        self.llm = build_llm(
            self.base,
            settings,
            seed=seed,
            threads=threads,
            worker_extension=OBJECT_STORE_RECEIVER,
            lora_rank=lora.rank if lora is not None else None,
        )
        # Adapter ids count publishes: 1 is the one the engine started with, if any.
        self.adapter_version = 1 if adapter else 0
        self.adapter = lora_request("policy-v1", 1, adapter) if adapter else None
        self.adapter_root = Path(tempfile.mkdtemp(prefix="ultramedical-adapters-"))

    def ready(self) -> bool:
        return True

    @ray.method(num_returns=2)
    def generate(
        self, batch: list[PromptItem], sampling: Sampling
    ) -> tuple[GenerationStats, list[GeneratedItem]]:
        """Completes every item's `prompt_token_ids`; returns (a small summary, the items with completions).

        Two return values let the controller watch the summary while the completions stay in the
        object store for the scorer.
        """
        from ultramedical.generation.engine import generate

        start = time.perf_counter()
        outputs = generate(
            self.llm,
            [item["prompt_token_ids"] for item in batch],
            sampling,
            adapter=self.adapter,
            **self.extra_sampling,
        )
        items: list[GeneratedItem] = [
            {**item, "completions": completions} for item, completions in zip(batch, outputs, strict=True)
        ]
        tokens = sum(len(c["token_ids"]) for completions in outputs for c in completions)
        return GenerationStats(len(batch), tokens, time.perf_counter() - start), items

    def install_weights(self, buckets: list[ray.ObjectRef]) -> float:
        """Install published buckets (handles in a list, so Ray passes them on unresolved: the engine's
        workers fetch them); returns the seconds taken."""
        from ultramedical.generation.engine import install_published

        start = time.perf_counter()
        if self.lora is not None:
            self._install_adapter(buckets)
        else:
            install_published(self.llm, bucket_handles(buckets))
        return time.perf_counter() - start

    def _install_adapter(self, buckets: list[ray.ObjectRef]) -> None:
        """A published adapter becomes the next version every later call generates with; the previous
        version's files on this node go."""
        from ultramedical.generation.engine import install_published_adapter, lora_request

        self.adapter_version += 1
        directory = self.adapter_root / f"v{self.adapter_version}"
        config = adapters.config_json(adapters.peft_config(self.lora, "causal", self.base))
        install_published_adapter(self.llm, bucket_handles(buckets), str(directory), config)
        previous = self.adapter
        self.adapter = lora_request(f"policy-v{self.adapter_version}", self.adapter_version, str(directory))
        if previous is not None and Path(previous.lora_path).parent == self.adapter_root:
            shutil.rmtree(previous.lora_path, ignore_errors=True)

    def install_checkpoint(self, directory: str) -> float:
        """Load a checkpoint's files on shared storage into this live engine; returns the seconds taken."""
        from ultramedical.generation.engine import install_checkpoint

        start = time.perf_counter()
        install_checkpoint(self.llm, directory)
        return time.perf_counter() - start


class GenerationPool(ActorGroup):
    """Driver-side handle on the engines. Holds the latest published weights' reference so an engine
    that restarts (from the original checkpoint) is brought up to date before it gets work again."""

    engine_class: Any = GenerationEngine  # the engine actor (a benchmark's subclass may stand in)

    def __init__(
        self,
        model_path: str,
        gen: GenerationConfig,
        seed: int = 0,
        scheduling: list[dict[str, Any]] | None = None,
        wait: bool = True,
        lora: LoraConfig | None = None,
    ):
        self.gen = gen
        options = {
            "max_restarts": gen.max_restarts,
            "max_task_retries": 0,
            "num_cpus": gen.cpus_per_engine,
            "num_gpus": gen.gpus_per_engine,
        }
        super().__init__(
            self.engine_class, gen.engines, options, scheduling, lambda i: (model_path, gen, seed + i, lora)
        )
        self.engines = self.actors
        self.start([engine.ready.remote() for engine in self.engines], wait)
        self.weights: list[ray.ObjectRef] = []  # the latest publish's buckets
        self.restarts_seen = 0
        self.alive = [True] * len(self.engines)

    def generate(
        self, items: list[PromptItem], sampling: Sampling, per_call: int | None = None
    ) -> tuple[list[ray.ObjectRef], GenerationStats]:
        """Dispatch the items in batches to the least-loaded engine; returns the references of the
        `GeneratedItem` batches in input order, and the totals. Batches lost with an engine are re-sent.

        Batches hold `prompts_per_call` prompts, fewer where that would leave a live engine without work.
        """
        per_call = call_size(len(items), per_call or self.gen.prompts_per_call, sum(self.alive))
        pending = deque((i, items[i : i + per_call]) for i in range(0, len(items), per_call))
        results: dict[int, ray.ObjectRef] = {}
        in_flight: dict[ray.ObjectRef, tuple[int, int, list[PromptItem], ray.ObjectRef]] = {}
        # A dead engine never looks least loaded.
        load = [0 if alive else 1 << 30 for alive in self.alive]
        prompts = tokens = 0
        start = time.perf_counter()
        while pending or in_flight:
            if not any(self.alive):
                raise RuntimeError("every generation engine died and used up its restarts")
            while pending and min(load) < 2:  # two batches per engine keep it busy between calls
                engine = min(range(len(load)), key=load.__getitem__)
                offset, batch = pending.popleft()
                summary, payload = self.engines[engine].generate.remote(batch, sampling)
                in_flight[summary] = (engine, offset, batch, payload)
                load[engine] += 1
            done, _ = ray.wait(list(in_flight), num_returns=1)
            engine, offset, batch, payload = in_flight.pop(done[0])
            load[engine] -= 1
            try:
                summary = ray.get(done[0])
            except RayActorError:
                self.restarts_seen += 1
                if not self._bring_up_to_date(engine):
                    self.alive[engine] = False
                    load[engine] = 1 << 30
                pending.appendleft((offset, batch))
                continue
            results[offset] = payload
            prompts += summary.prompts
            tokens += summary.tokens
        stats = GenerationStats(prompts, tokens, time.perf_counter() - start)
        return [results[k] for k in sorted(results)], stats

    def install(self, buckets: list[ray.ObjectRef]) -> list[ray.ObjectRef]:
        """Start installing a publish's buckets on every live engine, and keep them so an engine that
        restarts gets these weights; returns the calls (each gives its seconds)."""
        self.weights = list(buckets)
        live = [engine for engine, alive in zip(self.engines, self.alive, strict=True) if alive]
        return [engine.install_weights.remote(self.weights) for engine in live]

    def _bring_up_to_date(self, engine: int) -> bool:
        """A restarted engine came back with the initial weights: give it the latest ones.
        False when the engine is gone for good."""
        handle = self.engines[engine]
        if self.weights:
            alive, _ = call_when_available(lambda: handle.install_weights.remote(self.weights))
        else:
            alive, _ = call_when_available(handle.ready.remote)
        return alive
