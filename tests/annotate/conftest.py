"""Fixtures of the annotation tests: a live fake OpenAI server and a config pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_openai_server import FakeOpenAIServer, make_config

from ultramedical.config import AnnotateConfig


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as live:
        yield live


@pytest.fixture
def config(server: FakeOpenAIServer) -> AnnotateConfig:
    return make_config(server.base_url)
