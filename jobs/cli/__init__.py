"""`ultramedical` command line: entry glue over the library, the actors and the job scripts. Each module in
this package registers its own subcommands.

Commands that take a config read `--config PRESET` and treat every other `--section.key VALUE`
argument as a dotted override of the config.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ultramedical.config import ConfigError
from ultramedical.data.loading import DataError
from ultramedical.data.sources import SourceError

# This package's own command modules, imported by name when the parser is built.
COMMAND_MODULES = (
    "data",
    "models",
    "train",
    "online",
    "eval",
    "serve",
    "annotate",
    "report",
    "bench",
    "plan",
)
DEFAULT_CONFIG = "configs/tiny-cpu.yaml"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ultramedical", description="UltraMedical on Ray: biomedical SFT, reward modelling, DPO/KTO."
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "iterate":
        # Its own parser lives in the job script: everything after the name is handed over. Imported
        # here, not at the top, since the job imports Ray and every actor.
        from jobs.iterative_dpo import main as iterate

        return iterate(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        return int(args.func(args) or 0)
    except (ConfigError, DataError, SourceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
