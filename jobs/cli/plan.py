"""`ultramedical plan --config PRESET [--cluster cluster.yaml] [--section.key VALUE ...]`.

Per role GPUs, node type, GPU and host memory, and the object store against the cluster's node types;
human-readable lines, then one JSON line. Exit 1 when the preset does not fit, 2 when it cannot be planned.
"""

from __future__ import annotations

import argparse
import json
import sys

from jobs.cli.train import add_config_arguments


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="will a preset fit a cluster, and where (no GPU, no network)",
        description="Memory per GPU and per node for trainers, engines and scorers, checked against "
        "the node types of a Ray autoscaler config.",
    )
    add_config_arguments(parser)
    parser.add_argument("--cluster", default="cluster.yaml", help="autoscaler config (default: cluster.yaml)")
    parser.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    from ultramedical.config import load_config
    from ultramedical.planning import ArchitectureError, format_plan, make_plan

    config = load_config(args.config, args.overrides)
    try:
        plan = make_plan(config, args.cluster)
    except (ArchitectureError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in format_plan(plan):
        print(line)
    print(json.dumps(plan))
    return 0 if plan["fits"] else 1
