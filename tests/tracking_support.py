"""Reading tracked runs back the way their users would: MLflow through its client, W&B from its offline run
file (a record log of protobuf `Record`s; wandb 0.31 ships no Python reader for it), TensorBoard through its
event accumulator."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

WANDB_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32 * 1024  # records are cut into chunks that never cross a block
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_records(path: Path) -> list[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data.startswith(WANDB_HEADER), f"{path} is not a W&B run file"
    records, pending, offset = [], b"", len(WANDB_HEADER)
    while offset + 7 <= len(data):
        if BLOCK - offset % BLOCK < 7:  # a block's tail too short for a chunk header is padding
            offset += BLOCK - offset % BLOCK
            continue
        _, length, kind = struct.unpack_from("<IHB", data, offset)
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind in (FULL, FIRST):
            pending = chunk
        elif kind in (MIDDLE, LAST):
            pending += chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
        if kind == 0 and length == 0:
            break
    return records


def wandb_runs(log_dir: Path) -> list[dict[str, Any]]:
    """The offline W&B runs under `log_dir`, oldest first: each one's name, config and history rows."""
    return [_wandb_run(path) for path in sorted((log_dir / "wandb").glob("offline-run-*/run-*.wandb"))]


def _wandb_run(path: Path) -> dict[str, Any]:
    name, config, history = "", {}, []
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            name = record.run.display_name
        elif kind == "config":
            config |= {item.key: json.loads(item.value_json) for item in record.config.update}
        elif kind == "history":
            row = {
                item.key or "/".join(item.nested_key): json.loads(item.value_json)
                for item in record.history.item
            }
            history.append(row)
    return {"name": name, "config": config, "history": history}


def mlflow_runs(uri: str, project: str, run_name: str) -> tuple[Any, list[Any]]:
    """(client, runs) of the MLflow runs named `run_name` in experiment `project`, oldest first."""
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 opens a file store only when asked

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(project)
    assert experiment is not None, f"no MLflow experiment {project!r} at {uri}"
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.run_name = '{run_name}'",
        order_by=["attributes.start_time ASC"],
    )
    return client, list(runs)


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir / "tb"))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
