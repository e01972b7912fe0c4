"""Collectives run on the backend's device: NCCL rejects a CPU tensor, so a metrics reduction built on
the host killed every multi-GPU run at its first log step. CPU machines have no NCCL, so the NCCL side is
shown by standing in for it at the one point where the device is decided."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from ultramedical.training import step_log


def test_collective_device_is_the_ranks_gpu_under_nccl(monkeypatch: pytest.MonkeyPatch) -> None:
    assert step_log.collective_device() == torch.device("cpu")  # no process group: host memory
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert step_log.collective_device() == torch.device("cuda", 3)
    monkeypatch.setattr(dist, "get_backend", lambda group=None: "gloo")
    assert step_log.collective_device() == torch.device("cpu")


class _Reduced(Exception):
    """Stops the reduction once the collective has seen its tensor (no real NCCL to run it)."""


def test_metrics_reduction_hands_the_collective_a_tensor_on_its_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[torch.device] = []

    def all_reduce(tensor: torch.Tensor, *args: object, **kwargs: object) -> None:
        seen.append(tensor.device)
        raise _Reduced

    # "meta" stands for the GPU: any device but the host's shows where the tensor was built.
    monkeypatch.setattr(step_log, "collective_device", lambda: torch.device("meta"))
    monkeypatch.setattr(step_log, "rank_and_world", lambda: (0, 2))
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    log = step_log.StepLog()
    log.add({"loss": torch.tensor(1.5)}, tokens=10)
    with pytest.raises(_Reduced):
        log.reduce()
    assert seen == [torch.device("meta")]


def test_metrics_reduction_alone_averages_and_counts_tokens() -> None:
    log = step_log.StepLog()
    log.add({"loss": torch.tensor(1.0)}, tokens=10)
    log.add({"loss": torch.tensor(3.0)}, tokens=30)
    line = log.reduce()
    assert line["loss"] == pytest.approx(2.0)
    assert line["tokens_per_s"] > 0
