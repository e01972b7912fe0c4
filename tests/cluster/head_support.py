"""Starting a Ray head of a test's own with `ray start --head`: every port given (free ones unless named), its
own temp dir, in a session of its own so that it is torn down by killing that session, never with `ray stop`
(which stops every Ray process on the machine, the test session's own instance included)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tiny_support import kill_session

VENV_BIN = Path(sys.executable).parent
CLI_TIMEOUT_S = 120
PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def start_head(
    temp_dir: Path, log: Path, env: dict[str, str], dashboard_port: int | None = None
) -> tuple[int, int]:
    """`ray start --head` with a dashboard on loopback; returns (the session id to kill, the dashboard port).
    Raises with the start log when it fails, having killed what it started."""
    ports = free_ports(len(PORT_FLAGS))
    if dashboard_port is not None:
        ports[PORT_FLAGS.index("--dashboard-port")] = dashboard_port
    command = [str(VENV_BIN / "ray"), "start", "--head", "--num-cpus", "2", "--temp-dir", str(temp_dir)]
    command += ["--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--disable-usage-stats"]
    for flag, port in zip(PORT_FLAGS, ports, strict=True):
        command += [flag, str(port)]
    with log.open("w") as out:  # a file, not a pipe: the daemons it starts may hold it open
        starter = subprocess.Popen(
            command,
            env=env | {"RAY_TMPDIR": str(temp_dir)},  # its address file stays out of everyone else's way
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # every daemon it starts stays in this session: how it is stopped
        )
    try:
        code = starter.wait(timeout=CLI_TIMEOUT_S)
    finally:
        if starter.poll() is None:
            starter.kill()
    if code != 0:
        kill_session(starter.pid)
        raise RuntimeError(f"ray start failed ({code}):\n{log.read_text()}")
    return starter.pid, ports[PORT_FLAGS.index("--dashboard-port")]
