"""The reward service over real HTTP on loopback: scores equal direct RewardModel scores, batching, auth,
bad input, body and item limits, back-pressure (503) and a hot reload under concurrent load."""

from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from serving_support import ITEMS, perturbed_copy, serve_started, service_config

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ANSWER = {"role": "assistant", "content": "a"}


def conversations(items: list[dict[str, Any]]) -> list[list[dict[str, str]]]:
    from ultramedical.serving.api import RewardRequest, to_conversation

    return [to_conversation(item) for item in RewardRequest.model_validate({"items": items}).items]


@dataclass
class Service:
    url: str
    model: str
    other_model: str
    expected: dict[str, list[float]]  # model path -> direct RewardModel scores of ITEMS

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
        return requests.post(
            self.url + path, json=body, headers=AUTH if headers is None else headers, timeout=60, **kw
        )


@pytest.fixture(scope="module")
def service(
    ray_cluster: None, artifacts: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    from ray import serve
    from ray.serve import RunTarget

    from actors.reward_service import build_app
    from ultramedical.models.reward import RewardModel

    model = str((artifacts / "tiny" / "reward").resolve())
    other = str(perturbed_copy(Path(model), tmp_path_factory.mktemp("rm2") / "reward").resolve())
    expected = {path: RewardModel(path).score(conversations(ITEMS)) for path in (model, other)}
    with serve_started(TOKEN) as port:
        # Deliberately tiny capacity: one request at a time, one waiting, each held 1 s by the batcher.
        tight = service_config(
            artifacts,
            max_ongoing_requests=1,
            max_queued_requests=1,
            batch_wait_timeout_s=1.0,
            max_batch_size=64,
        )
        serve.run_many(  # both apps start in parallel
            [
                RunTarget(
                    build_app(service_config(artifacts, batch_wait_timeout_s=0.05), model),
                    name="reward",
                    route_prefix="/",
                ),
                RunTarget(build_app(tight, model), name="tight", route_prefix="/tight"),
            ]
        )
        yield Service(f"http://127.0.0.1:{port}", model, other, expected)


def test_rewards_equal_direct_scoring_in_order(service: Service) -> None:
    response = service.post("/v1/rewards", {"items": ITEMS})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == service.model
    assert body["rewards"] == pytest.approx(service.expected[service.model], abs=1e-4)
    single = service.post("/v1/rewards", {"items": ITEMS[1:2]}).json()["rewards"]
    assert single == pytest.approx(service.expected[service.model][1:2], abs=1e-4)


def test_concurrent_requests_share_batches(service: Service) -> None:
    before = requests.get(service.url + "/v1/stats", headers=AUTH, timeout=30).json()
    picks = [[i % 4, (i + 1) % 4][: 1 + i % 2] for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(lambda p: service.post("/v1/rewards", {"items": [ITEMS[j] for j in p]}), picks)
        )
    for pick, response in zip(picks, responses, strict=True):
        assert response.status_code == 200, response.text
        want = [service.expected[service.model][j] for j in pick]
        assert response.json()["rewards"] == pytest.approx(want, abs=1e-4)
    after = requests.get(service.url + "/v1/stats", headers=AUTH, timeout=30).json()
    assert after["requests"] - before["requests"] == 16
    assert after["batches"] - before["batches"] < 16  # concurrent requests were scored together
    assert after["largest_batch"] <= 8  # serve.max_batch_size counts items


def test_healthz_is_open_and_everything_else_needs_the_token(service: Service) -> None:
    health = requests.get(service.url + "/healthz", timeout=30)
    assert health.status_code == 200 and health.json()["model"] == service.model
    stats = requests.get(service.url + "/v1/stats", headers=AUTH, timeout=30).json()
    assert health.json()["replica"] == stats["replica"]  # one replica: the same one answered both
    for path in ("/openapi.json", "/docs", "/v1/stats"):
        assert requests.get(service.url + path, timeout=30).status_code == 401
    schema = requests.get(service.url + "/openapi.json", headers=AUTH, timeout=30)
    assert schema.status_code == 200 and "/v1/rewards" in schema.json()["paths"]
    bad = [{}, {"Authorization": TOKEN}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}]
    for headers in bad:
        for path in ("/v1/rewards", "/v1/reload"):
            response = service.post(path, {"items": ITEMS[:1]}, headers=headers)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": []},
        {"items": "abc"},
        {"items": [{"prompt": "q"}]},
        {"items": [{"prompt": "q", "response": "a", "extra": 1}]},
        {"items": [{"prompt": 5, "response": "a"}]},
        {"items": [{"messages": [{"role": "doctor", "content": "q"}, ANSWER]}]},
        {"items": [{"messages": [ANSWER, {"role": "user", "content": "q"}]}]},
        {"items": [{"messages": [{"role": "user"}, ANSWER]}]},
        {"items": [{"messages": [{"role": "system", "content": "s"}, ANSWER]}]},
    ],
)
def test_schema_violations_are_422(service: Service, body: Any) -> None:
    assert service.post("/v1/rewards", body).status_code == 422


