"""POST /v1/reload reaches every replica, over real HTTP on loopback, for both ways of deploying the
service: declaratively (`serve deploy configs/serve.yaml`) and imperatively (`serve.run`, as
`ultramedical serve` does). Two replicas each; after a reload both score with the new checkpoint without
having restarted, and a replica started after the reload starts on it. Waits are bounded polls of
/v1/stats, whose `replica` tells which replica answered."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from serving_support import ITEMS, perturbed_copy, serve_started, service_config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "reload-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEADLINE_S = 240  # generous: replicas start and load on 2 shared cores; a hang still fails


@dataclass
class Apps:
    url: str
    model: str
    other: str
    expected: dict[str, list[float]]  # checkpoint -> direct RewardModel scores of ITEMS
    tree: dict[str, Any]  # the declarative app's Serve config, as `serve deploy` would send it


def wait_for(condition: Callable[[], Any], what: Callable[[], str]) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what()` after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out after {DEADLINE_S} s waiting for {what()}")


def app_running(name: str) -> bool:
    from ray import serve

    app = serve.status().applications.get(name)
    if app is not None and app.status == "DEPLOY_FAILED":
        pytest.fail(f"application {name} failed to deploy: {app.message}")
    return app is not None and app.status == "RUNNING"


def replica_stats(base: str, count: int, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The latest /v1/stats of each of `count` replicas once every one of them satisfies `condition`;
    requests spread over the replicas, so polling reaches each of them."""
    seen: dict[str, dict[str, Any]] = {}

    def poll() -> dict[str, Any] | None:
        stats = requests.get(base + "/v1/stats", headers=AUTH, timeout=30).json()
        seen[stats["replica"]] = stats
        done = len(seen) == count and all(condition(s) for s in seen.values())
        return dict(seen) if done else None

    return wait_for(poll, lambda: f"{count} replicas at {base} to satisfy the condition (seen: {seen})")


def post(url: str, body: Any) -> requests.Response:
    return requests.post(url, json=body, headers=AUTH, timeout=60)


@pytest.fixture(scope="module")
def apps(ray_cluster: None, artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    from ray import serve
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    from actors.reward_service import build_app
    from ultramedical.models.reward import RewardModel
    from ultramedical.serving.api import RewardRequest, to_conversation

    model = str((artifacts / "tiny" / "reward").resolve())
    other = str(perturbed_copy(Path(model), tmp_path_factory.mktemp("rm2") / "reward").resolve())
    conversations = [to_conversation(i) for i in RewardRequest.model_validate({"items": ITEMS}).items]
    expected = {path: RewardModel(path).score(conversations) for path in (model, other)}
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN)  # the declarative app is built on the cluster, from serve.token_file
    two = {"serve.cpus_per_replica": 0.5, "serve.min_replicas": 2, "serve.max_replicas": 2}
    tree = {
        "applications": [
            {
                "name": "declared",
                "route_prefix": "/declared",
                "import_path": "actors.reward_service:app_builder",
                "args": {
                    "model": model,
                    "config": str(ROOT / "configs" / "tiny-cpu.yaml"),
                    "overrides": two | {"serve.token_file": str(token_file), "serve.max_batch_size": 8},
                },
            }
        ]
    }
    with serve_started(TOKEN) as port:
        # What `serve deploy` makes the controller do; it returns at once, so both apps start together.
        _get_global_client().deploy_apps(ServeDeploySchema.model_validate(tree))
        config = service_config(artifacts, min_replicas=2, max_replicas=2)
        serve.run(build_app(config, model), name="imperative", route_prefix="/imperative")
        wait_for(lambda: app_running("declared"), lambda: "the declared app to run")
        yield Apps(f"http://127.0.0.1:{port}", model, other, expected, tree)


def check_scores(apps: Apps, base: str, model: str) -> None:
    for _ in range(8):
        body = post(base + "/v1/rewards", {"items": ITEMS}).json()
        assert body["model"] == model
        assert body["rewards"] == pytest.approx(apps.expected[model], abs=1e-4)


def reload_everywhere(apps: Apps, base: str) -> dict[str, Any]:
    """Reload `apps.other` at `base`; returns the two replicas' stats from before."""
    before = replica_stats(base, 2, lambda s: s["model"] == apps.model)
    check_scores(apps, base, apps.model)
    response = post(base + "/v1/reload", {"model": apps.other})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["previous"]) == (apps.other, apps.model) and body["replica"] in before
    after = replica_stats(base, 2, lambda s: s["model"] == apps.other)
    assert set(after) == set(before)  # the same replicas, reconfigured in place rather than restarted
    assert all(after[r]["pid"] == before[r]["pid"] for r in after)
    check_scores(apps, base, apps.other)
    return before


def test_reload_reaches_every_replica_of_a_declared_app(apps: Apps, tmp_path: Path) -> None:
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    base = apps.url + "/declared"
    before = reload_everywhere(apps, base)

    # A bad checkpoint is refused where it lands and published nowhere.
    (tmp_path / "empty").mkdir()
    refused = post(base + "/v1/reload", {"model": str(tmp_path / "empty")})
    assert refused.status_code == 422 and "cannot load" in refused.text
    replica_stats(base, 2, lambda s: s["model"] == apps.other)

    # A third replica, started after the reload (an autoscaling bump in the config the controller now
    # holds, as `serve config` prints it), starts on the published checkpoint: loaded once, not swapped.
    client = _get_global_client()
    tree = {"applications": [client.get_serve_details()["applications"]["declared"]["deployed_app_config"]]}
    deployment = tree["applications"][0]["deployments"][0]
    assert deployment["user_config"] == {"model": apps.other}
    deployment["autoscaling_config"] = {"min_replicas": 3, "initial_replicas": 3, "max_replicas": 3}
    client.deploy_apps(ServeDeploySchema.model_validate(tree))
    three = replica_stats(base, 3, lambda s: s["model"] == apps.other)
    (new,) = set(three) - set(before)
    assert three[new]["reloads"] == 0 and three[new]["reload_error"] is None
    check_scores(apps, base, apps.other)


def test_reload_reaches_every_replica_of_a_served_app(apps: Apps) -> None:
    reload_everywhere(apps, apps.url + "/imperative")
