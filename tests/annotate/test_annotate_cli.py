"""`annotate preferences|difficulty|decontaminate`, parsed the way the main CLI parses them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml
from fake_openai_server import FakeOpenAIServer, instruction, make_config

from jobs.cli.annotate import add_parser


def _main(argv: list[str]) -> int:
    """What jobs/cli/__init__.py does: parse_known_args, extras become args.overrides."""
    parser = argparse.ArgumentParser(prog="ultramedical")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    return int(args.func(args))


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def preset(server: FakeOpenAIServer, tmp_path: Path) -> Path:
    annotate = make_config(server.base_url).model_dump(mode="json")
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump({"model": {"policy": "tiny"}, "annotate": annotate}))
    return path


def test_preferences_with_overrides(
    server: FakeOpenAIServer, preset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prompts = _write_jsonl(
        tmp_path / "p.jsonl", [instruction(f"q{i}", f"Question {i} on anaemia?") for i in range(3)]
    )
    out = tmp_path / "out"
    argv = ["annotate", "preferences", "--prompts", str(prompts), "--out", str(out), "--config", str(preset)]
    assert _main(argv + ["--annotate.concurrency", "2", "--annotate.seed=3", "--limit", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["annotated"] == 2 and printed["pairs"] == 2 and server.requests == 2 * 4
    assert len((out / "pairs.jsonl").read_text().splitlines()) == 2
    assert _main(argv + ["--annotate.concurrncy", "2"]) == 2
    assert "did you mean 'concurrency'" in capsys.readouterr().err


def test_difficulty_rates_and_filters(
    server: FakeOpenAIServer, preset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        instruction("easy", "Which vitamin prevents scurvy?"),
        instruction("hard", "A hard case of porphyria?"),
    ]
    prompts = _write_jsonl(tmp_path / "p.jsonl", rows)
    out = tmp_path / "rated.jsonl"
    argv = ["annotate", "difficulty", "--prompts", str(prompts), "--out", str(out), "--config", str(preset)]
    assert _main(argv + ["--min-score", "5"]) == 0
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in kept] == ["hard"] and kept[0]["score"].startswith("8. ")
    assert json.loads(capsys.readouterr().out)["requests"] == 2
    assert (
        _main(
            [
                "annotate",
                "difficulty",
                "--prompts",
                str(out),
                "--out",
                str(out),
                "--filter-only",
                "--max-score",
                "5",
            ]
        )
        == 1
    )
    assert server.requests == 2


def test_decontaminate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    question = (
        "Which coronary artery is most likely occluded in an inferior wall infarction with ST elevation?"
    )
    train = _write_jsonl(
        tmp_path / "train.jsonl", [instruction("dirty", question.upper()), instruction("ok", "Why?")]
    )
    medqa = _write_jsonl(tmp_path / "medqa_test.jsonl", [{"id": "m1", "question": question}])
    out = tmp_path / "clean.jsonl"
    argv = ["annotate", "decontaminate", "--train", str(train), "--eval", f"medqa={medqa}", "--out", str(out)]
    assert _main(argv) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["ok"]
    report = json.loads((tmp_path / "clean.report.json").read_text())
    assert report["removed_per_eval_set"] == {"medqa": 1}
    assert report["removed_records"][0]["eval_id"] == "m1"
    with pytest.raises(SystemExit):
        _main(argv + ["--annotate.concurrency", "2"])  # decontaminate takes no config overrides
