"""The whole UltraMedical pipeline on the embedded default, end to end, on one machine.

    make demo                                  (= python -m jobs.demo --config configs/tiny-cpu.yaml)

sample corpus -> tiny Llama -> SFT -> reward model -> DPO -> online iterative DPO (and its ablations) ->
evaluation (greedy, self-consistency, best-of-N; reward-model accuracy per subset) -> report. Every stage
that already finished is skipped and an interrupted one resumes, so running it again continues.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from actors.cluster import connect_ray
from actors.train_stage import run_stage
from ultramedical.config import Config, load_config
from ultramedical.eval.benchmarks import load_benchmark
from ultramedical.eval.runner import (
    PolicyEvaluator,
    best_of_n_scorer,
    evaluate_reward_model,
    record_result,
    run_benchmark,
)
from ultramedical.io import atomic_write_jsonl
from ultramedical.rundir import RunDir, is_complete_model

# Online runs with one setting changed, run after the headline online run (which the reward model alone
# labels) and evaluated greedy beside it: label -> (the changed settings, what the report says of the row).
ABLATIONS = {
    "online-rule-bonus": (
        {"reward.correct_letter_bonus": 1.0},
        "the online rounds again with a rule-based bonus: +1 on the reward model's score for a completion "
        "whose answer matches the prompt's answer key (reward.correct_letter_bonus: 1.0). An ablation, not "
        "the headline: the online row's pairs are chosen by the reward model alone.",
    ),
}


def log(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def build_artifacts(config: Config) -> None:
    """The sample corpus and the tiny model, unless they are there already."""
    from ultramedical.data.sample import generate_sample_corpus
    from ultramedical.models.tiny import init_tiny_models

    data_dir = Path(config.artifacts_dir) / "data"
    if not (data_dir / "instructions.jsonl").exists():
        generate_sample_corpus(data_dir)
        log(f"sample corpus written to {data_dir}")
    if not is_complete_model(Path(config.model.policy)):
        init_tiny_models(data_dir, Path(config.model.policy).parent)
        log(f"tiny policy and reward model written to {Path(config.model.policy).parent}")


def train(config: Config, run: RunDir, stage: str) -> None:
    if is_complete_model(run.final(stage)):
        log(f"{stage}: already finished ({run.final(stage)})")
        return
    started = time.perf_counter()
    run_stage(config, stage, resume=True)
    log(f"{stage}: done in {time.perf_counter() - started:.0f}s")


def online(config: Config, run_dir: Path, argv: list[str]) -> None:
    from jobs.iterative_dpo import main as iterate
    from ultramedical.online.rounds import RoundStore

    if RoundStore(run_dir).last_completed() >= config.online.rounds and is_complete_model(run_dir / "final"):
        log(f"online rounds in {run_dir}: already finished")
        return
    started = time.perf_counter()
    iterate([*argv, "--run-dir", str(run_dir), "--resume"])
    log(f"online rounds in {run_dir}: done in {time.perf_counter() - started:.0f}s")


def evaluate(config: Config, run: RunDir) -> None:
    """Greedy accuracy of every model on every test set (each online round's policy and each ablation's too,
    so the table has a row per round); self-consistency and best-of-N for the SFT and final online policies
    on the first; the reward model's accuracy per subset."""
    rounds = {
        f"online-round-{k}": run.online / f"checkpoint-round-{k}" for k in range(1, config.online.rounds)
    }
    models = {
        "base": config.model.policy,
        "sft": run.final("sft"),
        "dpo": run.final("dpo"),
        **rounds,
        "online": run.online / "final",
        **{label: run.ablation(label) / "final" for label in ABLATIONS},
    }
    models = {label: str(path) for label, path in models.items() if is_complete_model(Path(path))}
    benchmarks = {
        name: load_benchmark(name, source.path, source.split, max_items=config.eval.max_items)
        for name, source in config.data.eval_benchmarks.items()
    }
    evaluator = PolicyEvaluator(config, models["base"])
    reranker = best_of_n_scorer(str(run.final("rm")))
    first = next(iter(benchmarks))
    for label, path in models.items():
        evaluator.switch_to(path)
        for name, items in benchmarks.items():
            if label == "base" and name != first:
                continue  # the untrained model answers nothing; one benchmark shows it
            sampled = name == first and label in ("sft", "online")
            for mode in ["greedy", *(["sc", "bon"] if sampled else [])]:
                subset = items if mode == "greedy" else items[: config.eval.sampled_max_items]
                records, summary = run_benchmark(
                    evaluator, subset, mode, score=reranker if mode == "bon" else None
                )
                atomic_write_jsonl(run.eval_records(label, name, mode), records)
                note = {"note": ABLATIONS[label][1]} if label in ABLATIONS else {}
                record_result(
                    run.root,
                    "results.jsonl",
                    {"model": label, "model_path": path, "benchmark": name, "mode": mode, **summary, **note},
                )
                low, high = summary["ci95"]
                log(
                    f"eval {label:>6} {name:<8} {mode:<6} accuracy {summary['accuracy']:.3f} "
                    f"[{low:.3f}, {high:.3f}] n={summary['n']} unparsed={summary['unparsed']}"
                )
    if config.data.reward_test:
        for label, path in (("rm", run.final("rm")),):
            per_subset = evaluate_reward_model(
                str(path),
                config.data.reward_test.path,
                config.data.reward_test.split,
                label=label,
                run_dir=str(run.root),
            )
            log(f"eval reward model: {per_subset}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/tiny-cpu.yaml")
    parser.add_argument("--skip-ablations", action="store_true", help="only the headline online run")
    args, overrides = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    config = load_config(args.config, overrides)
    run = RunDir.of(config.runs_root, config.name)
    started = time.perf_counter()

    build_artifacts(config)
    connect_ray()
    for stage in ("sft", "rm", "dpo"):
        train(config, run, stage)
    argv = ["--config", args.config, *overrides]
    online(config, run.online, argv)
    for label, (settings, _) in ({} if args.skip_ablations else ABLATIONS).items():
        changed = [text for key, value in settings.items() for text in (f"--{key}", str(value))]
        online(config, run.ablation(label), [*argv, *changed])
    if (run.eval / "results.jsonl").exists():
        (run.eval / "results.jsonl").unlink()  # evaluation is recomputed whole, never half-mixed
        (run.eval / "rm.jsonl").unlink(missing_ok=True)
    evaluate(config, run)

    from ultramedical.reporting import write_report

    markdown, html = write_report(run.root)
    log(f"finished in {time.perf_counter() - started:.0f}s")
    log(f"run directory: {run.root}")
    log(f"report: {markdown}")
    log(f"report: {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
