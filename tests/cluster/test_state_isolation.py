"""A dashboard-less instance started the project's way (actors/cluster.py `without_dashboard`, as connect_ray
and the suite's own instance start) beside another cluster whose dashboard holds the default port, 8265, with
the same user's token: what a developer's `ray start --head` looks like.

Ray's State API, which Ray Train's placement-group cleaner polls to learn whether the TrainController lives,
must not answer from the other cluster: there, "no such actor" reads as dead, and the cleaner removes the live
run's placement group. (A stage failed in CI that way, while a test's cluster with a dashboard ran beside it.)
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
from head_support import VENV_BIN, start_head
from ray.train.v2._internal.state.util import is_actor_alive
from ray.util.state.exception import RayStateApiException
from tiny_support import kill_session

pytestmark = pytest.mark.slow

DEFAULT_DASHBOARD_PORT = 8265


def answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def default_port_dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A head with its dashboard on 8265 and the default token (~/.ray/auth_token, the suite instance's),
    unless something holds 8265 already: then that is the neighbour the check runs against."""
    if answers(DEFAULT_DASHBOARD_PORT):
        yield
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    temp_dir = Path(tempfile.mkdtemp(prefix="umdash-", dir="/tmp"))  # short: Ray's socket paths live under it
    try:
        log = tmp_path_factory.mktemp("neighbour") / "ray-start.log"
        session, _ = start_head(temp_dir, log, env, dashboard_port=DEFAULT_DASHBOARD_PORT)
        try:
            yield
        finally:
            kill_session(session)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@ray.remote(num_cpus=0)
class Live:
    def ping(self) -> bool:
        return True


@ray.remote(num_cpus=0)
def cleaner_view(actor_id: str) -> bool | str | None:
    """Ray Train's cleaner's check, word for word, from a worker of the instance as the cleaner runs. Anything
    falsy removes a live run's placement group. The worker is handed its own cluster's address (RAY_ADDRESS),
    as where it is the only instance on the machine: with several and none named, the State API gives up
    before asking anyone."""
    try:
        return is_actor_alive(actor_id=actor_id, timeout=10)
    except RayStateApiException:
        return "unreachable"  # what the cleaner logs and waits through


def test_the_state_api_never_answers_for_another_cluster(ray_cluster, default_port_dashboard):
    assert answers(DEFAULT_DASHBOARD_PORT), "no dashboard on the default port: the check would prove nothing"
    live = Live.remote()
    assert ray.get(live.ping.remote())
    own_cluster = {"env_vars": {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}}
    alive = ray.get(cleaner_view.options(runtime_env=own_cluster).remote(live._actor_id.hex()))
    assert alive in (True, "unreachable"), f"the State API said {alive!r} of a live actor of this instance"
    ray.kill(live)
