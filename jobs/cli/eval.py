"""`ultramedical eval mcq|rm`: benchmark accuracy of a policy, and pairwise accuracy of a reward model.

    ultramedical eval mcq --benchmark medqa --data FILE_OR_HUB_ID --model DIR [--mode greedy|sc|bon]
                          [--n 10] [--reward-model DIR] [--out FILE] [--label NAME] [--run-dir DIR]
    ultramedical eval rm --model DIR --data FILE_OR_HUB_ID [--out FILE]

The last line printed is the summary as JSON. With --run-dir the summary is also appended to the
run's eval/results.jsonl (eval/rm.jsonl), where `ultramedical report` finds it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ultramedical.eval.benchmarks import BENCHMARKS
from ultramedical.eval.mcq import MODES


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from jobs.cli.train import add_config_arguments

    evaluate = subparsers.add_parser("eval", help="evaluate a policy on medical benchmarks or a reward model")
    actions = evaluate.add_subparsers(dest="action", required=True, metavar="ACTION")

    mcq = actions.add_parser("mcq", help="MedQA / MedMCQA / PubMedQA / MMLU accuracy with a 95%% interval")
    mcq.add_argument("--benchmark", required=True, choices=BENCHMARKS)
    mcq.add_argument("--data", required=True, help="JSONL/JSON/Parquet file or hub dataset id")
    mcq.add_argument("--split", default="test")
    mcq.add_argument("--model", required=True, help="policy directory or hub id")
    mcq.add_argument("--mode", choices=MODES, default="greedy")
    mcq.add_argument("--n", type=int, help="samples for sc and bon (default: eval.samples)")
    mcq.add_argument("--reward-model", help="reward model for best-of-N")
    mcq.add_argument("--subjects", nargs="*", help="MMLU subjects (default: the medical ones)")
    mcq.add_argument("--max-items", type=int)
    mcq.add_argument("--out", help="per-item outputs (JSONL)")
    mcq.add_argument(
        "--label", help="model name in the run's results table (default: the model's directory name)"
    )
    mcq.add_argument("--run-dir", help="append the summary to RUN_DIR/eval/results.jsonl")
    add_config_arguments(mcq)
    mcq.set_defaults(func=run_mcq)

    rm = actions.add_parser("rm", help="pairwise accuracy of a reward model per subset")
    rm.add_argument("--model", required=True)
    rm.add_argument("--data", required=True)
    rm.add_argument("--split", default="test")
    rm.add_argument("--out", help="write the summary JSON here too")
    rm.add_argument("--label")
    rm.add_argument("--run-dir")
    add_config_arguments(rm)
    rm.set_defaults(func=run_rm)


def run_mcq(args: argparse.Namespace) -> int:
    from ultramedical.config import load_config
    from ultramedical.eval.runner import evaluate_policy

    config = load_config(args.config, args.overrides)
    summary = evaluate_policy(
        config,
        args.model,
        args.benchmark,
        args.data,
        mode=args.mode,
        split=args.split,
        n=args.n,
        reward_model=args.reward_model,
        subjects=args.subjects,
        max_items=args.max_items,
        out=args.out,
        label=args.label,
        run_dir=args.run_dir,
    )
    print(json.dumps(summary))
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from ultramedical.eval.runner import evaluate_reward_model

    summary = evaluate_reward_model(
        args.model, args.data, split=args.split, label=args.label, run_dir=args.run_dir
    )
    if args.out:
        from ultramedical.io import atomic_write_json

        atomic_write_json(Path(args.out), summary)
    print(json.dumps(summary))
    return 0
