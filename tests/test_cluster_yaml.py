"""cluster.yaml is a valid Ray autoscaler config, by the JSON schema shipped inside the ray package."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml

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
