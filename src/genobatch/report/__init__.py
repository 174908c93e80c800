"""Run reports: a self-contained HTML page, a Nextflow-style trace, a workbook and charts.

Pure rendering: build a :class:`RunData` (from the store, the API or by hand) and call
:func:`write_report`. Nothing here reads the store, the network or the clock, except
:func:`genobatch.report.results.run_results`, which reads a run's rows and logs.

The names below load on first use (PEP 562): ``write_report`` pulls in matplotlib, which the CLI's
light commands (``genobatch cost``, ``demo``'s progress) and pipeline jobs should not pay for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genobatch.report.model import (
        ComputeEnvironmentCost,
        RightSizingPolicy,
        RunData,
        RunInfo,
        SampleCost,
        TraceRecord,
    )
    from genobatch.report.writer import ReportFiles, write_report

_WHERE = {
    "ComputeEnvironmentCost": "model",
    "RightSizingPolicy": "model",
    "RunData": "model",
    "RunInfo": "model",
    "SampleCost": "model",
    "TraceRecord": "model",
    "ReportFiles": "writer",
    "write_report": "writer",
}

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


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'genobatch.report' has no attribute {name!r}")
    return getattr(importlib.import_module(f"genobatch.report.{_WHERE[name]}"), name)
