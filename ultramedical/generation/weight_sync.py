"""vLLM worker extension: installs a state dict (HF parameter names) into the running model.

vLLM mixes this class into its worker when the engine is built with
`worker_extension_cls="ultramedical.generation.weight_sync.WeightReceiver"`; the engine calls it through
`llm.collective_rpc("install_weights", args=(state_dict,))`.
"""

from __future__ import annotations

from typing import Any


class WeightReceiver:
    def install_weights(self, state_dict: dict[str, Any]) -> int:
        # reload_weights maps HF names onto vLLM's fused layers; loading into the model directly
        # fails on CPU ('Parameter' object has no attribute 'weight_loader').
        self.reload_weights(weights_iterator=iter(state_dict.items()))
        return len(state_dict)
