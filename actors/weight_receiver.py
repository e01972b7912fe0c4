"""The vLLM worker extension of a generation engine in the Ray cluster: it reads published weights from the
object store itself.

Every worker, the tensor-parallel ones included (Ray actors on the engine's bundles), is handed the
buckets' object references and fetches each bucket from its node's object store, where Ray maps it
read-only; the engine actor never holds or re-sends the bytes.
"""

from __future__ import annotations

from collections.abc import Iterator

import ray
import torch

from ultramedical.generation.weight_sync import WeightReceiver

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
