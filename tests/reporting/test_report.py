"""`ultramedical report`: a synthetic finished run in, report.md + self-contained report.html out."""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

import pytest

from jobs.cli import report as report_cli
from ultramedical.reporting import collect_run, pipeline_order, write_report

REWARD_MEANS = (0.512, 0.634, 0.745)
MODEL_ORDER = ["base", "sft", "dpo", "online-round-1", "online-round-2", "online-round-3", "gpt-4"]
EXPECTED_FIGURES = {
    "training-sft.png",
    "training-rm.png",
    "training-dpo.png",
    "online-metrics.png",
    "online-rewards.png",
    "online-margins.png",
}


def _jsonl(path: Path, rows: list, extra_lines: tuple[str, ...] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r) + "\n" for r in rows) + "".join(line + "\n" for line in extra_lines)
    path.write_text(text, encoding="utf-8")


def _stage(root: Path, stage: str, steps: int, metrics, extra_lines: tuple[str, ...] = ()) -> None:
    rows = [
        {
            "step": s,
            "loss": 2.0 / s,
            "lr": 1e-5 * (1 - s / (steps + 1)),
            "tokens_per_s": 900.0 + s,
            **metrics(s),
        }
        for s in range(1, steps + 1)
    ]
    _jsonl(root / stage / "metrics.jsonl", rows, extra_lines)
    stats = {"records": 1000, "examples": 980, "truncated": 12, "dropped_too_long": 20, "skipped_invalid": 3}
    (root / stage / "data_stats.json").write_text(json.dumps(stats | {"init_model": f"init-{stage}"}))


def _sft_only(root: Path) -> None:
    _stage(root, "sft", 30, lambda s: {})
    with (root / "sft" / "metrics.jsonl").open("a") as handle:  # a resumed run repeats steps 29 and 30
        for step, loss in ((29, 5.5), (30, 0.0421)):
            handle.write(json.dumps({"step": step, "loss": loss, "lr": 1e-7, "tokens_per_s": 800.0}) + "\n")


def make_run(root: Path) -> Path:
    rng = random.Random(0)
    root.mkdir(parents=True)
    (root / "config.yaml").write_text("name: synthetic\nmodel:\n  policy: artifacts/tiny/policy\n")
    _sft_only(root)
    _stage(root, "rm", 24, lambda s: {"accuracy": 0.5 + s / 60, "margin": s / 10, "reward_mean": 0.1})
    _stage(
        root,
        "dpo",
        36,
        lambda s: {
            "rewards/chosen": s / 50,
            "rewards/rejected": -s / 50,
            "rewards/accuracies": min(1.0, 0.5 + s / 50),
            "rewards/margins": s / 25,
            "logps/chosen": -50 + s / 10,
            "logps/rejected": -60 - s / 10,
        },
        extra_lines=('{"step": 37, "loss": 0.1', "not json at all"),
    )
    online = []
    for k, mean in enumerate(REWARD_MEANS, start=1):
        completions = [
            {
                "prompt_id": f"p{i}",
                "prompt": f"Q{i}?",
                "completions": ["a", "b", "c", "d"],
                "rewards": [rng.gauss(mean, 0.3) for _ in range(4)],
            }
            for i in range(10)
        ]
        _jsonl(root / "online" / f"round-{k}" / "completions.jsonl", completions)
        pairs = [
            {
                "prompt_id": c["prompt_id"],
                "chosen_reward": max(c["rewards"]),
                "rejected_reward": min(c["rewards"]),
                "margin": max(c["rewards"]) - min(c["rewards"]),
            }
            for c in completions
        ]
        _jsonl(root / "online" / f"round-{k}" / "pairs.jsonl", pairs)
        online.append(
            {
                "round": k,
                "reward_mean": mean,
                "reward_best": mean + 0.4,
                "reward_worst": mean - 0.4,
                "pairs": 10,
                "pair_margin": 0.5,
                "train_accuracy": 0.7,
                "publish_seconds": 3.2,
                "gen_tokens_per_s": 1500.0,
                "generate_seconds": 20.0,
                "score_seconds": 4.0,
                "train_seconds": 30.0,
            }
            | ({"heldout_accuracy": 0.6, "heldout_ci95": [0.55, 0.65]} if k == 3 else {})
        )
    _jsonl(root / "online" / "metrics.jsonl", online)
    _jsonl(
        root / "online" / "heldout.jsonl",
        [{"round": 0, "heldout_accuracy": 0.5, "heldout_ci95": [0.45, 0.55]}],
    )

    results = []
    for index, model in enumerate(reversed(MODEL_ORDER)):  # written out of pipeline order
        for bench in ("medqa", "pubmedqa"):
            for mode in ("greedy", "sc", "bon"):
                acc = 0.3 + 0.05 * index + (0.01 if mode != "greedy" else 0.0)
                results.append(
                    {
                        "model": model,
                        "model_path": f"/m/{model}",
                        "benchmark": bench,
                        "mode": mode,
                        "accuracy": acc,
                        "n": 400,
                        "ci95": [acc - 0.05, acc + 0.05],
                        "unparsed": 0,
                    }
                )
    # a later re-run of (sft, medqa, greedy) wins over the line above
    results.append(
        {
            "model": "sft",
            "benchmark": "medqa",
            "mode": "greedy",
            "accuracy": 0.413,
            "n": 400,
            "ci95": [0.360, 0.468],
            "unparsed": 2,
        }
    )
    _jsonl(root / "eval" / "results.jsonl", results)
    rm_rows = [
        {"model": m, "model_path": f"/m/{m}", "subset": s, "accuracy": a, "n": 200}
        for m in ("rm", "online-rm")
        for s, a in (("overall", 0.725), ("easy", 0.9), ("hard", 0.61), ("length", 0.55))
    ]
    _jsonl(root / "eval" / "rm.jsonl", rm_rows)
    return root


