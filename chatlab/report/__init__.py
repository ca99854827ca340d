"""Reports: what a user opens after a run — pages, tables, plots and the files behind them.

One job per module: ``document`` (a report as data, sections of blocks, rendered to Markdown
and HTML alike), ``sections`` (the sections every report has), ``tables`` (the key-metrics
table and cell formats), ``plots`` (the PNG figures), ``files`` (event logs on disk, found and
analysed again), ``loadtest_section`` / ``sim_vs_db`` (the load test's and compare-real's
sections, from their saved results), ``writer`` (every kind of report directory, and
:func:`rebuild` for ``chatlab report DIR``).
"""

from __future__ import annotations

from chatlab.report.document import Document, Section, markdown_table, write_document
from chatlab.report.files import LOG_NAMES, RUN_SIDECAR, ReportError, find_logs, load_log, load_runs, save_log
from chatlab.report.plots import PLOT_FILES, write_plots
from chatlab.report.tables import (
    SUMMARY_ROWS,
    TERMINAL_ROWS,
    format_spread,
    format_value,
    slug,
    summary_table,
    text_table,
)
from chatlab.report.writer import (
    REPORT_FILES,
    RUN_REPORT_FILES,
    group_by_label,
    pooled_runs,
    rebuild,
    write_calibration_report,
    write_comparison_report,
    write_loadtest_report,
    write_report,
    write_run_report,
    write_sim_vs_db_report,
)

__all__ = [
    "Document", "LOG_NAMES", "PLOT_FILES", "REPORT_FILES", "RUN_REPORT_FILES", "RUN_SIDECAR", "ReportError",
    "SUMMARY_ROWS", "Section", "TERMINAL_ROWS", "find_logs", "format_spread", "format_value", "group_by_label",
    "load_log", "load_runs", "markdown_table", "pooled_runs", "rebuild", "save_log", "slug", "summary_table",
    "text_table", "write_calibration_report", "write_comparison_report", "write_document", "write_loadtest_report", "write_plots",
    "write_report", "write_run_report", "write_sim_vs_db_report",
]
