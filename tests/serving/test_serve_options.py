"""configs/serve.yaml deployed the way `serve deploy` does it keeps the replica's resources from
serve.cpus_per_replica / serve.gpus_per_replica, and a replica that asked for a GPU refuses to start
without one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def serve_yaml() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "configs" / "serve.yaml").read_text())


def deployed_actor_options(tree: dict[str, Any]) -> dict[str, Any]:
    """The ray_actor_options Serve's controller gives the replicas of `tree`'s first application: the
    app built from import_path and args, then the config's deployment overrides applied on top, as the
    controller does for `serve deploy` (application_state.build_serve_application and
    override_deployment_info)."""
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve._private.application_state import override_deployment_info
    from ray.serve._private.build_app import build_app
    from ray.serve._private.deploy_utils import deploy_args_to_deployment_info, get_deploy_args
    from ray.serve._private.utils import import_attr
    from ray.serve.schema import ServeDeploySchema

    schema = ServeDeploySchema.model_validate(tree).applications[0]
    app = call_user_app_builder_with_args_if_necessary(import_attr(schema.import_path), schema.args)
    built = build_app(app, name=schema.name)
    infos = {
        d.name: deploy_args_to_deployment_info(
            **get_deploy_args(d.name, d._replica_config, deployment_config=d._deployment_config, version="v"),
            app_name=schema.name,
        )
        for d in built.deployments
    }
    overridden = override_deployment_info(infos, schema)
    return overridden["RewardService"].replica_config.ray_actor_options


def test_serve_deploy_keeps_the_gpu_request(ray_cluster: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from ultramedical.serving.api import TOKEN_ENV

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    tree = serve_yaml()
    overrides = tree["applications"][0]["args"]["overrides"]
    assert overrides["serve.gpus_per_replica"] == 0 and overrides["serve.cpus_per_replica"] == 1
    options = deployed_actor_options(tree)
    assert (options["num_cpus"], options["num_gpus"]) == (1, 0)

    overrides["serve.gpus_per_replica"] = 1  # what a GPU deployment sets (an 8B preset's serve section)
    overrides["serve.cpus_per_replica"] = 4
    options = deployed_actor_options(tree)
    assert (options["num_cpus"], options["num_gpus"]) == (4, 1)

    # Why serve.yaml sets no deployments[].ray_actor_options: Serve replaces the code's whole dict with
    # it, and the GPU request is gone (what the file did before).
    lossy = copy.deepcopy(tree)
    override = {"name": "RewardService", "ray_actor_options": {"num_cpus": 1}}
    lossy["applications"][0]["deployments"] = [override]
    assert deployed_actor_options(lossy).get("num_gpus", 0) == 0


def test_serve_yaml_options_come_from_the_serve_section() -> None:
    from ray.serve.schema import ServeDeploySchema

    from actors.reward_service import BuilderArgs
    from ultramedical.config import load_config

    app = ServeDeploySchema.model_validate(serve_yaml()).applications[0]
    assert app.import_path == "actors.reward_service:app_builder"
    assert not app.deployments  # one place for every option: args.overrides' serve.* keys
    args = BuilderArgs.model_validate(app.args)
    config = load_config(ROOT / args.config, args.overrides)
    assert (config.serve.max_ongoing_requests, config.serve.max_queued_requests) == (64, 128)
    assert (config.serve.min_replicas, config.serve.max_replicas) == (1, 2)


def test_a_replica_without_the_gpu_it_asked_for_refuses_to_start() -> None:
    from actors.reward_service import uses_gpu

    with pytest.raises(RuntimeError, match="serve.gpus_per_replica is 1 but Ray granted this replica no GPU"):
        uses_gpu(1, [])
    assert uses_gpu(1, ["0"]) is True
    assert uses_gpu(0.5, [0]) is True
    assert uses_gpu(0, []) is False
