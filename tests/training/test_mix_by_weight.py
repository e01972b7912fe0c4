"""`mix_by_weight`, the UltraMix of SFT sources: whole weights repeat every record, fractions take a seeded
sample without repeats, and the mix is shuffled the same way for the same seed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from ultramedical.data.loading import LoadResult, load_records
from ultramedical.training.sft import mix_by_weight


def source(name: str, size: int) -> LoadResult:
    return LoadResult(source=name, records=[f"{name}{i}" for i in range(size)])


def test_weight_one_takes_every_record_once():
    mixed = mix_by_weight([source("a", 20)], [1.0], seed=0)
    assert sorted(mixed) == sorted(source("a", 20).records)


@pytest.mark.parametrize("weight", [2.0, 3.0])
def test_whole_weights_repeat_every_record(weight):
    mixed = mix_by_weight([source("a", 10)], [weight], seed=0)
    assert Counter(mixed) == {f"a{i}": int(weight) for i in range(10)}


@pytest.mark.parametrize(("weight", "taken"), [(0.5, 10), (0.25, 5), (0.1, 2)])
def test_fractional_weights_sample_that_fraction_without_repeats(weight, taken):
    records = source("a", 20).records
    mixed = mix_by_weight([source("a", 20)], [weight], seed=0)
    assert len(mixed) == taken and len(set(mixed)) == taken and set(mixed) <= set(records)


def test_whole_and_fractional_parts_add_up():
    mixed = mix_by_weight([source("a", 10)], [1.5], seed=0)
    counts = Counter(mixed)
    assert set(counts) == {f"a{i}" for i in range(10)}  # every record at least once
    assert sorted(counts.values()) == [1] * 5 + [2] * 5  # and a sampled half once more


def test_the_mix_is_shuffled():
    records = source("a", 50).records
    mixed = mix_by_weight([source("a", 50)], [1.0], seed=0)
    assert mixed != records and sorted(mixed) == sorted(records)


def test_the_mix_is_deterministic_per_seed():
    sources, weights = [source("a", 30), source("b", 30)], [1.0, 0.5]
    assert mix_by_weight(sources, weights, seed=7) == mix_by_weight(sources, weights, seed=7)
    assert mix_by_weight(sources, weights, seed=7) != mix_by_weight(sources, weights, seed=8)
    # The sampled half itself depends on the seed, not only the order.
    halves = {frozenset(x for x in mix_by_weight(sources, weights, seed=s) if x[0] == "b") for s in range(5)}
    assert len(halves) > 1


def test_two_sources_keep_their_proportions_and_are_interleaved():
    mixed = mix_by_weight([source("med", 40), source("chat", 60)], [1.0, 0.5], seed=3)
    origin = [record.rstrip("0123456789") for record in mixed]
    assert Counter(origin) == {"med": 40, "chat": 30}
    assert len(set(origin[:35])) == 2  # not one source's block followed by the other's


def test_weights_must_match_sources():
    with pytest.raises(ValueError):
        mix_by_weight([source("a", 3), source("b", 3)], [1.0], seed=0)


def test_an_ultramix_of_files_in_two_formats(tmp_path):
    """UltraMedical's ShareGPT rows and UltraChat's chat rows mix into one list of the same record type."""
    medical, general = tmp_path / "medical.jsonl", tmp_path / "general.jsonl"
    write(medical, [sharegpt(f"m{i}") for i in range(8)])
    write(general, [{"prompt_id": f"g{i}", "messages": chat_turns(f"g{i}")} for i in range(8)])
    sources = [load_records(medical, "instruction"), load_records(general, "instruction")]
    mixed = mix_by_weight(sources, [1.0, 0.5], seed=0)
    assert Counter(r.id[0] for r in mixed) == {"m": 8, "g": 4}
    assert {type(r) for r in mixed} == {type(sources[0].records[0])}
    assert all(r.messages[0]["role"] == "user" and r.reference.endswith(r.id) for r in mixed)


def sharegpt(record_id: str) -> dict:
    return {
        "id": record_id,
        "conversations": [
            {"from": "human", "value": f"q {record_id}"},
            {"from": "gpt", "value": f"a {record_id}"},
        ],
    }


def chat_turns(record_id: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"q {record_id}"}, {"role": "assistant", "content": f"a {record_id}"}]


def write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
