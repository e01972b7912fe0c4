"""Shared fixtures: one real local Ray instance per test session, and the embedded sample corpus and
tiny model built once into a temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    from actors.cluster import without_dashboard

    # More logical CPUs than cores, so engines, scorers and two trainer workers fit at once on 2 cores.
    # address="local": always a fresh instance, never one another test (or user) left in /tmp/ray.
    ray.init(address="local", num_cpus=4, log_to_driver=True, **without_dashboard())
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ultramedical.data.sample import generate_sample_corpus
    from ultramedical.models.tiny import init_tiny_models

    root = tmp_path_factory.mktemp("artifacts")
    generate_sample_corpus(root / "data")
    init_tiny_models(root / "data", root / "tiny")
    return root


@pytest.fixture(scope="session")
def llama3_checkpoint(artifacts: Path) -> Path:
    """A tiny checkpoint shaped like Llama-3-8B-Instruct (vocab 128256, <|eot_id|> eos, no pad token, GQA,
    untied): `policy/` and `reward/` under the returned directory."""
    from ultramedical.models.llama3_shape import init_llama3_shaped
    from ultramedical.models.tiny import corpus_texts

    root = artifacts / "llama3"
    if not (root / "reward").exists():
        init_llama3_shaped(corpus_texts(artifacts / "data"), root)
    return root
