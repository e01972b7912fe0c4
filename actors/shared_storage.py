"""Before a job writes under runs_root: check that every node of the cluster sees the same directory.

Rank 0 writes the HF models and Ray Train writes checkpoints under runs_root; on storage that is local to
each node, the job would run and leave its results scattered over nodes (or lost with them). The driver
writes a marker with a fresh token, and a tiny task pinned to each alive node reads it back.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from pathlib import Path

import ray
from ray.util.client import ray as ray_client
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.cluster import connect_ray
from ultramedical.config import Config

MARKER_PREFIX = ".shared-storage-check-"


class SharedStorageError(RuntimeError):
    """runs_root is not the same directory on every node; the message names each node that differs."""


@ray.remote(num_cpus=0, max_retries=0)  # num_cpus=0: it must also run on a head with CPU: 0
def _read_marker(path: str, token: str) -> tuple[bool, str]:
    try:
        seen = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        return False, f"cannot read the marker {path} ({exc.strerror or exc}) on host {socket.gethostname()}"
    if seen != token:
        return False, f"the marker {path} holds other content on host {socket.gethostname()}"
    return True, ""


def check_shared_storage(
    path: str,
    timeout_s: float = 120.0,
    *,
    what: str = "runs_root",
    _path_on_node: Callable[[str, str], str] | None = None,
) -> None:
    """Raise SharedStorageError unless every alive node of the connected Ray cluster sees `path`
    (`what` names it in messages).

    The driver's own node is not probed: the driver has just written the marker there, so a single-node
    instance passes without starting a task. On an autoscaling cluster only the nodes alive now are
    checked, so a job calls this once its roles' nodes are up.

    `_path_on_node(node_id, marker_path)` is a test seam only: it stands in for a node whose view of the
    filesystem differs from the driver's, which one machine cannot otherwise produce.
    """
    # Absolute: a task on another node resolves a relative path against its own working directory.
    root = Path(path).absolute()
    token = uuid.uuid4().hex
    marker = root / f"{MARKER_PREFIX}{token}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        marker.write_text(token, encoding="utf-8")
    except OSError as exc:
        raise SharedStorageError(f"{what} {root}: the driver cannot write there ({exc})") from None
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        # A Ray Client driver writes on its own machine, which is no node: every node is probed then.
        here = None if ray_client.is_connected() else ray.get_runtime_context().get_node_id()
        probes = {}
        for node in nodes:
            node_id = node["NodeID"]
            if node_id == here:
                continue
            where = _path_on_node(node_id, str(marker)) if _path_on_node else str(marker)
            strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
            probes[node_id] = _read_marker.options(scheduling_strategy=strategy).remote(where, token)
        ready: list[ray.ObjectRef] = []
        if probes:  # ray.wait refuses an empty list
            ready, _ = ray.wait(list(probes.values()), num_returns=len(probes), timeout=timeout_s)
        failures = []
        for node in nodes:
            if node["NodeID"] not in probes:
                continue
            ref = probes[node["NodeID"]]
            label = f"node {node['NodeID']} ({node.get('NodeManagerAddress', '?')})"
            if ref not in ready:
                failures.append(f"{label}: did not answer within {timeout_s:g}s")
                continue
            try:
                ok, detail = ray.get(ref)
            except ray.exceptions.RayError as exc:
                ok, detail = False, f"the check failed there ({type(exc).__name__})"
            if not ok:
                failures.append(f"{label}: {detail}")
    finally:
        marker.unlink(missing_ok=True)
    if failures:
        raise SharedStorageError(
            f"{what} {root} is not shared by every node of the cluster ({len(failures)} of {len(nodes)} "
            f"differ): {'; '.join(failures)}. Put runs_root on storage every node mounts (EFS or NFS; "
            "cluster.yaml mounts one at /mnt/shared)"
        )


def check_runs_root(config: Config) -> None:
    """For the offline stage recipe (jobs/train_stage.py, behind jobs/sft.py, rm, dpo, kto): connect to Ray
    and check that every node sees the config's runs_root, where the workers write.

    Nodes that the autoscaler starts later for Ray Train's workers are not covered (see
    check_shared_storage). SharedStorageError stops the job with its message.
    """
    connect_ray()
    try:
        check_shared_storage(config.runs_root)
    except SharedStorageError as exc:
        raise SystemExit(f"error: {exc}") from None
