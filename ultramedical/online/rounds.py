"""Persistence of online rounds: what was generated, scored and paired, and which rounds completed.

A round is complete when its line is in `online/metrics.jsonl`; that line is written last, after the
round's files and the policy it produced, so a crash anywhere before it means the round is redone
from its start and nothing completed is ever regenerated or rewritten. The policy a round produces is
staged in `online/policy.next` and only replaces `online/policy` once the round commits, so `policy`
always holds the weights of the last completed round (what a redone round must start from).
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

from ultramedical.io import append_jsonl, atomic_write_json, atomic_write_jsonl
from ultramedical.online.round_data import ScoredItem, TrainItem


class RoundStore:
    def __init__(self, online_dir: str | Path):
        self.root = Path(online_dir)
        self.metrics_path = self.root / "metrics.jsonl"
        self.train_metrics_path = self.root / "train_metrics.jsonl"

    def round_dir(self, round_index: int) -> Path:
        return self.root / f"round-{round_index}"

    @property
    def policy_dir(self) -> Path:
        """The policy after the latest completed round (what --resume starts the engines from)."""
        return self.root / "policy"

    @property
    def staged_policy_dir(self) -> Path:
        """Where a round saves its policy before it commits; `commit` promotes it to `policy_dir`."""
        return self.root / "policy.next"

    def mark_staged_policy(self, round_index: int) -> None:
        """Record that the staged policy is complete and belongs to this round."""
        atomic_write_json(self.staged_policy_dir / "round.json", {"round": round_index})

    def _staged_round(self) -> int | None:
        try:
            return json.loads((self.staged_policy_dir / "round.json").read_text())["round"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            return None

    def _promote_staged_policy(self) -> None:
        """Make the staged policy `policy_dir` if its round is the last completed one."""
        if self._staged_round() != self.last_completed():
            return
        old = self.root / ".policy.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.policy_dir.exists():
            os.replace(self.policy_dir, old)
        os.replace(self.staged_policy_dir, self.policy_dir)
        shutil.rmtree(old, ignore_errors=True)

    def completed(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a crash: its round did not complete
        return rows

    def train_steps(self) -> int:
        """Training steps logged so far, over all completed rounds (a resumed run numbers on from here)."""
        if not self.train_metrics_path.exists():
            return 0
        with self.train_metrics_path.open(encoding="utf-8") as lines:
            return sum(1 for _ in lines)

    def last_completed(self) -> int:
        return max((row["round"] for row in self.completed()), default=0)

    def discard_incomplete(self) -> list[int]:
        """Remove the files of rounds that started but never completed (and their staged policy); finish
        the promotion of a committed round's policy that a crash cut short."""
        self._promote_staged_policy()
        shutil.rmtree(self.staged_policy_dir, ignore_errors=True)
        last = self.last_completed()
        removed = []
        for path in self.root.glob("round-*"):
            index = int(path.name.split("-", 1)[1])
            if index > last:
                shutil.rmtree(path)
                removed.append(index)
        return sorted(removed)

    def write_round(self, round_index: int, scored: list[ScoredItem], train_items: list[TrainItem]) -> None:
        directory = self.round_dir(round_index)
        atomic_write_jsonl(
            directory / "completions.jsonl",
            (
                {
                    "prompt_id": item["prompt_id"],
                    "prompt": item["prompt"],
                    "answer": item.get("answer", ""),
                    "completions": [c["text"] for c in item["completions"]],
                    "tokens": [len(c["token_ids"]) for c in item["completions"]],
                    "rewards": item["rewards"],
                }
                for item in scored
            ),
        )
        atomic_write_jsonl(
            directory / "pairs.jsonl",
            (
                {k: v for k, v in row.items() if k not in ("prompt", "chosen", "rejected", "completion")}
                | {
                    "chosen_tokens": len(row.get("chosen", [])),
                    "rejected_tokens": len(row.get("rejected", [])),
                }
                for row in train_items
            ),
        )

    def commit(self, metrics: dict[str, Any]) -> None:
        append_jsonl(self.metrics_path, metrics)
        self._promote_staged_policy()


def round_prompts(pool_size: int, round_index: int, per_round: int, seed: int) -> list[int]:
    """Indices into the prompt pool for a round: a seeded walk through shuffled epochs of the pool,
    so rounds see distinct prompts until the pool is used up, and a redone round gets the same ones."""
    start = (round_index - 1) * per_round
    picked = []
    for position in range(start, start + per_round):
        epoch, offset = divmod(position, pool_size)
        order = list(range(pool_size))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        picked.append(order[offset])
    return picked
