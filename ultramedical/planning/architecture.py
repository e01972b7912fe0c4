"""A decoder's shape, from its config.json (a local directory or the HF hub cache) or, offline, from the
architectures the presets name, and the parameter counts that memory planning needs."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


class ArchitectureError(ValueError):
    """The model's shape cannot be found; the message names the model and where it looked."""


@dataclass(frozen=True)
class ModelShape:
    name: str
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    tie_embeddings: bool = False
    source: str = "built-in"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def layer_params(self) -> int:
        h = self.hidden_size
        attention = 2 * h * h + 2 * h * self.kv_dim  # q, o; k, v (grouped-query)
        mlp = 3 * h * self.intermediate_size  # gate, up, down (SwiGLU)
        return attention + mlp + 2 * h  # two RMSNorm weights

    @property
    def params(self) -> int:
        """Parameters of the causal LM (embeddings, layers, final norm, lm_head unless tied)."""
        head = 0 if self.tie_embeddings else self.embedding_params
        return self.embedding_params + self.num_layers * self.layer_params + self.hidden_size + head

    @property
    def reward_params(self) -> int:
        """The same trunk as a sequence classifier: the lm_head is replaced by a hidden -> 1 score head."""
        head = 0 if self.tie_embeddings else self.embedding_params
        return self.params - head + self.hidden_size

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) features of each linear layer of a decoder layer, by its HF module name."""
        h, kv, inter = self.hidden_size, self.kv_dim, self.intermediate_size
        return {
            "q_proj": (h, h),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (h, h),
            "gate_proj": (h, inter),
            "up_proj": (h, inter),
            "down_proj": (inter, h),
        }

    def lora_params(self, target_modules: list[str], rank: int) -> int:
        """Parameters of a LoRA adapter (A: rank x in, B: out x rank) on the named linear layers."""
        shapes = self.linear_shapes()
        unknown = sorted(set(target_modules) - set(shapes))
        if unknown:
            raise ArchitectureError(
                f"model.lora.target_modules: cannot size {unknown} for {self.name} "
                f"(known: {', '.join(shapes)})"
            )
        per_layer = sum(rank * (shapes[m][0] + shapes[m][1]) for m in set(target_modules))
        return self.num_layers * per_layer

    @property
    def largest_layer_params(self) -> int:
        """The module with the most parameters of its own (what DeepSpeed's ZeRO-3 estimator asks for)."""
        return max(self.embedding_params, self.hidden_size * self.intermediate_size)


# Published configs of the models the presets name, so that `plan` works with no network and no cache.
_LLAMA3_8B = ModelShape("Llama-3-8B", 128256, 4096, 32, 32, 8, 14336)
_LLAMA3_70B = ModelShape("Llama-3-70B", 128256, 8192, 80, 64, 8, 28672)
KNOWN_MODELS: dict[str, ModelShape] = {
    "meta-llama/Meta-Llama-3-8B-Instruct": _LLAMA3_8B,
    "meta-llama/Meta-Llama-3-8B": _LLAMA3_8B,
    "meta-llama/Llama-3.1-8B-Instruct": _LLAMA3_8B,
    "meta-llama/Meta-Llama-3-70B-Instruct": _LLAMA3_70B,
    "meta-llama/Meta-Llama-3-70B": _LLAMA3_70B,
    "meta-llama/Llama-3.1-70B-Instruct": _LLAMA3_70B,
    "TsinghuaC3I/Llama-3-8B-UltraMedical": _LLAMA3_8B,
    "TsinghuaC3I/Llama-3-70B-UltraMedical": _LLAMA3_70B,
}


def shape_from_config(config: dict[str, Any], name: str, source: str) -> ModelShape:
    try:
        heads = int(config["num_attention_heads"])
        return ModelShape(
            name=name,
            vocab_size=int(config["vocab_size"]),
            hidden_size=int(config["hidden_size"]),
            num_layers=int(config["num_hidden_layers"]),
            num_heads=heads,
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            intermediate_size=int(config["intermediate_size"]),
            tie_embeddings=bool(config.get("tie_word_embeddings", False)),
            source=source,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ArchitectureError(f"{source}: not a Llama-style config.json ({exc!r})") from None


_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")  # owner/name; a longer path is a local directory


def _cached_config(model: str) -> str | None:
    """config.json of a hub id from the local HF cache only (never the network)."""
    if not _HUB_ID.match(model) or Path(model).exists():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # planning must work without the hub client
        return None
    found = try_to_load_from_cache(model, "config.json")
    return found if isinstance(found, str) else None


def resolve_shape(model: str) -> ModelShape:
    """The shape of `model`: a local directory's config.json, else the hub cache's, else a known preset."""
    local = Path(model) / "config.json"
    path = str(local) if local.is_file() else _cached_config(model)
    if path is not None:
        try:
            config = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ArchitectureError(f"{path}: cannot read the model config ({exc})") from None
        return shape_from_config(config, model, path)
    if model in KNOWN_MODELS:
        return replace(KNOWN_MODELS[model], name=model)
    raise ArchitectureError(
        f"model '{model}': no config.json in a local directory or the HF cache, and not one of the "
        f"architectures known offline ({', '.join(sorted(KNOWN_MODELS))})"
    )
