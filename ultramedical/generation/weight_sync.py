"""vLLM worker extension: installs weights (HF parameter names) into the running model.

vLLM mixes this class (or a subclass, e.g. actors/weight_receiver.py) into its worker when the engine is
built with `worker_extension_cls=...`; the engine calls its methods through `llm.collective_rpc(name, ...)`
(generation/engine.py: `install_checkpoint`, `install_published`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any


class WeightReceiver:
    def install_tensors(self, tensors: Iterator[tuple[str, Any]]) -> int:
        """Load (HF name, tensor) pairs into the running model in one call; returns how many there were.

        reload_weights maps HF names onto vLLM's fused layers; loading into the model directly fails on
        CPU ('Parameter' object has no attribute 'weight_loader'). One call for a whole model: each call
        has a fixed cost (see bench/README.md), so installs are not split into many calls."""
        count = 0

        def counted() -> Iterator[tuple[str, Any]]:
            nonlocal count
            for item in tensors:
                count += 1
                yield item

        self.reload_weights(weights_iterator=counted())
        return count

    def install_checkpoint(self, directory: str) -> int:
        """Load a saved HF checkpoint's safetensors files into the running model, tensor by tensor (the
        disk path of OpenRLHF-style recipes: the engine keeps running, only the weights change)."""
        from safetensors import safe_open

        files = sorted(Path(directory).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no *.safetensors files in checkpoint directory {directory}")

        def tensors() -> Iterator[tuple[str, Any]]:
            for path in files:
                with safe_open(str(path), framework="pt") as handle:
                    for name in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                        yield name, handle.get_tensor(name)

        return self.install_tensors(tensors())
