"""The local cluster path: `ray start --head` (token authentication on, the 2.60 default), `ray job submit`
of a real tiny SFT stage, `ray job status` / `ray job logs`, and `ray job stop`.

The head is this module's own: free ports, its own temp dir, its own token file (RAY_AUTH_TOKEN_PATH),
so the developer's ~/.ray/auth_token and any other Ray instance on the machine are left alone. It is torn
down by killing the processes of the session `ray start` ran in, never with `ray stop` (which stops every
Ray process on the machine, the test session's own instance included).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from head_support import CLI_TIMEOUT_S, VENV_BIN, start_head
from tiny_support import REPO_ROOT, kill_session, weights_moved

from ultramedical.rundir import is_complete_model

pytestmark = pytest.mark.slow

AUTH_VARIABLES = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
JOB_TIMEOUT_S = 420


@dataclass
class Head:
    address: str  # the dashboard's HTTP address, what `ray job` talks to
    token_file: Path
    base_env: dict[str, str]
    home_without_token: Path

    def env(self, token: str) -> dict[str, str]:
        """Client environment: `none` (no token anywhere), `wrong`, or `right` (RAY_AUTH_MODE=token)."""
        if token == "none":
            return self.base_env | {"HOME": str(self.home_without_token)}
        if token == "wrong":
            wrong = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
            return self.base_env | wrong | {"HOME": str(self.home_without_token)}
        assert token == "right"
        return self.base_env | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_file)}

    def job(
        self, command: str, *args: str, token: str = "right", timeout: float = CLI_TIMEOUT_S
    ) -> subprocess.CompletedProcess:
        """`ray job COMMAND --address ... ARGS` (the options go before a submit's `-- entrypoint`)."""
        options = ["--address", self.address, "--log-style", "record"]
        return subprocess.run(
            [str(VENV_BIN / "ray"), "job", command, *options, *args],
            env=self.env(token),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def status(self, job_id: str) -> str:
        """The job's status from the dashboard's Jobs REST API, with the token. (Polling with `ray job status`
        cost 3 s of CPU per call, taken from the job under test on a 2-core machine.)"""
        request = urllib.request.Request(
            f"{self.address}/api/jobs/{job_id}",
            headers={"Authorization": f"Bearer {self.token_file.read_text().strip()}"},
        )
        with urllib.request.urlopen(request, timeout=CLI_TIMEOUT_S) as response:
            return json.loads(response.read())["status"]

    def wait_for(self, job_id: str, statuses: set[str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while (status := self.status(job_id)) not in statuses:
            assert time.monotonic() < deadline, f"job {job_id} still {status} after {timeout:.0f}s"
            time.sleep(1.0)
        return status


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    root = tmp_path_factory.mktemp("cluster")
    token_file = root / "auth_token"
    token_file.write_text(secrets.token_hex(32))
    home_without_token = root / "home"
    home_without_token.mkdir()
    developer_token = Path.home() / ".ray" / "auth_token"
    developer_token_before = developer_token.read_bytes() if developer_token.exists() else None

    base_env = {k: v for k, v in os.environ.items() if k not in AUTH_VARIABLES}
    base_env["PATH"] = f"{VENV_BIN}{os.pathsep}{base_env.get('PATH', '')}"
    # Unix socket paths are limited to 107 bytes: the temp dir must be short, so not under tmp_path.
    temp_dir = Path(tempfile.mkdtemp(prefix="umhead-", dir="/tmp"))
    # RAY_AUTH_MODE unset: token authentication comes on by default because a token exists (our file).
    env = base_env | {"RAY_AUTH_TOKEN_PATH": str(token_file)}
    try:
        session, dashboard_port = start_head(temp_dir, root / "ray-start.log", env)
        try:
            yield Head(f"http://127.0.0.1:{dashboard_port}", token_file, base_env, home_without_token)
        finally:
            kill_session(session)
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
        after = developer_token.read_bytes() if developer_token.exists() else None
        assert after == developer_token_before, "the developer's ~/.ray/auth_token was changed"


def test_job_submission_needs_the_token(head):
    probe = ("submit", "--no-wait", "--", "python", "-c", "print('hello')")
    missing = head.job(*probe, token="none")
    assert missing.returncode != 0
    assert "Missing authentication token" in missing.stdout + missing.stderr

    wrong = head.job(*probe, token="wrong")
    assert wrong.returncode != 0
    assert "Invalid authentication token" in wrong.stdout + wrong.stderr

    submission = f"hello-{uuid.uuid4().hex[:8]}"
    right = head.job("submit", "--submission-id", submission, *probe[1:])
    assert right.returncode == 0, right.stdout + right.stderr
    assert f"Job '{submission}' submitted successfully" in right.stdout + right.stderr
    assert head.status(submission) in {"PENDING", "RUNNING", "SUCCEEDED"}  # it runs on; not awaited here
    for command in ("status", "logs", "stop"):
        refused = head.job(command, submission, token="none")
        assert refused.returncode != 0 and "Missing authentication token" in refused.stdout + refused.stderr


def test_tiny_sft_stage_runs_as_a_job(head, artifacts, tmp_path):
    data = artifacts / "data"
    runs = tmp_path / "runs"
    stage = [
        "python",
        "jobs/sft.py",
        "--config",
        "configs/tiny-cpu.yaml",
        "--runs_root",
        str(runs),
        "--artifacts_dir",
        str(artifacts),
        "--model.policy",
        str(artifacts / "tiny" / "policy"),
        "--model.max_seq_len",
        "256",
        "--data.instructions",
        json.dumps([{"path": str(data / "instructions.jsonl"), "max_records": 32}]),
        "--sft.max_steps",
        "2",
        "--trainer.num_workers",
        "1",
        "--trainer.micro_batch_size",
        "4",
        "--trainer.log_every_steps",
        "1",
    ]
    # The repository is uploaded as the job's working dir; .gitignore keeps .venv, runs and artifacts out,
    # and the excludes say so again. `python` is the venv's: the head's PATH starts with it.
    excludes = {"excludes": [".venv", "runs", "artifacts", ".git", "**/__pycache__"]}
    submission = f"sft-{uuid.uuid4().hex[:8]}"
    submitted = head.job(
        "submit",
        "--submission-id",
        submission,
        "--working-dir",
        str(REPO_ROOT),
        "--runtime-env-json",
        json.dumps(excludes),
        "--no-wait",
        "--",
        *stage,
    )
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr

    status = head.wait_for(submission, {"SUCCEEDED", "FAILED", "STOPPED"}, timeout=JOB_TIMEOUT_S)
    logs = head.job("logs", submission).stdout
    assert status == "SUCCEEDED", logs[-3000:]
    final = runs / "tiny" / "sft" / "final"
    assert f"[sft] final model: {final}" in logs
    assert is_complete_model(final) and weights_moved(final, artifacts / "tiny" / "policy")
    lines = [json.loads(line) for line in (runs / "tiny" / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]


def test_long_job_is_stopped(head):
    submission = f"sleeper-{uuid.uuid4().hex[:8]}"
    sleeper = ("python", "-c", "import time; print('sleeping', flush=True); time.sleep(600)")
    submitted = head.job("submit", "--submission-id", submission, "--no-wait", "--", *sleeper)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    assert head.wait_for(submission, {"RUNNING", "FAILED", "SUCCEEDED"}, timeout=JOB_TIMEOUT_S) == "RUNNING"

    stopped = head.job("stop", submission)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert head.wait_for(submission, {"STOPPED", "FAILED", "SUCCEEDED"}, timeout=120) == "STOPPED"
