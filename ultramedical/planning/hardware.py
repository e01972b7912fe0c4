"""What the node types of a Ray autoscaler config (cluster.yaml) offer: GPUs, GPU and host memory, object
store size, EFA interfaces, and the custom resources by which presets pin roles to them."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

GIB = 1024**3


@dataclass(frozen=True)
class Instance:
    gpus: int
    gpu_gib: float  # total device memory as nvidia-smi reports it
    host_gib: float
    gpu_model: str = ""
    efa_interfaces: int = 0  # network cards that take an EFA interface


_A10G, _L40S, _A100_40, _A100_80, _H100, _H200 = 22.49, 44.99, 40.0, 80.0, 79.65, 140.4


def _family(prefix: str, sizes: dict[str, tuple[int, float]], gpu_gib: float, model: str) -> dict:
    return {f"{prefix}.{size}": Instance(g, gpu_gib, host, model) for size, (g, host) in sizes.items()}


INSTANCE_TYPES: dict[str, Instance] = {
    **_family(
        "g5",
        {"xlarge": (1, 16), "2xlarge": (1, 32), "4xlarge": (1, 64), "8xlarge": (1, 128),
         "12xlarge": (4, 192), "16xlarge": (1, 256), "24xlarge": (4, 384), "48xlarge": (8, 768)},
        _A10G, "A10G",
    ),
    **_family(
        "g6e",
        {"xlarge": (1, 32), "2xlarge": (1, 64), "4xlarge": (1, 128), "8xlarge": (1, 256),
         "12xlarge": (4, 384), "16xlarge": (1, 512), "24xlarge": (4, 768), "48xlarge": (8, 1536)},
        _L40S, "L40S",
    ),
    "p4d.24xlarge": Instance(8, _A100_40, 1152, "A100-40GB", efa_interfaces=4),
    "p4de.24xlarge": Instance(8, _A100_80, 1152, "A100-80GB", efa_interfaces=4),
    "p5.48xlarge": Instance(8, _H100, 2048, "H100-80GB", efa_interfaces=32),
    "p5e.48xlarge": Instance(8, _H200, 2048, "H200-141GB", efa_interfaces=32),
    **{f"{family}.{size}": Instance(0, 0.0, host) for family in ("m5", "m6i", "m7i")
       for size, host in {"xlarge": 16, "2xlarge": 32, "4xlarge": 64, "8xlarge": 128,
                          "12xlarge": 192, "16xlarge": 256, "24xlarge": 384}.items()},
}  # fmt: skip

# Ray's defaults for the object store (ray/_private/ray_constants.py and utils.resolve_object_store_memory).
OBJECT_STORE_FRACTION = 0.3
OBJECT_STORE_CAP_BYTES = 200 * 10**9
OBJECT_STORE_MIN_SHM_BYTES = 10**10
DOCKER_DEFAULT_SHM_BYTES = 64 * 1024**2


@dataclass
class NodeType:
    name: str
    instance_type: str
    instance: Instance | None  # None: not in INSTANCE_TYPES
    resources: dict[str, float]  # custom resources only (what trainer/generation/reward.node_resource name)
    min_workers: int
    max_workers: int
    is_head: bool
    shm_bytes: int
    shm_source: str
    object_store_bytes: int
    efa_configured: int
    node_config: dict[str, Any] = field(default_factory=dict)

    @property
    def gpus(self) -> int:
        return self.instance.gpus if self.instance else 0

    def describe(self) -> str:
        if self.instance is None:
            return f"{self.name} ({self.instance_type}: unknown instance type)"
        i = self.instance
        gpus = f"{i.gpus} x {i.gpu_model} {i.gpu_gib:g} GiB, " if i.gpus else ""
        return f"{self.name} ({self.instance_type}: {gpus}{i.host_gib:g} GiB host)"


_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([bkmgt]?)b?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Docker's size notation (`32g`, `512m`, binary units) in bytes."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ValueError(f"not a size: {text!r}")
    scale = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def _option(tokens: list[str], flag: str) -> str | None:
    """The value of `--flag=V` or `--flag V` among shell-split tokens; the last one wins."""
    value = None
    for i, token in enumerate(tokens):
        if token.startswith(flag + "="):
            value = token.split("=", 1)[1]
        elif token == flag and i + 1 < len(tokens):
            value = tokens[i + 1]
    return value


def _tokens(lines: list[str]) -> list[str]:
    return [t for line in lines for t in shlex.split(str(line), comments=False)]


def _shm(cluster: dict[str, Any], node: dict[str, Any], is_head: bool, host_bytes: int) -> tuple[int, str]:
    docker = cluster.get("docker") or {}
    image = docker.get("worker_image" if not is_head else "head_image") or docker.get("image")
    if not image:  # on the host AMI /dev/shm is a tmpfs of half the RAM
        return host_bytes // 2, "host /dev/shm (half the RAM)"
    options = list(docker.get("run_options") or [])
    options += docker.get("head_run_options" if is_head else "worker_run_options") or []
    options += (node.get("docker") or {}).get("worker_run_options") or []
    value = _option(_tokens(options), "--shm-size")
    if value is None:
        return DOCKER_DEFAULT_SHM_BYTES, "docker's default /dev/shm (64 MiB)"
    return parse_size(value), f"--shm-size={value}"


def object_store_bytes(host_bytes: int, shm_bytes: int, explicit: int | None) -> int:
    """What Ray gives the object store on a node: --object-store-memory, else its default sizing."""
    if explicit is not None:
        return explicit
    cap = min(OBJECT_STORE_CAP_BYTES, max(OBJECT_STORE_MIN_SHM_BYTES, int(shm_bytes * 0.95)))
    return min(int(host_bytes * OBJECT_STORE_FRACTION), cap)


def read_cluster(path: str | Path) -> tuple[list[NodeType], dict[str, Any]]:
    """The node types of an autoscaler config, and the raw config."""
    try:
        cluster = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"cluster config not found: {path}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read the cluster config: {exc}") from None
    if not isinstance(cluster, dict) or not isinstance(cluster.get("available_node_types"), dict):
        raise ValueError(f"{path}: no available_node_types mapping")
    head = cluster.get("head_node_type")
    types = []
    for name, node in cluster["available_node_types"].items():
        instance_type = str((node.get("node_config") or {}).get("InstanceType", ""))
        instance = INSTANCE_TYPES.get(instance_type)
        host_bytes = int(instance.host_gib * GIB) if instance else 0
        is_head = name == head
        shm, source = _shm(cluster, node, is_head, host_bytes)
        start = cluster.get("head_start_ray_commands" if is_head else "worker_start_ray_commands") or []
        explicit = _option(_tokens(start), "--object-store-memory")
        resources = node.get("resources") or {}
        node_config = node.get("node_config") or {}
        efa = [n for n in node_config.get("NetworkInterfaces") or [] if n.get("InterfaceType") == "efa"]
        types.append(
            NodeType(
                name=name,
                instance_type=instance_type,
                instance=instance,
                resources={k: v for k, v in resources.items() if k not in ("CPU", "GPU", "memory")},
                min_workers=int(node.get("min_workers", 0)),
                max_workers=int(node.get("max_workers", 0)) if not is_head else 1,
                is_head=is_head,
                shm_bytes=shm,
                shm_source=source,
                object_store_bytes=object_store_bytes(
                    host_bytes, shm, int(explicit) if explicit is not None else None
                ),
                efa_configured=len(efa),
                node_config=node_config,
            )
        )
    return types, cluster
