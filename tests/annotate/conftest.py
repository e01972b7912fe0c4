"""Fixtures of the annotation tests: a live fake OpenAI server and a config pointing at it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The checkout may not be pip-installed; make `ultramedical` and `actors` importable from its root.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from fake_openai_server import FakeOpenAIServer, make_config  # noqa: E402

from ultramedical.config import AnnotateConfig  # noqa: E402


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as live:
        yield live


@pytest.fixture
def config(server: FakeOpenAIServer) -> AnnotateConfig:
    return make_config(server.base_url)
