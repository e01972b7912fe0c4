"""Helpers of the serving tests: the tiny reward service on a free loopback port, and the items every
module posts (imported by name, like tests/tiny_support.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ITEMS: list[dict[str, Any]] = [
    {"prompt": "What is the first-line drug for absence epilepsy?", "response": "Ethosuximide."},
    {
        "messages": [
            {"role": "system", "content": "You are a careful clinician."},
            {"role": "user", "content": "Which vitamin deficiency causes scurvy?"},
            {"role": "assistant", "content": "Vitamin C deficiency. So, the answer is B."},
        ]
    },
    {"prompt": "Name a loop diuretic.", "response": ""},
    {"prompt": "Is aspirin an anticoagulant?", "response": "No, it is an antiplatelet agent."},
]


def perturbed_copy(src: Path, dst: Path) -> Path:
    """A second checkpoint that scores differently: the same model with its reward head rescaled."""
    import torch

    from ultramedical.models.loading import load_reward_model, load_tokenizer, save_model

    tokenizer = load_tokenizer(src)
    model = load_reward_model(src, pad_token_id=tokenizer.pad_token_id)
    with torch.no_grad():
        model.score.weight.mul_(-3.0)
    return save_model(model, tokenizer, dst)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_config(artifacts: Path, **serve_overrides: Any) -> Any:
    """The tiny preset's serve section with small limits (so the tests can reach them) and overrides."""
    from ultramedical.config import config_from_dict

    base = {
        "cpus_per_replica": 0.5,
        "max_body_bytes": 20_000,
        "max_item_chars": 2_000,
        "max_items": 16,
        "max_batch_size": 8,
        "batch_wait_timeout_s": 0.005,
    }
    overrides = {f"serve.{k}": v for k, v in (base | serve_overrides).items()}
    return config_from_dict({"model": {"policy": str(artifacts / "tiny" / "policy")}}, overrides)


@contextmanager
def serve_started(token: str) -> Iterator[int]:
    """Ray Serve's HTTP proxy on a free loopback port, with the service's bearer token set; yields the
    port."""
    from ray import serve

    from ultramedical.serving.api import TOKEN_ENV

    port = free_port()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN_ENV, token)  # read by build_app, in this process
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        try:
            yield port
        finally:
            serve.shutdown()


@contextmanager
def reward_service(artifacts: Path, token: str) -> Iterator[str]:
    """The tiny reward model served as the app "reward" at "/"; yields the base URL."""
    from ray import serve

    from actors.reward_service import build_app

    model = str((artifacts / "tiny" / "reward").resolve())
    with serve_started(token) as port:
        serve.run(build_app(service_config(artifacts), model), name="reward", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
