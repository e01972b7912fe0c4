"""The environment DeepSpeed's JIT op builds see: the ninja installed beside the interpreter, and a build
directory inside the environment."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ultramedical.training.deepspeed_setup import prepare_deepspeed_environment


def test_the_interpreters_ninja_comes_first_whatever_path_says(tmp_path: Path, monkeypatch) -> None:
    interpreter_bin = Path(sys.executable).parent
    # ninja is in both locks (DeepSpeed's op builds need it), so setup.sh always puts it here.
    assert (interpreter_bin / "ninja").exists(), "no ninja beside this interpreter: incomplete install"
    other = tmp_path / "bin"
    other.mkdir()
    (other / "ninja").write_text("#!/bin/sh\necho 1.11.1\n")
    (other / "ninja").chmod(0o755)
    monkeypatch.setenv("PATH", os.pathsep.join([str(other), "/usr/bin", str(interpreter_bin)]))
    monkeypatch.delenv("DS_ACCELERATOR", raising=False)
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR", raising=False)

    prepare_deepspeed_environment(use_gpu=False)

    assert Path(shutil.which("ninja")) == interpreter_bin / "ninja"
    assert os.environ["PATH"].split(os.pathsep) == [str(interpreter_bin), str(other), "/usr/bin"]
    assert os.environ["DS_ACCELERATOR"] == "cpu"
    assert os.environ["TORCH_EXTENSIONS_DIR"] == os.path.join(sys.prefix, "torch_extensions")
