"""The one run-directory layout. Every stage, the controller and the report find files through here.

runs/<name>/
  config.yaml                 the resolved config of the latest invocation
  tokenized/<stage>-<key>/    a stage's tokenized examples (Arrow, memory-mapped by every worker), named by
                              a hash of their inputs; reused while the inputs stay the same
  <stage>/                    sft | rm | dpo | kto
    data_stats.json           records, examples, truncated, dropped, skipped
    metrics.jsonl             one line per logged step
    tb/                       TensorBoard event files
    ray/                      Ray Train storage: full training state for --resume
    checkpoint-<step>/        HF checkpoints every trainer.save_every_steps
    final/                    the stage's HF model (safetensors, tokenizer, chat template); with model.lora
                              its adapter in PEFT format, and final/merged/ once something needs it merged
  online/                     iterative preference learning
    round-<k>/                completions, rewards, pairs, metrics of round k
    metrics.jsonl             one line per completed round
    checkpoint-round-<k>/, final/
  ablations/<name>/           an online run with one setting changed (laid out as online/), for comparison
  eval/                       benchmark outputs and summaries
  report.md, report.html
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ultramedical.models.lora import is_adapter_dir

STAGES = ("sft", "rm", "dpo", "kto")


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def of(cls, runs_root: str | Path, name: str) -> RunDir:
        return cls(Path(runs_root).absolute() / name)

    def stage(self, stage: str) -> Path:
        return self.root / stage

    def final(self, stage: str) -> Path:
        return self.stage(stage) / "final"

    def metrics(self, stage: str) -> Path:
        return self.stage(stage) / "metrics.jsonl"

    def ray_storage(self, stage: str) -> Path:
        return self.stage(stage) / "ray"

    @property
    def tokenized(self) -> Path:
        """Where stages keep tokenized data: outside <stage>/ so that --overwrite keeps it, and on
        runs_root, the storage every node sees, since workers open it by path."""
        return self.root / "tokenized"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def online(self) -> Path:
        return self.root / "online"

    def ablation(self, name: str) -> Path:
        """The online run directory of ablation `name` (the same rounds with one setting changed)."""
        return self.root / "ablations" / name

    @property
    def eval(self) -> Path:
        return self.root / "eval"

    def eval_records(self, model: str, benchmark: str, mode: str) -> Path:
        """One evaluation's per-item records, which the report pairs row against row."""
        return self.eval / f"{model}-{benchmark}-{mode}.jsonl"


def is_complete_model(path: Path) -> bool:
    """A finished HF model directory or LoRA adapter directory (atomic writes mean a present config
    implies the rest)."""
    path = Path(path)
    return ((path / "config.json").is_file() and any(path.glob("*.safetensors"))) or is_adapter_dir(path)
