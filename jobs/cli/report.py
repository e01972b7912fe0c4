"""`ultramedical report RUN_DIR [--out DIR]`: write report.md and a self-contained report.html."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    report = subparsers.add_parser(
        "report", help="write report.md and report.html (training curves, online rounds, results tables)"
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. runs/tiny")
    report.add_argument("--out", default=None, help="output directory (default: RUN_DIR)")
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from ultramedical.reporting import write_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        print(f"error: {run_dir} is not a directory", file=sys.stderr)
        return 2
    md, page = write_report(run_dir, args.out)
    print(md)
    print(page)
    return 0
