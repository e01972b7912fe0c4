"""`ultramedical bench --only` lists the benchmark names without importing bench/ (absent from an
installed package); the suite reports in that order and runs in its own (RUN_ORDER): all must name the
same benchmarks."""

from __future__ import annotations

from bench.suite import REPORT_ORDER, RUN_ORDER
from jobs.cli.bench import NAMES


def test_cli_offers_exactly_the_suites_benchmarks() -> None:
    assert sorted(NAMES) == sorted(REPORT_ORDER) == sorted(RUN_ORDER)
