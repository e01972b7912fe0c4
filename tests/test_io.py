"""Atomic writes: files and directories are replaced whole or not at all, and no temp files are left."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ultramedical import io
from ultramedical.io import (
    append_jsonl,
    atomic_directory,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    read_jsonl,
)


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_atomic_write_text_replaces_the_whole_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("a much longer original content\n" * 100)
    returned = atomic_write_text(path, "short")
    assert returned == path
    assert path.read_text() == "short"
    assert leftovers(tmp_path) == []


def test_atomic_write_text_creates_parents_and_keeps_unicode(tmp_path):
    path = tmp_path / "a" / "b" / "c.txt"
    atomic_write_text(path, "naïve café — 肝炎\n")
    assert path.read_bytes() == "naïve café — 肝炎\n".encode()


def test_atomic_write_json(tmp_path):
    path = tmp_path / "data.json"
    atomic_write_json(path, {"old": list(range(50))})
    atomic_write_json(path, {"name": "ß", "values": [1, 2.5, None]})
    text = path.read_text(encoding="utf-8")
    assert json.loads(text) == {"name": "ß", "values": [1, 2.5, None]}
    assert text.endswith("}\n") and "ß" in text  # not ASCII-escaped
    assert "old" not in text


def test_atomic_write_jsonl_round_trip(tmp_path):
    path = tmp_path / "rows.jsonl"
    atomic_write_jsonl(path, ({"i": i} for i in range(10)))
    atomic_write_jsonl(path, [{"i": 1, "text": "line\nbreak"}, ["x"]])
    assert path.read_text().count("\n") == 2
    assert read_jsonl(path) == [{"i": 1, "text": "line\nbreak"}, ["x"]]
    atomic_write_jsonl(path, [])
    assert path.read_text() == "" and read_jsonl(path) == []


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "keep.txt"
    path.write_text("original")

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(io.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        atomic_write_text(path, "new content")
    assert path.read_text() == "original"
    assert leftovers(tmp_path) == []


def test_unserialisable_rows_leave_no_file(tmp_path):
    path = tmp_path / "rows.jsonl"
    with pytest.raises(TypeError):
        atomic_write_jsonl(path, [{"ok": 1}, {"bad": object()}])
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_append_jsonl(tmp_path):
    path = tmp_path / "log" / "events.jsonl"
    append_jsonl(path, {"step": 1})
    append_jsonl(path, {"step": 2, "note": "é"})
    append_jsonl(path, [3])
    assert path.read_text(encoding="utf-8").splitlines() == ['{"step": 1}', '{"step": 2, "note": "é"}', "[3]"]
    assert read_jsonl(path) == [{"step": 1}, {"step": 2, "note": "é"}, [3]]


def test_read_jsonl_skips_blank_lines(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"a": 2}\n')
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]


def test_atomic_directory_creates(tmp_path):
    target = tmp_path / "ckpt"
    with atomic_directory(target) as tmp:
        assert tmp != target and tmp.parent == tmp_path and tmp.is_dir()
        assert not target.exists()
        (tmp / "weights.bin").write_bytes(b"\x00\x01")
    assert (target / "weights.bin").read_bytes() == b"\x00\x01"
    assert leftovers(tmp_path) == []


def test_atomic_directory_replaces_the_old_content(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "old.bin").write_text("old")
    (target / "shared.txt").write_text("v1")
    with atomic_directory(target) as tmp:
        (tmp / "shared.txt").write_text("v2")
        # Until the block ends, readers still see the old directory.
        assert (target / "old.bin").exists()
    assert sorted(p.name for p in target.iterdir()) == ["shared.txt"]
    assert (target / "shared.txt").read_text() == "v2"
    assert leftovers(tmp_path) == []


def test_atomic_directory_failure_keeps_the_old_directory(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    (target / "model.bin").write_text("good")
    with pytest.raises(RuntimeError, match="crashed mid-save"), atomic_directory(target) as tmp:
        (tmp / "model.bin").write_text("half")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "x").write_text("x")
        raise RuntimeError("crashed mid-save")
    assert sorted(p.name for p in target.iterdir()) == ["model.bin"]
    assert (target / "model.bin").read_text() == "good"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_atomic_directory_failure_without_old_directory(tmp_path):
    target = tmp_path / "fresh"
    with pytest.raises(KeyboardInterrupt), atomic_directory(target) as tmp:
        (tmp / "f").write_text("x")
        raise KeyboardInterrupt
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_clears_a_stale_old_copy(tmp_path):
    target = tmp_path / "ckpt"
    target.mkdir()
    stale = tmp_path / ".ckpt.old"
    stale.mkdir()
    (stale / "junk").write_text("left by a crash")
    with atomic_directory(target) as tmp:
        (tmp / "new").write_text("1")
    assert [p.name for p in target.iterdir()] == ["new"]
    assert not stale.exists()
    assert os.listdir(tmp_path) == ["ckpt"]
