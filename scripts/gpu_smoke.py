"""The paper-scale training path on one machine, without Ray or vLLM: for the first GPU we get.

    python -m scripts.gpu_smoke                      # CUDA: NCCL, bf16, ZeRO-3, one rank per GPU
    python -m scripts.gpu_smoke --device cpu --world 2 [--offload]   # the same on gloo (the suite runs it)

On a Llama-3-shaped checkpoint (models/llama3_shape.py; or --model DIR) it runs the library's own training
loop (`Learner`) for SFT, RM, DPO and KTO under ZeRO-3, and checks what only shows at scale: the model is
partitioned as it loads, the metrics reduction runs on the backend's device, the sharded reference gives
the log-probs of an unsharded one, and the ZeRO-3 gather that publishing uses returns every full weight.
It needs torch, transformers, accelerate and deepspeed only, and prints one JSON line; exit 1 if a check
failed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
STAGES = ("sft", "rm", "dpo", "kto")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--world", type=int, default=None, help="ranks (default: every GPU, or 2 on CPU)")
    parser.add_argument(
        "--offload", action="store_true", help="optimizer, parameters and reference on the host"
    )
    parser.add_argument(
        "--model", default=None, help="a policy directory (default: build a Llama-3-shaped one)"
    )
    parser.add_argument(
        "--lora", action="store_true", help="train LoRA adapters (model.lora); the reference is the base"
    )
    parser.add_argument("--steps", type=int, default=2, help="optimiser steps per stage")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--work-dir", default=None, help="where the corpus and model are built")
    args = parser.parse_args(argv)
    world = args.world or (torch.cuda.device_count() if args.device == "cuda" else 2)

    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gpu-smoke-"))
    data, policy = build_inputs(work, args.model)
    result_path = work / "result.json"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = {
        "device": args.device,
        "world": world,
        "offload": args.offload,
        "lora": args.lora,
        "steps": args.steps,
        "stages": args.stages,
        "data": str(data),
        "policy": str(policy),
        "port": port,
        "result": str(result_path),
    }
    torch.multiprocessing.spawn(run_rank, args=(spec,), nprocs=world, join=True)
    result = json.loads(result_path.read_text())
    print(json.dumps(result))
    return 0 if result["ok"] else 1


def build_inputs(work: Path, model: str | None) -> tuple[Path, Path]:
    from ultramedical.data.sample import generate_sample_corpus
    from ultramedical.models.llama3_shape import init_llama3_shaped
    from ultramedical.models.tiny import corpus_texts

    data = work / "data"
    if not (data / "preferences.jsonl").exists():
        generate_sample_corpus(data)
    if model:
        return data, Path(model)
    if not (work / "llama3" / "policy").exists():
        init_llama3_shaped(corpus_texts(data), work / "llama3")
    return data, work / "llama3" / "policy"


def smoke_config(spec: dict[str, Any]) -> Any:
    from ultramedical.config import load_config

    data, offload = Path(spec["data"]), spec["offload"]
    return load_config(
        REPO_ROOT / "configs" / "tiny-cpu.yaml",
        {
            "model.policy": spec["policy"],
            "model.max_seq_len": 256,
            "model.dtype": "bfloat16" if spec["device"] == "cuda" else "float32",
            "data.instructions": [{"path": str(data / "instructions.jsonl"), "max_records": 32}],
            "data.preferences": {"path": str(data / "preferences.jsonl"), "max_records": 16},
            "trainer.num_workers": spec["world"],
            "trainer.use_gpu": spec["device"] == "cuda",
            "trainer.zero_stage": 3,
            "trainer.offload_optimizer": offload,
            "trainer.offload_params": offload,
            "trainer.offload_reference": offload,
            "trainer.micro_batch_size": 2,
            "trainer.grad_accum_steps": 1,
            "trainer.log_every_steps": 1,
            "model.lora": {"rank": 8, "alpha": 16, "dropout": 0.0} if spec["lora"] else None,
        },
    )


def run_rank(rank: int, spec: dict[str, Any]) -> None:
    import torch.distributed as dist

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(spec["port"]),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(spec["world"]),
    )
    torch.set_num_threads(1 if spec["device"] == "cpu" else torch.get_num_threads())
    dist.init_process_group(
        "nccl" if spec["device"] == "cuda" else "gloo", rank=rank, world_size=spec["world"]
    )
    config = smoke_config(spec)
    checks: dict[str, Any] = {}
    for stage in spec["stages"]:
        checks[stage] = train_stage(config, stage, spec)
        gc.collect()
    checks["reference"] = compare_reference(config, spec)
    if rank == 0:
        problems = [f"{name}: {check['problem']}" for name, check in checks.items() if check.get("problem")]
        result = {
            "ok": not problems,
            "problems": problems,
            "device": spec["device"],
            "world": spec["world"],
            "backend": dist.get_backend(),
            "zero_stage": 3,
            "offload": spec["offload"],
            "gpu": torch.cuda.get_device_name() if spec["device"] == "cuda" else None,
            "ray_imported": "ray" in sys.modules,
            "vllm_imported": "vllm" in sys.modules,
            **checks,
        }
        Path(spec["result"]).write_text(json.dumps(result))
    dist.barrier()
    dist.destroy_process_group()


def train_stage(config: Any, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A few optimiser steps of one stage through the library's loop; the publish gather after them."""
    from ultramedical.models.loading import load_tokenizer
    from ultramedical.training import ALGORITHMS
    from ultramedical.training.loop import Learner

    algorithm = ALGORITHMS[stage](config)
    examples, _ = algorithm.load(load_tokenizer(spec["policy"]))
    learner = Learner(algorithm, spec["policy"], total_steps=spec["steps"])
    examples = learner.prepare(examples)
    lines: list[dict[str, Any]] = []
    learner.fit(examples, epochs=1, max_steps=spec["steps"], on_log=lines.append)
    check: dict[str, Any] = {
        "partitioned_at_load": learner.loaded_partitioned,
        "steps": len(lines),
        "loss": lines[-1]["loss"] if lines else None,
        "tokens_per_s": lines[-1]["tokens_per_s"] if lines else None,
    }
    if spec["lora"]:
        check.update(check_adapter(learner, stage, spec))
    state = learner.full_state_dict()  # every rank joins the gather; rank 0 gets the weights
    if state is not None:
        expected = {name: tuple(p.ds_shape) for name, p in learner.engine.module.named_parameters()}
        check["gathered_parameters"] = sum(t.numel() for t in state.values())
        check["gathered_full_shapes"] = {k: tuple(v.shape) for k, v in state.items()} == expected
    problem = []
    if not learner.loaded_partitioned:
        problem.append("the model was loaded whole, not partitioned by zero.Init")
    if len(lines) != spec["steps"] or not all(torch.isfinite(torch.tensor(line["loss"])) for line in lines):
        problem.append(f"expected {spec['steps']} finite logged steps, got {lines}")
    if state is not None and not check["gathered_full_shapes"]:
        problem.append("the ZeRO-3 gather did not return every parameter at its full shape")
    problem += check.pop("adapter_problems", [])
    check["problem"] = "; ".join(problem) or None
    del learner, state
    return check


