"""Every tracking backend gets the run's name, the resolved config as parameters, and the metrics at their
steps, read back through each tool's own reader; a backend that is not installed is a clear error."""

from __future__ import annotations

import sys

import pytest
from tracking_support import mlflow_runs, tensorboard_scalars, wandb_runs

from ultramedical.config import ConfigError, load_config
from ultramedical.tracking import flat_params, open_tracker, scalar_metrics


def config(tmp_path, backends: str):
    uri = f"file:{tmp_path / 'mlruns'}"
    overrides = [
        "--tracking.backends",
        backends,
        "--tracking.mlflow_uri",
        uri,
        "--tracking.wandb_mode",
        "offline",
    ]
    return load_config(
        "configs/tiny-cpu.yaml", [*overrides, "--tracking.run_name", "trial", "--dpo.beta", "0.25"]
    )


def test_each_backend_holds_the_params_and_the_metrics_by_step(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = config(tmp_path, '["tensorboard", "mlflow", "wandb"]')
    tracker = open_tracker(cfg, "dpo", tmp_path / "dpo")
    tracker.log_metrics(
        {"loss": 0.5, "rewards/accuracies": 0.75, "note": "text", "phases": {"train": 2.0}}, 1
    )
    tracker.log_metrics({"loss": 0.25, "rewards/accuracies": 1.0}, 2)
    tracker.close()

    client, (run,) = mlflow_runs(cfg.tracking.mlflow_uri, "ultramedical", "trial-dpo")
    assert run.data.params["dpo.beta"] == "0.25" and run.data.params["stage"] == "dpo"
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == [
        (1, 0.5),
        (2, 0.25),
    ]
    assert run.data.metrics["phases/train"] == 2.0 and "note" not in run.data.metrics

    (wandb,) = wandb_runs(tmp_path / "dpo")
    assert wandb["name"] == "trial-dpo" and wandb["config"]["dpo.beta"] == "0.25"
    rows = [row for row in wandb["history"] if "loss" in row]
    assert [(row["_step"], row["loss"], row["rewards/accuracies"]) for row in rows] == [
        (1, 0.5, 0.75),
        (2, 0.25, 1.0),
    ]

    scalars = tensorboard_scalars(tmp_path / "dpo")
    assert scalars["loss"] == [(1, 0.5), (2, 0.25)] and scalars["phases/train"] == [(1, 2.0)]


def test_a_backend_that_is_not_installed_is_named(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # stands for a machine without the tracking extra
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ConfigError, match=r"tracking.backends names mlflow.*\[tracking\]"):
        open_tracker(config(tmp_path, '["mlflow"]'), "sft", tmp_path / "sft")


def test_params_and_metrics_are_flattened():
    assert flat_params({"a": {"b": 1, "c": [1, 2]}, "d": None}) == {"a.b": "1", "a.c": "[1, 2]", "d": "None"}
    assert scalar_metrics({"x": 1, "ok": True, "nan": float("nan"), "p": {"q": 2.5}}) == {
        "x": 1.0,
        "p/q": 2.5,
    }
