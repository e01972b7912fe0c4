"""Does a vLLM release still have the APIs our code calls? Reads the source text, imports nothing.

    python scripts/check_vllm_api.py                  # downloads the upstream wheel pinned in locks/cuda.txt
    python scripts/check_vllm_api.py vllm-X.whl       # a wheel file
    python scripts/check_vllm_api.py path/to/vllm     # an unpacked tree: the package dir or the dir above it

Prints one line per API with the file of the release where it was found and exits 0; exits 1 naming each
API it could not find, 2 when the source cannot be read. Every check below names where our code relies on
it, so a release that renames something fails here, on a CPU machine, before a GPU cluster starts.
"""

from __future__ import annotations

import argparse
import fnmatch
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOCK = REPO_ROOT / "locks" / "cuda.txt"

ENGINE = "ultramedical/generation/engine.py"
WEIGHT_SYNC = "ultramedical/generation/weight_sync.py"
PLACEMENT = "actors/placement.py"


@dataclass(frozen=True)
class Check:
    name: str  # the API as our code uses it
    used_in: str  # where our code relies on it
    pattern: str  # a regex (re.MULTILINE) over the text of one file of the release
    paths: tuple[str, ...]  # fnmatch patterns of the files it may be in, relative to the package's parent


def field(name: str) -> str:
    """A dataclass/config field declared as `name: ...` at class level."""
    return rf"^\s+{name}\s*:"


def env_var(name: str) -> Check:
    # envs.py declares every variable vLLM reads (a typed name and a getter keyed by the name)
    return Check(
        name,
        ENGINE if "BUNDLE" not in name and "PER_WORKER" not in name else PLACEMENT,
        rf"[\"']{name}[\"']\s*:",
        ("vllm/envs.py",),
    )


ENGINE_ARGS = ("vllm/engine/arg_utils.py",)
LLM_FILE = ("vllm/entrypoints/llm.py",)
WORKERS = ("vllm/v1/worker/*.py",)

CHECKS: tuple[Check, ...] = (
    # The engine: `from vllm import LLM, SamplingParams, TokensPrompt` (lazily exported by vllm/__init__.py)
    Check("vllm.LLM", ENGINE, r"[\"']LLM[\"']", ("vllm/__init__.py",)),
    Check("class LLM", ENGINE, r"^class LLM\b", LLM_FILE),
    Check("vllm.SamplingParams", ENGINE, r"[\"']SamplingParams[\"']", ("vllm/__init__.py",)),
    Check("vllm.TokensPrompt", ENGINE, r"[\"']TokensPrompt[\"']", ("vllm/__init__.py",)),
    Check("TokensPrompt(prompt_token_ids=)", ENGINE, field("prompt_token_ids"), ("vllm/inputs/*.py",)),
    # LLM(...) keyword arguments (forwarded to EngineArgs)
    *(
        Check(f"LLM({arg}=)", ENGINE, field(arg), ENGINE_ARGS)
        for arg in (
            "tensor_parallel_size",
            "distributed_executor_backend",
            "max_model_len",
            "max_num_seqs",
            "enforce_eager",
            "gpu_memory_utilization",
            "dtype",
            "seed",
            "worker_extension_cls",
        )
    ),
    Check('distributed_executor_backend="uni"', ENGINE, r"Literal\[[^\]]*[\"']uni[\"']", ("vllm/config*",)),
    Check('distributed_executor_backend="ray"', ENGINE, r"Literal\[[^\]]*[\"']ray[\"']", ("vllm/config*",)),
    # The worker mixes in worker_extension_cls (our WeightReceiver) and resolves it by qualified name
    Check("worker_extension_cls (mixed into the worker)", WEIGHT_SYNC, r"\bworker_extension_cls\b", WORKERS),
    # LLM methods
    Check("LLM.generate(use_tqdm=)", ENGINE, r"def generate\([^)]*\buse_tqdm\b", LLM_FILE),
    Check("LLM.collective_rpc", ENGINE, r"def collective_rpc\(", LLM_FILE),
    Check("LLM.reset_prefix_cache", ENGINE, r"def reset_prefix_cache\(", LLM_FILE),
    # WeightReceiver.install_tensors calls self.reload_weights(weights_iterator=...) inside the worker
    Check("Worker.reload_weights", WEIGHT_SYNC, r"def reload_weights\(", ("vllm/v1/worker/*worker*.py",)),
    Check(
        "reload_weights(weights_iterator=)",
        WEIGHT_SYNC,
        r"def reload_weights\(\s*self[^)]*\bweights_iterator\b",
        WORKERS,
    ),
    # SamplingParams fields we set
    *(
        Check(f"SamplingParams({name}=)", ENGINE, field(name), ("vllm/sampling_params.py",))
        for name in ("n", "temperature", "top_p", "max_tokens", "seed")
    ),
    # What we read from each completion
    *(
        Check(
            f"CompletionOutput.{name}",
            ENGINE,
            rf"class CompletionOutput\b[\s\S]*?{field(name)}",
            ("vllm/outputs.py",),
        )
        for name in ("text", "token_ids", "finish_reason")
    ),
    # Environment variables we set
    env_var("VLLM_ENABLE_V1_MULTIPROCESSING"),
    env_var("VLLM_CPU_KVCACHE_SPACE"),
    env_var("VLLM_RAY_BUNDLE_INDICES"),
    env_var("VLLM_RAY_PER_WORKER_GPUS"),
    # serve_logical_gpus (simulated tensor parallelism on CPU)
    Check(
        "vllm.platforms.current_platform", ENGINE, r"^\s*current_platform\b", ("vllm/platforms/__init__.py",)
    ),
    Check("Platform.is_cpu", ENGINE, r"def is_cpu\(", ("vllm/platforms/interface.py",)),
    Check("Platform.ray_device_key", ENGINE, field("ray_device_key"), ("vllm/platforms/interface.py",)),
)


