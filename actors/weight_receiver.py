"""The vLLM worker extension of a generation engine in the Ray cluster: it reads published weights from the
object store itself.

Every worker, the tensor-parallel ones included (Ray actors on the engine's bundles), is handed the
buckets' object references and fetches each bucket from its node's object store, where Ray maps it
read-only; the engine actor never holds or re-sends the bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import ray
import torch

from ultramedical.generation.weight_sync import WeightReceiver
from ultramedical.models.lora import write_adapter_files

OBJECT_STORE_RECEIVER = "actors.weight_receiver.ObjectStoreWeightReceiver"


def bucket_handles(buckets: list[ray.ObjectRef]) -> bytes:
    """The buckets' references serialized with their owner's address, for vLLM to pickle to its workers.

    vLLM sends collective_rpc arguments with plain pickle, which keeps only an ObjectRef's id: a worker on
    the object's own node still finds it in the local store, but one on another node waits forever for an
    object whose owner it does not know. Ray's cloudpickle carries the owner (out-of-band serialization)."""
    return ray.cloudpickle.dumps(buckets)


class ObjectStoreWeightReceiver(WeightReceiver):
    def install_published(self, handles: bytes) -> int:
        """Load the buckets (`PackedWeights`) of `bucket_handles(...)` in one in-place reload, reading each
        from the store as the reload reaches it (its gather may still be running); returns the number of
        tensors installed."""

        def tensors() -> Iterator[tuple[str, torch.Tensor]]:
            for bucket in ray.cloudpickle.loads(handles):
                packed = ray.get(bucket)
                yield from packed.tensors().items()
                del packed  # this bucket's mapping is released once vLLM has copied its tensors

        return self.install_tensors(tensors())

    def write_adapter(self, handles: bytes, directory: str, config_text: str) -> int:
        """Write a published LoRA adapter (its buckets hold PEFT-named tensors) to `directory` on this
        node, for vLLM to load: vLLM 0.32 loads adapters only from a path (LoRARequest.lora_path).
        Workers of one node race to the same path; the first rename wins. Returns the tensors written."""
        target = Path(directory)
        if target.exists():  # another worker of this node wrote it already
            return 0
        weights = {}
        for bucket in ray.cloudpickle.loads(handles):
            weights.update({name: t.clone() for name, t in ray.get(bucket).tensors().items()})
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        write_adapter_files(tmp, config_text, weights)
        try:
            os.rename(tmp, target)
        except OSError:  # another worker of this node wrote it first
            shutil.rmtree(tmp, ignore_errors=True)
        return len(weights)
