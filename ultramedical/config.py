"""The one configuration schema: typed sections, YAML presets and dotted command-line overrides.

A preset (configs/*.yaml) fills the schema; `--section.key value` arguments override single fields.
Every section forbids unknown keys, so a typo is an error that names the key instead of a silent default.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads `1e-5` and `1.5e3` (no dot, or no exponent sign) as strings; read them as floats."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # a SafeLoader: plain data only, no Python objects


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the offending key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataSource(Section):
    """A dataset: a local JSONL/JSON/Parquet file or a hub dataset id (loaded with `datasets`)."""

    path: str
    split: str = "train"
    weight: float = Field(1.0, gt=0, description="sampling weight when several sources are mixed")
    max_records: int | None = Field(None, gt=0)


class DataConfig(Section):
    instructions: list[DataSource] = Field(default_factory=list, description="SFT sources (UltraMix)")
    preferences: DataSource | None = None
    unpaired: DataSource | None = Field(
        None, description="KTO's unpaired records (prompt, completion, label)"
    )
    reward_test: DataSource | None = None
    eval_benchmarks: dict[str, DataSource] = Field(default_factory=dict)
    prompts: DataSource | None = Field(
        None, description="instruction records whose prompts drive online rounds"
    )
    on_invalid: Literal["error", "skip"] = "error"


class LoraConfig(Section):
    """Train a low-rank adapter instead of every weight (PEFT). A stage then writes the adapter in PEFT
    format; the reference of DPO/KTO is the same model with the adapter disabled."""

    rank: int = Field(16, ge=1)
    alpha: float = Field(32.0, gt=0, description="the update is scaled by alpha / rank")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="names of the linear layers that get an adapter (Llama's attention and MLP by default)",
    )


class ModelConfig(Section):
    policy: str = Field(description="HF directory or hub id of the policy (SFT starts from it)")
    reward_model: str | None = Field(None, description="reward model used by online rounds and best-of-N")
    max_seq_len: int = Field(512, gt=8)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    gradient_checkpointing: bool = False
    lora: LoraConfig | None = Field(
        None, description="LoRA for every stage and the online rounds (off: null)"
    )


class TrainerConfig(Section):
    """What every training stage shares: parallelism, batch shape, optimiser mechanics, checkpoints."""

    num_workers: int = Field(2, ge=1)
    use_gpu: bool = False
    cpus_per_worker: float = Field(1.0, gt=0)
    zero_stage: int = Field(2, ge=0, le=3)
    offload_optimizer: bool = False
    offload_params: bool = False
    offload_reference: bool = Field(
        False,
        description="online DPO/KTO under ZeRO-3: keep the fixed reference model's parameters in host memory",
    )
    micro_batch_size: int = Field(4, ge=1)
    grad_accum_steps: int = Field(1, ge=1)
    length_buckets: int = Field(
        1, ge=1, description="forward a micro-batch's rows in this many length groups (less padding on CPU)"
    )
    group_by_length: bool = Field(
        True, description="put examples of similar length in the same step (less padding; see epoch_order)"
    )
    share_prompt: bool = Field(
        True,
        description="DPO: a pair's chosen and rejected as one row, [prompt | chosen | rejected], so the "
        "prompt is computed once (needs sdpa or eager attention; see training/shared_prompt.py)",
    )
    warmup_ratio: float = Field(0.03, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    truncation: Literal["right", "left", "drop"] = "right"
    save_every_steps: int = Field(0, ge=0, description="0: only the final checkpoint")
    log_every_steps: int = Field(10, ge=1)
    max_failures: int = Field(0, ge=-1)
    seed: int = 0
    node_resource: str | None = Field(
        None, description="custom Ray resource of the node type online trainers use (cluster.yaml: trainer)"
    )
    workers_per_node: int | None = Field(
        None,
        ge=1,
        description="online placement: trainers in groups of this many, each group on one node "
        "(STRICT_PACK); null: one group packed onto as few nodes as possible (PACK)",
    )


class StageConfig(Section):
    lr: float = Field(gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0, description="stop after this many optimiser steps")
    init_from: str | None = Field(
        None,
        description="start from this model; default: the previous stage's final model, else model.policy",
    )


class SFTConfig(StageConfig):
    lr: float = Field(2e-5, gt=0)  # a bare default here would drop StageConfig's gt=0
    packing: bool = False


class RMConfig(StageConfig):
    lr: float = Field(1e-5, gt=0)  # a bare default here would drop StageConfig's gt=0
    margin_from_scores: bool = Field(False, description="use the judge-score gap as a per-pair margin")
    center_coef: float = Field(0.0, ge=0)


class DPOConfig(StageConfig):
    lr: float = Field(5e-7, gt=0)  # a bare default here would drop StageConfig's gt=0
    beta: float = Field(0.1, gt=0)
    loss_type: Literal["sigmoid", "ipo"] = "sigmoid"
    label_smoothing: float = Field(0.0, ge=0, lt=0.5)
    nll_coef: float = Field(0.0, ge=0)


class KTOConfig(StageConfig):
    lr: float = Field(5e-7, gt=0)  # a bare default here would drop StageConfig's gt=0
    beta: float = Field(0.1, gt=0)
    desirable_weight: float = Field(1.0, gt=0)
    undesirable_weight: float = Field(1.0, gt=0)


THREADS_HELP = (
    "torch threads per actor on CPU; default: {cpus} rounded down, at least 1. More than its CPUs pays where "
    "the actor has the machine to itself (the online round's phases take turns)"
)


class GenerationConfig(Section):
    """The vLLM generation pool."""

    engines: int = Field(1, ge=1)
    tensor_parallel_size: int = Field(1, ge=1)
    max_model_len: int = Field(1024, gt=0)
    max_num_seqs: int = Field(256, ge=1)
    enforce_eager: bool = True
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="fraction of host RAM on CPU")
    cpu_kvcache_gib: int = Field(1, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    max_restarts: int = Field(2, ge=0)
    cpus_per_engine: float = Field(1.0, gt=0)
    gpus_per_engine: float = Field(0.0, ge=0, description="tensor_parallel_size on GPU; a fraction to share")
    prompts_per_call: int = Field(16, ge=1, description="prompts per dispatch to an engine")
    threads: int | None = Field(None, ge=1, description=THREADS_HELP.format(cpus="cpus_per_engine"))
    node_resource: str | None = Field(
        None, description="custom Ray resource of the node type engines run on (cluster.yaml: generation)"
    )

    @model_validator(mode="after")
    def _check_tensor_parallel(self) -> GenerationConfig:
        # vLLM's Ray executor puts each tensor-parallel worker on a bundle of exactly one GPU.
        if self.tensor_parallel_size > 1 and self.gpus_per_engine != self.tensor_parallel_size:
            raise ValueError(
                "generation.gpus_per_engine must equal generation.tensor_parallel_size when it is above 1 "
                "(one GPU per tensor-parallel worker)"
            )
        return self


class RewardConfig(Section):
    """The reward scorer pool and its optional rule-based term for multiple-choice items."""

    scorers: int = Field(1, ge=1)
    batch_size: int = Field(16, ge=1)
    max_length: int = Field(1024, gt=8, description="tokens the scorer reads (cut from the left)")
    cpus_per_scorer: float = Field(1.0, gt=0)
    gpus_per_scorer: float = Field(0.0, ge=0)
    max_restarts: int = Field(2, ge=0)
    threads: int | None = Field(None, ge=1, description=THREADS_HELP.format(cpus="cpus_per_scorer"))
    node_resource: str | None = Field(
        None, description="custom Ray resource of the node type scorers must run on (cluster.yaml: trainer)"
    )
    correct_letter_bonus: float = 0.0
    wrong_letter_penalty: float = 0.0


class OnlineConfig(Section):
    """Iterative preference learning: rounds of sample, score, pair, train, publish."""

    rounds: int = Field(3, ge=1)
    prompts_per_round: int = Field(64, ge=1)
    completions_per_prompt: int = Field(4, ge=2)
    algorithm: Literal["dpo", "kto"] = "dpo"
    pair_strategy: Literal["max_min", "max_random", "random"] = "max_min"
    min_margin: float = Field(0.0, ge=0)
    length_penalty: float = Field(0.0, ge=0, description="reward minus this times completion tokens")
    epochs_per_round: int = Field(1, ge=1)
    refresh_reference: bool = False
    checkpoint_every_rounds: int = Field(1, ge=1)
    placement: Literal["colocate", "separate"] = "colocate"
    max_round_retries: int = Field(2, ge=0, description="a failed round is redone from its start this often")
    eval_items: int = Field(200, ge=0, description="held-out MC items scored after every round")
    publish_bucket_mb: float = Field(
        1024,
        gt=0,
        description="weights go to the engines in buckets of about this many MiB (a decoder layer is never "
        "split): the publishing rank holds about two buckets beyond its shard, and engines install one "
        "bucket while the next is gathered",
    )
    placement_timeout_s: float = Field(
        1200,
        gt=0,
        description="how long the roles' placement groups may wait for nodes (a cold GPU node pulls its "
        "image and runs setup first); a local instance that lacks the resources fails at once instead",
    )
    simulate_gpus: bool = Field(
        False,
        description="tests on logical GPUs: placement requests the GPUs the preset names, but every role "
        "runs on CPU (trainers with gloo, vLLM's CPU backend, tensor parallel too; scorers on CPU)",
    )


class EvalConfig(Section):
    samples: int = Field(10, ge=1, description="N for self-consistency and best-of-N")
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_tokens: int = Field(256, ge=1)
    max_items: int | None = Field(None, gt=0)
    sampled_max_items: int | None = Field(
        None, gt=0, description="items for self-consistency and best-of-N, which cost N generations each"
    )


class ServeConfig(Section):
    """The reward-scoring HTTP service (Ray Serve): batching, capacity, autoscaling and request limits."""

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_batch_size: int = Field(32, ge=1, description="items (not requests) scored in one forward batch")
    batch_wait_timeout_s: float = Field(0.01, ge=0)
    max_ongoing_requests: int = Field(64, ge=1)
    max_queued_requests: int = Field(128, ge=-1, description="-1: unbounded; past it, HTTP 503")
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    target_ongoing_requests: float = Field(16, gt=0)
    max_body_bytes: int = Field(1_000_000, ge=1)
    max_item_chars: int = Field(16_000, ge=1)
    max_items: int = Field(256, ge=1)
    token_file: str | None = Field(
        None, description="file holding the bearer token; the ULTRAMEDICAL_API_TOKEN variable wins"
    )
    cpus_per_replica: float = Field(1.0, gt=0)
    gpus_per_replica: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _check_capacity(self) -> ServeConfig:
        if self.max_queued_requests == 0:  # Ray Serve accepts -1 or a positive count only
            raise ValueError("serve.max_queued_requests must be -1 (unbounded) or at least 1")
        if self.max_replicas < self.min_replicas:
            raise ValueError("serve.max_replicas must be at least serve.min_replicas")
        return self


class EndpointModel(Section):
    """One model behind an OpenAI-compatible endpoint."""

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    temperature: float = Field(0.7, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(512, ge=1)
    usd_per_1k_prompt_tokens: float = Field(0.0, ge=0)
    usd_per_1k_completion_tokens: float = Field(0.0, ge=0)
    n: int = Field(1, ge=1, description="completions asked of this model per prompt (as a completer)")


class AnnotateConfig(Section):
    completers: list[EndpointModel] = Field(default_factory=list)
    judge: EndpointModel | None = None
    difficulty: EndpointModel | None = Field(None, description="rates instruction difficulty; default: judge")
    concurrency: int = Field(8, ge=1)
    max_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(0.5, ge=0)
    timeout_s: float = Field(60.0, gt=0)
    workers: int = Field(1, ge=1, description="Ray actors the prompt set is fanned out to")
    cache_path: str | None = Field(
        None, description="request cache (SQLite); default: <out>/request_cache.sqlite"
    )
    seed: int = Field(0, description="seeds the judge's presentation order and the rejected-side pick")


class TrackingConfig(Section):
    """Experiment tracking for every stage and the online rounds (ultramedical/tracking.py)."""

    backends: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=lambda: ["tensorboard"],
        description="where metrics go besides metrics.jsonl; mlflow and wandb need the tracking extra",
    )
    run_name: str | None = Field(None, description="default: the config's name; each stage appends -<stage>")
    project: str = Field("ultramedical", description="the MLflow experiment / W&B project")
    mlflow_uri: str | None = Field(None, description="MLflow tracking URI; default: MLflow's own")
    wandb_mode: Literal["online", "offline", "disabled"] | None = Field(
        None, description="default: W&B's own (WANDB_MODE)"
    )


class Config(Section):
    name: str = "tiny"
    runs_root: str = "runs"
    artifacts_dir: str = Field(
        "artifacts", description="where the embedded sample corpus and tiny model live"
    )
    model: ModelConfig
    data: DataConfig = Field(default_factory=DataConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    rm: RMConfig = Field(default_factory=RMConfig)
    dpo: DPOConfig = Field(default_factory=DPOConfig)
    kto: KTOConfig = Field(default_factory=KTOConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    reward: RewardConfig = Field(default_factory=RewardConfig)
    online: OnlineConfig = Field(default_factory=OnlineConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    @model_validator(mode="after")
    def _check_parallelism(self) -> Config:
        if self.trainer.offload_params and self.trainer.zero_stage != 3:
            raise ValueError("trainer.offload_params needs trainer.zero_stage 3")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_root) / self.name


def _describe(error: dict[str, Any], model: type[BaseModel]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        known = _known_keys(model, [str(p) for p in error["loc"][:-1]])
        close = difflib.get_close_matches(str(error["loc"][-1]), known, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key '{key}'{hint}"
    if error["type"] == "missing":
        return f"missing key '{key}'"
    return f"'{key}': {error['msg']} (got {_short_repr(error.get('input'))})"


def _short_repr(value: Any) -> str:
    try:
        return f"{value!r:.80}"
    except ValueError:  # an int past Python's digit limit has no repr
        return "a value too large to show"


def _known_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    for part in path:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{dotted}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """`['--trainer.zero_stage', '3', '--sft.lr=1e-5']` -> {'trainer.zero_stage': 3, 'sft.lr': 1e-05}.

    Values are read as YAML scalars, so numbers, booleans, null and lists work as they do in presets.
    """
    overrides: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ConfigError(f"expected an override like --section.key VALUE, got '{arg}'")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args):
                raise ConfigError(f"override '--{key}' has no value")
            value = args[i + 1]
            i += 1
        try:
            overrides[key] = _yaml_load(value) if value != "" else ""
        except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: int past the digit limit
            raise ConfigError(f"override '--{key}': cannot read value {value!r:.80}: {exc}") from None
        i += 1
    return overrides


def load_config(path: str | Path, overrides: dict[str, Any] | list[str] | None = None) -> Config:
    """Read a YAML preset, apply dotted overrides, validate; raise ConfigError naming any bad key."""
    return config_from_dict(read_preset(path), overrides, origin=str(path))


def read_preset(path: str | Path) -> dict[str, Any]:
    """A preset's YAML tree, with its `base` preset (if any) merged under it."""
    path = Path(path)
    try:
        tree = _yaml_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:  # a directory, no permission
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8, int past digit limit
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(tree).__name__}")
    return _with_base(tree, path)


