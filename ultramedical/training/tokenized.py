"""A stage's tokenized examples on disk: built once per content, memory-mapped by every Ray Train worker.

The driver tokenizes a stage's records into an Arrow IPC file under `<run>/tokenized/<stage>-<key>/`
(`RunDir.tokenized`, on `runs_root`: shared storage on a cluster, since workers on other nodes open it by
path). The key hashes everything the examples depend on: the records as read, the tokenizer's content, the
settings that shape examples, the stage and the code that builds them. The same inputs find the directory
and skip tokenizing; a changed input gets a new one (the stage's older ones are removed).

Workers get the path, not the examples: `TokenizedExamples` maps the file (pages are shared by the
processes of a node and read on demand) and turns a row back into an Example only when it is indexed, so a
rank materializes only the rows of its own shard. The `_length` column is `Algorithm.length` of each
example, what `epoch_order` groups steps by, so the order needs no row at all.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from ultramedical.config import Config
from ultramedical.data.loading import LoadResult
from ultramedical.training.algorithm import Algorithm, Example, ExampleStats

FORMAT_VERSION = 1  # bump when the file layout changes
LENGTH_COLUMN = "_length"
EXAMPLES_FILE = "examples.arrow"
META_FILE = "meta.json"
BATCH_ROWS = 1024  # rows per Arrow record batch: what writing holds at once, and the unit of lookup
_PACKAGE = Path(__file__).resolve().parents[1]
# The code that turns records into examples: a fix there must not be hidden by an old cache entry.
_BUILD_CODE = ("data", "training")


def tokenization_settings(config: Config, stage: str) -> dict[str, Any]:
    """The settings examples depend on (the records themselves are hashed separately)."""
    settings: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "stage": stage,
        "max_seq_len": config.model.max_seq_len,
        "truncation": config.trainer.truncation,
        "seed": config.trainer.seed,  # SFT's weighted mix and KTO's KL partners are seeded
    }
    if stage == "sft":
        settings["packing"] = config.sft.packing
        settings["weights"] = [source.weight for source in config.data.instructions]
    return settings


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what the tokenizer does (vocabulary, merges, special tokens, chat template), not of where
    it was loaded from: the SFT model's copy of the base tokenizer is the same tokenizer."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:
        digest.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    for part in (tokenizer.chat_template, tokenizer.all_special_tokens, tokenizer.pad_token):
        digest.update(repr(part).encode())
    return digest.hexdigest()


def _code_fingerprint() -> str:
    digest = hashlib.sha256()
    for folder in _BUILD_CODE:
        for path in sorted((_PACKAGE / folder).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def cache_key(algorithm: Algorithm, results: Sequence[LoadResult], tokenizer: Any) -> str:
    """The content hash naming a stage's tokenized data."""
    digest = hashlib.sha256()
    header = {
        "algorithm": f"{type(algorithm).__module__}.{type(algorithm).__qualname__}",
        "settings": tokenization_settings(algorithm.config, algorithm.stage),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "code": _code_fingerprint(),
    }
    digest.update(json.dumps(header, sort_keys=True).encode())
    for result in results:
        digest.update(b"\0source")
        for record in result.records:
            # Records are frozen dataclasses: repr names every field, metadata (RM's score margins) too.
            digest.update(repr(record).encode())
            digest.update(b"\n")
    return digest.hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class TokenizedData:
    path: Path
    stats: ExampleStats
    built: bool  # False: an earlier run's directory was reused


