"""check_shared_storage on a real two-node Ray cluster (ray.cluster_utils.Cluster) on this machine.

Both nodes see this machine's filesystem, so the passing case is real; the failing case gives the check
a node whose view differs (its test seam maps the worker node's marker path into a node-local directory),
which is what a node without the shared mount sees. The online job runs on the same cluster with that
check handed in, and must stop before its roles start.

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
from tiny_support import SUITE_OVERRIDES

from actors.cluster import without_dashboard
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


JOB_DRIVER = """
import json, sys
from pathlib import Path
import ray
import jobs.iterative_dpo as job
from actors.shared_storage import check_runs_root, check_shared_storage
from ultramedical.config import load_config

local, out, *argv = sys.argv[1:]
checked = []

def stage_check(runs_root):
    # What jobs/sft.py (rm, dpo, kto) run before the stage: None when runs_root passes.
    try:
        check_runs_root(load_config(argv[1], ["--runs_root", runs_root]))
    except SystemExit as exc:
        return str(exc.code)
    return None

blocker = Path(local).parent / "a-file"
blocker.write_text("not a directory")
stages = {
    "shared": stage_check(str(Path(local).parent / "runs")),
    "unwritable": stage_check(f"{blocker}/runs"),
}

def node_local(node_id, marker):
    own = Path(local) / node_id
    own.mkdir(parents=True, exist_ok=True)
    return str(own / Path(marker).name)

def check(path, **kwargs):
    checked.append(path)
    check_shared_storage(path, timeout_s=60, _path_on_node=node_local, **kwargs)

try:
    job.main(argv, check_storage=check)
    error = None
except SystemExit as exc:
    error = str(exc.code)
groups = [g["state"] for g in ray.util.placement_group_table().values()]
driver_node = ray.get_runtime_context().get_node_id()
nodes = [{"id": n["NodeID"], "ip": n["NodeManagerAddress"]} for n in ray.nodes() if n["Alive"]]
Path(out).write_text(json.dumps(
    {"error": error, "checked": checked, "groups": groups, "driver_node": driver_node, "nodes": nodes,
     "stages": stages}
))
"""


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[str, str]]:
    from ray.cluster_utils import Cluster

    ray_tmp = tempfile.mkdtemp(prefix="rayss")  # short: Ray's socket paths live under it
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", ray_tmp)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **without_dashboard()})
        try:
            cluster.add_node(num_cpus=2)  # logical CPUs: room for the online job's roles (tiny-cpu)
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


def test_the_online_job_stops_before_its_roles_start_when_a_node_cannot_see_its_run_dir(
    two_nodes: tuple[str, str], artifacts: Path, tmp_path: Path
) -> None:
    address, ray_tmp = two_nodes
    run_dir, out = tmp_path / "online", tmp_path / "result.json"
    data = artifacts / "data"
    # The tiny-cpu roles (2 trainers, 1 engine, 1 scorer) fit the worker node's 2 logical CPUs.
    arguments = [
        *("--config", str(REPO_ROOT / "configs" / "tiny-cpu.yaml")),
        *("--rounds", "1"),
        *("--run-dir", str(run_dir)),
        *("--policy", str(artifacts / "tiny" / "policy")),
        *("--reward-model", str(artifacts / "tiny" / "reward")),
        *("--data.prompts", json.dumps({"path": str(data / "instructions.jsonl")})),
        *("--data.eval_benchmarks", json.dumps({"medqa": {"path": str(data / "test" / "medqa.jsonl")}})),
        *("--online.eval_items", "4"),
        *("--online.placement_timeout_s", "120"),
        *(arg for key, value in SUITE_OVERRIDES.items() for arg in (f"--{key}", str(value))),
    ]
    env = os.environ | {"RAY_ADDRESS": address, "RAY_TMPDIR": ray_tmp}
    result = subprocess.run(
        [sys.executable, "-c", JOB_DRIVER, str(tmp_path / "node-local"), str(out), *arguments],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(out.read_text())
    assert outcome["checked"] == [str(run_dir)]  # the job's own check ran, once
    [worker] = [n for n in outcome["nodes"] if n["id"] != outcome["driver_node"]]
    error = outcome["error"]
    assert error is not None and error.startswith(f"error: the online run directory {run_dir} is not shared")
    assert f"node {worker['id']} ({worker['ip']}): cannot read the marker" in error
    # Stopped after placement and before any role ran: the groups are gone again and no round 0 was graded.
    assert outcome["groups"] and set(outcome["groups"]) == {"REMOVED"}
    assert (run_dir / "config.yaml").exists() and not (run_dir / "heldout.jsonl").exists()
    assert not list(run_dir.glob(MARKER_PREFIX + "*"))
    # The offline jobs' check, on the same two nodes: a shared runs_root passes, one the driver cannot
    # create stops the job naming it.
    assert outcome["stages"]["shared"] is None
    assert outcome["stages"]["unwritable"].startswith(f"error: runs_root {tmp_path}/a-file/runs: the driver")
