"""`ultramedical data validate`: one line per bad record with its line number, then the JSON counts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.cli import main


def instruction(i: int) -> dict:
    return {
        "id": f"q{i}",
        "conversations": [
            {"from": "human", "value": f"question {i}"},
            {"from": "gpt", "value": f"answer {i}"},
        ],
    }


def preference(i: int) -> dict:
    return {
        "prompt": f"p{i}",
        "chosen": [{"role": "user", "content": f"p{i}"}, {"role": "assistant", "content": "good"}],
        "rejected": [{"role": "user", "content": f"p{i}"}, {"role": "assistant", "content": "bad"}],
    }


def write_jsonl(path: Path, lines: dict[int, str], total: int, valid) -> Path:
    """`total` lines: the given raw text at the given numbers, a valid record everywhere else."""
    rows = [lines[n] if n in lines else json.dumps(valid(n)) for n in range(1, total + 1)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


INSTRUCTION_BAD = {
    3: '{"id": "q3", "conversations": [{"from": "human", "value": "q"}',
    5: json.dumps({"id": "q5", "type": "mcq"}),
    7: json.dumps(
        {"id": "q7", "conversations": [{"from": "doctor", "value": "q"}, {"from": "gpt", "value": "a"}]}
    ),
    9: json.dumps(
        {"id": "q9", "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": " "}]}
    ),
    11: json.dumps({"id": "q11", "conversations": {"from": "human", "value": "q"}}),
}
INSTRUCTION_REASONS = {
    3: "bad JSON",
    5: "missing field 'conversations'",
    7: "conversations[0] has unknown role 'doctor'",
    9: "conversations[1] is an empty turn",
    11: "field 'conversations' must be a list of turns, got dict",
}


def run_cli(capsys, argv: list[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def check_report(path: Path, code: int, lines: list[str], reasons: dict[int, str], total: int) -> None:
    assert code == 1
    *reports, last = lines
    assert last == json.dumps({"records": total, "valid": total - len(reasons), "invalid": len(reasons)})
    assert json.loads(last) == {"records": total, "valid": total - len(reasons), "invalid": len(reasons)}
    assert len(reports) == len(reasons)
    for report, (number, reason) in zip(reports, sorted(reasons.items()), strict=True):
        prefix = f"{path}:line {number}: "
        assert report.startswith(prefix), report
        assert reason in report[len(prefix) :], report


def test_instruction_file_with_bad_records(tmp_path, capsys):
    path = write_jsonl(tmp_path / "instructions.jsonl", INSTRUCTION_BAD, 12, instruction)
    code, lines, err = run_cli(capsys, ["data", "validate", str(path), "--schema", "instruction"])
    check_report(path, code, lines, INSTRUCTION_REASONS, 12)
    assert err == ""


def test_valid_instruction_file(tmp_path, capsys):
    path = write_jsonl(tmp_path / "ok.jsonl", {}, 6, instruction)
    code, lines, _ = run_cli(capsys, ["data", "validate", str(path), "--schema", "instruction"])
    assert code == 0
    assert lines == ['{"records": 6, "valid": 6, "invalid": 0}']


def test_preference_file_with_bad_records(tmp_path, capsys):
    same = preference(4)
    same["rejected"] = same["chosen"]
    bad = {
        2: json.dumps({**preference(2), "prompt": 7}),
        4: json.dumps(same),
        5: "[]",
        6: json.dumps(
            {**preference(6), "chosen": [{"role": "user", "content": "q"}, {"role": "user", "content": "q"}]}
        ),
        8: json.dumps({k: v for k, v in preference(8).items() if k != "rejected"}),
    }
    reasons = {
        2: "field 'prompt' must be a string, got int",
        4: "'chosen' and 'rejected' are identical",
        5: "expected a JSON object, got an array",
        6: "field 'chosen' has two user turns in a row",
        8: "missing field 'rejected'",
    }
    path = write_jsonl(tmp_path / "preferences.jsonl", bad, 9, preference)
    code, lines, _ = run_cli(capsys, ["data", "validate", str(path), "--schema", "preference"])
    check_report(path, code, lines, reasons, 9)


def test_valid_preference_file(tmp_path, capsys):
    path = write_jsonl(tmp_path / "prefs.jsonl", {}, 3, preference)
    code, lines, _ = run_cli(capsys, ["data", "validate", str(path), "--schema", "preference"])
    assert code == 0 and lines == ['{"records": 3, "valid": 3, "invalid": 0}']


def test_instruction_records_checked_as_preferences_fail_everywhere(tmp_path, capsys):
    path = write_jsonl(tmp_path / "instructions.jsonl", {}, 3, instruction)
    code, lines, _ = run_cli(capsys, ["data", "validate", str(path), "--schema", "preference"])
    assert code == 1
    assert lines[-1] == '{"records": 3, "valid": 0, "invalid": 3}'
    assert all("missing field 'prompt'" in line for line in lines[:-1])


def test_missing_file_exits_2(tmp_path, capsys):
    code, lines, err = run_cli(
        capsys, ["data", "validate", str(tmp_path / "x.jsonl"), "--schema", "instruction"]
    )
    assert code == 2 and lines == []
    assert err.startswith("error: data file not found")


def test_unknown_schema_is_a_usage_error(tmp_path, capsys):
    path = write_jsonl(tmp_path / "ok.jsonl", {}, 1, instruction)
    with pytest.raises(SystemExit) as info:
        main(["data", "validate", str(path), "--schema", "dialogue"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script(tmp_path):
    script = Path(sys.executable).parent / "ultramedical"
    assert script.exists(), script
    path = write_jsonl(tmp_path / "instructions.jsonl", INSTRUCTION_BAD, 12, instruction)
    proc = subprocess.run(
        [str(script), "data", "validate", str(path), "--schema", "instruction"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    check_report(path, proc.returncode, proc.stdout.splitlines(), INSTRUCTION_REASONS, 12)
