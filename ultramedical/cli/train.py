"""`ultramedical sft|rm|dpo|kto --config PRESET [--resume|--overwrite] [--section.key VALUE ...]`."""

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
    from ultramedical.cli import DEFAULT_CONFIG

    parser.add_argument("--config", default=DEFAULT_CONFIG, help=f"YAML preset (default: {DEFAULT_CONFIG})")
    parser.set_defaults(accepts_overrides=True)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    for stage in STAGES:
        parser = subparsers.add_parser(stage, help=HELP[stage], description=HELP[stage] + " on Ray Train")
        add_config_arguments(parser)
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
        mode.add_argument("--overwrite", action="store_true", help="discard this stage's earlier state")
        parser.set_defaults(func=run, stage=stage)


def run(args: argparse.Namespace) -> int:
    from ultramedical.config import load_config
    from ultramedical.training.launch import RunExistsError, run_stage

    config = load_config(args.config, args.overrides)
    try:
        final = run_stage(config, args.stage, resume=args.resume, overwrite=args.overwrite)
    except RunExistsError as exc:
        print(f"error: {exc}")
        return 2
    print(final)
    return 0
