"""The one training loop. Ray Train workers run it for the offline stages; the online trainer actors
keep a `Learner` alive across rounds and call the same `Learner.fit`.

Per micro-batch: collate -> algorithm.loss -> DeepSpeed backward/step (accumulation, clipping, ZeRO and
the LR schedule live in the engine). Which examples each rank sees is training/sampler.py's; the metrics
lines are training/step_log.py's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ultramedical.config import Config
from ultramedical.models import lora
from ultramedical.models.loading import load_policy, load_reward_model, resolve_dtype, save_model
from ultramedical.models.packed import Bucket, plan_buckets
from ultramedical.training.algorithm import Algorithm, Example, ForwardContext
from ultramedical.training.deepspeed_setup import (
    build_engine,
    build_reference,
    deepspeed_config,
    gather_full_state_dict,
    gathered_parameters,
    is_partitioned,
    parameter_bytes,
    partitioned_loading,
    prepare_deepspeed_environment,
)
from ultramedical.training.sampler import (
    grouping_lengths,
    micro_batches_per_epoch,
    planned_steps,
    rank_batches,
)
from ultramedical.training.step_log import StepLog, all_gather_objects, rank_and_world


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; the message names the step."""


@dataclass
class Progress:
    """Where training stands; saved with every checkpoint so a resumed run continues from it."""

    step: int = 0
    epoch: int = 0
    micro: int = 0  # micro-batches done in the current epoch


