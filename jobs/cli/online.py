"""`ultramedical iterate`: online iterative preference learning. The arguments are parsed by
jobs/iterative_dpo.py itself (`main` in jobs/cli/__init__.py hands them over); this entry only
lists the command in `ultramedical --help`."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    subparsers.add_parser(
        "iterate", help="online iterative DPO/KTO: vLLM engines, reward scorers and DeepSpeed trainers on Ray"
    )