def read_sources(source: Path) -> dict[str, str]:
    """The .py files of the vllm package in a wheel or a directory, as {"vllm/...": text}."""
    files: dict[str, str] = {}
    if source.is_file():
        with zipfile.ZipFile(source) as wheel:
            for name in wheel.namelist():
                if name.startswith("vllm/") and name.endswith(".py"):
                    files[name] = wheel.read(name).decode("utf-8", errors="replace")
        return files
    if (source / "vllm" / "__init__.py").is_file():
        package = source / "vllm"
    elif source.name == "vllm" and (source / "__init__.py").is_file():
        package = source
    else:
        raise FileNotFoundError(f"{source}: neither a wheel nor a directory with vllm/__init__.py")
    for path in sorted(package.rglob("*.py")):
        files["vllm/" + path.relative_to(package).as_posix()] = path.read_text(errors="replace")
    return files


def run_checks(files: dict[str, str]) -> list[tuple[Check, str | None]]:
    """Each check with the first file (sorted) where its pattern matches, or None."""
    results = []
    for check in CHECKS:
        found = None
        for name in sorted(files):
            if any(fnmatch.fnmatch(name, p) for p in check.paths) and re.search(
                check.pattern, files[name], re.MULTILINE
            ):
                found = name
                break
        results.append((check, found))
    return results


def locked_version(lock: Path) -> str:
    match = re.search(r"^vllm==([^\s;]+)", lock.read_text(), re.MULTILINE) if lock.is_file() else None
    if not match:
        raise SystemExit(f"error: {lock}: no vllm==<version> line")
    return match[1]


def download(version: str, dest: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            f"vllm=={version}",
            "-d",
            str(dest),
        ],
        check=True,
    )
    [wheel] = dest.glob("vllm-*.whl")
    return wheel


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "source", nargs="?", type=Path, help="a vllm wheel or source tree (default: download)"
    )
    parser.add_argument("--lock", type=Path, default=DEFAULT_LOCK, help="lock naming vllm==<version>")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        source = args.source
        if source is None:
            version = locked_version(args.lock)
            print(f"downloading vllm=={version} (pinned in {args.lock.name})", flush=True)
            source = download(version, Path(tmp))
        try:
            files = read_sources(source)
        except (OSError, zipfile.BadZipFile) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        results = run_checks(files)
    print(f"{source.name}: {len(files)} source files")
    missing = [(c, f) for c, f in results if f is None]
    for check, found in results:
        if found:
            print(f"ok       {check.name}  ({found})")
    for check, _ in missing:
        print(
            f"MISSING  {check.name}  (used in {check.used_in}; looked for /{check.pattern}/ in "
            f"{', '.join(check.paths)})"
        )
    if missing:
        print(f"{len(missing)} of {len(results)} APIs missing: {', '.join(c.name for c, _ in missing)}")
        return 1
    print(f"all {len(results)} APIs found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
