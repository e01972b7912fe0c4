"""Report figures with matplotlib's object API on the Agg canvas.

Figures are drawn on an explicit FigureCanvasAgg, never through pyplot, so nothing needs a display and
the process-wide backend (someone else's interactive session, say) is left alone.

Each figure is rendered to PNG bytes once: the markdown links the file under report_files/, the HTML
embeds the same bytes as base64.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ultramedical.io import atomic_directory
from ultramedical.reporting.collect import RunData, StageData, finite

FIGURES_DIR = "report_files"
# Per stage, the metrics plotted beside the loss (those a run actually logged; at most three panels).
STAGE_METRICS: dict[str, tuple[tuple[str, ...], ...]] = {
    "sft": (("lr",), ("tokens_per_s",)),
    "rm": (("accuracy",), ("margin", "reward_mean")),
    "dpo": (("rewards/accuracies",), ("rewards/margins", "rewards/chosen", "rewards/rejected")),
    "kto": (("kl",), ("rewards/chosen", "rewards/rejected")),
}
DPI = 100


@dataclass(frozen=True)
class ReportFigure:
    name: str  # file name under report_files/
    title: str
    png: bytes


def _series(rows: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for row in rows:
        x, y = finite(row.get("step")), finite(row.get(key))
        if x is not None and y is not None:
            xs.append(x)
            ys.append(y)
    return xs, ys


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def stage_figure(stage: StageData) -> ReportFigure | None:
    """Loss and the stage's key metrics against step; None when nothing numeric was logged."""
    panels: list[tuple[str, ...]] = [("loss",)] + list(STAGE_METRICS.get(stage.name, ()))
    panels = [keys for keys in panels if any(_series(stage.metrics, k)[0] for k in keys)]
    if not panels:
        return None
    fig = Figure(figsize=(4.2 * len(panels), 3.4))
    for index, keys in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), index + 1)
        for key in keys:
            xs, ys = _series(stage.metrics, key)
            if xs:
                ax.plot(xs, ys, marker="." if len(xs) < 40 else None, linewidth=1.4, label=key)
        ax.set_xlabel("step")
        ax.set_title(", ".join(k for k in keys if _series(stage.metrics, k)[0]), fontsize=10)
        ax.grid(alpha=0.3)
        if len(keys) > 1:
            ax.legend(fontsize=8)
    fig.suptitle(f"{stage.name} training", fontsize=12)
    return ReportFigure(f"training-{stage.name}.png", f"{stage.name}: training curves", _png(fig))


def _distribution(ax: Any, labels: list[str], values: list[list[float]]) -> None:
    positions = list(range(1, len(values) + 1))
    if all(len(set(v)) > 1 for v in values):
        parts = ax.violinplot(values, positions=positions, showmeans=True, showextrema=True)
        for body in parts["bodies"]:
            body.set_alpha(0.55)
    else:  # a kernel density needs spread; a box plot does not
        ax.boxplot(values, positions=positions)
    ax.set_xticks(positions)
    ax.set_xticklabels(labels)
    ax.grid(axis="y", alpha=0.3)


def rounds_figure(data: RunData, attribute: str, name: str, title: str, ylabel: str) -> ReportFigure | None:
    """A violin (or box) per online round of `RoundData.<attribute>`; None when no round has values."""
    rounds = [r for r in data.rounds if getattr(r, attribute)]
    if not rounds:
        return None
    fig = Figure(figsize=(max(4.5, 1.3 * len(rounds) + 2.5), 3.6))
    ax = fig.add_subplot(1, 1, 1)
    _distribution(ax, [f"round {r.round}" for r in rounds], [getattr(r, attribute) for r in rounds])
    if attribute == "margins":
        ax.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=11)
    return ReportFigure(name, title, _png(fig))


def online_metrics_figure(data: RunData) -> ReportFigure | None:
    """Reward mean/best/worst and held-out accuracy against round."""
    if not data.online_metrics:
        return None
    # Held-out accuracy is plotted from round 0, the starting policy, where it was measured.
    rows = ([data.heldout_before] if data.heldout_before else []) + data.online_metrics
    rounds = [finite(r.get("round")) for r in rows]

    def line(key: str) -> tuple[list[float], list[float]]:
        pairs = [(x, finite(r.get(key))) for x, r in zip(rounds, rows, strict=True)]
        kept = [(x, y) for x, y in pairs if x is not None and y is not None]
        return [x for x, _ in kept], [y for _, y in kept]

    heldout = line("heldout_accuracy")
    fig = Figure(figsize=(9.0 if heldout[0] else 5.0, 3.6))
    ax = fig.add_subplot(1, 2 if heldout[0] else 1, 1)
    for key, style in (("reward_best", "--"), ("reward_mean", "-"), ("reward_worst", ":")):
        xs, ys = line(key)
        if xs:
            ax.plot(xs, ys, style, marker="o", label=key.removeprefix("reward_"))
    ax.set_ylabel("reward")
    ax.set_title("completion rewards per round", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if heldout[0]:
        ax2 = fig.add_subplot(1, 2, 2)
        xs, ys = heldout
        ax2.plot(xs, [100 * y for y in ys], marker="o", color="tab:green")
        for x, row in zip(rounds, rows, strict=True):
            ci = row.get("heldout_ci95")
            if (
                x is not None
                and isinstance(ci, list)
                and len(ci) == 2
                and all(finite(c) is not None for c in ci)
            ):
                ax2.vlines(x, 100 * ci[0], 100 * ci[1], color="tab:green", alpha=0.5)
        ax2.set_ylabel("accuracy (%)")
        ax2.set_title("held-out accuracy (95% CI)", fontsize=10)
        ax2.grid(alpha=0.3)
    known = [x for x in rounds if x is not None]
    for axis in fig.axes:  # the same whole-round x axis on both panels
        axis.set_xlabel("round")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if known:
            axis.set_xlim(min(known) - 0.3, max(known) + 0.3)
    return ReportFigure("online-metrics.png", "Online rounds: rewards and held-out accuracy", _png(fig))


def build_figures(data: RunData) -> list[ReportFigure]:
    """Every figure the run's data supports, in report order."""
    figures = [stage_figure(stage) for stage in data.stages.values()]
    figures += [
        online_metrics_figure(data),
        rounds_figure(data, "rewards", "online-rewards.png", "Reward distribution per round", "reward"),
        rounds_figure(data, "margins", "online-margins.png", "Pair margins per round", "chosen - rejected"),
    ]
    return [f for f in figures if f is not None]


def save_figures(figures: list[ReportFigure], out_dir: Path) -> Path:
    """Replace out_dir/report_files/ in one rename, so it never mixes figures of two reports."""
    target = out_dir / FIGURES_DIR
    with atomic_directory(target) as tmp:
        for figure in figures:
            (tmp / figure.name).write_bytes(figure.png)
    return target
