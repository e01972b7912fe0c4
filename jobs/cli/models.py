"""`ultramedical init-model`: the embedded tiny policy and reward model; `ultramedical merge`: a LoRA
adapter merged into its base."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    init = subparsers.add_parser("init-model", help="build the embedded tiny Llama policy and reward model")
    init.add_argument("--corpus", default="artifacts/data", help="sample corpus the tokenizer is fitted to")
    init.add_argument("--out", default="artifacts/tiny", help="writes OUT/policy and OUT/reward")
    init.add_argument(
        "--size", choices=("tiny", "small", "large"), default="tiny", help="~5M, ~13M or ~280M parameters"
    )
    init.add_argument(
        "--like",
        choices=("embedded", "llama3"),
        default="embedded",
        help="llama3: Llama-3-8B-Instruct's tokenizer facts and config (vocab 128256, <|eot_id|> eos, no pad "
        "token, GQA, untied) at a tiny width, to try the paper-scale path on a CPU (--size is ignored)",
    )
    init.add_argument("--vocab-size", type=int, default=4096)
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(func=run_init_model)

    merge = subparsers.add_parser(
        "merge",
        help="merge a LoRA adapter (a stage's or round's final/ with model.lora) into its base model",
        description="Write the adapter merged into the base model it names: a plain HF model directory "
        "that transformers and vLLM load.",
    )
    merge.add_argument("adapter", help="an adapter directory in PEFT format")
    merge.add_argument("--out", help="where the merged model goes (default: ADAPTER/merged)")
    merge.set_defaults(func=run_merge)


def run_init_model(args: argparse.Namespace) -> int:
    from ultramedical.models.llama3_shape import init_llama3_shaped
    from ultramedical.models.loading import load_policy
    from ultramedical.models.tiny import corpus_texts, init_tiny_models, parameter_count

    if args.like == "llama3":
        paths = init_llama3_shaped(corpus_texts(args.corpus), args.out, seed=args.seed)
    else:
        paths = init_tiny_models(
            args.corpus, args.out, size=args.size, vocab_size=args.vocab_size, seed=args.seed
        )
    params = parameter_count(load_policy(paths["policy"]))
    print(json.dumps({"policy": str(paths["policy"]), "reward": str(paths["reward"]), "parameters": params}))
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from ultramedical.models.lora import full_model_dir, is_adapter_dir, merge_adapter

    if not is_adapter_dir(args.adapter):
        print(
            f"error: {args.adapter} is not a LoRA adapter directory (adapter_config.json and "
            "adapter_model.safetensors)"
        )
        return 2
    merged = merge_adapter(args.adapter, args.out) if args.out else full_model_dir(args.adapter)
    print(merged)
    return 0
