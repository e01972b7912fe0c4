"""Runtime settings derived from the config where a process starts (kept out of the config schema)."""

from __future__ import annotations


def torch_threads(threads: int | None, cpus: float) -> int:
    """An actor's torch intra-op threads: the configured number, else the CPUs Ray granted it (at least 1)."""
    return threads or max(1, int(cpus))
