"""The results tables in the paper's shape, on a finished run's per-item evaluation records: rows in pipeline
order, MedQA/MedMCQA/PubMedQA/MMLU-per-subject columns and their average, one table per mode, and each
row's difference from SFT with the exact McNemar p-value computed from the same records."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from ultramedical.eval.stats import paired_comparison, summarize
from ultramedical.reporting import collect_run, write_report
from ultramedical.reporting.cells import p_value

MODELS = ["base", "sft", "dpo", "online-round-1", "online-round-2"]
MMLU_SUBJECTS = {"clinical_knowledge": 4, "college_medicine": 4, "anatomy": 4}  # written out of order
GREEDY_HEADER = [
    "Model",
    "MedQA",
    "MedMCQA",
    "PubMedQA",
    "MMLU: anatomy",
    "MMLU: clinical knowledge",
    "MMLU: college medicine",
    "Average",
]


def item_ids(benchmark: str) -> list[tuple[str, str | None]]:
    """(id, subject) of each benchmark's items."""
    if benchmark == "mmlu":
        return [(f"{s}-{i}", s) for s, count in MMLU_SUBJECTS.items() for i in range(count)]
    count = {"medqa": 20, "medmcqa": 15, "pubmedqa": 10}[benchmark]
    return [(f"{benchmark}-{i}", None) for i in range(count)]


def records(
    benchmark: str, correct: list[bool], ids: list[tuple[str, str | None]] | None = None
) -> list[dict]:
    """Records shaped as evaluate_mcq writes them."""
    ids = ids or item_ids(benchmark)
    assert len(ids) == len(correct)
    out = []
    for (item_id, subject), right in zip(ids, correct, strict=True):
        prediction = "A" if right else ("B" if len(out) % 3 else None)
        out.append({
            "id": item_id, "benchmark": benchmark, "subject": subject, "answer": "A",
            "prediction": prediction, "correct": right, "completions": [f"The answer is {prediction}."],
            "extracted": [prediction],
        })  # fmt: skip
    return out


def build_records() -> dict[tuple[str, str, str], list[dict]]:
    """(model, benchmark, mode) -> records. MedQA greedy is set by hand for two hand-checked p-values."""
    rng = random.Random(7)
    out = {}
    medqa = [f"medqa-{i}" for i in range(20)]
    hand = {
        "base": set(),  # vs sft: 10 items only sft got right, none the other way: p = 2/2^10
        "sft": set(medqa[:10]),
        "online-round-2": set(medqa[1:19]),  # vs sft: b = 1 (item 0), c = 9 (items 10-18): p = 22/1024
    }
    for model in MODELS:
        for benchmark in ("medqa", "medmcqa", "pubmedqa", "mmlu"):
            if model == "base" and benchmark != "medqa":
                continue  # as the demo: the untrained model on one benchmark
            ids = item_ids(benchmark)
            if model == "dpo" and benchmark == "medmcqa":
                ids = [(f"medmcqa-{i}", None) for i in range(1, 16)]  # one item other than sft's
            if benchmark == "medqa" and model in hand:
                correct = [item_id in hand[model] for item_id, _ in ids]
            else:
                correct = [rng.random() < 0.3 + 0.1 * MODELS.index(model) for _ in ids]
            out[(model, benchmark, "greedy")] = records(benchmark, correct, ids)
    for model, mode in (("sft", "sc"), ("online-round-2", "sc"), ("sft", "bon"), ("online-round-2", "bon")):
        out[(model, "medqa", mode)] = records(
            "medqa", [rng.random() < 0.6 for _ in range(10)], item_ids("medqa")[:10]
        )
    return out