def test_limits(service: Service) -> None:
    not_json = requests.post(
        service.url + "/v1/rewards",
        data=b"{not json",
        timeout=30,
        headers=AUTH | {"Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    many = service.post("/v1/rewards", {"items": ITEMS[:1] * 17})
    assert many.status_code == 422 and "limit of 16" in many.text
    long = service.post("/v1/rewards", {"items": [ITEMS[0], {"prompt": "q", "response": "x" * 2_000}]})
    assert long.status_code == 422
    assert "item 1 has 2001 characters" in long.text and "limit of 2000" in long.text
    huge = {"items": [{"prompt": "q", "response": "x" * 1_500}] * 16}  # within item limits, over 20 kB
    assert service.post("/v1/rewards", huge).status_code == 413
    chunked = requests.post(
        service.url + "/v1/rewards",
        data=(b"x" * 4096 for _ in range(8)),
        timeout=30,
        headers=AUTH | {"Content-Type": "application/json"},
    )
    assert chunked.request.headers.get("Transfer-Encoding") == "chunked"  # no Content-Length to trust
    assert chunked.status_code == 413


def test_over_capacity_gets_503_not_a_hang(service: Service) -> None:
    # A hang shows as a request timeout (service.post waits 60 s at most), not as a slow pass.
    with ThreadPoolExecutor(6) as pool:
        codes = list(
            pool.map(lambda _: service.post("/tight/v1/rewards", {"items": ITEMS[:1]}).status_code, range(6))
        )
    assert set(codes) <= {200, 503} and 200 in codes and 503 in codes, codes
    assert requests.get(service.url + "/tight/healthz", timeout=30).status_code == 200  # open under a prefix


def test_reload_swaps_the_model_without_failing_requests(service: Service) -> None:
    assert service.post("/v1/reload", {"model": "/no/such/dir"}).status_code == 422
    results: list[Any] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            results.append(service.post("/v1/rewards", {"items": ITEMS}))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()

    def answered(count: int) -> None:  # observed state: requests completed, not time passed
        while len(results) < count and all(t.is_alive() for t in clients):
            time.sleep(0.01)

    try:
        answered(4)
        reload = service.post("/v1/reload", {"model": service.other_model})
        assert reload.status_code == 200, reload.text
        assert reload.json()["previous"] == service.model and reload.json()["model"] == service.other_model
        answered(len(results) + 8)  # 4 clients: at least 4 of these were sent after the reload
    finally:
        stop.set()
        for thread in clients:
            thread.join()
    try:
        assert results and all(r.status_code == 200 for r in results), [r.status_code for r in results]
        models = [r.json()["model"] for r in results]
        assert service.model in models and service.other_model in models
        for response in results:  # each response comes wholly from one checkpoint
            body = response.json()
            assert body["rewards"] == pytest.approx(service.expected[body["model"]], abs=1e-4)
        after = service.post("/v1/rewards", {"items": ITEMS}).json()
        assert after["model"] == service.other_model
        assert after["rewards"] == pytest.approx(service.expected[service.other_model], abs=1e-4)
        assert requests.get(service.url + "/healthz", timeout=30).json()["model"] == service.other_model
    finally:
        assert service.post("/v1/reload", {"model": service.model}).status_code == 200


def test_token_file_and_cli_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from jobs.cli import serve as serve_cli
    from ultramedical.serving.api import TOKEN_ENV, resolve_token, token_digest, token_matches

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert resolve_token(None) is None
    (tmp_path / "token").write_text("from-file\n")
    assert resolve_token(str(tmp_path / "token")) == "from-file"
    (tmp_path / "empty").write_text("")
    with pytest.raises(ValueError, match="empty"):
        resolve_token(str(tmp_path / "empty"))
    assert token_matches("Bearer from-file", token_digest("from-file"))
    assert not token_matches("Bearer from-fil", token_digest("from-file"))

    parser = argparse.ArgumentParser()
    serve_cli.add_parser(parser.add_subparsers(dest="command"))
    argv = ["serve", "--model", "m", "--port", "9001", "--serve.max_items", "4"]
    args, extra = parser.parse_known_args(argv)
    assert (args.model, args.port, args.func, extra) == ("m", 9001, serve_cli.run, ["--serve.max_items", "4"])
    assert os.path.basename(args.config) == "tiny-cpu.yaml" and args.accepts_overrides
