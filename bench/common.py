"""What every benchmark shares: the models and corpus they run on, timing with repetitions, the machine's
matmul peak, and the result record each comparison produces.

Measurement rules kept here so every benchmark follows them:
- both sides run back to back in one process tree, alternating repetition by repetition (ours, baseline,
  ours, baseline, ...), so a noisy neighbour slows both sides rather than one;
- a comparison reports the median of its repetitions and the spread, (max - min) / median;
- where one side leaves work behind it (a killed engine's teardown), `settle()` waits for quiet CPUs before
  the next measurement;
- if the two sides did not do the same work (tokens generated, pairs trained, prompts served), the
  benchmark raises `UnequalWorkError`: no ratio is ever reported for unequal work.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO / "bench"
OUT_DIR = BENCH_DIR / "out"  # git-ignored: corpus, models, run directories
PRESET = REPO / "configs" / "tiny-cpu.yaml"
RAY_CPUS = 4  # logical CPUs above the 2 cores, so engine, scorer and two trainer workers fit at once
MATMUL_THREADS = 2


class UnequalWorkError(RuntimeError):
    """The two sides of a comparison did not do the same work; no ratio may be reported."""


def require_equal(what: str, ours: Any, baseline: Any) -> None:
    if ours != baseline:
        raise UnequalWorkError(f"{what}: ours {ours!r} != baseline {baseline!r}; refusing to compare")


# -- models and corpus ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Assets:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    def policy(self, size: str = "small") -> Path:
        return self.root / "models" / size / "policy"

    def reward(self, size: str = "small") -> Path:
        return self.root / "models" / size / "reward"


def ensure_assets(root: Path = OUT_DIR) -> Assets:
    """The sample corpus and the `tiny` and `small` policy + reward models, built once under `root`."""
    from ultramedical.data.sample import generate_sample_corpus

    assets = Assets(Path(root).resolve())
    if not (assets.data / "preferences.jsonl").is_file():
        generate_sample_corpus(assets.data)
    for size in ("tiny", "small"):
        ensure_model(assets, size)
    return assets


def ensure_model(assets: Assets, size: str) -> Path:
    """The `size` policy + reward model under the assets, built once; returns the policy's directory."""
    from ultramedical.models.tiny import init_tiny_models
    from ultramedical.rundir import is_complete_model

    if not (is_complete_model(assets.policy(size)) and is_complete_model(assets.reward(size))):
        init_tiny_models(assets.data, assets.policy(size).parent, size=size)
    return assets.policy(size)


def parameter_count(model_dir: Path) -> int:
    """Parameters of the HF model in `model_dir`, read from its safetensors header (no weights loaded)."""
    from safetensors import safe_open

    total = 0
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(path), framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                shape = handle.get_slice(name).get_shape()
                count = 1
                for dim in shape:
                    count *= dim
                total += count
    return total


def bench_config(
    assets: Assets, runs_root: Path, size: str = "small", overrides: dict[str, Any] | None = None
) -> Any:
    """The tiny-cpu preset pointed at the benchmark's corpus and models; `overrides` has dotted keys."""
    from ultramedical.config import load_config

    data = assets.data
    base = {
        "name": f"bench-{size}",
        "runs_root": str(runs_root),
        "artifacts_dir": str(assets.root),
        "model.policy": str(assets.policy(size)),
        "model.reward_model": str(assets.reward(size)),
        "data.instructions": [{"path": str(data / "instructions.jsonl")}],
        "data.preferences": {"path": str(data / "preferences.jsonl")},
        "data.reward_test": {"path": str(data / "reward_test.jsonl")},
        "data.prompts": {"path": str(data / "instructions.jsonl")},
        "data.eval_benchmarks": {"medqa": {"path": str(data / "test" / "medqa.jsonl")}},
    }
    return load_config(PRESET, base | (overrides or {}))


# -- timing --------------------------------------------------------------------------------------------------
def summarize(values: list[float]) -> dict[str, Any]:
    """Median, min, max and spread = (max - min) / median of a list of repetitions."""
    if not values:
        raise ValueError("no repetitions to summarize")
    median = statistics.median(values)
    return {
        "values": [round(v, 6) for v in values],
        "median": round(median, 6),
        "min": round(min(values), 6),
        "max": round(max(values), 6),
        "spread": round((max(values) - min(values)) / median, 4) if median else None,
    }


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def interleave(sides: dict[str, Callable[[int], float]], reps: int) -> dict[str, list[float]]:
    """Run each side's measurement once per repetition, in turn: a, b, a, b, ... Each call gets the
    repetition index and returns one value."""
    values: dict[str, list[float]] = {name: [] for name in sides}
    for rep in range(reps):
        for name, measure in sides.items():
            values[name].append(measure(rep))
    return values