def tokenize_to_disk(algorithm: Algorithm, tokenizer: Any, root: Path) -> TokenizedData:
    """The stage's examples as an Arrow file under `root`, tokenized only if no directory has this content.

    Reading the records comes first either way: bad records fail here, before any worker starts.
    """
    results = algorithm.read_records()
    directory = root / f"{algorithm.stage}-{cache_key(algorithm, results, tokenizer)}"
    skipped = sum(len(result.problems) for result in results)
    if (directory / META_FILE).is_file():
        stats = ExampleStats(**json.loads((directory / META_FILE).read_text())["stats"])
        stats.skipped_invalid = skipped  # not part of the key: invalid lines change no example
        return TokenizedData(directory, stats, built=False)

    # Algorithm.load reads the records itself; hand it the ones already read (and hashed).
    algorithm.read_records = lambda: results  # type: ignore[method-assign]
    try:
        examples, stats = algorithm.load(tokenizer)
    finally:
        del algorithm.read_records
    lengths = [algorithm.length(example) for example in examples]
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=root))
    try:
        write_examples(examples, lengths, tmp / EXAMPLES_FILE)
        meta = {"format": FORMAT_VERSION, "rows": len(examples), "stats": dataclasses.asdict(stats)}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        try:
            os.rename(tmp, directory)
        except OSError:
            if not (directory / META_FILE).is_file():
                raise
            shutil.rmtree(tmp)  # another process built the same content first: use theirs
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_others(root, algorithm.stage, keep=directory)
    return TokenizedData(directory, stats, built=True)


def _remove_others(root: Path, stage: str, keep: Path) -> None:
    """A run trains a stage on one content at a time: its older directories (and any temp directory a
    killed build left) are only disk use."""
    for path in [*root.glob(f"{stage}-*"), *root.glob(f".{stage}-*.tmp")]:
        if path != keep and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _arrow_type(value: Any) -> pa.DataType:
    # Token ids and labels: int32 is a quarter of Python's list-of-int and exact for any vocabulary.
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return pa.list_(pa.int32())
    return pa.infer_type([value])


def write_examples(examples: Sequence[Example], lengths: Sequence[int], path: Path) -> None:
    """Examples (every one with the same keys) and their lengths as an Arrow IPC file, batch by batch."""
    first = examples[0]
    if LENGTH_COLUMN in first:
        raise ValueError(f"an example field is named {LENGTH_COLUMN!r}, the column kept for lengths")
    fields = [pa.field(name, _arrow_type(value)) for name, value in first.items()]
    schema = pa.schema([*fields, pa.field(LENGTH_COLUMN, pa.int32())])
    names = set(first)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
        for start in range(0, len(examples), BATCH_ROWS):
            rows = []
            for offset, example in enumerate(examples[start : start + BATCH_ROWS]):
                if set(example) != names:
                    raise ValueError(
                        f"example {start + offset} has fields {sorted(example)}, the first {sorted(names)}"
                    )
                rows.append(example | {LENGTH_COLUMN: lengths[start + offset]})
            writer.write_batch(pa.RecordBatch.from_pylist(rows, schema=schema))


