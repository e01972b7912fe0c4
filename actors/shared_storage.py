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
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

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
    _path_on_node: Callable[[str, str], str] | None = None,
) -> None:
    """Raise SharedStorageError unless every alive node of the connected Ray cluster sees `path`.

    `_path_on_node(node_id, marker_path)` is a test seam only: it stands in for a node whose view of the
    filesystem differs from the driver's, which one machine cannot otherwise produce.
    """
    root = Path(path)
    token = uuid.uuid4().hex
    marker = root / f"{MARKER_PREFIX}{token}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        marker.write_text(token, encoding="utf-8")
    except OSError as exc:
        raise SharedStorageError(f"runs_root {path}: the driver cannot write there ({exc})") from None
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        probes = {}
        for node in nodes:
            node_id = node["NodeID"]
            where = _path_on_node(node_id, str(marker)) if _path_on_node else str(marker)
            strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
            probes[node_id] = _read_marker.options(scheduling_strategy=strategy).remote(where, token)
        ready, _ = ray.wait(list(probes.values()), num_returns=len(probes), timeout=timeout_s)
        failures = []
        for node in nodes:
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
            f"runs_root {path} is not shared by every node of the cluster ({len(failures)} of {len(nodes)} "
            f"differ): {'; '.join(failures)}. Put runs_root on storage every node mounts (EFS or NFS; "
            "cluster.yaml mounts one at /mnt/shared)"
        )
