"""Experiment tracking: TensorBoard, MLflow and Weights & Biases behind one small interface.

`open_tracker(config, stage, log_dir)` starts one run per stage (`sft`, `rm`, `dpo`, `kto`, `online`) on
every backend in `tracking.backends`, named `<tracking.run_name or name>-<stage>`, with the resolved config
logged as parameters. Training stages log every step's metrics; online rounds log each round's metrics
(step = round) and their training steps. MLflow and W&B are optional installs (`.[tracking]`): naming one
that is not installed is an error at start-up, not a silent no-op.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from ultramedical.config import Config, ConfigError, TrackingConfig


class Tracker(Protocol):
    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None: ...

    def close(self) -> None: ...


def flat_params(value: Any, prefix: str = "") -> dict[str, str]:
    """A nested config as dotted keys with string values (what MLflow and W&B accept as parameters)."""
    if isinstance(value, Mapping):
        out: dict[str, str] = {}
        for key, item in value.items():
            out |= flat_params(item, f"{prefix}{key}.")
        return out
    return {prefix.rstrip("."): str(value)}


def scalar_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a metrics line, nested dicts flattened with '/' (e.g. phase_seconds/train)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            out |= scalar_metrics(value, f"{prefix}{key}/")
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[f"{prefix}{key}"] = float(value)
    return out


class TensorBoardTracker:
    def __init__(self, log_dir: Path):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(log_dir / "tb"))

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in params.items()))

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        for key, value in scalar_metrics(metrics).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class MLflowTracker:
    def __init__(self, settings: TrackingConfig, run_name: str):
        import os

        from mlflow.tracking import MlflowClient

        if (settings.mlflow_uri or "").startswith("file:"):
            # MLflow 3 refuses its file store unless opted in; a file: URI in the config is that choice. Set
            # here because Ray workers (where stages log) do not inherit the driver's environment.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

        self.client = MlflowClient(tracking_uri=settings.mlflow_uri)
        experiment = self.client.get_experiment_by_name(settings.project)
        experiment_id = (
            experiment.experiment_id if experiment else self.client.create_experiment(settings.project)
        )
        self.run_id = self.client.create_run(experiment_id, run_name=run_name).info.run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        # MLflow caps a parameter value at 6000 characters and one call at 100 parameters.
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = [Metric(k, v, now, step) for k, v in scalar_metrics(metrics).items()]
        if values:
            self.client.log_batch(self.run_id, metrics=values)

    def close(self) -> None:
        self.client.set_terminated(self.run_id)


class WandbTracker:
    def __init__(self, settings: TrackingConfig, run_name: str, log_dir: Path):
        import wandb

        log_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=settings.project,
            name=run_name,
            dir=str(log_dir),
            mode=settings.wandb_mode,
            reinit="create_new",  # one process may track several stages (the demo)
        )

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.run.config.update(dict(params), allow_val_change=True)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        self.run.log(scalar_metrics(metrics), step=step)

    def close(self) -> None:
        self.run.finish()


class Trackers:
    """Every configured backend at once."""

    def __init__(self, trackers: Iterable[Tracker]):
        self.trackers = list(trackers)

    def log_params(self, params: Mapping[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.log_params(params)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        for tracker in self.trackers:
            tracker.log_metrics(metrics, step)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()


def open_tracker(config: Config, stage: str, log_dir: Path) -> Trackers:
    """A run on each of `tracking.backends` for this stage, the resolved config logged as its parameters.
    TensorBoard writes under `log_dir/tb`, W&B under `log_dir/wandb`; MLflow goes to tracking.mlflow_uri."""
    settings = config.tracking
    run_name = f"{settings.run_name or config.name}-{stage}"
    trackers: list[Tracker] = []
    for backend in settings.backends:
        try:
            if backend == "tensorboard":
                trackers.append(TensorBoardTracker(log_dir))
            elif backend == "mlflow":
                trackers.append(MLflowTracker(settings, run_name))
            else:
                trackers.append(WandbTracker(settings, run_name, log_dir))
        except ImportError as exc:
            raise ConfigError(
                f"tracking.backends names {backend}, which is not installed ({exc.name}): "
                "pip install -e '.[tracking]'"
            ) from None
    opened = Trackers(trackers)
    opened.log_params(flat_params(config.model_dump(mode="json")) | {"stage": stage})
    return opened
