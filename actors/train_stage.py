"""An offline training stage on Ray Train: the driver side and the worker entry point.

Driver (`run_stage`): prepare the stage with the library (ultramedical/training/stage.py: stage directory,
data validated and tokenized once into an Arrow file on runs_root), start a `TorchTrainer` whose workers
run `train_worker` with that file's path. Workers: memory-map the file, build a `Learner`, restore the
latest checkpoint if Ray hands one back (after a failure or with --resume), train on the rows of their own
shard, report full DeepSpeed state as Ray checkpoints, and export the HF model from rank 0.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, TypedDict

import ray.train
import ray.train.torch
import torch
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchConfig

from actors.cluster import connect_ray
from ultramedical.config import Config
from ultramedical.io import append_jsonl
from ultramedical.models.loading import load_tokenizer
from ultramedical.runtime import torch_threads
from ultramedical.tracking import open_tracker
from ultramedical.training import ALGORITHMS
from ultramedical.training.loop import Learner, Progress
from ultramedical.training.sampler import planned_steps
from ultramedical.training.stage import finished_model, prepare_stage
from ultramedical.training.tokenized import TokenizedExamples, extras_by_column

STATE_TAG = "state"


class StageSpec(TypedDict):
    """What every Ray Train worker of a stage is handed (Ray Train's `train_loop_config`): small, since the
    examples stay on disk."""

    config: dict[str, Any]  # the resolved config, JSON-dumped: Ray Train records it with the run
    stage: str
    init_model: str
    dataset: str  # the tokenized examples' Arrow file, which each worker memory-maps
    stage_dir: str


def run_stage(config: Config, stage: str, resume: bool = False, overwrite: bool = False) -> Path:
    """Train one stage to `<run>/<stage>/final`; returns that path. RunExistsError (from the library)
    when the stage has state and neither `resume` nor `overwrite` is set."""
    prepared = prepare_stage(config, stage, resume=resume, overwrite=overwrite)

    connect_ray()
    trainer_cfg = config.trainer
    # Looked up on the module at call time, so a test can stand in a trainer that starts no workers.
    trainer = ray.train.torch.TorchTrainer(
        train_worker,
        train_loop_config=StageSpec(
            config=config.model_dump(mode="json"),
            stage=stage,
            init_model=prepared.init_model,
            dataset=str(prepared.dataset),
            stage_dir=str(prepared.stage_dir),
        ),
        torch_config=TorchConfig(backend="nccl" if trainer_cfg.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=trainer_cfg.num_workers,
            use_gpu=trainer_cfg.use_gpu,
            resources_per_worker={"CPU": trainer_cfg.cpus_per_worker}
            | ({"GPU": 1} if trainer_cfg.use_gpu else {}),
        ),
        run_config=RunConfig(
            name="ray",
            storage_path=str(prepared.run.ray_storage(stage).parent),
            failure_config=FailureConfig(max_failures=trainer_cfg.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    trainer.fit()
    final = finished_model(prepared.run, stage)
    print(f"[{stage}] final model: {final}", flush=True)
    return final


def train_worker(spec: StageSpec) -> None:
    """Ray Train worker entry point (every rank)."""
    config = Config.model_validate(spec["config"])
    torch.set_num_threads(torch_threads(None, config.trainer.cpus_per_worker))
    stage, stage_dir = spec["stage"], Path(spec["stage_dir"])
    algorithm = ALGORITHMS[stage](config)
    examples = TokenizedExamples.open(spec["dataset"])
    settings = algorithm.settings
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    total = planned_steps(len(examples), settings.epochs, world, config.trainer, settings.max_steps)
    learner = Learner(algorithm, spec["init_model"], total_steps=total, schedule="cosine")

    progress = Progress()
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            learner.engine.load_checkpoint(directory, tag=STATE_TAG)
            progress = Progress(**json.loads((Path(directory) / "progress.json").read_text()))
            prepared = torch.load(Path(directory) / "prepared.pt", weights_only=False)
        if isinstance(prepared, list):  # checkpoints from before extras were kept by column
            prepared = extras_by_column(prepared)
        examples = examples.with_extras(prepared)
        print(f"[{stage}] rank {rank}: resumed at step {progress.step}", flush=True)
    else:
        # Lazy rows: the pass computes on this rank's share only, and merges its results into every row
        # without reading it.
        examples = examples.absorb(learner.prepare(examples.lazy_rows()))
    prepared = examples.extras

    writer = _MetricsWriter(config, stage, stage_dir, enabled=rank == 0)
    bar = _progress_bar(total, progress.step, stage, enabled=rank == 0)
    every = config.trainer.save_every_steps

    def on_step(p: Progress) -> None:
        bar.update(1)
        if p.step >= total or (every and p.step % every == 0):
            _save(learner, p, prepared, stage_dir, tokenizer_from=spec["init_model"], final=p.step >= total)

    learner.fit(examples, settings.epochs, progress, settings.max_steps, on_log=writer.write, on_step=on_step)
    bar.close()
    writer.close()
    print(
        f"[{stage}] rank {rank}: read {examples.rows_read} rows in all "
        f"(its shard: {len(examples) // world} of the {len(examples)} rows an epoch)",
        flush=True,
    )


def _save(
    learner: Learner,
    progress: Progress,
    prepared: dict[str, list[Any]],
    stage_dir: Path,
    tokenizer_from: str,
    final: bool,
) -> None:
    """Full training state to Ray (every rank), HF weights from rank 0."""
    target = stage_dir / ("final" if final else f"checkpoint-{progress.step}")
    learner.save(target, load_tokenizer(tokenizer_from))
    with tempfile.TemporaryDirectory() as directory:
        learner.engine.save_checkpoint(directory, tag=STATE_TAG)
        if learner.rank == 0:
            (Path(directory) / "progress.json").write_text(json.dumps(progress.__dict__))
            torch.save(prepared, Path(directory) / "prepared.pt")
        ray.train.report(
            {"step": progress.step},
            checkpoint=ray.train.Checkpoint.from_directory(directory),
            checkpoint_dir_name=f"step-{progress.step:08d}",
        )


class _MetricsWriter:
    """metrics.jsonl and the tracking backends (TensorBoard, MLflow, W&B: tracking.backends), by rank 0."""

    def __init__(self, config: Config, stage: str, stage_dir: Path, enabled: bool):
        self.path = stage_dir / "metrics.jsonl"
        self.tracker = open_tracker(config, stage, stage_dir) if enabled else None

    def write(self, line: dict[str, Any]) -> None:
        if self.tracker is None:
            return
        append_jsonl(self.path, line)
        self.tracker.log_metrics({k: v for k, v in line.items() if k != "step"}, line["step"])

    def close(self) -> None:
        if self.tracker is not None:
            self.tracker.close()


def _progress_bar(total: int, done: int, stage: str, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=stage, disable=not enabled, mininterval=5)
