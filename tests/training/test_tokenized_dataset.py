"""Tokenized data on disk: examples survive the Arrow round trip, the same inputs reuse one directory, a
changed input gets a new one, each rank reads only its own rows, and workers receive a path, never the
examples."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_support import tiny_config

from ultramedical.models.loading import load_tokenizer
from ultramedical.rundir import RunDir
from ultramedical.training import ALGORITHMS
from ultramedical.training.algorithm import ForwardContext, forward_on_shard
from ultramedical.training.loop import Learner
from ultramedical.training.sampler import micro_batches_per_epoch
from ultramedical.training.tokenized import EXAMPLES_FILE, TokenizedExamples, tokenize_to_disk

WORLD = 2


@pytest.fixture(scope="module")
def tokenizer(artifacts: Path) -> Any:
    return load_tokenizer(artifacts / "tiny" / "policy")


def in_memory_and_on_disk(config, stage: str, tokenizer, root: Path):
    algorithm = ALGORITHMS[stage](config)
    examples, _ = algorithm.load(tokenizer)
    data = tokenize_to_disk(ALGORITHMS[stage](config), tokenizer, root)
    return algorithm, examples, data


@pytest.mark.parametrize("stage", ["sft", "sft-packed", "rm", "dpo", "kto"])
def test_examples_survive_the_round_trip(artifacts, tmp_path, tokenizer, stage):
    overrides = {"sft.packing": True} if stage == "sft-packed" else {}
    stage = stage.removesuffix("-packed")
    config = tiny_config(artifacts, tmp_path, **overrides)
    algorithm, examples, data = in_memory_and_on_disk(config, stage, tokenizer, tmp_path / "tokenized")
    assert data.built and data.stats.examples == len(examples) > 0

    opened = TokenizedExamples.open(data.path)
    # repr: the same keys in the same order, and the same types (KTO's `desirable` stays a bool, RM's
    # margin a float, token ids ints).
    assert repr(list(opened)) == repr(examples)
    assert opened.lengths == [algorithm.length(e) for e in examples]
    assert opened[-1] == examples[-1]


def test_the_same_inputs_reuse_the_directory_without_tokenizing(artifacts, tmp_path, tokenizer, monkeypatch):
    config = tiny_config(artifacts, tmp_path)
    first = tokenize_to_disk(ALGORITHMS["rm"](config), tokenizer, tmp_path / "tokenized")
    before = (first.path / EXAMPLES_FILE).stat()

    def no_tokenizing(*args: Any) -> None:
        raise AssertionError("the cache was missed: records were tokenized again")

    monkeypatch.setattr(ALGORITHMS["rm"], "build_examples", no_tokenizing)
    # A fresh tokenizer object loaded from a copy elsewhere is the same tokenizer.
    second = tokenize_to_disk(
        ALGORITHMS["rm"](config), load_tokenizer(artifacts / "tiny" / "policy"), tmp_path / "tokenized"
    )
    assert not second.built and second.path == first.path and second.stats == first.stats
    after = (second.path / EXAMPLES_FILE).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert sorted(p.name for p in (tmp_path / "tokenized").iterdir()) == [first.path.name]


def test_changed_data_or_settings_tokenize_anew(artifacts, tmp_path, tokenizer):
    root = tmp_path / "tokenized"
    config = tiny_config(artifacts, tmp_path)
    first = tokenize_to_disk(ALGORITHMS["dpo"](config), tokenizer, root)

    lines = (artifacts / "data" / "preferences.jsonl").read_text().splitlines()[:96]
    row = json.loads(lines[5])
    row["chosen"][-1]["content"] += " Confirmed."
    changed = tmp_path / "preferences.jsonl"
    changed.write_text("\n".join([*lines[:5], json.dumps(row), *lines[6:]]) + "\n")
    edited = tiny_config(artifacts, tmp_path, **{"data.preferences": {"path": str(changed)}})
    second = tokenize_to_disk(ALGORITHMS["dpo"](edited), tokenizer, root)
    assert second.built and second.path != first.path
    assert list(TokenizedExamples.open(second.path)) == ALGORITHMS["dpo"](edited).load(tokenizer)[0]
    assert not first.path.exists()  # the run's older data for the stage is removed

    shorter = tiny_config(
        artifacts, tmp_path, **{"data.preferences": {"path": str(changed)}, "model.max_seq_len": 64}
    )
    third = tokenize_to_disk(ALGORITHMS["dpo"](shorter), tokenizer, root)
    assert third.built and third.path != second.path
    assert max(TokenizedExamples.open(third.path).lengths) <= 64


class RecordingLearner(Learner):
    """`Learner.fit` as it is, for one rank of `world`, with the DeepSpeed step replaced by a record of the
    micro-batch it was given."""

    def __init__(self, algorithm: Any, rank: int, world: int):
        self.algorithm, self.config = algorithm, algorithm.config
        self.rank, self.world = rank, world
        self.engine = type("Engine", (), {"get_lr": lambda self: [0.0]})()
        self.batches: list[list[dict]] = []

    def train_micro_batch(self, examples: list[dict]) -> tuple[dict[str, torch.Tensor], int]:
        self.batches.append(examples)
        return {"loss": torch.zeros(())}, 0


@pytest.mark.parametrize("group_by_length", [True, False])
def test_each_rank_reads_only_its_rows_in_the_in_memory_order(
    artifacts, tmp_path, tokenizer, group_by_length
):
    config = tiny_config(artifacts, tmp_path, **{"trainer.group_by_length": group_by_length})
    algorithm, examples, data = in_memory_and_on_disk(config, "dpo", tokenizer, tmp_path / "tokenized")
    epochs = 2
    per_epoch = micro_batches_per_epoch(len(examples), WORLD, config.trainer.micro_batch_size, 1)
    trained = []
    for rank in range(WORLD):
        in_memory, on_disk = (
            RecordingLearner(algorithm, rank, WORLD),
            RecordingLearner(algorithm, rank, WORLD),
        )
        in_memory.fit(examples, epochs)
        dataset = TokenizedExamples.open(data.path)
        on_disk.fit(dataset, epochs)
        assert on_disk.batches == in_memory.batches
        rows = sum(len(batch) for batch in on_disk.batches)
        assert rows == epochs * per_epoch * config.trainer.micro_batch_size
        assert dataset.rows_read == rows  # the order came from the lengths column, not from rows
        assert rows <= epochs * len(examples) // WORLD
        trained.append(on_disk.batches)
    assert trained[0] != trained[1]


def test_a_prepare_pass_reads_only_this_ranks_share(artifacts, tmp_path, tokenizer):
    """Reference log-probs as DPO computes them: on this rank's share, gathered from every rank, merged into
    every example; the merge must not read the other ranks' rows."""
    config = tiny_config(artifacts, tmp_path)
    _, examples, data = in_memory_and_on_disk(config, "dpo", tokenizer, tmp_path / "tokenized")

    def reference(chunk: list) -> list[dict[str, float]]:
        return [
            {"ref_chosen": float(len(e["chosen_ids"])), "ref_rejected": -1.0 * len(e["rejected_ids"])}
            for e in chunk
        ]

    others = {i: reference([examples[i]])[0] for i in range(1, len(examples), WORLD)}
    ctx = ForwardContext(0, WORLD, 4, lambda mine: [mine, others])
    dataset = TokenizedExamples.open(data.path)
    prepared = dataset.absorb(forward_on_shard(dataset.lazy_rows(), ctx, reference))
    share = len(range(0, len(examples), WORLD))
    assert share <= prepared.rows_read < share + 4  # this rank's rows, and the padding of its last call
    expected = [e | reference([e])[0] for e in examples]
    assert list(prepared) == expected
    resumed = TokenizedExamples.open(data.path).with_extras(prepared.extras)  # what a resumed worker builds
    assert list(resumed) == expected


