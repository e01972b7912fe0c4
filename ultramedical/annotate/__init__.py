"""Preference data through any OpenAI-compatible endpoint: completions, an LLM judge, pairs.

Also difficulty rating of instructions and n-gram decontamination against evaluation sets.
Nothing here imports Ray: `annotate(..., map_shards=...)` takes the fan-out as a callable, and the Ray one
lives in actors/annotator.py (`annotate_on_ray`).
"""

from ultramedical.annotate.client import (
    ChatClient,
    ChatResult,
    EndpointError,
    ModelUsage,
    RequestCache,
    UsageMeter,
    cost_usd,
    request_key,
)
from ultramedical.annotate.decontam import DecontamResult, build_index, decontaminate, normalise
from ultramedical.annotate.difficulty import (
    Difficulty,
    DifficultyParseError,
    DifficultyRun,
    build_difficulty_messages,
    difficulty_of,
    filter_by_difficulty,
    parse_difficulty,
    score_difficulty,
)
from ultramedical.annotate.pipeline import (
    AnnotateSummary,
    Shard,
    ShardMapper,
    annotate,
    annotate_one,
    annotate_shard,
    failed_shard,
)
from ultramedical.annotate.records import binarize, load_records, write_json_atomic, write_jsonl_atomic
from ultramedical.annotate.rubric import (
    RUBRIC,
    Evaluation,
    Judgement,
    JudgeParseError,
    build_judge_messages,
    parse_judgement,
)

__all__ = [
    "RUBRIC",
    "AnnotateSummary",
    "ChatClient",
    "ChatResult",
    "DecontamResult",
    "Difficulty",
    "DifficultyParseError",
    "DifficultyRun",
    "EndpointError",
    "Evaluation",
    "JudgeParseError",
    "Judgement",
    "ModelUsage",
    "RequestCache",
    "Shard",
    "ShardMapper",
    "UsageMeter",
    "annotate",
    "annotate_one",
    "annotate_shard",
    "binarize",
    "build_difficulty_messages",
    "build_index",
    "build_judge_messages",
    "cost_usd",
    "decontaminate",
    "difficulty_of",
    "failed_shard",
    "filter_by_difficulty",
    "load_records",
    "normalise",
    "parse_difficulty",
    "parse_judgement",
    "request_key",
    "score_difficulty",
    "write_json_atomic",
    "write_jsonl_atomic",
]
