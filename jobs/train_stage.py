"""One offline training stage (SFT, reward model, DPO or KTO) on Ray Train + DeepSpeed: the recipe behind
jobs/sft.py, rm.py, dpo.py and kto.py, and behind `ultramedical sft|rm|dpo|kto`.

    ray job submit --working-dir . -- python jobs/sft.py --config configs/llama3-8b.yaml [--resume]
    python jobs/dpo.py --config configs/tiny-cpu.yaml --dpo.epochs 1

The command line -> the config -> every node sees runs_root (the workers write there) -> the stage on
Ray Train (actors/train_stage.py) -> where its model landed: runs/<name>/<stage>/final.
"""

from __future__ import annotations

import argparse
import sys

from actors.shared_storage import check_runs_root
from actors.train_stage import run_stage
from jobs.cli.train import HELP, add_stage_arguments
from ultramedical.config import Config, ConfigError, load_config
from ultramedical.data.loading import DataError
from ultramedical.data.sources import SourceError
from ultramedical.models.lora import full_model_dir, is_adapter_dir
from ultramedical.training.stage import RunExistsError


def parse_args(argv: list[str], stage: str) -> tuple[argparse.Namespace, list[str]]:
    """`--config`, `--resume` / `--overwrite`, and every other `--section.key VALUE` as an override."""
    parser = argparse.ArgumentParser(prog=f"ultramedical {stage}", description=HELP[stage] + " on Ray Train")
    add_stage_arguments(parser, stage)
    return parser.parse_known_args(argv)


def train(
    config: Config, stage: str, resume: bool = False, overwrite: bool = False, merge: bool = False
) -> int:
    """Train the stage and print where its model landed (with `merge`, a LoRA adapter's merged model
    too); the exit code (2: the stage has state, and neither resume nor overwrite was asked)."""
    try:
        final = run_stage(config, stage, resume=resume, overwrite=overwrite)
    except RunExistsError as exc:
        print(f"error: {exc}")
        return 2
    print(final)
    if merge and is_adapter_dir(final):
        print(full_model_dir(final))
    return 0


def main(argv: list[str], stage: str) -> int:
    args, overrides = parse_args(argv, stage)
    try:
        config = load_config(args.config, overrides)
        check_runs_root(config)
        return train(config, stage, resume=args.resume, overwrite=args.overwrite, merge=args.merge)
    except (ConfigError, DataError, SourceError) as exc:  # bad input: the message, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in HELP:
        sys.exit(f"usage: python jobs/train_stage.py {{{','.join(HELP)}}} [--config PRESET] ...")
    sys.exit(main(sys.argv[2:], sys.argv[1]))