def check_adapter(learner: Any, stage: str, spec: dict[str, Any]) -> dict[str, Any]:
    """With LoRA: only the adapter (and a reward model's score head) trains, it is saved in PEFT format
    from the gathered partitions, and PEFT loads it onto the base."""
    from ultramedical.models import lora
    from ultramedical.models.loading import load_policy, load_reward_model, load_tokenizer

    module = learner.engine.module
    trainable = lora.trainable_names(module)
    out = Path(spec["result"]).parent / f"adapter-{stage}"
    saved = learner.save(out, load_tokenizer(spec["policy"]))  # every rank joins the gather
    if saved is None:
        return {}
    problems = [
        f"trainable outside the adapter: {n}" for n in trainable if "lora_" not in n and "score" not in n
    ]
    from peft import PeftModel

    base = load_reward_model(spec["policy"]) if stage == "rm" else load_policy(spec["policy"])
    loaded = PeftModel.from_pretrained(base, str(saved))
    adapter_params = sum(p.numel() for n, p in loaded.named_parameters() if "lora_" in n)
    trained_params = sum(
        getattr(p, "ds_numel", p.numel()) for n, p in module.named_parameters() if "lora_" in n
    )
    model_params = sum(getattr(p, "ds_numel", p.numel()) for p in module.parameters()) - trained_params
    if not lora.is_adapter_dir(saved) or adapter_params != trained_params or adapter_params == 0:
        problems.append(
            f"{saved}: PEFT loaded {adapter_params} adapter parameters of {trained_params} trained"
        )
    return {
        "adapter_params": adapter_params,
        "adapter_fraction": adapter_params / model_params,
        "adapter_problems": problems,
    }


def compare_reference(config: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """DPO reference log-probs from the sharded reference (`build_reference`; with LoRA the partitioned
    policy with its trained adapter disabled) against an unsharded copy."""
    from ultramedical.models.loading import load_policy, load_tokenizer
    from ultramedical.training import ALGORITHMS
    from ultramedical.training.algorithm import ForwardContext
    from ultramedical.training.deepspeed_setup import build_reference
    from ultramedical.training.loop import Learner, _OnDevice

    algorithm = ALGORITHMS["dpo"](config)
    examples, _ = algorithm.load(load_tokenizer(spec["policy"]))
    if spec["lora"]:
        learner = Learner(algorithm, spec["policy"], total_steps=2, reference=spec["policy"])
        learner.fit(learner.prepare(examples), epochs=1, max_steps=2)  # an adapter that changes the model
        sharded = learner.prepare(examples)
        partitioned = learner.loaded_partitioned and learner.reference is None
    else:
        learner = Learner(algorithm, spec["policy"], total_steps=1)
        reference = build_reference(spec["policy"], config.trainer, learner.dtype, learner.device)
        sharded = learner.prepare(examples, reference)
        partitioned = all(hasattr(p, "ds_id") for p in reference.module.parameters())
    if learner.rank != 0:
        return {}
    whole = _OnDevice(load_policy(spec["policy"], learner.dtype).to(learner.device).eval(), learner.device)
    alone = algorithm.prepare(
        whole, examples, ForwardContext(0, 1, config.trainer.micro_batch_size, lambda v: [v])
    )
    diff = max(
        abs(a[k] - b[k]) for a, b in zip(sharded, alone, strict=True) for k in ("ref_chosen", "ref_rejected")
    )
    scale = max(abs(a["ref_chosen"]) for a in alone)
    tolerance = 1e-4 * scale if learner.dtype == torch.float32 else 2e-2 * scale
    problem = []
    if not partitioned:
        problem.append("the reference is not a ZeRO-3 partitioned model")
    if diff > tolerance:
        problem.append(f"sharded reference log-probs differ by {diff:.3g} (tolerance {tolerance:.3g})")
    return {
        "pairs": len(examples),
        "max_abs_diff": diff,
        "partitioned": partitioned,
        "problem": "; ".join(problem) or None,
    }


if __name__ == "__main__":
    sys.exit(main())