class TokenizedExamples(Sequence[Example]):
    """The examples of a tokenized directory, memory-mapped; `self[i]` is example i as a plain dict.

    `extras` are per-example values a worker adds in memory (DPO/KTO reference log-probs), stored by
    column and merged into each example as it is read.
    """

    def __init__(
        self,
        batches: list[pa.RecordBatch],
        columns: tuple[str, ...],
        extras: Mapping[str, Sequence[Any]] | None = None,
    ):
        self._batches = batches
        self._starts = [0]
        for batch in batches:
            self._starts.append(self._starts[-1] + batch.num_rows)
        self.columns = columns
        self.extras = dict(extras or {})
        for key, values in self.extras.items():
            if len(values) != len(self):
                raise ValueError(f"extra {key!r} has {len(values)} values for {len(self)} examples")
        self.rows_read = 0  # rows turned into Python objects: how much of the data this process touched

    @classmethod
    def open(cls, directory: str | Path) -> TokenizedExamples:
        source = pa.memory_map(str(Path(directory) / EXAMPLES_FILE), "r")
        reader = pa.ipc.open_file(source)  # zero-copy: batches are views of the mapped file
        batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
        columns = tuple(name for name in reader.schema.names if name != LENGTH_COLUMN)
        return cls(batches, columns)

    def __len__(self) -> int:
        return self._starts[-1]

    def __getitem__(self, index: int) -> Example:  # type: ignore[override]
        index = self._index(index)
        return self._read(index) | {key: values[index] for key, values in self.extras.items()}

    def __iter__(self) -> Iterator[Example]:
        return (self[i] for i in range(len(self)))

    def _index(self, index: int) -> int:
        if not isinstance(index, int):
            raise TypeError(f"examples are indexed by int, not {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"example {index} of {len(self)}")
        return index % len(self)

    def _read(self, index: int) -> Example:
        which = bisect.bisect_right(self._starts, index) - 1
        row = self._batches[which].slice(index - self._starts[which], 1).to_pylist()[0]
        del row[LENGTH_COLUMN]
        self.rows_read += 1
        return row

    @property
    def lengths(self) -> list[int]:
        """`Algorithm.length` of every example, read from its column alone."""
        return [n for batch in self._batches for n in batch.column(LENGTH_COLUMN).to_pylist()]

    def with_extras(self, extras: Mapping[str, Sequence[Any]]) -> TokenizedExamples:
        """The same file with these per-example values (by column) merged into every example."""
        derived = TokenizedExamples(self._batches, self.columns, self.extras | dict(extras))
        derived.rows_read = self.rows_read  # one count per process, across the views it derives
        return derived

    def lazy_rows(self) -> Sequence[LazyRow]:
        """The examples as `LazyRow`s, for a pass that visits every example but reads few of them:
        `forward_on_shard` computes on this rank's share, then merges the results into all of them."""
        return _LazyRows(self)

    def absorb(self, prepared: Sequence[Mapping[str, Any]]) -> TokenizedExamples:
        """The dataset plus what an algorithm's prepare pass over `lazy_rows()` added to each example."""
        if len(prepared) != len(self):
            raise ValueError(f"prepare returned {len(prepared)} examples for {len(self)}")
        if isinstance(prepared, _LazyRows) and prepared.source is self:
            return self  # the pass added nothing (SFT, RM)
        added: list[Mapping[str, Any]] = []
        for index, row in enumerate(prepared):
            if isinstance(row, LazyRow) and row.source is self and row.index == index:
                added.append(row.extra)
            else:  # a pass that built whole dicts: keep the fields it added
                added.append({k: v for k, v in row.items() if k not in self.columns})
        return self.with_extras(extras_by_column(added))


def extras_by_column(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Per-example dicts of extra values as one list per key (every example must have the same keys)."""
    keys = set(rows[0]) if rows else set()
    for index, row in enumerate(rows):
        if set(row) != keys:
            raise ValueError(f"example {index} has extras {sorted(row)}, the first {sorted(keys)}")
    return {key: [row[key] for row in rows] for key in sorted(keys)}


class LazyRow(Mapping[str, Any]):
    """One example that reads its row from the file on first access; `row | values` adds values without
    reading it (how `forward_on_shard` merges reference log-probs into every example)."""

    __slots__ = ("_row", "extra", "index", "source")

    def __init__(self, source: TokenizedExamples, index: int, extra: Mapping[str, Any]):
        self.source, self.index, self.extra = source, index, dict(extra)
        self._row: Example | None = None

    def _stored(self) -> Example:
        if self._row is None:
            self._row = self.source._read(self.index)
        return self._row

    def __getitem__(self, key: str) -> Any:
        if key in self.extra:
            return self.extra[key]
        if key not in self.source.columns:
            raise KeyError(key)
        return self._stored()[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.source.columns
        yield from (key for key in self.extra if key not in self.source.columns)

    def __len__(self) -> int:
        return len(self.source.columns) + sum(key not in self.source.columns for key in self.extra)

    def __or__(self, other: Mapping[str, Any]) -> LazyRow:
        return LazyRow(self.source, self.index, self.extra | dict(other))


class _LazyRows(Sequence[LazyRow]):
    def __init__(self, source: TokenizedExamples):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> LazyRow:  # type: ignore[override]
        index = self.source._index(index)
        extra = {key: values[index] for key, values in self.source.extras.items()}
        return LazyRow(self.source, index, extra)

    def __iter__(self) -> Iterator[LazyRow]:
        return (self[i] for i in range(len(self)))
