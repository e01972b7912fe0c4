"""Render a collected run as report.md and a single-file report.html from one list of blocks.

Both documents are built from the same blocks (headings, paragraphs, notes, tables, figures, the
config), so the markdown and the HTML always say the same thing. Accuracies are fractions in the
inputs and percentages here, "41.3 [36.0, 46.8]" being the accuracy with its 95% interval.
"""

from __future__ import annotations

import base64
import html
import os
from datetime import UTC, datetime
from pathlib import Path

from ultramedical.io import atomic_write_text
from ultramedical.reporting.cells import DASH, Block, num, pct, pct_ci
from ultramedical.reporting.collect import RunData, collect_run, finite
from ultramedical.reporting.figures import (
    FIGURES_DIR,
    STAGE_METRICS,
    ReportFigure,
    build_figures,
    save_figures,
)
from ultramedical.reporting.results_table import evaluation_blocks


def stats_table(data: RunData) -> Block:
    keys = ("records", "examples", "truncated", "dropped_too_long", "skipped_invalid", "init_model")
    headers = "Stage,records,examples,truncated,dropped (too long),skipped invalid,init model".split(",")
    body = [
        [name] + [num(stage.data_stats.get(key), ".0f") for key in keys]
        for name, stage in data.stages.items()
        if stage.data_stats is not None
    ]
    return ("table", headers, body)


def training_table(data: RunData) -> Block:
    body = []
    for name, stage in data.stages.items():
        last = stage.metrics[-1] if stage.metrics else {}
        keys = [
            k for group in STAGE_METRICS.get(name, ()) for k in group if k in last and k != "tokens_per_s"
        ]
        speeds = [v for v in (finite(r.get("tokens_per_s")) for r in stage.metrics) if v is not None]
        body.append(
            [
                name,
                str(len(stage.metrics)),
                num(last.get("step"), ".0f"),
                num(last.get("loss")),
                ", ".join(f"{k} {num(last[k])}" for k in keys) or DASH,
                f"{sum(speeds) / len(speeds):,.0f}" if speeds else DASH,
            ]
        )
    headers = "Stage,logged steps,last step,final loss,final metrics,mean tokens/s".split(",")
    return ("table", headers, body)


def rounds_table(data: RunData) -> Block:
    metrics = {int(r["round"]): r for r in data.online_metrics}
    files = {r.round: r for r in data.rounds}
    headers = (
        "Round,reward mean,best,worst,completions,pairs,pair margin,train acc,held-out acc,"
        "gen tokens/s,generate s,score s,train s,publish s"
    ).split(",")
    body = []
    if data.heldout_before is not None:  # the starting policy, before round 1 trains
        before = data.heldout_before
        body.append(["0", *[DASH] * 7, pct_ci(before.get("heldout_accuracy"), before.get("heldout_ci95")),
                     *[DASH] * 5])  # fmt: skip
    for k in sorted(set(metrics) | set(files)):
        row, raw = metrics.get(k, {}), files.get(k)
        body.append([
            str(k), num(row.get("reward_mean"), ".3f"), num(row.get("reward_best"), ".3f"),
            num(row.get("reward_worst"), ".3f"), str(len(raw.rewards)) if raw else DASH,
            num(row.get("pairs"), ".0f") if "pairs" in row else (str(raw.pairs) if raw else DASH),
            num(row.get("pair_margin"), ".3f"), pct(row.get("train_accuracy")),
            pct_ci(row.get("heldout_accuracy"), row.get("heldout_ci95")),
            num(row.get("gen_tokens_per_s"), ",.0f"), num(row.get("generate_seconds"), ".1f"),
            num(row.get("score_seconds"), ".1f"), num(row.get("train_seconds"), ".1f"),
            num(row.get("publish_seconds"), ".1f"),
        ])  # fmt: skip
    return ("table", headers, body)


def _missing(data: RunData, prefix: str) -> list[Block]:
    return [("note", f"Missing: {m}.") for m in data.missing if m.startswith(prefix)]


