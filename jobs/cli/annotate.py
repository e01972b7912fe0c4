"""`ultramedical annotate preferences|difficulty|decontaminate`.

  ultramedical annotate preferences --prompts FILE --out DIR [--config C] [--limit N] [--annotate.KEY V ...]
  ultramedical annotate difficulty --prompts FILE --out FILE [--config C] [--min-score N] [--max-score N]
                                   [--filter-only] [--annotate.KEY V ...]
  ultramedical annotate decontaminate --train FILE --eval [NAME=]FILE [...] --out FILE [--report FILE]
                                      [--ngram 13] [--min-words 8]

What this module assumes of the main CLI (jobs/cli/__init__.py): it calls `add_parser(subparsers)`,
parses with `parse_known_args`, stores the unparsed `--section.key VALUE` arguments in `args.overrides`
(a list of strings, rejected unless the subcommand sets `accepts_overrides=True`), and calls
`args.func(args)`, whose int is the exit code. `--config` is declared here with `default=SUPPRESS`, so a
`--config` that the main parser may declare itself is not overwritten; without either, DEFAULT_CONFIG.
Exit codes: 0 done; 1 every prompt failed (preferences) or no record survived; 2 bad input or config.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ultramedical.config import ConfigError, load_config

DEFAULT_CONFIG = "configs/tiny-cpu.yaml"  # the main CLI's default preset


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `annotate` and its actions on the main CLI's subparsers."""
    annotate = subparsers.add_parser(
        "annotate", help="build preference data through OpenAI-compatible endpoints"
    )
    actions = annotate.add_subparsers(dest="action", required=True, metavar="ACTION")

    prefs = actions.add_parser(
        "preferences", help="complete, judge and binarize prompts into preference pairs"
    )
    prefs.add_argument("--prompts", required=True, help="instruction records (JSONL, JSON or Parquet)")
    prefs.add_argument(
        "--out", required=True, help="output directory (annotations, pairs, failures, summary)"
    )
    prefs.add_argument("--limit", type=int, default=None, help="annotate only the first N prompts")
    _config_argument(prefs)
    prefs.set_defaults(func=run_preferences, accepts_overrides=True)

    difficulty = actions.add_parser("difficulty", help="rate instruction difficulty 1-10 and filter by it")
    difficulty.add_argument("--prompts", required=True, help="instruction records (JSONL, JSON or Parquet)")
    difficulty.add_argument("--out", required=True, help="JSONL of the kept records, with `score` filled in")
    difficulty.add_argument("--min-score", type=int, default=None)
    difficulty.add_argument("--max-score", type=int, default=None)
    difficulty.add_argument("--filter-only", action="store_true", help="filter existing scores; no requests")
    _config_argument(difficulty)
    difficulty.set_defaults(func=run_difficulty, accepts_overrides=True)

    decontam = actions.add_parser("decontaminate", help="drop training records that overlap evaluation sets")
    decontam.add_argument("--train", required=True, help="training records (JSONL, JSON or Parquet)")
    decontam.add_argument("--eval", required=True, nargs="+", metavar="[NAME=]FILE", help="evaluation sets")
    decontam.add_argument("--out", required=True, help="JSONL of the kept training records")
    decontam.add_argument("--report", default=None, help="report JSON (default: OUT with .report.json)")
    decontam.add_argument("--ngram", type=int, default=13, help="word n-gram length (default 13)")
    decontam.add_argument("--min-words", type=int, default=8, help="shortest eval item matched whole")
    decontam.set_defaults(func=run_decontaminate)


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help=f"config preset (default: {DEFAULT_CONFIG}); any other --section.key VALUE overrides one field",
    )


def _load(args: argparse.Namespace) -> Any:
    return load_config(
        getattr(args, "config", None) or DEFAULT_CONFIG, list(getattr(args, "overrides", []) or [])
    )


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_preferences(args: argparse.Namespace) -> int:
    from ultramedical.annotate.pipeline import annotate
    from ultramedical.annotate.records import load_records

    try:
        config = _load(args)
        records = load_records(args.prompts)
    except (ConfigError, ValueError, OSError) as exc:
        return _error(str(exc))
    if args.limit is not None:
        records = records[: args.limit]
    map_shards = None
    if config.annotate.workers > 1:
        from actors.annotator import annotate_on_ray  # Ray only when the prompts are fanned out

        map_shards = annotate_on_ray
    try:
        summary = annotate(records, config.annotate, Path(args.out), map_shards=map_shards)
    except ValueError as exc:
        return _error(str(exc))
    print(json.dumps({k: v for k, v in summary.to_dict().items() if k != "per_model"}))
    return 1 if summary.prompts and not summary.annotated else 0


def run_difficulty(args: argparse.Namespace) -> int:
    from ultramedical.annotate.client import ChatClient, RequestCache
    from ultramedical.annotate.difficulty import filter_by_difficulty, score_difficulty
    from ultramedical.annotate.records import load_records, write_jsonl_atomic

    try:
        records = load_records(args.prompts)
        config = None if args.filter_only else _load(args).annotate
    except (ConfigError, ValueError, OSError) as exc:
        return _error(str(exc))
    out = Path(args.out)
    report: dict[str, Any] = {"records": len(records)}
    if config is not None:
        endpoint = config.difficulty or config.judge
        if endpoint is None:
            return _error("set annotate.difficulty (or annotate.judge) to the model that rates difficulty")
        cache = RequestCache(config.cache_path or out.parent / "request_cache.sqlite")
        client = ChatClient.for_annotation(config, cache)
        try:
            run = score_difficulty(records, client, endpoint, concurrency=config.concurrency)
        finally:
            client.close()
            cache.close()
        records = run.records
        write_jsonl_atomic(out.with_name(out.stem + ".failures.jsonl"), run.failures)
        totals = client.usage.totals()
        report |= {
            "failures": len(run.failures),
            "requests": totals.requests,
            "cache_hits": totals.cache_hits,
            "cost_usd": round(totals.cost_usd, 6),
        }
    if args.min_score is not None or args.max_score is not None:
        records = filter_by_difficulty(records, args.min_score, args.max_score)
    write_jsonl_atomic(out, records)
    report["kept"] = len(records)
    print(json.dumps(report))
    return 0 if records or not report["records"] else 1


def _eval_sets(specs: list[str]) -> dict[str, list[dict[str, Any]]]:
    from ultramedical.annotate.records import load_records

    sets: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or Path(spec).exists():
            name, path = Path(spec).stem, spec
        if name in sets:
            raise ValueError(f"evaluation set name '{name}' given twice; name them NAME=FILE")
        sets[name] = load_records(path)
    return sets


def run_decontaminate(args: argparse.Namespace) -> int:
    from ultramedical.annotate.decontam import decontaminate
    from ultramedical.annotate.records import load_records, write_json_atomic, write_jsonl_atomic

    try:
        train = load_records(args.train)
        eval_sets = _eval_sets(args.eval)
        result = decontaminate(train, eval_sets, n=args.ngram, min_words=args.min_words)
    except (ValueError, OSError) as exc:
        return _error(str(exc))
    out = Path(args.out)
    report_path = Path(args.report) if args.report else out.with_name(out.stem + ".report.json")
    write_jsonl_atomic(out, result.kept)
    write_json_atomic(report_path, result.report)
    print(
        json.dumps(
            {k: result.report[k] for k in ("train_records", "kept", "removed", "removed_per_eval_set")}
        )
    )
    return 0 if result.kept or not train else 1
