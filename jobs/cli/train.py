"""`ultramedical sft|rm|dpo|kto --config PRESET [--resume|--overwrite] [--section.key VALUE ...]`.

The stage recipe of jobs/train_stage.py (`train`), run without its shared-storage check; the arguments
are declared here once, for both command lines.
"""

from __future__ import annotations

import argparse

from ultramedical.rundir import STAGES

HELP = {
    "sft": "supervised fine-tuning on instructions",
    "rm": "train a Bradley-Terry reward model on preference pairs",
    "dpo": "direct preference optimisation (DPO, IPO, cDPO)",
    "kto": "Kahneman-Tversky optimisation on paired or unpaired data",
}


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    from jobs.cli import DEFAULT_CONFIG

    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML preset (default: {DEFAULT_CONFIG})")
    parser.set_defaults(accepts_overrides=True)


def add_stage_arguments(parser: argparse.ArgumentParser, stage: str) -> None:
    """What a stage's command line takes besides `--section.key VALUE` overrides."""
    add_config_arguments(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    mode.add_argument("--overwrite", action="store_true", help="discard this stage's earlier state")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with model.lora: also write the adapter merged into its base, a plain HF model (final/merged)",
    )
    parser.set_defaults(func=run, stage=stage)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    for stage in STAGES:
        parser = subparsers.add_parser(stage, help=HELP[stage], description=HELP[stage] + " on Ray Train")
        add_stage_arguments(parser, stage)


def run(args: argparse.Namespace) -> int:
    from jobs.train_stage import train  # Ray Train and torch: imported only when a stage runs
    from ultramedical.config import load_config

    config = load_config(args.config, args.overrides)
    return train(config, args.stage, resume=args.resume, overwrite=args.overwrite, merge=args.merge)
