"""`ultramedical bench [--only NAME ...] [--quick] [--out DIR]`: the benchmark suite (bench/ in the repo).

The suite lives outside the installed package (bench/ next to ultramedical/), so it is imported lazily,
with the repository root put on the path when the command runs from a checkout.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

NAMES = (
    "generation",
    "weight_publish",
    "weight_publish_cross_node",
    "dpo_train",
    "rm_train",
    "online_round",
    "reward_serving",
    "mfu",
    "round_scaling",
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark suite: this project vs TRL / transformers on this machine",
        description="Runs the benchmarks side by side with their baselines and writes results.json and "
        "results.md (see bench/README.md).",
    )
    parser.add_argument(
        "--only", nargs="+", choices=NAMES, metavar="NAME", help=f"run only these: {', '.join(NAMES)}"
    )
    parser.add_argument("--quick", action="store_true", help="1 repetition and small sizes: a smoke run")
    parser.add_argument(
        "--out",
        type=Path,
        help="where results.json/.md go (default: bench/; bench/out/partial with --quick/--only)",
    )
    parser.set_defaults(func=run)


def _suite():
    repo = Path(__file__).resolve().parents[2]
    if (repo / "bench" / "suite.py").is_file() and str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    try:
        return importlib.import_module("bench.suite")
    except ModuleNotFoundError as exc:
        if exc.name in ("bench", "bench.suite"):
            raise SystemExit("error: the benchmark suite (bench/) is only in a source checkout") from None
        raise


def run(args: argparse.Namespace) -> int:
    return _suite().run_suite(args.only, args.quick, args.out)
