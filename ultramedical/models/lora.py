"""LoRA adapters (PEFT): adding one to a loaded model, its weights in PEFT's saved form, adapter directories,
and merging an adapter into its base.

An adapter directory is what PEFT writes (`adapter_config.json`, `adapter_model.safetensors`) plus the
tokenizer. Its `base_model_name_or_path` is always a full HF model directory: a stage that starts from
another stage's adapter trains a fresh adapter on that adapter merged into its base (`full_model_dir`), so
the reference of DPO/KTO (the starting model) is the new adapter's base, reached by disabling the adapter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ultramedical.config import LoraConfig
from ultramedical.io import atomic_directory

if TYPE_CHECKING:  # run directories ask `is_adapter_dir` without loading torch
    import torch

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MERGED = "merged"  # the subdirectory of an adapter directory that holds it merged into its base

ModelKind = Literal["causal", "reward"]


def is_adapter_dir(path: str | Path) -> bool:
    path = Path(path)
    return (path / ADAPTER_CONFIG).is_file() and (path / ADAPTER_WEIGHTS).is_file()


def adapter_base(path: str | Path) -> str:
    """The full model directory an adapter was trained on."""
    return json.loads((Path(path) / ADAPTER_CONFIG).read_text())["base_model_name_or_path"]


def adapter_kind(path: str | Path) -> ModelKind:
    task = json.loads((Path(path) / ADAPTER_CONFIG).read_text()).get("task_type")
    return "reward" if task == "SEQ_CLS" else "causal"


def peft_config(settings: LoraConfig, kind: ModelKind, base: str = "") -> Any:
    """PEFT's LoraConfig for `model.lora`. A reward model's score head is trained whole beside the adapter
    (`modules_to_save`): it starts untrained, so a low-rank update of it would learn nothing useful."""
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        task_type="SEQ_CLS" if kind == "reward" else "CAUSAL_LM",
        modules_to_save=["score"] if kind == "reward" else None,
        base_model_name_or_path=base or None,
    )


def add_adapter(model: torch.nn.Module, settings: LoraConfig, kind: ModelKind, base: str) -> Any:
    """The model wrapped with a fresh adapter (B = 0, so it computes exactly what the model did); only
    the adapter (and a reward model's score head) is trainable."""
    from peft import get_peft_model

    return get_peft_model(model, peft_config(settings, kind, base))


def load_adapter(model: torch.nn.Module, adapter_dir: str | Path, trainable: bool) -> Any:
    """The model wrapped with a saved adapter (to continue training it, or to use it)."""
    from peft import PeftModel

    return PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)


@contextmanager
def adapter_disabled(model: torch.nn.Module) -> Iterator[None]:
    """Inside the block the model computes as its base (torchtune's `disable_adapter` idea): the
    reference policy of DPO/KTO without a second model in memory."""
    with model.disable_adapter():  # type: ignore[operator]
        yield


def trainable_names(model: torch.nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def saved_form(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Trainable parameters (live names) -> the names PEFT saves and vLLM loads
    (`...q_proj.lora_A.weight`, `score.weight`)."""
    from peft import get_peft_model_state_dict

    return get_peft_model_state_dict(model, state_dict=dict(state), save_embedding_layers=False)


def config_json(config: Any) -> str:
    """A PEFT config as `adapter_config.json` text (what PEFT's save_pretrained writes: sets as lists)."""
    fields = config.to_dict()
    return json.dumps({k: sorted(v) if isinstance(v, set) else v for k, v in fields.items()}, indent=2)


def write_adapter_files(directory: Path, config_text: str, weights: Mapping[str, torch.Tensor]) -> None:
    """`adapter_config.json` and `adapter_model.safetensors` into an existing directory."""
    from safetensors.torch import save_file

    (directory / ADAPTER_CONFIG).write_text(config_text)
    save_file({k: v.contiguous() for k, v in weights.items()}, str(directory / ADAPTER_WEIGHTS))


def save_adapter(
    model: Any, tokenizer: Any, out_dir: str | Path, trainable_state: Mapping[str, torch.Tensor]
) -> Path:
    """The adapter in PEFT format with the tokenizer, written atomically. `trainable_state`: the trainable
    parameters under their live names (a ZeRO-gathered copy, say)."""
    with atomic_directory(out_dir) as tmp:
        write_adapter_files(
            tmp, config_json(model.peft_config["default"]), saved_form(model, trainable_state)
        )
        tokenizer.save_pretrained(tmp)
    return Path(out_dir)


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """The adapter merged into its base, saved as a plain HF model (loads in transformers and vLLM)."""
    from ultramedical.models.loading import load_policy, load_reward_model, load_tokenizer, save_model

    base = adapter_base(adapter_dir)
    kind = adapter_kind(adapter_dir)
    model = load_reward_model(base) if kind == "reward" else load_policy(base)
    merged = load_adapter(model, adapter_dir, trainable=False).merge_and_unload()
    return save_model(merged, load_tokenizer(adapter_dir), out_dir)


def full_model_dir(path: str | Path) -> str:
    """`path` if it is a full model; for an adapter directory, its merged model (`<adapter>/merged`,
    written the first time it is asked for)."""
    from ultramedical.rundir import is_complete_model

    if not is_adapter_dir(path):
        return str(path)
    merged = Path(path) / MERGED
    if not is_complete_model(merged):
        merge_adapter(path, merged)
    return str(merged)