def _md_table(markdown: str, first_header: str) -> list[list[str]]:
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    run = make_run(tmp_path_factory.mktemp("runs") / "synthetic")
    md, page = write_report(run)
    assert md == run / "report.md" and page == run / "report.html"
    return run, md.read_text(), page.read_text()


def test_both_files_and_figures_exist(full_report: tuple[Path, str, str]) -> None:
    run, markdown, _ = full_report
    assert {p.name for p in (run / "report_files").glob("*.png")} == EXPECTED_FIGURES
    for name in EXPECTED_FIGURES:
        assert f"](report_files/{name})" in markdown
        assert (run / "report_files" / name).read_bytes().startswith(b"\x89PNG")
    assert "# Run report: synthetic" in markdown and "Generated " in markdown
    assert "```yaml\nname: synthetic" in markdown


def test_html_is_self_contained(full_report: tuple[Path, str, str]) -> None:
    _, _, page = full_report
    assert 'src="http' not in page and "<link" not in page and "@import" not in page
    assert "<script" not in page
    images = re.findall(r'<img [^>]*src="([^"]*)"', page)
    assert len(images) == len(EXPECTED_FIGURES)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert page.count("data:image/png;base64,") == len(EXPECTED_FIGURES)
    assert "<details><summary>config.yaml</summary>" in page and "<style>" in page
    assert "41.3 [36.0, 46.8]" in page


def test_results_table_in_pipeline_order(full_report: tuple[Path, str, str]) -> None:
    _, markdown, _ = full_report
    intervals = markdown[markdown.index("### All results with 95% intervals") :]
    header = next(line for line in intervals.splitlines() if line.startswith("| Model |"))
    assert header == (
        "| Model | MedQA (greedy) | MedQA (sc) | MedQA (bon) "
        "| PubMedQA (greedy) | PubMedQA (sc) | PubMedQA (bon) |"
    )
    rows = _md_table(intervals, "Model")
    assert [row[0] for row in rows] == MODEL_ORDER
    sft = rows[1]
    assert sft[1] == "41.3 [36.0, 46.8]"  # the later line for (sft, medqa, greedy) wins
    assert sft[4] == "55.0 [50.0, 60.0]"  # index 5 in the reversed order: 0.3 + 0.25
    assert rows[0][1] == "60.0 [55.0, 65.0]"


def test_paper_tables_without_per_item_records(full_report: tuple[Path, str, str]) -> None:
    """No eval/<model>-<benchmark>-<mode>.jsonl in this run: accuracies and differences, but no test."""
    _, markdown, _ = full_report
    greedy = markdown[markdown.index("### Greedy decoding") :]
    assert greedy.splitlines()[2] == "| Model | MedQA | PubMedQA | Average |"
    rows = {row[0]: row for row in _md_table(greedy, "Model")}
    assert list(rows) == MODEL_ORDER
    average = (0.413 + 0.55) / 2  # the unweighted mean of the row's columns (48.15: printed as it rounds)
    assert rows["sft"] == ["sft", "41.3", "55.0", f"{100 * average:.1f}"]
    # dpo: index 4 in the reversed order, 0.3 + 0.2 on both: +8.7 and -5.0 points from sft
    assert rows["dpo"] == [
        "dpo",
        "50.0 (+8.7, no item records)",
        "50.0 (-5.0, no item records)",
        f"50.0 ({100 * (0.5 - average):+.1f})",
    ]
    for mode in ("sc", "bon"):
        table = markdown[markdown.index(f"### {'Self-consistency' if mode == 'sc' else 'Best-of-N'}") :]
        assert [row[0] for row in _md_table(table, "Model")] == MODEL_ORDER

    rm = _md_table(markdown, "Reward model")
    assert [row[0] for row in rm] == ["rm", "online-rm"]
    rm_header = next(line for line in markdown.splitlines() if line.startswith("| Reward model |"))
    assert rm_header == "| Reward model | easy | hard | length | overall |"
    assert rm[0][1:] == ["90.0 (n=200)", "61.0 (n=200)", "55.0 (n=200)", "72.5 (n=200)"]


