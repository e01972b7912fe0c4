"""DeepSpeed engine construction and the ZeRO-aware gathering of full weights."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.distributed as dist
from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup

from ultramedical.config import TrainerConfig


def prepare_deepspeed_environment(use_gpu: bool) -> None:
    """Before DeepSpeed is imported: its accelerator (picked at import; on CPU it must be told), and where
    and with which `ninja` its JIT ops (the CPU shared-memory allreduce) are built.

    The ninja is the one installed beside this interpreter, first on PATH. Otherwise processes whose PATH
    differs find different ninjas (a system 1.11 or the environment's 1.13), whose build logs hash
    commands differently (ninja 1.12 changed the hash), so each switch rebuilds the op from scratch:
    one to two minutes of both cores on a 2-core machine, inside whichever stage was starting.
    """
    os.environ.setdefault("DS_ACCELERATOR", "cuda" if use_gpu else "cpu")
    # Built ops belong to this environment's torch: kept inside it, so two checkouts never rebuild over
    # each other's (torch's default, ~/.cache/torch_extensions, is keyed by op name only).
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", os.path.join(sys.prefix, "torch_extensions"))
    interpreter_bin = os.path.dirname(sys.executable)
    if os.path.exists(os.path.join(interpreter_bin, "ninja")):
        path = os.environ.get("PATH", "").split(os.pathsep)
        os.environ["PATH"] = os.pathsep.join([interpreter_bin, *(p for p in path if p != interpreter_bin)])


def deepspeed_config(trainer: TrainerConfig, dtype: torch.dtype, lr: float) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": trainer.zero_stage}
    if trainer.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": trainer.use_gpu}
    if trainer.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": trainer.use_gpu}
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": trainer.micro_batch_size,
        "gradient_accumulation_steps": trainer.grad_accum_steps,
        "gradient_clipping": trainer.max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == torch.bfloat16},
        "fp16": {"enabled": dtype == torch.float16},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
    }
    if trainer.offload_optimizer:
        # Offloaded optimizer states need DeepSpeed's own CPU Adam.
        config["optimizer"] = {"type": "AdamW", "params": {"lr": lr, "weight_decay": trainer.weight_decay}}
    return config


@contextmanager
def partitioned_loading(ds_config: dict[str, Any]) -> Iterator[None]:
    """Under ZeRO-3, models loaded inside are built partitioned (`deepspeed.zero.Init` through
    transformers' HfDeepSpeedConfig): each rank reads the checkpoint but keeps only its shard, instead of
    a full copy per rank (8 x 141 GB of host memory for Llama-3-70B on one node). Below ZeRO-3: nothing."""
    if ds_config["zero_optimization"]["stage"] != 3:
        yield
        return
    from transformers.integrations.deepspeed import HfDeepSpeedConfig, unset_hf_deepspeed_config

    keep = HfDeepSpeedConfig(ds_config)  # transformers holds only a weak reference to it
    try:
        yield
    finally:
        del keep
        unset_hf_deepspeed_config()


def is_partitioned(model: torch.nn.Module) -> bool:
    """Whether every parameter is a ZeRO-3 partition (built by zero.Init, not yet gathered)."""
    return all(hasattr(p, "ds_id") and p.numel() == 0 for p in model.parameters())


def build_engine(
    model: torch.nn.Module,
    ds_config: dict[str, Any],
    trainer: TrainerConfig,
    lr: float,
    total_steps: int,
    schedule: str,
) -> Any:
    import deepspeed

    optimizer = None
    if "optimizer" not in ds_config:
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=trainer.weight_decay)
    warmup = int(trainer.warmup_ratio * total_steps)

    def scheduler(opt: torch.optim.Optimizer) -> Any:
        if schedule == "cosine":
            return get_cosine_schedule_with_warmup(opt, warmup, max(total_steps, 1))
        return get_constant_schedule_with_warmup(opt, warmup)

    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config, dist_init_required=False
    )
    return engine


def reference_config(trainer: TrainerConfig, dtype: torch.dtype) -> dict[str, Any]:
    """DeepSpeed config of a model that only runs forward passes: sharded like the policy under ZeRO-3,
    its parameters in host memory with trainer.offload_reference."""
    zero: dict[str, Any] = {"stage": 3 if trainer.zero_stage == 3 else 0}
    if trainer.zero_stage == 3 and trainer.offload_reference:
        zero["offload_param"] = {"device": "cpu", "pin_memory": trainer.use_gpu}
    return {
        "train_micro_batch_size_per_gpu": trainer.micro_batch_size,
        "gradient_accumulation_steps": 1,
        "zero_optimization": zero,
        "bf16": {"enabled": dtype == torch.bfloat16},
        "fp16": {"enabled": dtype == torch.float16},
        "steps_per_print": 10**9,
    }


def build_reference(path: str, trainer: TrainerConfig, dtype: torch.dtype, device: torch.device) -> Any:
    """The fixed reference policy of online DPO/KTO. Under ZeRO-3 a DeepSpeed inference engine over a
    model loaded partitioned, so each rank holds 1/world of it (OpenRLHF's reference actor does the same);
    below ZeRO-3 a plain copy on the rank's device, as small as the policy's own replica."""
    from ultramedical.models.loading import load_policy

    config = reference_config(trainer, dtype)
    if config["zero_optimization"]["stage"] != 3:
        return load_policy(path, dtype).to(device).eval()
    import deepspeed

    with partitioned_loading(config):
        model = load_policy(path, dtype)
    engine, _, _, _ = deepspeed.initialize(model=model, config=config, dist_init_required=False)
    engine.eval()
    return engine


def parameter_bytes(module: torch.nn.Module) -> list[tuple[str, int]]:
    """(name, bytes) of each parameter in order, at full size under ZeRO-3 (where a rank holds a shard)."""
    params = module.named_parameters()
    return [(name, getattr(p, "ds_numel", p.numel()) * p.element_size()) for name, p in params]


@contextmanager
def gathered_parameters(
    engine: Any, zero_stage: int, names: list[str]
) -> Iterator[dict[str, torch.Tensor] | None]:
    """The named parameters, whole, as {name: tensor} on rank 0 (None elsewhere) inside the block; every rank
    must enter it. The tensors are the live (or, under ZeRO-3, gathered) parameters: copy what must outlive
    the block. Under ZeRO-3 the gathered copies are freed on leaving it."""
    rank = dist.get_rank() if dist.is_initialized() else 0
    params = dict(engine.module.named_parameters())
    chosen = {name: params[name] for name in names}
    if zero_stage < 3:
        yield {name: p.detach() for name, p in chosen.items()} if rank == 0 else None
        return
    import deepspeed  # `deepspeed.zero` is an attribute of the package, not an importable module

    with deepspeed.zero.GatheredParameters(list(chosen.values()), modifier_rank=None):
        yield {name: p.detach() for name, p in chosen.items()} if rank == 0 else None


def gather_full_state_dict(engine: Any, zero_stage: int) -> dict[str, torch.Tensor] | None:
    """A CPU copy of the whole model's weights on rank 0 (None elsewhere); every rank must call it.

    Under ZeRO-3 each parameter is gathered in turn, so no rank ever holds two full copies.
    """
    rank = dist.get_rank() if dist.is_initialized() else 0
    module = engine.module
    if zero_stage < 3:
        if rank != 0:
            return None
        return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    for name, _ in module.named_parameters():
        with gathered_parameters(engine, zero_stage, [name]) as gathered:
            if gathered is not None:
                state[name] = gathered[name].to("cpu", copy=True)
    return state if rank == 0 else None
