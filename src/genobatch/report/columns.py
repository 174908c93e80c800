"""The trace columns, shared by ``trace.tsv``, the workbook's Trace sheet and the HTML table.

Headers are Nextflow's trace field names where one exists (``task_id``, ``native_id``, ``name``,
``status``, ``exit``, ``submit``, ``duration``, ``realtime``, ``%cpu``, ``peak_rss``, ...), followed by
genobatch's own (``compute_environment``, ``job_definition``, ``sample``, ``attributed_cost``). Values
are raw, like Nextflow's ``trace.raw = true``: durations in ms, sizes in bytes (``memory``, the
request, too), ``%cpu`` a plain number where 100 is one busy CPU. ``hash`` is left out: genobatch
has no work-directory hash to report.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from genobatch.report.model import TraceRecord

#: text, a count, an instant (epoch ms), a duration (ms), a size (bytes), a percentage, money (USD).
Kind = Literal["text", "int", "time", "ms", "bytes", "pct", "usd"]


@dataclass(frozen=True)
class Column:
    """One trace column: its header, how to read it from a record, and what kind of number it is."""

    header: str
    value: Callable[[TraceRecord], Any]
    kind: Kind = "text"


def _tags(record: TraceRecord) -> str | None:
    # Compact, key-sorted JSON: one cell, parseable, and stable across runs.
    return json.dumps(record.tags, sort_keys=True, separators=(",", ":")) if record.tags else None


TRACE_COLUMNS: tuple[Column, ...] = (
    Column("task_id", lambda r: r.task_id),
    # On AWS Batch, Nextflow's native_id is the Batch job id, which genobatch's task_id already is.
    Column("native_id", lambda r: r.task_id),
    Column("name", lambda r: r.name),
    Column("status", lambda r: r.status),
    Column("exit", lambda r: r.exit, "int"),
    Column("attempt", lambda r: r.attempt, "int"),
    Column("submit", lambda r: r.submit, "time"),
    Column("start", lambda r: r.start, "time"),
    Column("complete", lambda r: r.complete, "time"),
    Column("duration", lambda r: r.duration, "ms"),
    Column("realtime", lambda r: r.realtime, "ms"),
    Column("%cpu", lambda r: r.pct_cpu, "pct"),
    Column("peak_rss", lambda r: r.peak_rss, "bytes"),
    Column("peak_vmem", lambda r: r.peak_vmem, "bytes"),
    Column("rchar", lambda r: r.rchar, "bytes"),
    Column("wchar", lambda r: r.wchar, "bytes"),
    Column("read_bytes", lambda r: r.read_bytes, "bytes"),
    Column("write_bytes", lambda r: r.write_bytes, "bytes"),
    Column("cpus", lambda r: r.cpus, "int"),
    Column("memory", lambda r: r.requested_memory_bytes if r.memory else None, "bytes"),
    Column("gpus", lambda r: r.gpus, "int"),
    Column("queue", lambda r: r.queue),
    Column("compute_environment", lambda r: r.compute_environment),
    Column("hostname", lambda r: r.hostname),
    Column("job_definition", lambda r: r.job_definition),
    Column("sample", lambda r: r.sample),
    Column("tags", _tags),
    Column("reason", lambda r: r.reason),
    Column("attributed_cost", lambda r: r.attributed_cost, "usd"),
)

TRACE_HEADERS: tuple[str, ...] = tuple(column.header for column in TRACE_COLUMNS)
