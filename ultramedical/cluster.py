"""Connecting to Ray: the cluster a job was submitted to (RAY_ADDRESS), else a local instance."""

from __future__ import annotations

import os


def connect_ray() -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        # A local instance for this process only: no dashboard, so it starts in seconds.
        ray.init(include_dashboard=False, log_to_driver=True)