def test_run_stage_hands_workers_a_path_not_the_examples(artifacts, tmp_path, tokenizer, monkeypatch):
    import ray
    import ray.train.torch

    from actors import train_stage as launch

    captured: dict[str, Any] = {}

    class NoTraining:
        def __init__(self, train_loop, train_loop_config: dict, **kwargs: Any):
            captured.update(train_loop_config)

        def fit(self) -> None:
            """Workers are not started here; the stage tests train for real."""

    def no_object_store(value: Any, **kwargs: Any) -> None:
        raise AssertionError("run_stage put something in the object store")

    monkeypatch.setattr(launch, "connect_ray", lambda: None)
    monkeypatch.setattr(ray.train.torch, "TorchTrainer", NoTraining)
    monkeypatch.setattr(ray, "put", no_object_store)
    config = tiny_config(artifacts, tmp_path)
    with pytest.raises(RuntimeError, match="was not written"):
        launch.run_stage(config, "rm")
    path = Path(captured["dataset"])
    assert path.parent == RunDir.of(config.runs_root, config.name).tokenized
    assert path.is_relative_to(Path(config.runs_root).absolute())
    assert "examples" not in captured

    examples, _ = ALGORITHMS["rm"](config).load(tokenizer)
    assert len(TokenizedExamples.open(path)) == len(examples)
    assert len(pickle.dumps(captured)) < len(pickle.dumps(examples)) / 10

    # --overwrite starts the stage over, on the same tokenized data.
    def no_tokenizing(*args: Any) -> None:
        raise AssertionError("records were tokenized again")

    monkeypatch.setattr(ALGORITHMS["rm"], "build_examples", no_tokenizing)
    captured.clear()
    with pytest.raises(RuntimeError, match="was not written"):
        launch.run_stage(config, "rm", overwrite=True)
    assert Path(captured["dataset"]) == path