def _with_base(tree: dict[str, Any], path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A preset with `base: OTHER.yaml` (relative to its own directory) is that preset with these keys
    written over it, section by section, so a preset states only its differences."""
    if "base" not in tree:
        return tree
    base_path = (path.parent / str(tree.pop("base"))).resolve()
    if base_path in seen:
        raise ConfigError(f"{path}: base presets form a cycle through {base_path}")
    try:
        base = _yaml_load(base_path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read its base preset {base_path}: {exc}") from None
    if not isinstance(base, dict):
        raise ConfigError(f"{base_path}: the top level must be a mapping of sections")
    merged = _with_base(base, base_path, (*seen, path.resolve()))
    for key, value in tree.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def config_from_dict(
    tree: dict[str, Any], overrides: dict[str, Any] | list[str] | None = None, origin: str = "config"
) -> Config:
    if not isinstance(tree, dict):
        raise ConfigError(f"{origin}: the top level must be a mapping of sections, got {type(tree).__name__}")
    tree = _deep_copy(tree)
    if isinstance(overrides, list):
        overrides = parse_overrides(overrides)
    for key, value in (overrides or {}).items():
        _set_dotted(tree, key, value)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, Config) for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None


def dump_config(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def _deep_copy(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _deep_copy(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_deep_copy(v) for v in tree]
    return tree