def build_blocks(data: RunData, figures: list[ReportFigure], generated_at: str) -> list[Block]:
    figs = {f.name: f for f in figures}
    blocks: list[Block] = [
        ("h", 1, f"Run report: {data.name}"),
        ("p", f"Generated {generated_at} from {data.root}."),
    ]
    if data.config_text is not None:
        blocks.append(("config", data.config_text))
    blocks.append(("h", 2, "Status"))
    status = [f"Missing: {m}." for m in data.missing]
    status += [
        f"Skipped {n} malformed line{'s' * (n != 1)} in {path}." for path, n in sorted(data.skipped.items())
    ]
    blocks.append(("list", status or ["All report inputs are present; no malformed lines."]))

    blocks.append(("h", 2, "Training"))
    if data.stages:
        blocks += [("h", 3, "Data"), stats_table(data), ("h", 3, "Curves"), training_table(data)]
        blocks += [("figure", figs[f"training-{s}.png"]) for s in data.stages if f"training-{s}.png" in figs]
    blocks += _missing(data, "training")

    blocks.append(("h", 2, "Online rounds"))
    if data.has_online:
        blocks.append(rounds_table(data))
        names = ("online-metrics.png", "online-rewards.png", "online-margins.png")
        blocks += [("figure", figs[n]) for n in names if n in figs]
    blocks += _missing(data, "online")

    blocks.append(("h", 2, "Evaluation"))
    blocks += evaluation_blocks(data)
    blocks += _missing(data, "evaluation") + _missing(data, "per-item") + _missing(data, "reward-model")
    return blocks


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"{'#' * block[1]} {block[2]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "note":
            out.append(f"> {block[1]}")
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "config":
            fence = "````" if "```" in block[1] else "```"
            out.append(f"<details><summary>config.yaml</summary>\n\n{fence}yaml\n{block[1].rstrip()}\n{fence}\n\n"
                       "</details>")  # fmt: skip
        elif kind == "table":
            _, headers, rows = block
            lines = ["| " + " | ".join(map(_md_cell, headers)) + " |"]
            lines.append("|" + "|".join(["---"] + ["--:"] * (len(headers) - 1)) + "|")
            lines += ["| " + " | ".join(map(_md_cell, row)) + " |" for row in rows]
            out.append("\n".join(lines) if rows else "_(no rows)_")
        elif kind == "figure":
            fig: ReportFigure = block[1]
            out.append(f"![{fig.title}]({FIGURES_DIR}/{fig.name})")
    return "\n\n".join(out) + "\n"


CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #1f2328;
       max-width: 1180px; margin: 2rem auto; padding: 0 1.2rem; background: #fff; }
h1 { border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; } h2 { margin-top: 2.2rem;
     border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
table { border-collapse: collapse; margin: .8rem 0 1.2rem; font-size: 13.5px; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .3rem .6rem; white-space: nowrap; }
th { background: #f6f8fa; } td { text-align: right; font-variant-numeric: tabular-nums; }
td:first-child { text-align: left; font-weight: 600; } tr:nth-child(even) td { background: #fafbfc; }
.note { border-left: 4px solid #d4a72c; background: #fff8c5; padding: .4rem .8rem; margin: .6rem 0; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; border: 1px solid #d0d7de; }
figcaption { color: #59636e; font-size: 13px; } pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; }
details summary { cursor: pointer; color: #0969da; } .meta { color: #59636e; }
"""


def render_html(blocks: list[Block], title: str) -> str:
    esc = html.escape
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"<h{block[1]}>{esc(block[2])}</h{block[1]}>")
        elif kind == "p":
            out.append(f'<p class="meta">{esc(block[1])}</p>')
        elif kind == "note":
            out.append(f'<div class="note">{esc(block[1])}</div>')
        elif kind == "list":
            out.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in block[1]) + "</ul>")
        elif kind == "config":
            out.append(
                f"<details><summary>config.yaml</summary><pre><code>{esc(block[1])}</code></pre></details>"
            )
        elif kind == "table":
            _, headers, rows = block
            head = "".join(f"<th>{esc(h)}</th>" for h in headers)
            body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>" if rows
                       else "<p><em>(no rows)</em></p>")  # fmt: skip
        elif kind == "figure":
            fig: ReportFigure = block[1]
            data = base64.b64encode(fig.png).decode("ascii")
            out.append(f"<figure><img alt=\"{esc(fig.title)}\" src=\"data:image/png;base64,{data}\">"
                       f"<figcaption>{esc(fig.title)}</figcaption></figure>")  # fmt: skip
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(out)
        + "\n</body>\n</html>\n"
    )


def write_report(run_dir: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path]:
    """Write report.md, report.html and report_files/*.png into out_dir (default: the run directory)."""
    data = collect_run(run_dir)
    out = Path(out_dir).absolute() if out_dir is not None else data.root
    figures = build_figures(data)
    generated_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    blocks = build_blocks(data, figures, generated_at)
    files = save_figures(figures, out)
    md = atomic_write_text(out / "report.md", render_markdown(blocks))
    page = atomic_write_text(out / "report.html", render_html(blocks, f"Run report: {data.name}"))
    _readable([files, md, page, *files.iterdir()])
    return md, page


def _readable(paths: list[Path]) -> None:
    """Atomic writes create private temp files (0600/0700); a report is meant to be shared and served."""
    for path in paths:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
