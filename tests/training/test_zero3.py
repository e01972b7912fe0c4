"""ZeRO-3, the paper presets' path, on 2 CPU ranks (gloo) and the Llama-3-shaped checkpoint, through
scripts/gpu_smoke.py: the same script a GPU runs with NCCL and bf16, so it cannot rot unnoticed.

Every algorithm trains through the library's loop with the model partitioned as it loads (zero.Init), the
sharded reference gives the unsharded reference's log-probs, and the publish gather returns full weights.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiny_support import REPO_ROOT

# Every algorithm once on full weights: SFT and DPO with offload (optimizer, parameters, reference on the
# host), the reward model and KTO without (the partitioned gather and step are the same code either way).
# With LoRA every stage again: the adapter (and the reward model's score head) is what trains and is saved.
RUNS = {
    "zero3": ([], ["rm", "kto"]),
    "zero3-offload": (["--offload"], ["sft", "dpo"]),
    "zero3-lora": (["--lora"], ["sft", "rm", "dpo", "kto"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("run", list(RUNS))
def test_zero3_trains_every_algorithm_partitioned(
    artifacts: Path, llama3_checkpoint: Path, tmp_path: Path, run: str
) -> None:
    flags, stages = RUNS[run]
    work = tmp_path / "smoke"
    (work / "data").parent.mkdir(parents=True)
    (work / "data").symlink_to(artifacts / "data")
    command = [sys.executable, "-m", "scripts.gpu_smoke", "--device", "cpu", "--world", "2", *flags]
    command += ["--work-dir", str(work), "--model", str(llama3_checkpoint / "policy"), "--stages", *stages]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["backend"] == "gloo" and result["world"] == 2
    assert not result["ray_imported"] and not result["vllm_imported"]  # runs where only DeepSpeed can
    for stage in stages:
        check = result[stage]
        assert check["partitioned_at_load"], stage
        assert check["steps"] == 2 and check["loss"] > 0, stage
        assert check["gathered_full_shapes"], stage
        if run == "zero3-lora":  # saved from the gathered partitions, loaded back by PEFT
            assert 0 < check["adapter_fraction"] < 0.05, stage
    assert result["reference"]["partitioned"]
    assert result["reference"]["max_abs_diff"] <= 1e-4 * 100
