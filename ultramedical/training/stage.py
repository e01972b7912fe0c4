"""An offline training stage on the run directory's side, Ray-free: where the stage starts, its stage
directory (with --resume / --overwrite), and its data, validated (errors surface before any worker starts)
and tokenized once into an Arrow file on runs_root (training/tokenized.py; reused while its inputs stay
the same).

The Ray Train driver and workers that train the stage live in actors/train_stage.py; the recipe that runs
one from a command line is jobs/train_stage.py.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ultramedical.config import Config, dump_config
from ultramedical.io import atomic_write_json, atomic_write_text
from ultramedical.models.loading import load_tokenizer, local_or_hub
from ultramedical.models.lora import full_model_dir
from ultramedical.rundir import RunDir, is_complete_model
from ultramedical.training import ALGORITHMS
from ultramedical.training.tokenized import tokenize_to_disk


class RunExistsError(RuntimeError):
    """A stage already has state in the run directory and neither resume nor overwrite was asked."""


def stage_init_model(config: Config, stage: str, run: RunDir) -> str:
    """Where a stage starts: its `init_from`, else the previous stage's final model, else model.policy."""
    explicit = getattr(config, stage).init_from
    if explicit:
        return full_model_dir(local_or_hub(explicit))
    previous = {"rm": "sft", "dpo": "sft", "kto": "sft"}.get(stage)
    if previous and is_complete_model(run.final(previous)):
        # A LoRA adapter is merged here, once, before any worker starts: the stage trains on the merged
        # model (with model.lora, a fresh adapter whose disabled form is the previous stage's policy).
        return full_model_dir(run.final(previous))
    return full_model_dir(local_or_hub(config.model.policy))


@dataclass(frozen=True)
class PreparedStage:
    """What the workers of a stage are handed: paths, never the examples themselves."""

    run: RunDir
    stage_dir: Path
    init_model: str
    dataset: Path  # the tokenized examples, which every worker memory-maps


def prepare_stage(config: Config, stage: str, resume: bool = False, overwrite: bool = False) -> PreparedStage:
    """Make `<run>/<stage>` ready to train into, and the stage's data ready on runs_root.

    Raises RunExistsError when the stage directory exists and neither `resume` nor `overwrite` is set;
    `overwrite` deletes it first. Bad records raise DataError here, before anything starts.
    """
    run = RunDir.of(config.runs_root, config.name)
    stage_dir = run.stage(stage)
    if stage_dir.exists() and not resume:
        if not overwrite:
            raise RunExistsError(
                f"{stage_dir} already exists: pass --resume to continue it or --overwrite to start over"
            )
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run.config, dump_config(config))

    algorithm = ALGORITHMS[stage](config)
    init_model = stage_init_model(config, stage, run)
    tokenizer = load_tokenizer(init_model)
    data = tokenize_to_disk(algorithm, tokenizer, run.tokenized)
    atomic_write_json(stage_dir / "data_stats.json", data.stats.as_dict() | {"init_model": init_model})
    print(f"[{stage}] {json.dumps(data.stats.as_dict())} from {init_model}", flush=True)
    print(f"[{stage}] tokenized data: {data.path} ({'built' if data.built else 'reused'})", flush=True)
    return PreparedStage(run=run, stage_dir=stage_dir, init_model=init_model, dataset=data.path)


def finished_model(run: RunDir, stage: str) -> Path:
    """The stage's final model directory; RuntimeError when training ended without writing it."""
    final = run.final(stage)
    if not is_complete_model(final):
        raise RuntimeError(f"[{stage}] training finished but {final} was not written")
    return final