def test_round_table_and_data_stats(full_report: tuple[Path, str, str]) -> None:
    _, markdown, _ = full_report
    before, *rounds = _md_table(markdown, "Round")
    assert before[0] == "0" and before[8] == "50.0 [45.0, 55.0]"  # the starting policy, from heldout.jsonl
    assert set(before[1:8] + before[9:]) == {"-"}
    assert [row[0] for row in rounds] == ["1", "2", "3"]
    assert [row[1] for row in rounds] == [f"{m:.3f}" for m in REWARD_MEANS]
    assert [row[4] for row in rounds] == ["40", "40", "40"]  # completions read from the round files
    assert rounds[2][8] == "60.0 [55.0, 65.0]" and rounds[0][8] == "-"

    stats = {row[0]: row for row in _md_table(markdown, "Stage | records")}
    assert set(stats) == {"sft", "rm", "dpo"}
    assert stats["dpo"][1:] == ["1000", "980", "12", "20", "3", "init-dpo"]


def test_repeated_step_takes_last_line(full_report: tuple[Path, str, str]) -> None:
    run, markdown, _ = full_report
    sft = collect_run(run).stages["sft"]
    assert [row["step"] for row in sft.metrics] == list(range(1, 31))
    assert sft.metrics[28]["loss"] == 5.5 and sft.metrics[29]["loss"] == 0.0421
    training = {row[0]: row for row in _md_table(markdown, "Stage | logged steps")}
    assert training["sft"][1:4] == ["30", "30", "0.0421"]


def test_malformed_lines_are_skipped_and_counted(full_report: tuple[Path, str, str]) -> None:
    run, markdown, _ = full_report
    data = collect_run(run)
    assert data.skipped == {"dpo/metrics.jsonl": 2}
    assert len(data.stages["dpo"].metrics) == 36
    assert "Skipped 2 malformed lines in dpo/metrics.jsonl." in markdown


def test_sft_only_run_says_what_is_missing(tmp_path: Path) -> None:
    run = tmp_path / "partial"
    run.mkdir()
    _sft_only(run)
    md, page = write_report(run)
    markdown = md.read_text()
    assert "Missing: online rounds" in markdown
    assert "Missing: evaluation (eval/results.jsonl)." in markdown
    assert "Missing: config (config.yaml)." in markdown
    assert "| Model |" not in markdown and "| Round |" not in markdown
    assert [p.name for p in (run / "report_files").glob("*.png")] == ["training-sft.png"]
    assert page.read_text().count("data:image/png;base64,") == 1


def test_empty_and_damaged_run_never_crashes(tmp_path: Path) -> None:
    run = tmp_path / "damaged"
    (run / "online" / "round-1").mkdir(parents=True)
    (run / "online" / "round-1" / "completions.jsonl").write_text('{"rewards": [NaN, 1.0, "x"]}\n[1, 2]\n')
    (run / "rm").mkdir()
    (run / "rm" / "data_stats.json").write_text("{truncated")
    (run / "eval").mkdir()
    (run / "eval" / "results.jsonl").write_text('{"model": "base", "benchmark": "medqa", "mode": "greedy"}\n')
    md, page = write_report(run)
    markdown = md.read_text()
    assert "Missing: online round metrics (online/metrics.jsonl)." in markdown
    assert "Skipped 1 malformed line in eval/results.jsonl." in markdown
    assert "Skipped 1 malformed line in rm/data_stats.json." in markdown
    assert page.read_text().count("data:image/png;base64,") == 1  # round 1 rewards: one finite value


def test_pipeline_order() -> None:
    labels = ["zephyr", "online-round-10", "dpo", "online-round-2", "base", "kto", "sft", "zephyr"]
    assert pipeline_order(labels) == [
        "base",
        "sft",
        "dpo",
        "kto",
        "online-round-2",
        "online-round-10",
        "zephyr",
    ]


def test_cli_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "cli-run"
    run.mkdir()
    _sft_only(run)
    out = tmp_path / "out"
    parser = argparse.ArgumentParser()
    report_cli.add_parser(parser.add_subparsers(dest="command"))

    args = parser.parse_args(["report", str(run), "--out", str(out)])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [str(out / "report.md"), str(out / "report.html")]
    assert (out / "report_files" / "training-sft.png").is_file() and not (run / "report.md").exists()

    args = parser.parse_args(["report", str(run)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run.absolute() / "report.html")

    args = parser.parse_args(["report", str(tmp_path / "nope")])
    assert args.func(args) == 2


def test_through_cli_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`ultramedical report RUN_DIR` via cli.main, with only this module registered (the real
    COMMAND_MODULES tuple lives in jobs/cli/__init__.py)."""
    import jobs.cli as cli

    run = tmp_path / "main-run"
    run.mkdir()
    _sft_only(run)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("report",))
    assert cli.main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run.absolute() / "report.html")