def make_run(root: Path, all_records: dict[tuple[str, str, str], list[dict]]) -> Path:
    (root / "eval").mkdir(parents=True)
    results = []
    for (model, benchmark, mode), rows in reversed(all_records.items()):  # written out of pipeline order
        text = "".join(json.dumps(r) + "\n" for r in rows)
        if (model, benchmark) == ("online-round-1", "pubmedqa"):
            text = "".join(text.splitlines(keepends=True)[:-1])  # a stale file, one item short
        (root / "eval" / f"{model}-{benchmark}-{mode}.jsonl").write_text(text)
        summary = summarize(rows)
        results.append(
            {"model": model, "model_path": f"/m/{model}", "benchmark": benchmark, "mode": mode} | summary
        )
    (root / "eval" / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in results))
    rm = [{"model": "rm", "subset": s, "accuracy": a, "n": 50} for s, a in (("easy", 0.9), ("overall", 0.7))]
    (root / "eval" / "rm.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rm))
    return root


def table_after(markdown: str, heading: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of the first table after `heading`."""
    lines = markdown.splitlines()
    start = lines.index(heading)
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    cells = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        cells.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return cells[0], cells[2:]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, str]:
    all_records = build_records()
    run = make_run(tmp_path_factory.mktemp("runs") / "finished", all_records)
    md, page = write_report(run)
    return all_records, md.read_text(), page.read_text()


def pct(rows: list[dict]) -> float:
    return 100 * sum(r["correct"] for r in rows) / len(rows)


def expected_cell(
    all_records: dict, model: str, benchmark: str, subject: str | None = None, mode="greedy"
) -> str:
    """The cell worked out from the records with the helpers under test elsewhere (tests/eval)."""

    def pick(label: str) -> list[dict]:
        rows = all_records[(label, benchmark, mode)]
        return [r for r in rows if subject is None or r["subject"] == subject]

    mine, sft = pick(model), pick("sft")
    text = f"{pct(mine):.1f}"
    if model == "sft":
        return text
    delta = f"{pct(mine) - pct(sft):+.1f}"
    if {r["id"] for r in mine} != {r["id"] for r in sft}:
        return f"{text} ({delta}, different items)"
    return f"{text} ({delta}, {p_value(paired_comparison(sft, mine)['p_value'])})"


def test_greedy_table_rows_columns_and_hand_checked_p_values(report: tuple[dict, str, str]) -> None:
    all_records, markdown, _ = report
    header, rows = table_after(markdown, "### Greedy decoding")
    assert header == GREEDY_HEADER
    assert [row[0] for row in rows] == MODELS
    table = {row[0]: dict(zip(header, row, strict=True)) for row in rows}

    # By hand: sft 10/20; online-round-2 18/20 with b = 1, c = 9 -> p = 2 * (1 + 10) / 2^10 = 0.0215;
    # base 0/20 with b = 10, c = 0 -> p = 2 / 2^10 = 0.00195.
    assert table["sft"]["MedQA"] == "50.0"
    assert table["online-round-2"]["MedQA"] == "90.0 (+40.0, p=0.021)"
    assert table["base"]["MedQA"] == "0.0 (-50.0, p=0.002)"
    assert paired_comparison(
        all_records[("sft", "medqa", "greedy")], all_records[("online-round-2", "medqa", "greedy")]
    )["p_value"] == pytest.approx(0.021484375)

    # base answered only MedQA: the other columns and the average are empty
    assert [table["base"][c] for c in GREEDY_HEADER[2:]] == ["-"] * 6

    for model in ("sft", "dpo", "online-round-2"):
        assert table[model]["MedQA"] == expected_cell(all_records, model, "medqa")
        assert table[model]["PubMedQA"] == expected_cell(all_records, model, "pubmedqa")
        for subject in ("anatomy", "clinical_knowledge", "college_medicine"):
            column = f"MMLU: {subject.replace('_', ' ')}"
            assert table[model][column] == expected_cell(all_records, model, "mmlu", subject)
    assert table["online-round-2"]["MedMCQA"] == expected_cell(all_records, "online-round-2", "medmcqa")
    assert table["dpo"]["MedMCQA"].endswith(", different items)")  # one of its ids is not sft's
    assert table["dpo"]["MedMCQA"] == expected_cell(all_records, "dpo", "medmcqa")
    # the stale per-item file is left out: the accuracy stands (results.jsonl), the test does not
    assert table["online-round-1"]["PubMedQA"].endswith(", no item records)")
    assert table["online-round-1"]["PubMedQA"].startswith(
        f"{pct(all_records[('online-round-1', 'pubmedqa', 'greedy')]):.1f} ("
    )


def test_average_is_over_the_columns(report: tuple[dict, str, str]) -> None:
    all_records, markdown, _ = report
    header, rows = table_after(markdown, "### Greedy decoding")
    table = {row[0]: dict(zip(header, row, strict=True)) for row in rows}

    def average(model: str) -> float:
        columns = [all_records[(model, b, "greedy")] for b in ("medqa", "medmcqa", "pubmedqa")]
        mmlu = all_records[(model, "mmlu", "greedy")]
        columns += [[r for r in mmlu if r["subject"] == s] for s in MMLU_SUBJECTS]
        return sum(pct(rows) for rows in columns) / len(columns)

    assert table["sft"]["Average"] == f"{average('sft'):.1f}"
    for model in ("dpo", "online-round-1", "online-round-2"):
        assert table[model]["Average"] == f"{average(model):.1f} ({average(model) - average('sft'):+.1f})"


def test_one_table_per_mode(report: tuple[dict, str, str]) -> None:
    all_records, markdown, page = report
    for heading, mode in (
        ("### Self-consistency (sc): the majority answer of N samples", "sc"),
        ("### Best-of-N (bon): the answer of the sample the reward model scores highest", "bon"),
    ):
        header, rows = table_after(markdown, heading)
        assert header == ["Model", "MedQA"]  # one column: no average
        assert rows == [
            ["sft", expected_cell(all_records, "sft", "medqa", mode=mode)],
            ["online-round-2", expected_cell(all_records, "online-round-2", "medqa", mode=mode)],
        ]
    # the same tables in the HTML
    assert "<th>MMLU: clinical knowledge</th>" in page and "<td>90.0 (+40.0, p=0.021)</td>" in page
    assert page.count("<th>Average</th>") == 1


def test_status_and_the_other_evaluation_tables(report: tuple[dict, str, str]) -> None:
    _, markdown, _ = report
    assert (
        "Missing: per-item records matching eval/results.jsonl (eval/online-round-1-pubmedqa-greedy.jsonl: "
        "9 usable records, results.jsonl says n=10)." in markdown
    )
    header, rows = table_after(markdown, "### All results with 95% intervals")
    assert header[:3] == ["Model", "MedQA (greedy)", "MedQA (sc)"] and [r[0] for r in rows] == MODELS
    header, rows = table_after(markdown, "### Reward model accuracy per subset")
    assert header == ["Reward model", "easy", "overall"] and rows == [["rm", "90.0 (n=50)", "70.0 (n=50)"]]
    evaluation = markdown.index("## Evaluation")
    assert evaluation < markdown.index("### Greedy decoding") < markdown.index("### Reward model accuracy")


def test_collected_records_are_trimmed_and_keyed(tmp_path: Path) -> None:
    all_records = build_records()
    data = collect_run(make_run(tmp_path / "run", all_records))
    assert set(data.eval_records) == set(all_records) - {("online-round-1", "pubmedqa", "greedy")}
    first = data.eval_records[("sft", "mmlu", "greedy")][0]
    assert first.keys() == {"id", "subject", "correct", "prediction"}  # no completions held in memory
    assert (first["id"], first["subject"]) == ("clinical_knowledge-0", "clinical_knowledge")


def test_no_sft_row_means_no_differences(tmp_path: Path) -> None:
    all_records = {k: v for k, v in build_records().items() if k[0] in ("dpo", "online-round-2")}
    md, _ = write_report(make_run(tmp_path / "run", all_records))
    markdown = md.read_text()
    assert "No sft row, so no differences are shown." in markdown
    _, rows = table_after(markdown, "### Greedy decoding")
    assert [row[0] for row in rows] == ["dpo", "online-round-2"]
    assert all("(" not in cell for row in rows for cell in row)


def test_an_ablation_row_follows_the_pipeline_with_its_note(tmp_path: Path) -> None:
    """A row the pipeline does not name (the demo's ablations) comes after the online rows, compared with
    SFT like every row, and the note its results.jsonl lines carry says what it is."""
    chosen = {key: rows for key, rows in build_records().items() if key[1:] == ("medqa", "greedy")}
    chosen[("online-rule-bonus", "medqa", "greedy")] = records("medqa", [True] * 20)
    run = make_run(tmp_path / "run", chosen)
    results = run / "eval" / "results.jsonl"
    note = "the online rounds again with a rule-based bonus"
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    for line in lines:
        if line["model"] == "online-rule-bonus":
            line["note"] = note
    results.write_text("".join(json.dumps(line) + "\n" for line in lines))

    markdown = write_report(run)[0].read_text()
    assert f"online-rule-bonus: {note}" in markdown
    _, rows = table_after(markdown, "### Greedy decoding")
    assert [row[0] for row in rows] == [*MODELS, "online-rule-bonus"]
    assert rows[-1][1] == expected_cell(chosen, "online-rule-bonus", "medqa")
    assert "p=" in rows[-1][1] or "p<" in rows[-1][1]
