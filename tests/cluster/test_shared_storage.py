"""check_shared_storage on a real two-node Ray cluster (ray.cluster_utils.Cluster) on this machine.

Both nodes see this machine's filesystem, so the passing case is real; the failing case gives the check
a node whose view differs (its test seam maps the worker node's marker path into a node-local directory),
which is what a node without the shared mount sees.

The cluster gets its own RAY_TMPDIR, so its address file never redirects anyone else's `ray.init()` on this
machine, and the checks run in a driver subprocess, so this test process's own Ray instance (the session
fixture's, if another module started it) is left alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.shared_storage import MARKER_PREFIX, SharedStorageError, check_shared_storage

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = """
import json, sys
from pathlib import Path
import ray
from actors.shared_storage import check_shared_storage

address, shared, local = sys.argv[1:4]
ray.init(address=address, log_to_driver=False)
driver_node = ray.get_runtime_context().get_node_id()
nodes = [{"id": n["NodeID"], "ip": n["NodeManagerAddress"]} for n in ray.nodes() if n["Alive"]]

def run(**seam):
    try:
        check_shared_storage(shared, timeout_s=60, **seam)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None

def node_local(node_id, marker):
    # The worker node sees its own directory at runs_root, without the driver's marker.
    if node_id == driver_node:
        return marker
    own = Path(local) / node_id
    own.mkdir(parents=True, exist_ok=True)
    return str(own / Path(marker).name)

result = {"driver_node": driver_node, "nodes": nodes, "shared": run()}
result["not_shared"] = run(_path_on_node=node_local)
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[str, str]]:
    from ray.cluster_utils import Cluster

    ray_tmp = tempfile.mkdtemp(prefix="rayss")  # short: Ray's socket paths live under it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", ray_tmp)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        try:
            cluster.add_node(num_cpus=1)
            yield cluster.address, ray_tmp
        finally:
            cluster.shutdown()
            shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def checks(two_nodes: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    address, ray_tmp = two_nodes
    root = tmp_path_factory.mktemp("storage")
    shared, local = root / "runs", root / "node-local"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"RAY_TMPDIR": ray_tmp}
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, address, str(shared), str(local)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"shared_dir": shared}


def test_two_nodes_that_see_the_same_directory_pass(checks):
    assert len(checks["nodes"]) == 2  # the check ran on a real two-node cluster
    assert checks["shared"] is None
    assert not list(checks["shared_dir"].glob(MARKER_PREFIX + "*"))  # the marker is removed again


def test_a_node_that_cannot_see_runs_root_is_named_by_id_and_ip(checks):
    error = checks["not_shared"]
    assert error is not None and error.startswith("SharedStorageError: runs_root ")
    [worker] = [n for n in checks["nodes"] if n["id"] != checks["driver_node"]]
    assert f"node {worker['id']} ({worker['ip']}): cannot read the marker" in error
    assert checks["driver_node"] not in error  # the node that does see it is not blamed
    assert "(1 of 2 differ)" in error
    assert not list(checks["shared_dir"].glob(MARKER_PREFIX + "*"))


def test_a_runs_root_the_driver_cannot_write_names_the_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(SharedStorageError, match=f"runs_root {blocker}/runs: the driver cannot write"):
        check_shared_storage(str(blocker / "runs"))  # fails before any Ray call
