"""Connecting to Ray: the cluster a job was submitted to (RAY_ADDRESS), else a local instance."""

from __future__ import annotations

import os
import socket
from typing import Any

import ray


def without_dashboard() -> dict[str, Any]:
    """`ray.init` / cluster-head options for an instance without a dashboard (it starts in seconds).

    Such an instance still writes a dashboard address to its GCS: the default port, 8265, which nothing of its
    own serves. Ray's State API resolves that address, and Ray Train's placement-group cleaner polls it to see
    whether the TrainController lives: when another cluster's dashboard holds 8265 on the same machine (the
    same user's token), it answers "no such actor", the cleaner takes the controller for dead and removes the
    live run's placement group. So the instance advertises a free port of its own instead, where the polls
    find nothing (the cleaner keeps watching) rather than another cluster's answer.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return {"include_dashboard": False, "dashboard_port": port}


def connect_ray() -> None:
    """Join RAY_ADDRESS's cluster when it is set, else start a Ray instance for this process; a no-op when
    this process is connected already."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(log_to_driver=True, **without_dashboard())
