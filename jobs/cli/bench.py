"""`ultramedical bench [--only NAME ...] [--quick] [--out DIR]`: the benchmark suite (bench/ in the repo).

The suite is not part of the installed package: it is there only in a source checkout, next to jobs/.
`python -m jobs.cli bench` runs with the checkout on the path already; the `ultramedical` console script
does not, so the checkout that holds this file is put on the path when it has bench/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

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


def _suite() -> ModuleType:
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "bench" / "suite.py").is_file() and str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    try:
        import bench.suite
    except ModuleNotFoundError as exc:
        if exc.name in ("bench", "bench.suite"):
            raise SystemExit("error: the benchmark suite (bench/) is only in a source checkout") from None
        raise
    return bench.suite


def run(args: argparse.Namespace) -> int:
    return _suite().run_suite(args.only, args.quick, args.out)
