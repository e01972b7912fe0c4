"""`ultramedical data sample|validate`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ultramedical.data.loading import Problem, iter_checked
from ultramedical.data.schemas import SCHEMAS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="build and check datasets")
    actions = data.add_subparsers(dest="action", required=True, metavar="ACTION")

    sample = actions.add_parser("sample", help="write the embedded sample corpus (no network needed)")
    sample.add_argument("--out", default="artifacts/data", help="output directory (default: artifacts/data)")
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(func=run_sample)

    validate = actions.add_parser("validate", help="report every bad record with its line number")
    validate.add_argument("file", help="JSONL, JSON or Parquet file, or a hub dataset id")
    validate.add_argument("--schema", choices=SCHEMAS, required=True)
    validate.add_argument("--split", default="train", help="split of a hub dataset")
    validate.set_defaults(func=run_validate)


def run_sample(args: argparse.Namespace) -> int:
    from ultramedical.data.sample import corpus_stats, generate_sample_corpus

    paths = generate_sample_corpus(Path(args.out), seed=args.seed)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print(json.dumps(corpus_stats(Path(args.out))))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    counts = {"records": 0, "valid": 0, "invalid": 0}
    for _, item in iter_checked(args.file, args.schema, args.split):
        counts["records"] += 1
        if isinstance(item, Problem):
            counts["invalid"] += 1
            print(f"{args.file}:{item}")
        else:
            counts["valid"] += 1
    print(json.dumps(counts))
    return 1 if counts["invalid"] else 0
