"""Publishing a new `user_config` to a running Ray Serve deployment, from inside one of its replicas.

Ray Serve calls a deployment's `reconfigure(user_config)` on every replica, present and future, whenever
the deployment's user_config changes, without restarting them (a "lightweight update"). Its documented
trigger is `serve deploy` with an edited config file; Serve offers no public call that changes only the
user_config of a running deployment. `publish_user_config` asks the Serve controller for that same
update, the way each kind of application was deployed:

- declarative (`serve deploy`): the app configs the controller holds are re-applied with the new
  user_config, which is what `serve deploy` sends to the controller (through the dashboard) for an edited
  file; every other option keeps its current value.
- imperative (`serve.run`, `ultramedical serve`): the deployment's current deployment info is deployed
  again with the new user_config and the same version, which Serve treats as a lightweight update too.

Both use the controller's internal API, pinned to the installed Ray (2.60);
tests/serving/test_reward_reload.py checks both against real replicas.
"""

from __future__ import annotations

from typing import Any

import ray
from ray.serve.context import _get_global_client
from ray.serve.schema import APIType, ServeDeploySchema

# Each call to the controller: a hung controller fails the reload (the replica puts its old model back)
# instead of holding the request forever.
CONTROLLER_TIMEOUT_S = 60.0


def _controller() -> Any:
    return _get_global_client()._controller


def publish_user_config(app_name: str, deployment_name: str, user_config: dict[str, Any]) -> str:
    """Make `user_config` the deployment's user_config; returns how ("declarative" or "imperative").

    Blocking (it waits on the controller): call it off the event loop. Raises RuntimeError naming the app
    when the controller does not know it or it has more deployments than the imperative path can redeploy.
    """
    controller = _controller()
    details = ray.get(controller.get_serve_instance_details.remote(), timeout=CONTROLLER_TIMEOUT_S)
    app = details.get("applications", {}).get(app_name)
    if app is None:
        raise RuntimeError(f"Serve application {app_name!r} is not running")
    if app.get("source") == APIType.DECLARATIVE.value:
        _apply_declarative(controller, details, app_name, deployment_name, user_config)
        return "declarative"
    _redeploy_imperative(controller, app, app_name, deployment_name, user_config)
    return "imperative"


def _apply_declarative(
    controller: Any, details: dict[str, Any], app_name: str, deployment_name: str, user_config: dict[str, Any]
) -> None:
    configs = ray.get(controller.get_app_configs.remote(), timeout=CONTROLLER_TIMEOUT_S)
    # Only the options the operator set (exclude_unset): re-applying defaults would override code values.
    apps = [config.model_dump(exclude_unset=True) for config in configs.values()]
    target = next((app for app in apps if app["name"] == app_name), None)
    if target is None:
        raise RuntimeError(f"Serve application {app_name!r} has no config on the controller")
    deployments = target.setdefault("deployments", [])
    entry = next((d for d in deployments if d["name"] == deployment_name), None)
    if entry is None:
        deployments.append({"name": deployment_name, "user_config": user_config})
    else:
        entry["user_config"] = user_config
    tree: dict[str, Any] = {"applications": apps}
    if details.get("target_capacity") is not None:
        tree["target_capacity"] = details["target_capacity"]
    # The whole set: apply_config removes declarative apps it is not given.
    schema = ServeDeploySchema.model_validate(tree)
    ray.get(controller.apply_config.remote(schema), timeout=CONTROLLER_TIMEOUT_S)


def _redeploy_imperative(
    controller: Any, app: dict[str, Any], app_name: str, deployment_name: str, user_config: dict[str, Any]
) -> None:
    from ray.serve._private.config import DeploymentConfig
    from ray.serve._private.deploy_utils import get_deploy_args
    from ray.serve._private.deployment_info import DeploymentInfo
    from ray.serve.generated.serve_pb2 import ApplicationArgs, DeploymentArgs, DeploymentRoute

    if set(app.get("deployments", {})) != {deployment_name}:
        # deploy_applications replaces the app's whole deployment list; we only hold this one's info.
        raise RuntimeError(f"Serve application {app_name!r} has deployments besides {deployment_name!r}")
    route = DeploymentRoute.FromString(
        ray.get(
            controller.get_deployment_info.remote(deployment_name, app_name), timeout=CONTROLLER_TIMEOUT_S
        )
    )
    info = DeploymentInfo.from_proto(route.deployment_info)
    config = DeploymentConfig.from_proto_bytes(info.deployment_config.to_proto_bytes())  # a copy
    config.user_config = user_config
    # from_proto leaves route_prefix and ingress unset: the app's only deployment is its ingress.
    route_prefix = route.route or app.get("route_prefix") or None
    args = get_deploy_args(
        deployment_name,
        info.replica_config,
        ingress=True,
        deployment_config=config,
        version=info.version,  # unchanged, and only user_config differs: reconfigured, not restarted
        route_prefix=route_prefix,
    )
    proto = DeploymentArgs(
        deployment_name=deployment_name,
        deployment_config=args["deployment_config_proto_bytes"],
        replica_config=args["replica_config_proto_bytes"],
        deployer_job_id=args["deployer_job_id"],
        ingress=True,
    )
    if route_prefix:
        proto.route_prefix = route_prefix
    app_args = ApplicationArgs(external_scaler_enabled=bool(app.get("external_scaler_enabled", False)))
    ray.get(
        controller.deploy_applications.remote(
            {app_name: [proto.SerializeToString()]}, {app_name: app_args.SerializeToString()}
        ),
        timeout=CONTROLLER_TIMEOUT_S,
    )
