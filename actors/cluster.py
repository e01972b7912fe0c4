"""Connecting to Ray: the cluster a job was submitted to (RAY_ADDRESS), else a local instance."""

from __future__ import annotations

import os

import ray


def connect_ray() -> None:
    """Join RAY_ADDRESS's cluster when it is set, else start a Ray instance for this process; a no-op when
    this process is connected already."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # A local instance for this process only: no dashboard, so it starts in seconds.
        ray.init(include_dashboard=False, log_to_driver=True)