class Learner:
    """A model in a DeepSpeed engine, trained by an algorithm. Needs torch.distributed set up first.

    `reference`: a fixed reference policy for `prepare` (online rounds keep the initial policy); without
    one, the reference pass runs through the current weights, which are the reference before step 1.

    With `model.lora` the model gets a fresh adapter, or continues the one `model_path` names if it is an
    adapter directory, and only the adapter trains; a fixed reference must then be the adapter's base,
    reached by disabling the adapter instead of loading a second model. Without LoRA an adapter directory
    is trained merged."""

    def __init__(
        self,
        algorithm: Algorithm,
        model_path: str,
        total_steps: int,
        schedule: str = "cosine",
        reference: str | None = None,
    ):
        config: Config = algorithm.config
        prepare_deepspeed_environment(config.trainer.use_gpu)
        if config.trainer.use_gpu:
            # This rank's GPU, before anything touches CUDA: DeepSpeed and NCCL's object collectives use
            # the current device, which is otherwise GPU 0 for every rank of a node.
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        self.algorithm = algorithm
        self.config = config
        self.dtype = resolve_dtype(config.model.dtype, config.trainer.use_gpu)
        torch.manual_seed(config.trainer.seed)
        ds_config = deepspeed_config(config.trainer, self.dtype, algorithm.settings.lr)
        self.lora = config.model.lora
        adapter = model_path if self.lora is not None and lora.is_adapter_dir(model_path) else None
        model_path = lora.adapter_base(model_path) if adapter else lora.full_model_dir(model_path)
        with partitioned_loading(ds_config):  # ZeRO-3: each rank builds only its shard
            if algorithm.model_kind == "reward":
                model = load_reward_model(model_path, self.dtype)
            else:
                model = load_policy(model_path, self.dtype)
        self.loaded_partitioned = is_partitioned(model)
        if self.lora is not None:
            if adapter is not None:
                model = lora.load_adapter(model, adapter, trainable=True)
            else:
                model = lora.add_adapter(model, self.lora, algorithm.model_kind, base=model_path)
        if config.model.gradient_checkpointing:
            model.gradient_checkpointing_enable()
            if self.lora is not None:
                model.enable_input_require_grads()  # frozen embeddings: checkpointed blocks need a grad input
        self.pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
        self.engine = build_engine(
            model, ds_config, config.trainer, algorithm.settings.lr, total_steps, schedule
        )
        self.rank, self.world = rank_and_world()
        self.device = self.engine.device
        # Only ever runs forward passes; sharded like the policy under ZeRO-3. With LoRA: the base itself.
        self.reference_is_base = self.lora is not None and reference is not None
        if self.reference_is_base and lora.full_model_dir(reference) != model_path:
            raise ValueError(
                f"with model.lora the reference is the model the adapter trains on ({model_path}), "
                f"not {reference}"
            )
        self.reference = (
            build_reference(reference, config.trainer, self.dtype, self.device)
            if reference and not self.reference_is_base
            else None
        )
        self.model_path = model_path

    @property
    def step(self) -> int:
        return int(self.engine.global_steps)

    def prepare(self, examples: list[Example], reference: torch.nn.Module | None = None) -> list[Example]:
        """The algorithm's once-before-training pass (reference log-probs): through `reference` (a model
        from `build_reference`), else the learner's fixed reference, else the current weights."""
        reference = reference if reference is not None else self.reference
        ctx = ForwardContext(self.rank, self.world, self.config.trainer.micro_batch_size, all_gather_objects)
        self.engine.eval()
        disable_adapter = reference is None and self.reference_is_base
        model = _OnDevice(
            reference if reference is not None else self.engine.module, self.device, disable_adapter
        )
        examples = self.algorithm.prepare(model, examples, ctx)
        self.engine.train()
        return examples

    def train_micro_batch(self, examples: list[Example]) -> tuple[dict[str, torch.Tensor], int]:
        batch = {k: v.to(self.device) for k, v in self.algorithm.collate(examples, self.pad_id).items()}
        loss, metrics = self.algorithm.loss(self.engine, batch)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"{self.algorithm.stage}: non-finite loss ({loss.item()}) at step {self.step + 1}; "
                "lower the learning rate or check the data"
            )
        self.engine.backward(loss)
        self.engine.step()
        return {"loss": loss.detach(), **{k: v.detach() for k, v in metrics.items()}}, self.algorithm.tokens(
            batch
        )

    def fit(
        self,
        examples: Sequence[Example],
        epochs: float,
        progress: Progress | None = None,
        max_steps: int | None = None,
        on_log: Callable[[dict[str, Any]], None] | None = None,
        on_step: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Train over the examples; returns where it stopped. Callbacks run on every rank."""
        trainer = self.config.trainer
        progress = progress or Progress()
        per_epoch = micro_batches_per_epoch(
            len(examples), self.world, trainer.micro_batch_size, trainer.grad_accum_steps
        )
        if per_epoch == 0:
            raise ValueError(
                f"{self.algorithm.stage}: {len(examples)} examples are too few for {self.world} workers x "
                f"micro_batch_size {trainer.micro_batch_size} x grad_accum_steps {trainer.grad_accum_steps}"
            )
        total = planned_steps(len(examples), epochs, self.world, trainer, max_steps)
        log = StepLog()
        lengths = grouping_lengths(self.config, self.algorithm, examples)
        while progress.step < total:
            batches = rank_batches(len(examples), progress.epoch, trainer, self.rank, self.world, lengths)
            for index in range(progress.micro, per_epoch):
                metrics, tokens = self.train_micro_batch([examples[i] for i in batches[index]])
                log.add(metrics, tokens)
                progress.micro = index + 1
                if progress.micro % trainer.grad_accum_steps:
                    continue
                progress.step += 1
                if progress.step % trainer.log_every_steps == 0 or progress.step >= total:
                    line = log.reduce() | {
                        "step": progress.step,
                        "epoch": progress.epoch + progress.micro / per_epoch,
                        "lr": self.engine.get_lr()[0],
                    }
                    if on_log:
                        on_log(line)
                    log = StepLog()
                if on_step:
                    on_step(progress)
                if progress.step >= total:
                    break
            if progress.micro >= per_epoch:
                progress.epoch, progress.micro = progress.epoch + 1, 0
        return progress

    def full_state_dict(self) -> dict[str, torch.Tensor] | None:
        return gather_full_state_dict(self.engine, self.config.trainer.zero_stage)

    def save(self, out_dir: str | Path, tokenizer: Any) -> Path | None:
        """The model as an HF directory (with LoRA: the adapter in PEFT format), written by rank 0; every
        rank must call it (ZeRO-3 gathers)."""
        module = self.engine.module
        if self.lora is None:
            state = self.full_state_dict()
            return None if state is None else save_model(module, tokenizer, out_dir, state_dict=state)
        with self.gathered(lora.trainable_names(module)) as trained:
            if trained is None:
                return None
            return lora.save_adapter(module, tokenizer, out_dir, trained)

    def publish_buckets(self, bucket_bytes: int) -> list[Bucket]:
        """The publish buckets (parameter names and packed bytes); the same on every rank. With LoRA only
        the adapter is published."""
        sizes = parameter_bytes(self.engine.module)
        if self.lora is not None:
            trainable = set(lora.trainable_names(self.engine.module))
            sizes = [(name, size) for name, size in sizes if name in trainable]
        return plan_buckets(sizes, bucket_bytes)

    def published_form(self, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Gathered parameters under the names the engines load: HF names, or with LoRA PEFT's."""
        return state if self.lora is None else lora.saved_form(self.engine.module, state)

    def gathered(self, names: list[str]) -> AbstractContextManager[dict[str, torch.Tensor] | None]:
        """The named parameters, whole, on rank 0 inside the block (see `gathered_parameters`)."""
        return gathered_parameters(self.engine, self.config.trainer.zero_stage, names)


class _OnDevice(torch.nn.Module):
    """Forward of the wrapped module with inputs moved to its device (for reference passes), with its LoRA
    adapter disabled if asked (the base model is the reference)."""

    def __init__(self, module: torch.nn.Module, device: torch.device, disable_adapter: bool = False):
        super().__init__()
        self.module, self.device, self.disable_adapter = module, device, disable_adapter

    def forward(self, **inputs: Any) -> Any:
        inputs = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in inputs.items()}
        if not self.disable_adapter:
            return self.module(**inputs)
        with lora.adapter_disabled(self.module):
            return self.module(**inputs)
