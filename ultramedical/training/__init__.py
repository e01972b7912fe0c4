"""Training: one loop (loop.py) and the algorithms that plug into it."""

from __future__ import annotations

from ultramedical.training.algorithm import Algorithm
from ultramedical.training.dpo import DPO
from ultramedical.training.kto import KTO
from ultramedical.training.reward import RewardModeling
from ultramedical.training.sft import SFT

ALGORITHMS: dict[str, type[Algorithm]] = {"sft": SFT, "rm": RewardModeling, "dpo": DPO, "kto": KTO}

__all__ = ["ALGORITHMS", "Algorithm", "DPO", "KTO", "RewardModeling", "SFT"]
