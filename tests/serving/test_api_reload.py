"""/v1/reload's answers for each way a reload can fail, from the FastAPI app without Ray. The scorer is a
stand-in: a publishing failure (Serve's controller unreachable mid-reload) cannot be caused for real
in a test, and the real replica's answers are covered in test_reward_service.py / test_reward_reload.py."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

TOKEN = "api-token-0123456789"


class FailingScorer:
    replica_id = "r1"

    def __init__(self, error: Exception):
        self.error = error

    @property
    def model_path(self) -> str:
        return "/models/old"

    async def score(self, conversations: list[Any]) -> tuple[list[float], str]:
        return [0.0] * len(conversations), self.model_path

    async def reload(self, model_dir: str) -> dict[str, Any]:
        raise self.error

    def stats(self) -> dict[str, Any]:
        return {}


@pytest.mark.parametrize(
    ("error", "status"),
    [("ReloadRejected", 422), ("ReloadBusy", 409), ("ReloadFailed", 503)],
)
def test_reload_failures_map_to_statuses_that_name_the_cause(error: str, status: int) -> None:
    from ultramedical import serving
    from ultramedical.config import ServeConfig
    from ultramedical.serving.api import create_app, token_digest

    scorer = FailingScorer(getattr(serving, error)(f"{error}: every replica keeps /models/old"))
    client = TestClient(create_app(scorer, ServeConfig(), token_digest(TOKEN)))
    response = client.post(
        "/v1/reload", json={"model": "/models/new"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == status
    assert response.json()["detail"] == f"{error}: every replica keeps /models/old"
    health = client.get("/healthz").json()
    assert health == {"status": "ok", "model": "/models/old", "replica": "r1"}