def matmul_peak(n: int = 2048, threads: int = MATMUL_THREADS, reps: int = 5) -> dict[str, Any]:
    """fp32 FLOP/s of an n^3 matmul on `threads` threads: the best of `reps` (the practical peak)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a = torch.randn(n, n, dtype=torch.float32)
        b = torch.randn(n, n, dtype=torch.float32)
        torch.mm(a, b)  # warm-up
        seconds = []
        for _ in range(reps):
            start = time.perf_counter()
            torch.mm(a, b)
            seconds.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    flops = 2 * n**3
    return {
        "flops_per_s": flops / min(seconds),
        "median_flops_per_s": flops / statistics.median(seconds),
        "n": n,
        "threads": threads,
        "reps": reps,
    }


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def settle(busy_below: float = 0.2, window_s: float = 0.5, max_s: float = 15.0) -> float:
    """Wait until the machine's CPUs were busy less than `busy_below` of one window (a killed engine has
    unmapped its memory, a restarted Ray worker has imported): a measurement must not pay for the previous
    one's teardown. Returns the seconds waited; gives up quietly after `max_s` (a shared machine may never
    be quiet, and load_average in the results says so). Without /proc/stat it waits one window."""
    start = time.perf_counter()
    if not Path("/proc/stat").exists():
        time.sleep(window_s)
        return window_s
    while time.perf_counter() - start < max_s:
        busy0, total0 = _cpu_times()
        time.sleep(window_s)
        busy1, total1 = _cpu_times()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) < busy_below:
            break
    return time.perf_counter() - start


def load_average() -> list[float]:
    """The 1/5/15-minute load averages: how busy the shared machine was while a benchmark ran."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


# -- results -------------------------------------------------------------------------------------------------
@dataclass
class Result:
    """One line of results.json. ratio > 1 means this project is better (seconds: baseline / ours),
    except where an entry defines its own ratio (mfu, round_scaling; see bench/README.md)."""

    name: str
    ours: float | None
    baseline: float | None
    baseline_name: str
    unit: str
    ratio: float | None
    runs: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ours": self.ours,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "unit": self.unit,
            "ratio": self.ratio,
            "runs": self.runs,
        }


def speed_ratio(ours: float, baseline: float, unit: str) -> float:
    """> 1 when ours is better: baseline / ours for times, ours / baseline for rates."""
    if unit in ("s", "seconds"):
        return baseline / ours
    return ours / baseline


def compared(
    name: str,
    unit: str,
    baseline_name: str,
    ours_values: list[float],
    baseline_values: list[float],
    **extra: Any,
) -> Result:
    """A comparison's record from both sides' repetitions (medians compared)."""
    ours, base = summarize(ours_values), summarize(baseline_values)
    return Result(
        name=name,
        ours=ours["median"],
        baseline=base["median"],
        baseline_name=baseline_name,
        unit=unit,
        ratio=round(speed_ratio(ours["median"], base["median"], unit), 4),
        runs={"ours": ours, "baseline": base, **extra},
    )


def not_measured(name: str, unit: str, baseline_name: str, reason: str, **extra: Any) -> Result:
    return Result(name, None, None, baseline_name, unit, None, {"not_measured": reason, **extra})


def trl_missing() -> str | None:
    """None when TRL can be imported, else why not (the suite installs nothing itself)."""
    try:
        import trl  # noqa: F401
    except Exception as exc:  # ImportError, or a broken install raising something else
        name = type(exc).__name__
        return f"trl is not importable ({name}: {exc}); install the extra: pip install -e '.[bench]'"
    return None


def trl_version() -> str | None:
    try:
        import trl

        return trl.__version__
    except Exception:
        return None


@dataclass(frozen=True)
class Sizes:
    """How much work each benchmark does; `quick()` is a smoke run (1 repetition, small sizes)."""

    reps: int = 3
    gen_prompts: int = 8
    gen_n: int = 4
    gen_tokens: int = 256
    hf_prompts_per_call: int = 8
    dpo_pairs: int = 64
    rm_pairs: int = 64
    train_seq_len: int = 384
    online_prompts: int = 32
    online_k: int = 2
    online_tokens: int = 128
    scaling_prompts: int = 8
    scaling_reps: int = 1
    serving_requests: int = 256
    serving_concurrency: int = 32

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            reps=1,
            gen_prompts=8,
            gen_n=2,
            gen_tokens=64,
            dpo_pairs=32,
            rm_pairs=32,
            online_prompts=16,
            online_tokens=32,
            scaling_prompts=4,
            serving_requests=64,
        )
