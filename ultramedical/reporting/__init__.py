"""Run reports: `collect_run` reads a run directory into plain data, `write_report` renders it.

`ultramedical report RUN_DIR` writes RUN_DIR/report.md, a self-contained RUN_DIR/report.html and the
figures under RUN_DIR/report_files/. A partial run gives a partial report that says what is missing.
"""

from __future__ import annotations

from ultramedical.reporting.collect import RoundData, RunData, StageData, collect_run, pipeline_order
from ultramedical.reporting.render import write_report

__all__ = ["RoundData", "RunData", "StageData", "collect_run", "pipeline_order", "write_report"]
