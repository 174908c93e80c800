"""Run reports: a self-contained HTML page, a Nextflow-style trace, a workbook and charts.

Pure rendering: build a :class:`RunData` (from the store, the API or by hand) and call
:func:`write_report`. Nothing here reads the store, the network or the clock.
"""

from genobatch.report.model import (
    ComputeEnvironmentCost,
    RightSizingPolicy,
    RunData,
    RunInfo,
    SampleCost,
    TraceRecord,
)
from genobatch.report.writer import ReportFiles, write_report

__all__ = [
    "ComputeEnvironmentCost",
    "ReportFiles",
    "RightSizingPolicy",
    "RunData",
    "RunInfo",
    "SampleCost",
    "TraceRecord",
    "write_report",
]
