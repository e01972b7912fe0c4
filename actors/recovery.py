"""Waiting out an actor restart: calls to a restarting actor fail fast, so retry until it is back."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError


def call_when_available(call: Callable[[], ray.ObjectRef], timeout_s: float = 600.0) -> tuple[bool, Any]:
    """(True, result) once the actor answers; (False, None) if it died for good (restarts used up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return True, ray.get(call())
        except ActorDiedError:
            return False, None
        except ActorUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
